"""What ``cosfs status`` reads below the command layer: upload progress, dirty bytes, staging use."""

from __future__ import annotations

import os
import threading

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import options_from_string
from cosfs.data.staging import StagingArea
from cosfs.data.upload_tracker import UploadProgress, UploadTracker
from cosfs.data.uploader import Uploader, UploadPolicy
from cosfs.wire.errors import CosError
from tests.support.clock import FakeClock
from tests.support.fake_store import FakeStore


@pytest.fixture
def clocks():
    return FakeClock(1_700_000_000.0), FakeClock(500.0)


def test_an_upload_is_listed_with_its_progress_and_average_rate(clocks):
    wall, monotonic = clocks
    tracker = UploadTracker(clock=wall, monotonic=monotonic)

    upload = tracker.start("dir/big.bin", 100)
    monotonic.advance(4.0)
    upload.add(40)

    assert tracker.snapshot() == [UploadProgress("dir/big.bin", 40, 100, 1_700_000_000.0, 10.0)]


def test_a_finished_upload_leaves_the_list_and_finishing_twice_does_nothing(clocks):
    tracker = UploadTracker(*clocks)
    first, second = tracker.start("a", 10), tracker.start("b", 20)

    first.finish()
    first.finish()

    assert [progress.key for progress in tracker.snapshot()] == ["b"]
    second.finish()
    assert tracker.snapshot() == []


def test_progress_never_exceeds_the_total_and_a_new_upload_starts_at_zero_rate(clocks):
    tracker = UploadTracker(*clocks)
    upload = tracker.start("a", 10)

    assert tracker.snapshot()[0].rate_bps == 0.0
    upload.add(7)
    upload.add(7)

    assert tracker.snapshot()[0].bytes_done == 10


def test_concurrent_parts_are_all_counted(clocks):
    tracker = UploadTracker(*clocks)
    upload = tracker.start("big", 8 * 1000)

    workers = [threading.Thread(target=lambda: [upload.add(1) for _ in range(1000)]) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert tracker.snapshot()[0].bytes_done == 8000


# --- the uploader reports -------------------------------------------------------------------

class WatchedStore(FakeStore):
    """Records the tracker's view each time a request carrying data (or completing) is made."""

    def __init__(self, tracker: UploadTracker) -> None:
        super().__init__()
        self.tracker = tracker
        self.seen = []

    def _call(self, verb: str) -> None:
        if verb in ("put_object", "put_part", "complete"):
            self.seen.append((verb, [(p.bytes_done, p.bytes_total) for p in self.tracker.snapshot()]))
        super()._call(verb)


def staged(tmp_path, data: bytes):
    staged_file = StagingArea(tmp_path / "staging", min_free_bytes=0).create("k")
    staged_file.write(0, data)
    return staged_file


def test_a_single_put_shows_zero_then_leaves_the_list(tmp_path):
    tracker = UploadTracker()
    store = WatchedStore(tracker)
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1), progress=tracker)
    try:
        uploader.upload("k", staged(tmp_path, b"0123456789"))
    finally:
        uploader.close()

    assert store.seen == [("put_object", [(0, 10)])]
    assert tracker.snapshot() == []


def test_a_multipart_upload_advances_part_by_part(tmp_path):
    tracker = UploadTracker()
    store = WatchedStore(tracker)
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1), progress=tracker)
    try:
        uploader.upload("k", staged(tmp_path, b"x" * 12))
    finally:
        uploader.close()

    assert store.seen == [("put_part", [(0, 12)]), ("put_part", [(5, 12)]), ("put_part", [(10, 12)]),
                          ("complete", [(12, 12)])]
    assert tracker.snapshot() == []


def test_a_failed_upload_leaves_the_list(tmp_path):
    tracker = UploadTracker()
    store = FakeStore()
    store.fail("put_part", CosError("refused", status=403, code="AccessDenied"))
    uploader = Uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1), progress=tracker)
    try:
        with pytest.raises(CosError):
            uploader.upload("k", staged(tmp_path, b"x" * 12))
    finally:
        uploader.close()

    assert tracker.snapshot() == []


# --- dirty bytes and staging use ------------------------------------------------------------

@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def fs(store, tmp_path):
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0")
    return build_filesystem(store, options, "", "bucket-1250000000", clock=FakeClock(1_700_000_000.0))


def test_dirty_summary_counts_what_is_written_and_not_yet_stored(fs):
    first = fs.create("/a", 0o644, 0, 0)
    fs.write(first, b"x" * 100, 0)
    second = fs.create("/b", 0o644, 0, 0)
    fs.write(second, b"y" * 50, 0)

    assert fs.files.dirty_summary() == (2, 150)

    fs.flush(first)
    assert fs.files.dirty_summary() == (1, 50)
    fs.release(first)
    fs.release(second)
    assert fs.files.dirty_summary() == (0, 0)


def test_dirty_summary_answers_while_an_upload_holds_the_file(fs, store):
    """A status request must not wait for the upload it is asked about."""
    handle = fs.create("/big", 0o644, 0, 0)
    fs.write(handle, b"z" * 30, 0)
    uploading, release = threading.Event(), threading.Event()
    real_put = store.put_object

    def slow_put(*args, **kwargs):
        uploading.set()
        release.wait(10)
        return real_put(*args, **kwargs)

    store.put_object = slow_put
    flusher = threading.Thread(target=fs.flush, args=(handle,))
    flusher.start()
    try:
        assert uploading.wait(10)
        assert fs.files.dirty_summary() == (1, 30)
    finally:
        release.set()
        flusher.join(10)
    fs.release(handle)
    assert fs.files.dirty_summary() == (0, 0)


def test_staging_use_counts_allocated_blocks(tmp_path):
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    assert area.used_bytes() == 0

    dense = area.create("dense")
    dense.write(0, os.urandom(64 * 1024))
    sparse = area.create("sparse")
    sparse.truncate(10 * 1024 * 1024)  # a hole takes no disk

    assert 64 * 1024 <= area.used_bytes() < 1024 * 1024
    dense.discard()
    sparse.discard()
    assert area.used_bytes() == 0


def test_dirty_bytes_of_a_write_into_an_existing_object_are_the_bytes_written(fs, store):
    """``cosfs status`` says what is not yet in COS: a 100-byte write into a 10 MiB object
    holds 100 bytes, not the object's size."""
    store.put_raw("big", bytes(10 * 1024 * 1024))
    fh = fs.open("/big", os.O_WRONLY)
    fs.write(fh, b"z" * 100, 4096)
    assert fs.files.dirty_summary() == (1, 100)
    fs.release(fh)
    assert fs.files.dirty_summary() == (0, 0)
