"""The README's first command: scripts/quickstart.sh mounts a demo bucket; 'stop' leaves nothing behind.

The demo's SecretKey is on no process's command line: ``ps`` (``/proc/PID/cmdline``) shows
every user what each process was started with.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.emulator import REPOSITORY
from tests.support.mounted import require_fuse, unmount

SCRIPT = REPOSITORY / "scripts" / "quickstart.sh"


def processes_mentioning(text: str) -> list:
    result = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


def command_lines() -> dict:
    """pid -> command line (NUL-separated bytes) of every live process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return found


def test_quickstart_mounts_the_demo_bucket_and_stop_cleans_up(tmp_path):
    require_fuse()
    mountpoint = tmp_path / "cos-demo"
    try:
        started = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        assert os.path.ismount(mountpoint)
        assert (mountpoint / "README.md").read_bytes() == (REPOSITORY / "README.md").read_bytes()
        assert "Stop:" in started.stdout and "quickstart.sh stop" in started.stdout
        (mountpoint / "mine.txt").write_text("the printed commands work: files go in and come back")
        assert "mine.txt" in os.listdir(mountpoint)

        secret_key = (tmp_path / ".cosfs-demo" / "passwd-cosfs").read_text().strip().split(":")[1]
        running = command_lines()
        demo = [line for line in running.values() if str(tmp_path).encode() in line]
        assert any(b"cosfs-emulator" in line for line in demo) and any(b"cos-demo" in line for line in demo), demo
        assert [pid for pid, line in running.items() if secret_key.encode() in line] == []

        stopped = subprocess.run(["bash", str(SCRIPT), "stop"], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not os.path.ismount(mountpoint)
        assert processes_mentioning(str(tmp_path)) == []
    finally:
        unmount(mountpoint)
        subprocess.run(["bash", str(SCRIPT), "stop"], cwd=tmp_path, capture_output=True, timeout=120)
