"""A requests adapter that answers from a Python function: HTTP-level unit tests without a socket.

Mount it on a ``requests.Session`` and give the session to ``cosfs.wire.transport.Transport``;
every request goes to ``handler(request) -> FakeResponse`` and is recorded in ``requests``.
A handler may also return an exception (raised as the adapter would raise it), and a
``FakeResponse`` with ``cut_after`` sends that many bytes of its body and then fails the way
urllib3 fails when the peer closes the connection mid-body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.client import IncompleteRead
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ProtocolError

from cosfs.wire.errors import CosError
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


class FakeBody:
    """The ``raw`` of a fake response: what ``requests`` streams the body from."""

    def __init__(self, answer: FakeResponse) -> None:
        self.answer = answer

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
    headers: CaseInsensitiveDict
    body: bytes
    #: What the transport passed as ``timeout`` (a tuple or a ``urllib3`` ``Timeout``).
    timeout: Any = None

    @property
    def query(self) -> Dict[str, str]:
        return dict(self.params)


class FakeAdapter(BaseAdapter):
    def __init__(self, handler: Callable[[SeenRequest], FakeResponse]) -> None:
        super().__init__()
        self.handler = handler
        self.requests: List[SeenRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = CaseInsensitiveDict(request.headers)
        headers.setdefault("Host", parts.netloc)  # added by the connection layer on a real socket
        seen = SeenRequest(
            method=request.method,
            url=request.url,
            path=unquote(parts.path),
            params=parse_qsl(parts.query, keep_blank_values=True),
            headers=headers,
            body=bytes(body),
            timeout=timeout,
        )
        self.requests.append(seen)
        answer = self.handler(seen)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer.status
        response.raw = FakeBody(answer)
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def mount_fake(session: requests.Session, handler: Callable[[SeenRequest], FakeResponse]) -> FakeAdapter:
    """Route every request of ``session`` to ``handler`` (after Transport mounted its own adapter)."""
    adapter = FakeAdapter(handler)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter


def fake_transport(handler: Callable[[SeenRequest], FakeResponse], retry=None):
    """A ``Transport`` whose requests all go to ``handler``, and the adapter that records them.

    The default retry policy never sleeps, so retry tests run instantly.
    """
    from cosfs.wire.retry import RetryPolicy
    from cosfs.wire.transport import Transport

    if retry is None:
        retry = RetryPolicy(retries=3, sleep=lambda seconds: None)
    transport = Transport(retry=retry)
    return transport, mount_fake(transport.session, handler)


def plain_request(**fields: Any) -> HttpRequest:
    """An ``HttpRequest`` for transport tests: a GET of ``k`` at a fake host unless told otherwise."""
    base = dict(method="GET", base_url="http://cos.test", path="/k", sign_path="/k", operation="read", key="k")
    base.update(fields)
    return HttpRequest(**base)


def check_status(response: requests.Response, request: HttpRequest) -> Optional[CosError]:
    """The transport's error check for fake answers: a status of 300 or more is a ``CosError``
    carrying the ``code`` and ``x-cos-request-id`` headers."""
    if response.status_code < 300:
        return None
    return CosError("failed", status=response.status_code, code=response.headers.get("code", ""),
                    request_id=response.headers.get("x-cos-request-id", ""), operation=request.operation,
                    key=request.key)
