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
- The ``StatCache`` holds at most ``maxsize`` entries (of each kind); the ``ListCache`` at
  most ``max_entries`` directory entries in all its listings (``max_list_cache_entries``).
  Past that the least recently used is dropped; a listing larger than the whole bound is
  not cached.

Paths are mount paths as ``cosfs.metadata.paths`` uses them (``/`` is the root). Both caches are
safe to use from several threads; the clock is injected so tests never sleep.
"""

from __future__ import annotations

import bisect
import enum
import logging
import threading
import time
from collections.abc import ItemsView, Mapping
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Literal, Optional, Tuple, Union

from cachetools import TLRUCache, TTLCache

from cosfs.metadata.attrs import KINDS, Attr

log = logging.getLogger(__name__)

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


#: A kind as one byte in ``Listing``'s compact form, and back.
_KIND_CODES = {"file": ord("f"), "dir": ord("d"), "symlink": ord("l"), "special": ord("s")}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


class Listing:
    """The complete listing of one directory: entry name -> kind (``"file"``, ``"dir"``,
    ``"symlink"`` or ``"special"``). Names are already filtered with ``cosfs.metadata.paths.visible_name``.

    Compact, because a directory may hold 100,000 entries and is cached whole: one sorted
    tuple of names and one byte of kind per name: 65 bytes an entry with a 7-character name,
    its string included (tracemalloc, 100,000 names), against 94 in the dict it replaced,
    which listing also copied once (a peak of 133). ``kind`` finds a name by bisection.
    Immutable: an edit makes a new listing. ``entries`` is a read-only mapping view.

    Deliberately has no ``__len__``: an empty directory's listing is still a truthy hit.
    """

    __slots__ = ("_names", "_kinds")

    def __init__(self, entries: Optional[Mapping[str, str]] = None) -> None:
        names = tuple(sorted(entries or ()))
        self._names, self._kinds = names, _codes(entries[name] for name in names) if names else b""

    @classmethod
    def of_sorted(cls, names: Tuple[str, ...], kinds: bytes) -> "Listing":
        """A listing of ``names`` (sorted, distinct) and their kind codes, without copying them."""
        listing = cls.__new__(cls)
        listing._names, listing._kinds = names, kinds
        return listing

    @classmethod
    def of_files_and_dirs(cls, files: List[str], dirs: List[str]) -> "Listing":
        """The listing of a directory whose list pages gave ``files`` and sub-directory ``dirs``
        (a name in both shows as the file, as the HEAD order answers)."""
        dirs_only = set(dirs).difference(files)
        names = files + list(dirs_only) if dirs_only else files
        names.sort()
        file_code, dir_code = _KIND_CODES["file"], _KIND_CODES["dir"]
        if dirs_only:
            kinds = bytes(dir_code if name in dirs_only else file_code for name in names)
        else:
            kinds = bytes([file_code]) * len(names)
        return cls.of_sorted(tuple(names), kinds)

    @property
    def entries(self) -> Mapping[str, str]:
        """Name -> kind, read-only, iterated in name order."""
        return _EntriesView(self)

    def names(self) -> Tuple[str, ...]:
        """The entry names, sorted (code point order, which is COS's UTF-8 key order)."""
        return self._names

    def kind(self, name: str) -> Optional[str]:
        """The kind of entry ``name``, or ``None`` if the directory has no such entry."""
        index = self._index(name)
        return None if index is None else _CODE_KINDS[self._kinds[index]]

    def size(self) -> int:
        """How many entries (what the listing cache counts against ``max_list_cache_entries``)."""
        return len(self._names)

    def count(self, kind: str) -> int:
        """How many entries are of ``kind`` (a directory's subdirectories give its link count)."""
        return self._kinds.count(_KIND_CODES[kind])

    def with_entry(self, name: str, kind: Optional[str]) -> "Listing":
        """A copy with entry ``name`` set to ``kind`` (``None``: without it)."""
        index = bisect.bisect_left(self._names, name)
        present = index < len(self._names) and self._names[index] == name
        after = index + 1 if present else index
        if kind is None:
            middle_names: Tuple[str, ...] = ()
            middle_kinds = b""
        else:
            middle_names, middle_kinds = (name,), _codes([kind])
        return Listing.of_sorted(self._names[:index] + middle_names + self._names[after:],
                                 self._kinds[:index] + middle_kinds + self._kinds[after:])

    def _index(self, name: object) -> Optional[int]:
        if not isinstance(name, str):
            return None
        index = bisect.bisect_left(self._names, name)
        return index if index < len(self._names) and self._names[index] == name else None

    def __contains__(self, name: object) -> bool:
        return self._index(name) is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Listing):
            return NotImplemented
        return self._names == other._names and self._kinds == other._kinds

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Listing({len(self._names)} entries)"


def _codes(kinds: Iterable[str]) -> bytes:
    try:
        return bytes(_KIND_CODES[kind] for kind in kinds)
    except KeyError as unknown:
        raise ValueError(f"listing kinds must be among {sorted(KINDS)}, not {unknown.args[0]!r}") from None


class _EntriesView(Mapping):
    """``Listing.entries``: name -> kind, computed from the compact form on demand."""

    __slots__ = ("_listing",)

    def __init__(self, listing: Listing) -> None:
        self._listing = listing

    def __getitem__(self, name: str) -> str:
        kind = self._listing.kind(name)
        if kind is None:
            raise KeyError(name)
        return kind

    def __iter__(self) -> Iterator[str]:
        return iter(self._listing.names())

    def __len__(self) -> int:
        return self._listing.size()

    def __contains__(self, name: object) -> bool:
        return name in self._listing

    def items(self) -> "_ItemsView":
        return _ItemsView(self)


class _ItemsView(ItemsView):
    """(name, kind) pairs in name order, straight from the compact form (no lookup per name)."""

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        listing = self._mapping._listing
        return ((name, _CODE_KINDS[code]) for name, code in zip(listing._names, listing._kinds))


@dataclass(frozen=True)
class _Timed:
    """A listing and the moment it stops being trusted (fixed when it was fetched)."""

    listing: Listing
    expires: float


class ListCache:
    """Directory path -> its complete ``Listing``, for ``ttl`` seconds from when it was fetched.

    Bounded by entries, not listings: the listings held have at most ``max_entries`` entries
    in all (an empty listing counts as one), the least recently used dropped first. A listing
    larger than the whole bound is not cached at all: its directory is listed again from COS
    each time it is read (a re-walk of it costs its list pages again).
    """

    def __init__(self, ttl: float, max_entries: int = 200_000, clock: Clock = time.monotonic) -> None:
        _check_bounds(ttl, max_entries)
        self._lock = threading.Lock()
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._listings: Optional[TLRUCache] = None  # guarded by self._lock
        if ttl and max_entries:
            self._listings = TLRUCache(maxsize=max_entries, ttu=lambda _key, entry, _now: entry.expires,
                                       timer=clock, getsizeof=_entries_counted)

    def get(self, dir_path: str) -> Optional[Listing]:
        """The cached listing of ``dir_path``, or ``None`` when the cache does not know."""
        with self._lock:
            if self._listings is None:
                return None
            entry = self._listings.get(dir_path)
            return entry.listing if entry is not None else None

    def put(self, dir_path: str, listing: Listing) -> None:
        """Remember the complete listing of ``dir_path``, as fetched now (unless it is larger
        than the whole cache: then any older listing of it is forgotten)."""
        with self._lock:
            if self._listings is not None:
                self._store(dir_path, _Timed(listing, self._clock() + self._ttl))

    def _store(self, dir_path: str, entry: "_Timed") -> None:
        """Cache ``entry`` if it fits the bound at all. Holds the lock."""
        if _entries_counted(entry) > self._max_entries:
            self._listings.pop(dir_path, None)
            log.debug("listing of %s (%d entries) exceeds max_list_cache_entries=%d: not cached",
                      dir_path, entry.listing.size(), self._max_entries)
            return
        self._listings[dir_path] = entry

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
            self._store(dir_path, _Timed(entry.listing.with_entry(name, kind), entry.expires))

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


def _entries_counted(entry: "_Timed") -> int:
    """What one cached listing weighs against the bound: its entries, at least one."""
    return max(1, entry.listing.size())


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
