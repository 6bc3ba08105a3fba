"""When and how long to wait before repeating a failed request.

Exponential backoff with jitter, capped per wait and bounded by an overall deadline, so a
dead endpoint costs a bounded time and many clients do not retry in lock-step. The clock,
the sleep and the random source are injected: tests run the policy without sleeping.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass
class RetryPolicy:
    """``retries`` repeats after the first attempt, each wait at most ``max_delay`` seconds,
    all attempts together within ``deadline`` seconds of the first."""

    retries: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    deadline: float = 120.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """The wait before repeat number ``attempt`` (from 1): half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def attempts(self) -> Iterator[int]:
        """Yield attempt numbers (0 first), sleeping the backoff before each repeat.

        Stops after ``retries`` repeats, or when the next wait would end past the deadline;
        the caller breaks out of the loop on success or on a failure not worth repeating.
        """
        started = self.clock()
        yield 0
        for attempt in range(1, self.retries + 1):
            wait = self.backoff(attempt)
            if self.clock() - started + wait > self.deadline:
                return
            self.sleep(wait)
            yield attempt
