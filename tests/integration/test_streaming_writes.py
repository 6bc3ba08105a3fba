"""Streaming write-back through a real mount: large sequential writes leave for COS while
they are written, within the dirty budget and the disk bound, and every way out (close, a
seek back, faults, kill -9) leaves the right object and no multipart upload.

SEMANTICS.md: "A file written from its first byte onward (a new file, or one truncated to
zero) is sent to COS part by part while it is written (XML API)"; "`close` returns after COS
has the object, or returns the error".
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
from pathlib import Path

import pytest

from tests.integration.bucket import Bucket
from tests.integration.conftest import stop_and_show
from tests.support.mounted import mount, wait_until

MiB = 1024 * 1024


def unfinished_uploads(emulator) -> list:
    return Bucket(emulator).client.list_multipart_uploads(Bucket=emulator.bucket).get("Uploads", [])


@pytest.fixture(autouse=True)
def no_session_left(emulator):
    """After every test, no multipart upload is left in COS."""
    yield
    assert unfinished_uploads(emulator) == []


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def object_sha256(emulator, key: str) -> str:
    body = Bucket(emulator).client.get_object(Bucket=emulator.bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    while chunk := body.read(4 * MiB):
        digest.update(chunk)
    return digest.hexdigest()


def dd(source: Path, target: Path) -> subprocess.Popen:
    return subprocess.Popen(["dd", f"if={source}", f"of={target}", "bs=1M", "status=none"],
                            stderr=subprocess.PIPE, text=True)


def staged_files(cache: Path) -> list:
    return list(cache.glob("*/mount-*/*.staged"))


def parts_stored(emulator, key: str) -> int:
    """Parts COS holds for the unfinished upload of ``key`` (ListParts), 0 if none."""
    client = Bucket(emulator).client
    for upload in unfinished_uploads(emulator):
        if upload["Key"] == key:
            try:
                return len(client.list_parts(Bucket=emulator.bucket, Key=key, UploadId=upload["UploadId"])
                           .get("Parts", []))
            except client.exceptions.NoSuchUpload:
                return 0
    return 0


def test_a_300_mib_dd_reads_back_identically(emulator, cos, remount, api, tmp_path):
    """Both APIs (JSON stages the file whole: its uploads must know their size): the object
    and a read through a fresh mount have the sha256 of what dd wrote."""
    source = tmp_path / "source.bin"
    expected = random_file(source, 300 * MiB)
    copier = dd(source, cos.path / "big.bin")
    assert copier.wait(600) == 0, copier.stderr.read()
    assert object_sha256(emulator, "big.bin") == expected
    fresh = remount("fresh")
    assert sha256_of(fresh.path / "big.bin") == expected


def test_a_600_mib_dd_streams_its_parts_while_it_writes(emulator, tmp_path):
    """XML: parts are in COS before dd has written everything, and when the last byte is
    staged most of the file is stored already, so close has little left to send."""
    mounted = mount(emulator, tmp_path, "api=xml")
    try:
        source = tmp_path / "source.bin"
        expected = random_file(source, 600 * MiB)
        cache = tmp_path / "mnt-cache"
        seen = {}

        def watch() -> None:
            while copier.poll() is None:
                staged = staged_files(cache)
                size = staged[0].stat().st_size if staged else 0
                if size:
                    stored = parts_stored(emulator, "big.bin")
                    if stored and "early" not in seen and size < 400 * MiB:
                        seen["early"] = (stored, size)
                    if size == 600 * MiB and "written" not in seen:
                        seen["written"] = stored

        copier = dd(source, mounted.path / "big.bin")
        watcher = threading.Thread(target=watch)
        watcher.start()
        assert copier.wait(600) == 0, copier.stderr.read()
        watcher.join()
        assert "early" in seen, "no part was in COS before dd had written 400 of 600 MiB"
        # The budget (256 MiB) bounds what is written and not stored: at the last byte, at
        # least 600 - 256 - one part of 8 MiB are stored (42 parts).
        assert seen.get("written", 75) >= 40, seen
        assert object_sha256(emulator, "big.bin") == expected
    finally:
        stop_and_show(mounted)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_1_gib_with_max_dirty_mb_64_stays_within_memory_and_disk_bounds(emulator, tmp_path):
    """XML, ``max_dirty_mb=64``: the staging directory never holds more than the budget, part 1
    and one more part (and some slack for the sampling), and the daemon's peak RSS stays
    under 250 MiB (101 MiB measured): about 80 MiB of interpreter and caches, parallel_count (8) parts of 8 MiB
    read from staging, each copied once into its request, and the FUSE buffers."""
    mounted = mount(emulator, tmp_path, "api=xml,max_dirty_mb=64")
    peak = {"allocated": 0}
    try:
        source = tmp_path / "source.bin"
        expected = random_file(source, 1024 * MiB)
        cache = tmp_path / "mnt-cache"

        def sample() -> None:
            while copier.poll() is None:
                allocated = 0
                for path in staged_files(cache):
                    with contextlib.suppress(FileNotFoundError):
                        allocated += path.stat().st_blocks * 512
                peak["allocated"] = max(peak["allocated"], allocated)

        copier = dd(source, mounted.path / "big.bin")
        sampler = threading.Thread(target=sample)
        sampler.start()
        assert copier.wait(900) == 0, copier.stderr.read()
        sampler.join()
        rss = vm_hwm_kib(mounted.process.pid) * 1024
        assert peak["allocated"] <= (64 + 8 + 8 + 16) * MiB, peak
        assert rss <= 250 * MiB, f"peak RSS {rss / MiB:.0f} MiB"
        print(f"peak staging {peak['allocated'] / MiB:.0f} MiB, peak RSS {rss / MiB:.0f} MiB")
        assert object_sha256(emulator, "big.bin") == expected
    finally:
        stop_and_show(mounted)


def test_a_stream_under_faults_completes_or_fails_with_the_old_object_kept(emulator, tmp_path):
    """XML, a flaky server (503s, resets): dd either succeeds with the new object stored, or
    close reports the error and COS keeps the old one; no session is left either way."""
    bucket = Bucket(emulator)
    bucket.put("big.bin", b"the old version")
    mounted = mount(emulator, tmp_path, "api=xml,retries=10")
    try:
        source = tmp_path / "source.bin"
        expected = random_file(source, 100 * MiB)
        emulator.admin("faults", {"fail_rate": 0.2, "reset_rate": 0.1, "latency_ms": 5, "seed": 3})
        copier = dd(source, mounted.path / "big.bin")
        status = copier.wait(600)
        emulator.admin("faults", {"fail_rate": 0, "reset_rate": 0, "latency_ms": 0})
        if status == 0:
            assert object_sha256(emulator, "big.bin") == expected
        else:
            assert bucket.get("big.bin") == b"the old version"
        assert "retrying" in mounted.log(), "the faults never hit"
    finally:
        stop_and_show(mounted)


def test_a_seek_back_into_a_punched_range_stores_the_right_bytes(emulator, tmp_path):
    """SEMANTICS.md: a write into bytes already sent and freed "completes the upload, so the
    object holds what was written so far, and goes on as a write into an existing object"."""
    mounted = mount(emulator, tmp_path, "api=xml,multipart_size=1,multipart_threshold=1")
    try:
        cache = tmp_path / "mnt-cache"
        data = bytearray(os.urandom(40 * MiB))
        with open(mounted.path / "f.bin", "wb", buffering=0) as out:
            out.write(data)
            wait_until(lambda: any(p.stat().st_blocks * 512 < 30 * MiB for p in staged_files(cache)),
                       60, what="stored parts to be punched out of the staging file")
            out.seek(20 * MiB)
            out.write(b"PATCH")
            data[20 * MiB:20 * MiB + 5] = b"PATCH"
            out.seek(len(data))
            out.write(b"TAIL")
            data += b"TAIL"
        assert Bucket(emulator).get("f.bin") == bytes(data)
        assert "storing what was written so far" in mounted.log()
    finally:
        stop_and_show(mounted)


@pytest.mark.parametrize("api", ["xml"])
def test_kill_9_during_a_stream_publishes_nothing_and_leaves_no_session(emulator, remount, tmp_path):
    """SEMANTICS.md: what a crash interrupts is never published over COS's copy; the next
    mount aborts the streamed file's session and keeps what is left in lost+found. (A stream
    killed in its close is completed instead: tests/unit/test_stream_upload.py.)"""
    bucket = Bucket(emulator)
    bucket.put("big.bin", b"the old version")
    mounted = remount("crash", "multipart_size=1,multipart_threshold=1,parallel_count=1,max_dirty_mb=4")
    source = tmp_path / "source.bin"
    random_file(source, 64 * MiB)
    emulator.admin("faults", {"bandwidth_mbps": 40})
    copier = dd(source, mounted.path / "big.bin")
    try:
        wait_until(lambda: parts_stored(emulator, "big.bin") >= 3, 120, what="the stream to store 3 parts")
        staged = staged_files(tmp_path / "crash-cache")
        assert staged and staged[0].stat().st_size < 64 * MiB, "dd is still writing (max_dirty_mb holds it back)"
        mounted.process.kill()
        mounted.process.wait(10)
    finally:
        copier.kill()
        copier.wait(10)
        emulator.admin("faults", {"bandwidth_mbps": 0})
        mounted.stop()
    assert unfinished_uploads(emulator) != [], "the crash left the session (the next mount must abort it)"

    again = remount("crash")
    assert bucket.get("big.bin") == b"the old version"
    found = list((tmp_path / "crash-cache" / "lost+found").rglob("big.bin"))
    assert len(found) == 1, again.log()[-3000:]
    assert "was being streamed to COS when cosfs stopped" in again.log()


@pytest.mark.parametrize("api", ["xml"])
def test_a_streamed_file_keeps_its_mode_and_mtime_across_a_remount(emulator, cos, remount, tmp_path):
    """The session begins with the metadata known then; the object must end with the mode of
    the file and the mtime of its last write (one ``set_meta`` after completion)."""
    fd = os.open(cos.path / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        for _ in range(100):
            os.write(fd, os.urandom(MiB))
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    before = os.stat(cos.path / "big.bin")
    after = os.stat(remount("fresh").path / "big.bin")
    assert oct(after.st_mode) == oct(before.st_mode) == oct(0o100600)
    assert int(after.st_mtime) == int(before.st_mtime)
    assert after.st_size == 100 * MiB
