"""POSIX times, link counts, names and the mount root, on a real mount with each API.

The promises are docs/SEMANTICS.md's "Times, link counts, names and the root" section.
Times are compared after setting an old mtime with ``utime`` first, so "changed" is "later
than 2001", never a race with the clock, and no test sleeps.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

OLD_NS = 1_000_000_000 * 10**9  # 9 September 2001
LONG_NAME = "n" * 256  # one byte over NAME_MAX


def _aged(path) -> os.stat_result:
    """Set ``path``'s mtime (and atime) to 2001; its attributes after."""
    os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)
    return os.stat(path, follow_symlinks=False)


@pytest.mark.parametrize("operation", ["create", "unlink", "mkdir", "rmdir", "rename", "symlink"])
def test_parent_directory_times_change_with_its_entries(cos, operation):
    """SEMANTICS: "A directory's mtime and ctime change when an entry is added to it, removed
    from it or renamed within it (create, mkdir, mknod, symlink, unlink, rmdir, rename)." """
    parent = cos.path / "d"
    parent.mkdir()
    (parent / "file").write_bytes(b"x")
    (parent / "sub").mkdir()
    before = _aged(parent)
    assert before.st_mtime_ns == OLD_NS

    if operation == "create":
        (parent / "new").write_bytes(b"")
    elif operation == "unlink":
        os.unlink(parent / "file")
    elif operation == "mkdir":
        os.mkdir(parent / "newdir")
    elif operation == "rmdir":
        os.rmdir(parent / "sub")
    elif operation == "rename":
        os.rename(parent / "file", parent / "renamed")
    else:
        os.symlink("file", parent / "link")

    after = os.stat(parent)
    assert after.st_mtime_ns > OLD_NS
    assert after.st_ctime_ns >= after.st_mtime_ns


def test_rename_between_directories_changes_both(cos):
    """SEMANTICS: "A rename changes the times of the directory it leaves and of the one it
    enters." """
    (cos.path / "a").mkdir()
    (cos.path / "b").mkdir()
    (cos.path / "a" / "f").write_bytes(b"x")
    _aged(cos.path / "a")
    _aged(cos.path / "b")

    os.rename(cos.path / "a" / "f", cos.path / "b" / "f")

    assert os.stat(cos.path / "a").st_mtime_ns > OLD_NS
    assert os.stat(cos.path / "b").st_mtime_ns > OLD_NS


def test_directory_times_from_entry_changes_are_not_stored(cos, remount):
    """SEMANTICS: "These directory times are kept in memory for the mount's lifetime and not
    stored: after a remount a directory shows the time its marker holds." """
    parent = cos.path / "d"
    parent.mkdir()
    _aged(parent)  # stored on the marker
    (parent / "f").write_bytes(b"x")
    assert os.stat(parent).st_mtime_ns > OLD_NS
    cos.stop()

    again = remount()

    assert os.stat(again.path / "d").st_mtime_ns == OLD_NS


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_chmod_changes_ctime_but_not_mtime_and_both_survive_a_remount(cos, remount, kind):
    """SEMANTICS: "chmod, chown, utimens and extended attribute changes set ctime to now and
    store it (``x-cos-meta-ctime``, s3fs's name); they leave mtime as it is." """
    path = cos.path / "x"
    if kind == "dir":
        path.mkdir()
    else:
        path.write_bytes(b"data")
    before = _aged(path)

    os.chmod(path, 0o700)

    after = os.stat(path)
    assert after.st_mtime_ns == OLD_NS
    assert after.st_ctime_ns > before.st_ctime_ns
    cos.stop()  # a file's metadata change may be held (metadata_delay): stored by the unmount
    stored = os.stat(remount().path / "x")
    assert (stored.st_mtime_ns, stored.st_ctime_ns, stored.st_mode & 0o777) == (OLD_NS, after.st_ctime_ns, 0o700)


def test_a_write_moves_ctime_with_mtime(cos):
    """SEMANTICS: "A write changes mtime, and ctime is never shown earlier than mtime." """
    path = cos.path / "f"
    path.write_bytes(b"one")
    _aged(path)

    path.write_bytes(b"two")

    after = os.stat(path)
    assert after.st_mtime_ns > OLD_NS and after.st_ctime_ns >= after.st_mtime_ns


def test_utimensat_atime_reads_back_after_a_remount(cos, remount):
    """SEMANTICS: "An atime set by utimensat is stored (``x-cos-meta-atime``) and read back;
    reads never change it (noatime), and an object without one shows its mtime as atime." """
    path = cos.path / "f"
    path.write_bytes(b"x")
    atime_ns, mtime_ns = 1_900_000_000 * 10**9 + 123, 1_950_000_000 * 10**9 + 456
    os.utime(path, ns=(atime_ns, mtime_ns))
    untouched = cos.path / "g"
    untouched.write_bytes(b"y")
    cos.stop()  # stores what metadata_delay holds

    again = remount()

    assert (os.stat(again.path / "f").st_atime_ns, os.stat(again.path / "f").st_mtime_ns) == (atime_ns, mtime_ns)
    plain = os.stat(again.path / "g")
    assert plain.st_atime_ns == plain.st_mtime_ns
    (again.path / "f").read_bytes()
    assert os.stat(again.path / "f").st_atime_ns == atime_ns


def test_directory_link_count_counts_subdirectories(cos):
    """SEMANTICS: "A directory's link count is 2 plus its subdirectories while its listing is
    cached (2 otherwise); a file's is 1." """
    top = cos.path / "d"
    top.mkdir()
    assert os.stat(top).st_nlink == 2

    (top / "a").mkdir()
    (top / "b").mkdir()
    (top / "file").write_bytes(b"")
    assert os.stat(top).st_nlink == 4

    os.rmdir(top / "a")
    assert os.stat(top).st_nlink == 3
    assert os.stat(top / "file").st_nlink == 1


def test_touch_chmod_and_chown_of_the_mount_root(cos):
    """SEMANTICS: "The mount root accepts chmod, chown and utimens (``touch MOUNT``); they
    are held in memory for the mount's lifetime: the root has no object to store them on." """
    result = subprocess.run(["touch", str(cos.path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    os.chmod(cos.path, 0o750)
    os.chown(cos.path, 1234, 5678)
    os.utime(cos.path, ns=(OLD_NS, OLD_NS))

    root = os.stat(cos.path)
    assert (root.st_mode & 0o7777, root.st_uid, root.st_gid, root.st_mtime_ns) == (0o750, 1234, 5678, OLD_NS)


@pytest.mark.parametrize("operation", ["create", "mkdir", "rename", "symlink", "stat"])
def test_a_name_over_255_bytes_is_enametoolong(cos, operation):
    """SEMANTICS: "A name over 255 bytes, or a path whose key would exceed COS's 850 bytes, is
    ENAMETOOLONG wherever it appears: create, mkdir, mknod, symlink, rename's target and
    lookups." """
    (cos.path / "f").write_bytes(b"x")
    target = cos.path / LONG_NAME
    calls = {
        "create": lambda: os.open(target, os.O_CREAT | os.O_WRONLY, 0o644),
        "mkdir": lambda: os.mkdir(target),
        "rename": lambda: os.rename(cos.path / "f", target),
        "symlink": lambda: os.symlink("f", target),
        "stat": lambda: os.stat(target),
    }

    with pytest.raises(OSError) as raised:
        calls[operation]()

    assert raised.value.errno == errno.ENAMETOOLONG
    assert sorted(os.listdir(cos.path)) == ["f"]


def test_a_path_over_the_key_limit_is_enametoolong(cos):
    """SEMANTICS (as above): components of 250 bytes each, the fourth level makes a key of
    over 850 bytes."""
    deep = cos.path
    for level in range(3):
        deep = deep / (str(level) * 250)
        deep.mkdir()

    for call in (lambda: os.mkdir(deep / ("3" * 250)), lambda: os.stat(deep / ("3" * 250)),
                 lambda: os.open(deep / ("3" * 250), os.O_CREAT | os.O_WRONLY, 0o644)):
        with pytest.raises(OSError) as raised:
            call()
        assert raised.value.errno == errno.ENAMETOOLONG
