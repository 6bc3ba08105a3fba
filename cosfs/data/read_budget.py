"""The memory all open files' read buffers may hold together (``max_read_buffers_mb``).

One ``ReadBudget`` is shared by every ``ObjectReader`` of a mount: a reader takes bytes
before it fetches ahead or keeps a block, and gives them back when it drops the block, when
the fetch fails and when its file is closed. Taking never waits: a reader that gets no room
fetches less ahead (or keeps nothing), so a full budget slows readahead down and can never
block a read or deadlock two readers on each other.
"""

from __future__ import annotations

import errno
import threading

from cosfs.wire.errors import CosfsError


class ReadBudget:
    """A counter of bytes in use against a limit; safe to call from any thread."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise CosfsError(f"bad read buffer budget: {limit} bytes", errno.EINVAL)
        self.limit = limit
        self._lock = threading.Lock()
        self._used = 0  # guarded by self._lock
        self._peak = 0  # guarded by self._lock

    @property
    def used(self) -> int:
        with self._lock:
            return self._used

    @property
    def peak(self) -> int:
        """The most bytes ever in use at once (for tests and ``cosfs status``)."""
        with self._lock:
            return self._peak

    def take(self, amount: int) -> bool:
        """Take ``amount`` bytes if they fit under the limit; ``False`` (nothing taken) if not."""
        with self._lock:
            if self._used + amount > self.limit:
                return False
            self._used += amount
            self._peak = max(self._peak, self._used)
            return True

    def give_back(self, amount: int) -> None:
        with self._lock:
            if amount > self._used:
                raise AssertionError(f"read budget: giving back {amount} bytes of {self._used} in use")
            self._used -= amount
