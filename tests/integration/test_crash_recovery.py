"""kill -9 of the daemon, lazy unmounts and SIGTERM: nothing lost, nothing leaked, on both APIs.

SEMANTICS.md: "What was closed is in COS. What a crash interrupts is resolved by the next
mount (or ``cosfs recover``): a complete version is stored if COS still holds the object
it replaces, anything else is kept in ``cache_dir/lost+found``; no multipart upload is
left behind." And: "after an unmount, lazy or by SIGTERM, whose uploads succeeded,
``cache_dir`` holds nothing" (but the persistent attribute cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.bucket import Bucket
from tests.support.mounted import child_env, cosfs_command, unmount, wait_until, write_passwd

MiB = 1024 * 1024


def files_in(directory: Path):
    """The files under ``directory``, but the persistent attribute cache (``BUCKET/attrs/``),
    which is meant to outlive the mount."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.parent.name != "attrs")


def unfinished_uploads(emulator) -> list:
    answer = Bucket(emulator).client.list_multipart_uploads(Bucket=emulator.bucket)
    return answer.get("Uploads", [])


def test_kill_9_with_files_open_closed_and_in_flight(remount, emulator, api, tmp_path):
    """4 closed files are intact; the 4 still open for writing go to lost+found, counted
    exactly; the one whose multipart upload was in flight is stored by the next mount; no
    multipart upload is left."""
    mounted = remount("crash", "multipart_threshold=1,multipart_size=1,parallel_count=1")
    bucket = Bucket(emulator)
    closed = {f"closed-{n}": os.urandom(100_000) for n in range(4)}
    for name, data in closed.items():
        (mounted.path / name).write_bytes(data)
    open_files = []
    for n in range(4):
        handle = open(mounted.path / f"open-{n}", "wb")
        handle.write(os.urandom(MiB))
        handle.flush()
        open_files.append(handle)
    in_flight = tmp_path / "in-flight.bin"
    in_flight.write_bytes(os.urandom(6 * MiB))
    emulator.admin("faults", {"bandwidth_mbps": 0.5})
    emulator.admin("stats/reset")
    copier = subprocess.Popen(["cp", str(in_flight), str(mounted.path / "in-flight.bin")])
    try:
        # cp must be in its close: on the XML API the file streams, so parts leave while it
        # is still written, and a kill then finds a file open for writing (lost+found).
        wait_until(lambda: any(p.name.startswith("in-flight.bin.") and p.stat().st_size == 6 * MiB
                               for p in (tmp_path / "crash-cache").rglob("*.staged"))
                   and sum(v for k, v in emulator.stats().items()
                           if k in ("xml.UploadPart", "json.upload_slice_data")) >= 1,
                   60, what="the in-flight multipart upload to send a part once cp wrote everything")
        mounted.process.kill()
        mounted.process.wait(10)
    finally:
        copier.kill()
        copier.wait(10)
        for handle in open_files:
            with contextlib.suppress(OSError):
                handle.close()
        mounted.stop()
    emulator.admin("faults", {"bandwidth_mbps": 0})

    for name, data in closed.items():
        assert bucket.get(name) == data, f"{name} was closed before the crash"

    again = remount("crash")
    found = files_in(tmp_path / "crash-cache" / "lost+found")
    assert sorted(p.name for p in found) == [f"open-{n}" for n in range(4)], (found, again.log()[-3000:])
    assert all(p.stat().st_size == MiB for p in found)
    assert hashlib.sha256(bucket.get("in-flight.bin")).digest() == hashlib.sha256(in_flight.read_bytes()).digest()
    assert unfinished_uploads(emulator) == []
    assert files_in(tmp_path / "crash-cache" / emulator.bucket) == [f for f in files_in(
        tmp_path / "crash-cache" / emulator.bucket) if f.name == "lock"], "only the live mount's lock"
    assert "stored 1 file(s)" in again.log() and again.log().count("lost+found") >= 4


def test_a_lazy_unmount_stores_pending_data_and_leaves_cache_dir_empty(remount, emulator, tmp_path):
    mounted = remount("lazy")
    handle = open(mounted.path / "pending.bin", "wb")
    handle.write(b"written before the lazy unmount, ")
    handle.flush()
    subprocess.run(["fusermount3", "-uz", str(mounted.path)], check=True)
    handle.write(b"and after it")
    handle.close()
    assert mounted.process.wait(30) == 0

    assert Bucket(emulator).get("pending.bin") == b"written before the lazy unmount, and after it"
    assert files_in(tmp_path / "lazy-cache") == []


def test_sigterm_stores_open_files_and_leaves_cache_dir_empty(emulator, tmp_path):
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    cache = tmp_path / "cache"
    args = cosfs_command(emulator, mountpoint, f"cache_dir={cache},ensure_diskfree=0",
                         passwd=write_passwd(tmp_path, emulator))
    log = open(tmp_path / "cosfs.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=log, env=child_env())
    pending = None
    try:
        wait_until(lambda: os.path.ismount(mountpoint), 30, what="the mount")
        pending = open(mountpoint / "big.bin", "wb")
        pending.write(b"y" * (3 * MiB))
        pending.flush()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if pending is not None:
            with contextlib.suppress(OSError):
                pending.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
        unmount(mountpoint)
        log.close()
        print((tmp_path / "cosfs.log").read_text(errors="replace"), file=sys.stderr)
    assert Bucket(emulator).get("big.bin") == b"y" * (3 * MiB)
    assert files_in(cache) == []


def test_cosfs_recover_resolves_without_mounting(remount, emulator, tmp_path):
    """``cosfs recover --list`` shows what a killed mount left; ``cosfs recover`` stores it."""
    mounted = remount("rec", "retries=0")
    assert os.listdir(mounted.path) == []  # cached: creating the file now needs no request
    emulator.admin("faults", {"fail_rate": 1.0})
    handle = open(mounted.path / "unstored.txt", "wb")
    handle.write(b"complete\n")
    try:
        handle.close()
        raise AssertionError("the upload should have failed: its data stays, journalled as failed")
    except OSError:
        pass
    mounted.process.kill()
    mounted.process.wait(10)
    mounted.stop()
    emulator.admin("faults", {"fail_rate": 0.0})
    options = f"endpoint={emulator.url},passwd_file={write_passwd(tmp_path, emulator)},cache_dir={tmp_path / 'rec-cache'}"
    command = [sys.executable, "-m", "cosfs", "recover", emulator.bucket, "-o", options]

    listed = subprocess.run(command + ["--list"], capture_output=True, text=True, env=child_env())
    assert listed.returncode == 0 and "unstored.txt: failed" in listed.stdout
    assert not Bucket(emulator).exists("unstored.txt")

    resolved = subprocess.run(command, capture_output=True, text=True, env=child_env())
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    assert "stored 1 file(s)" in resolved.stdout
    assert Bucket(emulator).get("unstored.txt") == b"complete\n"
