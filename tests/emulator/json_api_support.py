"""Call ``json_api.handle`` in-process with a real ``Storage`` and a real ``Authenticator``,
signing every request with ``cosfs.wire.signing.jsonsign`` (no HTTP)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode

import pytest

from cosfs.emulator import json_api
from cosfs.emulator.auth import Authenticator, Principal
from cosfs.emulator.context import Context
from cosfs.emulator.protocol import EmuRequest
from cosfs.emulator.storage import ObjectRecord, Storage
from cosfs.store.json_codec import encode_form
from cosfs.wire.signing import jsonsign

APPID = "1250000000"
NAME = "examplebucket"
BUCKET = f"{NAME}-{APPID}"
SECRET_ID = "AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE0000"
SECRET_KEY = "EXAMPLEKEYexamplekeyEXAMPLEKEY00"
#: One second after the captured vectors were signed (t=1700000000, e=t+300).
START = 1_700_000_001.0

FormFields = Sequence[Tuple[str, Union[str, bytes]]]


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Answer:
    status: int
    code: int
    message: str
    data: Dict[str, object] = field(default_factory=dict)
    operation: str = ""
    has_data: bool = False
    content_type: str = ""


class JsonHarness:
    """A ``Context`` over ``root`` and ways to send it signed JSON API requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = Clock()
        self.storage = Storage(root, clock=self.clock)
        self.auth = Authenticator([Principal(SECRET_ID, SECRET_KEY)], self.clock)
        self.ctx = Context(self.storage, self.auth, "ap-guangzhou", [BUCKET], self.clock)
        self._rand = itertools.count(1000)

    # --- signing and sending ----------------------------------------------------------

    def sign(self, path: str, kind: str = "multi") -> str:
        """A fresh signature bound to ``path`` (``/dir/file``), multi-use or once."""
        now = int(self.clock())
        if kind == "once":
            return jsonsign.sign_once(APPID, NAME, SECRET_ID, SECRET_KEY, now, next(self._rand), path)
        return jsonsign.sign_multi(APPID, NAME, SECRET_ID, SECRET_KEY, now + 300, now, next(self._rand), path)

    def send(self, method: str, path: str, params: Iterable[Tuple[str, str]] = (), body: bytes = b"",
             content_type: str = "", sign: Optional[str] = "multi", raw_path: Optional[str] = None) -> Answer:
        """One request on ``path``; ``sign`` is a kind (multi/once), a signature, or None."""
        params = list(params)
        headers = {"host": "127.0.0.1"}
        if sign in ("multi", "once"):
            headers["authorization"] = self.sign(path, sign)
        elif sign:
            headers["authorization"] = sign
        if content_type:
            headers["content-type"] = content_type
        if method == "POST":
            headers["content-length"] = str(len(body))
        request = EmuRequest(
            method, raw_path or f"/files/v2/{APPID}/{NAME}{jsonsign.encode_path(path)}", params, headers,
            iter([body] if body else []), raw_query=urlencode(params), host="127.0.0.1", bucket=BUCKET,
            key=path[1:], request_id="test-request")
        return self.call(request)

    def call(self, request: EmuRequest) -> Answer:
        response = json_api.handle(self.ctx, request, APPID, NAME)
        payload = json.loads(response.body.decode("utf-8"))
        assert payload["request_id"] == request.request_id
        return Answer(response.status, payload["code"], payload["message"], payload.get("data") or {},
                      request.operation, "data" in payload, response.headers.get("Content-Type", ""))

    def get(self, path: str, op: str, sign: Optional[str] = "multi", **params: object) -> Answer:
        return self.send("GET", path, [("op", op)] + [(k, str(v)) for k, v in params.items()], sign=sign)

    def post_json(self, path: str, payload: Dict[str, object], sign: Optional[str] = "multi") -> Answer:
        return self.send("POST", path, body=json.dumps(payload).encode(), content_type="application/json", sign=sign)

    def post_form(self, path: str, fields: FormFields, sign: Optional[str] = "multi",
                  params: Iterable[Tuple[str, str]] = ()) -> Answer:
        content_type, body = encode_form(list(fields))
        return self.send("POST", path, params, body, content_type, sign)

    # --- operations ---------------------------------------------------------------------

    def stat(self, path: str) -> Answer:
        return self.get(path, "stat")

    def list(self, path: str, num: int = 199, context: str = "", **params: object) -> Answer:
        return self.get(path, "list", num=num, context=context, **params)

    def create(self, path: str, biz_attr: str = "") -> Answer:
        return self.post_json(path, {"op": "create", "biz_attr": biz_attr})

    def delete(self, path: str, sign: str = "once") -> Answer:
        return self.post_json(path, {"op": "delete"}, sign)

    def update(self, path: str, sign: str = "once", **payload: object) -> Answer:
        return self.post_json(path, {"op": "update", **payload}, sign)

    def upload(self, path: str, data: bytes, **fields: str) -> Answer:
        return self.post_form(path, [("op", "upload"), *fields.items(), ("filecontent", data)])

    def move(self, path: str, dest: str, overwrite: Optional[int] = None, sign: str = "once") -> Answer:
        params = [("op", "move"), ("dest_fileid", dest)]
        if overwrite is not None:
            params.append(("to_over_write", str(overwrite)))
        return self.send("POST", path, params, sign=sign)

    def copy(self, path: str, dest: str, overwrite: Optional[int] = None, sign: str = "once") -> Answer:
        fields: List[Tuple[str, str]] = [("op", "copy"), ("dest_fileid", dest)]
        if overwrite is not None:
            fields.append(("to_over_write", str(overwrite)))
        return self.post_form(path, fields, sign)

    # --- the store underneath, as the XML API sees it -----------------------------------

    def put_object(self, key: str, data: bytes = b"data", content_type: str = "application/octet-stream",
                   meta: Optional[Dict[str, str]] = None, extra: Optional[Dict[str, str]] = None) -> ObjectRecord:
        return self.storage.put(BUCKET, key, self.storage.receive([data]), content_type, meta, extra)

    def head(self, key: str) -> Optional[ObjectRecord]:
        return self.storage.head(BUCKET, key)

    def read(self, key: str) -> bytes:
        record = self.storage.head(BUCKET, key)
        assert record is not None, f"{key} does not exist"
        with self.storage.open(record) as body:
            return body.read()


@pytest.fixture
def emu(tmp_path) -> JsonHarness:
    harness = JsonHarness(tmp_path / "root")
    yield harness
    harness.storage.close()
