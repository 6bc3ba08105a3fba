"""What the kernel's own caches spare cosfs, counted with the mount's count of kernel calls
(``cosfs status --json``: ``kernel_calls``) and the emulator's request counters.

SEMANTICS.md: "When cosfs knows an entry's attributes as it reads a directory, it hands
them to the kernel with the name (readdirplus, libfuse 3), and the kernel keeps them for
``stat_cache_ttl``: an ``ls -l`` then makes no call into cosfs per entry."
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.bucket import Bucket, file_meta
from tests.integration.test_attr_cache import ls_l, shared_cache
from tests.integration.test_request_costs import lists_and_others, settled_stats
from tests.support.mounted import child_env

FILES = 500


def kernel_calls(mounted) -> dict:
    """How many calls of each operation the kernel sent the mount so far."""
    answer = subprocess.run([sys.executable, "-m", "cosfs", "status", "--json", str(mounted.path)],
                            capture_output=True, text=True, env=child_env(), timeout=60)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)["kernel_calls"]


def kernel_getattrs(mounted) -> int:
    """How many ``getattr`` (lookups included) the kernel sent the mount so far."""
    return kernel_calls(mounted).get("getattr", 0)


def test_remounted_ls_l_gets_every_entry_with_its_name_and_no_call_per_entry(remount, emulator, api, tmp_path):
    """After a remount the persistent attribute cache knows the unchanged files when the
    directory is read: the kernel takes their attributes with the names, so ``ls -l`` of
    500 files sends no HEAD and makes no ``getattr`` per entry (before readdirplus: 500)."""
    from cosfs.fuse_adapter import binding

    if binding.LIBFUSE_MAJOR < 3:
        pytest.fail(f"readdirplus needs libfuse 3; this run loaded {binding.describe()}")
    Bucket(emulator).put_many((f"big/f{number:04d}" for number in range(FILES)), b"0123456789",
                              file_meta(mode=0o100640, uid=1000, gid=1000), workers=16)
    first = remount("first", shared_cache(tmp_path))
    assert len(ls_l(first.path / "big")) == FILES
    first.stop()

    second = remount("second", shared_cache(tmp_path))
    os.stat(second.path / "big")
    emulator.admin("stats/reset")
    before = kernel_getattrs(second)
    shown = ls_l(second.path / "big")
    calls = kernel_getattrs(second) - before

    print(f"\nremounted ls -l of {FILES} files, api={api}: {calls} getattr calls")
    assert len(shown) == FILES and set(shown.values()) == {("-rw-r-----", 10)}
    assert lists_and_others(settled_stats(emulator))[1] == 0
    assert calls <= 2, f"{calls} getattr calls for {FILES} entries: the kernel did not take the attributes"


def test_a_repeated_ls_l_within_the_ttl_makes_no_call_into_cosfs(cos, emulator):
    """The kernel keeps attributes for ``stat_cache_ttl`` (not libfuse's 1 s): the second
    ``ls -l`` of a listed directory makes no ``getattr`` per entry and sends no request. (One
    for the directory itself: the kernel drops a directory's atime after reading it.)"""
    Bucket(emulator).put_many((f"d/f{number:03d}" for number in range(100)), b"abc", file_meta(mode=0o100600))
    first = ls_l(cos.path / "d")
    emulator.admin("stats/reset")
    before = kernel_getattrs(cos)

    again = ls_l(cos.path / "d")

    assert again == first and len(again) == 100
    assert kernel_getattrs(cos) - before <= 1
    assert sum(emulator.stats().values()) == 0  # the listing is cached too
