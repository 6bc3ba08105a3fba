"""A directory of 2,500 entries is listed completely: the listing crosses XML's 1,000-key
and JSON's 199-entry pages."""

from __future__ import annotations

import os
import subprocess

from tests.integration.bucket import Bucket

COUNT = 2_500


def names(count: int = COUNT) -> list:
    return [f"f{number:05d}" for number in range(count)]


def test_listdir_returns_every_entry_of_a_2500_entry_directory(cos, emulator):
    Bucket(emulator).put_many(f"big/{name}" for name in names())

    listed = os.listdir(cos.path / "big")

    assert len(listed) == COUNT
    assert sorted(listed) == names()


def test_ls_counts_every_entry_including_subdirectories(cos, emulator):
    bucket = Bucket(emulator)
    bucket.put_many([f"big/{name}" for name in names()] + [f"big/sub{number}/x" for number in range(5)])

    shown = subprocess.run(["ls", "-1", cos.path / "big"], capture_output=True, text=True, check=True)

    assert len(shown.stdout.splitlines()) == COUNT + 5

