"""The journal of staged data and its recovery after a crash, over the in-memory store.

A "crashed" mount is a staging area that is never closed: its directory lock is released
by hand, as the kernel releases it when the process dies.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from cosfs.data import journal
from cosfs.data.recovery import DROPPED, KEPT, LOST_AND_FOUND, UPLOADED, Recovery, pending
from cosfs.data.sparse import SparseFile
from cosfs.data.staging import StagingArea
from cosfs.data.uploader import Uploader, UploadPolicy
from cosfs.wire.errors import CosError
from tests.support.fake_store import FakeStore

BUCKET = "bucket-1250000000"


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "cache" / BUCKET


def crashed_area(root: Path) -> StagingArea:
    """A staging area whose mount "died": its lock is dropped without cleaning up."""
    area = StagingArea(root, min_free_bytes=0, bucket=BUCKET)
    os.close(area._instance._lock_fd)  # what the kernel does when the process is killed
    area._instance._lock_fd = None
    return area


def stage(area: StagingArea, key: str, data: bytes, state: str, base_etag=None, **fields):
    staged = area.create(key, base_etag)
    staged.write(0, data)
    staged.journal(state=state, **fields)
    return staged


def recover(root: Path, store: FakeStore, clock=lambda: 1_700_000_000.0):
    uploader = Uploader(store, UploadPolicy(part_size=4, multipart_threshold=8, parallel=2))
    try:
        return Recovery(root, store, uploader, root.parent / "lost+found", clock).run()
    finally:
        uploader.close()


def test_a_record_names_its_key_and_follows_the_state(tmp_path):
    area = StagingArea(tmp_path / BUCKET, min_free_bytes=0, bucket=BUCKET)
    staged = area.create("photos/cat.jpg", "etag-1")
    record = journal.read_record(staged.record_path)
    assert (record.bucket, record.key, record.base_etag, record.state) == (BUCKET, "photos/cat.jpg", "etag-1", "writing")
    staged.journal(state=journal.CLOSED, meta={"mode": "33188"})
    assert journal.read_record(staged.record_path).meta == {"mode": "33188"}
    staged.discard()
    assert not staged.path.exists() and not staged.record_path.exists()


def test_a_closed_version_of_an_unchanged_object_is_uploaded_with_its_metadata(root, store):
    store.put_raw("doc.txt", b"old")
    base = store.objects["doc.txt"].etag
    area = crashed_area(root)
    stage(area, "doc.txt", b"new version", journal.CLOSED, base, meta={"mode": "33188", "mtime": "5"})

    [result] = recover(root, store)

    assert (result.outcome, result.key) == (UPLOADED, "doc.txt")
    assert store.objects["doc.txt"].data == b"new version"
    assert store.objects["doc.txt"].meta["mtime"] == "5"
    assert not area.directory.exists(), "a resolved directory is removed"


def test_a_new_file_that_failed_to_upload_is_uploaded_if_still_absent(root, store):
    area = crashed_area(root)
    stage(area, "new.bin", b"x" * 20, journal.FAILED, None)  # over the threshold: multipart

    [result] = recover(root, store)

    assert result.outcome == UPLOADED and store.objects["new.bin"].data == b"x" * 20


def test_a_version_whose_object_changed_since_goes_to_lost_and_found(root, store):
    store.put_raw("doc.txt", b"old")
    base = store.objects["doc.txt"].etag
    store.put_raw("doc.txt", b"someone else's")
    area = crashed_area(root)
    stage(area, "a/doc.txt", b"mine", journal.CLOSED, None)
    stage(area, "doc.txt", b"mine too", journal.CLOSED, base)

    results = {r.key: r for r in recover(root, store)}

    assert store.objects["doc.txt"].data == b"someone else's", "nothing is overwritten"
    assert results["doc.txt"].outcome == LOST_AND_FOUND
    assert results["doc.txt"].where.read_bytes() == b"mine too"
    assert results["doc.txt"].where.parent.parent == root.parent / "lost+found"
    assert results["a/doc.txt"].outcome == UPLOADED


def test_data_still_being_written_is_never_published(root, store):
    store.put_raw("big", b"the complete old version")
    area = crashed_area(root)
    stage(area, "big", b"half", journal.WRITING, store.objects["big"].etag)

    [result] = recover(root, store)

    assert result.outcome == LOST_AND_FOUND and "open for writing" in result.reason
    assert store.objects["big"].data == b"the complete old version"
    assert result.where.name == "big" and result.where.read_bytes() == b"half"


@pytest.mark.parametrize("state", [journal.STORED, journal.UNLINKED])
def test_stored_and_unlinked_copies_are_dropped(root, store, state):
    area = crashed_area(root)
    staged = stage(area, "k", b"x", state)

    [result] = recover(root, store)

    assert result.outcome == DROPPED and not staged.path.exists()
    assert "k" not in store.objects


def test_the_sessions_a_crashed_writer_began_are_aborted_and_no_others(root, store):
    started = 1_700_000_000.0
    store._clock = lambda: started - 3600  # another writer's upload of the same key, an hour before
    older = store.begin_upload("k")
    store._clock = lambda: started + 1
    recorded = store.begin_upload("k")
    unrecorded = store.begin_upload("k")  # begun after the record's upload started, id never written
    area = crashed_area(root)
    stage(area, "k", b"data", journal.CLOSED, None, upload_id=recorded.upload_id, upload_started=started)

    recover(root, store)

    assert set(store.uploads) == {older.upload_id}
    assert unrecorded.upload_id not in store.uploads


def test_a_transient_failure_keeps_the_data_for_next_time(root, store):
    area = crashed_area(root)
    staged = stage(area, "k", b"data", journal.CLOSED, None)
    store.fail("put_object", CosError("busy", status=503, code="SlowDown"))

    [result] = recover(root, store)

    assert result.outcome == KEPT and staged.path.exists()
    [again] = recover(root, store)
    assert again.outcome == UPLOADED and store.objects["k"].data == b"data"


def test_a_refused_name_goes_to_lost_and_found(root, store):
    area = crashed_area(root)
    stage(area, "bad", b"data", journal.FAILED, None)
    store.fail("put_object", CosError("no", status=400, code="InvalidObjectName"))

    [result] = recover(root, store)

    assert result.outcome == LOST_AND_FOUND and result.where.read_bytes() == b"data"


def test_a_live_mount_is_left_alone(root, store):
    live = StagingArea(root, min_free_bytes=0, bucket=BUCKET)
    stage(live, "k", b"data", journal.CLOSED, None)

    assert recover(root, store) == []
    assert pending(root) == []
    assert "k" not in store.objects
    live.close()


def test_an_unreadable_record_sends_its_data_to_lost_and_found(root, store):
    area = crashed_area(root)
    staged = stage(area, "k", b"data", journal.CLOSED, None)
    staged.record_path.write_text("{ not json")

    [result] = recover(root, store)

    assert result.outcome == LOST_AND_FOUND and result.where.read_bytes() == b"data"
    assert "unknown" in result.where.parts


def test_pending_lists_without_changing_anything(root, store):
    area = crashed_area(root)
    stage(area, "k", b"data", journal.CLOSED, None)

    records = pending(root)

    assert [(r.key, r.state) for r in records] == [("k", "closed")]
    assert recover(root, store)[0].outcome == UPLOADED


def test_a_clean_unmount_leaves_no_directory(root):
    area = StagingArea(root, min_free_bytes=0, bucket=BUCKET)
    area.create("k").discard()
    area.close()
    assert not root.exists()


def test_records_are_json_with_the_documented_fields(tmp_path):
    area = StagingArea(tmp_path / BUCKET, min_free_bytes=0, bucket=BUCKET)
    staged = area.create("k", None)
    fields = json.loads(staged.record_path.read_text())
    assert set(fields) == {"bucket", "key", "base_etag", "state", "meta", "content_type", "upload_id",
                           "upload_started", "created", "sparse", "extents", "size", "base_size", "base_kept",
                           "punched", "stream_part_size"}


def stage_sparse(area: StagingArea, store: FakeStore, key: str, state: str):
    """A sparse staging file over ``key`` in ``store``: "XY" written at 10, "END" appended."""
    base = store.objects[key]
    sparse = SparseFile(area.create(key, base.etag), len(base.data), lambda *args: None)
    sparse.write(10, b"XY")
    sparse.write(len(base.data), b"END")
    sparse.journal(state=state, meta={"mode": "33188"})
    return base.data[:10] + b"XY" + base.data[12:] + b"END"


def test_a_closed_sparse_record_is_rebuilt_with_part_copies_when_the_object_is_unchanged(root, store):
    store.put_raw("big", bytes(range(40)))
    expected = stage_sparse(crashed_area(root), store, "big", journal.CLOSED)
    [resolution] = recover(root, store)
    assert (resolution.outcome, resolution.size) == (UPLOADED, len(expected))
    assert store.objects["big"].data == expected
    assert store.calls["copy_part"] >= 4, "the parts nothing was written to were copied server-side"
    assert list(root.rglob("*.staged")) == []


def test_a_sparse_record_whose_object_changed_goes_to_lost_and_found_with_its_ranges(root, store):
    store.put_raw("big", bytes(range(40)))
    stage_sparse(crashed_area(root), store, "big", journal.FAILED)
    store.put_raw("big", b"someone else's version")
    [resolution] = recover(root, store)
    assert resolution.outcome == LOST_AND_FOUND
    assert store.objects["big"].data == b"someone else's version"
    layout = json.loads(resolution.where.with_name(resolution.where.name + ".extents.json").read_text())
    assert layout["extents"] == [[10, 12], [40, 43]] and layout["size"] == 43
    data = resolution.where.read_bytes()
    assert data[10:12] == b"XY" and data[40:43] == b"END"


def test_a_writing_sparse_record_goes_to_lost_and_found_with_its_ranges(root, store):
    store.put_raw("big", bytes(range(40)))
    stage_sparse(crashed_area(root), store, "big", journal.WRITING)
    [resolution] = recover(root, store)
    assert resolution.outcome == LOST_AND_FOUND
    assert store.objects["big"].data == bytes(range(40)), "an unfinished version is never published"
    assert resolution.where.with_name(resolution.where.name + ".extents.json").exists()


def test_a_sparse_record_whose_upload_completed_before_the_crash_is_dropped(root, store):
    store.put_raw("big", bytes(range(40)))
    expected = stage_sparse(crashed_area(root), store, "big", journal.CLOSED)
    store.put_raw("big", expected)  # the upload completed; its "stored" record was not written
    [resolution] = recover(root, store)
    assert resolution.outcome == DROPPED
    assert store.objects["big"].data == expected


def test_an_old_record_without_the_sparse_fields_still_loads(tmp_path):
    path = tmp_path / "x.record"
    path.write_text(json.dumps({"bucket": BUCKET, "key": "k", "base_etag": None, "state": "closed", "meta": {},
                                "content_type": None, "upload_id": None, "upload_started": None, "created": 1.0}))
    record = journal.read_record(path)
    assert not record.sparse and record.extents == [] and record.size is None


def test_a_record_cut_short_while_it_was_created_leaves_nothing_to_publish(root, store):
    """SEMANTICS.md, after a crash: "data of a file that was still open for writing is not
    a version anyone finished: it is never published over COS's copy"; and the journal's
    promise that every staging file says what it is. A new record is created in
    place (no temporary file, no rename): a kill -9 in the middle of that write leaves a
    prefix of it, which must never parse as a record; the staging file it would have
    named is still empty (the record comes before the data), so it is dropped, and
    nothing is published."""
    area = crashed_area(root)
    staged = area.create("k", None)
    whole = staged.record_path.read_bytes()
    for cut in range(len(whole)):
        staged.record_path.write_bytes(whole[:cut])
        with pytest.raises(ValueError):
            journal.read_record(staged.record_path)
    assert staged.path.stat().st_size == 0

    [result] = recover(root, store)

    assert result.outcome == DROPPED and "unreadable" in result.reason
    assert "k" not in store.objects
    assert not (root.parent / "lost+found").exists()


def test_a_closed_copy_whose_upload_completed_before_the_crash_is_dropped(root, store):
    """A close of the only handle deletes the staged copy once stored, without writing a
    ``stored`` record first: a kill -9 between the upload and the deletion leaves a
    ``closed`` record of what COS already holds. Recovery must neither upload it again
    nor move it to lost+found: it reads the object back and drops the copy."""
    store.put_raw("doc.txt", b"old")
    base = store.objects["doc.txt"].etag
    area = crashed_area(root)
    stage(area, "doc.txt", b"new version", journal.CLOSED, base, meta={"mode": "33188"})
    store.put_raw("doc.txt", b"new version")  # the upload completed; the copy was not deleted yet
    puts = store.calls["put_object"]

    [result] = recover(root, store)

    assert result.outcome == DROPPED and "already holds" in result.reason
    assert store.calls["put_object"] == puts and store.objects["doc.txt"].data == b"new version"
    assert not (root.parent / "lost+found").exists()



def test_a_held_metadata_change_cut_short_while_created_is_dropped(root, store):
    """A held change's first record is created in place too: a kill -9 in the middle of it
    (the chmod had not returned) leaves a prefix, dropped with a log line, never applied."""
    store.put_raw("k", b"data")
    area = crashed_area(root)
    path = journal.new_meta_record_path(area.directory, "k")
    journal.write_record(path, journal.MetaRecord(BUCKET, "k", store.objects["k"].etag, {"mode": "33152"}))
    path.write_bytes(path.read_bytes()[:-1])

    [result] = recover(root, store)

    assert result.outcome == DROPPED and "unreadable" in result.reason
    assert "mode" not in store.objects["k"].meta
    assert list(area.directory.glob("*.meta")) == []


def crash_while_replacing(path: Path, record, cut: bool) -> Path:
    """What a kill -9 in ``journal.replace_record`` leaves: the new generation written
    (``cut``: only a prefix of it) and the old one not yet unlinked."""
    newer = journal.next_generation(path)
    journal.write_record(newer, record)
    if cut:
        newer.write_bytes(newer.read_bytes()[: len(newer.read_bytes()) // 2])
    return newer


@pytest.mark.parametrize("cut", [False, True])
def test_a_crash_while_a_record_was_replaced_leaves_the_old_or_the_new_one(root, store, cut):
    """SEMANTICS.md, after a crash: "a complete version that was not stored yet (closed, or
    whose upload failed) is uploaded if COS still holds the object it replaces", and "data
    of a file that was still open for writing ... is never published over COS's copy".
    A record is replaced by writing its next generation, then unlinking the old one: a
    kill -9 between the two leaves both (the newer, ``closed``, is the record), and one in
    the middle of the new one leaves a prefix beside the old (``writing``, the record)."""
    store.put_raw("doc.txt", b"old")
    base = store.objects["doc.txt"].etag
    area = crashed_area(root)
    staged = stage(area, "doc.txt", b"new version", journal.WRITING, base)
    closed = dataclasses.replace(staged.record, state=journal.CLOSED)
    newer = crash_while_replacing(staged.record_path, closed, cut)
    assert journal.data_path(newer) == staged.path

    [result] = recover(root, store)

    if cut:
        assert result.outcome == LOST_AND_FOUND and "open for writing" in result.reason
        assert store.objects["doc.txt"].data == b"old"
    else:
        assert result.outcome == UPLOADED and store.objects["doc.txt"].data == b"new version"
    assert not area.directory.exists(), "every generation is resolved and deleted"


@pytest.mark.parametrize("cut", [False, True])
def test_a_crash_while_a_held_change_was_merged_applies_the_old_or_the_new_one(root, store, cut):
    """SEMANTICS.md: "A held change is journaled ... before the call returns: after a crash,
    the next mount (or ``cosfs recover``) applies it if the object still has the ETag it
    was based on". Two generations of one change are never both applied: the newest
    readable one is (the first only, when the merge was cut short)."""
    store.put_raw("k", b"data")
    etag = store.objects["k"].etag
    area = crashed_area(root)
    first = journal.new_meta_record_path(area.directory, "k")
    journal.write_record(first, journal.MetaRecord(BUCKET, "k", etag, {"mtime": "5"}))
    crash_while_replacing(first, journal.MetaRecord(BUCKET, "k", etag, {"mtime": "5", "mode": "33152"}), cut)

    [result] = recover(root, store)

    assert result.outcome == "metadata applied" and store.calls["set_meta"] == 1
    assert store.objects["k"].meta.get("mode") == (None if cut else "33152")
    assert store.objects["k"].meta["mtime"] == "5"
    assert list(root.rglob("*.meta")) == []


def test_generations_of_a_record_are_named_apart_from_every_staging_file(tmp_path):
    area = StagingArea(tmp_path / BUCKET, min_free_bytes=0, bucket=BUCKET)
    staged = area.create("odd~1 name.record", None)
    for state in (journal.CLOSED, journal.STORED, journal.WRITING):
        old = staged.record_path
        staged.journal(state=state)
        assert staged.record_path != old and not old.exists()
        assert journal.data_path(staged.record_path) == staged.path
        assert journal.read_record(staged.record_path).state == state
    assert [p.name for p in area.directory.glob("*.record")] == [staged.record_path.name]
    staged.discard()
    assert [p.name for p in area.directory.iterdir()] == ["lock"]
