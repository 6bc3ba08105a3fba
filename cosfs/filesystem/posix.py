"""The filesystem's path semantics over the store: what each POSIX operation means on COS.

This is a plain object, testable without a kernel (``tests/unit/test_fs.py`` drives it over
an in-memory store); the FUSE adapter (``cosfs.fuse_adapter.operations``) only converts arguments and errors.
Errors are ``CosfsError``s carrying the errno to report. Attribute lookups and their costs
live in ``cosfs.filesystem.lookup``, open files in ``cosfs.filesystem.open_files``, metadata
changes held after an upload in ``cosfs.filesystem.pending_meta``, subtree renames in
``cosfs.filesystem.tree``.
"""

from __future__ import annotations

import dataclasses
import errno
import heapq
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from cosfs.filesystem import tree
from cosfs.filesystem.lookup import Lookup
from cosfs.filesystem.open_files import OpenFiles
from cosfs.metadata import acl, paths, xattrs
from cosfs.metadata.attrs import (
    META_RDEV,
    SPECIAL,
    SPECIAL_TYPES,
    Attr,
    AttrDefaults,
    implicit_dir_attr,
    meta_for,
    meta_of,
)
from cosfs.store.interface import Store
from cosfs.wire.errors import CosError, CosfsError

log = logging.getLogger(__name__)

#: What ``statfs`` reports: COS has no capacity limit, so large round numbers.
BLOCK_SIZE = 4096
TOTAL_BLOCKS = 1 << 40
NAME_MAX = 255


class DirEntry(NamedTuple):
    """One entry of a directory listing."""

    name: str
    #: The type bits (``stat.S_IFMT``) if known without a request, else ``None``: "stat to know".
    type: Optional[int]
    #: The entry's attributes when the caches hold them (the kernel takes them with the name).
    attr: Optional[Attr]


def error(path: str, what: str, code: int) -> CosfsError:
    return CosfsError(f"{path}: {what}", code)


class CosFilesystem:
    """POSIX-like operations on paths of one mounted bucket (or bucket prefix)."""

    def __init__(
        self,
        store: Store,
        lookup: Lookup,
        files: OpenFiles,
        defaults: AttrDefaults,
        clock: Callable[[], float],
        io_pool: ThreadPoolExecutor,
        read_only: bool = False,
    ) -> None:
        self.store = store
        self.lookup = lookup
        self.files = files
        self.io_pool = io_pool  # copies and moves of a directory rename (shared with uploads)
        self.defaults = defaults
        self.clock = clock
        self.read_only = read_only
        self.mapper = lookup.mapper
        self.pending = files.pending

    # --- helpers ------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return int(self.clock() * 1e9)

    def _writable(self, path: str) -> None:
        if self.read_only:
            raise error(path, "read-only mount", errno.EROFS)

    def _parent_dir(self, path: str) -> None:
        """ENAMETOOLONG/EINVAL unless ``path`` can name an object, then ENOENT/ENOTDIR unless
        its parent is a directory: the name is checked first, before any cache or request."""
        self.mapper.check(path)
        parent = paths.parent(path)
        if self.getattr(parent).kind != "dir":
            raise error(parent, "not a directory", errno.ENOTDIR)

    def _local(self, path: str) -> Optional[Attr]:
        """What this mount knows of ``path`` that COS may not hold yet: an open file's
        attributes, or a held metadata change."""
        return self.files.attr_of(path) or self.pending.attr_of(path)

    def _find(self, path: str) -> Optional[Attr]:
        """What is at ``path`` (what this mount holds first), or ``None``."""
        return self._local(path) or self.lookup.find(path)

    def _absent(self, path: str) -> None:
        if self._find(path) is not None:
            raise error(path, "file exists", errno.EEXIST)

    # --- reading the namespace ----------------------------------------------------------

    def getattr(self, path: str) -> Attr:
        return self._local(path) or self.lookup.getattr(path)

    def readdir(self, path: str) -> List["DirEntry"]:
        """Every entry of directory ``path``, in name order, with what is known of it.

        The listing is fetched here (errors surface from this call); the entries carry the
        attributes the caches already hold, so the kernel can take them with the names
        (readdirplus) instead of asking for each one again."""
        attr = self.getattr(path)
        if attr.kind != "dir":
            raise error(path, "not a directory", errno.ENOTDIR)
        # New files first: one stored meanwhile is in the listing taken after (its upload
        # edits the cached listing); the other order could miss it in both.
        new_children = self.files.new_children(path)
        listing = self.lookup.listdir(path)
        new_files = sorted(name for name in new_children if name not in listing)
        return [self._entry(path, name, listing.kind(name))
                for name in heapq.merge(listing.names(), new_files)]

    def _entry(self, dir_path: str, name: str, kind: Optional[str]) -> "DirEntry":
        child = paths.join(dir_path, name)
        known = self._local(child) or self.lookup.known(child)
        if known is not None:
            return DirEntry(name, stat.S_IFMT(known.mode), known)
        if kind is None:  # created here and not yet uploaded, but no longer open
            return DirEntry(name, stat.S_IFREG, None)
        return DirEntry(name, stat.S_IFDIR if kind == "dir" else None, None)

    def readlink(self, path: str) -> str:
        attr = self.getattr(path)
        if attr.kind != "symlink":
            raise error(path, "not a symbolic link", errno.EINVAL)
        if attr.link_target is not None:
            return attr.link_target
        target = self.store.read_range(self.mapper.file_key(path), 0, 4096).decode("utf-8", "surrogateescape")
        self.lookup.learn(path, dataclasses.replace(attr, link_target=target))
        return target

    def statfs(self) -> Dict[str, int]:
        return {
            "f_bsize": BLOCK_SIZE, "f_frsize": BLOCK_SIZE, "f_blocks": TOTAL_BLOCKS,
            "f_bfree": TOTAL_BLOCKS, "f_bavail": TOTAL_BLOCKS, "f_files": 1 << 32,
            "f_ffree": 1 << 32, "f_favail": 1 << 32, "f_namemax": NAME_MAX,
        }

    def access(self, path: str, mode: int) -> None:
        """Existence only: permission bits are checked by the kernel (``default_permissions``)."""
        self.getattr(path)
        if mode & 2 and self.read_only:
            raise error(path, "read-only mount", errno.EROFS)

    # --- creating and removing ----------------------------------------------------------

    def mkdir(self, path: str, mode: int, uid: int, gid: int) -> None:
        self._writable(path)
        self._parent_dir(path)
        self._absent(path)
        mode = stat.S_IFDIR | (mode & 0o7777)
        mtime_ns = self._now_ns()
        meta = meta_for(mode, uid, gid, mtime_ns)
        self.store.create_dir(self.mapper.dir_key(path), meta)
        self.lookup.added(path, Attr(kind="dir", mode=mode, uid=uid, gid=gid, size=0, mtime_ns=mtime_ns, meta=meta))

    def rmdir(self, path: str) -> None:
        self._writable(path)
        if path == "/":
            raise error(path, "cannot remove the mount root", errno.EBUSY)
        if self.getattr(path).kind != "dir":
            raise error(path, "not a directory", errno.ENOTDIR)
        if self.files.new_children(path):
            raise error(path, "directory not empty", errno.ENOTEMPTY)
        self.store.delete_dir(self.mapper.dir_key(path))
        self.lookup.removed(path)
        self._keep_parent(path)

    def unlink(self, path: str) -> None:
        self._writable(path)
        attr = self.getattr(path)
        if attr.kind == "dir":
            raise error(path, "is a directory", errno.EISDIR)
        self.store.delete_file(self.mapper.file_key(path))
        self.pending.discard(path)
        self.files.unlinked(path)
        self.lookup.removed(path, tree=False)
        self._keep_parent(path)

    def symlink(self, path: str, target: str, uid: int, gid: int) -> None:
        self._writable(path)
        self._parent_dir(path)
        self._absent(path)
        self._put_node(path, "symlink", stat.S_IFLNK | 0o777, uid, gid, target.encode("utf-8", "surrogateescape"),
                       link_target=target)

    def _put_node(self, path: str, kind: str, mode: int, uid: int, gid: int, data: bytes,
                  extra_meta: Optional[Dict[str, str]] = None, link_target: Optional[str] = None) -> None:
        """Store a node made whole by one call (a symlink, or what ``mknod`` makes; never
        opened, never staged): one PUT of ``data`` with its metadata, and the new entry in
        the caches."""
        mtime_ns = self._now_ns()
        meta = {**meta_for(mode, uid, gid, mtime_ns), **(extra_meta or {})}
        info = self.store.put_object(self.mapper.file_key(path), data, meta, "application/octet-stream")
        self.lookup.added(path, Attr(kind=kind, mode=mode, uid=uid, gid=gid, size=len(data), mtime_ns=mtime_ns,
                                     etag=info.etag, meta=meta, link_target=link_target))

    def _keep_parent(self, path: str) -> None:
        """After ``path`` left its directory: a directory that existed only as the prefix of
        its keys (no ``dir/`` marker, as other tools write them) would vanish with its last
        entry. Give it a marker then, so it stays, as a directory on a disk does.

        The operation itself has succeeded by then: a failure here is logged, not reported.
        """
        try:
            self._mark_if_emptied(paths.parent(path))
        except CosfsError as failure:
            log.warning("could not keep the emptied directory %s: %s", paths.parent(path), failure)

    def _mark_if_emptied(self, parent: str) -> None:
        if parent == "/" or self.files.new_children(parent):
            return
        listing = self.lookup.known_listing(parent)
        if listing is not None and listing.entries:
            return
        dir_key = self.mapper.dir_key(parent)
        if self.store.stat(dir_key) is not None:
            return
        page = self.store.list_page(dir_key, max_keys=1)
        if page.files or page.dirs:
            return
        attr = self.lookup.known(parent) or implicit_dir_attr(self.defaults, self._now_ns())
        self.store.create_dir(dir_key, meta_for(attr.mode, attr.uid, attr.gid, attr.mtime_ns))
        self.lookup.learn(parent, attr)

    def link(self, path: str, target: str) -> None:
        raise error(path, "hard links are not supported on COS", errno.EPERM)

    def mknod(self, path: str, mode: int, rdev: int, uid: int, gid: int) -> None:
        """A FIFO, socket or device file (a regular file too, for a caller that makes one
        this way): an empty object whose stored mode carries the type, and a device its
        number (``rdev``), as s3fs stores them. Opening one is the kernel's business (a
        FIFO's pipe, a device's driver): cosfs only keeps the node. Any other type is EINVAL."""
        self._writable(path)
        self._parent_dir(path)
        type_bits = stat.S_IFMT(mode) or stat.S_IFREG
        if type_bits in SPECIAL_TYPES:
            kind = SPECIAL
        elif type_bits == stat.S_IFREG:
            kind = "file"
        else:
            raise error(path, f"mknod cannot make a node of type {type_bits:#o}", errno.EINVAL)
        self._absent(path)
        device = {META_RDEV: str(rdev)} if kind == SPECIAL and rdev else None
        self._put_node(path, kind, type_bits | (mode & 0o7777), uid, gid, b"", device)

    # --- files --------------------------------------------------------------------------

    def create(self, path: str, mode: int, uid: int, gid: int, owner: Optional[int] = None) -> int:
        """Create and open ``path``; ``owner`` is the calling process (see ``flush``)."""
        self._writable(path)
        self._parent_dir(path)
        existing = self._find(path)
        if existing is not None:
            if existing.kind == "dir":
                raise error(path, "is a directory", errno.EISDIR)
            return self.open(path, os.O_WRONLY | os.O_TRUNC, owner)
        attr = Attr(kind="file", mode=stat.S_IFREG | (mode & 0o7777), uid=uid, gid=gid, size=0,
                    mtime_ns=self._now_ns(), meta={})
        return self.files.create(path, attr, owner)

    def open(self, path: str, flags: int, owner: Optional[int] = None) -> int:
        """Open ``path``; ``owner`` is the calling process (see ``flush``)."""
        attr = self.getattr(path)
        if attr.kind == "dir":
            raise error(path, "is a directory", errno.EISDIR)
        if flags & os.O_ACCMODE and self.read_only:
            raise error(path, "read-only mount", errno.EROFS)
        return self.files.open(path, attr, flags, owner)

    def read(self, fh: int, size: int, offset: int) -> bytes:
        return self.files.read(fh, size, offset)

    def write(self, fh: int, data: bytes, offset: int) -> int:
        return self.files.write(fh, data, offset)

    def truncate(self, path: str, length: int) -> None:
        """Truncate through a handle of our own: the node cannot be released under us, and
        when no one else has the file open the new size is stored before we return."""
        self._writable(path)
        attr = self.getattr(path)
        if attr.kind == "dir":
            raise error(path, "is a directory", errno.EISDIR)
        fh = self.files.open(path, attr, os.O_WRONLY)
        try:
            self.files.truncate(fh, length)
            if self.files.only_holder(fh):
                self.files.flush(fh)
        finally:
            self.files.release(fh)

    def ftruncate(self, fh: int, length: int) -> None:
        """Truncate through an open handle (``ftruncate``, ``O_TRUNC`` handled at open)."""
        self._writable(self.files.handle(fh).node.path)
        self.files.truncate(fh, length)

    def flush(self, fh: int, caller: Optional[int] = None) -> None:
        """A ``close()`` of a descriptor of ``fh`` by process ``caller``: uploads what that
        handle changed, unless another process opened it (the opener's close, or the last
        close, uploads) or the file is empty with nothing written since."""
        self.files.flush(fh, caller)

    def fsync(self, fh: int) -> None:
        """Store the file's data, and apply its held metadata change: both are durable after."""
        self.files.fsync(fh)
        path = self.files.handle(fh).node.path
        if not self.pending.apply(path):
            raise error(path, "its new mode, owner or times could not be stored in COS (see the log)", errno.EIO)

    def release(self, fh: int) -> None:
        self.files.release(fh)

    # --- attributes ---------------------------------------------------------------------

    def chmod(self, path: str, mode: int) -> None:
        attr = self.getattr(path)
        new_mode = stat.S_IFMT(attr.mode) | (mode & 0o7777)
        # A stored access ACL follows the new bits, as on a disk (``cosfs.metadata.acl``).
        self._set_attr(path, attr, mode=new_mode, meta=acl.meta_after_chmod(attr.meta, new_mode))

    def chown(self, path: str, uid: int, gid: int) -> None:
        attr = self.getattr(path)
        self._set_attr(path, attr, uid=attr.uid if uid < 0 else uid, gid=attr.gid if gid < 0 else gid)

    def utimens(self, path: str, mtime_ns: Optional[int], atime_ns: Optional[int] = None) -> None:
        """Set the modification and access times (``None``: leave it). Only an access time
        set here is stored: reads never change it (noatime)."""
        changes = {}
        if mtime_ns is not None:
            changes["mtime_ns"] = mtime_ns
        if atime_ns is not None:
            changes["atime_ns"] = atime_ns
        if changes:
            self._set_attr(path, self.getattr(path), **changes)

    def _set_attr(self, path: str, attr: Attr, limit_meta: bool = False, **changes: Any) -> None:
        """Change ``path``'s attributes, and its ctime with them: stored in COS (or held, or
        carried by the upload of an open file), and held in memory for the mount root.

        ``limit_meta`` (an xattr change, which can grow the metadata by kilobytes): E2BIG,
        before any request, when COS would refuse the metadata as too large. It is counted
        as it would be stored, with the ``ctime`` this change adds."""
        new = dataclasses.replace(attr, **changes, ctime_ns=self._now_ns())
        meta = meta_of(new)
        if limit_meta:
            self._check_meta_size(path, meta)
        self._writable(path)
        changed = dataclasses.replace(new, meta=meta)
        if self.files.update_attr(path, **{**changes, "ctime_ns": new.ctime_ns, "meta": meta}) is not None:
            return  # an open file being written: applied by its upload
        if path == "/":
            self.lookup.learn(path, changed)  # the root has no object: held for the mount's lifetime
            return
        key = self.mapper.dir_key(path) if attr.kind == "dir" else self.mapper.file_key(path)
        if attr.kind == "file" and self.pending.hold(path, key, changed):
            self.lookup.learn(path, changed, stored=False)
            self.files.stored_attr(path, changed)
            return  # stored by the next rename or upload, else by one copy when the delay ends
        try:
            self.store.set_meta(key, meta, attr.content_type)
        except CosError as failure:
            if attr.kind != "dir" or failure.errno != errno.ENOENT:
                raise
            self.store.create_dir(key, meta)  # a directory without marker gets one
        self.lookup.learn(path, changed)
        self.files.stored_attr(path, changed)

    # --- extended attributes ------------------------------------------------------------

    def getxattr(self, path: str, name: str) -> bytes:
        """Attribute ``name`` of ``path`` (ENODATA if none), from the metadata its attributes
        came with: no request when they are cached, as after the ``stat`` that ``ls -l`` makes
        before it asks for ``security.selinux`` and ``system.posix_acl_access``."""
        return xattrs.value_of(self.getattr(path).meta, name, path)

    def listxattr(self, path: str) -> List[str]:
        return sorted(xattrs.decode(self.getattr(path).meta))

    def setxattr(self, path: str, name: str, value: bytes, flags: int) -> None:
        """Set attribute ``name``: EEXIST with XATTR_CREATE if it exists, ENODATA with
        XATTR_REPLACE if not. Stored like a chmod: in place (a copy onto itself, never the
        data again), held after an upload, or with the upload of a file being written.
        An access ACL sets the mode's bits too, and is not kept when the mode says it all
        (``cosfs.metadata.acl``)."""
        attr = self.getattr(path)
        meta = xattrs.with_attribute(attr.meta, name, value, flags, path)
        if name != acl.ACCESS:
            self._set_attr(path, attr, limit_meta=True, meta=meta)
            return
        mode, equivalent = acl.mode_of(acl.parse(value, path), attr.mode)
        if equivalent:
            meta = xattrs.without_attribute(meta, name, path)
        self._set_attr(path, attr, limit_meta=True, meta=meta, mode=mode)

    def removexattr(self, path: str, name: str) -> None:
        attr = self.getattr(path)
        self._set_attr(path, attr, limit_meta=True, meta=xattrs.without_attribute(attr.meta, name, path))

    def _check_meta_size(self, path: str, meta: Dict[str, str]) -> None:
        size = xattrs.meta_bytes(meta)
        limit = self.store.limits.max_meta_bytes
        if size > limit:
            raise error(path, f"extended attributes refused: the object's metadata would be {size} bytes, "
                              f"and COS keeps at most {limit}", errno.E2BIG)

    # --- rename -------------------------------------------------------------------------

    def rename(self, old: str, new: str) -> None:
        self._writable(old)
        self.mapper.check(new)  # a name COS cannot hold is refused before any request
        if old == new:
            return
        if new.startswith(old.rstrip("/") + "/"):
            raise error(new, "cannot move a directory into itself", errno.EINVAL)
        source = self.getattr(old)
        self._parent_dir(new)
        target = self._find(new)
        if source.kind == "dir":
            self._rename_dir(old, new, target)
        else:
            self._rename_file(old, new, target)
            self.pending.discard(new)  # the object it replaced is gone, and its held change
        self.files.moved(old, new)
        self.lookup.moved(old, new, source.kind, source if source.kind != "dir" else None)
        if paths.parent(old) != paths.parent(new):
            self._keep_parent(old)

    def _rename_file(self, old: str, new: str, target: Optional[Attr]) -> None:
        if target is not None and target.kind == "dir":
            raise error(new, "is a directory", errno.EISDIR)
        node = self.files.node(old)
        if node is not None:
            self.files.flush_node(node)
            if not node.exists_remotely:
                return
        held = self.pending.take(old)
        if held is None:
            self.store.move(self.mapper.file_key(old), self.mapper.file_key(new))
            return
        try:  # the copy of the move carries the held metadata: no request of its own
            self.store.move(self.mapper.file_key(old), self.mapper.file_key(new),
                            meta=held.attr.meta, content_type=held.attr.content_type)
        except BaseException:
            self.pending.restore(held)
            raise
        self.pending.finished(held)

    def _rename_dir(self, old: str, new: str, target: Optional[Attr]) -> None:
        if target is not None:
            if target.kind != "dir":
                raise error(new, "not a directory", errno.ENOTDIR)
            if self.lookup.listdir(new).entries or self.files.new_children(new):
                raise error(new, "directory not empty", errno.ENOTEMPTY)
        self.files.flush_under(old)
        self.pending.apply_under(old)
        tree.move_tree(self.store, self.mapper.dir_key(old), self.mapper.dir_key(new), self.io_pool)
