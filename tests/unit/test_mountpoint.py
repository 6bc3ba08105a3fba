"""``check_mountpoint``: every unusable mountpoint is one line saying what to do."""

from __future__ import annotations

import errno
import os

import pytest

from cosfs.command.cli import check_mountpoint
from cosfs.wire.errors import ConfigError


def message_for(path, nonempty: bool = False) -> str:
    with pytest.raises(ConfigError) as raised:
        check_mountpoint(str(path), nonempty)
    return str(raised.value)


@pytest.mark.parametrize("code", [errno.ENOTCONN, errno.ECONNABORTED])
def test_a_dead_fuse_mount_is_named_with_the_unmount_command(tmp_path, monkeypatch, code):
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path) == str(tmp_path):
            raise OSError(code, os.strerror(code))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)

    text = message_for(tmp_path)

    assert text == (f"{tmp_path} is a stale mount: the process that served it has died ({os.strerror(code)}); "
                    f"unmount it with fusermount3 -u {tmp_path}, then mount again")


def test_a_missing_directory_is_named_with_mkdir(tmp_path):
    missing = tmp_path / "nope"
    assert message_for(missing) == f"mountpoint {missing} does not exist: create it with mkdir -p {missing}"


def test_a_file_and_a_non_empty_directory(tmp_path):
    (tmp_path / "file").write_text("")
    assert message_for(tmp_path / "file") == f"mountpoint {tmp_path / 'file'} is not a directory"
    assert "is not empty" in message_for(tmp_path)
    assert check_mountpoint(str(tmp_path), nonempty=True) == str(tmp_path)
