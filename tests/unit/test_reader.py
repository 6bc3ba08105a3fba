"""Reading objects through the block cache: exact bytes, few requests, bounded memory."""

from __future__ import annotations

import errno
import random
import threading

import pytest

from cosfs.data.reader import ObjectReader
from cosfs.wire.errors import CosError, CosfsError
from tests.support.fake_store import FakeStore

MiB = 1024 * 1024
KEY = "data/blob.bin"


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

    def read_range(key, start, length):
        made.append((start, length))
        return real(key, start, length)

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
                          readahead_max=8 * block)
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


def test_readahead_window_doubles_up_to_its_maximum(store, data, requests_made):
    block = 64 * 1024
    reader = ObjectReader(store, KEY, len(data), block_size=block, max_cached_blocks=64,
                          readahead_max=8 * block)
    for offset in range(0, 40 * block, 32 * 1024):
        reader.read(offset, 32 * 1024)
    lengths = [length // block for _, length in requests_made]
    assert lengths[:5] == [1, 2, 3, 5, 9]  # the block read, plus a window of 1, 2, 4, 8 blocks
    assert max(lengths) == 9


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
    reader = ObjectReader(store, KEY, len(data), block_size=block, max_cached_blocks=6,
                          readahead_max=64 * block)
    rng = random.Random(5)
    for _ in range(200):
        offset = rng.randrange(len(data))
        assert reader.read(offset, 3000) == data[offset:offset + 3000]
        assert reader.cached_blocks <= 6
    for offset in range(0, len(data), 8192):
        reader.read(offset, 8192)
        assert reader.cached_blocks <= 6
    assert max(length for _, length in requests_made) <= 6 * block  # readahead fits the cache


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

    def slow_read_range(key, start, length):
        inside.set()
        release.wait(timeout=10)
        return real(key, start, length)

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
