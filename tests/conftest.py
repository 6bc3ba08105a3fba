"""Shared fixtures: a cosfs-emulator child process per test, on a free port and a temporary root."""

from __future__ import annotations

import pytest

from tests.support.emulator import RunningEmulator, start_emulator


@pytest.fixture
def emulator(tmp_path) -> RunningEmulator:
    """A fresh emulator (one bucket, fixed credentials) for one test; stopped afterwards."""
    running = start_emulator(tmp_path / "cos-root")
    try:
        yield running
    finally:
        running.stop()
