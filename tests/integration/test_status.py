"""``cosfs status`` and ``-o metrics=`` on real mounts.

What an operator relies on: during a large write ``cosfs status`` shows the upload with its
progress, and afterwards says nothing is pending; its request counts are the requests COS
(the emulator) really received, and the metrics endpoint reports the same numbers; the last
errors carry COS's request id; each mount has its own socket, found with or without naming
the mount point, and gone once the mount ends (unmount or SIGTERM, after its last upload).
About 10 s in all.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.bucket import Bucket
from tests.support.mounted import child_env, mount, wait_until

MiB = 1024 * 1024
#: Big enough for 16 parts of 1 MiB: the upload lasts seconds at the throttled bandwidth.
BIG = 16 * MiB


@pytest.fixture
def run_dir():
    """The status sockets' directory (COSFS_RUNTIME_DIR), short enough for a socket address."""
    parent = Path(tempfile.mkdtemp(prefix="cosfs-run-"))
    try:
        yield parent / "run"
    finally:
        shutil.rmtree(parent)


def cosfs_status(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosfs", "status", *args], capture_output=True, text=True,
                          env=child_env({"COSFS_RUNTIME_DIR": str(run_dir)}), timeout=60)


def snapshot(run_dir: Path, mountpoint: Path) -> dict:
    answer = cosfs_status(run_dir, "--json", str(mountpoint))
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict:
    """``{(sample name, operation label): value}`` of the mount's metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(sample.name, sample.labels.get("operation", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sent(requests: dict) -> int:
    """HTTP requests behind a snapshot's counts: each request once, plus its repeats."""
    return sum(counts["count"] + counts["retries"] for counts in requests.values())


def test_status_follows_a_large_upload_until_nothing_is_pending(emulator, tmp_path, run_dir):
    port = free_port()
    mounted = mount(emulator, tmp_path, f"multipart_threshold=1,multipart_size=1,parallel_count=2,"
                                        f"metrics=127.0.0.1:{port}", env={"COSFS_RUNTIME_DIR": str(run_dir)})
    writer = None
    try:
        before = snapshot(run_dir, mounted.path)
        assert before["uploads"] == [] and before["dirty"] == {"files": 0, "bytes": 0}
        emulator.admin("stats/reset")
        emulator.admin("faults", {"bandwidth_mbps": 2})
        writer = threading.Thread(target=(mounted.path / "big.bin").write_bytes, args=(os.urandom(BIG),))
        writer.start()

        running = wait_until(
            lambda: [document for document in [snapshot(run_dir, mounted.path)]
                     if document["uploads"] and 0 < document["uploads"][0]["bytes_done"] < BIG],
            timeout=60, interval=0.1, what="an upload part-way through")[0]
        shown = cosfs_status(run_dir, str(mounted.path))
        emulator.admin("faults", {"bandwidth_mbps": 0})

        upload = running["uploads"][0]
        assert (upload["path"], upload["bytes_total"]) == ("/big.bin", BIG)
        assert upload["bytes_done"] % MiB == 0 and upload["rate_bps"] > 0
        assert running["dirty"]["files"] == 1
        # The file streams: parts COS confirmed are freed and no longer count as dirty.
        assert 0 < running["dirty"]["bytes"] <= BIG
        assert running["cache"]["bytes"] >= BIG
        assert shown.returncode == 0, shown.stderr
        assert "/big.bin" in shown.stdout and "16.0 MiB  " in shown.stdout and "[#" in shown.stdout
        assert "safe to unmount" not in shown.stdout

        writer.join(60)
        after = wait_until(lambda: [document for document in [snapshot(run_dir, mounted.path)]
                                    if not document["uploads"] and not document["dirty"]["files"]],
                           timeout=30, what="an empty queue")[0]
        assert "nothing pending: safe to unmount" in cosfs_status(run_dir, str(mounted.path)).stdout
        assert after["requests"]["put_part"]["count"] == BIG // MiB
        assert after["requests"]["put_part"]["errors"] == 0
        assert sent(after["requests"]) - sent(before["requests"]) == sum(emulator.stats().values())

        metrics = scrape(port)
        for operation, counts in after["requests"].items():
            assert metrics[("cosfs_requests_total", operation)] == counts["count"], operation
            assert metrics[("cosfs_request_retries_total", operation)] == counts["retries"], operation
        assert metrics[("cosfs_uploads_pending", "")] == 0
        assert metrics[("cosfs_dirty_bytes", "")] == 0
    finally:
        emulator.admin("faults", {"bandwidth_mbps": 0})
        if writer is not None:
            writer.join(60)
        status = mounted.stop()
        print(f"--- cosfs log (exit status {status}) ---\n{mounted.log()}")


def test_status_shows_the_last_error_with_its_cos_request_id(emulator, tmp_path, run_dir, api):
    mounted = mount(emulator, tmp_path, f"api={api}", env={"COSFS_RUNTIME_DIR": str(run_dir)})
    try:
        emulator.admin("faults", {"refuse_keys": "refused"})
        with pytest.raises(OSError) as raised:
            (mounted.path / "refused.txt").write_bytes(b"precious")
        assert raised.value.errno == errno.EINVAL

        document = snapshot(run_dir, mounted.path)
        shown = cosfs_status(run_dir, str(mounted.path)).stdout
    finally:
        status = mounted.stop()
        print(f"--- cosfs log (exit status {status}) ---\n{mounted.log()}")

    error = document["errors"][-1]
    assert error["key"] == "refused.txt" and error["errno"] == "EINVAL"
    assert error["code"] in ("InvalidObjectName", "-180")
    assert error["request_id"]
    assert sum(counts["errors"] for counts in document["requests"].values()) == 1
    assert f"[request id {error['request_id']}]" in shown


def test_each_mount_has_its_own_socket_gone_when_the_mount_ends(emulator, tmp_path, run_dir):
    """SEMANTICS.md: "On unmount (`fusermount3 -u`, `umount`, SIGTERM to the daemon) every
    file still being written is uploaded before the process exits": ``cosfs status`` follows
    that last upload, and the socket goes only after it."""
    env = {"COSFS_RUNTIME_DIR": str(run_dir)}
    first = mount(emulator, tmp_path, name="first", env=env)
    second = mount(emulator, tmp_path, "multipart_threshold=1,multipart_size=1,parallel_count=1", name="second",
                   env=env)
    held = None
    try:
        listed = cosfs_status(run_dir, "--json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(document["mount"]["mountpoint"] for document in json.loads(listed.stdout)) == [
            str(first.path), str(second.path)]
        shown = cosfs_status(run_dir)
        assert f"{first.path}: " in shown.stdout and f"{second.path}: " in shown.stdout
        assert len(os.listdir(run_dir)) == 2

        plain = cosfs_status(run_dir, str(tmp_path))
        assert (plain.returncode, plain.stdout) == (1, "")
        assert plain.stderr.count("\n") == 1
        assert plain.stderr.startswith(f"cosfs status: {tmp_path} is not a cosfs mount (no status socket {run_dir}/")
        elsewhere = cosfs_status(tmp_path / "elsewhere", str(first.path))
        assert elsewhere.returncode == 1
        assert "is a cosfs mount, but none of this user's daemons serves it" in elsewhere.stderr

        assert first.stop() == 0
        assert len(os.listdir(run_dir)) == 1
        assert [document["mount"]["mountpoint"] for document in json.loads(cosfs_status(run_dir, "--json").stdout)] \
            == [str(second.path)]

        held = open(second.path / "held.bin", "wb")
        held.write(b"h" * 4 * MiB)
        held.flush()
        emulator.admin("faults", {"bandwidth_mbps": 2})
        second.process.send_signal(signal.SIGTERM)
        final = wait_until(lambda: [document for document in [snapshot(run_dir, second.path)] if document["uploads"]],
                           timeout=30, interval=0.1, what="the last upload of a stopping mount")[0]
        assert final["uploads"][0]["path"] == "/held.bin"
        emulator.admin("faults", {"bandwidth_mbps": 0})
        assert second.process.wait(30) == 0
        assert os.listdir(run_dir) == []
        assert Bucket(emulator).get("held.bin") == b"h" * 4 * MiB
        gone = cosfs_status(run_dir)
        assert gone.returncode == 1
        assert gone.stderr == f"cosfs status: no cosfs mount of this user is running (no status socket in {run_dir})\n"
    finally:
        emulator.admin("faults", {"bandwidth_mbps": 0})
        if held is not None:
            with contextlib.suppress(OSError):  # the mount is gone: close() has nothing left to do
                held.close()
        for mounted in (first, second):
            status = mounted.stop()
            print(f"--- cosfs log {mounted.path} (exit status {status}) ---\n{mounted.log()}")
