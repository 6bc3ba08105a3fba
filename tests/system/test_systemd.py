"""The systemd units: accepted by systemd-analyze, READY=1 only once mounted, SIGTERM stores pending data."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store
from cosfs.wire.credentials import Credentials, StaticProvider
from tests.support.emulator import REPOSITORY
from tests.support.mounted import child_env, require_fuse, unmount, wait_until, write_passwd

UNITS = REPOSITORY / "systemd"


def wrapper(tmp_path: Path, module: str) -> Path:
    """An executable that runs ``python -m module`` from this source tree (what /usr/local/bin/cosfs is)."""
    path = tmp_path / "bin" / module.replace(".", "-")
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\nPYTHONPATH={REPOSITORY} exec {sys.executable} -m {module} \"$@\"\n")
    path.chmod(0o755)
    return path


def installed_copy(tmp_path: Path, unit: str, name: str = None) -> Path:
    """The unit with /usr/local/bin/* pointed at this checkout (systemd-analyze checks executables)."""
    text = (UNITS / unit).read_text()
    text = text.replace("/usr/local/bin/cosfs-emulator", str(wrapper(tmp_path, "cosfs.emulator")))
    text = text.replace("/usr/local/bin/cosfs", str(wrapper(tmp_path, "cosfs")))
    target = tmp_path / "units" / (name or unit)
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    return target


@pytest.mark.parametrize("unit, name", [
    ("cosfs@.service", "cosfs@photos.service"),
    ("cosfs-emulator.service", None),
    ("mnt-cos.mount", None),
    ("mnt-cos.automount", None),
])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, unit, name):
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing (apt-get install systemd)"
    copy = installed_copy(tmp_path, unit, name)
    if unit == "mnt-cos.automount":
        installed_copy(tmp_path, "mnt-cos.mount")
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                            cwd=copy.parent, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if str(copy.name) in line or "error" in line.lower()]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_no_unit_puts_a_secret_on_a_command_line():
    """A command line is readable by every user (ps): keys come from files or EnvironmentFile=."""
    for unit in sorted(UNITS.iterdir()):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart", "Options=")):
                assert not re.search(r"(?i)secret|--credential |token", line), f"{unit.name}: {line}"


def exec_start(tmp_path: Path, emulator, mountpoint: Path, options: str) -> list:
    """The unit's ExecStart with the variables an /etc/cosfs/NAME.conf would give it."""
    line = next(l for l in (UNITS / "cosfs@.service").read_text().splitlines() if l.startswith("ExecStart="))
    values = {"BUCKET": emulator.bucket, "MOUNTPOINT": str(mountpoint), "OPTIONS": options}
    words = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], line[len("ExecStart="):]).split()
    assert words[0] == "/usr/local/bin/cosfs"
    return [str(wrapper(tmp_path, "cosfs"))] + words[1:]


class NotifySocket:
    """What systemd listens on for sd_notify messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages = []

    def poll(self) -> list:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass
        return self.messages

    def close(self) -> None:
        self.sock.close()


def test_ready_only_once_mounted_and_sigterm_stores_pending_data(emulator, tmp_path):
    require_fuse()
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    passwd = write_passwd(tmp_path, emulator)
    notify = NotifySocket(tmp_path / "notify.sock")
    options = f"endpoint={emulator.url},passwd_file={passwd},cache_dir={tmp_path / 'cache'},ensure_diskfree=0"
    log = open(tmp_path / "cosfs.log", "wb")
    process = subprocess.Popen(exec_start(tmp_path, emulator, mountpoint, options), stdout=log, stderr=log,
                               env=child_env({"NOTIFY_SOCKET": str(notify.path)}))
    pending = None
    try:
        ready = wait_until(lambda: [m for m in notify.poll() if "READY=1" in m], timeout=30, what="READY=1")
        assert os.path.ismount(mountpoint), "READY=1 came before the mount was live"
        assert "STATUS=serving cosfs#" in ready[0]
        pending = open(mountpoint / "pending.bin", "wb")  # left open: its data is only staged
        pending.write(b"data still being written at shutdown")
        pending.flush()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not os.path.ismount(mountpoint)
        assert any("STOPPING=1" in m for m in notify.poll())
        store = build_store(emulator.bucket, options_from_string(f"endpoint={emulator.url}"),
                            StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test"))
        assert store.read_range("pending.bin", 0, 100) == b"data still being written at shutdown"
    finally:
        notify.close()
        if pending is not None:
            with contextlib.suppress(OSError):  # its mount is gone: closing may fail
                pending.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
        unmount(mountpoint)
        log.close()
        print((tmp_path / "cosfs.log").read_text(errors="replace"))

