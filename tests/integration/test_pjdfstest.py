"""pjdfstest's files that s3fs's own CI runs, as a must-not-regress list, on the XML API.

s3fs's ``test/integration-test-main.sh`` (``test_pjdfstest_*``) runs these files of
pjdfstest; every one of them passes here whole, except the ones named in ``BY_DESIGN``
with the reason. ``scripts/posix.sh`` runs the whole suite (docs/SEMANTICS.md has the
table); this is the part CI runs, in under a minute: one mount, each file in a fresh
directory, as root, with ``allow_other`` (pjdfstest switches uids). s3fs's list also
names ``chflags/``, ``granular/`` (FreeBSD only: not vendored) and ``link/`` (hard links
are refused on COS, EPERM, by design).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.emulator import REPOSITORY
from tests.support.mounted import mount

#: s3fs's list (its shell globs expanded against the vendored suite), minus link/.
S3FS_CI_FILES = (
    [f"chmod/{n}" for n in ("04", "06", "08", "09", "10")]
    + [f"chown/{n}" for n in ("04", "06", "08", "09", "10")]
    + [f"ftruncate/{n}" for n in ("01", "04", "07", "08", "09", "10", "11", "13", "14")]
    + [f"mkdir/{n}" for n in ("03", "04", "07", "08", "09", "11", "12")]
    + [f"mkfifo/{n}" for n in ("03", "04", "07", "08", "10", "11", "12")]
    + [f"mknod/{n}" for n in ("04", "07", "09", "10")]
    + [f"open/{n}" for n in ("04", "09", *(str(n) for n in range(10, 20)), "20", "21", "23", "24")]
    + ["posix_fallocate/00"]
    + [f"rename/{n}" for n in ("02", "03", "06", "07", "08", "11", "15", "16", "17", "18", "19", "22")]
    + [f"rmdir/{n}" for n in ("03", "04", "05", "09", "10", "12", "13", "14", "15")]
    + [f"symlink/{n}" for n in ("01", "03", "04", "07", "09", "10", "11", "12")]
    + [f"truncate/{n}" for n in ("01", "04", "07", "08", "09", "10", "11", "13", "14")]
    + [f"unlink/{n}" for n in ("04", "07", "08", "10", "12", "13", "14")]
    + [f"utimensat/{n}" for n in ("01", "02", "03", "04", "05", "08", "09")]
)

#: Files that cannot pass whole, and why (docs/SEMANTICS.md): the assertions each passes.
BY_DESIGN = {
    # PATH_MAX-long paths (4095 bytes): COS keys are at most 850 bytes, so ENAMETOOLONG.
    "mkdir/03": 1, "mkfifo/03": 1, "rmdir/03": 1, "symlink/03": 4, "rename/02": 4,
}


def test_s3fs_ci_subset_of_pjdfstest_passes(emulator, tmp_path):
    """SEMANTICS: "the files s3fs's CI lists pass here whole, except the PATH_MAX paths COS
    cannot hold." """
    assert os.geteuid() == 0, "pjdfstest must run as root (it switches uids); CI runs as root"
    for tool in ("cc", "prove"):
        assert shutil.which(tool), f"{tool} is missing (scripts/test.sh installs gcc and perl)"
    mounted = mount(emulator, tmp_path, "api=xml,allow_other")
    results = tmp_path / "results"
    try:
        run = subprocess.run(
            ["bash", str(REPOSITORY / "scripts" / "posix.sh"), str(mounted.path), *S3FS_CI_FILES],
            env=dict(os.environ, POSIX_BUILD=str(tmp_path / "build"), POSIX_RESULTS=str(results)),
            capture_output=True, text=True, timeout=900,
        )
    finally:
        mounted.stop()
    assert run.returncode == 0, run.stderr + run.stdout
    counts = _summary(results / "summary.txt")
    assert sorted(counts) == sorted(S3FS_CI_FILES)
    failing = {name: f"{passed}/{total}" for name, (passed, total) in counts.items()
               if passed != BY_DESIGN.get(name, total)}
    assert not failing, f"pjdfstest files that regressed (passed/total; TAP in {results}): {failing}"


def _summary(path: Path) -> dict:
    """``scripts/posix.sh``'s per-file lines: ``rename/00.t   92/122``."""
    counts = {}
    for line in path.read_text().splitlines():
        name, score = line.split()
        passed, total = score.split("/")
        counts[name.removesuffix(".t")] = (int(passed), int(total))
    return counts
