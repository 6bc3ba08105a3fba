"""Attributes survive an unmount and a remount (they live in COS metadata), and symlinks work.

Every "after remount" test unmounts first, then mounts the same bucket again with cold
caches, so what it sees was read back from COS.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time

from tests.integration.bucket import Bucket
from tests.integration.local_tree import run
from tests.support.mounted import wait_until


def remounted(cos, remount):
    cos.stop()
    return remount("again").path


def test_chmod_is_visible_after_remount(cos, remount):
    (cos.path / "f").write_bytes(b"x")
    os.chmod(cos.path / "f", 0o751)

    mode = os.stat(remounted(cos, remount) / "f").st_mode

    assert mode == stat.S_IFREG | 0o751


def test_chmod_of_a_directory_is_visible_after_remount(cos, remount):
    (cos.path / "d").mkdir()
    os.chmod(cos.path / "d", 0o700)

    mode = os.stat(remounted(cos, remount) / "d").st_mode

    assert mode == stat.S_IFDIR | 0o700


def test_chown_is_visible_after_remount(cos, remount):
    (cos.path / "f").write_bytes(b"x")
    os.chown(cos.path / "f", 4321, 8765)

    info = os.stat(remounted(cos, remount) / "f")

    assert (info.st_uid, info.st_gid) == (4321, 8765)


def test_touch_d_is_visible_after_remount(cos, remount, tmp_path):
    (cos.path / "f").write_bytes(b"x")
    (tmp_path / "reference").write_bytes(b"")
    run("touch", "-d", "2020-01-02 03:04:05", cos.path / "f", tmp_path / "reference")

    mtime = os.stat(remounted(cos, remount) / "f").st_mtime_ns

    assert mtime == os.stat(tmp_path / "reference").st_mtime_ns


def test_touch_d_is_visible_at_once(cos, tmp_path):
    """GNU touch opens the file and sets the times through the descriptor (futimens)."""
    (cos.path / "f").write_bytes(b"x")
    (tmp_path / "reference").write_bytes(b"")
    run("touch", "-d", "2020-01-02 03:04:05", tmp_path / "reference")

    run("touch", "-d", "2020-01-02 03:04:05", cos.path / "f")

    assert os.stat(cos.path / "f").st_mtime_ns == os.stat(tmp_path / "reference").st_mtime_ns


def test_chmod_of_a_file_open_for_reading_is_visible_at_once(cos):
    (cos.path / "f").write_bytes(b"x")
    fd = os.open(cos.path / "f", os.O_RDONLY)
    try:
        os.chmod(cos.path / "f", 0o600)
        mode = os.stat(cos.path / "f").st_mode
    finally:
        os.close(fd)

    assert mode == stat.S_IFREG | 0o600


def test_touch_m_d_sets_the_mtime(cos, tmp_path):
    """SEMANTICS.md: "``touch -m -d`` works only through libfuse 3 (the default)"."""
    (cos.path / "f").write_bytes(b"x")
    (tmp_path / "reference").write_bytes(b"")
    run("touch", "-d", "2020-01-02 03:04:05", tmp_path / "reference")

    run("touch", "-m", "-d", "2020-01-02 03:04:05", cos.path / "f")

    expected = os.stat(tmp_path / "reference").st_mtime_ns
    wait_until(lambda: os.stat(cos.path / "f").st_mtime_ns == expected, 5.0, what="the mtime of touch -m -d")


def test_nanosecond_mtime_is_visible_after_remount(cos, remount):
    (cos.path / "f").write_bytes(b"x")
    os.utime(cos.path / "f", ns=(1_500_000_000_987_654_321, 1_500_000_000_987_654_321))

    mtime = os.stat(remounted(cos, remount) / "f").st_mtime_ns

    assert mtime == 1_500_000_000_987_654_321


def test_whole_second_mtime_replaces_earlier_nanoseconds_after_remount(cos, remount):
    """A file's first mtime (its creation time) has nanoseconds; ``touch -d`` / rsync then set
    whole seconds, and the old nanoseconds must not come back."""
    (cos.path / "f").write_bytes(b"x")
    os.utime(cos.path / "f", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    os.utime(cos.path / "f", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

    mtime = os.stat(remounted(cos, remount) / "f").st_mtime_ns

    assert mtime == 1_600_000_000_000_000_000


def test_attributes_are_stored_cosfs_style(cos, emulator):
    """The changes of a file just written are held for ``metadata_delay`` (1 s), then
    applied: "one copy of the object onto itself applies it when the delay ends"."""
    (cos.path / "f").write_bytes(b"x")
    os.chmod(cos.path / "f", 0o640)
    os.chown(cos.path / "f", 12, 34)
    os.utime(cos.path / "f", (1_600_000_000, 1_600_000_000))
    wanted = (str(0o100640), "12", "34", "1600000000")

    def stored():
        meta = Bucket(emulator).head("f")["Metadata"]
        return (meta["mode"], meta["uid"], meta["gid"], meta["mtime"]) == wanted

    wait_until(stored, timeout=10, interval=0.2, what="the held metadata change to reach COS")


def test_symlink_is_a_link_after_remount(cos, remount):
    (cos.path / "target").write_bytes(b"through the link")
    os.symlink("target", cos.path / "link")

    again = remounted(cos, remount)

    assert os.path.islink(again / "link") and os.readlink(again / "link") == "target"
    assert (again / "link").read_bytes() == b"through the link"


def test_ls_l_shows_the_link_target(cos):
    (cos.path / "target").write_bytes(b"")
    os.symlink("target", cos.path / "link")

    shown = subprocess.run(["ls", "-l", cos.path], capture_output=True, text=True, check=True).stdout

    line = next(line for line in shown.splitlines() if " link" in line)
    assert line.startswith("l") and line.endswith("link -> target")


def test_symlink_into_a_subdirectory_reads_through(cos):
    (cos.path / "d" / "e").mkdir(parents=True)
    (cos.path / "d" / "e" / "f").write_bytes(b"deep")

    os.symlink("d/e/f", cos.path / "shortcut")

    assert (cos.path / "shortcut").read_bytes() == b"deep"


def test_dangling_symlink_exists_as_a_link_only(cos):
    os.symlink("nowhere/at/all", cos.path / "dangling")

    assert os.path.islink(cos.path / "dangling")
    assert os.readlink(cos.path / "dangling") == "nowhere/at/all"
    assert not os.path.exists(cos.path / "dangling")
    assert os.listdir(cos.path) == ["dangling"]


def test_dangling_symlink_after_remount_in_ls_l(cos, remount):
    os.symlink("../outside", cos.path / "dangling")

    shown = run("ls", "-l", remounted(cos, remount)).stdout

    assert "dangling -> ../outside" in shown


def test_symlink_with_an_absolute_target(cos, tmp_path):
    (tmp_path / "local").write_bytes(b"on local disk")

    os.symlink(tmp_path / "local", cos.path / "abs")

    assert os.readlink(cos.path / "abs") == str(tmp_path / "local")
    assert (cos.path / "abs").read_bytes() == b"on local disk"


def test_unlink_of_a_symlink_keeps_its_target(cos):
    (cos.path / "target").write_bytes(b"kept")
    os.symlink("target", cos.path / "link")

    os.unlink(cos.path / "link")

    assert os.listdir(cos.path) == ["target"]
    assert (cos.path / "target").read_bytes() == b"kept"


def test_a_directory_without_a_marker_shows_the_mount_time_not_1970(emulator, remount):
    """SEMANTICS.md: "A directory without a marker has no time in COS: it (and the mount's
    root) shows the time the mount started, the same at every lookup" (other tools write
    ``photos/2024/a.jpg`` and no ``photos/`` object; it showed 1970)."""
    Bucket(emulator).put_many(["photos/2024/a.jpg", "photos/2024/b.jpg"], b"jpeg")
    before = time.time_ns()

    mounted = remount("fresh").path
    after = time.time_ns()

    alone = os.stat(mounted / "photos")
    listed = os.stat(mounted / "photos" / os.listdir(mounted / "photos")[0])
    root = os.stat(mounted)
    for found in (alone, listed, root):
        assert stat.S_ISDIR(found.st_mode)
        assert before - 10**9 <= found.st_mtime_ns <= after, found
    assert os.stat(mounted).st_mtime_ns == root.st_mtime_ns
