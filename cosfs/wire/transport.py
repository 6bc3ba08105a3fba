"""HTTP to COS: one connection pool per mount, timeouts, signing per attempt, retries.

The API clients describe a request as an ``HttpRequest`` and hand over two callables: one
that signs it (called again before every attempt, so each repeat carries a fresh signature
and freshly loaded credentials), and one that turns an error answer into a ``CosError``
(XML and JSON API errors look different). The transport owns everything else: the
connection pools (``cosfs.wire.http``), connect and read timeouts, reading the whole body,
and which failures are repeated. Every failure leaves ``send`` as a ``CosError``, never as
a urllib3 or socket exception.

The retry rule, the one place it is decided (docs/SEMANTICS.md explains it to users):

- transient failures are repeated with backoff (``cosfs.wire.retry``) until the request
  succeeds, ``retries`` repeats are spent, or ``max_retry_time`` seconds have passed since
  its first attempt: no connection, a connection reset or closed before or during the
  answer, a timeout, HTTP 5xx and 429, the throttling codes. Only requests marked
  ``idempotent`` are repeated this way (the JSON API move is not; its store checks what
  happened instead); a repeat that meets "already done" (a directory that exists now, an
  upload already completed) is told apart by ``CosError.repeated`` in the stores.
- each attempt's connect and read timeouts are cut to what is left of the deadline.
- a ranged GET whose body is cut short resumes: the next attempt asks for the bytes from
  where the answer stopped (with ``If-Match`` on its ETag, so a changed object is read again
  from the start instead of being spliced), and ``send`` returns all of them at once.
- when COS gives no answer at all (no connection could be made, or nothing came back within
  the timeout), the endpoint is marked unresponsive until any answer arrives from it
  (``cosfs.wire.unresponsive``). Until then one request at a time asks it, with
  ``connect_timeout`` for the whole attempt, at most once per ``connect_timeout`` seconds,
  and is not repeated if it gets no answer either; the others fail at once. The request
  that found the silence costs its first attempt (``connect_timeout`` + ``read_timeout``
  at most) plus one short one, the later ones a short attempt or nothing, and everything
  works again by itself once COS answers.
- a request COS refused before acting on it (expired or replayed signature, expired token)
  is signed again and repeated once, whatever the method.
- everything else is raised at once.

Nothing here logs a header value: signatures and tokens never reach the log.
"""

from __future__ import annotations

import dataclasses
import errno
import http.client
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Set, Tuple
from urllib.parse import quote

import urllib3
from urllib3.util import Timeout

from cosfs import __version__
from cosfs.wire.errors import CosError
from cosfs.wire.http import ConnectionPools, HttpResponse
from cosfs.wire.retry import RetryPolicy, RetryRun
from cosfs.wire.unresponsive import Admission, UnresponsiveEndpoints

log = logging.getLogger(__name__)

#: Codes that mean "COS refused the request before acting on it; sign again and repeat".
RESIGN_CODES = frozenset({"-96", "-77", "Request has expired", "ExpiredToken", "InvalidToken"})

#: Bytes read from the socket at a time while receiving an answer's body.
_BODY_CHUNK = 256 * 1024

#: Errors that mean the request itself cannot be sent, so repeating cannot help: a URL or
#: proxy URL urllib3 cannot parse (``LocationValueError``, ``ProxySchemeUnknown``) or a header
#: it refuses. A ``ValueError`` raised as it is (``http.client`` refusing a header value,
#: ``UnicodeEncodeError`` included) is one too; one behind a network error is not.
_UNSENDABLE = (urllib3.exceptions.LocationValueError, urllib3.exceptions.InvalidHeader)
#: Everything sending a request or reading its answer may raise, network failures and the above.
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError)


def encode_query(params: List[Tuple[str, str]]) -> str:
    """``k=v&...`` with both sides percent-encoded (space as ``%20``); empty values kept as ``k=``."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)


@dataclass
class HttpRequest:
    """One request to COS, before signing.

    ``path`` is the URL path as sent (already percent-encoded); ``sign_path`` is the same
    path decoded, as the COS signatures sign it. ``byte_range`` (first and last byte,
    inclusive) makes a ranged GET, which the transport resumes where a cut answer stopped.
    ``operation`` and ``key`` only serve error messages, logs and the observer.
    """

    method: str
    base_url: str
    path: str
    sign_path: str
    params: List[Tuple[str, str]] = field(default_factory=list)
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    idempotent: bool = True
    byte_range: Optional[Tuple[int, int]] = None
    operation: str = ""
    key: str = ""

    @property
    def url(self) -> str:
        query = encode_query(self.params)
        return f"{self.base_url}{self.path}" + (f"?{query}" if query else "")

    @property
    def netloc(self) -> str:
        return self.base_url.split("://", 1)[1]


Signer = Callable[[HttpRequest], Mapping[str, str]]
ErrorCheck = Callable[[HttpResponse, HttpRequest], Optional[CosError]]


class RequestObserver(Protocol):
    """Told the outcome of every request (for counters such as ``cosfs status``)."""

    def request_done(self, operation: str, key: str, attempts: int, error: Optional[CosError],
                     request_id: str) -> None:
        """Called once per ``Transport.send`` when its outcome is final: ``attempts`` counts
        every attempt including the first; ``error`` is the final error, ``None`` on success."""


@dataclass(frozen=True)
class TransportOptions:
    pool_size: int = 16
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    verify_tls: bool = True
    user_agent: str = f"cosfs/{__version__}"


class Transport:
    """Sends ``HttpRequest``s over pooled urllib3 connections; safe to share between threads.

    ``pools`` replaces the ``ConnectionPools`` made from ``options`` (tests answer from a function).
    """

    def __init__(
        self,
        options: TransportOptions = TransportOptions(),
        retry: Optional[RetryPolicy] = None,
        pools: Optional[ConnectionPools] = None,
        observer: Optional[RequestObserver] = None,
    ) -> None:
        self.options = options
        self.retry = retry or RetryPolicy()
        self.observer = observer
        self.pools = pools or ConnectionPools(options.pool_size, options.verify_tls)
        self.unresponsive = UnresponsiveEndpoints(options.connect_timeout, self.retry.clock)

    def close(self) -> None:
        self.pools.clear()

    def send(self, request: HttpRequest, sign: Signer, check: ErrorCheck,
             run: Optional[RetryRun] = None) -> HttpResponse:
        """Send ``request`` until it succeeds or fails for good; raise ``CosError`` then.

        ``run`` lets a caller that repeats a request itself (a move that checks what
        happened between attempts) keep one deadline over all its sends.
        """
        attempts = _Attempts(run or self.retry.start())
        try:
            response = self._send(request, sign, check, attempts)
        except CosError as error:
            error.attempts, error.repeated = attempts.count, attempts.repeated
            self._report(request, attempts.count, error, error.request_id)
            raise
        self._report(request, attempts.count, None, response.headers.get("x-cos-request-id", ""))
        return response

    def _send(self, request: HttpRequest, sign: Signer, check: ErrorCheck, attempts: "_Attempts") -> HttpResponse:
        resigned = False
        received: Optional[_Received] = None
        while True:
            attempts.count += 1
            admission = self.unresponsive.admit(request.netloc)
            if admission is Admission.SKIPPED:
                raise self._skipped_error(request)
            timeout = self._timeout(attempts.run.left(), admission is Admission.PROBE)
            silent = False
            try:
                response = self._exchange(_for_attempt(request, received), sign, timeout)
            except _Broken as broken:
                error, silent = self._broken_error(request, broken, timeout), broken.silent
                answered = True if broken.response is not None else (False if silent else None)
                self.unresponsive.record(request.netloc, admission, answered, error)
                received = _resumable(request, received, broken)
            else:
                self.unresponsive.record(request.netloc, admission, True)
                error = _stale(request, received, response)
                if error is not None:
                    received = None
                else:
                    error = check(response, request)
                    if error is None:
                        return _joined(received, response)
            if error.code in RESIGN_CODES and not resigned and attempts.run.left() > 0:
                resigned = True
                continue
            probe_unanswered = silent and admission is Admission.PROBE
            if not (error.transient and request.idempotent) or probe_unanswered:
                raise error
            if not attempts.run.another():
                raise error
            attempts.repeated = True
            log.info("retrying %s %s %r after %s (attempt %d)", request.method, request.operation, request.key,
                     error.code or error.status, attempts.count + 1)

    def _timeout(self, left: float, probe: bool) -> Timeout:
        """This attempt's timeouts: the configured ones, none longer than what is left of the
        deadline; a probe of an unresponsive endpoint gets ``connect_timeout`` for everything."""
        left = max(left, 0.001)
        if probe:
            short = min(self.options.connect_timeout, left)
            return Timeout(connect=short, read=short, total=short)
        return Timeout(connect=min(self.options.connect_timeout, left), read=min(self.options.read_timeout, left),
                       total=left)

    def _exchange(self, request: HttpRequest, sign: Signer, timeout: Timeout) -> HttpResponse:
        """One attempt: send, then read the whole body; ``_Broken`` when the network fails.

        A PUT or POST always carries a body (``Content-Length: 0`` when empty), as COS wants;
        other methods carry one only when they have it.
        """
        headers = {"User-Agent": self.options.user_agent}
        headers.update(request.headers)
        headers.update(sign(request))
        body = request.body if request.body or request.method in ("PUT", "POST") else None
        started = time.monotonic()
        try:
            raw = self.pools.urlopen(request.method, request.url, body, headers, timeout)
        except _NETWORK_ERRORS as exc:
            raise _Broken(exc, None, b"") from exc
        response = HttpResponse(raw.status, raw.reason or "", raw.headers)
        chunks: List[bytes] = []
        try:
            for chunk in raw.stream(_BODY_CHUNK, decode_content=False):
                chunks.append(chunk)
        except _NETWORK_ERRORS as exc:
            raw.close()
            raise _Broken(exc, response, b"".join(chunks)) from exc
        finally:
            raw.release_conn()
        response.content = b"".join(chunks)
        log.debug(
            "%s %s %r -> %s in %.0f ms (request id %s)",
            request.method, request.operation, request.key, response.status,
            (time.monotonic() - started) * 1000, response.headers.get("x-cos-request-id", "-"),
        )
        return response

    def _skipped_error(self, request: HttpRequest) -> CosError:
        """The error of a request not sent because its endpoint is silent and being asked:
        the code of the failure that made it silent (ETIMEDOUT for a timeout, EIO else)."""
        silent_for, last = self.unresponsive.silence(request.netloc) or (0.0, None)
        code, reason = (last.code, last.message) if last is not None else ("Timeout", "no answer")
        return CosError(f"not sent: no answer from {request.netloc} for {silent_for:.0f} s (last: {reason}); it is "
                        f"asked again at most every {self.options.connect_timeout:g} s",
                        code=code, operation=request.operation, key=request.key)

    @staticmethod
    def _broken_error(request: HttpRequest, broken: "_Broken", timeout: Timeout) -> CosError:
        """The ``CosError`` for a network failure: ETIMEDOUT when COS never answered in time,
        else EIO; transient unless the request cannot be sent or the server is not trusted."""
        where = request.netloc
        kind = broken.kind
        if kind == "unsendable":
            return CosError(f"cannot send the request: {broken.reason}", code="InvalidRequest",
                            operation=request.operation, key=request.key, errno_value=errno.EINVAL, transient=False)
        if kind == "certificate":
            return CosError(f"the TLS certificate of {where} is not trusted: {broken.reason}", code="ConnectionError",
                            operation=request.operation, key=request.key, transient=False)
        if kind == "connect-timeout":
            message = f"cannot connect to {where} within {timeout.connect_timeout:g} s"
        elif kind == "timeout" and broken.response is None:
            message = f"no answer from {where} within {timeout._read:g} s"
        elif kind == "timeout":
            message = f"the answer from {where} stopped for {timeout._read:g} s after {len(broken.partial)} bytes"
        elif kind == "unreachable":
            message = f"cannot reach {where}: {broken.reason}"
        elif broken.response is None:
            message = f"connection to {where} broken: {broken.reason}"
        else:
            message = f"connection to {where} broken after {len(broken.partial)} bytes of the answer: {broken.reason}"
        code = "Timeout" if kind in ("timeout", "connect-timeout") else "ConnectionError"
        return CosError(message, code=code, operation=request.operation, key=request.key)

    def _report(self, request: HttpRequest, attempts: int, error: Optional[CosError], request_id: str) -> None:
        if self.observer is None:
            return
        try:
            self.observer.request_done(request.operation, request.key, attempts, error, request_id)
        except Exception:  # noqa: BLE001 (a counting bug must not fail the request it counts)
            log.exception("the request observer failed")


@dataclass
class _Attempts:
    """What ``send`` counts for one request."""

    run: RetryRun
    count: int = 0
    #: Whether an attempt failed transiently and was repeated: it may have taken effect.
    repeated: bool = False


class _Broken(Exception):
    """An attempt that failed on the network: before any answer (``response`` is ``None``)
    or while its body arrived (``partial`` holds what did)."""

    def __init__(self, cause: BaseException, response: Optional[HttpResponse], partial: bytes) -> None:
        super().__init__(str(cause))
        self.response = response
        self.partial = partial
        kind = _kind(cause)
        self.kind = "broken" if kind == "unsendable" and response is not None else kind
        self.reason = _reason(cause)

    @property
    def silent(self) -> bool:
        """Whether COS gave no answer at all: no connection, or nothing within the timeout."""
        return self.kind in ("unreachable", "connect-timeout") or (self.kind == "timeout" and self.response is None)


@dataclass
class _Received:
    """The bytes of a ranged answer that arrived before its connection broke: from ``start``
    of the object, of the version ``etag``, out of ``size`` (as Content-Range says it)."""

    start: int
    data: bytes
    etag: str
    size: str


def _for_attempt(request: HttpRequest, received: Optional[_Received]) -> HttpRequest:
    """The request to send now: with its Range header, asking only for what has not arrived."""
    if request.byte_range is None:
        return request
    start, end = request.byte_range
    headers = dict(request.headers)
    if received is not None:
        start = received.start + len(received.data)
        headers["If-Match"] = received.etag
    headers["Range"] = f"bytes={start}-{end}"
    return dataclasses.replace(request, headers=headers)


def _resumable(request: HttpRequest, received: Optional[_Received], broken: _Broken) -> Optional[_Received]:
    """What a ranged read keeps of an answer cut short: everything so far, when the answer
    was the part asked for (206 from the expected byte) of a version known by its ETag."""
    response = broken.response
    if request.byte_range is None or response is None or response.status != 206:
        return received
    span = _content_range(response.headers.get("Content-Range", ""))
    etag = response.headers.get("ETag", "")
    expected = request.byte_range[0] if received is None else received.start + len(received.data)
    if span is None or span[0] != expected or not etag or (received is not None and etag != received.etag):
        return None
    if received is None:
        return _Received(expected, broken.partial, etag, span[2])
    return dataclasses.replace(received, data=received.data + broken.partial)


def _stale(request: HttpRequest, received: Optional[_Received], response: HttpResponse) -> Optional[CosError]:
    """The error for a resumed read whose object changed meanwhile (412 on ``If-Match``, or
    a server that ignored it: another ETag, another start, 416): it is read again whole."""
    if received is None:
        return None
    status = response.status
    if status == 206:
        span = _content_range(response.headers.get("Content-Range", ""))
        changed = (response.headers.get("ETag", received.etag) != received.etag
                   or span is None or span[0] != received.start + len(received.data))
    else:
        changed = status in (412, 416)
    if not changed:
        return None
    return CosError("the object changed while it was read; reading the range again", code="ObjectChanged",
                    status=response.status, operation=request.operation, key=request.key,
                    errno_value=errno.ESTALE, transient=True)


def _joined(received: Optional[_Received], response: HttpResponse) -> HttpResponse:
    """The answer of a resumed read: the bytes received before, then the rest."""
    if received is None or response.status != 206:
        return response
    body = received.data + response.content
    response.content = body
    response.headers["Content-Range"] = f"bytes {received.start}-{received.start + len(body) - 1}/{received.size}"
    return response


def _content_range(value: str) -> Optional[Tuple[int, int, str]]:
    """``(first, last, size)`` of ``bytes first-last/size``; ``None`` when it is not that."""
    unit, _, rest = value.strip().partition(" ")
    span, _, size = rest.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdigit() or not last.isdigit():
        return None
    return int(first), int(last), size


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it: causes, contexts, urllib3's ``reason`` and
    exceptions passed as arguments (``ProtocolError`` carries the ``IncompleteRead`` or
    ``ConnectionResetError`` behind it that way)."""
    seen: Set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in nested if isinstance(item, BaseException))


def _kind(exc: BaseException) -> str:
    """What went wrong, from the whole chain of ``exc``: ``unsendable``, ``certificate``,
    ``unreachable`` (refused, no route, no DNS), ``connect-timeout``, ``timeout`` or ``broken``."""
    chain = list(_causes(exc))
    if isinstance(exc, ValueError) or any(isinstance(item, _UNSENDABLE) for item in chain):
        return "unsendable"
    if any(isinstance(item, ssl.SSLCertVerificationError) for item in chain):
        return "certificate"
    if any(isinstance(item, urllib3.exceptions.NewConnectionError) for item in chain):
        return "unreachable"
    if any(isinstance(item, urllib3.exceptions.ConnectTimeoutError) for item in chain):
        return "connect-timeout"
    if any(isinstance(item, (urllib3.exceptions.TimeoutError, TimeoutError)) for item in chain):
        return "timeout"
    return "broken"


def _reason(exc: BaseException) -> str:
    """The innermost reason of a network error, without the URL noise of its wrappers."""
    innermost = list(_causes(exc))[-1]
    text = str(innermost) or innermost.__class__.__name__
    return text.split(": ", 1)[-1] if "Errno" in text or "refused" in text else text
