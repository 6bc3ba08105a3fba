"""The transport's retry rules against a fake HTTP layer and a fake clock (no socket, no sleeping):
which failures are repeated, the one deadline, resumed reads, silent endpoints, the observer."""

from __future__ import annotations

import errno
import random
import socket
import ssl
from typing import List, Optional

import pytest
from urllib3.exceptions import (ConnectTimeoutError, LocationParseError, NameResolutionError, NewConnectionError,
                                ProtocolError, ProxyError, ProxySchemeUnknown, ReadTimeoutError, SSLError)

from cosfs.wire.errors import CosError
from cosfs.wire.retry import RetryPolicy
from cosfs.wire.transport import Transport, TransportOptions
from tests.support.clock import FakeClock
from tests.support.fake_http import FakePools, FakeResponse, SeenRequest
from tests.support.fake_http import check_status as check
from tests.support.fake_http import plain_request as request

OPTIONS = TransportOptions(connect_timeout=5.0, read_timeout=15.0)
BODY = bytes(range(256)) * 4


class Recorder:
    """A ``RequestObserver`` that keeps every call."""

    def __init__(self) -> None:
        self.calls: List[tuple] = []

    def request_done(self, operation, key, attempts, error, request_id) -> None:
        self.calls.append((operation, key, attempts, error, request_id))


def make_transport(handler, clock: Optional[FakeClock] = None, retries: int = 10, deadline: float = 30.0,
                   observer=None):
    clock = clock or FakeClock(0.0)
    policy = RetryPolicy(retries=retries, deadline=deadline, clock=clock, sleep=clock.sleep, rng=random.Random(3))
    pools = FakePools(handler)
    return Transport(OPTIONS, policy, pools=pools, observer=observer), pools


def no_sign(req):
    return {}


def refused() -> NewConnectionError:
    """What urllib3 raises when nothing listens on the port."""
    return NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")


def timing_out(clock: FakeClock):
    """A handler step for a server that never answers: the attempt lasts its whole read timeout."""
    def step(seen: SeenRequest):
        clock.advance(seen.timeout.read_timeout)
        return ReadTimeoutError(None, "/k", "Read timed out.")
    return step


# --- what is repeated -----------------------------------------------------------------------


TRANSIENT = {
    "body cut short (IncompleteRead)": FakeResponse(200, BODY, cut_after=100),
    "answer stopped mid-body (read timeout)": FakeResponse(
        200, BODY, cut_after=100, cut_with=ReadTimeoutError(None, "/k", "Read timed out.")),
    "connection aborted (urllib3 ProtocolError)": ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
    "ConnectionResetError raised as it is": ConnectionResetError(104, "Connection reset by peer"),
    "connection refused": refused(),
    "no answer within the timeout": ReadTimeoutError(None, "/k", "Read timed out."),
    "connect timeout": ConnectTimeoutError(None, "Connection to cos.test timed out. (connect timeout=5.0)"),
    "name resolution failed (urllib3 NameResolutionError)": NameResolutionError(
        "cos.test", None, socket.gaierror(-3, "Temporary failure in name resolution")),
    "proxy refused (urllib3 ProxyError)": ProxyError("Unable to connect to proxy", refused()),
    "TLS connection cut (SSLError without a certificate error)": SSLError(ssl.SSLEOFError(8, "EOF in violation")),
    "a ValueError while the body arrives": FakeResponse(200, BODY, cut_after=10, cut_with=ValueError("bad chunk")),
    "HTTP 500": FakeResponse(500),
    "HTTP 503 SlowDown": FakeResponse(503, headers={"code": "SlowDown"}),
    "HTTP 429": FakeResponse(429),
}


@pytest.mark.parametrize("failure", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_every_transient_failure_is_repeated(failure):
    answers = [failure, FakeResponse(200, BODY)]
    transport, pools = make_transport(lambda seen: answers.pop(0))

    assert transport.send(request(), no_sign, check).content == BODY
    assert len(pools.requests) == 2


@pytest.mark.parametrize("failure", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_transient_failure_that_lasts_is_one_cos_error_with_an_errno(failure):
    transport, _ = make_transport(lambda seen: failure, retries=2)

    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)

    timed_out = isinstance(failure, (ReadTimeoutError, ConnectTimeoutError)) and not isinstance(
        failure, NewConnectionError) or isinstance(getattr(failure, "cut_with", None), ReadTimeoutError)
    assert raised.value.errno == (errno.ETIMEDOUT if timed_out else errno.EIO)
    assert raised.value.transient


NOT_TRANSIENT = {
    "HTTP 404": (FakeResponse(404), errno.ENOENT),
    "HTTP 403": (FakeResponse(403), errno.EACCES),
    "HTTP 400": (FakeResponse(400, headers={"code": "InvalidArgument"}), errno.EINVAL),
    "bad URL": (LocationParseError("http://:80/k"), errno.EINVAL),
    "proxy URL of an unknown scheme": (ProxySchemeUnknown("socks5"), errno.EINVAL),
    "header http.client refuses": (ValueError("Invalid header value b'a\\nb'"), errno.EINVAL),
    "untrusted certificate": (SSLError(ssl.SSLCertVerificationError(1, "self-signed")), errno.EIO),
}


@pytest.mark.parametrize("failure, expected", NOT_TRANSIENT.values(), ids=NOT_TRANSIENT.keys())
def test_failures_that_cannot_pass_are_not_repeated(failure, expected):
    transport, pools = make_transport(lambda seen: failure)

    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)

    assert raised.value.errno == expected
    assert len(pools.requests) == 1


def test_a_request_not_marked_idempotent_is_never_repeated():
    transport, pools = make_transport(lambda seen: FakeResponse(200, BODY, cut_after=10))

    with pytest.raises(CosError) as raised:
        transport.send(request(method="POST", idempotent=False), no_sign, check)

    assert raised.value.transient and not raised.value.repeated
    assert len(pools.requests) == 1


def test_an_error_met_by_a_repeat_says_an_earlier_attempt_may_have_acted():
    answers = [FakeResponse(200, b"{}", cut_after=1), FakeResponse(409)]
    transport, _ = make_transport(lambda seen: answers.pop(0))

    with pytest.raises(CosError) as raised:
        transport.send(request(method="POST"), no_sign, check)

    assert (raised.value.errno, raised.value.repeated, raised.value.attempts) == (errno.EEXIST, True, 2)


def test_an_error_met_by_the_first_attempt_is_not_a_repeat():
    transport, _ = make_transport(lambda seen: FakeResponse(409))

    with pytest.raises(CosError) as raised:
        transport.send(request(method="POST"), no_sign, check)

    assert (raised.value.repeated, raised.value.attempts) == (False, 1)


# --- the deadline ---------------------------------------------------------------------------


def test_no_attempt_runs_past_the_deadline_and_each_is_cut_to_what_is_left():
    clock = FakeClock(0.0)
    lefts = []

    def slow_503(seen: SeenRequest):
        """Answers after 4 s, or times out first when less is left."""
        lefts.append(30.0 - clock.now)
        assert seen.timeout.total == pytest.approx(30.0 - clock.now)
        assert seen.timeout.connect_timeout <= 30.0 - clock.now and seen.timeout.read_timeout <= 30.0 - clock.now
        if seen.timeout.total < 4.0:
            clock.advance(seen.timeout.total)
            return ProtocolError("Connection aborted.", TimeoutError("timed out"))
        clock.advance(4.0)
        return FakeResponse(503)

    transport, pools = make_transport(slow_503, clock, retries=100, deadline=30.0)

    with pytest.raises(CosError):
        transport.send(request(), no_sign, check)

    assert clock.now <= 30.0
    assert 4 <= len(pools.requests) <= 8
    assert lefts[-1] < OPTIONS.read_timeout, "late attempts get less than the configured timeout"


def test_retries_stop_after_the_configured_number():
    transport, pools = make_transport(lambda seen: FakeResponse(503), retries=3)

    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)

    assert len(pools.requests) == 4 and raised.value.attempts == 4


def test_the_defaults_ride_out_a_server_failing_28_percent_of_attempts_within_the_deadline():
    """20% 503 plus 10% resets of the rest fail an attempt with p = 0.28; the default repeats
    must make exhausting them rare over many thousands of requests, and all their waits, even
    the longest, must fit in the default deadline with time to spare for the attempts."""
    policy = RetryPolicy()
    longest_waits = sum(min(policy.max_delay, policy.base_delay * 2 ** n) for n in range(policy.retries))

    assert 0.28 ** (policy.retries + 1) < 1e-6
    assert longest_waits + (policy.retries + 1) * 0.5 < policy.deadline


# --- resumed reads --------------------------------------------------------------------------


def ranged(body: bytes, first: int, size: int, etag: str = '"v1"', cut_after: Optional[int] = None) -> FakeResponse:
    headers = {"Content-Range": f"bytes {first}-{first + len(body) - 1}/{size}", "ETag": etag}
    return FakeResponse(206, body, headers, cut_after=cut_after)


def serve_range(obj: bytes, cuts: List[Optional[int]], etags: Optional[List[str]] = None):
    """A server holding ``obj`` that cuts its successive answers after ``cuts`` bytes."""
    def handler(seen: SeenRequest):
        first, last = (int(n) for n in seen.headers["Range"].split("=")[1].split("-"))
        etag = etags.pop(0) if etags else '"v1"'
        if "If-Match" in seen.headers and seen.headers["If-Match"] != etag:
            return FakeResponse(412)
        return ranged(obj[first:last + 1], first, len(obj), etag, cuts.pop(0) if cuts else None)
    return handler


def test_a_read_cut_short_resumes_at_the_byte_where_it_stopped():
    transport, pools = make_transport(serve_range(BODY, [100, 50]))

    response = transport.send(request(byte_range=(10, 809)), no_sign, check)

    assert response.content == BODY[10:810]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=10-809", "bytes=110-809", "bytes=160-809"]
    assert [seen.headers.get("If-Match") for seen in pools.requests] == [None, '"v1"', '"v1"']
    assert response.headers["Content-Range"] == f"bytes 10-809/{len(BODY)}"


def test_a_read_whose_object_changed_meanwhile_starts_again_instead_of_splicing():
    new = bytes(reversed(BODY))
    versions = {'"v1"': BODY, '"v2"': new}
    etags = ['"v1"', '"v2"', '"v2"']

    def handler(seen: SeenRequest):
        etag = etags.pop(0)
        if seen.headers.get("If-Match", etag) != etag:
            return FakeResponse(412)
        return ranged(versions[etag][0:100], 0, len(BODY), etag, cut_after=40 if etag == '"v1"' else None)

    transport, pools = make_transport(handler)

    assert transport.send(request(byte_range=(0, 99)), no_sign, check).content == new[0:100]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=0-99", "bytes=40-99", "bytes=0-99"]


def test_a_resumed_read_keeps_what_arrived_through_a_503():
    answers = [ranged(BODY[:100], 0, len(BODY), cut_after=60), FakeResponse(503), ranged(BODY[60:100], 60, len(BODY))]
    transport, pools = make_transport(lambda seen: answers.pop(0))

    assert transport.send(request(byte_range=(0, 99)), no_sign, check).content == BODY[:100]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=0-99", "bytes=60-99", "bytes=60-99"]


def test_a_resumed_read_answered_from_another_byte_or_past_the_end_is_read_again_whole():
    answers = [ranged(BODY[:100], 0, len(BODY), cut_after=60), ranged(BODY[50:100], 50, len(BODY)),
               ranged(BODY[:100], 0, len(BODY), cut_after=60), FakeResponse(416),
               ranged(BODY[:100], 0, len(BODY))]
    transport, pools = make_transport(lambda seen: answers.pop(0))

    assert transport.send(request(byte_range=(0, 99)), no_sign, check).content == BODY[:100]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=0-99", "bytes=60-99"] * 2 + ["bytes=0-99"]


def test_a_cut_answer_that_was_not_the_range_asked_for_is_asked_for_whole_again():
    answers = [FakeResponse(200, BODY, cut_after=30), FakeResponse(200, BODY)]
    transport, pools = make_transport(lambda seen: answers.pop(0))

    assert transport.send(request(byte_range=(0, 99)), no_sign, check).content == BODY
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=0-99", "bytes=0-99"]


def test_a_read_that_cannot_finish_fails_and_never_returns_short_data():
    transport, _ = make_transport(serve_range(BODY, [10] * 20), retries=3)

    with pytest.raises(CosError) as raised:
        transport.send(request(byte_range=(0, 999)), no_sign, check)

    assert raised.value.errno == errno.EIO and raised.value.attempts == 4


# --- silent endpoints -----------------------------------------------------------------------


def test_a_silent_server_costs_the_first_request_its_read_timeout_plus_one_short_attempt():
    clock = FakeClock(0.0)
    transport, pools = make_transport(timing_out(clock), clock)

    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)

    assert raised.value.errno == errno.ETIMEDOUT
    assert [seen.timeout.read_timeout for seen in pools.requests] == [15.0, 5.0]
    assert pools.requests[1].timeout.total == 5.0, "the short attempt gets connect_timeout for everything"
    assert clock.now <= 15.0 + 5.0 + 0.1


def test_while_silent_one_request_asks_with_short_timeouts_and_the_others_fail_at_once():
    clock = FakeClock(0.0)
    transport, pools = make_transport(timing_out(clock), clock)
    with pytest.raises(CosError):
        transport.send(request(), no_sign, check)
    sent = len(pools.requests)

    with pytest.raises(CosError) as refused_at_once:
        transport.send(request(key="other"), no_sign, check)
    assert len(pools.requests) == sent and refused_at_once.value.errno == errno.ETIMEDOUT

    clock.advance(OPTIONS.connect_timeout)
    started = clock.now
    with pytest.raises(CosError) as probed:
        transport.send(request(key="later"), no_sign, check)
    assert len(pools.requests) == sent + 1, "one short attempt, not repeated"
    assert pools.requests[-1].timeout.read_timeout == OPTIONS.connect_timeout
    assert clock.now - started <= OPTIONS.connect_timeout and probed.value.errno == errno.ETIMEDOUT


def test_while_one_request_asks_a_silent_server_the_others_are_not_sent():
    clock = FakeClock(0.0)
    silent = timing_out(clock)
    during_probe = []

    def handler(seen: SeenRequest):
        if seen.url.endswith("/probe"):
            with pytest.raises(CosError) as skipped:
                transport.send(request(path="/meanwhile"), no_sign, check)
            during_probe.append(skipped.value.errno)
        return silent(seen)

    transport, pools = make_transport(handler, clock)
    with pytest.raises(CosError):
        transport.send(request(), no_sign, check)
    clock.advance(OPTIONS.connect_timeout)

    with pytest.raises(CosError):
        transport.send(request(path="/probe"), no_sign, check)

    assert during_probe == [errno.ETIMEDOUT]
    assert not [seen for seen in pools.requests if seen.url.endswith("/meanwhile")]


def test_the_first_answer_from_a_silent_server_makes_it_normal_again():
    clock = FakeClock(0.0)
    silent = timing_out(clock)
    answering = [False]
    transport, pools = make_transport(lambda seen: FakeResponse(200, b"ok") if answering[0] else silent(seen),
                                        clock)
    with pytest.raises(CosError):
        transport.send(request(), no_sign, check)

    answering[0] = True
    clock.advance(OPTIONS.connect_timeout)
    assert transport.send(request(), no_sign, check).content == b"ok"
    assert transport.send(request(), no_sign, check).content == b"ok"

    assert [seen.timeout.read_timeout for seen in pools.requests[-2:]] == [5.0, 15.0]


def test_a_refused_connection_marks_the_endpoint_silent_too_and_later_requests_fail_fast():
    clock = FakeClock(0.0)
    transport, pools = make_transport(lambda seen: refused(), clock)

    with pytest.raises(CosError) as first:
        transport.send(request(), no_sign, check)
    with pytest.raises(CosError) as second:
        transport.send(request(), no_sign, check)

    assert len(pools.requests) == 2, "the first attempt and one probe; the second request is not sent"
    assert first.value.errno == second.value.errno == errno.EIO
    assert "Connection refused" in str(first.value) and "Connection refused" in str(second.value)


# --- the observer ---------------------------------------------------------------------------


def test_the_observer_hears_once_per_request_with_its_attempts_error_and_request_id():
    answers = [FakeResponse(503), FakeResponse(200, b"ok", {"x-cos-request-id": "r-ok"}),
               FakeResponse(404, headers={"x-cos-request-id": "r-404"})]
    observer = Recorder()
    transport, _ = make_transport(lambda seen: answers.pop(0), observer=observer)

    transport.send(request(key="a"), no_sign, check)
    with pytest.raises(CosError) as missing:
        transport.send(request(key="b"), no_sign, check)

    assert observer.calls == [("read", "a", 2, None, "r-ok"), ("read", "b", 1, missing.value, "r-404")]


def test_a_failing_observer_does_not_fail_the_request():
    class Broken:
        def request_done(self, *args):
            raise RuntimeError("bug in a counter")

    transport, _ = make_transport(lambda seen: FakeResponse(200, b"ok"), observer=Broken())

    assert transport.send(request(), no_sign, check).content == b"ok"


def test_no_observer_by_default():
    assert Transport().observer is None
