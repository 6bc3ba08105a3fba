"""Reading objects through the block cache: exact bytes, few requests, bounded memory."""

from __future__ import annotations

import errno
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cosfs.data.read_budget import ReadBudget
from cosfs.data.reader import ObjectReader
from cosfs.wire.errors import CosError, CosfsError
from tests.support.fake_store import FakeStore

MiB = 1024 * 1024
KEY = "data/blob.bin"


class ManualPool:
    """An executor whose tasks run when the test says so: what is in flight is visible."""

    def __init__(self) -> None:
        self.tasks = []
        self.largest_batch = 0

    def submit(self, fn, *args):
        self.tasks.append((fn, args))
        self.largest_batch = max(self.largest_batch, len(self.tasks))

    def run_all(self) -> None:
        while self.tasks:
            fn, args = self.tasks.pop(0)
            fn(*args)


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(42).randbytes(5 * MiB + 12345)


@pytest.fixture
def store(data):
    store = FakeStore()
    store.put_raw(KEY, data)
    return store


@pytest.fixture
def requests_made(store, monkeypatch):
    """Every ``(start, length)`` the reader asked the store for."""
    made = []
    real = store.read_range

    def read_range(key, start, length, etag=None):
        made.append((start, length))
        return real(key, start, length, etag)

    monkeypatch.setattr(store, "read_range", read_range)
    return made


@pytest.mark.parametrize("block_size", [MiB, 64 * 1024, 1000])
def test_every_read_returns_exactly_the_objects_bytes(store, data, block_size):
    reader = ObjectReader(store, KEY, len(data), block_size=block_size, max_cached_blocks=4,
                          readahead_max=4 * block_size)
    size = len(data)
    offsets = [0, 1, block_size - 1, block_size, block_size + 1, 3 * block_size - 7,
               size - block_size - 1, size - 1, size, size + 1, size + 10 * MiB]
    lengths = [0, 1, 7, 4096, block_size - 1, block_size, block_size + 1, 3 * block_size + 5, size]
    rng = random.Random(7)
    offsets += [rng.randrange(size) for _ in range(10)]
    for offset in offsets:
        for length in lengths:
            assert reader.read(offset, length) == data[offset:offset + length], (offset, length)


def test_reads_at_or_past_the_end_cost_nothing(store, data):
    reader = ObjectReader(store, KEY, len(data))
    assert reader.read(len(data), 10) == b"" and reader.read(len(data) + 5, 10) == b""
    assert reader.read(10, 0) == b""
    assert store.calls["read_range"] == 0


def test_empty_object(store):
    store.put_raw("empty", b"")
    assert ObjectReader(store, "empty", 0).read(0, 4096) == b""
    assert store.calls["read_range"] == 0


def test_negative_offset_is_einval(store, data):
    with pytest.raises(CosfsError) as caught:
        ObjectReader(store, KEY, len(data)).read(-1, 10)
    assert caught.value.errno == errno.EINVAL


def test_sequential_scan_needs_far_fewer_requests_than_blocks(store, data, requests_made):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block, max_cached_blocks=16,
                          readahead_max=16 * block)
    pieces, offset = [], 0
    while True:
        piece = reader.read(offset, 16 * 1024)
        if not piece:
            break
        pieces.append(piece)
        offset += len(piece)
    blocks = -(-len(data) // block)
    assert b"".join(pieces) == data
    assert store.calls["read_range"] < blocks / 5, (store.calls["read_range"], blocks)
    fetched = sum(length for _, length in requests_made)
    assert fetched == len(data)  # every byte fetched exactly once


def test_readahead_window_doubles_up_to_its_maximum(store, data):
    block = 64 * 1024
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, readahead_max=16 * block,
                          fetch_size=4 * block)
    windows = []
    for offset in range(0, 60 * block, 32 * 1024):
        reader.read(offset, 32 * 1024)
        pool.run_all()
        if not windows or windows[-1] != reader.window // block:
            windows.append(reader.window // block)
    assert windows == [2, 4, 8, 16]
    assert pool.largest_batch >= 2  # half the window (8 blocks and more) topped up as fetches of 4 blocks


def test_random_reads_fetch_only_the_blocks_they_need(store, data, requests_made):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block)
    rng = random.Random(3)
    offsets = rng.sample(range(0, len(data) - block, 3 * block), 20)
    for offset in offsets:
        assert reader.read(offset + 100, 4096) == data[offset + 100:offset + 4196]
    assert len(requests_made) == 20
    assert all(start % block == 0 and length == block for start, length in requests_made)


def test_a_jump_resets_the_readahead_window(store, data, requests_made):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block, max_cached_blocks=64,
                          readahead_max=8 * block)
    for offset in range(0, 20 * block, block):
        reader.read(offset, block)
    requests_made.clear()
    reader.read(60 * block, 10)
    reader.read(60 * block + 10, 10)  # sequential, but cached: no request, window stays 0
    assert requests_made == [(60 * block, block)]
    reader.read(60 * block + 20, block)  # sequential and missing: a window of one block
    assert requests_made[-1] == (61 * block, 2 * block)


def test_contiguous_missing_blocks_are_one_request(store, data, requests_made):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block)
    reader.read(2 * block, 10)
    requests_made.clear()
    assert reader.read(block // 2, 4 * block) == data[block // 2:block // 2 + 4 * block]
    assert requests_made == [(0, 2 * block), (3 * block, 2 * block)]


def test_cached_blocks_never_exceed_the_bound(store, data, requests_made):
    block = 64 * 1024
    budget = ReadBudget(6 * block + 16 * block)
    reader = ObjectReader(store, KEY, len(data), budget=budget, block_size=block, max_cached_blocks=6,
                          readahead_max=16 * block, fetch_size=4 * block)
    rng = random.Random(5)
    for _ in range(200):
        offset = rng.randrange(len(data))
        assert reader.read(offset, 3000) == data[offset:offset + 3000]
        assert reader.cached_blocks <= 6
    for offset in range(0, len(data), 8192):
        reader.read(offset, 8192)
        assert reader.cached_blocks <= 6
    assert max(length for _, length in requests_made) <= 4 * block  # one fetch is at most fetch_size
    assert budget.peak <= budget.limit
    reader.close()
    assert budget.used == 0


def test_repeated_reads_are_served_from_the_cache(store, data):
    reader = ObjectReader(store, KEY, len(data), block_size=64 * 1024)
    for _ in range(5):
        assert reader.read(1000, 500) == data[1000:1500]
    assert store.calls["read_range"] == 1


def test_invalidate_drops_the_cache(store, data):
    reader = ObjectReader(store, KEY, len(data), block_size=64 * 1024)
    reader.read(0, 10)
    store.put_raw(KEY, b"new content")
    assert reader.read(0, 10) == data[:10]
    reader.invalidate(size=11)
    assert reader.cached_blocks == 0
    assert reader.read(0, 100) == b"new content" and reader.size == 11


def test_object_that_shrank_returns_what_there_is_without_looping(store, data):
    reader = ObjectReader(store, KEY, len(data), block_size=64 * 1024)
    store.put_raw(KEY, data[:100_000])
    assert reader.read(90_000, 50_000) == data[90_000:100_000]
    assert reader.read(200_000, 10) == b""
    assert reader.size == 100_000
    assert store.calls["read_range"] == 1


def test_a_failed_fetch_raises_and_the_next_read_tries_again(store, data):
    reader = ObjectReader(store, KEY, len(data), block_size=64 * 1024)
    store.fail("read_range", CosError("denied", status=403, code="AccessDenied"))
    with pytest.raises(CosError) as caught:
        reader.read(0, 10)
    assert caught.value.errno == errno.EACCES
    assert reader.read(0, 10) == data[:10]


def test_concurrent_reads_return_correct_bytes(store, data):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block, max_cached_blocks=8,
                          readahead_max=4 * block)
    failures = []
    start = threading.Barrier(8)

    def work(seed):
        rng = random.Random(seed)
        start.wait(timeout=10)
        offset = rng.randrange(len(data))
        for _ in range(150):
            if rng.random() < 0.3:
                offset = rng.randrange(len(data))
            length = rng.choice([1, 4096, 65536, 200_000])
            got = reader.read(offset, length)
            if got != data[offset:offset + length]:
                failures.append((offset, length))
            offset += len(got)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert reader.cached_blocks <= 8


def test_threads_needing_the_same_block_share_one_fetch(store, data, monkeypatch):
    reader = ObjectReader(store, KEY, len(data), block_size=64 * 1024)
    inside, release = threading.Event(), threading.Event()
    real = store.read_range

    def slow_read_range(key, start, length, etag=None):
        inside.set()
        release.wait(timeout=10)
        return real(key, start, length, etag)

    monkeypatch.setattr(store, "read_range", slow_read_range)
    results = {}
    first = threading.Thread(target=lambda: results.update(a=reader.read(0, 100)))
    first.start()
    inside.wait(timeout=10)
    second = threading.Thread(target=lambda: results.update(b=reader.read(50, 100)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert results == {"a": data[:100], "b": data[50:150]}
    assert store.calls["read_range"] == 1


# --- parallel readahead, the shared budget, one version ----------------------------------


def test_fetches_ahead_run_at_the_same_time_in_the_pool(store, data, monkeypatch):
    """The two fetches of the first window wait for each other at a barrier: they pass only
    if both are in flight at once (one after the other, the barrier times out)."""
    block = 64 * 1024
    both = threading.Barrier(2, timeout=10)
    active, most = [0], [0]
    lock = threading.Lock()
    real = store.read_range

    def read_range(key, start, length, etag=None):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            if start in (block, 2 * block):
                both.wait()
            return real(key, start, length, etag)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(store, "read_range", read_range)
    with ThreadPoolExecutor(max_workers=4) as pool:
        reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, readahead_max=8 * block,
                              fetch_size=block)
        assert reader.read(0, 100) == data[:100]
        assert reader.read(100, 3 * block) == data[100:100 + 3 * block]
    assert most[0] >= 2


def test_the_window_is_fetched_by_the_pool_and_the_read_waits_only_for_its_block(store, data, requests_made):
    block = 64 * 1024
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, readahead_max=8 * block,
                          fetch_size=block)
    assert reader.read(0, 1000) == data[:1000]
    assert requests_made == [(0, block)]  # only the block it needs, in the reading thread
    assert len(pool.tasks) == 2  # the window of two blocks, one fetch each, queued
    pool.run_all()
    assert requests_made[1:] == [(block, block), (2 * block, block)]
    requests_made.clear()
    assert reader.read(1000, 2 * block) == data[1000:1000 + 2 * block]
    assert requests_made == []  # it had arrived


def test_a_read_runs_a_fetch_no_worker_has_started(store, data, requests_made):
    """A busy pool never delays a read: the read takes over the queued fetch of its block."""
    block = 64 * 1024
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, fetch_size=block)
    reader.read(0, block)
    assert reader.read(block, 10) == data[block:block + 10]
    pool.run_all()  # the worker finds the fetch taken: no second request
    assert sorted(requests_made) == [(0, block), (block, block), (2 * block, block)]


def test_a_jump_resets_the_window_and_fetches_only_the_aligned_block(store, data, requests_made):
    block = 64 * 1024
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, readahead_max=8 * block)
    for offset in range(0, 20 * block, block // 2):
        reader.read(offset, block // 2)
        pool.run_all()
    assert reader.window == 8 * block
    requests_made.clear()
    assert reader.read(60 * block + 5, 10) == data[60 * block + 5:60 * block + 15]
    assert reader.window == 0 and pool.tasks == []
    assert requests_made == [(60 * block, block)]


def test_an_object_of_one_block_is_fetched_whole_by_the_first_read(store, requests_made):
    small = random.Random(1).randbytes(300_000)
    store.put_raw("small", small)
    reader = ObjectReader(store, "small", len(small), pool=ManualPool())
    assert reader.read(4096, 4096) == small[4096:8192]
    assert requests_made == [(0, len(small))]
    assert reader.read(200_000, 100_000) == small[200_000:]
    assert len(requests_made) == 1


def test_the_shared_budget_is_never_exceeded_and_closing_frees_it(store, data):
    """Three sequential readers share a budget smaller than their windows: readahead shrinks
    to what fits, every read still returns its bytes, and closing gives every byte back."""
    block = 64 * 1024
    budget = ReadBudget(10 * block)
    pool = ManualPool()
    readers = [ObjectReader(store, KEY, len(data), pool=pool, budget=budget, block_size=block,
                            max_cached_blocks=2, readahead_max=16 * block, fetch_size=2 * block) for _ in range(3)]
    offsets = [0, 0, 0]
    while offsets[0] < len(data):
        for number, reader in enumerate(readers):
            got = reader.read(offsets[number], 20_000)
            assert got == data[offsets[number]:offsets[number] + 20_000]
            offsets[number] += len(got)
            assert budget.used <= budget.limit
        pool.run_all()
        assert budget.used <= budget.limit
    assert budget.peak <= budget.limit
    for reader in readers:
        reader.close()
    assert budget.used == 0


def test_an_empty_budget_slows_reads_down_and_never_blocks_them(store, data):
    budget = ReadBudget(0)
    reader = ObjectReader(store, KEY, len(data), pool=ManualPool(), budget=budget, block_size=64 * 1024)
    assert reader.read(0, 200_000) == data[:200_000]
    assert reader.read(200_000, 200_000) == data[200_000:400_000]
    assert reader.cached_blocks == 0 and budget.peak == 0


def test_a_fetch_ahead_left_queued_at_close_gives_its_budget_back(store, data):
    budget = ReadBudget(100 * MiB)
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, budget=budget, block_size=64 * 1024)
    reader.read(0, 100)
    assert pool.tasks and budget.used > 0
    reader.close()
    assert budget.used == 0
    pool.run_all()  # the worker finds the file closed: no request, nothing charged
    assert budget.used == 0 and store.calls["read_range"] == 1


def test_a_failed_fetch_ahead_is_the_error_of_the_read_that_needs_it(store, data):
    block = 64 * 1024
    pool = ManualPool()
    reader = ObjectReader(store, KEY, len(data), pool=pool, block_size=block, fetch_size=2 * block)
    reader.read(0, 100)
    failure = CosError("reset", code="ConnectionError", errno_value=errno.EIO)
    store.fail("read_range", failure)
    pool.run_all()  # blocks 1-2 fail in the background, after the transport's own retries
    assert reader.read(100, 100) == data[100:200]  # block 0 is not affected
    with pytest.raises(CosError) as caught:
        reader.read(block + 5, 10)
    assert caught.value is failure
    calls = store.calls["read_range"]
    assert reader.read(block + 5, 10) == data[block + 5:block + 15]  # the next read fetches again
    assert store.calls["read_range"] == calls + 1


def test_an_object_replaced_while_open_is_an_error_never_a_mix(store, data):
    """SEMANTICS.md: "An open file reads the version it was opened with: once the object is
    replaced in COS, a read that needs bytes not yet fetched fails with ESTALE"."""
    block = 64 * 1024
    etag = store.stat(KEY).etag
    reader = ObjectReader(store, KEY, len(data), etag, block_size=block, readahead_max=0)
    assert reader.read(0, 100) == data[:100]
    store.put_raw(KEY, bytes(len(data)))
    assert reader.read(100, 100) == data[100:200]  # cached: still the opened version
    with pytest.raises(CosError) as caught:
        reader.read(block - 50, 100)  # half cached, half from the new version
    assert caught.value.errno == errno.ESTALE


def test_after_a_change_is_seen_no_fetch_is_sent_or_trusted(store, data):
    """A store may learn the new version once it answered 412 (the JSON API pins by the
    download's ETag): the reader that saw the change must never fetch from it again."""
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), "pinned", block_size=block, readahead_max=0)
    with pytest.raises(CosError):
        reader.read(0, 10)
    calls = store.calls["read_range"]
    reader.etag = None  # as if the store now answered with any version
    with pytest.raises(CosError) as caught:
        reader.read(2 * block, 10)
    assert caught.value.errno == errno.ESTALE and store.calls["read_range"] == calls
