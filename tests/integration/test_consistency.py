"""Objects changed behind the mount's back (boto3) show through once the caches expire.

The mount here uses 1 s TTLs, so every change must be visible well within the 10 s
deadline; a change that never shows means a cache that does not expire (or is never
invalidated). Directories that exist only as key prefixes (``a/b/c.txt`` with no ``a/``
marker, as other tools write them) must look and work like directories.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess

import pytest

from tests.integration.bucket import Bucket, file_meta
from tests.support.mounted import wait_until

SHORT_TTLS = "stat_cache_ttl=1,list_cache_ttl=1,negative_cache_ttl=1"
DEADLINE = 10.0


@pytest.fixture
def fast(remount):
    """A mount whose caches expire after 1 s."""
    return remount("fast", SHORT_TTLS).path


def test_new_object_appears_in_a_cached_listing(fast, emulator):
    assert os.listdir(fast) == []

    Bucket(emulator).put("late.txt", b"late")

    wait_until(lambda: os.listdir(fast) == ["late.txt"], DEADLINE, what="late.txt listed")
    assert (fast / "late.txt").read_bytes() == b"late"


def test_new_object_appears_after_a_failed_lookup(fast, emulator):
    assert not os.path.exists(fast / "late.txt")

    Bucket(emulator).put("late.txt", b"late")

    wait_until(lambda: os.path.exists(fast / "late.txt"), DEADLINE, what="late.txt to exist")


def test_replaced_object_shows_its_new_content(fast, emulator):
    bucket = Bucket(emulator)
    bucket.put("f", b"old")
    assert (fast / "f").read_bytes() == b"old"

    bucket.put("f", b"new and longer")

    wait_until(lambda: (fast / "f").read_bytes() == b"new and longer", DEADLINE, what="new content")


def test_deleted_object_disappears(fast, emulator):
    bucket = Bucket(emulator)
    bucket.put("f", b"x")
    assert os.listdir(fast) == ["f"]

    bucket.client.delete_object(Bucket=bucket.name, Key="f")

    wait_until(lambda: not os.path.exists(fast / "f") and os.listdir(fast) == [], DEADLINE, what="f gone")


def test_changed_metadata_shows(fast, emulator):
    bucket = Bucket(emulator)
    bucket.put("f", b"x", file_meta(mode=0o100644))
    assert stat.S_IMODE(os.stat(fast / "f").st_mode) == 0o644

    bucket.put("f", b"x", file_meta(mode=0o100600))

    wait_until(lambda: stat.S_IMODE(os.stat(fast / "f").st_mode) == 0o600, DEADLINE, what="mode 0600")


def test_prefix_only_directories_are_directories(cos, emulator):
    Bucket(emulator).put("a/b/c.txt", b"deep")

    assert os.listdir(cos.path) == ["a"]
    assert stat.S_ISDIR(os.stat(cos.path / "a").st_mode) and stat.S_ISDIR(os.stat(cos.path / "a" / "b").st_mode)
    assert (cos.path / "a" / "b" / "c.txt").read_bytes() == b"deep"


def test_prefix_only_directory_accepts_new_files(cos, emulator):
    bucket = Bucket(emulator)
    bucket.put("a/b/c.txt", b"deep")

    (cos.path / "a" / "b" / "new.txt").write_bytes(b"added")
    (cos.path / "a" / "sub").mkdir()

    assert sorted(os.listdir(cos.path / "a" / "b")) == ["c.txt", "new.txt"]
    assert sorted(os.listdir(cos.path / "a")) == ["b", "sub"]
    assert bucket.get("a/b/new.txt") == b"added"


def test_prefix_only_directory_can_be_chmodded(cos, emulator):
    Bucket(emulator).put("a/b/c.txt", b"deep")

    os.chmod(cos.path / "a", 0o705)

    assert os.stat(cos.path / "a").st_mode == stat.S_IFDIR | 0o705


def test_prefix_only_directory_can_be_renamed(cos, emulator):
    bucket = Bucket(emulator)
    bucket.put("a/b/c.txt", b"deep")

    os.rename(cos.path / "a", cos.path / "z")

    assert (cos.path / "z" / "b" / "c.txt").read_bytes() == b"deep"
    assert [key for key in bucket.keys() if key.startswith("a/")] == []


def test_prefix_only_directory_survives_the_unlink_of_its_last_file(cos, emulator, remount):
    """On a disk, ``rm a/c.txt`` leaves ``a``; a directory that was only a key prefix must
    not vanish with its last key (SEMANTICS.md: everyday tools behave as on a local disk)."""
    Bucket(emulator).put("a/c.txt", b"x")

    os.unlink(cos.path / "a" / "c.txt")
    cos.stop()
    again = remount("again").path

    assert os.listdir(again) == ["a"]
    assert stat.S_ISDIR(os.stat(again / "a").st_mode)


def test_prefix_only_directory_survives_moving_out_its_last_file(cos, emulator, remount):
    Bucket(emulator).put("a/c.txt", b"x")

    os.rename(cos.path / "a" / "c.txt", cos.path / "c.txt")
    cos.stop()
    again = remount("again").path

    assert sorted(os.listdir(again)) == ["a", "c.txt"]
    assert os.listdir(again / "a") == []


def test_rm_r_of_a_foreign_tree_removes_everything(cos, emulator):
    bucket = Bucket(emulator)
    bucket.put_many(["t/a/1", "t/a/2", "t/b", "t/c/d/3"])

    done = subprocess.run(["rm", "-r", str(cos.path / "t")], capture_output=True, text=True)

    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert os.listdir(cos.path) == [] and bucket.keys() == []


def test_rmdir_of_a_non_empty_prefix_only_directory_is_enotempty(cos, emulator):
    Bucket(emulator).put("a/c.txt", b"x")

    with pytest.raises(OSError) as failure:
        os.rmdir(cos.path / "a")

    assert failure.value.errno == errno.ENOTEMPTY
    assert Bucket(emulator).get("a/c.txt") == b"x"


def test_entry_types_of_a_foreign_directory_are_right(cos, emulator):
    """A cold listing knows ``a_sub`` is a directory and nothing about ``b_file``: the
    file must not be reported as a directory (see BUGS.md, readdir d_type)."""
    Bucket(emulator).put_many(["d/a_sub/x", "d/b_file"])

    kinds = {entry.name: entry.is_dir(follow_symlinks=False) for entry in os.scandir(cos.path / "d")}

    assert kinds == {"a_sub": True, "b_file": False}


def test_os_walk_of_a_foreign_tree_finds_every_file(cos, emulator):
    keys = ["t/a/1", "t/a/2", "t/b", "t/c/d/3", "t/e"]
    Bucket(emulator).put_many(keys)

    found = sorted(os.path.relpath(os.path.join(top, name), cos.path)
                   for top, _, files in os.walk(cos.path / "t") for name in files)

    assert found == sorted(keys)


def test_local_writes_do_not_hide_a_foreign_object_past_the_list_ttl(remount, emulator):
    """SEMANTICS.md: others' changes show within list_cache_ttl, even in a directory this
    mount keeps creating files in (each local create used to renew the cached listing)."""
    mounted = remount("busy", "list_cache_ttl=2,stat_cache_ttl=2").path
    assert os.listdir(mounted) == []
    Bucket(emulator).put("foreign.txt", b"x")
    created = []

    def create_then_look() -> bool:
        created.append(mounted / f"local-{len(created)}.txt")
        created[-1].write_bytes(b"y")
        return "foreign.txt" in os.listdir(mounted)

    wait_until(create_then_look, DEADLINE, interval=0.5, what="foreign.txt listed while creating files")


def test_a_name_the_server_refuses_is_gone_at_close_and_its_data_kept(cos, emulator):
    """A failed first upload leaves no name behind: close() reports the refusal, the name
    is not listed, stat and unlink answer ENOENT, and the data stays in the staging area."""
    emulator.admin("faults", {"refuse_keys": "refused"})
    target = cos.path / "refused.txt"
    handle = open(target, "wb")
    handle.write(b"precious")
    with pytest.raises(OSError) as raised:
        handle.close()
    assert raised.value.errno == errno.EINVAL
    assert "refused.txt" not in os.listdir(cos.path)
    for call in (os.stat, os.unlink):
        with pytest.raises(OSError) as missing:
            call(target)
        assert missing.value.errno == errno.ENOENT
    staged = wait_until(lambda: list((cos.path.parent / "mnt-cache").rglob("refused.txt.*.staged")), what="kept data")
    assert [path.read_bytes() for path in staged] == [b"precious"]


def test_max_stat_cache_size_0_mounts_with_no_attribute_cache(remount, emulator):
    """README: max_stat_cache_size=0 turns the attribute cache off (it used to crash the mount)."""
    mounted = remount("nostat", "max_stat_cache_size=0").path
    (mounted / "a.txt").write_bytes(b"one")
    Bucket(emulator).put("a.txt", b"three")
    wait_until(lambda: (mounted / "a.txt").stat().st_size == 5, DEADLINE, what="the new size without a stat cache")
