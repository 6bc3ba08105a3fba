"""Fixtures for real-mount tests: an emulator, and cosfs mounted on it with each API.

Each mount's log is checked when the fixture stops it (``Mount.stop``): a SecretKey or a
signature in it fails the test, whatever the test was about.
"""

from __future__ import annotations

import pytest

from tests.support.mounted import mount


@pytest.fixture(params=["xml", "json"])
def api(request) -> str:
    """Every real-mount test runs once per COS API."""
    return request.param


def stop_and_show(mounted) -> None:
    """Stop ``mounted`` (which checks its log for secrets) and print its log either way."""
    try:
        mounted.stop()
    finally:
        print(f"--- cosfs log ({mounted.path}, exit status {mounted.process.returncode}) ---\n{mounted.log()}")


@pytest.fixture
def cos(emulator, tmp_path, api):
    """The emulator's bucket mounted at ``cos.path`` with ``api``; unmounted afterwards."""
    mounted = mount(emulator, tmp_path, f"api={api}")
    try:
        yield mounted
    finally:
        stop_and_show(mounted)


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
        failures = []
        for mounted in mounts:
            try:
                stop_and_show(mounted)
            except AssertionError as failure:
                failures.append(failure)
        if failures:
            raise failures[0]
