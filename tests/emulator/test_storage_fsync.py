"""``--no-fsync``: the emulator skips fsync (tests, benchmarks), and by default it does not."""

from __future__ import annotations

import os

import pytest

from cosfs.emulator import storage as storage_module
from cosfs.emulator.storage import Storage


@pytest.mark.parametrize("fsync, expected", [(True, 2), (False, 0)])
def test_a_put_fsyncs_its_body_and_directory_unless_told_not_to(tmp_path, monkeypatch, fsync, expected):
    store = Storage(tmp_path / "root", fsync=fsync)
    synced = []
    monkeypatch.setattr(storage_module.os, "fsync", lambda fd: synced.append(fd))

    store.put("b-1250000000", "k", store.receive([b"data"]))
    reopened = Storage(tmp_path / "root")

    assert len(synced) == expected
    assert reopened.head("b-1250000000", "k").size == 4
    assert os.listdir(tmp_path / "root" / "tmp") == []
