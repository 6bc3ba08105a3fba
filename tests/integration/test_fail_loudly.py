"""The real-mount suite fails, never skips, when this machine cannot mount FUSE.

A skipped mount test proves nothing and looks green in CI; these checks need no mount.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support import mounted

INTEGRATION = Path(__file__).resolve().parent


def without_dev_fuse(monkeypatch):
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: False if str(path) == "/dev/fuse" else real_exists(path))


def test_require_fuse_fails_without_dev_fuse(monkeypatch):
    without_dev_fuse(monkeypatch)

    with pytest.raises(AssertionError, match="/dev/fuse is missing"):
        mounted.require_fuse()


def test_require_fuse_fails_without_fusermount(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)

    with pytest.raises(AssertionError, match="fusermount"):
        mounted.require_fuse()


def test_require_fuse_passes_on_this_machine():
    mounted.require_fuse()


def test_mount_fails_before_starting_anything_without_dev_fuse(monkeypatch, tmp_path):
    without_dev_fuse(monkeypatch)

    with pytest.raises(AssertionError, match="FUSE is unavailable"):
        mounted.mount(emulator=None, workdir=tmp_path)

    assert list(tmp_path.iterdir()) == []


SKIPPING = re.compile(r"pytest\.skip|importorskip|mark\.skip|mark\.xfail|pytest\.xfail")


def test_no_integration_test_skips_or_xfails():
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(INTEGRATION.glob("*.py")) if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), 1) if SKIPPING.search(line)
    ]

    assert offenders == []
