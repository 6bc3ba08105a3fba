"""Attribute fetches shared per path, and a bounded window of them ahead of a directory walker.

A tool walking a listed directory (``ls -l``, ``find``, ``rsync``) stats its entries one
by one, in the listing's order (name order, ``Listing.names()``). Serial HEADs would make
that a round trip per entry; HEADing every sibling at once made ``stat a b`` in a
100,000-entry directory send 100,000 HEADs and wait for all of them. The window sits in
between, as a kernel's file readahead does:

- the first miss in a freshly listed directory costs one HEAD (``ls`` then ``cat f``);
- a later miss fetches that entry and the next ``FIRST_WINDOW`` unknown siblings after it
  in parallel, and marks the first of those siblings as the *trigger*;
- when the walker reaches the trigger, the next batch (twice as large, up to
  ``MAX_WINDOW``) is sent from where the last one ended, its first entry the new trigger.
  The walker so finds its next entries fetched or in flight, and never more than about two
  batches are fetched ahead of it: when it stops, the fetching stops;
- a miss elsewhere (the walker jumped) starts a small window there.

Every fetch is registered under its path until its answer is in the stat cache: a lookup
of a path whose HEAD is in flight waits for that answer instead of sending another. So a
walk still costs at most one HEAD per entry, and nothing is fetched twice.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from cosfs.metadata import paths
from cosfs.metadata.attrs import Attr
from cosfs.metadata.cache import MISSING, Listing, StatCache

log = logging.getLogger(__name__)

#: Siblings fetched with the second miss in a listed directory: small, so that ``stat a b``
#: costs a handful of HEADs, however large the directory.
FIRST_WINDOW = 8
#: The largest batch: enough to keep ``parallel_heads`` connections busy for several round
#: trips, small enough that a walker that stops leaves at most ~2 × 256 HEADs behind it.
MAX_WINDOW = 256
#: How far a batch looks past entries already known before it gives up (× its size): a
#: walker entering a mostly cached region does not scan the whole listing on each miss.
SCAN_FACTOR = 4
#: Directories whose walk is remembered (least recently walked forgotten first).
MAX_WALKS = 256

#: Fetches ``path`` given the kind its listing says (or ``None``): its ``Attr``, or ``None``
#: when nothing is there; raises ``CosfsError`` when COS cannot answer.
Fetch = Callable[[str, Optional[str]], Optional[Attr]]


@dataclass
class _Walk:
    """How far the walk of one listed directory got."""

    listing: Listing
    misses: int = 0
    names: Tuple[str, ...] = ()
    size: int = FIRST_WINDOW
    start: int = 0  # index of the entry whose miss began the current window
    frontier: int = 0  # index after the last entry the window examined
    trigger: Optional[str] = None  # the path whose lookup sends the next batch


class AttributeFetches:
    """One fetch per path at a time, and the window of fetches ahead of a walker."""

    def __init__(self, fetch: Fetch, stats: StatCache, pool: Executor) -> None:
        self._fetch = fetch
        self._stats = stats
        self._pool = pool
        self._lock = threading.Lock()
        self._in_flight: Dict[str, Future] = {}  # guarded by self._lock
        self._walks: "OrderedDict[str, _Walk]" = OrderedDict()  # guarded by self._lock
        self._triggers: Dict[str, str] = {}  # trigger path -> its directory; guarded by self._lock

    # --- what the lookup calls ----------------------------------------------------------

    def one(self, path: str, kind: Optional[str]) -> Optional[Attr]:
        """Fetch ``path`` in this thread, or wait for the fetch of it already in flight."""
        with self._lock:
            future, mine = self._claim(path)
        if mine:
            self._run(path, kind, future)
        return _answer(future)

    def in_listed(self, dir_path: str, listing: Listing, path: str) -> Optional[Attr]:
        """Fetch ``path``, a child of ``dir_path`` not in the stat cache, with its window."""
        name = paths.basename(path)
        batch: List[Tuple[str, str, Future]] = []
        with self._lock:
            future, mine = self._claim(path)
            if mine:
                walk = self._walk_of(dir_path, listing)
                walk.misses += 1
                if walk.misses > 1 and self._stats.holds_attributes:
                    batch = self._open_window(dir_path, walk, name)
            else:
                batch = self._passed(path)
        self._submit(batch)
        if mine:
            self._run(path, listing.kind(name), future)
        return _answer(future)

    def touched(self, path: str) -> None:
        """``path`` was found in the stat cache: if it is a walk's trigger, send the next batch."""
        if path not in self._triggers:  # a dict lookup without the lock: the common case costs nothing
            return
        with self._lock:
            batch = self._passed(path)
        self._submit(batch)

    def listed(self, dir_path: str) -> None:
        """``dir_path`` was listed afresh: its walk starts over (the next miss costs one HEAD)."""
        with self._lock:
            walk = self._walks.pop(dir_path, None)
            if walk is not None and walk.trigger is not None:
                self._triggers.pop(walk.trigger, None)

    def forget(self, path: str) -> None:
        """``path`` and everything below it changed through this mount: an answer for them
        still in flight describes what was there before and must not reach the stat cache."""
        with self._lock:
            below = path.rstrip("/") + "/"
            for pending in [p for p in self._in_flight if p == path or p.startswith(below)]:
                del self._in_flight[pending]

    def pending(self) -> int:
        """Fetches in flight now (none once a walker stopped and its window was answered)."""
        with self._lock:
            return len(self._in_flight)

    # --- the window ---------------------------------------------------------------------

    def _walk_of(self, dir_path: str, listing: Listing) -> _Walk:
        walk = self._walks.get(dir_path)
        if walk is None or walk.listing is not listing:  # a new listing, or one this mount edited
            misses = walk.misses if walk is not None else 0
            if walk is not None and walk.trigger is not None:
                self._triggers.pop(walk.trigger, None)
            walk = self._walks[dir_path] = _Walk(listing, misses=misses)
            while len(self._walks) > MAX_WALKS:
                _, dropped = self._walks.popitem(last=False)
                if dropped.trigger is not None:
                    self._triggers.pop(dropped.trigger, None)
        self._walks.move_to_end(dir_path)
        return walk

    def _open_window(self, dir_path: str, walk: _Walk, name: str) -> List[Tuple[str, str, Future]]:
        """A miss of ``name``: its window starts there, larger if the walker just left the last one."""
        if not walk.names:
            walk.names = walk.listing.names()
        index = bisect.bisect_left(walk.names, name)
        continuing = walk.misses > 2 and walk.start <= index <= walk.frontier
        walk.size = min(walk.size * 2, MAX_WINDOW) if continuing else FIRST_WINDOW
        walk.start = index
        return self._next_batch(dir_path, walk, index + 1)

    def _passed(self, path: str) -> List[Tuple[str, str, Future]]:
        """The walker reached ``path``: the next batch if it is a trigger. Holds the lock."""
        dir_path = self._triggers.pop(path, None)
        walk = self._walks.get(dir_path) if dir_path is not None else None
        if walk is None or walk.trigger != path:
            return []
        walk.size = min(walk.size * 2, MAX_WINDOW)
        return self._next_batch(dir_path, walk, walk.frontier)

    def _next_batch(self, dir_path: str, walk: _Walk, first: int) -> List[Tuple[str, str, Future]]:
        """Claim up to ``walk.size`` unknown entries from index ``first`` on. Holds the lock."""
        if walk.trigger is not None:
            self._triggers.pop(walk.trigger, None)
            walk.trigger = None
        batch = []
        index = first
        last = min(len(walk.names), first + walk.size * SCAN_FACTOR)
        while index < last and len(batch) < walk.size:
            child = paths.join(dir_path, walk.names[index])
            index += 1
            if child in self._in_flight or self._stats.get(child) is not None:
                continue
            future = self._in_flight[child] = Future()
            batch.append((child, walk.listing.kind(walk.names[index - 1]), future))
        walk.frontier = index  # the next batch starts here, also after a jump backwards
        if batch:
            walk.trigger = batch[0][0]
            self._triggers[walk.trigger] = dir_path
        return batch

    # --- fetching -----------------------------------------------------------------------

    def _claim(self, path: str) -> Tuple[Future, bool]:
        """The fetch of ``path`` to wait for, and whether the caller must run it. Holds the lock.

        The caller missed the stat cache before taking the lock: a fetch that ended since
        has put its answer there, and that answer is taken instead of asking again."""
        future = self._in_flight.get(path)
        if future is not None:
            return future, False
        known = self._stats.get(path)
        if known is not None:
            future = Future()
            future.set_result(known)
            return future, False
        future = self._in_flight[path] = Future()
        return future, True

    def _submit(self, batch: List[Tuple[str, str, Future]]) -> None:
        for path, kind, future in batch:
            self._pool.submit(self._run, path, kind, future)
        if batch:
            log.debug("prefetching attributes of %d entries from %s", len(batch), batch[0][0])

    def _run(self, path: str, kind: Optional[str], future: Future) -> None:
        """Fetch ``path``, record the answer in the stat cache (unless ``forget`` dropped the
        fetch meanwhile), then wake whoever waits for it."""
        try:
            attr = self._fetch(path, kind)
        except Exception as error:  # the waiters get it; the fetch is over either way
            with self._lock:
                if self._in_flight.get(path) is future:
                    del self._in_flight[path]
            future.set_exception(error)
            return
        with self._lock:
            if self._in_flight.get(path) is future:
                if attr is None:
                    self._stats.put_missing(path)
                else:
                    self._stats.put(path, attr)
                del self._in_flight[path]
        future.set_result(attr)


def _answer(future: Future) -> Optional[Attr]:
    """What a fetch found: its ``Attr``, or ``None`` for nothing there (also when the stat
    cache answered ``MISSING`` meanwhile); raises what the fetch raised."""
    result = future.result()
    return None if result is MISSING else result
