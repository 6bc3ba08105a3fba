"""The q-sign SignKey is computed once per KeyTime window and never outlives its KeyTime.

A cold ``ls -l`` signs one HEAD per file; the SignKey depends only on the secret and the
KeyTime, so requests that share a (rounded) KeyTime share it. These tests pin down that the
reuse never changes what is signed: every signature still verifies, lives at least as long as
asked, and a new window, a new secret or a clock past the end always gets a fresh key.
All of them run in well under a second.
"""

from __future__ import annotations

import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor

import pytest

from cosfs.store.endpoints import Bucket, xml_endpoint
from cosfs.store.xml_store import XmlStore
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.signing import qsign
from cosfs.wire.transport import Transport

BUCKET = Bucket("examplebucket", "1250000000")
SECRET_ID, SECRET_KEY = "AKIDEXAMPLE", "SECRETKEY"
VALIDITY = 900
NOW = 1_700_000_000


def uncached_sign_key(secret_key: str, sign_time: str) -> str:
    return hmac.new(secret_key.encode(), sign_time.encode(), hashlib.sha1).hexdigest()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, secret_key: str = SECRET_KEY) -> XmlStore:
    return XmlStore(BUCKET, xml_endpoint(BUCKET, "ap-guangzhou", None),
                    StaticProvider(Credentials(SECRET_ID, secret_key), "test"), Transport(),
                    region="ap-guangzhou", sign_validity=VALIDITY, clock=clock)


def signed_fields(store: XmlStore, key: str = "dir/file.txt") -> dict:
    request = store._request("HEAD", key, "stat")
    return qsign.parse_authorization(store._sign(request)["Authorization"])


def verify_at(store: XmlStore, fields: dict, now: int, key: str = "dir/file.txt", secret_key: str = SECRET_KEY) -> None:
    qsign.verify(fields, secret_key, "HEAD", "/" + key, [], {"host": store.endpoint.hostname}, now)


@pytest.fixture(autouse=True)
def empty_cache():
    qsign.sign_key.cache_clear()
    yield
    qsign.sign_key.cache_clear()


@pytest.mark.parametrize("offset", [0, 1, 59, 60, 61, 119, 3599])
def test_key_time_covers_the_asked_validity_and_at_most_one_window_more(offset):
    now = NOW + offset
    start, end = qsign.key_time(now, VALIDITY)
    assert start <= now - qsign.CLOCK_SKEW
    assert now + VALIDITY <= end <= now + VALIDITY + qsign.KEY_TIME_WINDOW


def test_key_time_is_shared_within_a_window_and_changes_after_it():
    window_start = NOW - NOW % qsign.KEY_TIME_WINDOW
    inside = {qsign.key_time(window_start + s, VALIDITY) for s in range(qsign.KEY_TIME_WINDOW)}
    assert len(inside) == 1
    assert qsign.key_time(window_start + qsign.KEY_TIME_WINDOW, VALIDITY) not in inside


def test_requests_in_one_window_share_one_sign_key():
    clock = Clock(NOW - NOW % qsign.KEY_TIME_WINDOW)
    store = make_store(clock)
    first = signed_fields(store)
    clock.now += qsign.KEY_TIME_WINDOW - 1
    second = signed_fields(store, "other/key")
    assert first["q-key-time"] == second["q-key-time"]
    info = qsign.sign_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    verify_at(store, first, int(clock.now))
    verify_at(store, second, int(clock.now), "other/key")


def test_a_new_window_gets_a_new_key_that_verifies():
    clock = Clock(NOW)
    store = make_store(clock)
    first = signed_fields(store)
    clock.now += qsign.KEY_TIME_WINDOW
    second = signed_fields(store)
    assert first["q-key-time"] != second["q-key-time"]
    assert qsign.sign_key.cache_info().misses == 2
    verify_at(store, second, int(clock.now))


def test_no_signature_is_made_with_a_key_time_that_has_expired():
    """However far the clock jumps, the signature made then is valid then and for the whole validity."""
    clock = Clock(NOW)
    store = make_store(clock)
    first = signed_fields(store)
    end = int(first["q-key-time"].split(";")[1])
    for now in (NOW + 1, end - VALIDITY, end, end + 1, end + 10 * VALIDITY):
        clock.now = now
        fields = signed_fields(store)
        start, stop = (int(x) for x in fields["q-key-time"].split(";"))
        assert start <= now - qsign.CLOCK_SKEW and stop >= now + VALIDITY
        verify_at(store, fields, now)
        verify_at(store, fields, now + VALIDITY)
        with pytest.raises(qsign.VerifyError):
            verify_at(store, fields, stop + 1)


def test_a_new_secret_never_gets_the_old_key():
    clock = Clock(NOW)
    old, new = make_store(clock), make_store(clock, "ROTATEDKEY")
    signed_fields(old)
    fields = signed_fields(new)
    assert qsign.sign_key.cache_info().misses == 2
    verify_at(new, fields, NOW, secret_key="ROTATEDKEY")
    with pytest.raises(qsign.VerifyError):
        verify_at(new, fields, NOW, secret_key=SECRET_KEY)


def test_sign_key_is_right_from_many_threads_across_windows():
    """Threads signing at once, over more KeyTimes than the cache holds, never see a wrong key."""
    times = [f"{start};{start + VALIDITY}" for start in range(NOW, NOW + 40 * 60, 60)]
    secrets = [SECRET_KEY, "ROTATEDKEY"]
    cases = [(secret, sign_time) for _ in range(20) for secret in secrets for sign_time in times]

    def check(case):
        return qsign.sign_key(*case) == uncached_sign_key(*case)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(check, cases))
    assert qsign.sign_key.cache_info().currsize <= 8
