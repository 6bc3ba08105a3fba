"""The persistent attribute cache across remounts, on both APIs, counted with the emulator's counters.

SEMANTICS.md: "After a remount, a file whose list entry shows the ETag, size and
Last-Modified second it had when this cache last HEADed it costs no HEAD: its attributes
are those the HEAD gave. Any other file costs one HEAD, as without the cache."

Every mount of a test shares one ``cache_dir`` (the database lives there), each on a
mount point of its own.
"""

from __future__ import annotations

import os
import stat
import subprocess

from tests.integration.bucket import Bucket, file_meta
from tests.integration.test_request_costs import lists_and_others, settled_stats
from tests.support.mounted import wait_until

HEAD_OPERATIONS = {"xml.HeadObject", "json.stat"}


def shared_cache(tmp_path) -> str:
    return f"cache_dir={tmp_path / 'shared-cache'}"


def attr_databases(tmp_path, emulator) -> list:
    return sorted((tmp_path / "shared-cache" / emulator.bucket / "attrs").glob("*.sqlite"))


def ls_l(directory) -> dict:
    """``ls -l`` of ``directory``; name -> (mode string, size)."""
    shown = subprocess.run(["ls", "-l", str(directory)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in shown.splitlines()[1:]:
        fields = line.split()
        entries[fields[-1]] = (fields[0], int(fields[4]))
    return entries


def walk_after_remount(remount, tmp_path, emulator, name: str, directory: str) -> "tuple[dict, dict]":
    """Mount again, look the directory itself up, then ``ls -l`` it with zeroed counters:
    (what ``ls -l`` showed, the requests the walk of the directory cost)."""
    mounted = remount(name, shared_cache(tmp_path))
    os.stat(mounted.path / directory)  # what the directory itself is: not the cost measured here
    emulator.admin("stats/reset")
    shown = ls_l(mounted.path / directory)
    return shown, settled_stats(emulator)


def test_remounted_ls_l_of_5000_unchanged_files_costs_only_the_list_pages(remount, emulator, api, tmp_path):
    """Issue 10: a remount's ``ls -l`` of 5,000 unchanged files sent 5,000 HEADs; now none."""
    files = 5_000
    Bucket(emulator).put_many((f"big/f{number:04d}" for number in range(files)), b"0123456789",
                              file_meta(mode=0o100640, uid=1000, gid=1000), workers=32)
    first = remount("first", shared_cache(tmp_path))
    assert len(ls_l(first.path / "big")) == files
    first.stop()

    shown, counts = walk_after_remount(remount, tmp_path, emulator, "second", "big")

    lists, others = lists_and_others(counts)
    print(f"\nremounted ls -l of {files} files, api={api}: {counts}")
    assert len(shown) == files
    assert set(shown.values()) == {("-rw-r-----", 10)}
    assert lists >= 1 and others == 0, counts


def test_one_object_changed_behind_the_mount_costs_one_head_after_a_remount(remount, emulator, api, tmp_path):
    bucket = Bucket(emulator)
    bucket.put_many((f"d/f{number:02d}" for number in range(40)), b"old", file_meta(mode=0o100644))
    first = remount("first", shared_cache(tmp_path))
    assert ls_l(first.path / "d")["f07"] == ("-rw-r--r--", 3)
    first.stop()
    bucket.put("d/f07", b"new content", file_meta(mode=0o100600))

    shown, counts = walk_after_remount(remount, tmp_path, emulator, "second", "d")

    assert shown["f07"] == ("-rw-------", 11)
    assert shown["f08"] == ("-rw-r--r--", 3)
    heads = sum(value for name, value in counts.items() if name in HEAD_OPERATIONS)
    assert heads == 1 and lists_and_others(counts)[1] == 1, counts


def test_a_corrupt_database_is_rebuilt_with_a_warning_and_the_mount_works(remount, emulator, api, tmp_path):
    Bucket(emulator).put_many((f"d/f{number:02d}" for number in range(20)), b"abc", file_meta(mode=0o100640))
    first = remount("first", shared_cache(tmp_path))
    assert len(ls_l(first.path / "d")) == 20
    first.stop()
    [database] = attr_databases(tmp_path, emulator)
    database.write_bytes(os.urandom(8192))

    second = remount("second", shared_cache(tmp_path))
    shown = ls_l(second.path / "d")
    second.stop()

    assert len(shown) == 20 and set(shown.values()) == {("-rw-r-----", 3)}
    assert "attribute cache" in second.log() and "damaged" in second.log(), second.log()[-2000:]
    assert list(database.parent.glob(database.name + ".corrupt-*")), "the damaged file is kept aside"
    shown, counts = walk_after_remount(remount, tmp_path, emulator, "third", "d")
    assert len(shown) == 20 and lists_and_others(counts)[1] == 0, counts  # the rebuilt database serves


def test_kill_9_during_a_listing_then_a_remount_lists_correctly(remount, emulator, api, tmp_path):
    files = 1_500
    bucket = Bucket(emulator)
    bucket.put_many((f"k/f{number:04d}" for number in range(files)), b"x", file_meta(mode=0o100644), workers=32)
    doomed = remount("doomed", shared_cache(tmp_path))
    emulator.admin("stats/reset")
    walker = subprocess.Popen(["ls", "-l", str(doomed.path / "k")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: sum(v for k, v in emulator.stats().items() if k in HEAD_OPERATIONS) >= 600,
                   60, what="the walk to HEAD a few batches of files")
        doomed.process.kill()
        doomed.process.wait(10)
    finally:
        walker.kill()
        walker.wait(10)
        doomed.stop()
    bucket.put("k/f0000", b"changed after the crash", file_meta(mode=0o100600))

    again = remount("again", shared_cache(tmp_path))
    shown = ls_l(again.path / "k")

    assert len(shown) == files
    assert shown["f0000"] == ("-rw-------", 23)
    assert all(shown[f"f{number:04d}"] == ("-rw-r--r--", 1) for number in range(1, files))
    assert stat.S_ISREG(os.stat(again.path / "k" / "f0001").st_mode)
