"""``cosfs doctor``: each problem gives its own line and a non-zero exit; a healthy setup passes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.emulator import start_emulator
from tests.support.mounted import child_env, write_passwd


def doctor(emulator, tmp_path, options="", env=None, bucket=None, secret_key=None):
    passwd = write_passwd(tmp_path, emulator, secret_key)
    args = [sys.executable, "-m", "cosfs", "doctor", bucket or emulator.bucket, "-o",
            f"endpoint={emulator.url},passwd_file={passwd},connect_timeout=3" + (f",{options}" if options else "")]
    return subprocess.run(args, capture_output=True, text=True, env=child_env(env), timeout=120)


def failures(result):
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def test_healthy_setup_passes_every_check_including_the_write_test(emulator, tmp_path):
    passwd = write_passwd(tmp_path, emulator)
    result = subprocess.run(
        [sys.executable, "-m", "cosfs", "doctor", emulator.bucket, "--write-test", "-o",
         f"endpoint={emulator.url},passwd_file={passwd}"],
        capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert checks == ["OK    credentials", "OK    DNS", "OK    TCP", "OK    clock", "OK    signed request",
                      "OK    write test", "OK    FUSE"]


def test_wrong_key_is_reported_as_rejected_credentials(emulator, tmp_path):
    result = doctor(emulator, tmp_path, secret_key="not-the-key")
    assert result.returncode == 1
    assert len(failures(result)) == 1
    assert "signed request" in failures(result)[0] and "rejected the credentials" in failures(result)[0]


def test_unknown_bucket_is_reported(emulator, tmp_path):
    result = doctor(emulator, tmp_path, bucket="nosuchbucket-1250000000")
    assert result.returncode == 1
    assert any("does not exist" in line for line in failures(result))


def test_closed_port_is_reported_as_a_failed_connection(emulator, tmp_path):
    passwd = write_passwd(tmp_path, emulator)
    emulator.stop()
    args = [sys.executable, "-m", "cosfs", "doctor", emulator.bucket, "-o",
            f"endpoint={emulator.url},passwd_file={passwd},connect_timeout=3"]
    result = subprocess.run(args, capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 1
    assert any(line.startswith("FAIL  TCP: cannot connect") for line in result.stdout.splitlines())


def test_clock_skew_is_reported_with_its_size(tmp_path):
    skewed = start_emulator(tmp_path / "skewed", "--clock-skew", "1200")
    try:
        result = doctor(skewed, tmp_path)
    finally:
        skewed.stop()
    assert result.returncode == 1
    clock = [line for line in failures(result) if line.startswith("FAIL  clock")]
    assert clock and "behind COS" in clock[0] and "timedatectl" in clock[0]


@pytest.mark.parametrize("device", ["/nonexistent/fuse"])
def test_missing_dev_fuse_is_reported(emulator, tmp_path, device):
    result = doctor(emulator, tmp_path, env={"COSFS_DEV_FUSE": device})
    assert result.returncode == 1
    assert failures(result) == [f"FAIL  FUSE: {device} is missing: load the module (modprobe fuse); in a "
                                "container pass --device /dev/fuse and CAP_SYS_ADMIN"]


def test_version_names_cosfs_the_binding_and_libfuse():
    result = subprocess.run([sys.executable, "-m", "cosfs", "--version"], capture_output=True, text=True,
                            env=child_env(), timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("cosfs 0.") and "mfusepy" in result.stdout and "libfuse 3." in result.stdout
