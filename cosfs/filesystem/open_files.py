"""Open files: one ``FileNode`` per path shared by all its handles, staged writes, uploads.

The write contract (SEMANTICS.md), enforced here and nowhere else:

- ``close()`` and ``fsync()`` return only after the data is in COS, or return the error
  with the data kept in the staging area (and its journal record), named in the log.
- An existing object is never deleted or truncated before its replacement is complete: a
  PUT or a completed multipart upload replaces it in one step, and an upload only ever
  sends a complete version of the file.
- A file whose write, truncate or staging failed is *poisoned*: every later flush, fsync
  and close of it returns that error and uploads nothing, until it is truncated to zero
  on purpose (``O_TRUNC``, ``truncate(0)``), which starts a new version. COS keeps the old
  object; the incomplete local data is discarded at the last close, with a log line.
- A flush (a ``close()`` of one descriptor) uploads only when the handle it closes changed
  the file since the last successful upload, and only when the closing process is the one
  that opened it: a child that inherited the descriptor (``(cmd1; cmd2) > f``) closes its
  copy without an upload, and the opener's close, or the last close of all, uploads once.
  A read-only handle's close never uploads.
- A file that is empty because it was just created or truncated to zero, with nothing
  written since, is not published by a flush: the shell's ``> f`` then ``dup2`` then
  ``close`` would otherwise store an empty object ahead of the data. The empty version
  reaches COS with the last close if nothing is ever written.
- A new file lives only here until its first upload: a failed upload leaves no empty
  object behind (COSFS creates one at open), and the name leaves the directory at once.
- A write into an existing object, where the store can copy parts, stages only the bytes
  written (``cosfs.data.sparse.SparseFile``) and downloads nothing; its upload
  (``cosfs.data.rebuild``) copies the unchanged parts from the object pinned to the ETag it
  was based on, so it too sends only a complete version, or fails (ESTALE) if the object
  changed meanwhile. Its reads may fetch the object's bytes: they run without the file's lock.

Versions: every change made through a handle bumps ``FileNode.version`` and stamps the
handle; ``stored_version`` is the version COS holds. So "this handle changed something not
yet stored" is ``handle.last_change > node.stored_version``.

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
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from cosfs.data import journal, rebuild
from cosfs.data.reader import ObjectReader
from cosfs.data.sparse import SparseFile
from cosfs.data.staging import StagedFile, StagingArea
from cosfs.data.stream_upload import Streams, StreamUpload
from cosfs.data.uploader import Uploader
from cosfs.filesystem.lookup import Lookup
from cosfs.filesystem.pending_meta import Held, PendingMeta
from cosfs.metadata import paths
from cosfs.metadata.attrs import Attr, meta_of
from cosfs.store.interface import ObjectInfo, Store
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK = 8 * 1024 * 1024

#: A file's staged data: a whole copy, or (a write into an existing object where COS can
#: copy parts) only the bytes written (``SparseFile``).
Staged = Union[StagedFile, SparseFile]


class FileNode:
    """One open path: its attributes, and its data while being written."""

    def __init__(self, path: str, key: str, attr: Attr, exists_remotely: bool) -> None:
        self.lock = threading.RLock()
        self.path = path  # guarded by OpenFiles._lock (changed by rename)
        self.key = key  # guarded by OpenFiles._lock
        self.refs = 0  # guarded by OpenFiles._lock
        self.attr = attr  # written under self.lock (read without it by attr_of); pending attributes while dirty
        self.exists_remotely = exists_remotely  # guarded by self.lock
        self.staged: Optional[Staged] = None  # guarded by self.lock
        self.reader: Optional[ObjectReader] = None  # guarded by self.lock
        #: Sending the file to COS while it is written (``cosfs.data.stream_upload``).
        self.stream: Optional[StreamUpload] = None  # guarded by self.lock
        #: Changes made here (a new file's creation is one); COS holds ``stored_version``.
        self.version = 0 if exists_remotely else 1  # guarded by self.lock
        self.stored_version = 0  # guarded by self.lock
        #: Just created or truncated to zero, nothing written since (not published by a flush).
        self.emptied = not exists_remotely  # guarded by self.lock
        self.unlinked = False  # guarded by self.lock
        self.failed = False  # guarded by self.lock: the last upload failed, data kept
        self.poisoned: Optional[CosfsError] = None  # guarded by self.lock: a write failed

    @property
    def size(self) -> int:
        return self.staged.size if self.staged is not None else self.attr.size

    @property
    def dirty(self) -> bool:
        """Whether the file holds changes COS does not have."""
        return self.version > self.stored_version

    @property
    def visible(self) -> bool:
        """Whether the path shows in the namespace: not unlinked, and either stored in COS
        once or not yet refused by it (a new file whose upload failed was never stored)."""
        return not self.unlinked and (self.exists_remotely or not self.failed)


@dataclass
class Handle:
    node: FileNode
    append: bool
    #: The process that opened it (``None``: cosfs itself, or unknown).
    owner: Optional[int] = None
    #: The node version of this handle's latest change (0: it changed nothing).
    last_change: int = 0
    #: The kernel may keep the pages it cached of this file (same version as its last open).
    keep_cache: bool = False


class OpenFiles:
    """The table of open files and every data operation on them."""

    def __init__(
        self,
        store: Store,
        lookup: Lookup,
        staging: StagingArea,
        uploader: Uploader,
        clock: Callable[[], float],
        reader_factory: Callable[..., ObjectReader] = ObjectReader,
        max_remembered_versions: int = 100_000,
        pending: Optional[PendingMeta] = None,
        streams: Optional[Streams] = None,
    ) -> None:
        self.store = store
        #: Starts the streaming upload of a file written from offset 0 (``None``: never streamed).
        self.streams = streams
        #: Metadata changes held after an upload; an upload of the file carries them.
        self.pending = pending or PendingMeta(store, lookup, None, "", 0)
        self.lookup = lookup
        self.staging = staging
        self.uploader = uploader
        self.clock = clock
        #: ``(store, key, size, etag=)`` to the reader of one open version.
        self.reader_factory = reader_factory
        self._lock = threading.Lock()
        #: The ETag each file had when it was last opened for reading here, newest last:
        #: the kernel may keep its cached pages of a file opened again at the same ETag.
        self._opened_versions: "OrderedDict[str, str]" = OrderedDict()  # guarded by self._lock
        self._max_remembered_versions = max_remembered_versions
        self._nodes: Dict[str, FileNode] = {}  # guarded by self._lock
        self._handles: Dict[int, Handle] = {}  # guarded by self._lock
        self._ids = itertools.count(1)

    # --- table --------------------------------------------------------------------------

    def node(self, path: str) -> Optional[FileNode]:
        with self._lock:
            return self._nodes.get(path)

    def _attach(self, path: str, make: Callable[[], FileNode], append: bool, owner: Optional[int]) -> int:
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                node = self._nodes[path] = make()
            node.refs += 1
            fh = next(self._ids)
            self._handles[fh] = Handle(node, append, owner)
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

    def open(self, path: str, attr: Attr, flags: int, owner: Optional[int] = None) -> int:
        """Open an existing file; ``O_TRUNC`` empties it (published with the new data, or
        at the last close if nothing is written)."""
        key = self.lookup.mapper.file_key(path)
        fh = self._attach(path, lambda: FileNode(path, key, attr, True), bool(flags & os.O_APPEND), owner)
        self._note_version(fh, key)
        if flags & os.O_TRUNC:
            try:
                self.truncate(fh, 0)
            except BaseException:
                self.release(fh)
                raise
        return fh

    def _note_version(self, fh: int, key: str) -> None:
        """Decide whether the kernel may keep its cache of the file just opened as ``fh``: only when
        COS holds the same version (ETag) as at its previous open here, and nothing is
        being written to it. An ETag is derived from the content, so the same ETag is the
        same bytes."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            etag = node.attr.etag if node.exists_remotely and not node.dirty and node.staged is None else ""
        with self._lock:
            previous = self._opened_versions.pop(key, None)
            if etag:
                self._opened_versions[key] = etag
                while len(self._opened_versions) > self._max_remembered_versions:
                    self._opened_versions.popitem(last=False)
        handle.keep_cache = bool(etag) and previous == etag

    def keeps_cache(self, fh: int) -> bool:
        """Whether the open reply of ``fh`` may tell the kernel to keep its cached pages."""
        return self.handle(fh).keep_cache

    def create(self, path: str, attr: Attr, owner: Optional[int] = None) -> int:
        """A new file that exists only here until it is first uploaded."""
        key = self.lookup.mapper.file_key(path)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        attr = dataclasses.replace(attr, content_type=content_type)

        def make() -> FileNode:
            node = FileNode(path, key, attr, False)
            node.staged = self.staging.create(key)
            node.stream = self._start_stream(node)
            return node

        fh = self._attach(path, make, False, owner)
        handle = self.handle(fh)
        with handle.node.lock:
            handle.last_change = handle.node.version
        self.lookup.added(path, attr)
        return fh

    def dirty_summary(self) -> Tuple[int, int]:
        """(files, bytes) written through the mount and not yet stored in COS, for ``cosfs status``:
        a staged file counts the bytes it holds (a stream's stored parts are freed, a write into
        an existing object holds only what it wrote).

        Read without the files' locks, which an upload holds until it ends: the status must
        answer while a large file is being stored, and a figure a moment old serves it.
        """
        with self._lock:
            nodes = list(self._nodes.values())
        sizes = []
        for node in nodes:
            if node.dirty and not node.unlinked:
                staged = node.staged  # read once: release() may clear it meanwhile
                sizes.append(staged.held_bytes if staged is not None else node.attr.size)
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
            if node.stream is not None and node.stream.touches_sent(offset, offset + size):
                self._end_stream(node, f"a read at offset {offset} of bytes already sent")
            sparse = node.staged if isinstance(node.staged, SparseFile) else None
            if sparse is None and node.staged is not None:
                return node.staged.read(offset, size)
            if sparse is None and node.reader is None:
                node.reader = self.reader_factory(self.store, node.key, node.attr.size, etag=node.attr.etag or None)
            reader = node.reader
            path = node.path
        try:
            if sparse is not None:  # may read COS: not under the node's lock
                return sparse.read(offset, size)
            return reader.read(offset, size)
        except CosfsError as error:
            if error.errno == errno.ESTALE:
                log.warning("%s changed in COS since it was opened; reads of this open file fail, "
                            "reopen it to read the new version", path)
                self.lookup.stats.invalidate(path)  # the next open asks COS for the new version
            raise

    def write(self, fh: int, data: bytes, offset: int) -> int:
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            with _poisoned_on_failure(node):
                if node.stream is not None:
                    self._stream_before_write(node, node.size if handle.append else offset, len(data))
                staged = self._ensure_staged(node)
                if handle.append:
                    offset = staged.size
                written = staged.write(offset, data)
                if node.stream is not None:
                    self._stream_wrote(node)
            node.emptied = False
            self._changed(node, handle)
        return written

    def truncate(self, fh: int, length: int) -> None:
        """Cut or extend the file open as ``fh``; truncating to zero starts a new version
        (and so lifts a failed write's poison)."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            with _poisoned_on_failure(node):
                if node.stream is not None and (length == 0 or node.stream.touches_sent(length, node.size)):
                    if length == 0:
                        self._drop_stream(node)  # a new version starts, streamed afresh below
                    else:
                        self._end_stream(node, f"a truncate to {length} bytes cuts bytes already sent")
                if length == 0 and isinstance(node.staged, SparseFile):
                    node.staged.discard(force=True)  # nothing of the old object is kept: a plain new version
                    node.staged = None
                if length == 0 and node.staged is None:
                    node.staged = self.staging.create(node.key, self._base_etag(node))
                staged = self._ensure_staged(node)
                staged.truncate(length)
                if length == 0 and node.stream is None:
                    node.stream = self._start_stream(node)
            if length == 0:
                node.poisoned = None
                node.emptied = True
            else:
                node.emptied = False
            self._changed(node, handle)

    def _changed(self, node: FileNode, handle: Optional[Handle]) -> None:
        """Under the node's lock: a change was made (through ``handle``, if any)."""
        node.version += 1
        if handle is not None:
            handle.last_change = node.version
        self._drop_reader(node)
        node.attr = dataclasses.replace(node.attr, mtime_ns=int(self.clock() * 1e9), size=node.size)
        if node.staged is not None and node.staged.state != journal.WRITING:
            node.staged.journal(state=journal.WRITING)

    @staticmethod
    def _drop_reader(node: FileNode) -> None:
        """Under the node's lock: free the read buffers of its reader."""
        if node.reader is not None:
            node.reader.close()
            node.reader = None

    @staticmethod
    def _base_etag(node: FileNode) -> Optional[str]:
        """The ETag of the object a staged copy of ``node`` replaces (``None``: no object)."""
        return (node.attr.etag or "") if node.exists_remotely else None

    def _ensure_staged(self, node: FileNode) -> Staged:
        """The node's staging file: where COS can copy parts of an object, a sparse one that
        downloads nothing; else filled with the object's bytes the first time."""
        if node.staged is not None:
            return node.staged
        if node.exists_remotely and node.attr.size and node.attr.etag and self.store.limits.part_copy:
            node.staged = SparseFile(self.staging.create(node.key, node.attr.etag), node.attr.size,
                                     lambda key, size, etag: self.reader_factory(self.store, key, size, etag=etag))
            return node.staged
        staged = self.staging.create(node.key, self._base_etag(node))
        try:
            if node.exists_remotely and node.attr.size:
                self.staging.check_space(node.attr.size)
                staged.fill(self._download(node.key, node.attr.size))
        except BaseException:
            staged.discard(force=True)
            raise
        node.staged = staged
        return staged

    def _download(self, key: str, size: int) -> Iterator[bytes]:
        for start in range(0, size, DOWNLOAD_CHUNK):
            chunk = self.store.read_range(key, start, min(DOWNLOAD_CHUNK, size - start))
            if not chunk:
                return
            yield chunk

    # --- streaming (the logic is in cosfs.data.stream_upload) ----------------------------

    def _start_stream(self, node: FileNode) -> Optional[StreamUpload]:
        """Under the node's lock: a stream for its just emptied staging file, if streaming is on."""
        if self.streams is None or node.staged is None:
            return None
        return self.streams.start(node.key, node.staged)

    def _stream_before_write(self, node: FileNode, offset: int, length: int) -> None:
        """Under the node's lock: let the stream take a write (it may wait for the dirty
        budget); a write into bytes already sent ends streaming first."""
        stream = node.stream
        try:
            taken = stream.before_write(offset, length, node.size)
        except CosfsError:
            self._drop_stream(node)
            raise
        if not taken:
            self._end_stream(node, f"a write at offset {offset} changes bytes already sent")

    def _stream_wrote(self, node: FileNode) -> None:
        """Under the node's lock: a write landed; full parts go to the upload pool."""
        attr = node.attr
        try:
            node.stream.wrote(node.size, lambda: (meta_of(attr), attr.content_type))
        except CosfsError:
            self._drop_stream(node)
            raise

    def _end_stream(self, node: FileNode, why: str) -> None:
        """Under the node's lock: stop streaming before bytes already sent are changed or read.
        With nothing freed from the staging file the session is aborted and the file is
        staged whole again; otherwise the session is completed, so COS holds what was
        written so far, and the file goes on as an existing object (SEMANTICS.md)."""
        stream = node.stream
        if not stream.stop():
            self._drop_stream(node)
            log.info("%s: %s; streaming stopped, the file is staged whole until it is closed", node.path, why)
            return
        log.info("%s: %s, and no longer on local disk: storing what was written so far, then going on "
                 "as with any existing object", node.path, why)
        self._store(node)

    @staticmethod
    def _drop_stream(node: FileNode) -> None:
        """Under the node's lock: abort the node's stream, if any (its session too)."""
        stream, node.stream = node.stream, None
        if stream is not None:
            stream.abort()

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
            if not node.dirty or node.poisoned is not None:
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
        """Attributes of an open file as the application sees them (pending size and times).

        Read without the node's lock, which an upload holds for as long as the network
        takes: a ``stat`` during a 100 MiB upload waited for all of it. Each field is read
        whole (one attribute load each); the answer is what the file was a moment ago."""
        node = self.node(path)
        if node is None or not node.visible:
            return None
        attr, staged = node.attr, node.staged
        size = staged.size if staged is not None else attr.size
        return attr if size == attr.size else dataclasses.replace(attr, size=size)

    # --- upload -------------------------------------------------------------------------

    def flush(self, fh: int, caller: Optional[int] = None) -> None:
        """A ``close()`` of one descriptor of ``fh`` by process ``caller`` (see the module
        docstring for when it uploads); raise if the file is poisoned or the upload fails."""
        handle = self.handle(fh)
        node = handle.node
        with node.lock:
            self._raise_poison(node)
            if handle.last_change <= node.stored_version or node.unlinked:
                return  # this handle changed nothing COS lacks (a reader, say)
            if caller is not None and handle.owner is not None and caller != handle.owner:
                log.debug("close of %s by process %s, not its opener %s: upload deferred",
                          node.path, caller, handle.owner)
                return
            if node.emptied:
                log.debug("%s is empty with nothing written since: upload deferred to the last close", node.path)
                return
            self._store(node)

    def fsync(self, fh: int) -> None:
        """Store the file's changes now, whoever made them; raise if it cannot be done."""
        node = self.handle(fh).node
        with node.lock:
            self._raise_poison(node)
            if node.dirty and not node.unlinked:
                self._store(node)

    def flush_node(self, node: FileNode) -> None:
        """Store what is pending before the path changes (rename); a poisoned file's data
        is not a version to store, so it is left out (COS keeps the old object)."""
        with node.lock:
            if node.dirty and not node.unlinked and node.poisoned is None:
                self._store(node)

    @staticmethod
    def _raise_poison(node: FileNode) -> None:
        if node.poisoned is not None:
            raise CosfsError(f"{node.path}: an earlier write failed ({node.poisoned.message}); nothing was "
                             "stored and COS keeps the previous version", node.poisoned.errno)

    def _store(self, node: FileNode, drop_copy: bool = False) -> None:
        """Under the node's lock: upload its current version; raise (data kept) on failure.
        ``drop_copy``: the staging file goes once COS holds it (see ``_record_stored``)."""
        stream, node.stream = node.stream, None
        if stream is not None:
            if stream.begun:
                self._store_stream(node, stream)
                return
            stream.end()
        staged = self._ensure_staged(node)
        attr = node.attr
        version = node.version
        meta = meta_of(attr)
        staged.journal(state=journal.CLOSED, meta=dict(meta), content_type=attr.content_type,
                       upload_started=time.time())
        held = self.pending.take(node.path)  # its attributes are in node.attr: the upload carries them
        def on_session(upload_id: Optional[str]) -> None:
            staged.journal(upload_id=upload_id)

        try:
            if isinstance(staged, SparseFile):
                info = rebuild.store_version(self.uploader, self.store, staged.layout(), staged.read_local,
                                             meta, attr.content_type, on_session)
            else:
                info = self.uploader.upload(node.key, staged, meta, attr.content_type, on_session=on_session)
        except CosfsError as error:
            if held is not None:
                self.pending.restore(held)
            node.failed = True
            staged.journal(state=journal.FAILED)
            log.error("upload of %s failed: %s; its data is kept in %s", node.path, error, staged.path)
            if not node.exists_remotely:
                self.lookup.removed(node.path, tree=False)  # never stored: it leaves the namespace now
            raise
        self._record_stored(node, staged, attr, version, meta, info, held, drop_copy)

    def _store_stream(self, node: FileNode, stream: StreamUpload) -> None:
        """Under the node's lock: complete the node's streaming upload. A staging file with
        bytes freed is no copy of the file any more: it goes once the object is stored, and a
        failure poisons the file (nothing else could store it); otherwise a failure leaves it
        to be stored whole, like any failed upload."""
        staged = node.staged
        attr = node.attr
        version = node.version
        meta = meta_of(attr)
        staged.journal(state=journal.CLOSED, meta=dict(meta), content_type=attr.content_type)
        held = self.pending.take(node.path)
        try:
            info = stream.finish(meta, attr.content_type)
        except CosfsError as error:
            if held is not None:
                self.pending.restore(held)
            if stream.punched:
                node.poisoned = error
                log.error("streaming upload of %s failed: %s; COS keeps its previous version, and the part "
                          "of the data still staged is discarded at the last close", node.path, error)
            else:
                node.failed = True
                staged.journal(state=journal.FAILED)
                log.error("streaming upload of %s failed: %s; its data is kept in %s", node.path, error, staged.path)
            if not node.exists_remotely:
                self.lookup.removed(node.path, tree=False)
            raise
        self._record_stored(node, staged, attr, version, meta, info, held)
        if stream.punched:
            staged.discard(force=True)  # holes where the stored parts were: not a copy to read or resend
            node.staged = None

    def _record_stored(self, node: FileNode, staged: Staged, attr: Attr, version: int,
                       meta: Dict[str, str], info: ObjectInfo, held: Optional[Held],
                       drop_copy: bool = False) -> None:
        """Under the node's lock: COS now holds ``version`` of the node, as ``info`` says.

        The staging file is marked ``stored`` in its record, and kept to serve the open
        file's reads and writes; or, with ``drop_copy`` (the last handle is gone: a deferred
        upload at the last close, or at unmount), deleted with its record at once: a
        ``stored`` record, written only to be deleted a moment later, is not written. A
        crash between the upload and the deletion then leaves a ``closed`` record of data COS
        already holds, as a crash just before a ``stored`` record always could: recovery
        reads the object back, finds the same bytes and drops the copy (or, if another
        client replaced the object meanwhile, moves it to lost+found).
        """
        was_new = not node.exists_remotely
        node.stored_version = version
        node.failed = False
        node.exists_remotely = True
        node.attr = dataclasses.replace(attr, size=staged.size, etag=info.etag, meta=meta)
        if drop_copy:
            staged.discard(force=True)
            node.staged = None
        else:
            staged.journal(state=journal.STORED, base_etag=info.etag or "", upload_started=None)
            if isinstance(staged, SparseFile):
                staged.rebase(info.etag or "")
        if held is not None:
            self.pending.finished(held)
        self.pending.stored(node.path, info.etag)
        if was_new:
            self.lookup.added(node.path, node.attr)
        else:
            self.lookup.learn(node.path, node.attr)

    def release(self, fh: int) -> None:
        """Close a handle; the last one stores what is still pending and frees the node."""
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
            self._settle(node)
        with self._lock:
            if node.refs == 0 and self._nodes.get(node.path) is node:
                del self._nodes[node.path]

    def _settle(self, node: FileNode) -> None:
        """Under the node's lock, when no handle is left: store what is pending (a deferred
        close), then free the staging file, or keep it when its data is not in COS."""
        self._drop_reader(node)
        if node.poisoned is not None:
            self._drop_stream(node)
            if node.staged is not None:
                log.warning("discarding the incomplete data of %s (a write failed: %s); COS keeps its "
                            "previous version", node.path, node.poisoned.message)
                node.staged.discard(force=True)
                node.staged = None
            if not node.exists_remotely and not node.unlinked:
                self.lookup.removed(node.path, tree=False)  # never stored: the name goes
            return
        if node.dirty and not node.unlinked and not node.failed:
            try:
                self._store(node, drop_copy=True)  # discarded below anyway
            except CosfsError:
                pass  # logged by _store with the staging path
        self._drop_stream(node)
        if node.staged is not None:
            if node.dirty and not node.unlinked:
                log.error("%s was closed without being stored; its data is kept in %s for the next mount "
                          "(or cosfs recover) to store", node.path, node.staged.keep())
            node.staged.discard()  # closes the file; a kept file stays on disk
            node.staged = None

    def flush_under(self, dir_path: str) -> None:
        """Upload every dirty file below ``dir_path`` (before the directory is renamed)."""
        prefix = dir_path.rstrip("/") + "/"
        with self._lock:
            nodes = [n for p, n in self._nodes.items() if p.startswith(prefix)]
        for node in nodes:
            self.flush_node(node)

    def close_all(self) -> List[str]:
        """At unmount: store every pending file and free the staging files of those stored,
        whether or not the kernel released them; returns the paths that could not be stored
        (their data stays in the staging area, journalled for the next mount)."""
        with self._lock:
            nodes = list(self._nodes.values())
        failed = []
        for node in nodes:
            with node.lock:
                if node.poisoned is None and node.dirty and not node.unlinked:
                    try:
                        self._store(node)
                    except CosfsError:
                        failed.append(node.path)
                self._settle(node)
        return failed

    # --- namespace changes of open files ------------------------------------------------

    def moved(self, old: str, new: str) -> None:
        """``old`` (a file or a directory) was renamed to ``new``: open nodes follow it."""
        with self._lock:
            moved = []
            for path in [p for p in self._nodes if p == old or p.startswith(old.rstrip("/") + "/")]:
                node = self._nodes.pop(path)
                node.path = new + path[len(old):]
                node.key = self.lookup.mapper.file_key(node.path)
                self._nodes[node.path] = node
                moved.append(node)
        for node in moved:
            with node.lock:
                if node.stream is not None and not node.stream.begun:
                    node.stream.key = node.key  # a begun stream was completed before the rename
                if isinstance(node.staged, SparseFile) and not node.dirty:
                    # stored before the rename: its base was the old name's object; reads now
                    # go to the new name like any clean file's
                    node.staged.discard(force=True)
                    node.staged = None
                if node.staged is not None:
                    node.staged.journal(key=node.key)

    def unlinked(self, path: str) -> None:
        """``path`` was deleted: open handles keep reading staged data, nothing is uploaded."""
        node = self.node(path)
        if node is None:
            return
        with node.lock:
            node.unlinked = True
            self._drop_stream(node)
            if node.staged is not None:
                node.staged.journal(state=journal.UNLINKED)
        with self._lock:
            if self._nodes.get(path) is node:
                del self._nodes[path]


@contextmanager
def _poisoned_on_failure(node: FileNode) -> Iterator[None]:
    """Under the node's lock: mark ``node`` poisoned when the staging work inside fails."""
    try:
        yield
    except CosfsError as error:
        node.poisoned = error
        log.warning("a write to %s failed (%s): until it is truncated to zero, its closes report "
                    "the error and store nothing", node.path, error.message)
        raise
