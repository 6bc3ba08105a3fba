"""HTTP to COS: one connection pool per mount, timeouts, signing per attempt, retries.

The API clients describe a request as an ``HttpRequest`` and hand over two callables: one
that signs it (called again before every attempt, so each repeat carries a fresh signature
and freshly loaded credentials), and one that turns an error answer into a ``CosError``
(XML and JSON API errors look different). The transport owns everything else: the
``requests.Session``, connect and read timeouts, and which failures are repeated:

- connection errors, timeouts, 5xx, 429 and throttling codes are repeated with backoff, but
  only for requests marked idempotent (reads, PUTs, upload parts, deletes);
- a request refused before COS acted on it (expired or replayed signature, expired token)
  is signed again and repeated once, whatever the method;
- everything else is raised at once.

Nothing here logs a header value: signatures and tokens never reach the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Tuple
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from cosfs import __version__
from cosfs.wire.errors import CosError
from cosfs.wire.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Codes that mean "COS refused the request before acting on it; sign again and repeat".
RESIGN_CODES = frozenset({"-96", "-77", "Request has expired", "ExpiredToken", "InvalidToken"})


def encode_query(params: List[Tuple[str, str]]) -> str:
    """``k=v&...`` with both sides percent-encoded (space as ``%20``); empty values kept as ``k=``."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)


@dataclass
class HttpRequest:
    """One request to COS, before signing.

    ``path`` is the URL path as sent (already percent-encoded); ``sign_path`` is the same
    path decoded, as the COS signatures sign it. ``operation`` and ``key`` only serve error
    messages and logs.
    """

    method: str
    base_url: str
    path: str
    sign_path: str
    params: List[Tuple[str, str]] = field(default_factory=list)
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    idempotent: bool = True
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
ErrorCheck = Callable[[requests.Response, HttpRequest], Optional[CosError]]


class RequestObserver(Protocol):
    """Told once per request when its outcome is final (``cosfs.wire.request_stats`` counts)."""

    def request_done(self, operation: str, key: str, attempts: int, error: Optional[CosError],
                     request_id: str) -> None: ...


@dataclass(frozen=True)
class TransportOptions:
    pool_size: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    verify_tls: bool = True
    user_agent: str = f"cosfs/{__version__}"


class Transport:
    """Sends ``HttpRequest``s over one pooled ``requests.Session``; safe to share between threads."""

    def __init__(
        self,
        options: TransportOptions = TransportOptions(),
        retry: Optional[RetryPolicy] = None,
        session: Optional[requests.Session] = None,
        observer: Optional[RequestObserver] = None,
    ) -> None:
        self.options = options
        self.observer = observer
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=options.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.verify = options.verify_tls
        self.session.trust_env = False

    def close(self) -> None:
        self.session.close()

    def send(self, request: HttpRequest, sign: Signer, check: ErrorCheck) -> requests.Response:
        """Send ``request`` until it succeeds or fails for good; raise ``CosError`` then."""
        resigned = False
        error: Optional[CosError] = None
        for attempt in self.retry.attempts():
            error = None
            try:
                response = self._attempt(request, sign)
            except requests.Timeout as exc:
                error = self._no_answer(request, "Timeout", f"no answer within the timeout ({exc.__class__.__name__})")
            except requests.ConnectionError as exc:
                error = self._no_answer(request, "ConnectionError", f"cannot reach {request.netloc}: {_short(exc)}")
            else:
                error = check(response, request)
                if error is None:
                    self._observe(request, attempt + 1, None, response.headers.get("x-cos-request-id", ""))
                    return response
            if error.code in RESIGN_CODES and not resigned:
                resigned = True
                continue
            if not (error.transient and request.idempotent):
                self._observe(request, attempt + 1, error, error.request_id)
                raise error
            log.info("retrying %s %s after %s (attempt %d)", request.method, request.operation, error.code or error.status, attempt + 1)
        assert error is not None
        self._observe(request, attempt + 1, error, error.request_id)
        raise error

    def _observe(self, request: HttpRequest, attempts: int, error: Optional[CosError], request_id: str) -> None:
        if self.observer is not None:
            self.observer.request_done(request.operation, request.key, attempts, error, request_id)

    def _attempt(self, request: HttpRequest, sign: Signer) -> requests.Response:
        headers = {"User-Agent": self.options.user_agent}
        headers.update(request.headers)
        headers.update(sign(request))
        started = time.monotonic()
        response = self.session.request(
            request.method,
            request.url,
            headers=headers,
            data=request.body if request.body or request.method in ("PUT", "POST") else None,
            timeout=(self.options.connect_timeout, self.options.read_timeout),
            allow_redirects=False,
        )
        _ = response.content
        log.debug(
            "%s %s %s -> %s in %.0f ms (request id %s)",
            request.method, request.operation, request.key, response.status_code,
            (time.monotonic() - started) * 1000, response.headers.get("x-cos-request-id", "-"),
        )
        return response

    @staticmethod
    def _no_answer(request: HttpRequest, code: str, message: str) -> CosError:
        return CosError(message, code=code, operation=request.operation, key=request.key)


def _short(exc: Exception) -> str:
    """The innermost reason of a requests connection error, without the URL noise."""
    reason = exc
    while reason.__cause__ is not None or reason.__context__ is not None:
        reason = reason.__cause__ or reason.__context__
    text = str(reason)
    return text.split(": ", 1)[-1] if "Errno" in text or "refused" in text else text
