"""``mount -t fuse.cosfs`` (and so fstab) through mount.fuse3, with the options mount(8) and systemd add."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.mounted import require_fuse, unmount, wait_until, write_passwd
from tests.system.test_systemd import wrapper

INSTALLED = Path("/usr/local/bin/cosfs")


@pytest.fixture
def cosfs_installed(tmp_path):
    """``cosfs`` where mount.fuse3 looks for it (/usr/local/bin), for this test only."""
    backup = INSTALLED.with_name("cosfs.before-cosfs-test")
    if INSTALLED.exists() or INSTALLED.is_symlink():
        INSTALLED.rename(backup)
    INSTALLED.symlink_to(wrapper(tmp_path, "cosfs"))
    try:
        yield INSTALLED
    finally:
        INSTALLED.unlink()
        if backup.exists() or backup.is_symlink():
            backup.rename(INSTALLED)


def test_mount_t_fuse_cosfs_accepts_fstab_and_systemd_options(emulator, tmp_path, cosfs_installed):
    require_fuse()
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    passwd = write_passwd(tmp_path, emulator)
    options = (f"_netdev,noauto,nofail,x-systemd.automount,x-systemd.mount-timeout=30,"
               f"endpoint={emulator.url},passwd_file={passwd},cache_dir={tmp_path / 'cache'},ensure_diskfree=0")
    result = subprocess.run(["mount", "-t", "fuse.cosfs", emulator.bucket, str(mountpoint), "-o", options],
                            capture_output=True, text=True, timeout=60)
    try:
        assert result.returncode == 0, result.stderr
        wait_until(lambda: os.path.ismount(mountpoint), timeout=10, what="the mount")
        (mountpoint / "via-fstab.txt").write_text("mounted by mount(8)")
        assert (mountpoint / "via-fstab.txt").read_text() == "mounted by mount(8)"
        entry = [line for line in Path("/proc/mounts").read_text().splitlines() if str(mountpoint) in line]
        assert entry and entry[0].split()[2] == "fuse.cosfs"
    finally:
        unmount(mountpoint)
    assert not os.path.ismount(mountpoint)
