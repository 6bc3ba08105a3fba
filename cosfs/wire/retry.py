"""When and how long to wait before repeating a failed request, and when to give up.

Exponential backoff with jitter, capped per wait and bounded by an overall deadline
(``max_retry_time``), so a dead endpoint costs a bounded time and many clients do not retry
in lock-step. The clock, the sleep and the random source are injected: tests run the policy
without sleeping.

The defaults are sized for a flaky server: with 20% of answers 503 and 10% of connections
reset (the worst case cosfs is tested against) one attempt fails with probability about
0.28, so eleven attempts all fail about once in a million requests. The waits (0.1 s
doubling, capped at 2 s, half of each random) add up to at most 15 s for ten repeats, well
within the 30 s deadline, and most failures cost one wait of under 0.1 s; the jitter and
the doubling keep many threads from hammering a throttling COS in step.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

#: Defaults of the policy, shared with the ``-o`` options that set them.
DEFAULT_RETRIES = 10
DEFAULT_MAX_RETRY_TIME = 30.0


@dataclass
class RetryPolicy:
    """``retries`` repeats after the first attempt, each wait at most ``max_delay`` seconds,
    all attempts together within ``deadline`` seconds of the first."""

    retries: int = DEFAULT_RETRIES
    base_delay: float = 0.1
    max_delay: float = 2.0
    deadline: float = DEFAULT_MAX_RETRY_TIME
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """The wait before repeat number ``attempt`` (from 1): half fixed, half random."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def start(self) -> "RetryRun":
        """The attempts of one request, starting now."""
        return RetryRun(self)


class RetryRun:
    """One request's attempts under a policy: the time left, and whether to repeat."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = policy.clock()
        #: Repeats made so far (the first attempt is not a repeat).
        self.repeats = 0

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.policy.deadline - (self.policy.clock() - self.started)

    def another(self) -> bool:
        """After a failed attempt: wait the backoff and say yes, or say no (and not wait)
        when the repeats are used up or the wait would end past the deadline."""
        if self.repeats >= self.policy.retries:
            return False
        wait = self.policy.backoff(self.repeats + 1)
        if wait >= self.left():
            return False
        self.policy.sleep(wait)
        self.repeats += 1
        return True
