"""kill -9 of cosfs-emulator in the middle of a 200 MiB upload, then a new emulator on the same
``--root``: no partial object is ever visible, nothing received is left in ``tmp/``, and what
was written before the crash is intact.

The upload is streamed from a thread over ``http.client`` (the body is never in memory); the
test kills the server once the file it receives into under ``ROOT/tmp`` has grown past
``KILL_AFTER`` bytes, so the kill always lands mid-body, whatever the machine's speed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple
from urllib.parse import quote

import pytest

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.signing import qsign
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.mounted import wait_until

MiB = 1024 * 1024
TOTAL = 200 * MiB
KILL_AFTER = 48 * MiB
BLOCK = os.urandom(MiB)
BEFORE = os.urandom(MiB + 17)


def xml_store(emulator: RunningEmulator):
    credentials = StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test")
    return build_store(emulator.bucket, options_from_string(f"endpoint={emulator.url}"), credentials)


def files_under(path: Path) -> List[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


def received_bytes(root: Path) -> int:
    total = 0
    for path in files_under(root / "tmp"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:  # renamed into data/ meanwhile
            pass
    return total


class StreamingPut(threading.Thread):
    """PUT ``TOTAL`` bytes to ``key`` (with ``params``), 1 MiB at a time, until the peer dies."""

    def __init__(self, emulator: RunningEmulator, key: str, params: Sequence[Tuple[str, str]] = ()) -> None:
        super().__init__(daemon=True)
        self.emulator, self.key, self.params = emulator, key, list(params)
        self.sent = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        emulator = self.emulator
        path = f"/{emulator.bucket}/{self.key}"
        headers = {"Content-Length": str(TOTAL), "Content-Type": "application/octet-stream"}
        now = int(time.time())
        headers["Authorization"] = qsign.authorization(
            emulator.secret_id, emulator.secret_key, "PUT", path, self.params, headers, now - 60, now + 900,
            host="127.0.0.1")
        query = "&".join(f"{name}={quote(value)}" for name, value in self.params)
        connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=60)
        try:
            connection.putrequest("PUT", quote(path) + (f"?{query}" if query else ""), skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            while self.sent < TOTAL:
                connection.send(BLOCK)
                self.sent += len(BLOCK)
            connection.getresponse().read()
        except OSError as exc:  # the server died under us: what this test wants
            self.error = exc
        finally:
            connection.close()


def crash_during(emulator: RunningEmulator, upload: StreamingPut) -> RunningEmulator:
    """Start ``upload``, SIGKILL the server mid-body, start a new one on the same root."""
    upload.start()
    wait_until(lambda: received_bytes(emulator.root) >= KILL_AFTER or not upload.is_alive(),
               timeout=60, what=f"the server to receive {KILL_AFTER} bytes")
    emulator.kill()
    upload.join(30)
    assert not upload.is_alive() and upload.sent < TOTAL, "the upload was not cut off mid-body"
    return start_emulator(emulator.root)


@dataclass
class AfterCrash:
    emulator: RunningEmulator
    upload_id: str = ""


@contextmanager
def restarted(tmp_path: Path, scenario) -> Iterator[AfterCrash]:
    """Run ``scenario`` (which crashes the first server) and stop whatever is left afterwards."""
    first = start_emulator(tmp_path / "cos-root")
    after = None
    try:
        after = scenario(first)
        yield after
    finally:
        first.kill()
        if after is not None:
            after.emulator.stop()


@pytest.fixture(scope="module")
def put_crash(tmp_path_factory) -> Iterator[AfterCrash]:
    """``before.bin`` written, then the server killed while receiving a new ``big.bin``."""
    def scenario(emulator: RunningEmulator) -> AfterCrash:
        xml_store(emulator).put_object("before.bin", BEFORE)
        return AfterCrash(crash_during(emulator, StreamingPut(emulator, "big.bin")))
    with restarted(tmp_path_factory.mktemp("put-crash"), scenario) as after:
        yield after


@pytest.fixture
def multipart_crash(tmp_path) -> Iterator[AfterCrash]:
    """Part 1 of ``mp.bin`` uploaded, then the server killed while receiving part 2."""
    def scenario(emulator: RunningEmulator) -> AfterCrash:
        session = xml_store(emulator).begin_upload("mp.bin")
        session.put_part(1, BLOCK * 5)
        upload = StreamingPut(emulator, "mp.bin", [("partNumber", "2"), ("uploadId", session.upload_id)])
        return AfterCrash(crash_during(emulator, upload), session.upload_id)
    with restarted(tmp_path, scenario) as after:
        yield after


# --- a single PUT -------------------------------------------------------------------------


def test_an_object_cut_off_by_the_crash_does_not_exist(put_crash):
    assert xml_store(put_crash.emulator).stat("big.bin") is None


def test_an_object_cut_off_by_the_crash_is_not_listed(put_crash):
    listed = [info.key for info in xml_store(put_crash.emulator).walk("")]

    assert listed == ["before.bin"]


def test_no_received_bytes_are_left_after_the_restart(put_crash):
    root = put_crash.emulator.root

    assert files_under(root / "tmp") == []
    assert len(files_under(root / "data")) == 1  # before.bin's body, nothing else


def test_an_object_written_before_the_crash_survives_intact(put_crash):
    store = xml_store(put_crash.emulator)

    assert store.stat("before.bin").etag == hashlib.md5(BEFORE).hexdigest()
    assert store.read_range("before.bin", 0, len(BEFORE) + 1) == BEFORE


def test_an_object_being_overwritten_keeps_its_old_content(tmp_path):
    def scenario(emulator: RunningEmulator) -> AfterCrash:
        xml_store(emulator).put_object("before.bin", BEFORE)
        return AfterCrash(crash_during(emulator, StreamingPut(emulator, "before.bin")))

    with restarted(tmp_path, scenario) as after:
        assert xml_store(after.emulator).read_range("before.bin", 0, len(BEFORE) + 1) == BEFORE


# --- a multipart upload ---------------------------------------------------------------------


def test_a_multipart_object_cut_off_by_the_crash_does_not_exist(multipart_crash):
    store = xml_store(multipart_crash.emulator)

    assert store.stat("mp.bin") is None and list(store.walk("")) == []
    assert files_under(multipart_crash.emulator.root / "tmp") == []


def test_the_unfinished_upload_keeps_only_its_complete_part(multipart_crash):
    session = xml_store(multipart_crash.emulator).find_upload("mp.bin")

    assert session is not None and session.upload_id == multipart_crash.upload_id
    assert [(part.number, part.size) for part in session.list_parts()] == [(1, 5 * MiB)]


def test_the_unfinished_upload_can_be_aborted_without_leftovers(multipart_crash):
    store = xml_store(multipart_crash.emulator)

    store.find_upload("mp.bin").abort()

    assert store.find_upload("mp.bin") is None
    assert files_under(multipart_crash.emulator.root / "parts") == []
