"""Every FUSE operation cosfs implements, through ``os.*`` calls on a real mount, with each API.

Each test does one operation and checks what a program would see, and where it matters what
is stored in COS (read with boto3, behind the mount's back).
"""

from __future__ import annotations

import gzip
import os
import stat

from tests.integration.bucket import Bucket
from tests.support.mounted import wait_until


def test_getattr_of_a_written_file(cos):
    (cos.path / "f").write_bytes(b"12345")

    info = os.stat(cos.path / "f")

    assert stat.S_ISREG(info.st_mode) and info.st_size == 5


def test_getattr_of_the_root_is_a_directory(cos):
    assert stat.S_ISDIR(os.stat(cos.path).st_mode)


def test_readdir_lists_files_and_directories(cos):
    (cos.path / "d").mkdir()
    (cos.path / "f").write_bytes(b"")
    (cos.path / "d" / "inner").write_bytes(b"")

    assert sorted(os.listdir(cos.path)) == ["d", "f"]
    assert os.listdir(cos.path / "d") == ["inner"]


def test_readdir_reports_entry_types(cos):
    (cos.path / "d").mkdir()
    (cos.path / "f").write_bytes(b"")

    kinds = {entry.name: entry.is_dir() for entry in os.scandir(cos.path)}

    assert kinds == {"d": True, "f": False}


def test_readdir_entry_types_are_right_after_a_directory_rename(cos):
    """After a rename the moved entries' attributes are not cached, so readdir must not guess.

    ``os.scandir``/``os.walk``/``shutil.rmtree`` trust d_type: a file reported as a
    directory makes them fail.
    """
    (cos.path / "d" / "a_sub").mkdir(parents=True)
    (cos.path / "d" / "b_file").write_bytes(b"x")
    os.rename(cos.path / "d", cos.path / "e")

    kinds = {entry.name: entry.is_dir(follow_symlinks=False) for entry in os.scandir(cos.path / "e")}

    assert kinds == {"a_sub": True, "b_file": False}


def test_mkdir_stores_a_directory_marker(cos, emulator):
    os.mkdir(cos.path / "d", 0o750)

    assert stat.S_ISDIR(os.stat(cos.path / "d").st_mode)
    assert Bucket(emulator).exists("d/")


def test_rmdir_removes_an_empty_directory(cos, emulator):
    os.mkdir(cos.path / "d")

    os.rmdir(cos.path / "d")

    assert not os.path.exists(cos.path / "d")
    assert Bucket(emulator).keys() == []


def test_create_with_o_creat_makes_an_empty_file(cos, emulator):
    """SEMANTICS.md: a file left empty (created, nothing written) is stored at its last close,
    the release the kernel sends right after ``close()`` returns, never ahead of its data."""
    fd = os.open(cos.path / "new", os.O_CREAT | os.O_WRONLY, 0o640)
    os.close(fd)

    assert os.stat(cos.path / "new").st_size == 0
    wait_until(lambda: Bucket(emulator).exists("new"), what="the empty object")
    assert Bucket(emulator).get("new") == b""


def test_open_read_returns_the_written_bytes(cos):
    data = bytes(range(256)) * 1000
    (cos.path / "f").write_bytes(data)

    with open(cos.path / "f", "rb") as handle:
        handle.seek(1000)
        middle = handle.read(5000)

    assert middle == data[1000:6000]


def test_write_at_an_offset_changes_only_those_bytes(cos):
    (cos.path / "f").write_bytes(b"aaaaaaaaaa")

    fd = os.open(cos.path / "f", os.O_WRONLY)
    os.pwrite(fd, b"BBB", 4)
    os.close(fd)

    assert (cos.path / "f").read_bytes() == b"aaaaBBBaaa"


def test_append_mode_writes_at_the_end(cos):
    (cos.path / "f").write_bytes(b"head")

    with open(cos.path / "f", "ab") as handle:
        handle.write(b"-tail")

    assert (cos.path / "f").read_bytes() == b"head-tail"


def test_truncate_by_path_shortens_the_object(cos, emulator):
    (cos.path / "f").write_bytes(b"0123456789")

    os.truncate(cos.path / "f", 3)

    assert (cos.path / "f").read_bytes() == b"012"
    assert Bucket(emulator).get("f") == b"012"


def test_truncate_by_path_extends_with_zeros(cos):
    (cos.path / "f").write_bytes(b"ab")

    os.truncate(cos.path / "f", 5)

    assert (cos.path / "f").read_bytes() == b"ab\0\0\0"


def test_truncate_right_after_close_is_never_lost(cos, emulator):
    """The kernel sends RELEASE after close() has returned, so a truncate by path can
    arrive while the closed file is still being released; it must still be stored."""
    names = [f"f{number:03d}" for number in range(120)]

    for name in names:
        (cos.path / name).write_bytes(b"ab")
        os.truncate(cos.path / name, 5)

    bucket = Bucket(emulator)
    lost = [name for name in names if bucket.get(name) != b"ab\0\0\0"]
    assert lost == []


def test_ftruncate_on_an_open_handle(cos, emulator):
    (cos.path / "f").write_bytes(b"0123456789")
    fd = os.open(cos.path / "f", os.O_RDWR)

    os.ftruncate(fd, 4)
    size_while_open = os.fstat(fd).st_size
    os.close(fd)

    assert size_while_open == 4
    assert Bucket(emulator).get("f") == b"0123"


def test_flush_at_close_stores_the_object(cos, emulator):
    fd = os.open(cos.path / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"flushed")

    os.close(fd)

    assert Bucket(emulator).get("f") == b"flushed"


def test_fsync_stores_the_object_before_close(cos, emulator):
    fd = os.open(cos.path / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"synced")
    try:
        os.fsync(fd)
        stored = Bucket(emulator).get("f")
    finally:
        os.close(fd)

    assert stored == b"synced"


def test_release_after_write_leaves_the_file_readable(cos):
    handle = open(cos.path / "f", "wb")
    handle.write(b"released")
    handle.close()

    assert (cos.path / "f").read_bytes() == b"released"
    assert os.stat(cos.path / "f").st_size == 8


def test_unlink_deletes_the_object(cos, emulator):
    (cos.path / "f").write_bytes(b"x")

    os.unlink(cos.path / "f")

    assert not os.path.exists(cos.path / "f")
    assert not Bucket(emulator).exists("f")


def test_rename_file_moves_the_object(cos, emulator):
    (cos.path / "a").write_bytes(b"content")

    os.rename(cos.path / "a", cos.path / "b")

    assert sorted(os.listdir(cos.path)) == ["b"]
    assert Bucket(emulator).keys() == ["b"] and Bucket(emulator).get("b") == b"content"


def test_rename_onto_an_existing_file_replaces_it(cos):
    (cos.path / "a").write_bytes(b"new")
    (cos.path / "b").write_bytes(b"old, longer content")

    os.rename(cos.path / "a", cos.path / "b")

    assert (cos.path / "b").read_bytes() == b"new"
    assert not os.path.exists(cos.path / "a")


def test_rename_directory_moves_its_content(cos):
    (cos.path / "d" / "sub").mkdir(parents=True)
    (cos.path / "d" / "sub" / "f").write_bytes(b"deep")

    os.rename(cos.path / "d", cos.path / "e")

    assert (cos.path / "e" / "sub" / "f").read_bytes() == b"deep"
    assert not os.path.exists(cos.path / "d")


def test_utimens_sets_the_modification_time(cos):
    (cos.path / "f").write_bytes(b"x")
    when = 1_500_000_000_123_456_789

    os.utime(cos.path / "f", ns=(when, when))

    assert os.stat(cos.path / "f").st_mtime_ns == when


def test_chmod_changes_the_permission_bits(cos):
    (cos.path / "f").write_bytes(b"x")

    os.chmod(cos.path / "f", 0o604)

    assert stat.S_IMODE(os.stat(cos.path / "f").st_mode) == 0o604


def test_chmod_of_a_directory_keeps_it_a_directory(cos):
    (cos.path / "d").mkdir()

    os.chmod(cos.path / "d", 0o711)

    mode = os.stat(cos.path / "d").st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o711


def test_chown_changes_owner_and_group(cos):
    (cos.path / "f").write_bytes(b"x")

    os.chown(cos.path / "f", 1234, 5678)

    info = os.stat(cos.path / "f")
    assert (info.st_uid, info.st_gid) == (1234, 5678)


def test_symlink_and_readlink(cos):
    (cos.path / "target").write_bytes(b"pointed at")

    os.symlink("target", cos.path / "link")

    assert os.readlink(cos.path / "link") == "target"
    assert (cos.path / "link").read_bytes() == b"pointed at"


def test_statfs_reports_usable_numbers(cos):
    info = os.statvfs(cos.path)

    assert info.f_bsize > 0 and info.f_blocks > 0 and info.f_bavail > 0
    assert info.f_namemax >= 255


def test_access_answers_for_existing_and_missing_paths(cos):
    (cos.path / "f").write_bytes(b"x")

    assert os.access(cos.path / "f", os.R_OK | os.W_OK)
    assert not os.access(cos.path / "missing", os.F_OK)


def test_a_file_stored_with_content_encoding_gzip_reads_as_its_stored_bytes(cos, emulator):
    """docs/SEMANTICS.md: "A file reads as the bytes COS stores, whatever `Content-Encoding`
    another tool stored it with: nothing is decompressed, so its size and its bytes agree"."""
    stored = gzip.compress(os.urandom(64 * 1024))
    Bucket(emulator).client.put_object(Bucket=emulator.bucket, Key="logs.gz", Body=stored, ContentEncoding="gzip")

    with open(cos.path / "logs.gz", "rb") as file:
        file.seek(40_000)
        middle = file.read(500)
        file.seek(0)
        whole = file.read()

    assert os.stat(cos.path / "logs.gz").st_size == len(stored)
    assert middle == stored[40_000:40_500] and whole == stored
