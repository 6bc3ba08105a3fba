"""Read one object through a bounded block cache, fetching ahead for sequential readers.

Bytes come from ``Store.read_range`` in ``block_size`` blocks, kept in an LRU of at most
``max_cached_blocks`` blocks. A read that starts where the previous one ended is sequential:
when it misses, the same ranged GET also fetches a window after it, and the window doubles up
to ``readahead_max``; any other read resets the window. Missing blocks next to each other are
fetched in one request, and a block one thread is fetching is waited for, not fetched again,
by the others. The cache is never refreshed on its own: ``invalidate()`` drops it.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from cosfs.store.interface import Store
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

MiB = 1024 * 1024


class _Fetch:
    """Blocks one thread is fetching; threads that need them too wait for ``done``."""

    def __init__(self, indexes: List[int]) -> None:
        self.indexes = indexes
        self.done = threading.Event()
        self.blocks: Dict[int, bytes] = {}
        self.error: Optional[BaseException] = None


class ObjectReader:
    """Reads of one object of known size; safe to call from several threads at once."""

    def __init__(self, store: Store, key: str, size: int, block_size: int = MiB,
                 max_cached_blocks: int = 16, readahead_max: int = 8 * MiB) -> None:
        if block_size < 1 or max_cached_blocks < 1 or readahead_max < 0 or size < 0:
            raise CosfsError(f"bad reader settings for {key!r}: block_size={block_size}, "
                             f"max_cached_blocks={max_cached_blocks}, readahead_max={readahead_max}",
                             errno.EINVAL)
        self.key = key
        self.block_size = block_size
        self.max_cached_blocks = max_cached_blocks
        self.readahead_max = readahead_max
        self._store = store
        self._lock = threading.Lock()
        self._size = size  # guarded by self._lock
        self._blocks: "OrderedDict[int, bytes]" = OrderedDict()  # guarded by self._lock
        self._pending: Dict[int, _Fetch] = {}  # guarded by self._lock
        self._next_offset: Optional[int] = None  # guarded by self._lock
        self._window = 0  # guarded by self._lock
        self._generation = 0  # guarded by self._lock

    @property
    def size(self) -> int:
        with self._lock:
            return self._size

    @property
    def cached_blocks(self) -> int:
        with self._lock:
            return len(self._blocks)

    def invalidate(self, size: Optional[int] = None) -> None:
        """Forget every cached block (and the object's size, when a new one is given); fetches
        already running still answer their readers but are not cached."""
        with self._lock:
            self._blocks.clear()
            self._pending.clear()
            self._generation += 1
            self._next_offset = None
            self._window = 0
            if size is not None:
                self._size = size

    def read(self, offset: int, length: int) -> bytes:
        """``min(length, size - offset)`` bytes from ``offset``; ``b""`` at or past the end.
        Fewer only if the object shrank in COS behind our back."""
        if offset < 0 or length < 0:
            raise CosfsError(f"read of {self.key!r} at {offset} for {length} bytes", errno.EINVAL)
        with self._lock:
            end = min(offset + length, self._size)
            if end <= offset:
                return b""
            first, last = offset // self.block_size, (end - 1) // self.block_size
            have, waits, own, generation = self._plan(offset, end, first, last)
        if own is not None:
            have.update(self._fetch(own, generation))
        for fetch in waits:
            fetch.done.wait()
            if fetch.error is not None:
                raise fetch.error
            have.update(fetch.blocks)
        return self._assemble(have, offset, end, first, last)

    def _plan(self, offset: int, end: int, first: int, last: int
              ) -> Tuple[Dict[int, bytes], List[_Fetch], Optional[_Fetch], int]:
        """Under the lock: the cached blocks, the fetches to wait for, and the blocks this read
        fetches itself (registered as pending), readahead included."""
        needed = range(first, last + 1)
        missing = [i for i in needed if i not in self._blocks and i not in self._pending]
        if self._next_offset != offset:
            self._window = 0
        elif missing:
            self._window = min(self.readahead_max, 2 * self._window or self.block_size)
        self._next_offset = end
        if missing and self._window:
            room = max(0, self.max_cached_blocks - len(needed))
            ahead_end = min(self._size, end + self._window)
            last_ahead = min((ahead_end - 1) // self.block_size, last + room)
            missing += [i for i in range(last + 1, last_ahead + 1)
                        if i not in self._blocks and i not in self._pending]
        have: Dict[int, bytes] = {}
        waits: List[_Fetch] = []
        for index in needed:
            if index in self._blocks:
                self._blocks.move_to_end(index)
                have[index] = self._blocks[index]
            elif index in self._pending and self._pending[index] not in waits:
                waits.append(self._pending[index])
        if not missing:
            return have, waits, None, self._generation
        fetch = _Fetch(missing)
        for index in missing:
            self._pending[index] = fetch
        return have, waits, fetch, self._generation

    def _fetch(self, fetch: _Fetch, generation: int) -> Dict[int, bytes]:
        """Fetch the blocks of ``fetch`` in one request per contiguous run, cache them, and
        hand them to every thread waiting for them."""
        try:
            for start, stop in _runs(fetch.indexes):
                fetch.blocks.update(self._fetch_run(start, stop))
        except BaseException as error:
            fetch.error = error
            raise
        finally:
            with self._lock:
                for index in fetch.indexes:
                    if self._pending.get(index) is fetch:
                        del self._pending[index]
                if generation == self._generation and fetch.error is None:
                    self._cache(fetch.blocks)
            fetch.done.set()
        return fetch.blocks

    def _fetch_run(self, start: int, stop: int) -> Dict[int, bytes]:
        """Blocks ``start..stop-1`` from one ranged GET; a short answer yields short blocks."""
        begin = start * self.block_size
        with self._lock:
            length = min(stop * self.block_size, self._size) - begin
        data = self._store.read_range(self.key, begin, length) if length > 0 else b""
        if len(data) < length:
            self._shrunk(begin + len(data))
        size = self.block_size
        return {start + i: data[i * size:(i + 1) * size] for i in range(stop - start)}

    def _shrunk(self, new_size: int) -> None:
        with self._lock:
            if new_size >= self._size:
                return
            log.warning("%r has only %d bytes in COS, not %d: it changed behind our back",
                        self.key, new_size, self._size)
            self._size = new_size

    def _cache(self, blocks: Dict[int, bytes]) -> None:
        """Under the lock: add ``blocks``, dropping the least recently used beyond the bound."""
        for index in sorted(blocks):
            if blocks[index]:
                self._blocks[index] = blocks[index]
                self._blocks.move_to_end(index)
        while len(self._blocks) > self.max_cached_blocks:
            self._blocks.popitem(last=False)

    def _assemble(self, have: Dict[int, bytes], offset: int, end: int, first: int, last: int) -> bytes:
        pieces = []
        position = offset
        for index in range(first, last + 1):
            block_start = index * self.block_size
            want = min(end, block_start + self.block_size) - position
            piece = have.get(index, b"")[position - block_start:position - block_start + want]
            pieces.append(piece)
            position += len(piece)
            if len(piece) < want:
                break
        return b"".join(pieces)


def _runs(indexes: List[int]) -> List[Tuple[int, int]]:
    """Sorted block numbers as ``(start, stop)`` runs of consecutive numbers."""
    runs: List[Tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs
