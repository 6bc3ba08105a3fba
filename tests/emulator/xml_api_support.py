"""Call ``xml_api.handle`` in-process with a real ``Storage`` on a temporary root (no HTTP)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from cosfs.emulator import xml_api
from cosfs.emulator.auth import Authenticator
from cosfs.emulator.context import Context
from cosfs.emulator.protocol import EmulatorError, EmuRequest, EmuResponse
from cosfs.emulator.storage import Storage, StorageError

BUCKET = "examplebucket-1250000000"
OTHER_BUCKET = "otherbucket-1250000000"
START = 1_700_000_000.0


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    """A ``Context`` over ``root`` and a way to send it requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = Clock()
        self.storage = Storage(root, clock=self.clock)
        auth = Authenticator([], self.clock, no_auth=True)
        self.ctx = Context(self.storage, auth, "ap-guangzhou", [BUCKET, OTHER_BUCKET], self.clock)

    def request(self, method: str, key: str = "", params: Iterable[Tuple[str, str]] = (),
                headers: Optional[Dict[str, str]] = None, body: bytes = b"", bucket: str = BUCKET,
                chunks: Optional[List[bytes]] = None) -> EmuResponse:
        """Send one request; the response body of a stream is read into ``.body``."""
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        if chunks is None:
            chunks = [body] if body else []
            if method in ("PUT", "POST"):
                headers.setdefault("content-length", str(len(body)))
        request = EmuRequest(method, "/" + quote(key), list(params), headers, iter(chunks),
                             host=f"{bucket}.cos.ap-guangzhou.myqcloud.com", bucket=bucket, key=key,
                             request_id="test-request")
        response = xml_api.handle(self.ctx, request)
        response.operation = request.operation
        if response.stream is not None:
            file, start, length = response.stream
            with file:
                file.seek(start)
                response.body = file.read(length)
            response.stream = None
        return response

    def error(self, *args, **kwargs) -> Tuple[int, str]:
        """(status, code) of a request that must fail."""
        with pytest.raises((EmulatorError, StorageError)) as caught:
            self.request(*args, **kwargs)
        return caught.value.status, caught.value.code

    def put(self, key: str, body: bytes = b"data", **headers: str) -> EmuResponse:
        return self.request("PUT", key, headers={k.replace("_", "-"): v for k, v in headers.items()}, body=body)

    def get(self, key: str, **headers: str) -> EmuResponse:
        return self.request("GET", key, headers={k.replace("_", "-"): v for k, v in headers.items()})

    def leftovers(self) -> List[str]:
        """Files under the root other than the index and the data of live objects and parts."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and not p.name.startswith("index.db")
                      and not str(p.relative_to(self.root)).startswith(("data/", "parts/")))


def xml(response: EmuResponse) -> ElementTree.Element:
    return ElementTree.fromstring(response.body)


def texts(tree: ElementTree.Element, path: str) -> List[str]:
    return [node.text or "" for node in tree.findall(path)]


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def emu(tmp_path) -> Harness:
    harness = Harness(tmp_path / "root")
    yield harness
    harness.storage.close()
