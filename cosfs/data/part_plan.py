"""Cut a version rebuilt from an existing object into copied parts and sent parts.

A version staged sparsely (``cosfs.data.rebuild``) is mostly bytes the old object already
holds. Cut on the upload's fixed part grid, every 8 MiB of them costs an Upload Part - Copy
request, and the part where a change falls is downloaded and sent again whole. Here each
unchanged range becomes as few copy parts as keep the upload workers busy (at most COS's
5 GB a part), and a sent part is only as large as the part minimum requires: appending
1 MiB to a 1 GiB object is a handful of copies and one 1 MiB part.

Every part but the last must be at least ``min_part`` bytes, so an unchanged range too short
to be a part is sent instead, and a short sent part takes what it lacks from the copy that
follows it. Nothing here does I/O.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Span:
    """One part: bytes ``[start, end)`` of the new version, copied from the old object
    (``copy``) or sent by cosfs."""

    start: int
    end: int
    copy: bool

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class PartLimits:
    """The sizes a plan must respect: the upload's part size for sent parts, and COS's limits."""

    part_size: int
    min_part: int
    max_part: int
    max_parts: int
    #: Copy parts in flight at once: a long copy is cut into this many parts (or more).
    parallel: int


def grid_spans(size: int, part_size: int, copy_runs: Sequence[Tuple[int, int]]) -> List[Span]:
    """Parts of ``part_size`` on the fixed grid; a part wholly inside a run is copied."""
    starts = [run_start for run_start, _ in copy_runs]
    return [Span(start, min(size, start + part_size), _inside(start, min(size, start + part_size), copy_runs, starts))
            for start in range(0, size, part_size)]


def plan_spans(size: int, copy_runs: Sequence[Tuple[int, int]], limits: PartLimits) -> Optional[List[Span]]:
    """The parts of a ``size``-byte version whose ``copy_runs`` (sorted, disjoint ``[start,
    end)`` ranges) are the old object's same bytes; ``None`` when that cut needs more parts
    than COS allows (scattered small writes into a huge object: use ``grid_spans``)."""
    segments = _grow_sent(_segments(size, copy_runs, limits.min_part), limits.min_part)
    spans: List[Span] = []
    for index, segment in enumerate(segments):
        if segment.copy:
            piece = min(limits.max_part, max(limits.part_size, -(-segment.length // limits.parallel)))
        else:
            piece = limits.part_size
        spans.extend(_cut(segment, piece, limits, last=index == len(segments) - 1))
    return spans if len(spans) <= limits.max_parts else None


def _inside(start: int, end: int, runs: Sequence[Tuple[int, int]], starts: List[int]) -> bool:
    """Whether ``[start, end)`` lies in one run (``starts``: the runs' starts, for bisecting)."""
    index = bisect.bisect_right(starts, start) - 1
    return index >= 0 and end <= runs[index][1]


def _segments(size: int, copy_runs: Sequence[Tuple[int, int]], min_part: int) -> List[Span]:
    """``[0, size)`` as alternating copied and sent segments. A run shorter than a part is
    sent, unless it ends the version (the last part may be short)."""
    segments: List[Span] = []
    position = 0
    for run_start, run_end in copy_runs:
        run_start, run_end = max(run_start, position), min(run_end, size)
        if run_end <= run_start:
            continue
        if run_start > position:
            _append(segments, Span(position, run_start, False))
        _append(segments, Span(run_start, run_end, run_end - run_start >= min_part or run_end == size))
        position = run_end
    if position < size:
        _append(segments, Span(position, size, False))
    return segments


def _append(segments: List[Span], span: Span) -> None:
    """Add ``span``, merged into the last segment when both are of one kind."""
    if segments and segments[-1].copy == span.copy and segments[-1].end == span.start:
        segments[-1] = Span(segments[-1].start, span.end, span.copy)
    else:
        segments.append(span)


def _grow_sent(segments: List[Span], min_part: int) -> List[Span]:
    """Make every sent segment but the last at least ``min_part`` bytes: it takes the bytes
    it lacks from the copied segment after it, or that whole segment when what would be
    left of it is too short to be a part."""
    grown: List[Span] = []
    queue: Deque[Span] = deque(segments)
    while queue:
        segment = queue.popleft()
        if segment.copy or segment.length >= min_part or not queue:
            _append(grown, segment)
            continue
        following = queue.popleft()
        end = segment.start + min_part
        rest = following.end - end
        if rest > 0 and (rest >= min_part or not queue):
            queue.extendleft([Span(end, following.end, True), Span(segment.start, end, False)])
        else:
            merged = Span(segment.start, following.end, False)
            if queue and not queue[0].copy:
                merged = Span(segment.start, queue.popleft().end, False)
            queue.appendleft(merged)
    return grown


def _cut(segment: Span, piece: int, limits: PartLimits, last: bool) -> List[Span]:
    """``segment`` in parts of ``piece`` bytes. A short remainder joins the part before it
    (or the two share the bytes evenly where one part would pass ``max_part``), unless it
    is the version's last part, which may be short."""
    starts = list(range(segment.start, segment.end, piece))
    spans = [Span(start, min(segment.end, start + piece), segment.copy) for start in starts]
    if len(spans) > 1 and spans[-1].length < limits.min_part and not last:
        before, short = spans[-2], spans.pop()
        if before.length + short.length <= limits.max_part:
            spans[-1] = Span(before.start, short.end, segment.copy)
        else:
            middle = before.start + (short.end - before.start) // 2
            spans[-1:] = [Span(before.start, middle, segment.copy), Span(middle, short.end, segment.copy)]
    return spans
