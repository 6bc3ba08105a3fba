"""Fixtures for real-mount tests: an emulator, and cosfs mounted on it with each API."""

from __future__ import annotations

import pytest

from tests.support.mounted import mount


@pytest.fixture(params=["xml", "json"])
def api(request) -> str:
    """Every real-mount test runs once per COS API."""
    return request.param


@pytest.fixture
def cos(emulator, tmp_path, api):
    """The emulator's bucket mounted at ``cos.path`` with ``api``; unmounted afterwards."""
    mounted = mount(emulator, tmp_path, f"api={api}")
    try:
        yield mounted
    finally:
        status = mounted.stop()
        print(f"--- cosfs log (exit status {status}) ---\n{mounted.log()}")


@pytest.fixture
def remount(emulator, tmp_path, api):
    """Mount again (cold caches): ``remount(name)`` returns a new mount of the same bucket."""
    mounts = []

    def make(name: str = "mnt2", options: str = ""):
        mounted = mount(emulator, tmp_path, f"api={api}" + (f",{options}" if options else ""), name=name)
        mounts.append(mounted)
        return mounted

    try:
        yield make
    finally:
        for mounted in mounts:
            mounted.stop()
            print(f"--- cosfs log ({mounted.path}) ---\n{mounted.log()}")

