"""A mount that cannot work fails at once: non-zero exit, one line on stderr naming the
problem, nothing mounted and no process left behind, in daemon mode and with ``-f``.

The commands get ``connect_timeout=5`` (``cosfs_command``); each must end within that plus
a margin for Python start-up and one retry.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.mounted import child_env, cosfs_command, mount, require_fuse, wait_until, write_passwd

CONNECT_TIMEOUT = 5.0
MARGIN = 15.0


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str) -> list:
    """Command lines of live processes that mention ``text`` (a unique mountpoint path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command:
                found.append(f"{entry.name}: {command}")
    return found


def mount_entries(path: Path) -> int:
    """How many mounts the mount table has on ``path`` (dead FUSE mounts included)."""
    return sum(line.split()[1] == str(path) for line in Path("/proc/self/mounts").read_text().splitlines())


def is_mounted(path: Path) -> bool:
    """Whether ``path`` is in the mount table (dead FUSE mounts included)."""
    return mount_entries(path) > 0


def attempt(args) -> "tuple[subprocess.CompletedProcess, float]":
    """Run the mount command; one still running after the deadline is killed and reported."""
    started = time.monotonic()
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=child_env(),
                              timeout=CONNECT_TIMEOUT + MARGIN)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"still running after {CONNECT_TIMEOUT + MARGIN:g} s (it mounted?): {expired.stderr}")
    return done, time.monotonic() - started


@pytest.fixture
def mountpoint(tmp_path) -> Path:
    """An empty directory; unmounted afterwards should a broken command have mounted it."""
    require_fuse()
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    if is_mounted(path):  # also a dead FUSE mount, which os.path.ismount does not see
        subprocess.run([shutil.which("fusermount3") or shutil.which("fusermount"), "-uz", str(path)],
                       capture_output=True)
    wait_until(lambda: processes_mentioning(str(path)) == [], 10.0, what="the mount process to exit")


def assert_failed_cleanly(done, elapsed, mountpoint, *words):
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0, f"exit status 0; stderr: {done.stderr}"
    assert elapsed < CONNECT_TIMEOUT + MARGIN, f"took {elapsed:.1f} s"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    assert any(word.lower() in lines[0].lower() for word in words), lines[0]
    assert not is_mounted(mountpoint)
    assert processes_mentioning(str(mountpoint)) == []


FOREGROUND = pytest.mark.parametrize("foreground", [False, True], ids=["daemon", "foreground"])


@FOREGROUND
def test_wrong_secret_key(emulator, tmp_path, mountpoint, api, foreground):
    passwd = write_passwd(tmp_path, emulator, secret_key="WRONGKEYwrongkeyWRONGKEYwrongkey")
    args = cosfs_command(emulator, mountpoint, f"api={api}", foreground=foreground, passwd=passwd)

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "SecretKey", "credentials")


@FOREGROUND
def test_unknown_bucket(emulator, tmp_path, mountpoint, api, foreground):
    args = cosfs_command(emulator, mountpoint, f"api={api}", foreground=foreground,
                         passwd=write_passwd(tmp_path, emulator), bucket="nosuchbucket-1250000000")

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "does not exist")
    assert "nosuchbucket-1250000000" in done.stderr


@FOREGROUND
def test_closed_port(emulator, tmp_path, mountpoint, api, foreground):
    args = cosfs_command(emulator, mountpoint, f"api={api},endpoint=http://127.0.0.1:{closed_port()}",
                         foreground=foreground, passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "cannot connect")


@FOREGROUND
def test_missing_mountpoint(emulator, tmp_path, foreground):
    missing = tmp_path / "no" / "such" / "dir"
    args = cosfs_command(emulator, missing, foreground=foreground, passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, missing, "does not exist")
    assert not missing.exists()


@FOREGROUND
def test_unknown_option(emulator, tmp_path, mountpoint, foreground):
    args = cosfs_command(emulator, mountpoint, "nosuchoption", foreground=foreground,
                         passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "nosuchoption")


def test_bad_option_value(emulator, tmp_path, mountpoint):
    args = cosfs_command(emulator, mountpoint, "stat_cache_ttl=soon", passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "stat_cache_ttl")


def test_non_empty_mountpoint(emulator, tmp_path, mountpoint):
    (mountpoint / "occupied").write_text("")
    args = cosfs_command(emulator, mountpoint, passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert_failed_cleanly(done, elapsed, mountpoint, "not empty")


def test_mountpoint_already_mounted(cos, emulator, tmp_path):
    args = cosfs_command(emulator, cos.path, passwd=write_passwd(tmp_path, emulator))

    done, _ = attempt(args)

    assert done.returncode != 0
    assert "already a mount point" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert os.path.ismount(cos.path) and os.listdir(cos.path) == []


def statfs_errno(path: Path) -> int:
    """The kernel keeps a dead mount's cached attributes (``stat`` may still succeed for the
    stat TTL); ``statfs`` always reaches the daemon."""
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno
    return 0


@FOREGROUND
def test_a_stale_mount_says_to_unmount_it_then_mounting_works(emulator, tmp_path, mountpoint, foreground):
    """A mount whose cosfs was killed answers ENOTCONN: mounting again must name that and
    ``fusermount3 -u``, not send the user to mkdir; after the unmount the same command works."""
    killed = mount(emulator, tmp_path, name=mountpoint.name)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(10)
    wait_until(lambda: statfs_errno(mountpoint) == errno.ENOTCONN, what="the kernel to abort the dead mount")
    args = cosfs_command(emulator, mountpoint, foreground=foreground, passwd=write_passwd(tmp_path, emulator))

    done, elapsed = attempt(args)

    assert done.returncode == 1 and elapsed < CONNECT_TIMEOUT + MARGIN, done.stderr
    assert done.stderr.startswith(f"cosfs: {mountpoint} is a stale mount") and done.stderr.count("\n") == 1
    assert f"fusermount3 -u {mountpoint}" in done.stderr and "mkdir" not in done.stderr
    assert mount_entries(mountpoint) == 1, "a second mount was stacked on the stale one"
    assert processes_mentioning(str(mountpoint)) == []
    assert subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True).returncode == 0
    again = mount(emulator, tmp_path, name=mountpoint.name)
    try:
        (mountpoint / "alive.txt").write_text("mounted again")
        assert os.listdir(mountpoint) == ["alive.txt"]
    finally:
        again.stop()
