"""``scripts/bench.py --quick``: every benchmark mode runs end to end at a tiny size, so the
script cannot rot between the runs that produce docs/PERFORMANCE.md. It asserts no speed:
on a shared CI machine the figures mean nothing."""

from __future__ import annotations

import subprocess
import sys

from tests.support.emulator import REPOSITORY
from tests.support.mounted import child_env


def test_bench_quick_runs_every_mode_and_prints_its_tables():
    done = subprocess.run([sys.executable, str(REPOSITORY / "scripts" / "bench.py"), "--quick", "--tools", "cosfs"],
                          capture_output=True, text=True, timeout=300, env=child_env(), cwd=REPOSITORY, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    for header in ("| write MB/s |", "| API | stats/s | client CPU ms per stat |",
                   "| `ls -l` | 100 | remounted |", "| `rsync -a` 30 files, files/s |", "| 8 MiB |"):
        assert header in done.stdout, done.stdout
    assert "(showed" not in done.stdout, "a listing showed fewer files than there are"
    assert "(WRONG)" not in done.stdout, "a large-file write, read, append or rewrite gave a wrong result"
    assert "(rsync exit" not in done.stdout, "rsync failed through the mount"
    assert "multipart uploads in the bucket" not in done.stdout
