"""Endpoints that gave no answer at all, and when the transport may ask each of them again.

A stalled server or a dead network costs every request its whole timeout, and one ``ls -l``
makes a request per entry. So once an endpoint leaves a request unanswered (no connection,
or nothing within the timeout), it is marked unresponsive: from then on only one request at
a time asks it, with short timeouts (a *probe*), at most once per ``probe_interval``
seconds; the others fail at once. The first answer of any kind clears the mark, so the
mount works again by itself once COS answers.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from cosfs.wire.errors import CosError

log = logging.getLogger(__name__)


class Admission(enum.Enum):
    """How the next attempt at an endpoint may go."""

    #: The endpoint answers: a normal attempt.
    NORMAL = "normal"
    #: The endpoint is silent and this attempt is the one that asks it (short timeouts).
    PROBE = "probe"
    #: The endpoint is silent and another request is asking it, or just asked in vain:
    #: fail at once, without sending anything.
    SKIPPED = "skipped"


@dataclass
class _Silence:
    since: float
    #: What the latest attempt that got no answer met, for the requests skipped meanwhile.
    failure: CosError
    probing: bool = False
    next_probe: float = 0.0


class UnresponsiveEndpoints:
    """Thread-safe record of the silent endpoints (by ``host:port``)."""

    def __init__(self, probe_interval: float, clock: Callable[[], float]) -> None:
        self.probe_interval = probe_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._silent: Dict[str, _Silence] = {}  # guarded by self._lock

    def silence(self, netloc: str) -> Optional[Tuple[float, CosError]]:
        """How many seconds ``netloc`` has given no answer, and what the latest attempt met;
        ``None`` while it answers."""
        with self._lock:
            silence = self._silent.get(netloc)
            return None if silence is None else (self._clock() - silence.since, silence.failure)

    def admit(self, netloc: str) -> Admission:
        """Decide the next attempt at ``netloc``; a ``PROBE`` must be ``record``-ed."""
        with self._lock:
            silence = self._silent.get(netloc)
            if silence is None:
                return Admission.NORMAL
            if silence.probing or self._clock() < silence.next_probe:
                return Admission.SKIPPED
            silence.probing = True
            return Admission.PROBE

    def record(self, netloc: str, admission: Admission, answered: Optional[bool],
               failure: Optional[CosError] = None) -> None:
        """After an attempt: ``answered`` is True for any HTTP answer, False for none at all
        (no connection, or nothing within the timeout: ``failure`` says which), None for
        neither (a connection broken before the answer)."""
        with self._lock:
            silence = self._silent.get(netloc)
            if answered:
                if silence is not None:
                    del self._silent[netloc]
                    log.info("%s answers again", netloc)
                return
            if silence is None:
                if answered is False and failure is not None:
                    self._silent[netloc] = _Silence(since=self._clock(), failure=failure, next_probe=self._clock())
                    log.info("%s gives no answer: until it does, one request at a time asks it, with short "
                                "timeouts, and the others fail at once", netloc)
                return
            if answered is False and failure is not None:
                silence.failure = failure
            if admission is Admission.PROBE:
                silence.probing = False
                silence.next_probe = self._clock() + (self.probe_interval if answered is False else 0.0)
