"""The FUSE adapter: each callback converts arguments, calls ``CosFilesystem``, converts the result.

Only this module and ``cosfs.fuse_adapter.binding`` know FUSE. Every operation is implemented or refused
explicitly, because the bindings' defaults differ (fusepy answers EROFS, mfusepy ENOSYS).
Errors: a ``CosfsError`` becomes its errno; anything unexpected is logged with its
traceback and reported as EIO, so one bad request never takes the mount down.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import stat
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from cosfs.filesystem.posix import CosFilesystem, DirEntry
from cosfs.fuse_adapter import binding
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)


#: Errors that are answers, not failures: logged at DEBUG (a missing xattr is asked for by
#: every ``ls -l`` of every entry).
_ROUTINE_ERRNOS = (errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENODATA)


def translated(method):
    """Run a callback, turning our errors into ``FuseOSError(errno)``."""

    @functools.wraps(method)
    def wrapper(self, *args):
        self.calls.count(method.__name__)
        try:
            return method(self, *args)
        except CosfsError as failure:
            level = logging.DEBUG if failure.errno in _ROUTINE_ERRNOS else logging.WARNING
            log.log(level, "%s%r: %s", method.__name__, args[:1], failure)
            raise binding.FuseOSError(failure.errno) from None
        except binding.FuseOSError:
            raise
        except Exception:  # noqa: BLE001 (the mount must survive any bug in one request)
            log.exception("%s%r failed unexpectedly", method.__name__, args[:1])
            raise binding.FuseOSError(errno.EIO) from None

    return wrapper


def _caller() -> "tuple[int, int]":
    uid, gid, _ = binding.fuse_get_context()
    return uid, gid


def _process() -> Optional[int]:
    """The process (thread group) making the current request, or ``None`` if unknown.

    The kernel passes the calling *thread's* id; threads of one program must count as one
    process, or a program that opens a file in one thread and closes it in another would
    have its close taken for a child's (``OpenFiles.flush``)."""
    _, _, pid = binding.fuse_get_context()
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pid


class CallCounts:
    """How often the kernel called each operation, for ``cosfs status --json``.

    It shows what the kernel's caches spare: within ``attr_timeout`` a repeated ``ls -l``
    makes no ``getattr`` at all, and after a readdirplus the kernel needs none per entry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}  # guarded by self._lock

    def count(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] = self._counts.get(operation, 0) + 1

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)


class DirectoryStreams:
    """The listing each open directory handle is read from, kept between libfuse's calls
    (a large directory takes several) and dropped at ``releasedir``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handles = itertools.count(1)
        self._entries: Dict[int, List[DirEntry]] = {}  # guarded by self._lock

    def open(self) -> int:
        return next(self._handles)

    def get(self, fh: int) -> Optional[List[DirEntry]]:
        with self._lock:
            return self._entries.get(fh)

    def put(self, fh: int, entries: List[DirEntry]) -> None:
        with self._lock:
            self._entries[fh] = entries

    def close(self, fh: int) -> None:
        with self._lock:
            self._entries.pop(fh, None)


def _stream(entries: List[DirEntry], offset: int, plus: bool) -> Iterator[Tuple[str, Dict[str, int], bool, int]]:
    """``entries[offset:]`` for the binding's filler, converted one by one as it consumes them."""
    for index in range(offset, len(entries)):
        entry = entries[index]
        if plus and entry.attr is not None:
            yield entry.name, entry.attr.to_stat(), True, index + 1
        else:
            yield entry.name, {"st_mode": entry.type or 0}, False, index + 1


class CosOperations(binding.Operations):
    """fusepy/mfusepy ``Operations`` for one mounted bucket."""

    use_ns = True

    def __init__(
        self,
        fs: CosFilesystem,
        on_mounted: Optional[Callable[[], None]] = None,
        on_unmount: Optional[Callable[[], None]] = None,
        calls: Optional[CallCounts] = None,
        xattrs: bool = True,
    ) -> None:
        self.fs = fs
        #: Whether extended attributes are served (``-o noxattr``: refused, the cheapest ``ls -l``).
        self.xattrs = xattrs
        self.calls = calls if calls is not None else CallCounts()
        self._streams = DirectoryStreams()
        self.on_mounted = on_mounted
        self.on_unmount = on_unmount

    # --- lifecycle ----------------------------------------------------------------------

    def init(self, path):
        if self.on_mounted:
            self.on_mounted()

    def destroy(self, path):
        if self.on_unmount:
            self.on_unmount()

    # --- namespace ----------------------------------------------------------------------

    @translated
    def getattr(self, path, fh=None):
        return self.fs.getattr(path).to_stat()

    @translated
    def readdir(self, path, fh):
        # Every entry carries an explicit type: mfusepy reuses one stat buffer for the whole
        # listing, so a bare name would inherit the previous entry's type. 0 is DT_UNKNOWN.
        entries = [(".", {"st_mode": stat.S_IFDIR}, 0), ("..", {"st_mode": stat.S_IFDIR}, 0)]
        for entry in self.fs.readdir(path):
            entries.append((entry.name, {"st_mode": entry.type or 0}, 0))
        return entries

    @translated
    def readdir_from(self, path, fh, offset, plus):
        """The entries of open directory ``fh`` from ``offset`` on, as ``(name, stat dict,
        complete, offset of the next entry)``: libfuse 3 reads a directory in several calls,
        each resuming where the kernel's buffer was full. The listing is taken at offset 0
        and kept with the handle until ``releasedir``. With ``plus`` (the kernel asked for
        readdirplus), entries whose attributes cosfs already knows carry them complete: the
        kernel caches them with the names, and ``ls -l`` then sends no lookup per entry."""
        entries = self._streams.get(fh) if offset else None
        if entries is None:
            entries = [DirEntry(".", stat.S_IFDIR, None), DirEntry("..", stat.S_IFDIR, None)]
            entries.extend(self.fs.readdir(path))
            self._streams.put(fh, entries)
        return _stream(entries, offset, plus)

    @translated
    def opendir(self, path):
        if self.fs.getattr(path).kind != "dir":
            raise CosfsError(f"{path}: not a directory", errno.ENOTDIR)
        return self._streams.open()

    def releasedir(self, path, fh):
        self._streams.close(fh)
        return 0

    def fsyncdir(self, path, datasync, fh):
        return 0

    @translated
    def mkdir(self, path, mode):
        self.fs.mkdir(path, mode, *_caller())

    @translated
    def rmdir(self, path):
        self.fs.rmdir(path)

    @translated
    def unlink(self, path):
        self.fs.unlink(path)

    @translated
    def rename(self, old, new):
        self.fs.rename(old, new)

    @translated
    def symlink(self, target, source):
        """``ln -s source target``: the link at ``target`` points to ``source``."""
        self.fs.symlink(target, source, *_caller())

    @translated
    def readlink(self, path):
        return self.fs.readlink(path)

    @translated
    def link(self, target, source):
        self.fs.link(target, source)

    @translated
    def mknod(self, path, mode, dev):
        self.fs.mknod(path, mode, dev, *_caller())

    @translated
    def statfs(self, path):
        return self.fs.statfs()

    @translated
    def access(self, path, amode):
        self.fs.access(path, amode)
        return 0

    # --- attributes ---------------------------------------------------------------------

    @translated
    def chmod(self, path, mode):
        self.fs.chmod(path, mode)
        return 0

    @translated
    def chown(self, path, uid, gid):
        self.fs.chown(path, uid, gid)
        return 0

    @translated
    def utimens(self, path, times=None):
        self.fs.utimens(path, *requested_times(times))
        return 0

    # Extended attributes: ``ls -l`` asks for two per entry (ACLs and security labels), each
    # answered from the attributes the preceding ``stat`` cached, without a request. With
    # ``noxattr`` they answer ENOSYS: the kernel is told once per mount and from then on
    # answers EOPNOTSUPP itself, so a warm ``ls -l`` makes no call into cosfs for them.
    @translated
    def getxattr(self, path, name, position=0):
        self._xattrs_on()
        return self.fs.getxattr(path, name)

    @translated
    def listxattr(self, path):
        self._xattrs_on()
        return self.fs.listxattr(path)

    @translated
    def setxattr(self, path, name, value, options, position=0):
        self._xattrs_on()
        self.fs.setxattr(path, name, value, options)
        return 0

    @translated
    def removexattr(self, path, name):
        self._xattrs_on()
        self.fs.removexattr(path, name)
        return 0

    def _xattrs_on(self) -> None:
        if not self.xattrs:
            raise binding.FuseOSError(errno.ENOSYS)

    # --- files --------------------------------------------------------------------------

    @translated
    def create(self, path, mode, fi=None):
        return self.fs.create(path, mode, *_caller(), owner=_process())

    @translated
    def open(self, path, flags):
        return self.fs.open(path, flags, owner=_process())

    def open_keeping_cache(self, path, flags):
        """``open`` (counted and translated as one), and whether the kernel may keep the pages
        it cached of the file: the binding sets ``keep_cache`` in the reply (fusepy never
        calls this)."""
        fh = self.open(path, flags)
        return fh, self.fs.files.keeps_cache(fh)

    @translated
    def read(self, path, size, offset, fh):
        return self.fs.read(fh, size, offset)

    @translated
    def write(self, path, data, offset, fh):
        return self.fs.write(fh, data, offset)

    @translated
    def truncate(self, path, length, fh=None):
        if fh:
            self.fs.ftruncate(fh, length)
        else:
            self.fs.truncate(path, length)
        return 0

    @translated
    def flush(self, path, fh):
        self.fs.flush(fh, _process())
        return 0

    @translated
    def fsync(self, path, datasync, fh):
        self.fs.fsync(fh)
        return 0

    @translated
    def release(self, path, fh):
        self.fs.release(fh)
        return 0


def requested_times(times) -> Tuple[Optional[int], Optional[int]]:
    """The ``(mtime, atime)`` (ns) a ``utimens`` asks for, ``None`` to leave one, translating
    UTIME_NOW/OMIT; both "now" are the same instant, as ``touch`` gets on a disk.

    libfuse3 passes the raw ``utimensat`` specials as ``tv_nsec`` with ``tv_sec = 0``;
    libfuse2 passes ``None`` for "both now" and never sends single-time updates.
    """
    now = time.time_ns()
    if times is None:
        return now, now

    def one(value) -> Optional[int]:
        value = int(value)
        if value == binding.UTIME_NOW:
            return now
        if value == binding.UTIME_OMIT:
            return None
        return value

    return one(times[1]), one(times[0])
