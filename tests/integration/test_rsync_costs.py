"""What a no-op ``rsync -a`` pass costs after a remount, from the emulator's counters.

SEMANTICS.md: "After a remount, a file whose list entry shows the ETag, size and
Last-Modified second it had when this cache last HEADed it costs no HEAD", and files this
mount stored, changed or renamed are kept the same way, with the ETag and size COS
answered. So the second pass of a backup, the common case, costs the list pages and a few
requests per directory, not one HEAD per file.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.bucket import Bucket, file_meta
from tests.integration.local_tree import run
from tests.integration.test_attr_cache import HEAD_OPERATIONS, shared_cache
from tests.integration.test_request_costs import settled_stats

MTIME = 1_600_000_000
#: HEADs a directory may cost in a pass (what it is: file key, marker; rsync's own checks).
HEADS_PER_DIRECTORY = 3


def local_tree(root: Path, directories: int, files_per_directory: int) -> Path:
    """``directories`` × ``files_per_directory`` small files with whole-second mtimes."""
    for directory in range(directories):
        folder = root / f"d{directory:02d}"
        folder.mkdir(parents=True)
        for number in range(files_per_directory):
            path = folder / f"f{number:04d}"
            path.write_bytes(b"0123456789")
            os.utime(path, (MTIME, MTIME))
        os.utime(folder, (MTIME, MTIME))
    os.utime(root, (MTIME, MTIME))
    return root


def rsync(source: Path, destination: Path) -> str:
    """``rsync -a --itemize-changes``: one line per item it changed, nothing for a no-op."""
    return run("rsync", "-a", "--itemize-changes", f"{source}/", f"{destination}/").stdout


def heads(counts: dict) -> int:
    return sum(value for name, value in counts.items() if name in HEAD_OPERATIONS)


def test_a_no_op_rsync_of_10000_files_after_a_remount_sends_no_head_per_file(remount, emulator, api, tmp_path):
    """Issue 10: 10,000 objects made through boto3 with the attributes of a local tree. The
    first mount's pass learns them (one HEAD each); after a remount the pass prints nothing
    and sends no HEAD for any file: only a few per directory."""
    directories, per_directory = 10, 1_000
    source = local_tree(tmp_path / "src", directories, per_directory)
    Bucket(emulator).put_many((f"dst/d{directory:02d}/f{number:04d}" for directory in range(directories)
                               for number in range(per_directory)),
                              b"0123456789", file_meta(mode=0o100644, mtime=MTIME), workers=32)
    first = remount("first", shared_cache(tmp_path))
    rsync(source, first.path / "dst")  # sets the directories' times; learns every file
    first.stop()

    second = remount("second", shared_cache(tmp_path))
    emulator.admin("stats/reset")
    changes = rsync(source, second.path / "dst")
    counts = settled_stats(emulator)

    print(f"\nno-op rsync of {directories * per_directory} files after a remount, api={api}: {counts}")
    assert changes == ""
    assert heads(counts) <= HEADS_PER_DIRECTORY * (directories + 1), counts


def test_a_tree_rsynced_through_the_mount_costs_no_head_per_file_after_a_remount(remount, emulator, api, tmp_path):
    """Files this mount wrote (rsync: a temporary file, its times and mode, a rename) are
    kept with the ETag and size COS answered: the next pass after a remount sends no HEAD
    per file. Before, the mount's own writes dropped their entries: one HEAD each."""
    directories, per_directory = 2, 150
    source = local_tree(tmp_path / "src", directories, per_directory)
    first = remount("first", shared_cache(tmp_path))
    rsync(source, first.path / "dst")
    first.stop()

    second = remount("second", shared_cache(tmp_path))
    emulator.admin("stats/reset")
    changes = rsync(source, second.path / "dst")
    counts = settled_stats(emulator)

    assert changes == ""
    assert heads(counts) <= HEADS_PER_DIRECTORY * (directories + 1), counts
