"""The 14 requests qcloud-cos-v4 0.0.9 really sent (``json_wire`` vectors), replayed byte for
byte over a socket to a running cosfs-emulator: each is accepted with the documented answer.

The server runs with ``--fixed-time 1700000001`` (the vectors were signed at t=1700000000
with e=t+300) and the vectors' credentials. What the capture session had before the first
request (``dir/``, the files stat, list, update and move work on, ``中文/``) is created first
through our ``JsonStore``. Only ``Host`` is rewritten (to ``127.0.0.1:PORT``); the request
target, the other headers (``Authorization`` included) and the body go as captured.

Two things cannot go as captured: the slice data requests are stored without their 1 MiB
bodies, so each body is rebuilt from the recorded fields and ``json_slice_sha_example``'s
file and must have the recorded length; and their session was the capture server's ``s1``,
so the replay substitutes the session this server handed out (Content-Length follows).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store
from cosfs.store.json_store import JsonStore
from cosfs.wire.credentials import Credentials, StaticProvider
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.vectors import VECTORS, load_vectors

DATA = load_vectors()
ORDER = [vector["id"] for vector in DATA["json_wire"]]
WIRE = {vector["id"]: vector for vector in DATA["json_wire"]}
FIXED_TIME = "1700000001"
SLICE_FILE = bytes(i % 251 for i in range(2621440))
SLICE_SHA = "d08b7e21afb7bc45b7bc7e265d812094252a14ac"
SLICE_IDS = ["wire-json-upload_slice_sha1." + step for step in ("init", "data0", "data1", "data2", "finish")]
ONCE_IDS = ["wire-json-update_file", "wire-json-move_file", "wire-json-del_file", "wire-json-del_folder"]
URL_FIELDS = {"access_url", "resource_path", "source_url", "url", "preview_url"}


# --- sending a captured request -------------------------------------------------------------


def captured_body(vector: dict, session: Optional[str]) -> bytes:
    """The body as captured, with the capture server's session ``s1`` replaced by ``session``."""
    if "multipart_fields_except_filecontent" in vector:
        return _rebuilt_slice(vector, session)
    body = vector["body"].encode("utf-8")
    assert len(body) == vector["body_len"], f"{vector['id']}: stored body is not {vector['body_len']} bytes"
    if session is not None and b"\r\n\r\ns1\r\n" in body:
        body = body.replace(b"\r\n\r\ns1\r\n", f"\r\n\r\n{session}\r\n".encode())
    return body


def _rebuilt_slice(vector: dict, session: Optional[str]) -> bytes:
    boundary = dict(vector["headers"])["Content-Type"].split("boundary=", 1)[1]
    fields = dict(vector["multipart_fields_except_filecontent"])
    offset = int(fields["offset"])
    content = SLICE_FILE[offset:offset + 1048576]
    rebuilt = _form(boundary, {**fields, "filecontent": content})
    assert len(rebuilt) == vector["body_len"], f"{vector['id']}: rebuilt body is not the captured length"
    return _form(boundary, {**fields, "session": session or fields["session"], "filecontent": content})


def _form(boundary: str, fields: Dict[str, object]) -> bytes:
    """A form as qcloud-cos-v4 sends it: every field a file part named after itself."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'.encode()
             + (value if isinstance(value, bytes) else str(value).encode()) + b"\r\n"
             for name, value in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def send_captured(emulator: RunningEmulator, vector: dict, session: Optional[str] = None) -> Tuple[int, dict]:
    """Send ``vector`` over a fresh socket; ``(HTTP status, JSON answer)``."""
    body = captured_body(vector, session)
    lines = [f"{vector['method']} {vector['request_target']} HTTP/1.1"]
    for name, value in vector["headers"]:
        if name.lower() == "host":
            value = f"127.0.0.1:{emulator.port}"
        elif name.lower() == "content-length":
            value = str(len(body))
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock, method=vector["method"])
        response.begin()
        payload = response.read()
    return response.status, json.loads(payload)


def json_store(emulator: RunningEmulator) -> JsonStore:
    credentials = StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test")
    return build_store(emulator.bucket, options_from_string(f"api=json,endpoint={emulator.url}"), credentials)


def start_capture_server(root: Path, *extra: str) -> RunningEmulator:
    vector = DATA["json_wire"][0]
    return start_emulator(root, *extra, secret_id=vector["secret_id"], secret_key=vector["secret_key"])


def seed(store: JsonStore) -> None:
    """What the capture session had before its first request."""
    store.create_dir("dir/")
    store.put_object("dir/a b.txt", b"stat me")
    store.put_object("dir/prefix.txt", b"p")
    store.put_object("dir/file.txt", b"attrs")
    store.put_object("dir/a.txt", b"moving")
    store.create_dir("中文/")


@dataclass
class Replay:
    emulator: RunningEmulator
    store: JsonStore
    answers: Dict[str, Tuple[int, dict]]
    #: The server's request counters for the replay alone.
    counts: Dict[str, int]


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Replay:
    """One server that received all 14 captured requests, in the capture's order."""
    emulator = start_capture_server(tmp_path_factory.mktemp("wire") / "cos-root", "--fixed-time", FIXED_TIME)
    try:
        store = json_store(emulator)
        seed(store)
        emulator.admin("stats/reset")
        answers: Dict[str, Tuple[int, dict]] = {}
        session = None
        for vector_id in ORDER:
            answers[vector_id] = send_captured(emulator, WIRE[vector_id], session)
            session = (answers[vector_id][1].get("data") or {}).get("session", session)
        yield Replay(emulator, store, answers, emulator.stats())
    finally:
        emulator.stop()


# --- what each answer must hold, and what the store must show afterwards -------------------


def _stat_file(replay: Replay, data: dict) -> None:
    assert {"name", "biz_attr", "filesize", "filelen", "sha", "ctime", "mtime", "access_url", "source_url"} <= set(data)
    assert (data["name"], data["filesize"], data["filelen"]) == ("a b.txt", 7, 7)
    assert (data["sha"], data["ctime"]) == (hashlib.sha1(b"stat me").hexdigest(), int(FIXED_TIME))


def _stat_folder(replay: Replay, data: dict) -> None:
    assert {"biz_attr", "ctime", "mtime"} <= set(data) and data["ctime"] == int(FIXED_TIME)


def _create_folder(replay: Replay, data: dict) -> None:
    assert data["ctime"] == int(FIXED_TIME)
    assert data["resource_path"] == "/1250000000/examplebucket/dir/sub/"


def _list_prefix(replay: Replay, data: dict) -> None:
    assert [info["name"] for info in data["infos"]] == ["prefix.txt"]
    assert data["listover"] is True and data["infos"][0]["sha"] == hashlib.sha1(b"p").hexdigest()


def _upload(replay: Replay, data: dict) -> None:
    assert URL_FIELDS <= set(data)
    assert data["access_url"] == "http://examplebucket-1250000000.file.myqcloud.com/%E4%B8%AD%E6%96%87/a%20b%2Bc.txt"
    assert replay.store.read_range("中文/a b+c.txt", 0, 100) == b"hello world"


def _slice_init(replay: Replay, data: dict) -> None:
    assert data["session"] and data["session"] != "s1" and data["slice_size"] == 1048576


def _slice_data(offset: int, length: int) -> Callable[[Replay, dict], None]:
    def check(replay: Replay, data: dict) -> None:
        assert (data["offset"], data["datalen"]) == (offset, length)
        assert data["session"] == replay.answers[SLICE_IDS[0]][1]["data"]["session"]
    return check


def _slice_finish(replay: Replay, data: dict) -> None:
    assert URL_FIELDS <= set(data) and data["resource_path"] == "/1250000000/examplebucket/dir/big.bin"
    assert replay.store.stat("dir/big.bin").etag == SLICE_SHA
    assert replay.store.read_range("dir/big.bin", 0, len(SLICE_FILE) + 1) == SLICE_FILE


def _update(replay: Replay, data: dict) -> None:
    info = replay.store.stat("dir/file.txt")
    assert (info.meta, info.content_type) == ({"mode": "0100644"}, "text/plain")


def _move(replay: Replay, data: dict) -> None:
    assert replay.store.stat("dir/a.txt") is None
    assert replay.store.read_range("dir/b c.txt", 0, 100) == b"moving"


def _gone(key: str) -> Callable[[Replay, dict], None]:
    def check(replay: Replay, data: dict) -> None:
        assert replay.store.stat(key) is None
    return check


CHECKS: Dict[str, Callable[[Replay, dict], None]] = {
    "wire-json-stat_file": _stat_file,
    "wire-json-stat_folder": _stat_folder,
    "wire-json-create_folder": _create_folder,
    "wire-json-list_folder_prefix": _list_prefix,
    "wire-json-upload_single_overwrite": _upload,
    SLICE_IDS[0]: _slice_init,
    SLICE_IDS[1]: _slice_data(0, 1048576),
    SLICE_IDS[2]: _slice_data(1048576, 1048576),
    SLICE_IDS[3]: _slice_data(2097152, 524288),
    SLICE_IDS[4]: _slice_finish,
    "wire-json-update_file": _update,
    "wire-json-move_file": _move,
    "wire-json-del_file": _gone("dir/a b.txt"),
    "wire-json-del_folder": _gone("dir/sub/"),
}


def test_the_vectors_hold_the_fourteen_captured_requests():
    assert DATA["json_wire"], f"signature vectors not found at {VECTORS} (set COSFS_VECTORS)"
    assert sorted(ORDER) == sorted(CHECKS)


@pytest.mark.parametrize("vector_id", list(CHECKS))
def test_captured_request_is_accepted_with_the_documented_answer(replay, vector_id):
    status, answer = replay.answers[vector_id]

    assert (status, answer["code"], answer["message"]) == (200, 0, "SUCCESS")
    CHECKS[vector_id](replay, answer.get("data") or {})


def test_the_server_counts_each_captured_operation_once(replay):
    assert replay.counts == {
        "json.stat": 2, "json.create": 1, "json.list": 1, "json.upload": 1, "json.upload_slice_init": 1,
        "json.upload_slice_data": 3, "json.upload_slice_finish": 1, "json.update": 1, "json.move": 1,
        "json.delete": 2,
    }


# --- once signatures ------------------------------------------------------------------------


def _restore(store: JsonStore, vector_id: str) -> Callable[[], bool]:
    """Make the state allow ``vector_id`` again; returns how to see that a replay did nothing."""
    if vector_id == "wire-json-update_file":
        store.set_meta("dir/file.txt", {"mode": "0100600"})
        return lambda: store.stat("dir/file.txt").meta == {"mode": "0100600"}
    if vector_id == "wire-json-move_file":
        store.put_object("dir/a.txt", b"second")
        return lambda: store.read_range("dir/a.txt", 0, 10) == b"second"
    if vector_id == "wire-json-del_file":
        store.put_object("dir/a b.txt", b"second")
        return lambda: store.stat("dir/a b.txt") is not None
    store.create_dir("dir/sub/")
    return lambda: store.stat("dir/sub/") is not None


@pytest.mark.parametrize("vector_id", ONCE_IDS)
def test_a_captured_once_signature_is_refused_when_replayed(tmp_path, vector_id):
    emulator = start_capture_server(tmp_path / "cos-root", "--fixed-time", FIXED_TIME)
    try:
        store = json_store(emulator)
        seed(store)
        if vector_id == "wire-json-del_folder":
            store.create_dir("dir/sub/")
        assert send_captured(emulator, WIRE[vector_id])[1]["code"] == 0
        untouched = _restore(store, vector_id)

        status, answer = send_captured(emulator, WIRE[vector_id])

        assert (status, answer["code"]) == (400, -77)
        assert untouched()
    finally:
        emulator.stop()


def test_a_captured_multi_signature_is_expired_for_a_server_at_todays_time(tmp_path):
    emulator = start_capture_server(tmp_path / "cos-root")
    try:
        store = json_store(emulator)
        store.create_dir("dir/")
        store.put_object("dir/a b.txt", b"stat me")

        status, answer = send_captured(emulator, WIRE["wire-json-stat_file"])

        assert (status, answer["code"]) == (400, -96)
    finally:
        emulator.stop()


def test_rebuilt_slice_bodies_have_the_captured_lengths():
    lengths: List[int] = [len(captured_body(WIRE[vector_id], None)) for vector_id in SLICE_IDS[1:4]]

    assert lengths == [WIRE[vector_id]["body_len"] for vector_id in SLICE_IDS[1:4]]
