"""Read one object through a bounded block cache, fetching ahead in parallel for sequential readers.

Bytes come from ``Store.read_range`` in ``block_size`` blocks. A read is *sequential* when
it starts near where the reads so far ended (the kernel sends a stream's requests from
several threads, a little out of order); the first read at offset 0 starts a stream too.
A sequential reader gets a window ahead of it that starts at two blocks and doubles, each
time the reader has consumed half of what is ahead, up to ``readahead_max``. The window is
fetched as ranged GETs of up to ``fetch_size`` bytes, submitted to the read pool so several
are in flight while the application consumes what has arrived; a read waits only for the
blocks it needs, and runs a fetch itself when no worker has started it yet (so a busy pool
delays no read). Any other read resets the window and fetches only the aligned blocks it
needs: an object of one block is thus fetched whole at the first read.

Memory: blocks fetched ahead and not yet read are bounded by the window; blocks that were
read stay in an LRU of ``max_cached_blocks``; both are charged to a ``ReadBudget`` shared
by all open files. When the budget has no room the window shrinks and nothing more is
fetched ahead; a block a read needs is always fetched, and kept only if the budget allows.
``close()`` frees everything.

One version: every GET carries the ETag the file had at open (``etag``), so an object
replaced behind the mount answers 412 and that read fails with ESTALE; it never returns a
mix of two versions. A failed fetch is the error of the read that needs its blocks (the
transport has already retried it); the next read fetches them again.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Dict, List, Optional, Set, Tuple

from cosfs.data.read_budget import ReadBudget
from cosfs.store.interface import Store
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

MiB = 1024 * 1024


class _Fetch:
    """Blocks ``start..stop-1`` fetched by one ranged GET; threads that need them wait for ``done``."""

    def __init__(self, start: int, stop: int, reserved: int, generation: int) -> None:
        self.start = start
        self.stop = stop
        self.generation = generation
        #: Budget bytes taken for it up front (readahead); 0 for blocks a read needs now.
        self.reserved = reserved
        self.claimed = False  # guarded by the reader's lock: a thread has started it
        self.done = threading.Event()
        self.blocks: Dict[int, bytes] = {}
        self.error: Optional[BaseException] = None

    @property
    def indexes(self) -> range:
        return range(self.start, self.stop)


class ObjectReader:
    """Reads of one version of one object of known size; safe to call from several threads at once."""

    def __init__(self, store: Store, key: str, size: int, etag: Optional[str] = None, *,
                 pool: Optional[Executor] = None, budget: Optional[ReadBudget] = None,
                 block_size: int = MiB, max_cached_blocks: int = 16, readahead_max: int = 64 * MiB,
                 fetch_size: int = 8 * MiB) -> None:
        if block_size < 1 or max_cached_blocks < 1 or readahead_max < 0 or size < 0 or fetch_size < 1:
            raise CosfsError(f"bad reader settings for {key!r}: block_size={block_size}, max_cached_blocks="
                             f"{max_cached_blocks}, readahead_max={readahead_max}, fetch_size={fetch_size}",
                             errno.EINVAL)
        self.key = key
        self.etag = etag
        self.block_size = block_size
        self.max_cached_blocks = max_cached_blocks
        self.readahead_max = readahead_max
        self._fetch_blocks = max(1, fetch_size // block_size)
        self._store = store
        #: ``None``: no background fetches; a window is fetched by the read that reaches it.
        self._pool = pool
        self._budget = budget if budget is not None else ReadBudget(max_cached_blocks * block_size + readahead_max)
        self._lock = threading.Lock()
        self._size = size  # guarded by self._lock
        self._blocks: "OrderedDict[int, bytes]" = OrderedDict()  # guarded by self._lock
        self._unread: Set[int] = set()  # guarded by self._lock: fetched ahead, not read yet
        #: Guarded by self._lock: the blocks that were read, least recently used first (what
        #: eviction takes), so that an eviction never walks past the blocks fetched ahead.
        self._lru: "OrderedDict[int, None]" = OrderedDict()
        self._pending: Dict[int, _Fetch] = {}  # guarded by self._lock
        self._next_offset: Optional[int] = None  # guarded by self._lock
        self._window = 0  # guarded by self._lock
        self._ahead_block = 0  # guarded by self._lock: blocks before it are fetched or pending
        self._generation = 0  # guarded by self._lock
        self._closed = False  # guarded by self._lock
        #: Set by the first answer saying the object changed: every later fetch fails with it.
        self._stale: Optional[BaseException] = None  # guarded by self._lock

    @property
    def size(self) -> int:
        with self._lock:
            return self._size

    @property
    def cached_blocks(self) -> int:
        """Blocks that were read and are kept for reading again (the LRU)."""
        with self._lock:
            return len(self._lru)

    @property
    def window(self) -> int:
        with self._lock:
            return self._window

    def invalidate(self, size: Optional[int] = None) -> None:
        """Forget every cached block (and the object's size, when a new one is given); fetches
        already running still answer their readers but are not cached."""
        with self._lock:
            self._drop_all()
            if size is not None:
                self._size = size

    def close(self) -> None:
        """The file is closed: give every buffer back to the budget; fetches still running
        are not cached."""
        with self._lock:
            self._closed = True
            self._drop_all()

    def _drop_all(self) -> None:
        """Under the lock: forget blocks, fetches and the window."""
        for index in list(self._blocks):
            self._evict(index)
        for fetch in set(self._pending.values()):
            if not fetch.claimed:  # it may never run: its budget goes back now
                self._budget.give_back(fetch.reserved)
                fetch.reserved = 0
        self._pending.clear()
        self._generation += 1
        self._next_offset = None
        self._window = 0
        self._ahead_block = 0

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
            sequential = self._follow(offset, end)
            have, waits, own = self._plan(first, last)
            ahead = self._plan_ahead(end, last) if sequential else []
        for fetch in ahead:
            self._submit(fetch)
        for fetch in own:
            self._run(fetch)
        for fetch in waits:
            self._wait(fetch)
        for fetch in own + waits:
            if fetch.error is not None:
                self._forget_failed(fetch)
                raise fetch.error
            have.update(fetch.blocks)
        with self._lock:
            for index in range(first, last + 1):
                self._mark_read(index)
            self._trim()
        return self._assemble(have, offset, end, first, last)

    # --- planning (under the lock) ------------------------------------------------------

    def _follow(self, offset: int, end: int) -> bool:
        """Whether this read continues the stream; a read that does not resets the window."""
        slack = 2 * self.block_size
        if self._next_offset is None:
            sequential = offset == 0
        else:
            sequential = self._next_offset - slack <= offset <= self._next_offset + slack
        if sequential:
            self._next_offset = max(self._next_offset or 0, end)
            return True
        self._next_offset = end
        self._window = 0
        self._ahead_block = 0
        for index in [index for index in self._blocks if index in self._unread]:
            self._mark_read(index)  # what was fetched ahead of the old stream ages in the LRU now
        return False

    def _plan(self, first: int, last: int) -> Tuple[Dict[int, bytes], List[_Fetch], List[_Fetch]]:
        """The cached blocks of ``first..last``, the fetches to wait for, and the fetches of
        the missing ones this read runs itself (registered as pending)."""
        have: Dict[int, bytes] = {}
        waits: List[_Fetch] = []
        missing: List[int] = []
        for index in range(first, last + 1):
            if index in self._blocks:
                self._blocks.move_to_end(index)
                if index in self._lru:
                    self._lru.move_to_end(index)
                have[index] = self._blocks[index]
            elif index in self._pending:
                if self._pending[index] not in waits:
                    waits.append(self._pending[index])
            else:
                missing.append(index)
        own = []
        for start, stop in _runs(missing):
            fetch = _Fetch(start, stop, 0, self._generation)
            fetch.claimed = True
            self._register(fetch)
            own.append(fetch)
        return have, waits, own

    def _plan_ahead(self, end: int, last: int) -> List[_Fetch]:
        """The fetches that extend the window ahead of ``end``, each charged to the budget;
        the window grows when half of what is ahead has been read, and shrinks when the
        budget has no room."""
        if self.readahead_max == 0:
            return []
        ahead_end = min(self._ahead_block * self.block_size, self._size)
        if self._window and ahead_end - end > self._window // 2:
            return []
        self._window = min(self.readahead_max, 2 * self._window or 2 * self.block_size)
        stop_block = -(-min(self._size, end + self._window) // self.block_size)
        block = max(self._ahead_block, last + 1)
        fetches = []
        while block < stop_block:
            if block in self._blocks or block in self._pending:
                block += 1
                continue
            stop = block + 1
            while (stop < stop_block and stop - block < self._fetch_blocks
                   and stop not in self._blocks and stop not in self._pending):
                stop += 1
            length = min(stop * self.block_size, self._size) - block * self.block_size
            if not self._take(length):
                self._window = max(2 * self.block_size, self._window // 2)
                log.debug("read buffers full: readahead of %r shrinks to %d bytes", self.key, self._window)
                break
            fetch = _Fetch(block, stop, length, self._generation)
            self._register(fetch)
            fetches.append(fetch)
            block = stop
        self._ahead_block = max(self._ahead_block, block)
        return fetches

    def _register(self, fetch: _Fetch) -> None:
        for index in fetch.indexes:
            self._pending[index] = fetch

    def _take(self, amount: int) -> bool:
        """Budget bytes for a fetch ahead, dropping this file's read blocks to make room."""
        while not self._budget.take(amount):
            if not self._evict_oldest_read():
                return False
        return True

    # --- fetching -----------------------------------------------------------------------

    def _submit(self, fetch: _Fetch) -> None:
        if self._pool is None:
            return  # fetched by the read that needs it
        try:
            self._pool.submit(self._claim_and_run, fetch)
        except RuntimeError:  # the pool is shut down (unmounting): the read that needs it runs it
            log.debug("read pool closed; %r blocks %d..%d wait for their read", self.key, fetch.start, fetch.stop)

    def _claim(self, fetch: _Fetch) -> bool:
        with self._lock:
            if fetch.claimed:
                return False
            fetch.claimed = True
            return True

    def _claim_and_run(self, fetch: _Fetch) -> None:
        """A worker's task: the fetch, unless a read has started it or the file is closed."""
        if not self._claim(fetch):
            return
        with self._lock:
            closed = self._closed
        if closed:
            fetch.error = CosfsError(f"{self.key!r} was closed before its readahead ran", errno.EBADF)
            fetch.done.set()
            return
        self._run(fetch)

    def _wait(self, fetch: _Fetch) -> None:
        """Run ``fetch`` here if no worker has started it, else wait for it (the transport
        bounds every attempt, so the wait ends)."""
        if self._claim(fetch):
            self._run(fetch)
        else:
            fetch.done.wait()

    def _run(self, fetch: _Fetch) -> None:
        """Fetch the blocks of ``fetch`` in one ranged GET, keep them if they may be kept,
        and hand them to every thread waiting for them. Never raises: the error is kept
        on ``fetch`` for the read that needs it."""
        try:
            fetch.blocks = self._fetch_run(fetch.start, fetch.stop)
        except BaseException as error:  # noqa: BLE001 (handed to the read that needs these blocks)
            fetch.error = error
            if getattr(error, "errno", None) == errno.ESTALE:
                with self._lock:
                    self._stale = self._stale or error
        finally:
            with self._lock:
                self._settle(fetch)
            fetch.done.set()

    def _fetch_run(self, start: int, stop: int) -> Dict[int, bytes]:
        """Blocks ``start..stop-1`` from one ranged GET; a short answer yields short blocks."""
        begin = start * self.block_size
        with self._lock:
            if self._stale is not None:
                raise self._stale  # once changed, never fetched again: no bytes of the new version
            length = min(stop * self.block_size, self._size) - begin
        data = self._store.read_range(self.key, begin, length, etag=self.etag) if length > 0 else b""
        if len(data) < length:
            self._shrunk(begin + len(data))
        size = self.block_size
        # Copies, made here in the fetching thread: a read of one whole block then returns
        # that block itself (``b"".join`` of one bytes object is that object), where views
        # would move the copy into the read's own thread.
        return {start + i: data[i * size:(i + 1) * size] for i in range(stop - start)}

    def _settle(self, fetch: _Fetch) -> None:
        """Under the lock: a fetch ended. Keep its blocks (charged to the budget) when it
        succeeded for the current generation; a failed fetch stays pending, so the read that
        needs its blocks gets its error."""
        current = fetch.generation == self._generation and not self._closed
        if fetch.error is None and self._stale is not None:
            fetch.error = self._stale  # answered after another fetch saw the change: not trusted
        if fetch.error is not None or not current:
            self._budget.give_back(fetch.reserved)
            if not current:
                return
            if fetch.error is not None:
                return
        for index in fetch.indexes:
            if self._pending.get(index) is fetch:
                del self._pending[index]
        kept = [index for index in fetch.indexes if fetch.blocks.get(index)]
        charge = sum(len(fetch.blocks[index]) for index in kept)
        if fetch.reserved:
            self._budget.give_back(fetch.reserved - charge)
            self._unread.update(kept)
        elif not self._budget.take(charge):
            return  # no room: the read that fetched these gets them, they are not kept
        for index in kept:
            self._blocks[index] = fetch.blocks[index]
            self._blocks.move_to_end(index)
        self._trim()

    def _forget_failed(self, fetch: _Fetch) -> None:
        """The read that needed ``fetch`` reports its error; later reads fetch again."""
        with self._lock:
            for index in fetch.indexes:
                if self._pending.get(index) is fetch:
                    del self._pending[index]
            if fetch.stop > self._ahead_block > fetch.start:
                self._ahead_block = fetch.start

    def _shrunk(self, new_size: int) -> None:
        with self._lock:
            if new_size >= self._size:
                return
            log.warning("%r has only %d bytes in COS, not %d: it changed behind our back",
                        self.key, new_size, self._size)
            self._size = new_size

    # --- the cache (under the lock) -----------------------------------------------------

    def _mark_read(self, index: int) -> None:
        """A cached block was read: it leaves the readahead and joins the LRU."""
        self._unread.discard(index)
        if index in self._blocks:
            self._lru[index] = None
            self._lru.move_to_end(index)

    def _evict(self, index: int) -> None:
        block = self._blocks.pop(index)
        self._unread.discard(index)
        self._lru.pop(index, None)
        self._budget.give_back(len(block))

    def _evict_oldest_read(self) -> bool:
        """Drop the least recently used block that was read; ``False`` when there is none."""
        if not self._lru:
            return False
        self._evict(next(iter(self._lru)))
        return True

    def _trim(self) -> None:
        """Drop the least recently used read blocks beyond ``max_cached_blocks``."""
        while len(self._lru) > self.max_cached_blocks:
            self._evict_oldest_read()

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
