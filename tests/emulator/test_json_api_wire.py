"""The 14 requests qcloud-cos-v4 0.0.9 really sent (``json_wire`` vectors), replayed against
``json_api.handle``: each is accepted with the documented answer.

The vectors were signed at t=1700000000 with e=t+300; the harness clock stands at t+1. The
slice data requests are stored without their 1 MiB bodies: the body is rebuilt from the
recorded fields, the file rule of ``json_slice_sha_example`` and the boundary of the
recorded Content-Type, and must have the recorded length. Their session was the capture
server's ``s1``; the replay substitutes the session the emulator handed out.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Dict, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from cosfs.emulator.protocol import EmuRequest
from tests.emulator.json_api_support import APPID, BUCKET, NAME, JsonHarness, emu  # noqa: F401
from tests.support.vectors import VECTORS, load_vectors

DATA = load_vectors()
WIRE = {v["id"]: v for v in DATA["json_wire"]}
SLICE_FILE = bytes(i % 251 for i in range(2621440))
SLICE_IDS = ["wire-json-upload_slice_sha1." + step for step in ("init", "data0", "data1", "data2", "finish")]


def wire_request(vector: dict, session: Optional[str] = None) -> EmuRequest:
    """The captured request as the server hands it to ``json_api.handle``."""
    target = urlsplit(vector["request_target"])
    headers = {name.lower(): value for name, value in vector["headers"]}
    body = _body(vector, headers, session)
    path = target.path[len(f"/files/v2/{APPID}/{NAME}/"):]
    return EmuRequest(vector["method"], target.path, parse_qsl(target.query, keep_blank_values=True), headers,
                      iter([body] if body else []), raw_query=target.query, host=headers["host"],
                      bucket=BUCKET, key=unquote(path, errors="strict"), request_id=vector["id"])


def _body(vector: dict, headers: Dict[str, str], session: Optional[str]) -> bytes:
    if "multipart_fields_except_filecontent" not in vector:
        body = vector["body"].encode("utf-8")
        assert len(body) == vector["body_len"]
        return body.replace(b"\r\n\r\ns1\r\n", f"\r\n\r\n{session}\r\n".encode()) if session else body
    boundary = headers["content-type"].split("boundary=")[1]
    fields = dict(vector["multipart_fields_except_filecontent"])
    offset = int(fields["offset"])
    rebuilt = _form(boundary, {**fields, "filecontent": SLICE_FILE[offset:offset + 1048576]})
    assert len(rebuilt) == vector["body_len"]
    return _form(boundary, {**fields, "session": session, "filecontent": SLICE_FILE[offset:offset + 1048576]})


def _form(boundary: str, fields: Dict[str, object]) -> bytes:
    """A form as qcloud-cos-v4 sends it: every field a file part named after itself."""
    parts = []
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else str(value).encode()
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'
                     .encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


# --- what each vector needs before it, and what it must leave behind ---------------------------


def prepare(emu: JsonHarness, vector_id: str) -> Optional[str]:
    """Seed the store as the capture session had it; returns the slice session to use."""
    emu.create("/dir/")
    emu.put_object("dir/a b.txt", b"stat me")  # written as the XML API would
    emu.put_object("dir/prefix.txt", b"p")
    emu.put_object("dir/file.txt", b"attrs")
    emu.put_object("dir/a.txt", b"moving")
    emu.create("/中文/")
    if vector_id == "wire-json-del_folder":
        emu.create("/dir/sub/")
    if vector_id not in SLICE_IDS[1:]:
        return None
    init = emu.call(wire_request(WIRE[SLICE_IDS[0]]))
    session = init.data["session"]
    for earlier in SLICE_IDS[1:SLICE_IDS.index(vector_id)]:
        assert emu.call(wire_request(WIRE[earlier], session)).code == 0
    return session


def _stat_file(emu: JsonHarness, data: dict) -> None:
    assert (data["name"], data["filesize"], data["filelen"]) == ("a b.txt", 7, 7)
    assert data["sha"] == hashlib.sha1(b"stat me").hexdigest()


def _stat_folder(emu: JsonHarness, data: dict) -> None:
    assert set(data) == {"biz_attr", "ctime", "mtime"} and data["ctime"] == 1700000001


def _create_folder(emu: JsonHarness, data: dict) -> None:
    assert data["ctime"] == 1700000001
    assert emu.head("dir/sub/").extra == {"biz_attr": "folder attr"}


def _list_prefix(emu: JsonHarness, data: dict) -> None:
    assert [info["name"] for info in data["infos"]] == ["prefix.txt"] and data["listover"] is True


def _upload(emu: JsonHarness, data: dict) -> None:
    assert emu.read("中文/a b+c.txt") == b"hello world"
    assert data["access_url"] == f"http://{NAME}-{APPID}.file.myqcloud.com/%E4%B8%AD%E6%96%87/a%20b%2Bc.txt"


def _slice_init(emu: JsonHarness, data: dict) -> None:
    assert data["slice_size"] == 1048576 and data["session"] and data["offset"] == 0


def _slice_data(offset: int, length: int) -> Callable[[JsonHarness, dict], None]:
    def check(emu: JsonHarness, data: dict) -> None:
        assert (data["offset"], data["datalen"]) == (offset, length)
    return check


def _slice_finish(emu: JsonHarness, data: dict) -> None:
    assert emu.read("dir/big.bin") == SLICE_FILE
    assert emu.storage.content_sha1(emu.head("dir/big.bin")) == "d08b7e21afb7bc45b7bc7e265d812094252a14ac"
    assert data["resource_path"] == f"/{APPID}/{NAME}/dir/big.bin"


def _update(emu: JsonHarness, data: dict) -> None:
    record = emu.head("dir/file.txt")
    assert (record.meta, record.content_type) == ({"mode": "0100644"}, "text/plain")
    assert record.extra == {"biz_attr": "attr", "authority": "eWRPrivate"}


def _move(emu: JsonHarness, data: dict) -> None:
    assert emu.head("dir/a.txt") is None and emu.read("dir/b c.txt") == b"moving"


def _gone(key: str) -> Callable[[JsonHarness, dict], None]:
    def check(emu: JsonHarness, data: dict) -> None:
        assert emu.head(key) is None
    return check


#: vector -> (the op name the handler records, what the answer and the store must show).
CHECKS = {
    "wire-json-stat_file": ("stat", _stat_file),
    "wire-json-stat_folder": ("stat", _stat_folder),
    "wire-json-create_folder": ("create", _create_folder),
    "wire-json-list_folder_prefix": ("list", _list_prefix),
    "wire-json-upload_single_overwrite": ("upload", _upload),
    SLICE_IDS[0]: ("upload_slice_init", _slice_init),
    SLICE_IDS[1]: ("upload_slice_data", _slice_data(0, 1048576)),
    SLICE_IDS[2]: ("upload_slice_data", _slice_data(1048576, 1048576)),
    SLICE_IDS[3]: ("upload_slice_data", _slice_data(2097152, 524288)),
    SLICE_IDS[4]: ("upload_slice_finish", _slice_finish),
    "wire-json-update_file": ("update", _update),
    "wire-json-move_file": ("move", _move),
    "wire-json-del_file": ("delete", _gone("dir/a b.txt")),
    "wire-json-del_folder": ("delete", _gone("dir/sub/")),
}


def test_the_vectors_file_has_the_fourteen_captured_requests():
    assert DATA is not None, f"signature vectors not found at {VECTORS} (set COSFS_VECTORS)"
    assert sorted(WIRE) == sorted(CHECKS)


@pytest.mark.parametrize("vector_id", sorted(CHECKS))
def test_captured_request_is_accepted(emu, vector_id):
    assert vector_id in WIRE, f"vector {vector_id} missing from {VECTORS}"
    session = prepare(emu, vector_id)

    answer = emu.call(wire_request(WIRE[vector_id], session))

    operation, check = CHECKS[vector_id]
    assert (answer.status, answer.code, answer.message) == (200, 0, "SUCCESS")
    assert answer.operation == operation
    check(emu, answer.data)


def test_the_capture_replays_in_order_on_one_store(emu):
    emu.put_object("dir/a b.txt", b"stat me")
    for key in ("dir/prefix.txt", "dir/file.txt", "dir/a.txt"):
        emu.put_object(key, b"x")
    emu.create("/中文/")
    session = None
    operations = []

    for vector in DATA["json_wire"]:
        answer = emu.call(wire_request(vector, session))
        assert answer.code == 0, f"{vector['id']}: {answer.message}"
        session = answer.data.get("session", session)
        operations.append(answer.operation)

    assert operations == [CHECKS[vector["id"]][0] for vector in DATA["json_wire"]]
    assert emu.read("dir/big.bin") == SLICE_FILE and emu.head("dir/sub/") is None


@pytest.mark.parametrize("vector_id", ["wire-json-update_file", "wire-json-move_file", "wire-json-del_file"])
def test_a_captured_once_signature_is_refused_the_second_time(emu, vector_id):
    prepare(emu, vector_id)
    emu.put_object("dir/a.txt", b"again")  # the state allows the operation a second time
    assert emu.call(wire_request(WIRE[vector_id])).code == 0
    emu.put_object("dir/a.txt", b"again")
    emu.put_object("dir/a b.txt", b"again")

    replay = emu.call(wire_request(WIRE[vector_id]))

    assert (replay.status, replay.code) == (400, -77)


def test_a_captured_multi_signature_expires_after_its_e(emu):
    emu.put_object("dir/a b.txt", b"stat me")
    emu.clock.now = 1_700_000_301

    answer = emu.call(wire_request(WIRE["wire-json-stat_file"]))

    assert (answer.status, answer.code) == (400, -96)
