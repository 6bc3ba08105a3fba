"""RequestStats: per-operation counts, retries, the bounded error list, and the transport's hook."""

from __future__ import annotations

import errno
import threading

import pytest
from urllib3.exceptions import ProtocolError

from cosfs.wire.errors import CosError
from cosfs.wire.request_stats import OperationCounts, RequestStats
from cosfs.wire.retry import RetryPolicy
from cosfs.wire.transport import Transport
from tests.support.clock import FakeClock
from tests.support.fake_http import FakePools, FakeResponse, plain_request
from tests.support.fake_http import check_status as check


def slow_down(key: str = "k", request_id: str = "id-1") -> CosError:
    return CosError("Please reduce your request rate.", status=503, code="SlowDown", operation="put", key=key,
                    request_id=request_id)


def test_counts_retries_and_errors_per_operation():
    stats = RequestStats()

    stats.request_done("put", "a", 1, None, "id-a")
    stats.request_done("put", "b", 3, None, "id-b")
    stats.request_done("put", "c", 6, slow_down("c"), "id-c")
    stats.request_done("list", "", 1, None, "id-l")

    assert stats.counts() == {
        "list": OperationCounts(count=1),
        "put": OperationCounts(count=3, errors=1, retries=2 + 5),
    }


def test_a_not_found_answer_is_counted_apart_and_never_listed_as_an_error():
    """A HEAD of a missing path is how cosfs asks whether it exists, not a failure."""
    stats = RequestStats()

    stats.request_done("stat", "missing", 1, CosError("no such key", status=404, code="NoSuchKey"), "id")

    assert stats.counts() == {"stat": OperationCounts(count=1, not_found=1)}
    assert stats.recent_errors() == []


def test_an_error_records_what_an_operator_needs():
    clock = FakeClock(1_700_000_123.0)
    stats = RequestStats(clock=clock)

    stats.request_done("put", "dir/f", 6, slow_down("dir/f", "NjU1abc"), "NjU1abc")
    stats.request_done("stat", "x", 2, CosError("cannot reach", code="ConnectionError", key="x"), "")

    first, second = stats.recent_errors()
    assert (first.time, first.operation, first.key, first.code, first.errno, first.request_id) == (
        1_700_000_123.0, "put", "dir/f", "SlowDown", "EIO", "NjU1abc")
    assert first.message == "Please reduce your request rate."
    assert (second.code, second.errno, second.request_id) == ("ConnectionError", "EIO", "")


def test_the_error_list_keeps_only_the_last_twenty():
    stats = RequestStats()

    for number in range(25):
        stats.request_done("put", f"k{number}", 1, slow_down(f"k{number}"), f"id-{number}")

    kept = stats.recent_errors()
    assert [failure.key for failure in kept] == [f"k{number}" for number in range(5, 25)]
    assert stats.counts()["put"].errors == 25


def test_counts_are_exact_under_concurrent_requests():
    stats = RequestStats()
    threads, calls = 8, 2_000

    def hammer(index: int) -> None:
        for number in range(calls):
            error = slow_down() if number % 10 == 0 else None
            stats.request_done(f"op{index % 2}", "k", 2, error, "")

    workers = [threading.Thread(target=hammer, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    counts = stats.counts()
    assert sum(c.count for c in counts.values()) == threads * calls
    assert sum(c.retries for c in counts.values()) == threads * calls
    assert sum(c.errors for c in counts.values()) == threads * calls // 10
    assert len(stats.recent_errors()) == 20


# --- the transport's observer hook ----------------------------------------------------------

def observed_transport(answers):
    stats = RequestStats()
    transport = Transport(retry=RetryPolicy(retries=3, sleep=lambda seconds: None), observer=stats,
                          pools=FakePools(lambda seen: answers.pop(0)))
    return transport, stats


def test_transport_reports_a_request_repeated_then_stored_once_with_its_retries():
    transport, stats = observed_transport([FakeResponse(503), FakeResponse(500),
                                           FakeResponse(200, headers={"x-cos-request-id": "ok-id"})])

    transport.send(plain_request(method="PUT", operation="put"), lambda req: {}, check)

    assert stats.counts() == {"put": OperationCounts(count=1, retries=2)}


def test_transport_reports_a_final_failure_with_all_attempts_and_the_request_id():
    transport, stats = observed_transport([FakeResponse(503, headers={"x-cos-request-id": f"id-{n}"})
                                           for n in range(4)])

    with pytest.raises(CosError):
        transport.send(plain_request(method="PUT", operation="put"), lambda req: {}, check)

    assert stats.counts() == {"put": OperationCounts(count=1, errors=1, retries=3)}
    assert stats.recent_errors()[0].request_id == "id-3"


def test_transport_reports_a_failure_that_is_not_repeated():
    transport, stats = observed_transport([ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))])

    with pytest.raises(CosError) as raised:
        transport.send(plain_request(method="PUT", idempotent=False, operation="move"), lambda req: {}, check)

    assert raised.value.errno == errno.EIO
    assert stats.counts() == {"move": OperationCounts(count=1, errors=1)}
    assert stats.recent_errors()[0].code == "ConnectionError"
