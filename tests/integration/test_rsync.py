"""rsync into the mount, then again: nothing left to do, because mtime, size and mode survived.

The second run uses ``--itemize-changes``, which prints one line per file it would change
(content, time, permissions, owner) and nothing when the destination already matches.
"""

from __future__ import annotations

import os

from tests.integration.local_tree import make_tree, run


def rsync(source, destination, *extra) -> str:
    return run("rsync", "-a", *extra, f"{source}/", f"{destination}/").stdout


def test_second_rsync_finds_nothing_to_do(cos, tmp_path):
    tree = make_tree(tmp_path / "src")
    rsync(tree, cos.path / "dst")

    changes = rsync(tree, cos.path / "dst", "--itemize-changes")

    assert changes == ""


def test_rsync_copies_content_and_attributes(cos, tmp_path):
    tree = make_tree(tmp_path / "src")

    rsync(tree, cos.path / "dst")

    copied, original = os.lstat(cos.path / "dst" / "sub" / "run.sh"), os.lstat(tree / "sub" / "run.sh")
    assert (copied.st_mode, copied.st_size, copied.st_mtime_ns) == (original.st_mode, original.st_size,
                                                                     original.st_mtime_ns)
    assert run("diff", "-r", "--no-dereference", tree, cos.path / "dst").stdout == ""


def test_second_rsync_after_remount_finds_nothing_to_do(cos, remount, tmp_path):
    tree = make_tree(tmp_path / "src")
    rsync(tree, cos.path / "dst")
    cos.stop()
    fresh = remount("cold")

    changes = rsync(tree, fresh.path / "dst", "--itemize-changes")

    assert changes == ""


def test_rsync_after_a_source_change_updates_only_that_file(cos, tmp_path):
    tree = make_tree(tmp_path / "src")
    rsync(tree, cos.path / "dst")
    (tree / "a.txt").write_text("changed\n")

    changes = rsync(tree, cos.path / "dst", "--itemize-changes").splitlines()

    assert [line.split()[-1] for line in changes] == ["a.txt"]
    assert (cos.path / "dst" / "a.txt").read_text() == "changed\n"
