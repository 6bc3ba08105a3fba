"""The fallback binding: plain fusepy on libfuse2 (``COSFS_FUSE_BINDING=fusepy``), smoke subset.

One mount (api=xml) and the everyday operations through it; the mount's log must say it
runs on fusepy, else this would silently test mfusepy again.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.integration.bucket import Bucket
from tests.support.mounted import mount


@pytest.fixture
def fusepy_mount(emulator, tmp_path):
    mounted = mount(emulator, tmp_path, "api=xml", name="mnt-fusepy", env={"COSFS_FUSE_BINDING": "fusepy"})
    try:
        yield mounted
    finally:
        status = mounted.stop()
        print(f"--- cosfs log (exit status {status}) ---\n{mounted.log()}")


def test_the_mount_runs_on_fusepy_and_libfuse2(fusepy_mount):
    assert "with fusepy" in fusepy_mount.log() and "libfuse 2" in fusepy_mount.log()


def test_write_then_read(fusepy_mount, emulator):
    data = os.urandom(200_000)

    (fusepy_mount.path / "f.bin").write_bytes(data)

    assert (fusepy_mount.path / "f.bin").read_bytes() == data
    assert Bucket(emulator).get("f.bin") == data


def test_mkdir_and_listdir(fusepy_mount):
    (fusepy_mount.path / "d").mkdir()
    (fusepy_mount.path / "d" / "inner").write_bytes(b"x")
    (fusepy_mount.path / "top").write_bytes(b"y")

    assert sorted(os.listdir(fusepy_mount.path)) == ["d", "top"]
    assert os.listdir(fusepy_mount.path / "d") == ["inner"]
    assert {entry.name: entry.is_dir() for entry in os.scandir(fusepy_mount.path)} == {"d": True, "top": False}


def test_rename(fusepy_mount):
    (fusepy_mount.path / "a").write_bytes(b"moved")

    os.rename(fusepy_mount.path / "a", fusepy_mount.path / "b")

    assert os.listdir(fusepy_mount.path) == ["b"]
    assert (fusepy_mount.path / "b").read_bytes() == b"moved"


def test_unlink(fusepy_mount, emulator):
    (fusepy_mount.path / "f").write_bytes(b"x")

    os.unlink(fusepy_mount.path / "f")

    assert os.listdir(fusepy_mount.path) == []
    assert Bucket(emulator).keys() == []


def test_chmod(fusepy_mount):
    (fusepy_mount.path / "f").write_bytes(b"x")

    os.chmod(fusepy_mount.path / "f", 0o600)

    assert os.stat(fusepy_mount.path / "f").st_mode == stat.S_IFREG | 0o600


def test_utime_with_nanoseconds(fusepy_mount):
    (fusepy_mount.path / "f").write_bytes(b"x")

    os.utime(fusepy_mount.path / "f", ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))

    assert os.stat(fusepy_mount.path / "f").st_mtime_ns == 1_500_000_000_123_456_789
