"""The mount's kernel readahead: found through mountinfo, written to its bdi, never fatal."""

from pathlib import Path

from cosfs.command.kernel_readahead import mount_device, set_read_ahead

MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "40 22 0:39 / /mnt/my\\040bucket rw,nosuid,nodev,relatime shared:2 - fuse.cosfs cosfs#b rw,user_id=0\n"
    "41 22 0:40 / /mnt/other rw,relatime shared:3 - fuse.s3fs s3fs rw\n"
)


def test_the_device_of_a_mount_whose_path_has_a_space(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert mount_device("/mnt/my bucket", info) == "0:39"
    assert mount_device("/mnt/other", info) == "0:40"
    assert mount_device("/", info) is None  # not a FUSE mount


def test_read_ahead_is_written_to_the_mounts_bdi(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    bdi = tmp_path / "bdi"
    (bdi / "0:39").mkdir(parents=True)
    (bdi / "0:39" / "read_ahead_kb").write_text("128")
    assert set_read_ahead("/mnt/my bucket", 1024, mountinfo=info, bdi_root=bdi)
    assert (bdi / "0:39" / "read_ahead_kb").read_text() == "1024"


def test_zero_or_a_missing_device_leaves_the_default(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    bdi = tmp_path / "bdi"
    assert not set_read_ahead("/mnt/my bucket", 0, mountinfo=info, bdi_root=bdi)
    assert not set_read_ahead("/mnt/absent", 1024, mountinfo=info, bdi_root=bdi)
    assert not set_read_ahead("/mnt/my bucket", 1024, mountinfo=info, bdi_root=bdi)  # no such bdi: logged, not raised
