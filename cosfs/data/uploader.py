"""Store a staged file's bytes [0, size) in COS as one object, never half of one.

``Uploader`` sends one PUT, or a multipart upload that is aborted on any failure, so the
object in COS is always either the old one or the complete new one. It only asks its
source for byte ranges (``ByteSource``; ``cosfs.data.staging.StagedFile`` is one), so a
streaming producer can feed ``MultipartUpload`` later. A ``PartCopies`` names the parts COS
can copy from the object being replaced instead (``cosfs.data.rebuild``): those are sent as
Upload Part - Copy, pinned to the old object's ETag, and never read from the source.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Protocol, Sequence, Tuple

from cosfs.data.part_plan import PartLimits, Span, grid_spans, plan_spans
from cosfs.data.upload_tracker import UploadTracker
from cosfs.store.interface import Metadata, ObjectInfo, PartInfo, Store, UploadSession, plan_parts
from cosfs.wire.errors import ConfigError, CosError, CosfsError

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class UploadPolicy:
    """How the uploader cuts and paces uploads. At most ``parallel`` requests carry data at a
    time per ``Uploader``, which bounds its memory to parallel × max(part size, threshold)."""

    part_size: int = 8 * MiB
    multipart_threshold: int = 16 * MiB
    parallel: int = 4

    def __post_init__(self) -> None:
        if self.part_size < 1 or self.multipart_threshold < 0 or self.parallel < 1:
            raise ConfigError(f"bad upload policy {self}: sizes must be positive, parallel >= 1")


class ByteSource(Protocol):
    """What the uploader reads from: a size, and exact byte ranges (``StagedFile`` is one)."""

    @property
    def size(self) -> int: ...

    def read_range(self, start: int, end: int) -> bytes: ...


@dataclass(frozen=True)
class PartCopies:
    """What COS may copy server-side from ``key`` at version ``etag``: the byte ranges
    ``runs`` (sorted, disjoint ``[start, end)``) of the new version are that object's same
    bytes at the same offsets (``cosfs.data.part_plan`` cuts the parts around them)."""

    key: str
    etag: str
    runs: Sequence[Tuple[int, int]]


class MultipartUpload:
    """Sends the parts of one begun upload session, then completes it, or aborts it.

    A part's bytes are read in the worker just before they are sent, and ``send`` blocks while
    the shared ``slots`` are all taken, so only that many parts are ever in memory. ``send``
    raises as soon as an earlier part has failed.
    """

    def __init__(self, session: UploadSession, source: ByteSource, executor: ThreadPoolExecutor,
                 slots: threading.Semaphore, on_stored: Callable[[int], None] = lambda nbytes: None,
                 on_part: Optional[Callable[[int, int, int], None]] = None) -> None:
        self.session = session
        self._on_stored = on_stored
        #: Hears ``(number, start, end)`` of each part COS confirmed (a stream frees its bytes).
        self._on_part = on_part
        self._source = source
        self._executor = executor
        self._slots = slots
        self._lock = threading.Lock()
        self._futures: List[Future] = []  # guarded by self._lock
        self._error: Optional[BaseException] = None  # guarded by self._lock
        #: Parts offered while every slot was taken: sent as slots free up (``pump``).
        self._backlog: Deque[Tuple[int, int, int]] = deque()  # guarded by self._lock

    def offer(self, number: int, start: int, end: int) -> None:
        """Queue part ``number`` without waiting for a slot (a streaming writer must not wait
        for the network): it is sent as soon as a slot is free, when a part of this upload
        ends or ``pump`` is called, and at the latest by ``finish``."""
        self._raise_failure()
        with self._lock:
            self._backlog.append((number, start, end))
        self.pump()

    def pump(self) -> None:
        """Send offered parts while slots are free."""
        while True:
            with self._lock:
                if not self._backlog or self._error is not None or not self._slots.acquire(blocking=False):
                    return
                number, start, end = self._backlog.popleft()
                try:
                    future = self._executor.submit(self._put, number, start, end)
                except BaseException:
                    self._slots.release()
                    raise
                self._futures.append(future)
            future.add_done_callback(self._done)

    def _send_backlog(self) -> None:
        """Send every offered part, waiting for slots."""
        while True:
            with self._lock:
                if not self._backlog:
                    return
                number, start, end = self._backlog.popleft()
            self.send(number, start, end)

    def send(self, number: int, start: int, end: int, copy: Optional[PartCopies] = None) -> None:
        """Queue part ``number``: bytes [start, end) of the source, or, with ``copy``, the same
        bytes of the object it names, copied server-side."""
        self._raise_failure()
        self._slots.acquire()
        try:
            self._raise_failure()
            work = self._put if copy is None else functools.partial(self._copy, copy)
            future = self._executor.submit(work, number, start, end)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._futures.append(future)
        future.add_done_callback(self._done)

    @property
    def failure(self) -> Optional[BaseException]:
        """The first failed part's error, if any (read without the lock: one attribute load)."""
        return self._error

    @property
    def in_flight(self) -> int:
        """Parts queued or being sent."""
        with self._lock:
            return sum(1 for future in self._futures if not future.done()) + len(self._backlog)

    def wait_sent(self) -> List[Future]:
        """Wait for every part queued so far; raise if one failed (before a part is sent again,
        so that the later copy is the one COS keeps). Returns the parts' futures, all done."""
        self._send_backlog()
        with self._lock:
            futures = list(self._futures)
        wait(futures)
        self._raise_failure()
        return futures

    def finish(self, stored: Sequence[PartInfo] = ()) -> ObjectInfo:
        """Wait for every part, then complete with them and ``stored`` (parts an earlier try
        left in COS); a part sent twice counts once, as its later copy. A transient failure of
        complete is retried once (the same parts again, so it cannot store anything else)."""
        futures = self.wait_sent()
        latest = {part.number: part for part in stored}
        latest.update((part.number, part) for part in (future.result() for future in futures))
        parts = sorted(latest.values(), key=lambda part: part.number)
        try:
            return self.session.complete(parts)
        except CosError as error:
            if not error.transient:
                raise
            log.warning("completing upload of %r failed (%s); trying once more", self.session.key, error)
            return self.session.complete(parts)

    def abort(self) -> bool:
        """Stop queued parts, wait for running ones, and discard the upload; the object is left
        as it was. A failing abort is logged, never raised (the caller has a better error);
        returns whether COS confirmed it."""
        self.stop()
        try:
            self.session.abort()
            return True
        except Exception as error:
            log.warning("could not abort upload %s of %r (%s); COS keeps its parts until the next mount "
                        "or cosfs recover aborts it, or a lifecycle rule removes them", self.session.upload_id,
                        self.session.key, error)
            return False

    def stop(self) -> None:
        """Cancel the queued parts and wait for the running ones (the session stays as it is)."""
        with self._lock:
            self._backlog.clear()
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        wait(futures)

    def _put(self, number: int, start: int, end: int) -> PartInfo:
        part = self.session.put_part(number, self._source.read_range(start, end))
        self._on_stored(end - start)
        if self._on_part is not None:
            self._on_part(number, start, end)
        return part

    def _copy(self, copy: PartCopies, number: int, start: int, end: int) -> PartInfo:
        part = self.session.copy_part(number, copy.key, start, end - 1, if_match=copy.etag)
        self._on_stored(end - start)
        return part

    def _done(self, future: Future) -> None:
        """Record a failure before freeing the slot, so the next ``send`` sees it."""
        if not future.cancelled() and future.exception() is not None:
            with self._lock:
                if self._error is None:
                    self._error = future.exception()
        self._slots.release()
        self.pump()

    def _raise_failure(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error


class Uploader:
    """Stores a staged file as one object, by PUT or by multipart upload (see ``UploadPolicy``).

    The store's transport already repeats transient failures of each request; nothing is
    repeated here except one ``complete``. The caller must not call ``upload`` from a thread
    of ``executor`` (it would wait for itself). ``progress`` hears how far each upload got.
    """

    def __init__(self, store: Store, policy: Optional[UploadPolicy] = None,
                 executor: Optional[ThreadPoolExecutor] = None, progress: Optional[UploadTracker] = None) -> None:
        self.policy = policy or UploadPolicy()
        self.progress = progress or UploadTracker()
        self._store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=self.policy.parallel, thread_name_prefix="cosfs-upload")
        self._slots = threading.BoundedSemaphore(self.policy.parallel)

    def parts_of(self, session: UploadSession, source: ByteSource,
                 on_part: Callable[[int, int, int], None]) -> MultipartUpload:
        """A ``MultipartUpload`` of ``session`` sharing this uploader's threads and memory bound
        (a streaming writer feeds it part by part); ``on_part`` hears each stored part."""
        return MultipartUpload(session, source, self._executor, self._slots, on_part=on_part)

    def close(self) -> None:
        """Stop the worker threads this uploader started (none if the executor was given)."""
        if self._own_executor:
            self._executor.shutdown(wait=True)

    def upload(self, key: str, staged: ByteSource, meta: Optional[Metadata] = None,
               content_type: Optional[str] = None,
               on_session: Optional[Callable[[Optional[str]], None]] = None,
               multipart: Optional[bool] = None, copies: Optional[PartCopies] = None) -> ObjectInfo:
        """Store bytes [0, staged.size) as ``key``. On failure the previous object is
        untouched, the error is raised, and ``staged`` is left as it was.

        ``on_session`` hears the upload id as soon as a multipart session is begun, and
        ``None`` once it is completed or aborted, so a journal can name every session a crash
        might leave behind. ``multipart`` forces the choice the size would make (``None``).
        ``copies`` (only where the store can copy parts) names the parts to copy server-side."""
        size = staged.size
        started = time.monotonic()
        limits = self._store.limits
        tracked = self.progress.start(key, size)
        try:
            single = size <= min(self.policy.multipart_threshold, limits.max_put_size)
            if multipart is not None:
                single = not multipart or size == 0
            if single:
                with self._slots:
                    info = self._store.put_object(key, staged.read_range(0, size), meta, content_type)
                tracked.add(size)
                parts = 1
            else:
                info, parts = self._multipart(key, staged, size, meta, content_type, on_session, tracked.add,
                                              copies if limits.part_copy else None)
        except BaseException as error:
            log.warning("upload of %r (%d bytes) failed after %.1f s: %s",
                        key, size, time.monotonic() - started, error)
            raise
        finally:
            tracked.finish()
        log.info("uploaded %r: %d bytes, %d part(s), %.1f s", key, size, parts, time.monotonic() - started)
        return info

    def _multipart(self, key: str, staged: ByteSource, size: int, meta: Optional[Metadata],
                   content_type: Optional[str], on_session: Optional[Callable[[Optional[str]], None]],
                   on_stored: Callable[[int], None], copies: Optional[PartCopies]) -> Tuple[ObjectInfo, int]:
        limits = self._store.limits
        plan = plan_parts(size, limits, self.policy.part_size)
        session = self._store.begin_upload(key, size, meta, content_type, plan.part_size)
        upload = MultipartUpload(session, staged, self._executor, self._slots, on_stored)
        announce = on_session or (lambda _upload_id: None)
        try:
            announce(session.upload_id)
            part_size = session.part_size or plan.part_size
            spans = self._spans(size, part_size, copies)
            count = len(spans)
            if count > limits.max_parts:
                raise CosfsError(f"upload of {key!r} needs {count} parts of {part_size} bytes, more "
                                 f"than the {limits.max_parts} COS allows", errno.EFBIG)
            copied = sum(span.copy for span in spans)
            for number, span in enumerate(spans, start=1):
                upload.send(number, span.start, span.end, copies if span.copy else None)
            info = upload.finish()
        except CosError as error:
            info = self._resumed(key, staged, size, part_size, count, upload, error, on_stored)
            if info is None:
                if upload.abort():
                    announce(None)  # else the journal keeps the id: the next mount aborts it
                raise
        except BaseException:
            if upload.abort():
                announce(None)
            raise
        announce(None)
        if copied:
            log.debug("upload of %r: %d of %d parts copied server-side", key, copied, count)
        return info, count

    def _spans(self, size: int, part_size: int, copies: Optional[PartCopies]) -> List[Span]:
        """The parts to send: around copied ranges as few as COS allows (``plan_spans``),
        else (nothing to copy, or too many pieces) the fixed grid of ``part_size``."""
        runs = copies.runs if copies is not None else ()
        spans = None
        if runs:
            limits = self._store.limits
            spans = plan_spans(size, runs, PartLimits(part_size, limits.min_part_size, limits.max_part_size,
                                                      limits.max_parts, self.policy.parallel))
        return spans if spans is not None else grid_spans(size, part_size, runs)

    def _resumed(self, key: str, staged: ByteSource, size: int, part_size: int, count: int,
                 failed: MultipartUpload, error: CosError, on_stored: Callable[[int], None]) -> Optional[ObjectInfo]:
        """Where an unfinished upload outlives a failure (JSON: no abort, COS keeps the slices),
        resume it once: ask COS which slices it holds (``find_upload``, ``list_parts``) and
        send only the missing ones. ``None`` when there is nothing to resume or that fails too
        (the caller then gives up with the first error)."""
        if self._store.limits.abortable_uploads:
            return None
        failed.stop()
        try:
            session = self._store.find_upload(key, size)
            if session is None or (session.part_size or part_size) != part_size:
                return None
            held = [part for part in session.list_parts()
                    if 1 <= part.number <= count and part.size == min(size, part.number * part_size)
                    - (part.number - 1) * part_size]
            log.warning("upload of %r failed (%s); resuming it: COS holds %d of its %d parts",
                        key, error, len(held), count)
            resumed = MultipartUpload(session, staged, self._executor, self._slots, on_stored)
            numbers = {part.number for part in held}
            for index in range(count):
                if index + 1 not in numbers:
                    resumed.send(index + 1, index * part_size, min(size, (index + 1) * part_size))
            return resumed.finish(held)
        except CosError as again:
            log.warning("resuming the upload of %r failed too: %s", key, again)
            return None
