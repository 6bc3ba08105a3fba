"""When this mount last added, removed or renamed an entry of each directory.

A directory's mtime and ctime change with its entries (POSIX; ``make``, ``rsync`` and
pjdfstest rely on it). COS has no directory objects to update: changing a marker's
metadata costs one copy per entry change, and a directory written by another tool has no
marker at all. So the times are kept here, in memory, for the mount's lifetime, and shown
over what COS holds (``Lookup``); they are not stored, and another mount, or this one
after a remount, shows the marker's stored time again (docs/SEMANTICS.md). An explicit
change of the directory's own attributes (chmod, utimens...) stores its times and ends
the override.

Bounded: the least recently changed directories are forgotten first past ``max_entries``.
Thread-safe; nothing is called while the lock is held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional


class DirTimes:
    """Directory path -> the time (ns since the epoch) of its last entry change here."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._changed: "OrderedDict[str, int]" = OrderedDict()  # guarded by self._lock

    def touch(self, dir_path: str, time_ns: int) -> None:
        """An entry of ``dir_path`` was added, removed or renamed at ``time_ns``."""
        with self._lock:
            self._changed.pop(dir_path, None)
            self._changed[dir_path] = time_ns
            while len(self._changed) > self._max_entries:
                self._changed.popitem(last=False)

    def get(self, dir_path: str) -> Optional[int]:
        """When an entry of ``dir_path`` last changed through this mount, or ``None``."""
        with self._lock:
            return self._changed.get(dir_path)

    def forget(self, dir_path: str) -> None:
        """``dir_path``'s own times were set and stored (or it is gone): no override."""
        with self._lock:
            self._changed.pop(dir_path, None)

    def forget_tree(self, dir_path: str) -> None:
        """``dir_path`` and every directory below it are gone (removed or renamed away)."""
        below = dir_path.rstrip("/") + "/"
        with self._lock:
            for path in [p for p in self._changed if p == dir_path or p.startswith(below)]:
                del self._changed[path]

