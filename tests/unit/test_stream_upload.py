"""Streaming write-back over the in-memory store: parts leave while the file is written,
stored parts leave the staging file, and every way out of a stream stores the right bytes."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import options_from_string
from cosfs.data import journal, staging
from cosfs.data.recovery import LOST_AND_FOUND, Recovery
from cosfs.data.staging import StagingArea
from cosfs.data.stream_upload import DirtyBudget, max_stream_size, stream_part_size
from cosfs.data.uploader import Uploader, UploadPolicy
from cosfs.store.interface import StoreLimits
from cosfs.wire.errors import CosError, CosfsError
from tests.support.clock import FakeClock
from tests.support.fake_store import FakeStore

MiB = 1024 * 1024
BUCKET = "bucket-1250000000"


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


def mounted(store, clock, tmp_path, extra=""):
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0,multipart_threshold=2,"
                                  f"multipart_size=1,parallel_count=2{extra}")
    return build_filesystem(store, options, "", BUCKET, clock=clock, ttl_clock=clock)


@pytest.fixture
def fs(store, clock, tmp_path):
    return mounted(store, clock, tmp_path)


def data_of(size: int, seed: int = 1) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[seed:seed + size]


def write_in_chunks(fs, fh, data: bytes, chunk: int = 128 * 1024, start: int = 0) -> None:
    for offset in range(0, len(data), chunk):
        fs.write(fh, data[offset:offset + chunk], start + offset)


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def record_of(fs, path):
    return fs.files.node(path).staged.record


def test_parts_leave_while_the_file_is_written_and_close_completes(fs, store):
    """SEMANTICS.md: "a file written from its first byte onward is sent to COS part by part
    while it is written" and close "returns after COS has the object"."""
    data = data_of(6 * MiB + 1234)
    fh = fs.create("/big.bin", 0o640, 1000, 1000)
    write_in_chunks(fs, fh, data)
    assert store.calls["begin_upload"] == 1
    fs.files.node("/big.bin").stream._upload.wait_sent()  # the parts queued while writing
    assert len(next(iter(store.uploads.values())).parts) >= 5, "parts were sent before close"
    assert "big.bin" not in store.objects
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["big.bin"].data == data
    assert store.uploads == {}
    assert store.calls["put_object"] == 0


def test_a_small_file_is_still_one_put(fs, store):
    data = data_of(2 * MiB)  # at the threshold: not past it
    fh = fs.create("/small", 0o644, 0, 0)
    write_in_chunks(fs, fh, data)
    assert store.uploads == {}
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["small"].data == data
    assert store.calls["put_object"] == 1 and store.calls["put_part"] == 0


def test_stored_parts_but_the_first_are_punched_out_and_journalled(fs, store):
    """The disk bound: what COS holds leaves cache_dir, except part 1 (rewritten headers)."""
    fh = fs.create("/big.bin", 0o644, 0, 0)
    write_in_chunks(fs, fh, data_of(8 * MiB))
    staged = fs.files.node("/big.bin").staged
    fs.files.node("/big.bin").stream._upload.wait_sent()  # the parts queued so far are stored
    record = record_of(fs, "/big.bin")
    assert record.punched is not None and record.punched[0] == MiB and record.punched[1] >= 6 * MiB
    assert allocated(staged.path) <= 3 * MiB, "part 1 and the unsent tail at most"
    assert fs.files.staging.staged_bytes <= 3 * MiB
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["big.bin"].data == data_of(8 * MiB)
    assert fs.files.staging.staged_bytes == 0


def test_a_rewritten_header_in_part_one_is_sent_again(fs, store):
    data = bytearray(data_of(5 * MiB))
    fh = fs.create("/movie.mp4", 0o644, 0, 0)
    write_in_chunks(fs, fh, bytes(data))
    fs.write(fh, b"HEADER", 10)
    data[10:16] = b"HEADER"
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["movie.mp4"].data == bytes(data)


def test_a_write_into_a_punched_range_stores_what_was_written_then_goes_on(fs, store, caplog):
    """SEMANTICS.md: a write into bytes already sent and freed "completes the upload, so the
    object holds what was written so far", then the file goes on as an existing object."""
    data = bytearray(data_of(6 * MiB))
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, bytes(data))
    fs.files.node("/f").stream._upload.wait_sent()
    with caplog.at_level("INFO", logger="cosfs.filesystem.open_files"):
        fs.write(fh, b"PATCH", 3 * MiB)
    assert store.objects["f"].data == bytes(data), "published at the seek back"
    assert "storing what was written so far" in caplog.text
    data[3 * MiB:3 * MiB + 5] = b"PATCH"
    fs.write(fh, b"TAIL", len(data))
    data += b"TAIL"
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["f"].data == bytes(data)
    assert store.uploads == {}


def test_a_seek_back_with_nothing_punched_stops_streaming_and_keeps_staging(fs, store, monkeypatch):
    monkeypatch.setattr(staging, "_fallocate", None)  # a filesystem without hole punching
    data = bytearray(data_of(5 * MiB))
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, bytes(data))
    fs.files.node("/f").stream._upload.wait_sent()
    fs.write(fh, b"BACK", 2 * MiB)
    data[2 * MiB:2 * MiB + 4] = b"BACK"
    assert fs.files.node("/f").stream is None and store.uploads == {}, "the session was aborted"
    assert "f" not in store.objects
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["f"].data == bytes(data)


def test_a_read_of_a_punched_range_reads_what_was_written(fs, store):
    data = data_of(6 * MiB)
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, data)
    fs.files.node("/f").stream._upload.wait_sent()
    assert fs.read(fh, 100, 2 * MiB) == data[2 * MiB:2 * MiB + 100]
    fs.release(fh)
    assert store.objects["f"].data == data


def test_the_object_gets_the_metadata_of_the_last_write_and_chmod(fs, store, clock):
    fh = fs.create("/f", 0o600, 1000, 1000)
    write_in_chunks(fs, fh, data_of(3 * MiB))  # the session begins with this mtime
    clock.advance(60)
    write_in_chunks(fs, fh, data_of(MiB), start=3 * MiB)
    fs.chmod("/f", 0o640)
    fs.flush(fh)
    fs.release(fh)
    meta = store.objects["f"].meta
    assert meta["mtime"] == str(int(clock.now)) and meta["mode"] == str(0o100640)
    assert fs.getattr("/f").mtime_ns // 10**9 == int(clock.now)


def test_a_failed_part_fails_the_write_and_leaves_no_session(fs, store):
    """A failed stream returns the error from write (the file is poisoned: COS keeps the old
    object) and aborts its session."""
    store.fail("put_part", CosError("refused", status=403, code="AccessDenied", errno_value=errno.EACCES))
    fh = fs.create("/f", 0o644, 0, 0)
    with pytest.raises(CosfsError) as raised:
        write_in_chunks(fs, fh, data_of(8 * MiB))
        fs.flush(fh)
    assert raised.value.errno == errno.EACCES
    with pytest.raises(CosfsError):
        fs.flush(fh)
    fs.release(fh)
    assert store.uploads == {} and "f" not in store.objects
    assert list(fs.files.staging.directory.glob("*.staged")) == []


def test_truncate_to_zero_starts_a_new_stream(fs, store):
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, data_of(4 * MiB))
    fs.truncate("/f", 0)
    assert store.uploads == {}, "the first session was aborted"
    write_in_chunks(fs, fh, data_of(3 * MiB, seed=7))
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["f"].data == data_of(3 * MiB, seed=7)


def test_unlink_while_streaming_aborts_the_session(fs, store):
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, data_of(4 * MiB))
    fs.unlink("/f")
    assert store.uploads == {}
    fs.release(fh)
    assert "f" not in store.objects


def test_the_json_api_does_not_stream(store, clock, tmp_path):
    store.limits = StoreLimits(max_put_size=5 * 1024**3, max_parts=10000, min_part_size=5,
                               max_part_size=5 * 1024**3, upload_needs_size=True)
    fs = mounted(store, clock, tmp_path)
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, data_of(4 * MiB))
    assert fs.files.node("/f").stream is None and store.uploads == {}
    fs.release(fh)
    assert store.objects["f"].data == data_of(4 * MiB)


# --- bounds ---------------------------------------------------------------------------------

def test_part_sizes_double_every_thousand_parts_up_to_the_largest_part():
    limits = StoreLimits(max_put_size=5 * 1024**3, max_parts=10000, min_part_size=MiB, max_part_size=5 * 1024**3)
    assert stream_part_size(1, 8 * MiB, limits) == 8 * MiB
    assert stream_part_size(1000, 8 * MiB, limits) == 8 * MiB
    assert stream_part_size(1001, 8 * MiB, limits) == 16 * MiB
    assert stream_part_size(10000, 8 * MiB, limits) == 4096 * MiB
    assert stream_part_size(10000, 16 * MiB, limits) == 5 * 1024**3
    assert max_stream_size(8 * MiB, limits) == 1000 * 8 * MiB * 1023  # about 8 TiB, documented


def test_a_write_past_the_largest_stream_fails_with_efbig(store, clock, tmp_path):
    store.limits = StoreLimits(max_put_size=5 * 1024**3, max_parts=3, min_part_size=5, max_part_size=5 * 1024**3)
    fs = mounted(store, clock, tmp_path)
    fh = fs.create("/f", 0o644, 0, 0)
    write_in_chunks(fs, fh, data_of(3 * MiB))
    with pytest.raises(CosfsError) as raised:
        fs.write(fh, b"x", 3 * MiB)
    assert raised.value.errno == errno.EFBIG
    fs.release(fh)
    assert store.uploads == {}


def test_max_cache_mb_fails_writes_with_enospc(store, clock, tmp_path):
    fs = mounted(store, clock, tmp_path, ",max_cache_mb=1")
    fh = fs.create("/f", 0o644, 0, 0)
    fs.write(fh, b"x" * (MiB - 10), 0)
    with pytest.raises(CosfsError) as raised:
        fs.write(fh, b"y" * 100, MiB - 10)
    assert raised.value.errno == errno.ENOSPC
    fs.release(fh)
    assert fs.files.staging.staged_bytes == 0


def test_the_dirty_budget_waits_only_for_a_writer_with_parts_in_flight():
    budget = DirtyBudget(100)
    budget.take(90, lambda: True, lambda: None, 10)
    budget.take(50, lambda: False, lambda: None, 10)  # nothing in flight: may always go on
    assert budget.used == 140
    done = threading.Event()

    def waiting():
        budget.take(10, lambda: True, lambda: None, 10)
        done.set()

    thread = threading.Thread(target=waiting)
    thread.start()
    assert not done.wait(0.3), "a writer with parts in flight waits while the budget is spent"
    budget.give_back(60)
    assert done.wait(5)
    thread.join()
    assert budget.used == 90


def test_the_dirty_budget_raises_the_streams_failure_and_gives_up_when_nothing_moves():
    clock = FakeClock()
    budget = DirtyBudget(10, clock=clock)
    budget.take(10, lambda: True, lambda: None, 5)
    failure = CosError("gone", status=500, code="InternalError")
    with pytest.raises(CosError):
        budget.take(1, lambda: True, lambda: failure, 5)

    def stalled():
        clock.advance(3)
        return True

    with pytest.raises(CosfsError) as raised:
        budget.take(1, stalled, lambda: None, 5)
    assert raised.value.errno == errno.EIO


# --- recovery -------------------------------------------------------------------------------

def test_recovery_never_publishes_a_punched_file_and_aborts_its_session(tmp_path, store, caplog):
    root = tmp_path / BUCKET
    area = StagingArea(root, min_free_bytes=0, bucket=BUCKET)
    staged = area.create("k")
    staged.write(0, b"a" * 100)
    session = store.begin_upload("k")
    staged.journal(state=journal.CLOSED, upload_id=session.upload_id, punched=[10, 50])
    os.close(area._instance._lock_fd)  # the mount is gone
    area._instance._lock_fd = None
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1))
    try:
        with caplog.at_level("WARNING"):
            resolutions = Recovery(root, store, uploader, tmp_path / "lost+found").run()
    finally:
        uploader.close()
    assert [r.outcome for r in resolutions] == [LOST_AND_FOUND]
    assert "k" not in store.objects and store.uploads == {}
    assert "bytes 10..50 were sent" in caplog.text


# --- JSON: a failed slice upload is resumed once ----------------------------------------------

def test_a_failed_slice_upload_is_resumed_once_sending_only_the_missing_slices(store, tmp_path):
    """Where COS keeps an unfinished upload (the JSON API cannot abort one), a failed upload
    asks which slices COS holds and sends only the rest, before giving up."""
    store.limits = StoreLimits(max_put_size=5 * 1024**3, max_parts=10000, min_part_size=5,
                               max_part_size=5 * 1024**3, upload_needs_size=True, abortable_uploads=False)
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    staged = area.create("k")
    data = data_of(50)
    staged.write(0, data)
    store.fail("put_part", CosError("reset", code="ConnectionError"))
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1))
    try:
        uploader.upload("k", staged)
    finally:
        uploader.close()
    assert store.objects["k"].data == data
    assert store.calls["put_part"] == 11, "10 slices, and the failed one once more"
    assert store.calls["find_upload"] == 1 and store.calls["list_parts"] == 1


def test_a_resumed_upload_that_fails_again_reports_the_first_error(store, tmp_path):
    store.limits = StoreLimits(max_put_size=5 * 1024**3, max_parts=10000, min_part_size=5,
                               max_part_size=5 * 1024**3, upload_needs_size=True, abortable_uploads=False)
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    staged = area.create("k")
    staged.write(0, data_of(50))
    first = CosError("reset", code="ConnectionError")
    store.fail("put_part", first)
    store.fail("list_parts", CosError("still down", code="ConnectionError"))
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1))
    try:
        with pytest.raises(CosError) as raised:
            uploader.upload("k", staged)
    finally:
        uploader.close()
    assert raised.value is first and "k" not in store.objects


def test_recovery_completes_a_closed_stream_whose_freed_parts_are_all_in_cos(tmp_path, store):
    """A stream killed during its close: part 1 and the unsent tail are sent from the staging
    file, the freed parts are COS's already, and the object gets the record's metadata."""
    root = tmp_path / BUCKET
    area = StagingArea(root, min_free_bytes=0, bucket=BUCKET)
    data = data_of(23)
    staged = area.create("k")
    staged.write(0, data)
    session = store.begin_upload("k")
    for number, start in ((2, 5), (3, 10)):
        session.put_part(number, data[start:start + 5])
    staged.punch(5, 15)
    staged.journal(state=journal.CLOSED, upload_id=session.upload_id, punched=[5, 15], stream_part_size=5,
                   meta={"mode": "33188"}, content_type="text/plain")
    os.close(area._instance._lock_fd)  # the mount is gone
    area._instance._lock_fd = None
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1))
    try:
        resolutions = Recovery(root, store, uploader, tmp_path / "lost+found").run()
    finally:
        uploader.close()
    assert [r.outcome for r in resolutions] == ["uploaded"], resolutions
    assert store.objects["k"].data == data and store.objects["k"].meta == {"mode": "33188"}
    assert store.uploads == {}


def test_a_file_preallocated_by_truncate_is_sent_as_its_writes_arrive(fs, store, caplog):
    """A downloader that sets the final size first (``ftruncate``) then writes in order still
    streams, and no part is sent ahead of the bytes written."""
    data = data_of(6 * MiB)
    fh = fs.create("/f", 0o644, 0, 0)
    fs.truncate("/f", len(data))
    write_in_chunks(fs, fh, data[:3 * MiB])
    fs.files.node("/f").stream._upload.wait_sent()
    assert max(next(iter(store.uploads.values())).parts) <= 3, "only parts of written bytes"
    with caplog.at_level("INFO", logger="cosfs.filesystem.open_files"):
        write_in_chunks(fs, fh, data[3 * MiB:], start=3 * MiB)
    assert "already sent" not in caplog.text
    fs.release(fh)
    assert store.objects["f"].data == data
