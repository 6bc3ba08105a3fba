"""Stage a file's bytes on local disk, within a free-space reserve, until they are stored in COS.

``StagingArea`` owns this mount's staging directory and the reserve (``ensure_diskfree``);
``StagedFile`` holds one file's bytes there, with its journal record beside it
(``cosfs.data.journal``) saying which key the bytes belong to and what must become of them.
A failed upload leaves the staged file alone: the caller ``keep()``s it, so the data
survives a crash too and the next mount can store it.

The area also counts the bytes staged files hold (``max_cache_mb``): a write past the
bound fails with ENOSPC before it touches the disk, by an addition under a lock, beside
the ``statvfs`` allowance of ``check_space``. A streamed file (``cosfs.data.stream_upload``)
gives bytes back as its stored parts are punched out (``StagedFile.punch``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import logging
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from cosfs.data import journal
from cosfs.data.journal import DATA_SUFFIX, InstanceDirectory, Record
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: The most bytes written between two ``statvfs`` of the staging filesystem.
SPACE_ALLOWANCE = 64 * 1024 * 1024
GiB = 1024 * MiB
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: ``fallocate(2)`` modes: free the blocks of a range, keep the file's length.
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


class StagingArea:
    """This mount's staging directory, and the free space staged files must leave on its disk.

    ``root`` is the bucket's staging directory (``cache_dir/BUCKET``); each mount stages in
    its own locked subdirectory of it (``directory``), so a later mount or ``cosfs recover``
    can tell the files of a cosfs that is gone from those of one that runs. Loose files
    directly in ``root`` come from cosfs versions without a journal: nothing says which key
    they belong to, so they are left alone, named in a warning and listed in ``leftovers``.
    """

    def __init__(self, root: Path, min_free_bytes: int = GiB, bucket: str = "") -> None:
        self.root = Path(root)
        self.bucket = bucket or self.root.name
        self._space_lock = threading.Lock()
        self._allowance = 0  # bytes writes may still add before free space is asked again; guarded
        #: The most bytes staged files may hold (``max_cache_mb``; ``None``: no bound but the
        #: disk). Set once the area exists: its default is a share of the free space there.
        self.max_cache_bytes: Optional[int] = None
        self._staged_bytes = 0  # guarded by _space_lock: bytes written to staged files and not freed
        self.min_free_bytes = min_free_bytes
        self.leftovers: Tuple[Path, ...] = self._open_root()
        try:
            self._instance = InstanceDirectory(self.root)
        except OSError as error:
            raise _local_error(error, f"staging directory {self.root}") from error
        self.directory = self._instance.path

    def _open_root(self) -> Tuple[Path, ...]:
        try:
            self.root.mkdir(mode=0o700, parents=True)
            os.chmod(self.root, 0o700)
            return ()
        except FileExistsError:
            pass
        except OSError as error:
            raise _local_error(error, f"staging directory {self.root}") from error
        if self.root.stat().st_mode & 0o077:
            log.warning("staging directory %s is open to other users; staged data is readable "
                        "only by its owner, but names are visible", self.root)
        found = tuple(sorted(p for p in self.root.iterdir() if p.is_file()))
        for path in found:
            log.warning("staging directory %s holds %s (%d bytes) from an older cosfs; it may be "
                        "the data of an upload that failed, and cosfs leaves it alone",
                        self.root, path.name, _size_of(path))
        return found

    def close(self) -> None:
        """At unmount: give up this mount's directory (removed when nothing is left in it)."""
        self._instance.close()

    def free_bytes(self) -> int:
        """Bytes an unprivileged writer can still use on the staging filesystem."""
        try:
            stats = os.statvfs(self.directory)
        except OSError as error:
            raise _local_error(error, f"staging directory {self.directory}") from error
        return stats.f_bavail * stats.f_frsize

    def used_bytes(self) -> int:
        """Disk space the staged files take, as ``du`` counts it (a sparse hole takes none)."""
        total = 0
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    try:
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:
                        continue  # discarded while we counted
        except OSError as error:
            raise _local_error(error, f"staging directory {self.directory}") from error
        return total

    @property
    def min_free_bytes(self) -> int:
        return self._min_free_bytes

    @min_free_bytes.setter
    def min_free_bytes(self, value: int) -> None:
        with self._space_lock:
            self._min_free_bytes = value
            self._allowance = 0

    def check_space(self, extra_bytes: int) -> None:
        """Raise ENOSPC if ``extra_bytes`` more would eat into the ``min_free_bytes`` reserve.

        Free space is asked (``statvfs``) only once the writes since the last answer used
        up an allowance: half the room above the reserve, at most ``SPACE_ALLOWANCE``. A
        sequential write then costs one ``statvfs`` per 64 MiB instead of one per write,
        and the reserve still holds against everything but other writers filling the disk
        faster than that (their ENOSPC then fails the write itself, which is handled)."""
        with self._space_lock:
            if extra_bytes <= self._allowance:
                self._allowance -= extra_bytes
                return
            self._allowance = 0
        free = self.free_bytes()
        room = free - self.min_free_bytes
        if room >= extra_bytes:
            with self._space_lock:
                self._allowance = min((room - extra_bytes) // 2, SPACE_ALLOWANCE)
            return
        raise CosfsError(
            f"staging directory {self.directory} has {free} bytes free; {extra_bytes} more "
            f"would leave less than the {self.min_free_bytes} bytes option ensure_diskfree "
            "keeps free",
            errno.ENOSPC,
        )

    @property
    def staged_bytes(self) -> int:
        """Bytes the staged files hold by this area's count (what ``max_cache_mb`` bounds)."""
        with self._space_lock:
            return self._staged_bytes

    def reserve(self, nbytes: int) -> None:
        """Count ``nbytes`` more staged data, or raise ENOSPC when ``max_cache_mb`` would be
        passed: the bound holds without asking the disk anything (an addition under a lock)."""
        with self._space_lock:
            limit = self.max_cache_bytes
            if limit is not None and self._staged_bytes + nbytes > limit:
                held = self._staged_bytes
            else:
                self._staged_bytes += nbytes
                return
        raise CosfsError(
            f"staging directory {self.directory} holds {held} bytes of staged data; {nbytes} more "
            f"would pass the {limit} bytes option max_cache_mb allows",
            errno.ENOSPC,
        )

    def release(self, nbytes: int) -> None:
        """``nbytes`` of staged data were freed (stored and punched out, truncated, deleted)."""
        with self._space_lock:
            self._staged_bytes = max(0, self._staged_bytes - nbytes)

    def create(self, key: str, base_etag: Optional[str] = None) -> "StagedFile":
        """A new empty staged file for ``key``, journalled as ``writing``; ``base_etag`` is the
        ETag of the object it replaces (``None``: no object)."""
        stem = _UNSAFE_NAME.sub("_", key.rstrip("/").rsplit("/", 1)[-1])[:40] or "object"
        try:
            fd, name = tempfile.mkstemp(prefix=f"{stem}.", suffix=DATA_SUFFIX, dir=self.directory)
        except OSError as error:
            raise _local_error(error, f"staging directory {self.directory}") from error
        staged = StagedFile(self, Path(name), fd, key, Record(self.bucket, key, base_etag))
        try:
            staged.journal()
        except BaseException:
            staged.discard(force=True)
            raise
        log.debug("staging %r in %s", key, name)
        return staged


class StagedFile:
    """One file's bytes on local disk: positional reads and writes on one descriptor.

    Reads and writes run concurrently (``os.pread``/``os.pwrite``); ``truncate`` and
    ``discard`` wait for them and run alone, so ``size`` always equals the file's length and a
    closed descriptor number is never used again by a late reader.
    """

    def __init__(self, area: StagingArea, path: Path, fd: int, label: str, record: Record) -> None:
        self.path = path
        self.label = label
        self._area = area
        self._record = record  # guarded by self._journal_lock
        #: The record's file (its generation changes with every write: ``journal.replace_record``).
        self._record_path = journal.record_path(path)  # guarded by self._journal_lock
        self._journalled = False  # guarded by self._journal_lock: the record is on disk
        self._journal_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._fd: Optional[int] = fd  # guarded by self._cond
        self._size = 0  # guarded by self._cond
        self._users = 0  # guarded by self._cond
        self._exclusive = False  # guarded by self._cond
        self._kept = False  # guarded by self._cond
        #: Bytes counted in the area's ``staged_bytes`` for this file.
        self._charged = 0  # guarded by self._cond

    @property
    def size(self) -> int:
        with self._cond:
            return self._size

    @property
    def held_bytes(self) -> int:
        """Bytes this file holds on local disk: what was written, less what a stream sent
        and freed (a sparse file holds only its written ranges)."""
        with self._cond:
            return self._charged

    @property
    def kept(self) -> bool:
        with self._cond:
            return self._kept

    @property
    def state(self) -> str:
        """The journal state, without copying the record (asked on every write)."""
        with self._journal_lock:
            return self._record.state

    @property
    def record_path(self) -> Path:
        """The file holding the journal record now."""
        with self._journal_lock:
            return self._record_path

    @property
    def record(self) -> Record:
        """A copy of the journal record."""
        with self._journal_lock:
            return dataclasses.replace(self._record, meta=dict(self._record.meta))

    def journal(self, **changes: Any) -> None:
        """Change fields of the journal record and write it (only when something changed,
        or it was never written), as a new file replacing the previous one."""
        with self._journal_lock:
            updated = dataclasses.replace(self._record, **changes)
            if updated == self._record and self._journalled:
                return
            try:
                if self._journalled:
                    self._record_path = journal.replace_record(self._record_path, updated)
                else:
                    journal.write_record(self._record_path, updated)
            except OSError as error:
                raise _local_error(error, f"journal record {self._record_path} of {self.label!r}") from error
            self._record = updated
            self._journalled = True

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; a gap after the current end becomes a sparse hole."""
        end = offset + len(data)
        with self._cond:
            growth = min(len(data), max(0, end - self._size))
        if growth:
            self._area.check_space(growth)
            self._area.reserve(growth)
            with self._cond:
                self._charged += growth
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
                freed = max(0, self._charged - length)
                self._charged -= freed
        self._area.release(freed)

    def punch(self, start: int, end: int) -> bool:
        """Free the disk blocks of bytes [start, end) (stored in COS already), keeping the
        file's length: reads of the range then see zeros. Returns whether the filesystem
        could (``fallocate(FALLOC_FL_PUNCH_HOLE)``; without it the bytes stay on disk)."""
        if end <= start:
            return True
        with self._shared() as fd:
            if _fallocate is None or _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE,
                                                start, end - start) != 0:
                code = ctypes.get_errno() if _fallocate is not None else errno.ENOSYS
                log.info("could not free bytes %d..%d of staging file %s (%s); the staging area keeps "
                         "them until the upload ends", start, end, self.path, os.strerror(code))
                return False
            with self._cond:
                freed = min(self._charged, end - start)
                self._charged -= freed
        self._area.release(freed)
        return True

    def fill(self, chunks: Iterable[bytes]) -> int:
        """Append ``chunks`` (a download) at the end; returns the number of bytes appended."""
        total = 0
        for chunk in chunks:
            total += self.write(self.size, chunk)
        return total

    def keep(self) -> Path:
        """Keep the file after an upload failed: ``discard()`` will no longer delete it, and
        its journal record says ``failed``, so the next mount tries to store it again."""
        self.journal(state=journal.FAILED)
        with self._alone() as fd:
            self._io(os.fsync, self._check_open(fd))
            with self._cond:
                self._kept = True
                size = self._size
        log.warning("data of %r (%d bytes) is kept in %s: it is not stored in COS",
                    self.label, size, self.path)
        return self.path

    def discard(self, force: bool = False) -> None:
        """Close the file and delete it with its record, unless kept; ``force`` deletes a kept
        file too (its data was stored by a later upload). Discarding twice does nothing."""
        with self._alone() as fd:
            if fd is None:
                return
            with self._cond:
                self._fd = None
                kept = self._kept
                freed, self._charged = self._charged, 0
            os.close(fd)
            self._area.release(freed)
        if force or not kept:
            self.path.unlink(missing_ok=True)
            self.record_path.unlink(missing_ok=True)
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


def _load_fallocate() -> Optional[Callable[..., int]]:
    """libc's ``fallocate(2)``, or ``None`` where there is none (not Linux, no libc found)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        call = libc.fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


_fallocate = _load_fallocate()


def _local_error(error: OSError, what: str) -> CosfsError:
    """A local disk failure as the errno the application sees (a quota counts as ENOSPC)."""
    code = errno.ENOSPC if error.errno in (errno.ENOSPC, errno.EDQUOT) else error.errno
    return CosfsError(f"{what}: {error.strerror}", code or errno.EIO)


def _size_of(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0
