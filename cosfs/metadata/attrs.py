"""Turn COS object metadata into POSIX attributes and back, the way Tencent's COSFS stores them.

A bucket shared with COSFS (or s3fs) looks the same through either mount. Attributes live
in user metadata (keys here are lower-case and without ``x-cos-meta-``):

- ``mode``: the full ``st_mode`` in decimal (``"33188"`` is a 0644 file). When it has no
  type bits, the object is a directory if its key ends in ``/`` or its Content-Type is
  ``application/x-directory``, else a regular file. s3sync's ``permissions`` is read when
  ``mode`` is absent.
- ``uid``, ``gid``: decimal; s3sync's ``owner``, ``group`` are read when they are absent.
- ``mtime``: whole seconds since the epoch, in decimal, as COSFS writes it (COSFS ignores
  anything else). ``mtime-nsec`` is ours: the nanoseconds, 0..999999999, written only when
  not 0. s3fs's ``"sec.fraction"`` form is read too (its fraction then wins over
  ``mtime-nsec``). Before 1970 ``mtime`` is negative (COSFS reads that as 0). Without
  ``mtime`` the object's Last-Modified is used. A tool that rewrites ``mtime`` but keeps
  the other keys leaves a stale ``mtime-nsec``, off by less than a second.
- ``ctime``, ``atime``: the change and access times, s3fs's names, in the same form as
  ``mtime`` (with ``ctime-nsec``, ``atime-nsec``; s3fs's ``"sec.fraction"`` read too).
  ``ctime`` is written by every change of the attributes (chmod, chown, utimens, xattrs);
  a write changes only ``mtime``, and ctime is shown as the later of the two, so it is
  never earlier than the last write. ``atime`` is written only by a utimens that sets it
  (reads do not: noatime); without it atime is shown as mtime.

Where COSFS parses an unparsable value as 0 (``"0644x"`` -> mode 0, ``"1.5x"`` -> mtime 0),
cosfs falls back to the default instead: the mount's umask-derived mode, its uid/gid, or
Last-Modified. Out-of-range numbers (a mode above 0o177777, an id of 2**32 or more, an
mtime whose nanoseconds overflow 64 bits) count as unparsable. Nothing is logged: these
values come from other tools and are not our errors.

Special files (FIFOs, sockets, character and block devices, made by ``mknod``) are empty
objects whose ``mode`` carries their type bits, as s3fs stores them; a device's number is
``rdev``, the kernel's ``dev_t`` in decimal (the key older s3fs versions and s3fs-c wrote;
absent or unparsable: 0). Extended attributes are ``xattr`` (``cosfs.metadata.xattrs``).

Pure functions and frozen values: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
import stat
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional

from cosfs.store.interface import Metadata, ObjectInfo

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"

#: A FIFO, socket or device: an empty object whose mode says which (``SPECIAL_TYPES``).
SPECIAL = "special"

#: kind -> the st_mode type bits it carries (a special file: one of ``SPECIAL_TYPES``).
TYPE_BITS = {FILE: stat.S_IFREG, DIR: stat.S_IFDIR, SYMLINK: stat.S_IFLNK}
#: The type bits of the special files ``mknod`` makes.
SPECIAL_TYPES = frozenset({stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK})
#: Every kind an ``Attr`` may have.
KINDS = frozenset(TYPE_BITS) | {SPECIAL}

META_MODE = "mode"
META_UID = "uid"
META_GID = "gid"
META_MTIME = "mtime"
META_MTIME_NSEC = "mtime-nsec"
#: s3fs's change and access times (``x-amz-meta-ctime``, ``-atime``), each with its ``-nsec``.
META_CTIME = "ctime"
META_ATIME = "atime"
#: A device file's number (``st_rdev``), in decimal.
META_RDEV = "rdev"
#: s3sync's names, read (never written) when the COSFS ones are absent.
META_PERMISSIONS = "permissions"
META_OWNER = "owner"
META_GROUP = "group"

DIRECTORY_CONTENT_TYPE = "application/x-directory"
#: ``st_blksize``: the preferred I/O size reported to programs.
BLOCK_SIZE = 4096

_NS = 1_000_000_000
_MAX_ID = 2**32 - 1
_MAX_MODE = 0o177777
#: ``dev_t`` is 64 bits on Linux.
_MAX_RDEV = 2**64 - 1
#: Largest |mtime| in seconds whose nanoseconds still fit the signed 64 bits of a timespec.
_MAX_SECONDS = 2**63 // _NS - 1
_UNSIGNED = re.compile(r"[0-9]{1,20}")
_TIME = re.compile(r"(-?[0-9]{1,20})(?:\.([0-9]{1,9}))?")


@dataclass(frozen=True)
class Attr:
    """The POSIX attributes of one file, directory, symlink or special file.

    ``mode`` is the full ``st_mode`` (type bits agree with ``kind``). ``meta`` is the
    object's whole user metadata, so keys cosfs does not know survive a chmod or utimens.
    ``link_target`` is the target of a symlink when it has been read, else ``None``.
    """

    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    etag: str = ""
    content_type: Optional[str] = None
    meta: Mapping[str, str] = field(default_factory=dict, hash=False)
    link_target: Optional[str] = None
    #: The stored change and access times (``None``: not stored; read from ``meta`` when
    #: not given). What ``stat`` shows is ``change_ns`` and ``access_ns``.
    ctime_ns: Optional[int] = None
    atime_ns: Optional[int] = None
    #: The link count to show; 0: the kind's usual (2 for a directory, 1 otherwise).
    nlink: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        if not _type_agrees(self.kind, stat.S_IFMT(self.mode)):
            raise ValueError(
                f"mode {self.mode:#o} does not carry the type bits of a {self.kind}"
            )
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))
        if self.ctime_ns is None and META_CTIME in self.meta:
            object.__setattr__(self, "ctime_ns", _time_ns(self.meta, META_CTIME))
        if self.atime_ns is None and META_ATIME in self.meta:
            object.__setattr__(self, "atime_ns", _time_ns(self.meta, META_ATIME))

    @property
    def is_dir(self) -> bool:
        return self.kind == DIR

    @property
    def rdev(self) -> int:
        """The device number of a character or block device (``meta["rdev"]``), else 0."""
        if self.kind != SPECIAL:
            return 0
        return _unsigned(self.meta, META_RDEV, _MAX_RDEV) or 0

    @property
    def change_ns(self) -> int:
        """ctime as shown: the stored one, but never earlier than mtime (a write changes mtime
        alone, and a change of the data is a change of the file)."""
        return self.mtime_ns if self.ctime_ns is None else max(self.ctime_ns, self.mtime_ns)

    @property
    def access_ns(self) -> int:
        """atime as shown: the one a utimens stored, else mtime (reads never update it)."""
        return self.mtime_ns if self.atime_ns is None else self.atime_ns

    def to_stat(self) -> Dict[str, int]:
        """The stat dict for the FUSE binding (run with ``use_ns=True``): times are int
        nanoseconds, and no value is ever ``None``."""
        return {
            "st_mode": self.mode,
            "st_nlink": self.nlink or (2 if self.kind == DIR else 1),
            "st_uid": self.uid,
            "st_gid": self.gid,
            "st_size": self.size,
            "st_blocks": -(-self.size // 512),
            "st_blksize": BLOCK_SIZE,
            "st_rdev": self.rdev,
            "st_atime": self.access_ns,
            "st_mtime": self.mtime_ns,
            "st_ctime": self.change_ns,
        }


@dataclass(frozen=True)
class AttrDefaults:
    """The owner and permissions of objects that carry none, from the mount's options."""

    uid: int
    gid: int
    umask: int = 0o022

    def __post_init__(self) -> None:
        if not 0 <= self.umask <= 0o777:
            raise ValueError(f"umask must be within 0..0o777, not {self.umask:#o}")

    @property
    def file_mode(self) -> int:
        """Permission bits of a file without a stored mode."""
        return 0o666 & ~self.umask

    @property
    def dir_mode(self) -> int:
        """Permission bits of a directory without a stored mode."""
        return 0o777 & ~self.umask


def attr_from_info(
    info: ObjectInfo, defaults: AttrDefaults, is_dir: Optional[bool] = None
) -> Attr:
    """The attributes of ``info``, read COSFS-style from its metadata, defaults elsewhere.

    ``is_dir`` says whether the object is a directory when the caller knows (it stat'ed
    a ``dir/`` key, say); ``None`` infers it from the key, ``info.is_dir``, the mode's type
    bits and the Content-Type. A key ending in ``/`` is always a directory.
    ``info.meta is None`` (a list page) gives the defaults and Last-Modified.
    """
    meta: Metadata = info.meta or {}
    stored_mode = _unsigned(meta, META_MODE, _MAX_MODE)
    if stored_mode is None:
        stored_mode = _unsigned(meta, META_PERMISSIONS, _MAX_MODE)
    kind = _kind_of(info, stored_mode, is_dir)
    if stored_mode is None:
        permissions = defaults.dir_mode if kind == DIR else defaults.file_mode
    else:
        permissions = stat.S_IMODE(stored_mode)
    type_bits = _type_of(stored_mode) if kind == SPECIAL else TYPE_BITS[kind]
    uid = _first_id(meta, META_UID, META_OWNER, defaults.uid)
    gid = _first_id(meta, META_GID, META_GROUP, defaults.gid)
    mtime_ns = _time_ns(meta, META_MTIME)
    return Attr(
        kind=kind,
        mode=type_bits | permissions,
        uid=uid,
        gid=gid,
        size=info.size,
        mtime_ns=info.mtime_ns if mtime_ns is None else mtime_ns,
        etag=info.etag,
        content_type=info.content_type,
        meta=meta,
    )


def implicit_dir_attr(defaults: AttrDefaults, mtime_ns: int) -> Attr:
    """The attributes of a directory that exists only as a key prefix (no marker object).

    Such a directory has no time of its own; ``mtime_ns`` is the caller's choice (the mount's
    start time for one found in COS, now for one this mount just emptied), never the epoch:
    a directory dated 1 January 1970 looks broken and sorts wrongly.
    """
    return Attr(
        kind=DIR,
        mode=stat.S_IFDIR | defaults.dir_mode,
        uid=defaults.uid,
        gid=defaults.gid,
        size=0,
        mtime_ns=mtime_ns,
    )


def root_attr(defaults: AttrDefaults, mtime_ns: int) -> Attr:
    """The attributes of the mount's root directory (``mtime_ns``: usually the mount time)."""
    return implicit_dir_attr(defaults, mtime_ns)


def meta_for(
    mode: int, uid: int, gid: int, mtime_ns: int, base: Optional[Metadata] = None,
    ctime_ns: Optional[int] = None, atime_ns: Optional[int] = None,
) -> Dict[str, str]:
    """The user metadata to store for these attributes: ``base`` (other keys kept) with
    ``mode``, ``uid``, ``gid``, ``mtime`` set COSFS-style and ``mtime-nsec`` set; ``ctime``
    and ``atime`` the same way when given (``None``: kept as ``base`` has them).

    ``mtime-nsec`` is left out when the nanoseconds are 0, except that it is written as
    ``"0"`` when ``base`` had it: the JSON API's ``update`` merges metadata, so a key we
    merely dropped would survive there with the old nanoseconds.
    """
    meta = dict(base or {})
    meta[META_MODE] = str(mode)
    meta[META_UID] = str(uid)
    meta[META_GID] = str(gid)
    _put_time(meta, META_MTIME, mtime_ns)
    if ctime_ns is not None:
        _put_time(meta, META_CTIME, ctime_ns)
    if atime_ns is not None:
        _put_time(meta, META_ATIME, atime_ns)
    return meta


def _put_time(meta: Dict[str, str], key: str, time_ns: int) -> None:
    seconds, nanoseconds = divmod(time_ns, _NS)
    meta[key] = str(seconds)
    if nanoseconds or f"{key}-nsec" in meta:
        meta[f"{key}-nsec"] = str(nanoseconds)


def meta_of(attr: Attr) -> Dict[str, str]:
    """``meta_for`` the fields of ``attr``, keeping the rest of its metadata."""
    return meta_for(attr.mode, attr.uid, attr.gid, attr.mtime_ns, base=attr.meta,
                    ctime_ns=attr.ctime_ns, atime_ns=attr.atime_ns)


def with_changes(attr: Attr, **fields: Any) -> Attr:
    """A copy of ``attr`` with ``fields`` replaced. A ``mode`` without type bits gets the
    kind's; a new ``kind`` alone keeps the permission bits."""
    kind = fields.get("kind", attr.kind)
    mode = fields.get("mode", stat.S_IMODE(attr.mode) if "kind" in fields else attr.mode)
    if stat.S_IFMT(mode) == 0 and kind in TYPE_BITS:
        mode |= TYPE_BITS[kind]
    fields["mode"] = mode
    return dataclasses.replace(attr, **fields)


def _kind_of(info: ObjectInfo, stored_mode: Optional[int], is_dir: Optional[bool]) -> str:
    """The kind: the caller's ``is_dir`` when given (a non-directory's kind then still comes
    from the type bits), else the type bits, else what the object says of itself."""
    if info.key.endswith("/") or is_dir:
        return DIR
    type_bits = _type_of(stored_mode)
    if type_bits == stat.S_IFDIR and is_dir is None:
        return DIR
    if type_bits == stat.S_IFLNK:
        return SYMLINK
    if type_bits in SPECIAL_TYPES and info.size == 0:
        return SPECIAL
    if type_bits or is_dir is not None:
        return FILE
    if info.is_dir or _is_directory_type(info.content_type):
        return DIR
    return FILE


def _type_agrees(kind: str, type_bits: int) -> bool:
    if kind == SPECIAL:
        return type_bits in SPECIAL_TYPES
    return type_bits == TYPE_BITS[kind]


def _type_of(mode: Optional[int]) -> int:
    return stat.S_IFMT(mode) if mode is not None else 0


def _is_directory_type(content_type: Optional[str]) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == DIRECTORY_CONTENT_TYPE


def _unsigned(meta: Metadata, key: str, maximum: int) -> Optional[int]:
    """``meta[key]`` as a decimal number within 0..maximum, or ``None``."""
    text = meta.get(key)
    if text is None:
        return None
    text = text.strip()
    if not _UNSIGNED.fullmatch(text):
        return None
    value = int(text)
    return value if value <= maximum else None


def _first_id(meta: Metadata, key: str, fallback_key: str, default: int) -> int:
    for name in (key, fallback_key):
        value = _unsigned(meta, name, _MAX_ID)
        if value is not None:
            return value
    return default


def _time_ns(meta: Metadata, key: str) -> Optional[int]:
    """The time stored under ``key`` (and ``key-nsec``) in nanoseconds, or ``None``."""
    text = meta.get(key)
    if text is None:
        return None
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    seconds = int(match.group(1))
    if abs(seconds) > _MAX_SECONDS:
        return None
    fraction = match.group(2)
    nanoseconds = int(fraction.ljust(9, "0")) if fraction else 0
    extra = _unsigned(meta, f"{key}-nsec", _NS - 1)
    if extra is not None and not fraction:
        nanoseconds = extra
    return seconds * _NS + nanoseconds
