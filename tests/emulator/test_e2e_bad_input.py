"""Hostile requests over real HTTP to a running cosfs-emulator: traversal, NUL and over-long
keys as they appear on the wire, malformed XML bodies, a wrong Content-MD5, a Range past the
end, an unknown uploadId. Each gets COS's documented error code and HTTP status, and
afterwards the emulator's root holds nothing unexpected and nothing appeared outside it.

Requests go through ``http.client`` with the raw request target (``requests``/urllib3 would
resolve ``..`` segments before sending) and are signed with ``cosfs.wire.signing.qsign`` (XML
API) or ``cosfs.wire.signing.jsonsign`` (JSON API).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import quote, unquote
from xml.etree import ElementTree

import pytest

from cosfs.store import json_codec
from cosfs.wire.signing import jsonsign, qsign
from tests.support.emulator import REPOSITORY, RunningEmulator

VHOST = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
LONG = "k" * 851
#: (raw key as it appears in the request target, COS code); the status is 400 for all.
BAD_KEYS = [
    ("../x", "InvalidObjectName"),
    ("a/../../b", "InvalidObjectName"),
    ("%2E%2E/%2E%2E/x", "InvalidObjectName"),
    ("/abs", "InvalidObjectName"),  # a double slash after the bucket
    ("a%00b", "InvalidObjectName"),
    ("a%0Ab", "InvalidObjectName"),
    (LONG, "KeyTooLong"),
]
#: Names an escaping key would create (a NUL or 851-byte name cannot be a file name at all).
ESCAPE_NAMES = {"x", "b", "abs"}


@dataclass
class Answer:
    status: int
    headers: Dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        """The ``<Code>`` of the error document (``x-cos-error-code`` for a HEAD)."""
        if not self.body:
            return self.headers.get("x-cos-error-code", "")
        try:
            return ElementTree.fromstring(self.body).findtext("Code") or ""
        except ElementTree.ParseError as exc:  # an SDK could not read the error either
            return f"<error document is not well-formed XML: {exc}>"


def send(emulator: RunningEmulator, method: str, raw_key: str, params: Sequence[Tuple[str, str]] = (),
         headers: Optional[Dict[str, str]] = None, body: bytes = b"", virtual_host: bool = False) -> Answer:
    """One q-signed XML API request whose target carries ``raw_key`` exactly as given."""
    headers = dict(headers or {})
    target = f"/{raw_key}" if virtual_host else f"/{emulator.bucket}/{raw_key}"
    if virtual_host:
        headers["Host"] = VHOST
    now = int(time.time())
    headers["Authorization"] = qsign.authorization(
        emulator.secret_id, emulator.secret_key, method, unquote(target), params, headers, now - 60, now + 900,
        host=VHOST if virtual_host else "127.0.0.1")
    query = "&".join(f"{name}={quote(value)}" if value else name for name, value in params)
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        connection.putrequest(method, target + (f"?{query}" if query else ""),
                              skip_host=virtual_host, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put(emulator: RunningEmulator, key: str, data: bytes) -> None:
    assert send(emulator, "PUT", quote(key), body=data).status == 200


def initiate(emulator: RunningEmulator, key: str) -> str:
    answer = send(emulator, "POST", key, [("uploads", "")])
    return ElementTree.fromstring(answer.body).findtext("UploadId")


def tree(path: Path) -> Set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


class Guard:
    """What the parent of the emulator's root held when the test began, and the checks after."""

    def __init__(self, emulator: RunningEmulator) -> None:
        self.root = emulator.root
        self.parent = emulator.root.parent
        self.before = tree(self.parent)
        #: The server runs in our working directory: a relative escape would land there.
        self.elsewhere = {Path.cwd(), REPOSITORY}
        self.elsewhere_before = self._escapes_elsewhere()

    def _escapes_elsewhere(self) -> Set[Path]:
        return {place / name for place in self.elsewhere for name in ESCAPE_NAMES if (place / name).exists()}

    def _owned(self, relative: str) -> bool:
        """Whether a path below the parent is the root, inside it, or the emulator's log."""
        name = self.root.name
        return relative in (name, name + ".log") or relative.startswith(name + "/")

    def problems(self, objects: int = 0, parts: int = 0) -> List[str]:
        """Everything wrong: changes outside the root, unexpected files inside it."""
        found = []
        outside = {p for p in tree(self.parent) ^ self.before if not self._owned(p)}
        found += [f"changed outside the root: {p}" for p in sorted(outside)]
        found += [f"escaped to: {p}" for p in sorted(self._escapes_elsewhere() - self.elsewhere_before)]
        found += [f"escaped name: {p}" for p in self.parent.rglob("*") if p.name in ESCAPE_NAMES]
        top = {p.name for p in self.root.iterdir()}
        found += [f"unexpected in the root: {n}" for n in sorted(top - {"data", "parts", "tmp"})
                  if not n.startswith("index.db")]
        files = {sub: [p for p in (self.root / sub).rglob("*") if p.is_file()] for sub in ("data", "parts", "tmp")}
        if (len(files["data"]), len(files["parts"]), len(files["tmp"])) != (objects, parts, 0):
            found.append(f"data/parts/tmp hold {len(files['data'])}/{len(files['parts'])}/{len(files['tmp'])} "
                         f"files, expected {objects}/{parts}/0")
        return found


@pytest.fixture
def guard(emulator) -> Guard:
    return Guard(emulator)


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw_key, code", BAD_KEYS, ids=lambda v: v[:12] if isinstance(v, str) else v)
def test_a_put_of_a_bad_key_is_refused_and_writes_nothing(emulator, guard, raw_key, code):
    answer = send(emulator, "PUT", raw_key, body=b"payload")

    assert (answer.status, answer.code) == (400, code)
    assert guard.problems() == []


@pytest.mark.parametrize("raw_key, code", BAD_KEYS[:2] + BAD_KEYS[4:5])
def test_a_virtual_hosted_put_of_a_bad_key_is_refused_and_writes_nothing(emulator, guard, raw_key, code):
    answer = send(emulator, "PUT", raw_key, body=b"payload", virtual_host=True)

    assert (answer.status, answer.code) == (400, code)
    assert guard.problems() == []


@pytest.mark.parametrize("raw_key, code", BAD_KEYS[:1] + BAD_KEYS[3:])
def test_a_multipart_upload_of_a_bad_key_is_refused(emulator, guard, raw_key, code):
    answer = send(emulator, "POST", raw_key, [("uploads", "")])

    assert (answer.status, answer.code) == (400, code)
    assert guard.problems() == []


def test_a_key_of_850_bytes_is_the_longest_accepted(emulator, guard):
    answer = send(emulator, "PUT", "k" * 850, body=b"payload")

    assert answer.status == 200
    assert guard.problems(objects=1) == []


@pytest.mark.parametrize("raw_key", ["../x", "a/../../b", "/abs", "a%00b", LONG])
def test_a_json_upload_of_a_bad_path_is_refused_with_180(emulator, guard, raw_key):
    key = unquote(raw_key)
    now = int(time.time())
    sign = jsonsign.sign_multi(emulator.appid, emulator.bucket_name, emulator.secret_id, emulator.secret_key,
                               now + 300, now, random.randint(0, 999_999_999), "/" + key)
    form = json_codec.upload_form(b"payload", hashlib.sha1(b"payload").hexdigest())
    content_type, body = json_codec.encode_form(form)
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
    try:
        connection.request("POST", f"/files/v2/{emulator.appid}/{emulator.bucket_name}/{raw_key}", body=body,
                           headers={"Content-Type": content_type, "Authorization": sign})
        response = connection.getresponse()
        status, answer = response.status, json_codec.parse_answer(response.read())
    finally:
        connection.close()

    assert (status, answer["code"]) == (400, -180)
    assert guard.problems() == []


# --- bodies and parameters ------------------------------------------------------------------


def test_a_malformed_complete_multipart_body_is_malformed_xml(emulator, guard):
    upload_id = initiate(emulator, "mp")
    part = send(emulator, "PUT", "mp", [("partNumber", "1"), ("uploadId", upload_id)], body=b"part")
    body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + part.headers["etag"].encode()

    answer = send(emulator, "POST", "mp", [("uploadId", upload_id)], {"Content-Type": "application/xml"}, body)

    assert (answer.status, answer.code) == (400, "MalformedXML")
    assert send(emulator, "HEAD", "mp").status == 404
    assert guard.problems(parts=1) == []


def test_a_malformed_multi_delete_body_is_malformed_xml_and_deletes_nothing(emulator, guard):
    put(emulator, "keep", b"k")
    body = b"<Delete><Object><Key>keep</Key></Object"

    answer = send(emulator, "POST", "", [("delete", "")], {"Content-MD5": md5_b64(body)}, body)

    assert (answer.status, answer.code) == (400, "MalformedXML")
    assert send(emulator, "HEAD", "keep").status == 200
    assert guard.problems(objects=1) == []


def test_a_wrong_content_md5_is_bad_digest_and_stores_nothing(emulator, guard):
    answer = send(emulator, "PUT", "digest", {}, {"Content-MD5": md5_b64(b"something else")}, b"payload")

    assert (answer.status, answer.code) == (400, "BadDigest")
    assert send(emulator, "HEAD", "digest").status == 404
    assert guard.problems() == []


def test_a_content_md5_that_is_not_an_md5_is_invalid_digest(emulator, guard):
    answer = send(emulator, "PUT", "digest", {}, {"Content-MD5": "bm90IGFuIG1kNQ=="}, b"payload")

    assert (answer.status, answer.code) == (400, "InvalidDigest")
    assert guard.problems() == []


@pytest.mark.parametrize("span", ["bytes=10-20", "bytes=100-", "bytes=-0"])
def test_a_range_past_the_end_is_invalid_range(emulator, guard, span):
    put(emulator, "ten", b"0123456789")

    answer = send(emulator, "GET", "ten", headers={"Range": span})

    assert (answer.status, answer.code) == (416, "InvalidRange")
    assert guard.problems(objects=1) == []


@pytest.mark.parametrize("method, params, body", [
    ("PUT", [("partNumber", "1"), ("uploadId", "no-such-upload")], b"part"),
    ("POST", [("uploadId", "no-such-upload")],
     b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"),
    ("GET", [("uploadId", "no-such-upload")], b""),
    ("DELETE", [("uploadId", "no-such-upload")], b""),
], ids=["upload-part", "complete", "list-parts", "abort"])
def test_an_unknown_upload_id_is_no_such_upload(emulator, guard, method, params, body):
    answer = send(emulator, method, "mp", params, body=body)

    assert (answer.status, answer.code) == (404, "NoSuchUpload")
    assert guard.problems() == []


def test_an_upload_id_of_another_key_is_no_such_upload(emulator, guard):
    upload_id = initiate(emulator, "mine")

    answer = send(emulator, "PUT", "other", [("partNumber", "1"), ("uploadId", upload_id)], body=b"part")

    assert (answer.status, answer.code) == (404, "NoSuchUpload")
    assert guard.problems() == []
