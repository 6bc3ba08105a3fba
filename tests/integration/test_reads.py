"""Reads through a real mount: parallel readahead returns exactly the object's bytes, random
reads too, and an open file reads one version (an error once it is replaced, never a mix)."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import time

import pytest

from tests.integration.bucket import Bucket

MiB = 1024 * 1024


def test_a_300_mib_file_reads_back_with_the_same_sha256(cos, emulator):
    """Issue 11's acceptance: a large file read sequentially (several ranged GETs in flight)
    is byte for byte the object. About 4 s per API, most of it making and uploading the data."""
    data = os.urandom(300 * MiB)
    expected = hashlib.sha256(data).hexdigest()
    Bucket(emulator).put("big.bin", data)
    del data
    digest = hashlib.sha256()
    started = time.monotonic()
    with open(cos.path / "big.bin", "rb", buffering=0) as source:
        while chunk := source.read(MiB):
            digest.update(chunk)
    print(f"read 300 MiB in {time.monotonic() - started:.2f} s")
    assert digest.hexdigest() == expected
    # 8 MB ranges, not one GET per 1 MB block (JSON API downloads are counted as XML GETs)
    assert emulator.stats().get("xml.GetObject", 0) < 60


def test_random_reads_return_the_source_bytes(cos, emulator):
    data = random.Random(11).randbytes(24 * MiB + 4321)
    Bucket(emulator).put("random.bin", data)
    rng = random.Random(12)
    descriptor = os.open(cos.path / "random.bin", os.O_RDONLY)
    try:
        for _ in range(200):
            offset = rng.randrange(len(data) + 100)
            length = rng.choice([1, 100, 4096, 65536, 300_000, 2 * MiB])
            assert os.pread(descriptor, length, offset) == data[offset:offset + length], (offset, length)
    finally:
        os.close(descriptor)


def test_a_file_replaced_while_open_for_reading_fails_and_never_mixes_versions(cos, emulator):
    """SEMANTICS.md: "An open file reads the version it was opened with: once the object is
    replaced in COS, a read that needs bytes not yet fetched fails with ESTALE ("Stale file
    handle"), and never returns a mix of old and new bytes"."""
    old = random.Random(1).randbytes(64 * MiB)
    new = random.Random(2).randbytes(64 * MiB)
    bucket = Bucket(emulator)
    bucket.put("replaced.bin", old)
    got = bytearray()
    with open(cos.path / "replaced.bin", "rb", buffering=0) as source:
        got += source.read(64 * 1024)
        bucket.put("replaced.bin", new)
        with pytest.raises(OSError) as caught:
            while chunk := source.read(MiB):
                got += chunk
    assert caught.value.errno == errno.ESTALE
    assert 0 < len(got) < len(old)
    assert bytes(got) == old[:len(got)]
    assert (cos.path / "replaced.bin").read_bytes() == new  # a new open reads the new version


def test_an_unchanged_file_read_again_costs_no_request(cos, emulator):
    """SEMANTICS.md: "the kernel keeps its page cache of a file across opens only when the
    file's ETag at `open` is the one it had at its previous open through this mount"."""
    data = random.Random(3).randbytes(3 * MiB)
    Bucket(emulator).put("again.bin", data)
    assert (cos.path / "again.bin").read_bytes() == data
    gets = emulator.stats().get("xml.GetObject", 0)
    assert (cos.path / "again.bin").read_bytes() == data  # the first open's pages, kept
    assert (cos.path / "again.bin").read_bytes() == data
    assert emulator.stats().get("xml.GetObject", 0) == gets
