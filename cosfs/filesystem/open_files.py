"""Open files: one ``FileNode`` per path shared by all its handles, staged writes, upload on flush.

The contract (SEMANTICS.md): ``close()`` and ``fsync()`` return only after the data is in
COS, or return the error with the data kept in the staging area and a log line naming the
file; an existing object is never deleted or truncated before its replacement is complete
(a PUT or a completed multipart upload replaces it in one step); reading a file open for
writing sees what was written; the size is right as soon as ``close()`` returns.

All handles of one path share a node, so two writers see each other's data and the last
flush uploads both. A new file lives only here until its first flush: a failed upload
leaves no empty object behind (COSFS creates one at open).

Locks: ``OpenFiles._lock`` (the table) is held only briefly and never while waiting for a
``FileNode.lock``, so a thread holding a node's lock may take the table lock; never two node
locks at once.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import logging
import mimetypes
import os
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from cosfs.data.reader import ObjectReader
from cosfs.data.staging import StagedFile, StagingArea
from cosfs.data.uploader import Uploader
from cosfs.filesystem.lookup import Lookup
from cosfs.metadata import paths
from cosfs.metadata.attrs import Attr, meta_for
from cosfs.store.interface import Store
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK = 8 * 1024 * 1024


class FileNode:
    """One open path: its attributes, and its data while being written."""

    def __init__(self, path: str, key: str, attr: Attr, exists_remotely: bool) -> None:
        self.lock = threading.RLock()
        self.path = path  # guarded by OpenFiles._lock (changed by rename)
        self.key = key  # guarded by OpenFiles._lock
        self.refs = 0  # guarded by OpenFiles._lock
        self.attr = attr  # guarded by self.lock; pending attributes while dirty
        self.exists_remotely = exists_remotely  # guarded by self.lock
        self.staged: Optional[StagedFile] = None  # guarded by self.lock
        self.reader: Optional[ObjectReader] = None  # guarded by self.lock
        self.dirty = not exists_remotely  # guarded by self.lock
        self.unlinked = False  # guarded by self.lock
        self.failed = False  # guarded by self.lock: the last upload failed, data kept

    @property
    def size(self) -> int:
        return self.staged.size if self.staged is not None else self.attr.size

    @property
    def visible(self) -> bool:
        """Whether the path shows in the namespace: not unlinked, and either stored in COS
        once or not yet refused by it (a new file whose upload failed was never stored)."""
        return not self.unlinked and (self.exists_remotely or not self.failed)


@dataclass
class Handle:
    node: FileNode
    append: bool


class OpenFiles:
    """The table of open files and every data operation on them."""

    def __init__(
        self,
        store: Store,
        lookup: Lookup,
        staging: StagingArea,
        uploader: Uploader,
        clock: Callable[[], float],
        reader_factory: Callable[[Store, str, int], ObjectReader] = ObjectReader,
    ) -> None:
        self.store = store
        self.lookup = lookup
        self.staging = staging
        self.uploader = uploader
        self.clock = clock
        self.reader_factory = reader_factory
        self._lock = threading.Lock()
        self._nodes: Dict[str, FileNode] = {}  # guarded by self._lock
        self._handles: Dict[int, Handle] = {}  # guarded by self._lock
        self._ids = itertools.count(1)

    # --- table --------------------------------------------------------------------------

    def node(self, path: str) -> Optional[FileNode]:
        with self._lock:
            return self._nodes.get(path)

    def _attach(self, path: str, make: Callable[[], FileNode], append: bool) -> int:
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                node = self._nodes[path] = make()
            node.refs += 1
            fh = next(self._ids)
            self._handles[fh] = Handle(node, append)
        return fh

    def only_holder(self, fh: int) -> bool:
        """Whether ``fh`` is the only open handle of its file."""
        with self._lock:
            return self._handles[fh].node.refs == 1

    def handle(self, fh: int) -> Handle:
        with self._lock:
            found = self._handles.get(fh)
        if found is None:
            raise CosfsError(f"no open file with handle {fh}", errno.EBADF)
        return found

    def open(self, path: str, attr: Attr, flags: int) -> int:
        """Open an existing file; ``O_TRUNC`` empties it (uploaded at flush)."""
        key = self.lookup.mapper.file_key(path)
        fh = self._attach(path, lambda: FileNode(path, key, attr, True), bool(flags & os.O_APPEND))
        if flags & os.O_TRUNC:
            self.truncate_node(self.handle(fh).node, 0)
        return fh

    def create(self, path: str, attr: Attr) -> int:
        """A new file that exists only here until its first flush."""
        key = self.lookup.mapper.file_key(path)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        attr = dataclasses.replace(attr, content_type=content_type)

        def make() -> FileNode:
            node = FileNode(path, key, attr, False)
            node.staged = self.staging.create(key)
            return node

        fh = self._attach(path, make, False)
        self.lookup.added(path, attr)
        return fh

    def dirty_summary(self) -> Tuple[int, int]:
        """(files, bytes) written through the mount and not yet stored in COS, for ``cosfs status``.

        Read without the files' locks, which an upload holds until it ends: the status must
        answer while a large file is being stored, and a figure a moment old serves it.
        """
        with self._lock:
            nodes = list(self._nodes.values())
        sizes = []
        for node in nodes:
            if node.dirty and not node.unlinked:
                staged = node.staged  # read once: release() may clear it meanwhile
                sizes.append(staged.size if staged is not None else node.attr.size)
        return len(sizes), sum(sizes)

    def new_children(self, dir_path: str) -> List[str]:
        """Names of files created in ``dir_path`` through this mount and not yet uploaded."""
        with self._lock:
            nodes = list(self._nodes.values())
        return [paths.basename(n.path) for n in nodes
                if paths.parent(n.path) == dir_path and not n.exists_remotely and n.visible]

    # --- data ---------------------------------------------------------------------------

    def read(self, fh: int, size: int, offset: int) -> bytes:
        node = self.handle(fh).node
        with node.lock:
            if node.staged is not None:
                return node.staged.read(offset, size)
            if node.reader is None:
                node.reader = self.reader_factory(self.store, node.key, node.attr.size)
            reader = node.reader
        return reader.read(offset, size)

    def write(self, fh: int, data: bytes, offset: int) -> int:
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            staged = self._ensure_staged(node)
            if handle.append:
                offset = staged.size
            written = staged.write(offset, data)
            self._touch(node)
        return written

    def truncate_node(self, node: FileNode, length: int) -> None:
        with node.lock:
            if length == 0 and node.staged is None:
                node.staged = self.staging.create(node.key)
            staged = self._ensure_staged(node)
            staged.truncate(length)
            self._touch(node)

    def _touch(self, node: FileNode) -> None:
        node.dirty = True
        node.reader = None
        node.attr = dataclasses.replace(node.attr, mtime_ns=int(self.clock() * 1e9), size=node.size)

    def _ensure_staged(self, node: FileNode) -> StagedFile:
        """The node's staging file, filled with the object's bytes the first time."""
        if node.staged is not None:
            return node.staged
        staged = self.staging.create(node.key)
        try:
            if node.exists_remotely and node.attr.size:
                self.staging.check_space(node.attr.size)
                staged.fill(self._download(node.key, node.attr.size))
        except BaseException:
            staged.discard()
            raise
        node.staged = staged
        return staged

    def _download(self, key: str, size: int) -> Iterator[bytes]:
        for start in range(0, size, DOWNLOAD_CHUNK):
            chunk = self.store.read_range(key, start, min(DOWNLOAD_CHUNK, size - start))
            if not chunk:
                return
            yield chunk

    # --- attributes ---------------------------------------------------------------------

    def update_attr(self, path: str, **changes) -> Optional[Attr]:
        """Change pending attributes of an open, dirty file (applied at upload).

        Returns the new attributes, or ``None`` when the file is not open and dirty (the
        caller then changes the object's metadata in COS).
        """
        node = self.node(path)
        if node is None:
            return None
        with node.lock:
            if not node.dirty:
                return None
            node.attr = dataclasses.replace(node.attr, **changes)
            return node.attr

    def stored_attr(self, path: str, attr: Attr) -> None:
        """The object of an open, clean file got new metadata in COS: handles see it at once."""
        node = self.node(path)
        if node is None:
            return
        with node.lock:
            if not node.dirty:
                node.attr = dataclasses.replace(attr, size=node.attr.size, etag=node.attr.etag)

    def attr_of(self, path: str) -> Optional[Attr]:
        """Attributes of an open file as the application sees them (pending size and times)."""
        node = self.node(path)
        if node is None:
            return None
        with node.lock:
            if not node.visible:
                return None
            return dataclasses.replace(node.attr, size=node.size)

    # --- upload -------------------------------------------------------------------------

    def flush(self, fh: int) -> None:
        self.flush_node(self.handle(fh).node)

    def flush_node(self, node: FileNode) -> None:
        """Upload the node's data if it changed; raise (data kept) if the upload fails."""
        with node.lock:
            if not node.dirty or node.unlinked:
                return
            staged = self._ensure_staged(node)
            attr = node.attr
            meta = meta_for(attr.mode, attr.uid, attr.gid, attr.mtime_ns, base=attr.meta)
            try:
                info = self.uploader.upload(node.key, staged, meta, attr.content_type)
            except CosfsError as error:
                node.failed = True
                log.error("upload of %s failed: %s; its data is kept in %s", node.path, error, staged.path)
                if not node.exists_remotely:
                    self.lookup.removed(node.path)  # never stored: it leaves the namespace now
                raise
            was_new = not node.exists_remotely
            node.dirty = node.failed = False
            node.exists_remotely = True
            node.attr = dataclasses.replace(attr, size=staged.size, etag=info.etag, meta=meta)
            if was_new:
                self.lookup.added(node.path, node.attr)
            else:
                self.lookup.learn(node.path, node.attr)

    def release(self, fh: int) -> None:
        """Close a handle; the last one uploads what is still dirty and frees the node."""
        with self._lock:
            handle = self._handles.pop(fh, None)
            if handle is None:
                return
            node = handle.node
            node.refs -= 1
            last = node.refs == 0
        if not last:
            return
        with node.lock:
            with self._lock:
                if node.refs:  # reopened (a truncate, another open) while we waited: theirs now
                    return
            if node.dirty and not node.unlinked and not node.failed:
                try:
                    self.flush_node(node)
                except CosfsError:
                    pass  # logged by flush_node with the staging path
            keep = node.dirty and not node.unlinked
            if node.staged is not None:
                if keep:
                    log.error("%s was closed without being stored; data kept in %s", node.path, node.staged.keep())
                node.staged.discard()  # closes the file; a kept file stays on disk
                node.staged = None
        with self._lock:
            if node.refs == 0 and self._nodes.get(node.path) is node:
                del self._nodes[node.path]

    def flush_under(self, dir_path: str) -> None:
        """Upload every dirty file below ``dir_path`` (before the directory is renamed)."""
        prefix = dir_path.rstrip("/") + "/"
        with self._lock:
            nodes = [n for p, n in self._nodes.items() if p.startswith(prefix)]
        for node in nodes:
            self.flush_node(node)

    def flush_all(self) -> List[str]:
        """Upload every dirty file (at unmount); returns the paths that could not be stored."""
        with self._lock:
            nodes = list(self._nodes.values())
        failed = []
        for node in nodes:
            try:
                self.flush_node(node)
            except CosfsError:
                failed.append(node.path)
        return failed

    # --- namespace changes of open files ------------------------------------------------

    def moved(self, old: str, new: str) -> None:
        """``old`` (a file or a directory) was renamed to ``new``: open nodes follow it."""
        with self._lock:
            for path in [p for p in self._nodes if p == old or p.startswith(old.rstrip("/") + "/")]:
                node = self._nodes.pop(path)
                node.path = new + path[len(old):]
                node.key = self.lookup.mapper.file_key(node.path)
                self._nodes[node.path] = node

    def unlinked(self, path: str) -> None:
        """``path`` was deleted: open handles keep reading staged data, nothing is uploaded."""
        node = self.node(path)
        if node is None:
            return
        with node.lock:
            node.unlinked = True
        with self._lock:
            if self._nodes.get(path) is node:
                del self._nodes[path]
