"""Streaming write-back: store a file in COS part by part while it is being written.

A 10 GiB ``cp`` staged whole needs 10 GiB of ``cache_dir`` and a close that waits for all
of it. So a file written from offset 0 onward (a new file, or one truncated to zero), on an
API whose uploads need not know their size up front (``StoreLimits.upload_needs_size``
false: XML), streams instead:

- once it outgrows ``multipart_threshold`` a multipart session begins (a smaller file is
  still one PUT at close), and each time the staged size passes one full part beyond what
  was sent, that part goes to the upload pool while the application keeps writing;
- close (or fsync) sends the rest and completes; when the metadata to store changed since
  the session began (the mtime of the last write, a chmod), one ``set_meta`` fixes it;
- once COS confirms a part, its bytes are punched out of the staging file (the journal
  names the range first, so recovery never publishes the holes), except part 1, which stays
  until the end: muxers and zip writers rewrite their header at offset 0, and part 1 is
  then sent again;
- a write into a part already sent (but part 1), a read of one, or a truncate below what
  was sent, ends streaming: with nothing punched yet the session is aborted and the
  staging file is whole again (``stop``); otherwise the caller completes the session so
  the object holds what was written so far, and goes on as with any existing object.

No HTTP here: the session is the store's and the part requests run in the uploader's pool.
The caller (``cosfs.filesystem.open_files``) makes every call of one stream under its
file's lock; the pool's threads only report stored parts (``_part_stored``).

Bounds:

- ``DirtyBudget`` (``max_dirty_mb``): bytes written to streaming files and not yet stored,
  for all of them together. A write waits while the budget is spent *and its own file has
  parts in flight*; a file with none may always go on, so files that each hold a partial
  part never wait for each other (the budget is overshot by at most one part per stream).
- Memory: a part's bytes are read from the staging file just before they are sent
  (``MultipartUpload``), so parts in memory are at most the uploader's ``parallel``.
- Part sizes grow: ``part_size`` for parts 1 to 1,000, doubling every 1,000 parts, capped at
  the API's largest part, so 10,000 parts of 8 MiB reach about 8 TiB (``max_stream_size``).
  A write past that size fails with EFBIG.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple

from cosfs.data.staging import StagedFile
from cosfs.data.upload_tracker import TrackedUpload
from cosfs.data.uploader import MultipartUpload, Uploader
from cosfs.store.interface import ObjectInfo, Store, StoreLimits
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)

#: Parts of one size before the part size doubles.
PARTS_PER_STEP = 1000
#: How long a waiting writer sleeps between looks at its stream's health.
WAIT_SLICE = 0.1


def stream_part_size(number: int, base: int, limits: StoreLimits) -> int:
    """The size of part ``number`` (from 1) of a stream whose first part is ``base`` bytes."""
    return min(limits.max_part_size, base << ((number - 1) // PARTS_PER_STEP))


def max_stream_size(base: int, limits: StoreLimits) -> int:
    """The largest file a stream can store: all ``max_parts`` parts at their grown sizes."""
    total, number = 0, 1
    while number <= limits.max_parts:
        count = min(PARTS_PER_STEP, limits.max_parts - number + 1)
        total += count * stream_part_size(number, base, limits)
        number += count
    return total


class DirtyBudget:
    """Bytes written to streaming files and not yet stored in COS, shared by all of them."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._used = 0  # guarded by self._cond
        self._progress = 0  # guarded by self._cond: counts give_back calls

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    def take(self, nbytes: int, may_wait: Callable[[], bool], failure: Callable[[], Optional[BaseException]],
             stall_timeout: float) -> None:
        """Count ``nbytes`` more, first waiting while the budget is spent and ``may_wait()``
        (the writer has parts in flight). Raises ``failure()`` when the writer's stream
        failed meanwhile, and EIO when no part of any stream was stored for
        ``stall_timeout`` seconds (each part request gives up well before that)."""
        with self._cond:
            progress = self._progress
            deadline = self._clock() + stall_timeout
            while self._used and self._used + nbytes > self.limit and may_wait():
                error = failure()
                if error is not None:
                    raise error
                if self._progress != progress:
                    progress, deadline = self._progress, self._clock() + stall_timeout
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise CosfsError(f"no part was stored in COS for {stall_timeout:g} s while a write waited "
                                     f"for max_dirty_mb ({self.limit} bytes) to free up", errno.EIO)
                self._cond.wait(min(remaining, WAIT_SLICE))
            self._used += nbytes

    def give_back(self, nbytes: int) -> None:
        """``nbytes`` were stored (or dropped): waiting writers may go on."""
        if nbytes <= 0:
            return
        with self._cond:
            self._used = max(0, self._used - nbytes)
            self._progress += 1
            self._cond.notify_all()


@dataclass(frozen=True)
class StreamPolicy:
    """How streams cut and pace their uploads (from the mount's options)."""

    part_size: int
    multipart_threshold: int
    #: Seconds a write may wait for the dirty budget with no part stored anywhere.
    stall_timeout: float = 70.0


class StreamUpload:
    """One file being streamed: its session (once begun), what was sent, and what was freed."""

    def __init__(self, key: str, staged: StagedFile, store: Store, uploader: Uploader, budget: DirtyBudget,
                 policy: StreamPolicy, wall: Callable[[], float] = time.time) -> None:
        self.key = key
        self._staged = staged
        self._store = store
        self._uploader = uploader
        self._budget = budget
        self._policy = policy
        self._wall = wall
        limits = store.limits
        self._limits = limits
        self._base = max(limits.min_part_size, min(policy.part_size, limits.max_part_size))
        self.max_size = max_stream_size(self._base, limits)
        self._upload: Optional[MultipartUpload] = None
        self._tracked: Optional[TrackedUpload] = None  # what ``cosfs status`` shows of it
        self._begun_with: Optional[Tuple[Dict[str, str], Optional[str]]] = None
        self._next_number = 1
        self._sent_end = 0  # bytes [0, _sent_end) are queued or stored as parts
        self._written_end = 0  # the furthest byte written: a file extended by truncate is not sent ahead of its writes
        self._part1_end = self._base
        self._part1_dirty = False  # part 1 changed after it was queued: sent again at the end
        self._lock = threading.Lock()  # orders the pool's reports with stop()
        self._freed_end = self._base  # guarded by _lock: parts from part 1's end to this are punched out
        self._may_punch = True  # guarded by _lock
        self._charged = 0  # guarded by _lock: budget bytes this stream holds

    # --- what the file's writer asks --------------------------------------------------------

    @property
    def begun(self) -> bool:
        """Whether a multipart session holds some of the file."""
        return self._upload is not None

    @property
    def punched(self) -> bool:
        """Whether some of the file's bytes are only in the session now, not on local disk."""
        with self._lock:
            return self._punched_locked

    def touches_sent(self, start: int, end: int) -> bool:
        """Whether bytes [start, end) meet parts already sent past part 1, or run from inside
        part 1 past its end once part 1 was sent: changing them, or reading them (they may be
        holes now), ends streaming. Part 1 alone may be rewritten in place; a truncate into
        it is caught by the second clause, as it must be (COS holds the longer part 1)."""
        return self.begun and end > start and start < self._sent_end and end > self._part1_end

    def before_write(self, offset: int, length: int, size: int) -> bool:
        """Before ``length`` bytes are written at ``offset`` of a file of ``size`` bytes: whether
        the stream can take it (``False``: it meets sent parts, and the caller ends the
        stream first). Waits for the dirty budget; raises the stream's failure, or EFBIG past
        the largest file a stream can store."""
        self._raise_failure()
        end = offset + length
        if self.touches_sent(offset, end):
            return False
        if end > self.max_size:
            raise CosfsError(f"{self.key!r} would pass {self.max_size} bytes, the most an upload of "
                             f"{self._limits.max_parts} growing parts from {self._base} bytes can store", errno.EFBIG)
        self._written_end = max(self._written_end, end)
        growth = end - size
        if growth > 0:
            self._budget.take(growth, self._has_in_flight, lambda: self._failure, self._policy.stall_timeout)
            with self._lock:
                self._charged += growth
        if self.begun and offset < self._part1_end <= self._sent_end:
            self._part1_dirty = True
        return True

    def wrote(self, size: int, meta: Callable[[], Tuple[Mapping[str, str], Optional[str]]]) -> None:
        """After a write left the file ``size`` bytes long: begin the session once the file
        outgrows the threshold (``meta()`` gives what to begin it with), and queue every part
        that is full (of written bytes: a file preallocated by ``ftruncate`` is sent as its
        writes arrive). Raises when the session cannot begin or an earlier part failed."""
        size = min(size, self._written_end)
        if self._upload is None:
            if size <= self._policy.multipart_threshold:
                return
            self._begin(*meta())
        self._tracked.grow(size)
        while self._next_number <= self._limits.max_parts and size - self._sent_end >= self._next_size():
            start, end = self._sent_end, self._sent_end + self._next_size()
            self._upload.offer(self._next_number, start, end)
            self._next_number += 1
            self._sent_end = end

    def stop(self) -> bool:
        """Free nothing more; returns whether anything was freed (then only completing the
        session keeps what was written)."""
        with self._lock:
            self._may_punch = False
            return self._punched_locked

    def finish(self, meta: Mapping[str, str], content_type: Optional[str]) -> ObjectInfo:
        """Send the rest (and part 1 again if it changed), complete, and give the object
        ``meta`` if it was begun with other metadata. On failure the session is aborted and
        the error raised."""
        upload = self._upload
        if upload is None:
            raise CosfsError(f"no upload of {self.key!r} was begun", errno.EINVAL)
        self.stop()
        size = self._staged.size
        try:
            if size > self._sent_end:
                upload.send(self._next_number, self._sent_end, size)
            if self._part1_dirty:
                upload.wait_sent()  # the later copy of part 1 must be the one COS keeps
                upload.send(1, 0, self._part1_end)
            info = upload.finish()
            if (dict(meta), content_type) != self._begun_with:
                self._store.set_meta(self.key, meta, content_type)
                info = self._store.stat(self.key) or info
        except BaseException:
            self._abort(upload)
            raise
        finally:
            self._give_back_all()
        self._upload = None
        self._staged.journal(upload_id=None)
        return info

    def abort(self) -> None:
        """Drop the stream: the session (if any) is aborted, its budget given back."""
        self.stop()
        upload, self._upload = self._upload, None
        try:
            if upload is not None:
                self._abort(upload)
        finally:
            self._give_back_all()

    def end(self) -> None:
        """The file is no longer streamed and no session was begun: give the budget back."""
        self.stop()
        self._give_back_all()

    # --- inside -----------------------------------------------------------------------------

    @property
    def _failure(self) -> Optional[BaseException]:
        """The first failed part's error (read without a lock: one attribute load)."""
        upload = self._upload
        return upload.failure if upload is not None else None

    def _raise_failure(self) -> None:
        error = self._failure
        if error is not None:
            raise error

    def _has_in_flight(self) -> bool:
        """Whether parts are queued or being sent; queued ones are sent now if slots freed up
        (asked again and again by a writer waiting for the budget)."""
        upload = self._upload
        if upload is None:
            return False
        upload.pump()
        return upload.in_flight > 0

    def _next_size(self) -> int:
        return stream_part_size(self._next_number, self._base, self._limits)

    def _begin(self, meta: Mapping[str, str], content_type: Optional[str]) -> None:
        self._staged.journal(upload_started=self._wall())  # before: a crash right after begin is found
        session = self._store.begin_upload(self.key, None, meta, content_type, self._base)
        self._staged.journal(upload_id=session.upload_id, stream_part_size=self._base)
        self._upload = self._uploader.parts_of(session, self._staged, self._part_stored)
        self._tracked = self._uploader.progress.start(self.key, self._staged.size)
        self._begun_with = (dict(meta), content_type)
        log.debug("streaming %r: upload %s begun", self.key, session.upload_id)

    def _part_stored(self, number: int, start: int, end: int) -> None:
        """In a pool thread: COS holds part ``number``; free its bytes (not part 1's), with the
        journal widened to cover them first. The budget is given back after the punch, so
        the disk never holds more than the budget allows."""
        with self._lock:
            released = min(self._charged, end - start)
            self._charged -= released
            if number > 1 and self._may_punch:
                self._punch(start, end)
        self._budget.give_back(released)
        tracked = self._tracked
        if tracked is not None:
            tracked.add(end - start)

    def _punch(self, start: int, end: int) -> None:
        """Under ``_lock``: punch bytes [start, end) out. The journal's range runs from part 1's
        end to the furthest part freed (parts still in flight inside it are not holes yet,
        which recovery need not know: it publishes no file with such a range)."""
        freed_end = max(self._freed_end, end)
        try:
            self._staged.journal(punched=[self._part1_end, freed_end])
            if self._staged.punch(start, end):
                self._freed_end = freed_end
                return
            self._staged.journal(punched=[self._part1_end, self._freed_end] if self._punched_locked else None)
        except CosfsError as error:
            log.warning("could not free the stored bytes %d..%d of %r from the staging area: %s",
                        start, end, self.key, error)
        self._may_punch = False

    @property
    def _punched_locked(self) -> bool:
        """``punched``, for a caller holding ``_lock``."""
        return self._freed_end > self._part1_end

    def _abort(self, upload: MultipartUpload) -> None:
        if upload.abort():
            try:
                self._staged.journal(upload_id=None)
            except CosfsError as error:
                log.warning("%s", error)

    def _give_back_all(self) -> None:
        if self._tracked is not None:
            self._tracked.finish()
        with self._lock:
            released, self._charged = self._charged, 0
        self._budget.give_back(released)


class Streams:
    """Starts the streams of one mount: one store, uploader, dirty budget and policy."""

    def __init__(self, store: Store, uploader: Uploader, budget: DirtyBudget,
                 stall_timeout: float = StreamPolicy.stall_timeout,
                 wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._uploader = uploader
        self.budget = budget
        self._policy = StreamPolicy(uploader.policy.part_size, uploader.policy.multipart_threshold, stall_timeout)
        self._wall = wall

    def start(self, key: str, staged: StagedFile) -> Optional[StreamUpload]:
        """A stream for the empty file ``staged`` of ``key``, or ``None`` where the API must
        know an upload's size when it begins (JSON): such files are staged whole."""
        if self._store.limits.upload_needs_size:
            return None
        return StreamUpload(key, staged, self._store, self._uploader, self.budget, self._policy, self._wall)
