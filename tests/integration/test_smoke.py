"""A first real mount: write, read, list, remove, with each API."""

from __future__ import annotations

import os


def test_write_read_list_remove(cos):
    target = cos.path / "hello.txt"
    target.write_bytes(b"hello cos")
    assert target.read_bytes() == b"hello cos"
    assert os.listdir(cos.path) == ["hello.txt"]
    assert target.stat().st_size == 9
    target.unlink()
    assert os.listdir(cos.path) == []
