"""Metadata changes held after an upload (``cosfs.filesystem.pending_meta``), over the in-memory store.

SEMANTICS.md: "A chmod, chown or utimens of a file this mount stored less than
``metadata_delay`` seconds ago is held: ``stat`` shows it at once, a rename or an upload of
the file that follows carries it, an unlink drops it; otherwise one copy of the object onto
itself applies it when the delay ends, at ``fsync`` of the file, or at unmount." The timer
is driven by hand here: the fake clock moves, then ``apply_due`` runs what the thread would.
"""

from __future__ import annotations

import os
import stat
import time

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import options_from_string
from cosfs.data import journal
from cosfs.data.recovery import DROPPED, META_APPLIED, Recovery
from cosfs.data.uploader import Uploader, UploadPolicy
from cosfs.metadata.attr_store import Validators
from tests.support.clock import FakeClock
from tests.support.fake_store import FakeStore

BUCKET = "bucket-1250000000"
MTIME_NS = 1_600_000_000_123_456_789


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fs(store, clock, tmp_path):
    options = options_from_string(f"cache_dir={tmp_path / 'cache'},ensure_diskfree=0,metadata_delay=1")
    return build_filesystem(store, options, "", BUCKET, clock=clock, ttl_clock=clock)


def write_file(fs, path, data=b"data"):
    fh = fs.create(path, 0o644, 1000, 1000)
    fs.write(fh, data, 0)
    fs.flush(fh)
    fs.release(fh)


def meta_records(fs):
    return sorted(fs.files.staging.directory.glob("*" + journal.META_SUFFIX))


def calls(store, *names):
    return {name: store.calls[name] for name in names}


def test_rsync_pattern_costs_one_put_and_one_move_carrying_the_metadata(fs, store):
    write_file(fs, "/.f.XYZ")
    fs.utimens("/.f.XYZ", MTIME_NS)
    fs.chmod("/.f.XYZ", 0o600)
    fs.rename("/.f.XYZ", "/f")
    assert calls(store, "put_object", "move", "set_meta", "copy") == {
        "put_object": 1, "move": 1, "set_meta": 0, "copy": 0}
    meta = store.objects["f"].meta
    assert meta["mode"] == str(stat.S_IFREG | 0o600)
    assert (meta["mtime"], meta["mtime-nsec"]) == ("1600000000", "123456789")
    assert meta_records(fs) == []
    fs.pending.apply_due()
    assert store.calls["set_meta"] == 0


def test_a_held_change_is_shown_at_once_and_applied_by_one_copy_when_the_delay_ends(fs, store, clock):
    write_file(fs, "/m")
    fs.chmod("/m", 0o600)
    fs.utimens("/m", MTIME_NS)
    assert fs.getattr("/m").mode == stat.S_IFREG | 0o600 and fs.getattr("/m").mtime_ns == MTIME_NS
    assert store.objects["m"].meta["mode"] == str(stat.S_IFREG | 0o644)
    assert len(meta_records(fs)) == 1, "a second change merges into the held one"
    clock.advance(0.5)
    fs.pending.apply_due()
    assert store.calls["set_meta"] == 0
    clock.advance(0.6)
    fs.pending.apply_due()
    assert store.calls["set_meta"] == 1
    assert store.objects["m"].meta["mode"] == str(stat.S_IFREG | 0o600)
    assert store.objects["m"].meta["mtime"] == "1600000000"
    assert meta_records(fs) == []


def test_the_attribute_cache_keeps_a_held_change_only_once_it_is_applied(fs, store, clock):
    write_file(fs, "/m")
    fs.chmod("/m", 0o600)
    persistent = fs.lookup.persistent
    listed = [("/m", Validators(store.objects["m"].etag, 4, 0))]
    persistent.flush()
    assert persistent.matching(listed) == {}
    clock.advance(2)
    fs.pending.apply_due()
    persistent.flush()
    assert persistent.matching(listed)["/m"].mode == stat.S_IFREG | 0o600


def test_unlink_drops_a_held_change_without_a_request(fs, store, clock):
    write_file(fs, "/u")
    fs.chmod("/u", 0o600)
    fs.unlink("/u")
    clock.advance(2)
    fs.pending.apply_due()
    assert store.calls["set_meta"] == 0 and meta_records(fs) == []


def test_fsync_applies_a_held_change(fs, store):
    write_file(fs, "/s")
    fs.chmod("/s", 0o600)
    fh = fs.open("/s", os.O_RDONLY)
    try:
        fs.fsync(fh)
    finally:
        fs.release(fh)
    assert store.calls["set_meta"] == 1
    assert store.objects["s"].meta["mode"] == str(stat.S_IFREG | 0o600)
    assert meta_records(fs) == []


def test_an_upload_that_follows_carries_the_held_change(fs, store, clock):
    write_file(fs, "/w")
    fs.chmod("/w", 0o600)
    fh = fs.open("/w", os.O_WRONLY)
    fs.write(fh, b"more", 4)
    fs.flush(fh)
    fs.release(fh)
    clock.advance(2)
    fs.pending.apply_due()
    assert calls(store, "put_object", "set_meta") == {"put_object": 2, "set_meta": 0}
    assert store.objects["w"].data == b"datamore"
    assert store.objects["w"].meta["mode"] == str(stat.S_IFREG | 0o600)


def test_a_change_of_a_file_not_just_stored_is_applied_at_once(fs, store, clock):
    write_file(fs, "/old")
    clock.advance(1.5)
    fs.chmod("/old", 0o600)
    assert store.calls["set_meta"] == 1 and meta_records(fs) == []


def test_unmount_applies_what_is_held(fs, store):
    write_file(fs, "/x")
    fs.chmod("/x", 0o600)
    assert fs.pending.close() == []
    assert store.objects["x"].meta["mode"] == str(stat.S_IFREG | 0o600)
    assert meta_records(fs) == []


def crash(fs) -> None:
    """What kill -9 leaves: the records stay, the directory lock is released."""
    instance = fs.files.staging._instance
    os.close(instance._lock_fd)
    instance._lock_fd = None


def recover(fs, store):
    uploader = Uploader(store, UploadPolicy(part_size=4, multipart_threshold=8, parallel=2))
    try:
        return Recovery(fs.files.staging.root, store, uploader, fs.files.staging.root.parent / "lost+found").run()
    finally:
        uploader.close()


def test_recovery_applies_a_held_change_to_the_object_it_was_based_on(fs, store):
    write_file(fs, "/r")
    fs.chmod("/r", 0o600)
    crash(fs)
    [resolution] = recover(fs, store)
    assert resolution.outcome == META_APPLIED
    assert store.objects["r"].meta["mode"] == str(stat.S_IFREG | 0o600)
    assert not fs.files.staging.directory.exists()


def test_recovery_drops_a_held_change_of_an_object_changed_since(fs, store):
    write_file(fs, "/r")
    fs.chmod("/r", 0o600)
    crash(fs)
    store.put_object("r", b"someone else's", {"mode": str(stat.S_IFREG | 0o640)})
    [resolution] = recover(fs, store)
    assert resolution.outcome == DROPPED and "changed" in resolution.reason
    assert store.objects["r"].meta["mode"] == str(stat.S_IFREG | 0o640)
    assert store.calls["set_meta"] == 0


def test_a_change_that_cannot_be_journaled_is_applied_at_once(fs, store, monkeypatch):
    write_file(fs, "/j")

    def disk_full(path, record):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "write_record", disk_full)
    fs.chmod("/j", 0o600)
    assert store.calls["set_meta"] == 1
    assert store.objects["j"].meta["mode"] == str(stat.S_IFREG | 0o600)
    assert fs.pending.attr_of("/j") is None


def test_the_timer_applies_changes_held_while_it_sleeps_and_when_idle(store, tmp_path):
    """"otherwise one copy of the object onto itself applies it when the delay ends": a
    new held change wakes the timer only when it must wake earlier (nothing held, say),
    and a change merged into a held one leaves it asleep; every change is still applied
    once its delay ends (the real thread and clock here)."""
    options = options_from_string(f"cache_dir={tmp_path / 'cache'},ensure_diskfree=0,metadata_delay=0.3")
    fs = build_filesystem(store, options, "", BUCKET)
    fs.pending.start()
    try:
        write_file(fs, "/a")
        write_file(fs, "/b")
        fs.chmod("/a", 0o600)  # nothing held: wakes the idle timer
        fs.chmod("/b", 0o640)  # due later than /a's: the timer wakes for /a first anyway
        fs.utimens("/b", MTIME_NS)  # merged into /b's
        deadline = time.monotonic() + 10
        while (store.calls["set_meta"] < 2 or meta_records(fs)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.objects["a"].meta["mode"] == str(stat.S_IFREG | 0o600)
        assert store.objects["b"].meta["mode"] == str(stat.S_IFREG | 0o640)
        assert store.objects["b"].meta["mtime"] == "1600000000"
        assert store.calls["set_meta"] == 2 and meta_records(fs) == []
        write_file(fs, "/c")  # held again after the timer went idle
        fs.chmod("/c", 0o600)
        while store.calls["set_meta"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.objects["c"].meta["mode"] == str(stat.S_IFREG | 0o600)
    finally:
        fs.pending.close()
