"""Fault injection and request counters, both settable and readable while the server runs.

Reliability tests need a server that fails on purpose: answers 500/503 SlowDown at a given
rate, drops connections in the middle of a body, adds latency, limits bandwidth, refuses
object names that match a pattern (as COS refuses some names cosfs cannot foresee), or
stalls: takes connections and requests and answers none of them, as a hung server or a
network that lost its way back does (a stopped process, but one the admin endpoint can
wake). The decisions come from one seeded random source, so a test run can be repeated.
Counters per operation let a test assert how many requests an operation cost (``ls -l``
after a warm cache should cost none).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Dict, Optional


@dataclass
class FaultSettings:
    #: Probability of answering a request with 503 SlowDown (or 500 InternalError).
    fail_rate: float = 0.0
    #: Probability of closing the connection half-way through a request or response body.
    reset_rate: float = 0.0
    #: Added to every request before it is handled.
    latency_ms: int = 0
    #: Per-connection body throughput limit in MB/s (0 = unlimited).
    bandwidth_mbps: float = 0.0
    seed: Optional[int] = None
    #: A regular expression: storing an object whose key it matches (``re.search``; a PUT or
    #: POST) is refused with 400 InvalidObjectName (XML API) or -180 (JSON API), as COS
    #: refuses some names. Reads answer as usual. Empty: nothing is refused.
    refuse_keys: str = ""
    #: While true, requests are read but not answered (the admin endpoint excepted); they
    #: are held, and answered once it is switched off.
    stall: bool = False

    def validate(self) -> "FaultSettings":
        for name in ("fail_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {value}")
        if self.latency_ms < 0 or self.bandwidth_mbps < 0:
            raise ValueError("latency_ms and bandwidth_mbps must not be negative")
        if not isinstance(self.stall, bool):
            raise ValueError(f"stall must be true or false, not {self.stall!r}")
        try:
            re.compile(self.refuse_keys)
        except re.error as exc:
            raise ValueError(f"refuse_keys is not a regular expression: {exc}") from None
        return self


class FaultInjector:
    """Thread-safe holder of the fault settings, the random source and the counters."""

    def __init__(self, settings: Optional[FaultSettings] = None) -> None:
        self._lock = threading.Lock()
        self._unstalled = threading.Condition(self._lock)
        self._counts: Counter = Counter()
        self._bytes: Counter = Counter()  # "in" (request bodies), "out" (response bodies)
        self.configure(settings or FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        settings.validate()
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)
            self._unstalled.notify_all()

    def update(self, changes: Dict[str, object]) -> FaultSettings:
        """Apply a partial update (from the admin endpoint); unknown names raise ValueError."""
        current = asdict(self.settings)
        unknown = set(changes) - set(current)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        current.update(changes)
        settings = FaultSettings(
            fail_rate=float(current["fail_rate"]),
            reset_rate=float(current["reset_rate"]),
            latency_ms=int(current["latency_ms"]),
            bandwidth_mbps=float(current["bandwidth_mbps"]),
            seed=None if current["seed"] is None else int(current["seed"]),
            refuse_keys=str(current["refuse_keys"] or ""),
            stall=current["stall"],
        )
        reseed = "seed" in changes
        with self._lock:
            settings.validate()
            self.settings = settings
            if reseed:
                self._random = random.Random(settings.seed)
            self._unstalled.notify_all()
        return settings

    def hold_while_stalled(self) -> None:
        """Block while ``stall`` is on: the request that called it goes unanswered until then."""
        with self._lock:
            while self.settings.stall:
                self._unstalled.wait()

    def _roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._random.random() < probability

    def should_fail(self) -> bool:
        return self._roll(self.settings.fail_rate)

    def should_reset(self) -> bool:
        return self._roll(self.settings.reset_rate)

    def refuses(self, key: str) -> bool:
        """Whether ``key`` is a name the server has been told to refuse."""
        pattern = self.settings.refuse_keys
        return bool(pattern) and bool(key) and re.search(pattern, key) is not None

    def delay(self) -> None:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)

    def throttle(self, nbytes: int) -> None:
        """Sleep as long as ``nbytes`` take at the configured bandwidth."""
        rate = self.settings.bandwidth_mbps
        if rate > 0 and nbytes:
            time.sleep(nbytes / (rate * 1024 * 1024))

    def count(self, operation: str) -> None:
        with self._lock:
            self._counts[operation] += 1

    def count_bytes(self, received: int, sent: int) -> None:
        """Body bytes of one request and of its answer (headers and chunk framing excluded)."""
        with self._lock:
            self._bytes["in"] += received
            self._bytes["out"] += sent

    def byte_counts(self) -> Dict[str, int]:
        with self._lock:
            return {"in": self._bytes["in"], "out": self._bytes["out"]}

    def counts(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._bytes.clear()
