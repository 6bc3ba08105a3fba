"""RetryPolicy and the transport's retry decisions, with time injected (no sleeping)."""

from __future__ import annotations

import errno
import random

import pytest
from urllib3.exceptions import ProtocolError

from cosfs.wire.errors import CosError
from cosfs.wire.retry import RetryPolicy
from tests.support.clock import FakeClock
from tests.support.fake_http import FakeResponse, fake_transport
from tests.support.fake_http import check_status as check
from tests.support.fake_http import plain_request as request


def policy(clock, **kwargs):
    return RetryPolicy(clock=clock, sleep=clock.sleep, rng=random.Random(7), **kwargs)


def repeats(run) -> int:
    """How many repeats ``run`` allows in a row (each failed at once)."""
    while run.another():
        pass
    return run.repeats


def test_backoff_grows_exponentially_and_is_capped():
    clock = FakeClock(0.0)
    retry = policy(clock, retries=8, base_delay=0.5, max_delay=4.0, deadline=1000)
    assert repeats(retry.start()) == 8
    assert all(0.25 <= s <= 0.5 for s in clock.sleeps[:1])
    assert all(s <= 4.0 for s in clock.sleeps)
    assert clock.sleeps[-1] >= 2.0, "late waits reach at least half the cap"
    assert clock.sleeps[2] > clock.sleeps[0]


def test_repeats_stop_before_a_wait_would_end_past_the_deadline():
    clock = FakeClock(0.0)
    run = policy(clock, retries=100, base_delay=1.0, max_delay=8.0, deadline=20.0).start()
    assert repeats(run) < 100
    assert clock.now <= 20.0, "no wait ends past the deadline"
    assert run.left() == pytest.approx(20.0 - clock.now)


def test_zero_retries_means_one_attempt():
    clock = FakeClock(0.0)
    assert repeats(policy(clock, retries=0).start()) == 0
    assert clock.sleeps == []


def no_sign(req):
    return {}


def test_transient_failure_then_success():
    answers = [FakeResponse(503), FakeResponse(500), FakeResponse(200, b"ok")]
    transport, pools = fake_transport(lambda seen: answers.pop(0))
    assert transport.send(request(), no_sign, check).content == b"ok"
    assert len(pools.requests) == 3


def test_4xx_is_not_retried():
    transport, pools = fake_transport(lambda seen: FakeResponse(404))
    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)
    assert raised.value.errno == errno.ENOENT
    assert len(pools.requests) == 1


def test_non_idempotent_request_is_never_repeated_blindly():
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    transport, pools = fake_transport(lambda seen: reset)
    with pytest.raises(CosError) as raised:
        transport.send(request(method="POST", idempotent=False), no_sign, check)
    assert raised.value.transient
    assert len(pools.requests) == 1


def test_refused_signature_is_signed_again_once_even_when_not_idempotent():
    answers = [FakeResponse(400, headers={"code": "-77"}), FakeResponse(200, b"done")]
    signatures = []

    def sign(req):
        signatures.append(len(signatures))
        return {"Authorization": f"sig{len(signatures)}"}

    transport, pools = fake_transport(lambda seen: answers.pop(0))
    assert transport.send(request(method="POST", idempotent=False), sign, check).content == b"done"
    assert [r.headers["Authorization"] for r in pools.requests] == ["sig1", "sig2"]


def test_throttling_exhausts_retries_then_reports_eio():
    transport, pools = fake_transport(lambda seen: FakeResponse(503, headers={"code": "SlowDown"}))
    with pytest.raises(CosError) as raised:
        transport.send(request(), no_sign, check)
    assert raised.value.errno == errno.EIO
    assert len(pools.requests) == 4
