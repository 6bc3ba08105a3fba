"""A set of byte ranges: which parts of a sparsely staged file were written here.

A sparse staging file (``cosfs.data.sparse``) holds only the bytes written through the
mount; everything else comes from the object in COS. ``Extents`` says which is which, as
sorted, disjoint, non-touching half-open ranges ``[start, end)`` (touching ranges are merged,
so a sequential writer keeps one range however many writes it sends).
"""

from __future__ import annotations

import bisect
from typing import Iterable, Iterator, List, Sequence, Tuple

Range = Tuple[int, int]


class Extents:
    """Sorted disjoint ``[start, end)`` ranges; not thread-safe (its owner locks)."""

    def __init__(self, ranges: Iterable[Sequence[int]] = ()) -> None:
        self._starts: List[int] = []
        self._ends: List[int] = []
        for start, end in ranges:
            self.add(start, end)

    def __iter__(self) -> Iterator[Range]:
        return iter(list(zip(self._starts, self._ends)))

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Extents) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Extents({list(self)!r})"

    @property
    def total(self) -> int:
        """Bytes covered."""
        return sum(end - start for start, end in self)

    def to_list(self) -> List[List[int]]:
        """JSON form (the journal record keeps it)."""
        return [[start, end] for start, end in self]

    def add(self, start: int, end: int) -> None:
        """Cover ``[start, end)``, merging with every range it overlaps or touches."""
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        if start == end:
            return
        first = bisect.bisect_left(self._ends, start)  # first range ending at or after start
        last = bisect.bisect_right(self._starts, end)  # ranges before it start at or before end
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def clip(self, length: int) -> None:
        """Forget everything at or past ``length`` (a truncate)."""
        cut = bisect.bisect_left(self._ends, length)
        del self._starts[cut + 1:], self._ends[cut + 1:]
        if cut < len(self._starts):
            if self._starts[cut] >= length:
                del self._starts[cut], self._ends[cut]
            else:
                self._ends[cut] = length

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    def within(self, start: int, end: int) -> List[Range]:
        """The covered parts of ``[start, end)``, in order."""
        found = []
        index = bisect.bisect_right(self._ends, start)
        while index < len(self._starts) and self._starts[index] < end:
            found.append((max(start, self._starts[index]), min(end, self._ends[index])))
            index += 1
        return found

    def overlaps(self, start: int, end: int) -> bool:
        """Whether any byte of ``[start, end)`` is covered."""
        return bool(self.within(start, end))

    def pieces(self, start: int, end: int) -> List[Tuple[int, int, bool]]:
        """``[start, end)`` cut into ``(start, end, covered)`` runs, in order, covering all of it."""
        runs = []
        position = start
        for piece_start, piece_end in self.within(start, end):
            if piece_start > position:
                runs.append((position, piece_start, False))
            runs.append((piece_start, piece_end, True))
            position = piece_end
        if position < end:
            runs.append((position, end, False))
        return runs
