"""Fault injection and request counters of a running cosfs-emulator, seen from a client:
``--fail-rate`` answers 503 SlowDown, the admin endpoint changes faults at runtime,
``--reset-rate`` drops connections mid-body, ``--latency-ms`` delays answers, ``--stall``
holds requests unanswered, the counters count exactly what was sent, and our stores ride
out a flaky server with their retries: exact bytes, no spurious errors.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import threading
import time
import urllib.error
from typing import Dict, Optional
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store, build_transport
from cosfs.emulator import cli as emulator_cli
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.errors import CosError
from cosfs.wire.signing import jsonsign, qsign
from tests.support.emulator import RunningEmulator, start_emulator

MiB = 1024 * 1024
#: Errors requests raises when the server closes the connection half-way.
DROPPED = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)


def xml_request(emulator: RunningEmulator, method: str, key: str, data: bytes = b"",
                headers: Optional[Dict[str, str]] = None, session=requests) -> requests.Response:
    """One q-signed, path-style XML API request, sent once (no retries)."""
    path = f"/{emulator.bucket}/{key}"
    headers = dict(headers or {})
    now = int(time.time())
    headers["Authorization"] = qsign.authorization(
        emulator.secret_id, emulator.secret_key, method, path, [], headers, now - 60, now + 900, host="127.0.0.1")
    return session.request(method, emulator.url + quote(path), data=data or None, headers=headers, timeout=30)


def json_stat(emulator: RunningEmulator, key: str) -> requests.Response:
    now = int(time.time())
    sign = jsonsign.sign_multi(emulator.appid, emulator.bucket_name, emulator.secret_id, emulator.secret_key,
                               now + 300, now, 1, "/" + key)
    url = f"{emulator.url}/files/v2/{emulator.appid}/{emulator.bucket_name}/{quote(key)}?op=stat"
    return requests.get(url, headers={"Authorization": sign}, timeout=30)


def error_code(response: requests.Response) -> str:
    if not response.content:
        return response.headers.get("x-cos-error-code", "")
    return ElementTree.fromstring(response.content).findtext("Code") or ""


def credentials(emulator: RunningEmulator) -> StaticProvider:
    return StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test")


def xml_store(emulator: RunningEmulator, options: str = ""):
    return build_store(emulator.bucket, options_from_string(f"endpoint={emulator.url}{options}"), credentials(emulator))


def json_store(emulator: RunningEmulator):
    return build_store(emulator.bucket, options_from_string(f"api=json,endpoint={emulator.url}"), credentials(emulator))


def quick_store(emulator: RunningEmulator, api: str):
    """A store with the default retry rules but waits of a few ms (the tests count attempts,
    not seconds)."""
    options = options_from_string(f"api={api},endpoint={emulator.url}")
    transport = build_transport(options)
    transport.retry.base_delay, transport.retry.max_delay = 0.005, 0.02
    return build_store(emulator.bucket, options, credentials(emulator), transport)


@pytest.fixture
def started(tmp_path):
    """Start emulators with extra options on ``tmp_path/cos-root``; all stopped afterwards."""
    running = []

    def start(*args: str) -> RunningEmulator:
        running.append(start_emulator(tmp_path / "cos-root", *args))
        return running[-1]

    yield start
    for emulator in running:
        emulator.stop()


# --- failures -------------------------------------------------------------------------------


def test_refuse_keys_refuses_storing_matching_names_and_spares_others(emulator):
    emulator.admin("faults", {"refuse_keys": "bad"})
    refused = xml_request(emulator, "PUT", "dir/bad.txt", b"x")
    assert (refused.status_code, error_code(refused)) == (400, "InvalidObjectName")
    assert xml_request(emulator, "PUT", "dir/good.txt", b"x").status_code == 200
    assert xml_request(emulator, "HEAD", "dir/bad.txt").status_code == 404, "reads answer as usual"
    with pytest.raises(CosError) as refused_json:
        json_store(emulator).put_object("dir/bad.txt", b"x")
    assert refused_json.value.code == "-180"
    assert json_stat(emulator, "dir/good.txt").json()["code"] == 0
    emulator.admin("faults", {"refuse_keys": ""})
    assert xml_request(emulator, "PUT", "dir/bad.txt", b"x").status_code == 200


def test_refuse_keys_must_be_a_regular_expression(emulator):
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.admin("faults", {"refuse_keys": "("})
    assert refused.value.code == 400


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_fail_rate_1_answers_every_xml_request_503_slow_down(started, method):
    emulator = started("--fail-rate", "1")

    response = xml_request(emulator, method, "key", b"data" if method == "PUT" else b"")

    assert (response.status_code, error_code(response)) == (503, "SlowDown")


def test_fail_rate_1_answers_json_api_requests_503_too(started):
    emulator = started("--fail-rate", "1")

    assert json_stat(emulator, "key").status_code == 503


def test_fail_rate_1_spares_the_admin_endpoint(started):
    emulator = started("--fail-rate", "1")

    assert emulator.admin("faults")["fail_rate"] == 1.0


def test_a_fail_rate_set_at_runtime_fails_about_that_share(emulator):
    xml_request(emulator, "PUT", "key", b"data")

    settings = emulator.admin("faults", {"fail_rate": 0.5, "seed": 7})
    with requests.Session() as session:
        statuses = [xml_request(emulator, "GET", "key", session=session).status_code for _ in range(200)]

    assert (settings["fail_rate"], settings["seed"]) == (0.5, 7)
    assert set(statuses) == {200, 503}
    assert 70 <= statuses.count(503) <= 130


def test_faults_switched_off_at_runtime_stop_failing(started):
    emulator = started("--fail-rate", "1")

    emulator.admin("faults", {"fail_rate": 0})

    assert xml_request(emulator, "PUT", "key", b"data").status_code == 200


def test_the_admin_endpoint_refuses_an_unknown_fault_setting(emulator):
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.admin("faults", {"fail_rat": 0.5})

    assert refused.value.code == 400
    assert "fail_rat" in json.loads(refused.value.read())["error"]


# --- connection resets ----------------------------------------------------------------------


def test_reset_rate_1_closes_the_connection_in_the_middle_of_a_download(started):
    writer = started()
    assert xml_request(writer, "PUT", "big", b"\x01" * MiB).status_code == 200
    writer.stop()
    emulator = started("--reset-rate", "1")

    with pytest.raises(DROPPED):
        xml_request(emulator, "GET", "big")


def test_reset_rate_1_drops_an_upload_mid_body_and_stores_nothing(started):
    emulator = started("--reset-rate", "1")

    with pytest.raises(DROPPED):
        xml_request(emulator, "PUT", "big", b"\x01" * MiB)

    emulator.stop()
    assert xml_request(started(), "HEAD", "big").status_code == 404


@pytest.mark.parametrize("path, body", [("faults", None), ("stats", None), ("faults", {"reset_rate": 0})])
def test_reset_rate_1_spares_the_admin_endpoint(started, path, body):
    emulator = started("--reset-rate", "1")

    answer = emulator.admin(path, body)

    assert ("reset_rate" in answer) if path == "faults" else ("requests" in answer)


# --- latency --------------------------------------------------------------------------------


def test_latency_ms_200_delays_every_request_by_at_least_that(started):
    emulator = started("--latency-ms", "200")
    started_at = time.monotonic()

    response = xml_request(emulator, "HEAD", "missing")

    assert response.status_code == 404
    assert time.monotonic() - started_at >= 0.2


def test_without_injected_latency_a_small_answer_is_not_delayed(emulator):
    xml_request(emulator, "PUT", "small", b"0123456789")
    timings = []
    with requests.Session() as session:
        for _ in range(10):
            started_at = time.monotonic()
            assert xml_request(emulator, "GET", "small", session=session).content == b"0123456789"
            timings.append(time.monotonic() - started_at)

    # a loopback GET of 10 bytes takes ~1 ms; 40 ms is the mark of Nagle + delayed ACK
    assert statistics.median(timings) < 0.02, f"median {statistics.median(timings) * 1000:.0f} ms"


# --- counters -------------------------------------------------------------------------------


def test_the_counters_count_exactly_what_a_known_sequence_sent(emulator):
    xml, legacy = xml_store(emulator), json_store(emulator)
    emulator.admin("stats/reset")

    for n in range(3):
        xml.put_object(f"f{n}", b"data")
    xml.stat("f0")
    xml.stat("missing")
    xml.read_range("f1", 0, 2)
    xml.list_page("")
    xml.delete_file("f2")
    legacy.stat("f0")
    legacy.create_dir("d/")

    stats = emulator.admin("stats")
    assert {name: stats[name] for name in ("requests", "total")} == {
        "requests": {"xml.PutObject": 3, "xml.HeadObject": 2, "xml.GetObject": 1, "xml.ListObjects": 1,
                     "xml.DeleteObject": 1, "json.stat": 1, "json.create": 1},
        "total": 10,
    }


def test_the_byte_counters_count_request_and_answer_bodies(emulator):
    """Cost promises about bytes moved (a sparse write uploads and downloads only what changed)
    are asserted with these: request bodies in, answer bodies out, headers excluded."""
    xml = xml_store(emulator)
    emulator.admin("stats/reset")

    xml.put_object("b", b"x" * 1000)
    assert emulator.admin("stats")["bytes"] == {"in": 1000, "out": 0}
    assert xml.read_range("b", 100, 300) == b"x" * 300
    xml.stat("b")
    assert emulator.admin("stats")["bytes"] == {"in": 1000, "out": 300}


def test_resetting_the_counters_zeroes_them(emulator):
    xml_request(emulator, "HEAD", "missing")

    emulator.admin("stats/reset")

    assert emulator.admin("stats") == {"requests": {}, "total": 0, "bytes": {"in": 0, "out": 0}}


# --- retries end to end ---------------------------------------------------------------------


def test_xml_store_with_default_retries_succeeds_against_a_flaky_server(started, caplog):
    emulator = started("--fail-rate", "0.3", "--seed", "1")
    store = xml_store(emulator)
    caplog.set_level(logging.INFO, logger="cosfs.wire.transport")
    blobs = {f"obj{n}": bytes([n]) * (1000 + n) for n in range(15)}

    for key, data in blobs.items():
        store.put_object(key, data)
    read = {key: store.read_range(key, 0, len(data)) for key, data in blobs.items()}

    assert read == blobs
    assert any("retrying" in record.getMessage() for record in caplog.records), "no request was repeated"


# --- stall ----------------------------------------------------------------------------------


def test_stall_reads_requests_but_answers_none_while_the_admin_endpoint_answers(started):
    emulator = started("--stall")

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.head(f"{emulator.url}/{emulator.bucket}/key", timeout=(5, 1))

    assert emulator.admin("faults")["stall"] is True


def test_requests_held_by_a_stall_are_answered_once_it_is_off_and_new_ones_are_served(emulator):
    xml_request(emulator, "PUT", "key", b"data")
    emulator.admin("faults", {"stall": True})
    answers = []
    held = threading.Thread(target=lambda: answers.append(xml_request(emulator, "GET", "key")))
    held.start()

    held.join(1.0)
    assert held.is_alive() and answers == [], "a stalled server answered"
    emulator.admin("faults", {"stall": False})
    held.join(10)

    assert [answer.content for answer in answers] == [b"data"]
    assert xml_request(emulator, "GET", "key").content == b"data"


def test_stall_must_be_true_or_false(emulator):
    with pytest.raises(urllib.error.HTTPError) as refused:
        emulator.admin("faults", {"stall": "yes"})

    assert refused.value.code == 400 and "stall" in json.loads(refused.value.read())["error"]


def test_the_emulator_help_explains_the_stall_fault(capsys):
    with pytest.raises(SystemExit):
        emulator_cli.parse_args(["--help"])

    text = capsys.readouterr().out
    assert "--stall" in text and '"stall": false' in text


# --- our stores through resets --------------------------------------------------------------


@pytest.mark.parametrize("api", ["xml", "json"])
def test_reads_of_a_multi_mib_object_through_resets_return_the_exact_bytes(emulator, api):
    data = random.Random(5).randbytes(6 * MiB)
    store = quick_store(emulator, api)
    upload = store.begin_upload("big", len(data), part_size=3 * MiB)
    upload.complete([upload.put_part(n + 1, data[start:start + 3 * MiB])
                     for n, start in enumerate(range(0, len(data), 3 * MiB))])
    emulator.admin("faults", {"reset_rate": 0.5, "fail_rate": 0.2, "seed": 11})
    emulator.admin("stats/reset")

    whole = store.read_range("big", 0, len(data))
    pieces = [store.read_range("big", start, MiB) for start in range(0, len(data), MiB)]
    tail = store.read_range("big", len(data) - 100, 1000)

    assert whole == data and b"".join(pieces) == data and tail == data[-100:]
    assert sum(emulator.stats().values()) > 8, "no read was cut and resumed"


@pytest.mark.parametrize("api", ["xml", "json"])
def test_writes_deletes_and_mkdirs_through_resets_and_503s_report_no_error(emulator, api):
    emulator.admin("faults", {"reset_rate": 0.3, "fail_rate": 0.2, "seed": 12})
    store = quick_store(emulator, api)
    blobs = {f"d{n}/f": random.Random(n).randbytes(1000 + 70_000 * n) for n in range(12)}

    for key, data in blobs.items():
        store.create_dir(key.split("/")[0] + "/")
        store.put_object(key, data)
    for n in range(6):
        store.move(f"d{n}/f", f"d{n}/moved")
        store.delete_file(f"d{n}/moved")
        store.delete_file(f"d{n}/moved")
        store.delete_dir(f"d{n}/")

    emulator.admin("faults", {"reset_rate": 0, "fail_rate": 0})
    assert [store.stat(f"d{n}/") is None for n in range(12)] == [True] * 6 + [False] * 6
    assert {key: store.read_range(key, 0, len(data)) for key, data in blobs.items() if key >= "d6"} == \
        {key: data for key, data in blobs.items() if key >= "d6"}
