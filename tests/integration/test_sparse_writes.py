"""Writes into existing objects on a real mount: nothing downloaded, untouched parts copied in COS.

SEMANTICS.md, "write at an offset, append, truncate of an existing file": "XML API: nothing
is downloaded; only the bytes written are staged [...]. At ``close``/``fsync`` the new
version is stored as a multipart upload in which the old object's bytes that no write
touched are copied inside COS (Upload Part - Copy, pinned to the old object's ETag), in as
few parts as keep the upload workers busy; the rest is assembled from the written bytes,
zeros and, only where a part needs them to reach COS's 1 MB part minimum, the old bytes
beside them (ranged GETs pinned to the same ETag), and uploaded." And: "appending through
repeated open/close costs the new bytes and at most `parallel_count` copy requests per close
(for a file up to `parallel_count` × 5 GB), not the file's size."
"""

from __future__ import annotations

import errno
import os
import random

import pytest

from cosfs.wire.facts import MIN_PART_SIZE
from tests.integration.bucket import Bucket, file_meta
from tests.integration.conftest import stop_and_show
from tests.integration.test_request_costs import settled_stats
from tests.support.mounted import mount

MiB = 1024 * 1024
#: cosfs's default ``parallel_count``: a copied range becomes at most this many parts.
PARALLEL_COUNT = 8


@pytest.fixture(autouse=True)
def no_upload_left_behind(emulator):
    """After each test, COS holds no unfinished multipart upload."""
    yield
    answer = Bucket(emulator).client.list_multipart_uploads(Bucket=emulator.bucket)
    assert answer.get("Uploads", []) == []


def put_existing(emulator, key: str, size: int, seed: int) -> bytearray:
    """An object written by another client (boto3, the XML API), as cosfs would store one."""
    data = random.Random(seed).randbytes(size)
    Bucket(emulator).put(key, data, file_meta(mode=0o100644))
    return bytearray(data)


def read_through(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def scribble(fd: int, model: bytearray, rng: random.Random, writes: int, reach: int) -> bytearray:
    """``writes`` writes of up to 256 KiB at random offsets below ``reach``, applied to the
    file and to ``model``, with a truncate now and then."""
    for step in range(writes):
        if step % 9 == 8:
            length = rng.randrange(max(1, len(model) - 2 * MiB), len(model) + 2 * MiB)
            os.ftruncate(fd, length)
            model = model[:length] + bytearray(max(0, length - len(model)))
            continue
        offset = rng.randrange(reach)
        data = rng.randbytes(rng.randrange(1, 256 * 1024))
        assert os.pwrite(fd, data, offset) == len(data)
        if offset > len(model):
            model += bytearray(offset - len(model))
        model[offset:offset + len(data)] = data
    return model


@pytest.mark.parametrize("existing", [False, True], ids=["new file", "existing 40 MiB object"])
def test_random_writes_match_a_local_model_through_the_mount_a_remount_and_boto3(
        cos, remount, emulator, api, existing):
    rng = random.Random(20240611 + existing)
    key = "scribbled.bin"
    model = put_existing(emulator, key, 40 * MiB, seed=3) if existing else bytearray()
    path = cos.path / key
    fd = os.open(path, os.O_RDWR | (0 if existing else os.O_CREAT), 0o644)
    try:
        model = scribble(fd, model, rng, 40, 44 * MiB)
        assert os.fstat(fd).st_size == len(model), "stat shows the new size at once"
        assert os.pread(fd, len(model) + 1, 0) == bytes(model), "reads overlay the writes on the object"
        os.fsync(fd)
        model = scribble(fd, model, rng, 10, len(model) + MiB)
    finally:
        os.close(fd)
    assert os.stat(path).st_size == len(model)
    assert read_through(path) == bytes(model)
    assert Bucket(emulator).get(key) == bytes(model)
    again = remount("again")
    assert read_through(again.path / key) == bytes(model)


@pytest.mark.parametrize("api", ["xml"])  # the JSON API cannot copy parts (SEMANTICS.md)
def test_appending_1_mib_to_a_50_mib_object_copies_parts_and_moves_only_the_tail(cos, emulator, api):
    model = put_existing(emulator, "log.bin", 50 * MiB, seed=4)
    os.stat(cos.path / "log.bin")
    emulator.admin("stats/reset")
    line = random.Random(5).randbytes(MiB)
    with open(cos.path / "log.bin", "ab") as log:
        log.write(line)
    model += line
    counts, moved = settled_stats(emulator), emulator.admin("stats")["bytes"]
    print(f"\nappend 1 MiB to 50 MiB, api=xml: {counts}, bytes {moved}")
    assert 1 <= counts.get("xml.UploadPartCopy", 0) <= PARALLEL_COUNT, counts
    assert counts.get("xml.UploadPart") == 1, counts
    assert counts.get("xml.PutObject", 0) == 0, counts
    assert moved["in"] <= MiB + 64 * 1024, f"uploaded {moved['in']} bytes: more than the appended MiB"
    assert moved["out"] <= 64 * 1024, f"downloaded {moved['out']} bytes of the old object"
    assert Bucket(emulator).get("log.bin") == bytes(model)


@pytest.mark.parametrize("api", ["xml"])  # the JSON API cannot copy parts (SEMANTICS.md)
def test_repeated_appends_cost_the_new_bytes_each_time(cos, emulator, api):
    """``echo line >> log`` ten times: each close moves its line, not the file."""
    model = put_existing(emulator, "log.txt", 20 * MiB, seed=6)
    emulator.admin("stats/reset")
    for number in range(10):
        line = f"line {number}\n".encode()
        with open(cos.path / "log.txt", "ab") as log:
            log.write(line)
        model += line
    counts = settled_stats(emulator)
    moved = emulator.admin("stats")["bytes"]
    assert moved["in"] <= 10 * 4096, moved
    assert moved["out"] <= 10 * 4096, moved
    assert counts.get("xml.UploadPartCopy", 0) <= 10 * PARALLEL_COUNT, counts
    assert Bucket(emulator).get("log.txt") == bytes(model)


@pytest.mark.parametrize("api", ["xml"])  # the JSON API cannot copy parts (SEMANTICS.md)
def test_a_4_kib_rewrite_in_the_middle_of_50_mib_sends_one_minimum_part(cos, emulator, api):
    model = put_existing(emulator, "db.bin", 50 * MiB, seed=7)
    os.stat(cos.path / "db.bin")
    emulator.admin("stats/reset")
    page = random.Random(8).randbytes(4096)
    offset = 25 * MiB + 1000
    fd = os.open(cos.path / "db.bin", os.O_WRONLY)
    try:
        os.pwrite(fd, page, offset)
    finally:
        os.close(fd)
    model[offset:offset + len(page)] = page
    counts, moved = settled_stats(emulator), emulator.admin("stats")["bytes"]
    print(f"\n4 KiB rewrite in 50 MiB, api=xml: {counts}, bytes {moved}")
    assert 2 <= counts.get("xml.UploadPartCopy", 0) <= 2 * PARALLEL_COUNT, counts
    assert counts.get("xml.UploadPart") == 1, counts
    minimum = MIN_PART_SIZE + 64 * 1024
    assert moved["in"] <= minimum and moved["out"] <= minimum, f"more than COS's part minimum moved: {moved}"
    assert Bucket(emulator).get("db.bin") == bytes(model)


def test_truncate_down_and_up_then_write(cos, remount, emulator, api):
    model = put_existing(emulator, "cut.bin", 30 * MiB, seed=9)
    path = cos.path / "cut.bin"
    os.truncate(path, 12 * MiB + 5)  # down, stored at once (no other handle)
    model = model[:12 * MiB + 5]
    assert Bucket(emulator).get("cut.bin") == bytes(model)
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 3 * MiB)
        os.ftruncate(fd, 20 * MiB)  # up again: the bytes between read as zeros, not the old ones
        os.pwrite(fd, b"after the hole", 18 * MiB)
        model = model[:3 * MiB] + bytearray(17 * MiB)
        model[18 * MiB:18 * MiB + 14] = b"after the hole"
        assert os.fstat(fd).st_size == 20 * MiB
        assert os.pread(fd, 21 * MiB, 0) == bytes(model)
    finally:
        os.close(fd)
    assert read_through(path) == bytes(model)
    assert Bucket(emulator).get("cut.bin") == bytes(model)
    assert read_through(remount("again").path / "cut.bin") == bytes(model)


@pytest.mark.parametrize("api", ["xml"])  # the JSON API stages whole copies (SEMANTICS.md)
def test_an_object_replaced_behind_an_open_append_fails_estale_and_is_never_mixed(emulator, remount, tmp_path):
    """SEMANTICS.md: "If the object changed in COS since the file was opened, the upload fails
    (ESTALE) and COS keeps the other writer's version: never a mix; the data is kept, and the
    next mount moves it to lost+found with a `.extents.json` saying which ranges were written."
    The old bytes are copied inside COS in a few large parts, each pinned to the old ETag."""
    put_existing(emulator, "log.bin", 30 * MiB, seed=11)
    theirs = random.Random(12).randbytes(30 * MiB)
    mounted = remount("behind")
    log = open(mounted.path / "log.bin", "ab", buffering=0)
    log.write(random.Random(13).randbytes(MiB))
    Bucket(emulator).put("log.bin", theirs, file_meta(mode=0o100644))  # another writer, meanwhile
    with pytest.raises(OSError) as failure:
        log.close()
    assert failure.value.errno == errno.ESTALE
    assert Bucket(emulator).get("log.bin") == theirs, "COS keeps the other writer's version, whole"
    mounted.stop()

    again = remount("behind")
    assert Bucket(emulator).get("log.bin") == theirs
    found = list((tmp_path / "behind-cache" / "lost+found").rglob("log.bin*"))
    assert sorted(path.name for path in found) == ["log.bin", "log.bin.extents.json"], again.log()[-3000:]


@pytest.mark.parametrize("api", ["xml"])
def test_an_append_under_faults_completes_or_fails_with_the_old_object_kept(emulator, tmp_path, api):
    """SEMANTICS.md: "Until it is stored, the old object is untouched": under 503s and resets
    the append either lands whole or close reports the error and COS keeps the old bytes; no
    upload session is left either way (this module's autouse check)."""
    old = put_existing(emulator, "log.bin", 30 * MiB, seed=14)
    line = random.Random(15).randbytes(MiB)
    mounted = mount(emulator, tmp_path, f"api={api},retries=10")
    try:
        os.stat(mounted.path / "log.bin")
        emulator.admin("faults", {"fail_rate": 0.2, "reset_rate": 0.1, "latency_ms": 5, "seed": 5})
        try:
            with open(mounted.path / "log.bin", "ab") as log:
                log.write(line)
            stored = True
        except OSError:
            stored = False
        emulator.admin("faults", {"fail_rate": 0, "reset_rate": 0, "latency_ms": 0})
        assert Bucket(emulator).get("log.bin") == (bytes(old) + line if stored else bytes(old))
        assert "retrying" in mounted.log(), "the faults never hit"
    finally:
        stop_and_show(mounted)
