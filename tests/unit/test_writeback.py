"""Staging files on disk and uploading them: nothing is lost, nothing half-stored, all bounded."""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cosfs.data import staging
from cosfs.data.staging import StagingArea
from cosfs.data.uploader import Uploader, UploadPolicy
from cosfs.store.interface import StoreLimits
from cosfs.wire.errors import CosError, CosfsError
from tests.support.fake_store import FakeStore, FakeUpload

TINY = UploadPolicy(part_size=5, multipart_threshold=10, parallel=2)


@pytest.fixture
def area(tmp_path):
    return StagingArea(tmp_path / "staging", min_free_bytes=0)


@pytest.fixture
def store():
    return FakeStore()


def staged_with(area, data: bytes, key: str = "dir/file.bin"):
    staged = area.create(key)
    staged.write(0, data)
    return staged


@pytest.fixture
def make_uploader():
    """Uploaders with their own worker threads, stopped after the test."""
    made = []

    def make(store, policy=TINY):
        made.append(Uploader(store, policy))
        return made[-1]

    yield make
    for uploader in made:
        uploader.close()


# --- StagingArea ----------------------------------------------------------------------------

def test_staging_directory_is_created_private(tmp_path):
    area = StagingArea(tmp_path / "a" / "staging", min_free_bytes=0)
    assert stat.S_IMODE(os.stat(area.directory).st_mode) == 0o700
    assert area.leftovers == ()


def test_files_from_an_earlier_run_are_named_and_left_alone(tmp_path, caplog):
    directory = tmp_path / "staging"
    directory.mkdir(mode=0o700)
    (directory / "report.pdf.abc.staged").write_bytes(b"precious")
    with caplog.at_level(logging.WARNING, logger="cosfs.data.uploader"):
        area = StagingArea(directory, min_free_bytes=0)
    assert [p.name for p in area.leftovers] == ["report.pdf.abc.staged"]
    assert "report.pdf.abc.staged" in caplog.text
    assert (directory / "report.pdf.abc.staged").read_bytes() == b"precious"


def test_created_files_are_unique_private_and_named_after_the_key(area):
    first, second = area.create("photos/cat.jpg"), area.create("photos/cat.jpg")
    assert first.path != second.path
    assert first.path.parent == area.directory and first.path.name.startswith("cat.jpg.")
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600


def test_check_space_reports_enospc_naming_directory_and_option(tmp_path):
    area = StagingArea(tmp_path / "staging", min_free_bytes=1 << 62)
    with pytest.raises(CosfsError) as caught:
        area.check_space(1)
    assert caught.value.errno == errno.ENOSPC
    assert str(area.directory) in str(caught.value) and "ensure_diskfree" in str(caught.value)


def test_write_that_would_eat_the_reserve_fails_and_changes_nothing(tmp_path):
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    staged = staged_with(area, b"hello")
    area.min_free_bytes = 1 << 62
    with pytest.raises(CosfsError) as caught:
        staged.write(5, b" world")
    assert caught.value.errno == errno.ENOSPC
    staged.write(0, b"HELLO")  # overwriting in place needs no new space
    assert staged.read(0, 100) == b"HELLO" and staged.size == 5


def test_fill_checks_space_too(tmp_path):
    area = StagingArea(tmp_path / "staging", min_free_bytes=1 << 62)
    staged = area.create("k")
    with pytest.raises(CosfsError) as caught:
        staged.fill([b"abc"])
    assert caught.value.errno == errno.ENOSPC


# --- StagedFile -----------------------------------------------------------------------------

def test_write_read_sparse_truncate_and_size(area):
    staged = area.create("k")
    assert staged.write(10, b"xyz") == 3
    assert staged.size == 13
    assert staged.read(0, 100) == b"\0" * 10 + b"xyz"
    assert staged.read(11, 1) == b"y"
    assert staged.read(13, 5) == b""
    staged.truncate(11)
    assert staged.size == 11 and os.path.getsize(staged.path) == 11
    staged.truncate(15)
    assert staged.read(0, 100) == b"\0" * 10 + b"x" + b"\0" * 4


def test_fill_appends_chunks(area):
    staged = staged_with(area, b"ab")
    assert staged.fill(iter([b"cd", b"", b"efg"])) == 5
    assert staged.read(0, 100) == b"abcdefg" and staged.size == 7


def test_read_range_is_exact_or_an_error(area):
    staged = staged_with(area, b"0123456789")
    assert staged.read_range(2, 5) == b"234"
    with pytest.raises(CosfsError) as caught:
        staged.read_range(8, 12)
    assert caught.value.errno == errno.EIO and str(staged.path) in str(caught.value)


def test_discard_deletes_and_a_discarded_file_refuses_io(area):
    staged = staged_with(area, b"data")
    staged.discard()
    staged.discard()
    assert not staged.path.exists()
    with pytest.raises(CosfsError) as caught:
        staged.read(0, 1)
    assert caught.value.errno == errno.EBADF


def test_keep_makes_discard_leave_the_file_and_logs_its_path(area, caplog):
    staged = staged_with(area, b"data", key="docs/plan.txt")
    with caplog.at_level(logging.WARNING, logger="cosfs.data.uploader"):
        assert staged.keep() == staged.path
    assert str(staged.path) in caplog.text and "docs/plan.txt" in caplog.text
    staged.discard()
    assert staged.kept and staged.path.read_bytes() == b"data"


def test_forced_discard_deletes_a_kept_file(area):
    staged = staged_with(area, b"data")
    staged.keep()
    staged.discard(force=True)
    assert not staged.path.exists()


def test_concurrent_writes_and_reads_of_disjoint_ranges(area):
    staged = area.create("k")
    chunks = {i: bytes([i]) * 1000 for i in range(16)}

    def writer(i):
        staged.write(i * 1000, chunks[i])
        assert staged.read(i * 1000, 1000) == chunks[i]

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert staged.size == 16000
    assert staged.read(0, 16000) == b"".join(chunks[i] for i in range(16))


# --- Uploader: the happy paths ----------------------------------------------------------------

def test_small_file_is_one_put_with_exact_bytes_and_meta(area, store, make_uploader):
    staged = staged_with(area, b"0123456789")
    info = make_uploader(store).upload("a/b", staged, {"mode": "0644"}, "text/plain")
    assert store.calls["put_object"] == 1 and store.calls["begin_upload"] == 0
    stored = store.objects["a/b"]
    assert stored.data == b"0123456789" and stored.meta == {"mode": "0644"}
    assert stored.content_type == "text/plain" and info.size == 10


def test_empty_file_is_one_empty_put(area, store, make_uploader):
    make_uploader(store).upload("empty", area.create("empty"))
    assert store.objects["empty"].data == b"" and store.calls["put_object"] == 1


def test_large_file_is_a_multipart_upload_of_the_staged_bytes(area, store, make_uploader):
    data = random.Random(1).randbytes(23)
    staged = staged_with(area, data)
    info = make_uploader(store).upload("big", staged, {"uid": "1000"})
    assert store.calls["begin_upload"] == 1 and store.calls["put_part"] == 5
    assert store.calls["complete"] == 1 and store.calls["put_object"] == 0
    assert store.objects["big"].data == data and store.objects["big"].meta == {"uid": "1000"}
    assert info.size == 23 and store.uploads == {}


def test_multipart_when_the_api_cannot_put_that_much_at_once(area, make_uploader):
    limits = StoreLimits(max_put_size=8, max_parts=100, min_part_size=5, max_part_size=100)
    store = FakeStore(limits)
    make_uploader(store, UploadPolicy(part_size=5, multipart_threshold=1000)).upload("k", staged_with(area, b"x" * 9))
    assert store.calls["put_object"] == 0 and store.calls["put_part"] == 2


def test_session_part_size_from_a_json_like_api_is_obeyed(area, monkeypatch, make_uploader):
    limits = StoreLimits(max_put_size=10, max_parts=100, min_part_size=8, max_part_size=32,
                         allowed_part_sizes=(8, 16, 32), upload_needs_size=True)
    store = FakeStore(limits)
    asked = {}
    original = store.begin_upload

    def begin_upload(key, size=None, meta=None, content_type=None, part_size=None):
        asked.update(size=size, part_size=part_size)
        session = original(key, size, meta, content_type, part_size)
        session.part_size = 16  # the session dictates its slice size
        return session

    monkeypatch.setattr(store, "begin_upload", begin_upload)
    sizes = []
    real_put = FakeUpload.put_part
    monkeypatch.setattr(FakeUpload, "put_part",
                        lambda self, n, data: sizes.append(len(data)) or real_put(self, n, data))
    data = random.Random(2).randbytes(40)
    make_uploader(store, UploadPolicy(part_size=5, multipart_threshold=10)).upload("k", staged_with(area, data))
    assert asked == {"size": 40, "part_size": 8}  # plan_parts chose an allowed size
    assert sorted(sizes) == [8, 16, 16] and store.objects["k"].data == data


# --- Uploader: failures ---------------------------------------------------------------------

def test_failing_part_aborts_reraises_and_loses_nothing(area, store, make_uploader):
    store.put_raw("doc", b"old content")
    data = random.Random(3).randbytes(30)
    staged = staged_with(area, data)
    error = CosError("denied", status=403, code="AccessDenied", key="doc")
    store.fail("put_part", error)
    with pytest.raises(CosError) as caught:
        make_uploader(store).upload("doc", staged)
    assert caught.value is error and caught.value.errno == errno.EACCES
    assert store.calls["abort"] == 1 and store.calls["complete"] == 0 and store.uploads == {}
    assert store.objects["doc"].data == b"old content"
    assert staged.path.exists() and staged.read(0, 100) == data


def test_failing_put_leaves_the_old_object_and_the_staged_file(area, store, make_uploader):
    store.put_raw("doc", b"old")
    staged = staged_with(area, b"new")
    store.fail("put_object")
    with pytest.raises(CosError):
        make_uploader(store).upload("doc", staged)
    assert store.objects["doc"].data == b"old" and staged.read(0, 10) == b"new"


def test_failing_complete_aborts(area, store, make_uploader):
    store.fail("complete", CosError("bad part", status=400, code="InvalidPart"))
    with pytest.raises(CosError):
        make_uploader(store).upload("k", staged_with(area, b"x" * 20))
    assert store.calls["complete"] == 1 and store.calls["abort"] == 1 and "k" not in store.objects


def test_transient_complete_failure_is_retried_once(area, store, make_uploader):
    store.fail("complete")  # SlowDown: transient
    make_uploader(store).upload("k", staged_with(area, b"x" * 20))
    assert store.calls["complete"] == 2 and store.calls["abort"] == 0
    assert store.objects["k"].data == b"x" * 20


def test_second_transient_complete_failure_aborts(area, store, make_uploader):
    store.fail("complete", times=2)
    with pytest.raises(CosError):
        make_uploader(store).upload("k", staged_with(area, b"x" * 20))
    assert store.calls["complete"] == 2 and store.calls["abort"] == 1


def test_failing_abort_is_logged_and_does_not_mask_the_original_error(area, store, caplog, make_uploader):
    original = CosError("denied", status=403, code="AccessDenied")
    store.fail("put_part", original)
    store.fail("abort", CosError("boom", status=500, code="InternalError"))
    with caplog.at_level(logging.WARNING, logger="cosfs.data.uploader"):
        with pytest.raises(CosError) as caught:
            make_uploader(store).upload("k", staged_with(area, b"x" * 20))
    assert caught.value is original
    assert "could not abort" in caplog.text


def test_no_parts_are_sent_after_one_failed(area, store, make_uploader):
    store.fail("put_part", CosError("denied", status=403, code="AccessDenied"))
    with pytest.raises(CosError):
        make_uploader(store, UploadPolicy(part_size=5, multipart_threshold=10, parallel=1)).upload(
            "k", staged_with(area, b"x" * 100))
    assert store.calls["put_part"] == 1


# --- Uploader: bounds -----------------------------------------------------------------------

class Gauge:
    """Counts something in flight and remembers the most seen at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def up(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def down(self) -> None:
        with self.lock:
            self.now -= 1


def test_parts_in_flight_and_bytes_read_ahead_stay_within_parallel(area, store, monkeypatch, make_uploader):
    parallel = 3
    in_put, read_ahead = Gauge(), Gauge()
    barrier = threading.Barrier(parallel, timeout=10)
    real_put = FakeUpload.put_part

    def put_part(self, number, data):
        in_put.up()
        try:
            barrier.wait()  # proves `parallel` parts really run together
            return real_put(self, number, data)
        finally:
            in_put.down()
            read_ahead.down()

    monkeypatch.setattr(FakeUpload, "put_part", put_part)
    data = random.Random(4).randbytes(5 * parallel * 4)
    staged = staged_with(area, data)
    real_read = staged.read_range

    def read_range(start, end):
        read_ahead.up()
        return real_read(start, end)

    monkeypatch.setattr(staged, "read_range", read_range)
    policy = UploadPolicy(part_size=5, multipart_threshold=10, parallel=parallel)
    make_uploader(store, policy).upload("k", staged)
    assert in_put.most == parallel and read_ahead.most == parallel
    assert store.objects["k"].data == data


def test_uploads_given_an_executor_use_it(area, store):
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="shared") as executor:
        uploader = Uploader(store, TINY, executor)
        uploader.upload("k", staged_with(area, b"y" * 31))
        uploader.close()  # does not shut down a borrowed executor
        assert executor.submit(lambda: 1).result() == 1
    assert store.objects["k"].data == b"y" * 31


def test_bad_policy_is_refused():
    with pytest.raises(CosfsError):
        UploadPolicy(parallel=0)


def test_disk_errors_become_cosfs_errors_with_their_errno(tmp_path):
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    shutil.rmtree(area.directory)
    with pytest.raises(CosfsError) as caught:
        area.create("k")
    assert caught.value.errno == errno.ENOENT and str(area.directory) in str(caught.value)


def test_a_sequential_write_asks_for_free_space_once_per_allowance_not_per_write(tmp_path, monkeypatch):
    """Issue 11: ``statvfs`` ran on every write that grew a file."""
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    staged = staged_with(area, b"")
    asked = []
    real = staging.os.statvfs
    monkeypatch.setattr(staging.os, "statvfs", lambda path: asked.append(path) or real(path))

    for number in range(1_000):
        staged.write(number * 4096, b"x" * 4096)

    assert len(asked) <= 2, len(asked)
    assert staged.size == 1_000 * 4096


def test_the_reserve_still_refuses_once_the_allowance_is_spent(tmp_path, monkeypatch):
    area = StagingArea(tmp_path / "staging", min_free_bytes=0)
    free = [10 * 4096]

    class Answer:
        f_frsize = 1
        @property
        def f_bavail(self):
            return free[0]

    monkeypatch.setattr(staging.os, "statvfs", lambda path: Answer())
    area.check_space(4096)  # room 40,960: an allowance of half what is left
    free[0] = 4096  # someone else filled the disk
    area.check_space(4096)  # within the allowance: not asked
    area.check_space(4096)
    with pytest.raises(CosfsError) as caught:
        area.check_space(4096 * 3)  # past the allowance: asked again, and refused
    assert caught.value.errno == errno.ENOSPC
