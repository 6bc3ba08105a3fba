"""The errno each failing operation reports through a real mount, with each API.

The expected values are what Linux filesystems answer (ext4/tmpfs), so programs that test
errno (``mkdir -p``, ``rm -r``, ``cp``, ``rsync``) behave as they do on a local disk.
"""

from __future__ import annotations

import errno
import os

import pytest


def errno_of(call, *args) -> int:
    with pytest.raises(OSError) as failure:
        call(*args)
    return failure.value.errno


def test_stat_of_a_missing_path_is_enoent(cos):
    assert errno_of(os.stat, cos.path / "missing") == errno.ENOENT


def test_open_of_a_missing_file_is_enoent(cos):
    assert errno_of(os.open, cos.path / "missing", os.O_RDONLY) == errno.ENOENT


def test_unlink_of_a_missing_file_is_enoent(cos):
    assert errno_of(os.unlink, cos.path / "missing") == errno.ENOENT


def test_create_under_a_missing_directory_is_enoent(cos):
    assert errno_of(os.open, cos.path / "no" / "f", os.O_CREAT | os.O_WRONLY) == errno.ENOENT


def test_exclusive_create_of_an_existing_file_is_eexist(cos):
    (cos.path / "f").write_bytes(b"keep")

    code = errno_of(os.open, cos.path / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)

    assert code == errno.EEXIST
    assert (cos.path / "f").read_bytes() == b"keep"


def test_mkdir_of_an_existing_directory_is_eexist(cos):
    (cos.path / "d").mkdir()

    assert errno_of(os.mkdir, cos.path / "d") == errno.EEXIST


def test_mkdir_over_an_existing_file_is_eexist(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.mkdir, cos.path / "f") == errno.EEXIST


def test_rmdir_of_a_non_empty_directory_is_enotempty(cos):
    (cos.path / "d").mkdir()
    (cos.path / "d" / "f").write_bytes(b"")

    code = errno_of(os.rmdir, cos.path / "d")

    assert code == errno.ENOTEMPTY
    assert (cos.path / "d" / "f").exists()


def test_rename_directory_onto_a_non_empty_directory_is_enotempty(cos):
    (cos.path / "src").mkdir()
    (cos.path / "dst").mkdir()
    (cos.path / "dst" / "f").write_bytes(b"")

    code = errno_of(os.rename, cos.path / "src", cos.path / "dst")

    assert code == errno.ENOTEMPTY
    assert (cos.path / "src").is_dir() and (cos.path / "dst" / "f").exists()


def test_rename_directory_onto_an_empty_directory_replaces_it(cos):
    (cos.path / "src").mkdir()
    (cos.path / "src" / "f").write_bytes(b"moved")
    (cos.path / "dst").mkdir()

    os.rename(cos.path / "src", cos.path / "dst")

    assert (cos.path / "dst" / "f").read_bytes() == b"moved"
    assert not (cos.path / "src").exists()


def test_rename_directory_onto_a_file_is_enotdir(cos):
    (cos.path / "d").mkdir()
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.rename, cos.path / "d", cos.path / "f") == errno.ENOTDIR


def test_rename_file_onto_a_directory_is_eisdir(cos):
    (cos.path / "d").mkdir()
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.rename, cos.path / "f", cos.path / "d") == errno.EISDIR


def test_mkdir_under_a_file_is_enotdir(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.mkdir, cos.path / "f" / "sub") == errno.ENOTDIR


def test_rmdir_of_a_file_is_enotdir(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.rmdir, cos.path / "f") == errno.ENOTDIR


def test_open_a_directory_for_writing_is_eisdir(cos):
    (cos.path / "d").mkdir()

    assert errno_of(os.open, cos.path / "d", os.O_WRONLY) == errno.EISDIR


def test_unlink_of_a_directory_is_eisdir_or_eperm(cos):
    (cos.path / "d").mkdir()

    code = errno_of(os.unlink, cos.path / "d")

    assert code in (errno.EISDIR, errno.EPERM)
    assert (cos.path / "d").is_dir()


def test_hard_link_is_eperm(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.link, cos.path / "f", cos.path / "hard") == errno.EPERM


def test_readlink_of_a_regular_file_is_einval(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.readlink, cos.path / "f") == errno.EINVAL


def test_symlink_over_an_existing_name_is_eexist(cos):
    (cos.path / "f").write_bytes(b"")

    assert errno_of(os.symlink, "elsewhere", cos.path / "f") == errno.EEXIST


def test_rmdir_of_a_missing_directory_is_enoent(cos):
    assert errno_of(os.rmdir, cos.path / "missing") == errno.ENOENT


def test_a_name_over_255_bytes_is_enametoolong_even_with_the_listing_cached(cos):
    """SEMANTICS.md: "A name may have 255 bytes, a whole key 850 (ENAMETOOLONG beyond)",
    answered at once, before any cache (a cached listing used to answer ENOENT)."""
    os.listdir(cos.path)
    long_name = cos.path / ("n" * 256)
    for call in (os.stat, os.mkdir, lambda p: open(p, "w")):
        with pytest.raises(OSError) as raised:
            call(long_name)
        assert raised.value.errno == errno.ENAMETOOLONG


def test_a_key_over_850_bytes_is_enametoolong(cos):
    deep = cos.path
    for _ in range(3):
        deep = deep / ("k" * 250)
        deep.mkdir()
    os.listdir(deep)
    too_long = deep / ("k" * 250)
    for call in (os.stat, os.mkdir, lambda p: os.symlink("target", p), lambda p: open(p, "w")):
        with pytest.raises(OSError) as raised:
            call(too_long)
        assert raised.value.errno == errno.ENAMETOOLONG
    (cos.path / "short").write_bytes(b"x")
    with pytest.raises(OSError) as raised:
        os.rename(cos.path / "short", too_long)
    assert raised.value.errno == errno.ENAMETOOLONG


def test_a_control_character_in_a_name_is_einval_at_once_without_a_request(cos, emulator):
    """SEMANTICS.md: "A name with a control character (U+0000 to U+001F, U+007F) fails with
    EINVAL at once, for every operation, without a request" (COS refuses such keys; the
    error used to come at close, after the name was listed)."""
    (cos.path / "ok.txt").write_text("x")
    assert os.listdir(cos.path) == ["ok.txt"]
    emulator.admin("stats/reset")
    makers = {
        "create": lambda p: open(p, "w"),
        "mkdir": os.mkdir,
        "symlink": lambda p: os.symlink("ok.txt", p),
        "mknod": os.mkfifo,
        "rename": lambda p: os.rename(cos.path / "ok.txt", p),
        "stat": os.stat,
    }
    for name in ("tab\there", "line\nfeed", "esc\x1b[1m", "del\x7f"):
        for what, make in makers.items():
            assert errno_of(make, cos.path / name) == errno.EINVAL, (what, name)

    assert emulator.stats() == {}, "a refused name cost a request"
    assert os.listdir(cos.path) == ["ok.txt"]
