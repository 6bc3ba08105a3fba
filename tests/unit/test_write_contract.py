"""The write contract of ``OpenFiles`` over the in-memory store: what each close uploads.

Processes are plain numbers here (the FUSE adapter passes thread-group ids); ``None`` is
cosfs itself.
"""

from __future__ import annotations

import dataclasses
import errno
import os

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import options_from_string
from cosfs.data import journal
from cosfs.wire.errors import CosError, CosfsError
from tests.support.fake_store import FAKE_LIMITS, FakeStore
from tests.unit.test_fs import clock, errno_of, fs, store, write_file  # noqa: F401 (fixtures)

SHELL, CHILD = 100, 200


def uploads(store) -> int:
    return store.calls["put_object"] + store.calls["complete"]


def records(fs):
    return sorted(fs.files.staging.directory.glob("*" + journal.RECORD_SUFFIX))


def test_a_failed_write_poisons_every_later_close_until_truncated(fs, store):
    """SEMANTICS.md: an existing object is never replaced by a version whose write failed."""
    write_file(fs, "/f", b"old")
    fh = fs.open("/f", os.O_WRONLY)
    fs.files.staging.min_free_bytes = 1 << 62
    assert errno_of(fs.write, fh, b"x" * 10, 0) == errno.ENOSPC
    fs.files.staging.min_free_bytes = 0
    fs.write(fh, b"y", 0)  # a later write that works does not make the file whole
    before = uploads(store)
    assert errno_of(fs.flush, fh) == errno.ENOSPC
    assert errno_of(fs.fsync, fh) == errno.ENOSPC
    fs.release(fh)
    assert uploads(store) == before and store.objects["f"].data == b"old"
    assert records(fs) == [], "the incomplete data is not kept for recovery"

    fh = fs.open("/f", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"new", 0)
    fs.flush(fh)
    fs.release(fh)
    assert store.objects["f"].data == b"new"


def test_a_failed_download_for_a_partial_write_poisons_too(clock, tmp_path):
    """Where parts cannot be copied (JSON), a partial write downloads the object first."""
    store = FakeStore(dataclasses.replace(FAKE_LIMITS, part_copy=False))
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0")
    fs = build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)
    write_file(fs, "/f", b"0123456789")
    fh = fs.open("/f", os.O_WRONLY)
    store.fail("read_range", CosError("reset", code="ConnectionError"))
    assert errno_of(fs.write, fh, b"X", 5) == errno.EIO
    fs.write(fh, b"Y", 6)  # staging now works, but the first write is lost
    assert errno_of(fs.flush, fh) == errno.EIO
    fs.release(fh)
    assert store.objects["f"].data == b"0123456789"


def test_a_failed_read_of_old_bytes_at_a_sparse_flush_keeps_the_data_and_the_object(fs, store):
    """A sparse write downloads nothing; the flush needs the old bytes around it, and when
    they cannot be read the close fails, COS keeps the old object, and the data is kept."""
    write_file(fs, "/f", b"0123456789")
    fh = fs.open("/f", os.O_WRONLY)
    reads = store.calls["read_range"]
    fs.write(fh, b"X", 5)
    assert store.calls["read_range"] == reads, "a write into an existing object downloads nothing"
    store.fail("read_range", CosError("reset", code="ConnectionError"))
    assert errno_of(fs.flush, fh) == errno.EIO
    assert store.objects["f"].data == b"0123456789"
    fs.flush(fh)  # the next try reads the old bytes and stores the new version
    fs.release(fh)
    assert store.objects["f"].data == b"01234X6789"


def test_a_new_file_whose_write_failed_leaves_nothing(fs, store):
    fh = fs.create("/new", 0o644, 0, 0)
    fs.files.staging.min_free_bytes = 1 << 62
    assert errno_of(fs.write, fh, b"hello", 0) == errno.ENOSPC
    assert errno_of(fs.flush, fh) == errno.ENOSPC
    fs.release(fh)
    assert "new" not in store.objects
    assert errno_of(fs.getattr, "/new") == errno.ENOENT
    assert "new" not in [e.name for e in fs.readdir("/")]


def test_a_reader_close_never_uploads(fs, store):
    write_file(fs, "/f", b"data")
    writer = fs.open("/f", os.O_WRONLY, SHELL)
    fs.write(writer, b"DATA", 0)
    before = uploads(store)
    for _ in range(5):
        reader = fs.open("/f", os.O_RDONLY, SHELL)
        assert fs.read(reader, 10, 0) == b"DATA"
        fs.flush(reader, SHELL)
        fs.release(reader)
    assert uploads(store) == before
    fs.flush(writer, SHELL)
    assert uploads(store) == before + 1


def test_closes_by_other_processes_defer_to_the_opener(fs, store):
    """``(head; head; ...) > f``: children close inherited descriptors; the shell's close stores."""
    fh = fs.create("/f", 0o644, 0, 0, owner=SHELL)
    for index in range(3):
        fs.write(fh, b"x" * 10, index * 10)
        fs.flush(fh, CHILD + index)
    assert uploads(store) == 0
    fs.flush(fh, SHELL)
    assert uploads(store) == 1 and store.objects["f"].data == b"x" * 30
    fs.release(fh)
    assert uploads(store) == 1, "nothing changed since"


def test_the_last_close_stores_what_only_children_wrote(fs, store):
    fh = fs.create("/f", 0o644, 0, 0, owner=SHELL)
    fs.flush(fh, SHELL)  # the shell closes its copy first: an empty new file is not published
    fs.write(fh, b"late", 0)
    fs.flush(fh, CHILD)
    assert "f" not in store.objects
    fs.release(fh)
    assert store.objects["f"].data == b"late"


def test_o_trunc_publishes_nothing_until_data_or_the_last_close(fs, store):
    write_file(fs, "/f", b"precious")
    fh = fs.open("/f", os.O_WRONLY | os.O_TRUNC, SHELL)
    fs.flush(fh, SHELL)  # the shell's close after dup2
    assert store.objects["f"].data == b"precious"
    fs.write(fh, b"new", 0)
    fs.flush(fh, SHELL)
    assert store.objects["f"].data == b"new"
    fs.release(fh)

    fh = fs.open("/f", os.O_WRONLY | os.O_TRUNC, SHELL)
    fs.flush(fh, SHELL)
    assert store.objects["f"].data == b"new"
    fs.release(fh)  # nothing was ever written: the truncation itself is the new version
    assert store.objects["f"].data == b""


def test_fsync_stores_whoever_changed_the_file(fs, store):
    fh = fs.create("/f", 0o644, 0, 0, owner=SHELL)
    fs.fsync(fh)
    assert store.objects["f"].data == b"", "fsync publishes even an empty new file"


def test_a_failed_upload_keeps_data_and_record_for_recovery(fs, store):
    write_file(fs, "/f", b"old")
    fh = fs.open("/f", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"new", 0)
    store.fail("put_object", CosError("down", status=503, code="ServiceUnavailable"), times=10)
    with pytest.raises(CosfsError):
        fs.flush(fh)
    fs.release(fh)
    [record] = records(fs)
    assert journal.read_record(record).state == journal.FAILED
    assert journal.data_path(record).read_bytes() == b"new"
    assert store.objects["f"].data == b"old"


def test_the_journal_follows_a_write_and_is_gone_after_the_last_close(fs, store):
    fh = fs.create("/f", 0o644, 0, 0)
    fs.write(fh, b"abc", 0)
    [record] = records(fs)
    assert journal.read_record(record).state == journal.WRITING
    fs.fsync(fh)
    [record] = records(fs)  # each change writes a new generation and removes the old one
    assert journal.read_record(record).state == journal.STORED
    fs.write(fh, b"d", 3)
    [record] = records(fs)
    assert journal.read_record(record).state == journal.WRITING
    fs.release(fh)
    assert records(fs) == [] and list(fs.files.staging.directory.glob("*.staged")) == []


def test_an_upload_at_the_last_close_deletes_the_copy_without_a_stored_record(fs, store, monkeypatch):
    """The upload deferred to the last close (here: only a child wrote) is followed by the
    deletion of the staging file: its record goes from ``closed`` straight to deleted."""
    fh = fs.create("/f", 0o644, 0, 0, owner=SHELL)
    fs.write(fh, b"abc", 0)
    fs.flush(fh, CHILD)
    written = []
    real = journal.replace_record
    monkeypatch.setattr(journal, "replace_record", lambda path, record: written.append(record.state) or real(path, record))
    fs.release(fh)
    assert store.objects["f"].data == b"abc"
    assert written == [journal.CLOSED]
    assert records(fs) == [] and list(fs.files.staging.directory.glob("*.staged")) == []


def test_a_close_with_another_handle_open_keeps_the_staged_copy_as_stored(fs, store):
    fh = fs.create("/f", 0o644, 0, 0)
    other = fs.open("/f", os.O_RDWR)
    fs.write(fh, b"abc", 0)
    fs.flush(fh)
    [record] = records(fs)
    assert journal.read_record(record).state == journal.STORED
    fs.release(fh)
    assert fs.read(other, 10, 0) == b"abc"
    fs.release(other)
    assert records(fs) == [] and store.objects["f"].data == b"abc"


def test_a_rename_of_an_open_file_moves_its_record(fs, store):
    fh = fs.create("/a", 0o644, 0, 0)
    fs.write(fh, b"abc", 0)
    fs.rename("/a", "/b")
    fs.write(fh, b"d", 3)
    [record] = records(fs)
    assert journal.read_record(record).key == "b"
    fs.release(fh)
    assert store.objects["b"].data == b"abcd"


def test_close_all_stores_open_files_and_leaves_no_staging(fs, store):
    """At unmount (SIGTERM, lazy unmount): pending data stored, staging files gone."""
    fh = fs.create("/f", 0o644, 0, 0)
    fs.write(fh, b"pending", 0)
    assert fs.files.close_all() == []
    fs.files.staging.close()
    assert store.objects["f"].data == b"pending"
    assert not fs.files.staging.directory.exists()
