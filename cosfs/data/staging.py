"""Stage a file's bytes on local disk, within a free-space reserve, until they are stored in COS.

``StagingArea`` owns the staging directory and the reserve (``ensure_diskfree``);
``StagedFile`` holds one file's bytes there. A failed upload leaves the staged file alone:
the caller ``keep()``s it, so the data survives and the log can name it.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from cosfs.wire.errors import CosfsError

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
