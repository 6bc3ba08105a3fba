"""Which uploads are running and how far each got: what ``cosfs status`` shows as progress bars.

The uploader ``start``s each upload with its key and size, reports bytes as they are stored
(a single PUT all at once when it returns, a multipart upload part by part) and ``finish``es
it, whatever the outcome. ``snapshot`` is cheap and never waits for an upload: it is read
by the status socket and the metrics endpoint while uploads run.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List


@dataclass(frozen=True)
class UploadProgress:
    """One running upload: ``rate_bps`` is its average rate since it started."""

    key: str
    bytes_done: int
    bytes_total: int
    started: float
    rate_bps: float


@dataclass
class _Running:
    key: str
    total: int
    started: float
    started_monotonic: float
    done: int = 0


class TrackedUpload:
    """The handle the uploader reports one upload's progress through."""

    def __init__(self, tracker: "UploadTracker", token: int) -> None:
        self._tracker = tracker
        self._token = token

    def add(self, nbytes: int) -> None:
        """``nbytes`` more are stored in COS."""
        self._tracker._add(self._token, nbytes)

    def grow(self, total: int) -> None:
        """The upload is of ``total`` bytes now (a streamed file grows while it is sent)."""
        self._tracker._grow(self._token, total)

    def finish(self) -> None:
        """The upload is over (stored or failed); finishing twice does nothing."""
        self._tracker._finish(self._token)


class UploadTracker:
    """Thread-safe table of the running uploads."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._running: Dict[int, _Running] = {}  # guarded by self._lock
        self._tokens = itertools.count(1)

    def start(self, key: str, total: int) -> TrackedUpload:
        """An upload of ``total`` bytes to ``key`` begins."""
        with self._lock:
            token = next(self._tokens)
            self._running[token] = _Running(key, total, self._clock(), self._monotonic())
        return TrackedUpload(self, token)

    def snapshot(self) -> List[UploadProgress]:
        """The running uploads, oldest first."""
        now = self._monotonic()
        with self._lock:
            views = [(r.key, r.done, r.total, r.started, r.started_monotonic) for r in self._running.values()]
        return [
            UploadProgress(key, done, total, started, done / (now - since) if now > since else 0.0)
            for key, done, total, started, since in views
        ]

    def _add(self, token: int, nbytes: int) -> None:
        with self._lock:
            running = self._running.get(token)
            if running is not None:
                running.done = min(running.total, running.done + nbytes)

    def _grow(self, token: int, total: int) -> None:
        with self._lock:
            running = self._running.get(token)
            if running is not None:
                running.total = max(running.total, total)

    def _finish(self, token: int) -> None:
        with self._lock:
            self._running.pop(token, None)
