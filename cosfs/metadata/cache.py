"""Remember recent stat results and directory listings for a bounded time.

Invalidation policy:

- A positive ``StatCache`` entry (a path's ``Attr``) lives ``ttl`` seconds; a negative
  entry (the path is known to be missing) lives ``negative_ttl`` seconds; a ``ListCache``
  entry (the complete listing of one directory) lives its ``ttl`` seconds. An entry is
  valid while ``clock() < stored_at + ttl``: it expires exactly at the boundary.
- A TTL of 0, or a ``maxsize`` of 0, disables that cache: ``put`` stores nothing and
  ``get`` always answers "unknown". A change made behind the mount's back is seen after at
  most the TTL.
- A listing is edited in place (``ListCache.edit``) when this mount adds or removes one
  entry: atomically, and without renewing its lifetime, so a directory this mount keeps
  writing into is still listed again from COS every ``ttl`` seconds.
- Every mutation made through this mount calls ``invalidate(path)`` on the ``StatCache``
  for the changed path, ``invalidate(parent)`` on the ``ListCache`` for its directory's
  listing, and ``invalidate_tree(path)`` on both for a renamed or removed subtree.
  Storing a positive entry drops a negative one for the same path, and the other way round.
- Each cache holds at most ``maxsize`` entries (of each kind); past that the least recently
  used one is dropped.

Paths are mount paths as ``cosfs.metadata.paths`` uses them (``/`` is the root). Both caches are
safe to use from several threads; the clock is injected so tests never sleep.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Literal, Mapping, Optional, Tuple, Union

from cachetools import TLRUCache, TTLCache

from cosfs.metadata.attrs import TYPE_BITS, Attr

Clock = Callable[[], float]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: What ``StatCache.get`` answers for a path known not to exist.
MISSING = _Missing.MISSING


class StatCache:
    """Path -> ``Attr`` (the path exists) or ``MISSING`` (it does not), each with its TTL."""

    def __init__(
        self,
        ttl: float,
        negative_ttl: float,
        maxsize: int = 100_000,
        clock: Clock = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._positive = _new_cache(ttl, maxsize, clock)  # guarded by self._lock
        self._negative = _new_cache(negative_ttl, maxsize, clock)  # guarded by self._lock

    @property
    def holds_attributes(self) -> bool:
        """Whether an ``Attr`` put here can be found again (``False`` when the TTL or the size is 0):
        fetching attributes ahead of their lookup is pointless otherwise."""
        return self._positive is not None

    def get(self, path: str) -> Union[Attr, Literal[_Missing.MISSING], None]:
        """The cached ``Attr``, ``MISSING`` if the path is known not to exist, or ``None``
        when the cache does not know."""
        with self._lock:
            if self._positive is not None:
                attr = self._positive.get(path)
                if attr is not None:
                    return attr
            if self._negative is not None and path in self._negative:
                return MISSING
            return None

    def put(self, path: str, attr: Attr) -> None:
        """Remember that ``path`` exists with ``attr``; forgets a negative entry for it."""
        with self._lock:
            if self._negative is not None:
                self._negative.pop(path, None)
            if self._positive is not None:
                self._positive[path] = attr

    def put_missing(self, path: str) -> None:
        """Remember that ``path`` does not exist; forgets a positive entry for it."""
        with self._lock:
            if self._positive is not None:
                self._positive.pop(path, None)
            if self._negative is not None:
                self._negative[path] = MISSING

    def invalidate(self, path: str) -> None:
        """Forget ``path`` (positive or negative), and nothing else."""
        with self._lock:
            for cache in self._caches():
                cache.pop(path, None)

    def invalidate_tree(self, path: str) -> None:
        """Forget ``path`` and every path below it (``/a``: ``/a``, ``/a/b``, not ``/ab``)."""
        with self._lock:
            for cache in self._caches():
                _drop_tree(cache, path)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            for cache in self._caches():
                cache.clear()

    def __len__(self) -> int:
        """Live entries, positive and negative."""
        with self._lock:
            return sum(_live_count(cache) for cache in self._caches())

    def _caches(self) -> Tuple[TTLCache, ...]:
        return tuple(c for c in (self._positive, self._negative) if c is not None)


@dataclass(frozen=True)
class Listing:
    """The complete listing of one directory: entry name -> kind (``"file"``, ``"dir"`` or
    ``"symlink"``). Names are already filtered with ``cosfs.metadata.paths.visible_name``.

    Deliberately has no ``__len__``: an empty directory's listing is still a truthy hit.
    """

    entries: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        unknown = {kind for kind in self.entries.values() if kind not in TYPE_BITS}
        if unknown:
            raise ValueError(f"listing kinds must be among {sorted(TYPE_BITS)}, not {unknown}")
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

    def names(self) -> Tuple[str, ...]:
        """The entry names, sorted (code point order, which is COS's UTF-8 key order)."""
        return tuple(sorted(self.entries))

    def kind(self, name: str) -> Optional[str]:
        """The kind of entry ``name``, or ``None`` if the directory has no such entry."""
        return self.entries.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.entries


@dataclass(frozen=True)
class _Timed:
    """A listing and the moment it stops being trusted (fixed when it was fetched)."""

    listing: Listing
    expires: float


class ListCache:
    """Directory path -> its complete ``Listing``, for ``ttl`` seconds from when it was fetched."""

    def __init__(self, ttl: float, maxsize: int = 10_000, clock: Clock = time.monotonic) -> None:
        _check_bounds(ttl, maxsize)
        self._lock = threading.Lock()
        self._ttl = ttl
        self._clock = clock
        self._listings: Optional[TLRUCache] = None  # guarded by self._lock
        if ttl and maxsize:
            self._listings = TLRUCache(maxsize=maxsize, ttu=lambda _key, entry, _now: entry.expires, timer=clock)

    def get(self, dir_path: str) -> Optional[Listing]:
        """The cached listing of ``dir_path``, or ``None`` when the cache does not know."""
        with self._lock:
            if self._listings is None:
                return None
            entry = self._listings.get(dir_path)
            return entry.listing if entry is not None else None

    def put(self, dir_path: str, listing: Listing) -> None:
        """Remember the complete listing of ``dir_path``, as fetched now."""
        with self._lock:
            if self._listings is not None:
                self._listings[dir_path] = _Timed(listing, self._clock() + self._ttl)

    def edit(self, dir_path: str, name: str, kind: Optional[str]) -> None:
        """Set entry ``name`` of the cached listing of ``dir_path`` to ``kind`` (``None``
        removes it). Atomic, and the listing keeps its expiry: an edit is what this mount
        did, not news from COS. Nothing happens when the listing is not cached."""
        with self._lock:
            if self._listings is None:
                return
            entry = self._listings.get(dir_path)
            if entry is None:
                return
            entries = dict(entry.listing.entries)
            if kind is None:
                entries.pop(name, None)
            else:
                entries[name] = kind
            self._listings[dir_path] = _Timed(Listing(entries), entry.expires)

    def invalidate(self, dir_path: str) -> None:
        """Forget the listing of ``dir_path`` only."""
        with self._lock:
            if self._listings is not None:
                self._listings.pop(dir_path, None)

    def invalidate_tree(self, path: str) -> None:
        """Forget the listings of ``path`` and of every directory below it."""
        with self._lock:
            if self._listings is not None:
                _drop_tree(self._listings, path)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            if self._listings is not None:
                self._listings.clear()

    def __len__(self) -> int:
        """Live listings."""
        with self._lock:
            return _live_count(self._listings) if self._listings is not None else 0


def _check_bounds(ttl: float, maxsize: int) -> None:
    if ttl < 0:
        raise ValueError(f"a cache TTL must be 0 (disabled) or more seconds, not {ttl}")
    if maxsize < 0:
        raise ValueError(f"a cache size must be 0 (disabled) or more entries, not {maxsize}")


def _new_cache(ttl: float, maxsize: int, clock: Clock) -> Optional[TTLCache]:
    """A TTLCache, or ``None`` when ``ttl`` or ``maxsize`` is 0 (the cache is disabled)."""
    _check_bounds(ttl, maxsize)
    if ttl == 0 or maxsize == 0:
        return None
    return TTLCache(maxsize=maxsize, ttl=ttl, timer=clock)


def _drop_tree(cache: Union[TTLCache, TLRUCache], path: str) -> None:
    """Remove ``path`` and every key below it from ``cache`` (the caller holds the lock)."""
    top = path.rstrip("/")
    if not top:
        cache.clear()
        return
    below = top + "/"
    cache.expire()
    doomed = [key for key in cache.keys() if key == top or key.startswith(below)]
    for key in doomed:
        cache.pop(key, None)


def _live_count(cache: Union[TTLCache, TLRUCache]) -> int:
    cache.expire()
    return len(cache)
