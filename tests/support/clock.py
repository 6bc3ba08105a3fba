"""A clock that moves only when a test says so: caches, retries and reloads are tested without sleeping."""

from __future__ import annotations


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A ``time.sleep`` stand-in: records the wait and moves the clock."""
        self.sleeps.append(seconds)
        self.now += seconds
