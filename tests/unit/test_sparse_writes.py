"""Writes into existing objects through ``OpenFiles`` over the in-memory store: nothing is
downloaded, the flush copies the untouched parts server-side and uploads the rest.

SEMANTICS.md: "A write at an offset, an append or a truncate of an existing file stages
only the bytes written; reads see them over the object's bytes at once, and ``close``
stores the new version by copying the unchanged parts inside COS and uploading the parts
that changed."
"""

from __future__ import annotations

import errno
import os
import random

from cosfs.data import journal
from tests.unit.test_fs import clock, errno_of, fs, store  # noqa: F401 (fixtures)

MiB = 1024 * 1024


def existing(store, key: str, size: int, seed: int = 1) -> bytes:
    data = random.Random(seed).randbytes(size)
    store.put_raw(key, data)
    return data


def read_all(fs, fh, size: int) -> bytes:
    return fs.read(fh, size + 10, 0)


def test_random_writes_and_truncates_read_back_and_store_exactly_the_model(fs, store):
    model = bytearray(existing(store, "f", 5 * MiB + 123))
    rng = random.Random(5)
    fh = fs.open("/f", os.O_RDWR)
    for step in range(30):
        if step % 7 == 6:
            length = rng.randrange(len(model) + MiB)
            fs.ftruncate(fh, length)
            model = model[:length] + bytes(max(0, length - len(model)))
        else:
            offset = rng.randrange(len(model) + 100_000)
            data = rng.randbytes(rng.randrange(1, 200_000))
            fs.write(fh, data, offset)
            if offset > len(model):
                model += bytes(offset - len(model))
            model[offset:offset + len(data)] = data
        assert fs.getattr("/f").size == len(model)
        start = rng.randrange(len(model))
        assert fs.read(fh, 70_000, start) == bytes(model[start:start + 70_000])
    assert store.calls["put_part"] + store.calls["copy_part"] == 0, "nothing is sent before the flush"
    fs.flush(fh)
    assert store.objects["f"].data == bytes(model)
    assert read_all(fs, fh, len(model)) == bytes(model), "the stored version is the new base"
    fs.write(fh, b"again", 17)
    model[17:22] = b"again"
    fs.release(fh)
    assert store.objects["f"].data == bytes(model)
    assert list(fs.files.staging.directory.glob("*" + journal.DATA_SUFFIX)) == []


def test_an_append_copies_the_old_object_in_a_few_parts_and_sends_only_the_new_bytes(fs, store):
    old = existing(store, "log", 10 * MiB + 1000)
    fh = fs.open("/log", os.O_WRONLY | os.O_APPEND)
    reads = store.calls["read_range"]
    fs.write(fh, b"one more line\n", 0)
    assert store.calls["read_range"] == reads
    fs.release(fh)
    assert store.objects["log"].data == old + b"one more line\n"
    assert 1 <= store.calls["copy_part"] <= 8, "the old bytes: at most parallel_count copies"
    assert store.calls["put_part"] == 1, "the last part: the new line alone"
    assert store.calls["read_range"] == reads, "nothing of the old object is downloaded"


def test_a_rewrite_in_the_middle_uploads_only_its_part(fs, store):
    old = bytearray(existing(store, "f", 8 * MiB))
    fh = fs.open("/f", os.O_WRONLY)
    fs.write(fh, b"x" * 4096, 3 * MiB + 100)
    fs.release(fh)
    old[3 * MiB + 100:3 * MiB + 4196] = b"x" * 4096
    assert store.objects["f"].data == bytes(old)
    assert store.calls["put_part"] == 1 and store.calls["copy_part"] <= 2 * 8
    assert store.calls["read_range"] == 0, "the written 4 KiB is a part of its own (the fake's minimum is 5 bytes)"


def test_truncate_down_then_up_reads_zeros_not_the_old_bytes(fs, store):
    old = existing(store, "f", 3 * MiB)
    fh = fs.open("/f", os.O_RDWR)
    fs.ftruncate(fh, MiB)
    fs.ftruncate(fh, 2 * MiB)
    fs.write(fh, b"tail", 2 * MiB)
    expected = old[:MiB] + bytes(MiB) + b"tail"
    assert read_all(fs, fh, len(expected)) == expected
    fs.release(fh)
    assert store.objects["f"].data == expected
    assert store.calls["copy_part"] == 1, "only the first part is still the old object's"


def test_a_small_new_version_is_assembled_and_put(fs, store):
    old = existing(store, "small", 1000)
    fh = fs.open("/small", os.O_WRONLY)
    fs.write(fh, b"Z", 500)
    fs.release(fh)
    assert store.objects["small"].data == old[:500] + b"Z" + old[501:]
    assert store.calls["copy_part"] == 0 and store.calls["put_object"] >= 1


def test_an_object_changed_behind_our_back_fails_the_flush_and_is_not_mixed(fs, store):
    """SEMANTICS.md: an existing object is never replaced by a mix of two versions."""
    existing(store, "f", 4 * MiB)
    fh = fs.open("/f", os.O_WRONLY)
    fs.write(fh, b"mine", 10)
    theirs = existing(store, "f", 4 * MiB, seed=2)
    assert errno_of(fs.flush, fh) == errno.ESTALE
    assert store.objects["f"].data == theirs
    assert store.uploads == {} or all(not u.parts for u in store.uploads.values())
    record = journal.read_record(next(fs.files.staging.directory.glob("*" + journal.RECORD_SUFFIX)))
    assert record.sparse and record.extents == [[10, 14]] and record.size == 4 * MiB
    assert record.state == journal.FAILED


def test_a_file_appended_to_and_renamed_while_open_reads_its_new_version(fs, store):
    old = existing(store, "a", 3 * MiB)
    fh = fs.open("/a", os.O_RDWR)
    fs.write(fh, b"end", 3 * MiB)
    fs.rename("/a", "/b")
    assert fs.read(fh, 3 * MiB + 10, 0) == old + b"end"
    fs.write(fh, b"more", 3 * MiB + 3)
    fs.release(fh)
    assert store.objects["b"].data == old + b"endmore" and "a" not in store.objects


def test_a_truncate_to_zero_after_sparse_writes_starts_a_plain_version(fs, store):
    existing(store, "f", 3 * MiB)
    fh = fs.open("/f", os.O_RDWR)
    fs.write(fh, b"middle", MiB)
    fs.ftruncate(fh, 0)
    assert fs.getattr("/f").size == 0
    fs.write(fh, b"fresh", 0)
    assert read_all(fs, fh, 5) == b"fresh", "nothing of the old object shows through"
    fs.release(fh)
    assert store.objects["f"].data == b"fresh"
    assert list(fs.files.staging.directory.glob("*" + journal.DATA_SUFFIX)) == []
