"""Stage a file's bytes on local disk and store them in COS without ever losing them.

``StagingArea`` owns the staging directory and the free-space reserve (``ensure_diskfree``);
``StagedFile`` holds one file's bytes there. ``Uploader`` stores bytes [0, size) of a staged
file as one object: one PUT, or a multipart upload that is aborted on any failure, so the
object in COS is always either the old one or the complete new one. The uploader only asks
its source for byte ranges, so a streaming producer can feed ``MultipartUpload`` later.
A failed upload leaves the staged file alone: the caller ``keep()``s it and reports the error.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Protocol, Tuple

from cosfs.errors import ConfigError, CosError, CosfsError
from cosfs.model import Metadata, ObjectInfo, PartInfo, Store, UploadSession, plan_parts

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class StagingArea:
    """The directory staged files live in, and the free space they must leave on its disk.

    Nothing found in the directory at start is removed: after a failed upload it is the only
    copy of someone's data. Each such file is named in a warning and listed in ``leftovers``.
    """

    def __init__(self, directory: Path, min_free_bytes: int = GiB) -> None:
        self.directory = Path(directory)
        self.min_free_bytes = min_free_bytes
        self.leftovers: Tuple[Path, ...] = self._open_directory()

    def _open_directory(self) -> Tuple[Path, ...]:
        try:
            self.directory.mkdir(mode=0o700, parents=True)
            os.chmod(self.directory, 0o700)
            return ()
        except FileExistsError:
            pass
        if self.directory.stat().st_mode & 0o077:
            log.warning("staging directory %s is open to other users; staged data is readable "
                        "only by its owner, but names are visible", self.directory)
        found = tuple(sorted(self.directory.iterdir()))
        for path in found:
            log.warning("staging directory %s holds %s (%d bytes) from an earlier run; it may be "
                        "the data of an upload that failed, and cosfs leaves it alone",
                        self.directory, path.name, _size_of(path))
        return found

    def free_bytes(self) -> int:
        """Bytes an unprivileged writer can still use on the staging filesystem."""
        try:
            stats = os.statvfs(self.directory)
        except OSError as error:
            raise _local_error(error, f"staging directory {self.directory}") from error
        return stats.f_bavail * stats.f_frsize

    def check_space(self, extra_bytes: int) -> None:
        """Raise ENOSPC if ``extra_bytes`` more would eat into the ``min_free_bytes`` reserve."""
        free = self.free_bytes()
        if free - extra_bytes < self.min_free_bytes:
            raise CosfsError(
                f"staging directory {self.directory} has {free} bytes free; {extra_bytes} more "
                f"would leave less than the {self.min_free_bytes} bytes option ensure_diskfree "
                "keeps free",
                errno.ENOSPC,
            )

    def create(self, label: str) -> "StagedFile":
        """A new empty staged file; ``label`` (the object key) appears only in names and logs."""
        stem = _UNSAFE_NAME.sub("_", label.rstrip("/").rsplit("/", 1)[-1])[:40] or "object"
        try:
            fd, name = tempfile.mkstemp(prefix=f"{stem}.", suffix=".staged", dir=self.directory)
        except OSError as error:
            raise _local_error(error, f"staging directory {self.directory}") from error
        log.debug("staging %r in %s", label, name)
        return StagedFile(self, Path(name), fd, label)


class StagedFile:
    """One file's bytes on local disk: positional reads and writes on one descriptor.

    Reads and writes run concurrently (``os.pread``/``os.pwrite``); ``truncate`` and
    ``discard`` wait for them and run alone, so ``size`` always equals the file's length and a
    closed descriptor number is never used again by a late reader.
    """

    def __init__(self, area: StagingArea, path: Path, fd: int, label: str) -> None:
        self.path = path
        self.label = label
        self._area = area
        self._cond = threading.Condition(threading.Lock())
        self._fd: Optional[int] = fd  # guarded by self._cond
        self._size = 0  # guarded by self._cond
        self._users = 0  # guarded by self._cond
        self._exclusive = False  # guarded by self._cond
        self._kept = False  # guarded by self._cond

    @property
    def size(self) -> int:
        with self._cond:
            return self._size

    @property
    def kept(self) -> bool:
        with self._cond:
            return self._kept

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; a gap after the current end becomes a sparse hole."""
        end = offset + len(data)
        with self._cond:
            growth = min(len(data), max(0, end - self._size))
        if growth:
            self._area.check_space(growth)
        with self._shared() as fd:
            view = memoryview(data)
            while view:
                done = self._io(os.pwrite, fd, view, offset + len(data) - len(view))
                view = view[done:]
            with self._cond:
                self._size = max(self._size, end)
        return len(data)

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only at the end of the file."""
        with self._shared() as fd:
            with self._cond:
                end = min(offset + length, self._size)
            pieces: List[bytes] = []
            while offset < end:
                piece = self._io(os.pread, fd, end - offset, offset)
                if not piece:
                    break
                pieces.append(piece)
                offset += len(piece)
        return b"".join(pieces)

    def read_range(self, start: int, end: int) -> bytes:
        """Exactly bytes [start, end): what the uploader sends. A short file is an error, as
        sending fewer bytes would store a corrupt object."""
        data = self.read(start, end - start)
        if len(data) != end - start:
            raise CosfsError(
                f"staging file {self.path} of {self.label!r} holds {self.size} bytes; bytes "
                f"{start}..{end} were expected",
                errno.EIO,
            )
        return data

    def truncate(self, length: int) -> None:
        """Cut or extend (with a sparse hole) the file to ``length`` bytes."""
        with self._alone() as fd:
            self._io(os.ftruncate, self._check_open(fd), length)
            with self._cond:
                self._size = length

    def fill(self, chunks: Iterable[bytes]) -> int:
        """Append ``chunks`` (a download) at the end; returns the number of bytes appended."""
        total = 0
        for chunk in chunks:
            total += self.write(self.size, chunk)
        return total

    def keep(self) -> Path:
        """Keep the file after an upload failed: ``discard()`` will no longer delete it."""
        with self._alone() as fd:
            self._io(os.fsync, self._check_open(fd))
            with self._cond:
                self._kept = True
                size = self._size
        log.warning("data of %r (%d bytes) is kept in %s: it is not stored in COS",
                    self.label, size, self.path)
        return self.path

    def discard(self, force: bool = False) -> None:
        """Close the file and delete it, unless kept; ``force`` deletes a kept file too (its
        data was stored by a later upload). Discarding twice does nothing."""
        with self._alone() as fd:
            if fd is None:
                return
            with self._cond:
                self._fd = None
                kept = self._kept
            os.close(fd)
        if force or not kept:
            self.path.unlink(missing_ok=True)
            if kept:
                log.info("data of %r kept in %s is now stored; deleted it", self.label, self.path)

    @contextmanager
    def _shared(self) -> Iterator[int]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            fd = self._check_open(self._fd)
            self._users += 1
        try:
            yield fd
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()

    @contextmanager
    def _alone(self) -> Iterator[Optional[int]]:
        """The descriptor (``None`` once discarded) with no other reader or writer running."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._users:
                self._cond.wait()
            fd = self._fd
        try:
            yield fd
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    def _check_open(self, fd: Optional[int]) -> int:
        if fd is None:
            raise CosfsError(f"staging file {self.path} of {self.label!r} was discarded", errno.EBADF)
        return fd

    def _io(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as error:
            raise _local_error(error, f"staging file {self.path} of {self.label!r}") from error


def _local_error(error: OSError, what: str) -> CosfsError:
    """A local disk failure as the errno the application sees (a quota counts as ENOSPC)."""
    code = errno.ENOSPC if error.errno in (errno.ENOSPC, errno.EDQUOT) else error.errno
    return CosfsError(f"{what}: {error.strerror}", code or errno.EIO)


def _size_of(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class UploadPolicy:
    """How the uploader cuts and paces uploads. At most ``parallel`` requests carry data at a
    time per ``Uploader``, which bounds its memory to parallel × max(part size, threshold)."""

    part_size: int = 8 * MiB
    multipart_threshold: int = 16 * MiB
    parallel: int = 4

    def __post_init__(self) -> None:
        if self.part_size < 1 or self.multipart_threshold < 0 or self.parallel < 1:
            raise ConfigError(f"bad upload policy {self}: sizes must be positive, parallel >= 1")


class ByteSource(Protocol):
    """What the uploader reads from: a size, and exact byte ranges (``StagedFile`` is one)."""

    @property
    def size(self) -> int: ...

    def read_range(self, start: int, end: int) -> bytes: ...


class MultipartUpload:
    """Sends the parts of one begun upload session, then completes it, or aborts it.

    A part's bytes are read in the worker just before they are sent, and ``send`` blocks while
    the shared ``slots`` are all taken, so only that many parts are ever in memory. ``send``
    raises as soon as an earlier part has failed.
    """

    def __init__(self, session: UploadSession, source: ByteSource, executor: ThreadPoolExecutor,
                 slots: threading.Semaphore) -> None:
        self.session = session
        self._source = source
        self._executor = executor
        self._slots = slots
        self._lock = threading.Lock()
        self._futures: List[Future] = []  # guarded by self._lock
        self._error: Optional[BaseException] = None  # guarded by self._lock

    def send(self, number: int, start: int, end: int) -> None:
        """Queue part ``number``: bytes [start, end) of the source."""
        self._raise_failure()
        self._slots.acquire()
        try:
            self._raise_failure()
            future = self._executor.submit(self._put, number, start, end)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._futures.append(future)
        future.add_done_callback(self._done)

    def finish(self) -> ObjectInfo:
        """Wait for every part, then complete; a transient failure of complete is retried once
        (the same parts again, so it cannot store anything else)."""
        with self._lock:
            futures = list(self._futures)
        wait(futures)
        self._raise_failure()
        parts = sorted((future.result() for future in futures), key=lambda part: part.number)
        try:
            return self.session.complete(parts)
        except CosError as error:
            if not error.transient:
                raise
            log.warning("completing upload of %r failed (%s); trying once more", self.session.key, error)
            return self.session.complete(parts)

    def abort(self) -> None:
        """Stop queued parts, wait for running ones, and discard the upload; the object is left
        as it was. A failing abort is logged, never raised: the caller has a better error."""
        with self._lock:
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        wait(futures)
        try:
            self.session.abort()
        except Exception as error:
            log.warning("could not abort upload %s of %r (%s); COS keeps its parts until the "
                        "bucket's lifecycle rule removes them", self.session.upload_id,
                        self.session.key, error)

    def _put(self, number: int, start: int, end: int) -> PartInfo:
        return self.session.put_part(number, self._source.read_range(start, end))

    def _done(self, future: Future) -> None:
        """Record a failure before freeing the slot, so the next ``send`` sees it."""
        if not future.cancelled() and future.exception() is not None:
            with self._lock:
                if self._error is None:
                    self._error = future.exception()
        self._slots.release()

    def _raise_failure(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error


class Uploader:
    """Stores a staged file as one object, by PUT or by multipart upload (see ``UploadPolicy``).

    The store's transport already repeats transient failures of each request; nothing is
    repeated here except one ``complete``. The caller must not call ``upload`` from a thread
    of ``executor`` (it would wait for itself).
    """

    def __init__(self, store: Store, policy: Optional[UploadPolicy] = None,
                 executor: Optional[ThreadPoolExecutor] = None) -> None:
        self.policy = policy or UploadPolicy()
        self._store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=self.policy.parallel, thread_name_prefix="cosfs-upload")
        self._slots = threading.BoundedSemaphore(self.policy.parallel)

    def close(self) -> None:
        """Stop the worker threads this uploader started (none if the executor was given)."""
        if self._own_executor:
            self._executor.shutdown(wait=True)

    def upload(self, key: str, staged: ByteSource, meta: Optional[Metadata] = None,
               content_type: Optional[str] = None) -> ObjectInfo:
        """Store bytes [0, staged.size) as ``key``. On failure the previous object is
        untouched, the error is raised, and ``staged`` is left as it was."""
        size = staged.size
        started = time.monotonic()
        limits = self._store.limits
        try:
            if size <= min(self.policy.multipart_threshold, limits.max_put_size):
                with self._slots:
                    info = self._store.put_object(key, staged.read_range(0, size), meta, content_type)
                parts = 1
            else:
                info, parts = self._multipart(key, staged, size, meta, content_type)
        except BaseException as error:
            log.warning("upload of %r (%d bytes) failed after %.1f s: %s",
                        key, size, time.monotonic() - started, error)
            raise
        log.info("uploaded %r: %d bytes, %d part(s), %.1f s", key, size, parts, time.monotonic() - started)
        return info

    def _multipart(self, key: str, staged: ByteSource, size: int, meta: Optional[Metadata],
                   content_type: Optional[str]) -> Tuple[ObjectInfo, int]:
        limits = self._store.limits
        plan = plan_parts(size, limits, self.policy.part_size)
        session = self._store.begin_upload(key, size, meta, content_type, plan.part_size)
        upload = MultipartUpload(session, staged, self._executor, self._slots)
        try:
            part_size = session.part_size or plan.part_size
            count = -(-size // part_size)
            if count > limits.max_parts:
                raise CosfsError(f"upload of {key!r} needs {count} parts of {part_size} bytes, more "
                                 f"than the {limits.max_parts} COS allows", errno.EFBIG)
            for index in range(count):
                upload.send(index + 1, index * part_size, min(size, (index + 1) * part_size))
            return upload.finish(), count
        except BaseException:
            upload.abort()
            raise
