"""The README's first command: scripts/quickstart.sh mounts a demo bucket; 'stop' leaves nothing behind."""

from __future__ import annotations

import os
import subprocess

from tests.support.emulator import REPOSITORY
from tests.support.mounted import require_fuse, unmount

SCRIPT = REPOSITORY / "scripts" / "quickstart.sh"


def processes_mentioning(text: str) -> list:
    result = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if "pgrep" not in line]


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

        stopped = subprocess.run(["bash", str(SCRIPT), "stop"], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not os.path.ismount(mountpoint)
        assert processes_mentioning(str(tmp_path)) == []
    finally:
        unmount(mountpoint)
        subprocess.run(["bash", str(SCRIPT), "stop"], cwd=tmp_path, capture_output=True, timeout=120)
