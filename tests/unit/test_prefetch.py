"""The attribute prefetch of a walked directory, over the in-memory store: what it costs.

SEMANTICS.md: "A single ``stat`` after a listing costs one request", a walk costs "at most
one HEAD per entry", and a few ``stat``s in a huge directory cost a few requests, not one
per entry.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import connection_pool_size, fuse_threads, io_threads, options_from_string
from cosfs.filesystem.prefetch import MAX_WINDOW
from tests.support.clock import FakeClock
from tests.support.fake_store import FAKE_LIMITS, FakeStore
from tests.support.mounted import wait_until


class RecordingStore(FakeStore):
    """Counts ``stat`` per key and per calling thread; a ``stat`` of ``gated`` waits for ``gate``."""

    def __init__(self, gated: str = "") -> None:
        super().__init__(limits=dataclasses.replace(FAKE_LIMITS, max_list_keys=100_000))  # one page: a fast setup
        self.gated = gated
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.stats_of: Counter = Counter()
        self.pool_stats = 0

    def stat(self, key):
        with self._lock:
            self.stats_of[key] += 1
            self.pool_stats += threading.current_thread().name.startswith("cosfs-head")
        if key == self.gated:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        return super().stat(key)


def filesystem(store, tmp_path):
    clock = FakeClock(1_700_000_000.0)
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0")
    return build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)


def listed(store, tmp_path, count):
    """A filesystem whose directory ``/d`` of ``count`` files has just been listed."""
    for number in range(count):
        store.put_raw(f"d/f{number:06d}", b"x")
    fs = filesystem(store, tmp_path)
    assert len(fs.readdir("/d")) == count
    store.calls.clear()  # what finding /d itself cost is not what is measured
    store.stats_of.clear()
    return fs


def settled(fs, store) -> int:
    """The ``stat`` calls sent once no fetch is in flight any more."""
    wait_until(lambda: fs.lookup.fetches.pending() == 0, what="the prefetch to finish")
    return store.calls["stat"]


def test_the_first_miss_after_a_listing_costs_one_stat(tmp_path):
    """``ls`` then ``cat one-file`` costs one HEAD, not one per entry."""
    store = RecordingStore()
    fs = listed(store, tmp_path, 30)

    assert fs.getattr("/d/f000007").size == 1

    assert settled(fs, store) == 1
    assert fs.getattr("/d/f000007").size == 1 and store.calls["stat"] == 1, "the answer is cached"


def test_two_stats_in_a_listed_directory_of_100000_entries_cost_a_handful(tmp_path):
    """Issue 10: ``stat a b`` after ``ls`` of 100,000 objects took 117 s and 100,000 HEADs."""
    store = RecordingStore()
    fs = listed(store, tmp_path, 100_000)

    started = time.monotonic()
    fs.getattr("/d/f012345")
    fs.getattr("/d/f067890")
    elapsed = time.monotonic() - started

    assert settled(fs, store) < 100
    assert elapsed < 0.5, f"two stats took {elapsed:.2f} s"


def test_a_walk_in_listing_order_costs_one_stat_per_entry_fetched_ahead_in_windows(tmp_path):
    """A walk costs "at most one HEAD per entry, fetched in parallel": all but the first two
    come from the metadata pool ahead of the walker, never more than two batches ahead."""
    store = RecordingStore()
    count = 2_000
    fs = listed(store, tmp_path, count)

    for number in range(count):
        fs.getattr(f"/d/f{number:06d}")
        assert store.calls["stat"] <= number + 1 + 2 * MAX_WINDOW, "the window runs far ahead of the walker"

    assert settled(fs, store) == count
    assert max(store.stats_of.values()) == 1
    assert store.pool_stats >= count - 2, f"only {store.pool_stats} stats were fetched ahead"


def test_the_prefetch_stops_when_the_walker_stops(tmp_path):
    store = RecordingStore()
    fs = listed(store, tmp_path, 2_000)

    for number in range(100):
        fs.getattr(f"/d/f{number:06d}")

    assert 100 <= settled(fs, store) <= 100 + 2 * MAX_WINDOW


@pytest.mark.parametrize("first", ["f000000", "f000005"], ids=["in-a-window", "first-miss"])
def test_a_getattr_of_an_entry_whose_fetch_is_in_flight_waits_for_it_and_sends_nothing(tmp_path, first):
    """One shared fetch per path: the second ``stat`` waits for the HEAD in flight."""
    store = RecordingStore(gated="d/f000005")
    fs = listed(store, tmp_path, 30)
    answers = {}
    walker = threading.Thread(target=lambda: answers.setdefault("walker", fs.getattr("/d/f000004")))
    if first == "f000000":
        fs.getattr("/d/f000000")  # the first miss; /d/f000004's then opens a window over f000005
    else:
        walker = threading.Thread(target=lambda: answers.setdefault("walker", fs.getattr("/d/f000005")))
    walker.start()
    assert store.entered.wait(10), "the HEAD of f000005 never started"

    second = threading.Thread(target=lambda: answers.setdefault("second", fs.getattr("/d/f000005")))
    second.start()
    second.join(0.3)
    assert second.is_alive(), "the second stat did not wait for the HEAD in flight"
    store.gate.set()
    second.join(10)
    walker.join(10)

    assert answers["second"].size == 1
    assert store.stats_of["d/f000005"] == 1


def test_heads_have_their_own_pool_and_the_connection_pool_holds_both():
    """README: ``parallel_heads`` HEADs run "in a pool of their own so uploads and walks never
    wait for each other; the connection pool holds both"."""
    options = options_from_string("parallel_count=8,parallel_heads=20")
    assert (io_threads(options), options.parallel_heads) == (16, 20)
    assert connection_pool_size(options) == fuse_threads(options) + 16 + 20 + options.parallel_reads
    assert options_from_string("").parallel_heads == 32
    with pytest.raises(Exception, match="parallel_heads"):
        options_from_string("parallel_heads=0")


def test_a_walk_that_jumps_back_is_fetched_ahead_from_where_it_now_is(tmp_path):
    """After a jump, the window follows the walker: no entry is skipped or fetched twice."""
    store = RecordingStore()
    fs = listed(store, tmp_path, 2_000)
    for number in list(range(1_000, 1_100)) + list(range(0, 100)):
        fs.getattr(f"/d/f{number:06d}")

    assert settled(fs, store) <= 200 + 2 * MAX_WINDOW, "batches were sent from where the walker left"
    assert max(store.stats_of.values()) == 1
    assert store.pool_stats >= 200 - 4, f"only {store.pool_stats} stats were fetched ahead"
