"""Requests, errors and retries per operation, and the last errors: what ``cosfs status`` shows.

``RequestStats`` is the transport's observer (``Transport(observer=...)``): the transport
calls ``request_done`` once per request, when its outcome is final, so a request repeated
three times counts once, with two retries. A "not found" answer (a HEAD or stat of a path
that does not exist) is how cosfs asks whether something exists: it is counted apart, as
``not_found``, and never fills the error list that an operator reads to see what went wrong.

Bounded: the counters are one record per operation name (a handful), and only the last
``max_errors`` errors are kept.
"""

from __future__ import annotations

import errno as errno_names
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional

from cosfs.wire.errors import CosError

#: How many of the latest errors are kept.
MAX_ERRORS = 20


@dataclass(frozen=True)
class OperationCounts:
    """One operation's requests (each counted once, however often it was repeated)."""

    count: int = 0
    errors: int = 0
    retries: int = 0
    not_found: int = 0


@dataclass(frozen=True)
class FailedRequest:
    """A request that failed for good: what, when, and the request id to quote to COS support."""

    time: float
    operation: str
    key: str
    code: str
    errno: str
    message: str
    request_id: str


class RequestStats:
    """Thread-safe counters per operation plus the last ``max_errors`` failed requests."""

    def __init__(self, max_errors: int = MAX_ERRORS, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Dict[str, OperationCounts] = {}  # guarded by self._lock
        self._errors: Deque[FailedRequest] = deque(maxlen=max_errors)  # guarded by self._lock

    def request_done(self, operation: str, key: str, attempts: int, error: Optional[CosError],
                     request_id: str) -> None:
        """The transport's observer hook: one request finished after ``attempts`` attempts,
        with ``error`` (the final one) or ``None``."""
        name = operation or "request"
        not_found = error is not None and error.errno == errno_names.ENOENT
        failed = error is not None and not not_found
        with self._lock:
            old = self._counts.get(name, OperationCounts())
            self._counts[name] = OperationCounts(
                count=old.count + 1,
                errors=old.errors + int(failed),
                retries=old.retries + max(0, attempts - 1),
                not_found=old.not_found + int(not_found),
            )
            if failed:
                self._errors.append(self._failure(name, key, error, request_id))

    def counts(self) -> Dict[str, OperationCounts]:
        """Counters per operation name, sorted by name."""
        with self._lock:
            return dict(sorted(self._counts.items()))

    def recent_errors(self) -> List[FailedRequest]:
        """The last errors, oldest first."""
        with self._lock:
            return list(self._errors)

    def _failure(self, operation: str, key: str, error: CosError, request_id: str) -> FailedRequest:
        return FailedRequest(
            time=self._clock(),
            operation=operation,
            key=key,
            code=error.code or (f"HTTP {error.status}" if error.status else "no response"),
            errno=errno_names.errorcode.get(error.errno, str(error.errno)),
            message=error.message,
            request_id=request_id or error.request_id,
        )
