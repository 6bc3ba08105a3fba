"""POSIX access ACLs kept in step with the mode, as a disk filesystem keeps them.

An ACL reaches cosfs as the ``system.posix_acl_access`` xattr in Linux's binary form
(``posix_acl_xattr.h``: a little-endian version 2, then one (tag, permissions, id) entry of
8 bytes each) and is stored like any xattr. Without the kernel's ACL support, which cosfs
does not ask for, keeping the mode and the ACL consistent is the filesystem's job (libfuse's
``FUSE_CAP_POSIX_ACL``): setting an ACL gives the mode its owner, group (the mask, when there
is one) and other bits, and an ACL that says no more than a mode is stored as the mode alone
(``posix_acl_update_mode``); a chmod rewrites those entries of a stored ACL
(``posix_acl_chmod``). Then ``getfacl``, ``ls -l`` and ``rsync -A`` agree.

Pure functions: no I/O.
"""

from __future__ import annotations

import errno
import struct
from typing import List, Mapping, Optional, Tuple

from cosfs.metadata import xattrs
from cosfs.wire.errors import CosfsError

ACCESS = "system.posix_acl_access"
_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

Entry = Tuple[int, int, int]


def parse(value: bytes, path: str) -> List[Entry]:
    """The entries of an ACL xattr; EINVAL when it is not one (a wrong version or length,
    or without its owner, group or other entry)."""
    if len(value) < _HEADER.size or (len(value) - _HEADER.size) % _ENTRY.size:
        raise CosfsError(f"{path}: not a POSIX ACL", errno.EINVAL)
    if _HEADER.unpack_from(value)[0] != _VERSION:
        raise CosfsError(f"{path}: POSIX ACL of an unknown version", errno.EINVAL)
    entries = [_ENTRY.unpack_from(value, offset) for offset in range(_HEADER.size, len(value), _ENTRY.size)]
    tags = [tag for tag, _, _ in entries]
    if any(tags.count(tag) != 1 for tag in (USER_OBJ, GROUP_OBJ, OTHER)):
        raise CosfsError(f"{path}: a POSIX ACL needs one owner, group and other entry", errno.EINVAL)
    return entries


def mode_of(entries: List[Entry], mode: int) -> Tuple[int, bool]:
    """``mode`` with the permission bits ``entries`` give (the mask's as the group's, when
    there is one), and whether the ACL says nothing more than that mode."""
    bits = {tag: permissions & 0o7 for tag, permissions, _ in entries}
    group = bits.get(MASK, bits[GROUP_OBJ])
    new_mode = (mode & ~0o777) | bits[USER_OBJ] << 6 | group << 3 | bits[OTHER]
    equivalent = all(tag in (USER_OBJ, GROUP_OBJ, OTHER) for tag, _, _ in entries)
    return new_mode, equivalent


def with_mode(value: bytes, mode: int) -> Optional[bytes]:
    """The stored ACL ``value`` after a chmod to ``mode`` (owner, other, and the mask or else
    the group entry take its bits); ``None`` when ``value`` is not an ACL (left alone)."""
    try:
        entries = parse(value, "")
    except CosfsError:
        return None
    has_mask = any(tag == MASK for tag, _, _ in entries)
    bits = {USER_OBJ: (mode >> 6) & 0o7, OTHER: mode & 0o7, MASK if has_mask else GROUP_OBJ: (mode >> 3) & 0o7}
    changed = [(tag, bits.get(tag, permissions), ident) for tag, permissions, ident in entries]
    return _HEADER.pack(_VERSION) + b"".join(_ENTRY.pack(*entry) for entry in changed)


def meta_after_chmod(meta: Mapping[str, str], mode: int) -> Mapping[str, str]:
    """``meta`` with its stored access ACL (if any) rewritten for ``mode``; ``meta`` itself
    when there is nothing to rewrite."""
    if xattrs.META_XATTR not in meta:
        return meta
    stored = xattrs.decode(meta).get(ACCESS)
    changed = with_mode(stored, mode) if stored is not None else None
    if changed is None or changed == stored:
        return meta
    return xattrs.with_attribute(meta, ACCESS, changed, 0, "")
