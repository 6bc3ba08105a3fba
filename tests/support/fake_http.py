"""Connection pools that answer from a Python function: HTTP-level unit tests without a socket.

Give ``FakePools`` to ``cosfs.wire.transport.Transport(pools=...)``; every request goes to
``handler(request) -> FakeResponse`` and is recorded in ``requests``. A handler may also
return an exception (raised as urllib3's ``urlopen`` raises it with its retries off: the
``NewConnectionError``, ``ReadTimeoutError`` or ``ProtocolError`` itself), and a
``FakeResponse`` with ``cut_after`` sends that many bytes of its body and then fails the way
urllib3 fails when the peer closes the connection mid-body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.client import IncompleteRead
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from urllib3 import HTTPHeaderDict
from urllib3.exceptions import ProtocolError
from urllib3.util.request import body_to_chunks

from cosfs.wire.errors import CosError
from cosfs.wire.http import HttpResponse
from cosfs.wire.transport import HttpRequest


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    #: Send only this many bytes of ``body``, then fail with ``cut_with`` (default: the
    #: ``ProtocolError(IncompleteRead)`` urllib3 raises when the peer closes mid-body).
    cut_after: Optional[int] = None
    cut_with: Optional[BaseException] = None


class FakeRaw:
    """What ``urlopen`` answers with its body left to stream: status, headers, ``stream``."""

    def __init__(self, answer: FakeResponse) -> None:
        self.answer = answer
        self.status = answer.status
        self.reason = ""
        self.headers = HTTPHeaderDict(answer.headers)

    def stream(self, amt: Optional[int] = None, decode_content: bool = True) -> Iterator[bytes]:
        body, cut = self.answer.body, self.answer.cut_after
        sent = body if cut is None else body[:cut]
        step = amt or len(sent) or 1
        for start in range(0, len(sent), step):
            yield sent[start:start + step]
        if cut is not None:
            raise self.answer.cut_with or ProtocolError(
                "Connection broken: IncompleteRead", IncompleteRead(sent, len(body) - len(sent)))

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


@dataclass
class SeenRequest:
    method: str
    url: str
    path: str
    params: List[tuple]
    headers: HTTPHeaderDict
    body: bytes
    #: What the transport passed as ``timeout`` (a ``urllib3`` ``Timeout``).
    timeout: Any = None

    @property
    def query(self) -> Dict[str, str]:
        return dict(self.params)


class FakePools:
    """``ConnectionPools`` whose every request goes to ``handler``."""

    def __init__(self, handler: Callable[[SeenRequest], FakeResponse]) -> None:
        self.handler = handler
        self.requests: List[SeenRequest] = []

    def urlopen(self, method: str, url: str, body: Optional[bytes], headers: Mapping[str, str],
                timeout: Any) -> FakeRaw:
        parts = urlsplit(url)
        seen_headers = HTTPHeaderDict(headers)
        # added by urllib3's connection on a real socket, as it frames the body
        seen_headers.setdefault("Host", parts.netloc)
        length = body_to_chunks(body, method, 16384).content_length
        if length is not None:
            seen_headers.setdefault("Content-Length", str(length))
        seen = SeenRequest(
            method=method,
            url=url,
            path=unquote(parts.path),
            params=parse_qsl(parts.query, keep_blank_values=True),
            headers=seen_headers,
            body=bytes(body or b""),
            timeout=timeout,
        )
        self.requests.append(seen)
        answer = self.handler(seen)
        if isinstance(answer, Exception):
            raise answer
        return FakeRaw(answer)

    def clear(self) -> None:
        pass


def fake_transport(handler: Callable[[SeenRequest], FakeResponse], retry=None):
    """A ``Transport`` whose requests all go to ``handler``, and the fake pools that record them.

    The default retry policy never sleeps, so retry tests run instantly.
    """
    from cosfs.wire.retry import RetryPolicy
    from cosfs.wire.transport import Transport

    if retry is None:
        retry = RetryPolicy(retries=3, sleep=lambda seconds: None)
    pools = FakePools(handler)
    return Transport(retry=retry, pools=pools), pools


def plain_request(**fields: Any) -> HttpRequest:
    """An ``HttpRequest`` for transport tests: a GET of ``k`` at a fake host unless told otherwise."""
    base = dict(method="GET", base_url="http://cos.test", path="/k", sign_path="/k", operation="read", key="k")
    base.update(fields)
    return HttpRequest(**base)


def check_status(response: HttpResponse, request: HttpRequest) -> Optional[CosError]:
    """The transport's error check for fake answers: a status of 300 or more is a ``CosError``
    carrying the ``code`` and ``x-cos-request-id`` headers."""
    if response.status < 300:
        return None
    return CosError("failed", status=response.status, code=response.headers.get("code", ""),
                    request_id=response.headers.get("x-cos-request-id", ""), operation=request.operation,
                    key=request.key)
