"""AttrStore: round trip, validators, removals, LRU trimming, a damaged file, two connections."""

from __future__ import annotations

import logging
import sqlite3
import stat
import threading

import pytest

from cosfs.metadata import attr_store
from cosfs.metadata.attr_store import AttrStore, Validators, store_file_name
from cosfs.metadata.attrs import Attr
from cosfs.store.interface import ObjectInfo

V1 = Validators("etag-1", 10, 1_600_000_000)


def attr(size: int = 10, mode: int = 0o640) -> Attr:
    return Attr("file", stat.S_IFREG | mode, 1000, 1001, size, 1_600_000_000_123_456_789, "etag-1",
                "text/plain", {"mode": str(stat.S_IFREG | mode), "color": "blue"})


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "attrs" / store_file_name("some/prefix/")


def test_a_recorded_attr_comes_back_exactly_after_reopening(db_path):
    store = AttrStore(db_path, 100)
    symlink = Attr("symlink", stat.S_IFLNK | 0o777, 0, 0, 3, 5, "e", None, {}, "abc")
    store.record("/a", attr(), V1)
    store.record("/l", symlink, Validators("e", 3, 0))
    store.close()

    reopened = AttrStore(db_path, 100)
    found = reopened.matching([("/a", V1), ("/l", Validators("e", 3, 0)), ("/unknown", V1)])
    assert found == {"/a": attr(), "/l": symlink}
    assert dict(found["/a"].meta) == {"mode": str(stat.S_IFREG | 0o640), "color": "blue"}
    reopened.close()


@pytest.mark.parametrize("changed", [Validators("etag-2", 10, 1_600_000_000), Validators("etag-1", 11, 1_600_000_000),
                                     Validators("etag-1", 10, 1_600_000_001)])
def test_any_changed_validator_hides_the_entry(db_path, changed):
    store = AttrStore(db_path, 100)
    store.record("/a", attr(), V1)
    store.flush()
    assert store.matching([("/a", changed)]) == {}
    assert store.matching([("/a", V1)]) == {"/a": attr()}
    store.close()


def test_validators_use_whole_seconds_as_a_head_reports_them():
    """A list page's Last-Modified has milliseconds (XML), a HEAD's has whole seconds."""
    listed = ObjectInfo("k", 10, 1_600_000_000_123_000_000, "etag-1")
    headed = ObjectInfo("k", 10, 1_600_000_000_000_000_000, "etag-1", meta={})
    assert Validators.of(listed) == Validators.of(headed) == V1


def test_forget_removes_a_path_or_a_whole_tree_and_keeps_the_order_of_changes(db_path):
    store = AttrStore(db_path, 100)
    for path in ("/d", "/d/x", "/d/sub/y", "/dx", "/e"):
        store.record(path, attr(), V1)
    store.forget("/e")
    store.forget("/d", tree=True)
    store.record("/d/new", attr(), V1)  # queued after the removal: it stays
    store.flush()
    listed = [(path, V1) for path in ("/d", "/d/x", "/d/sub/y", "/dx", "/e", "/d/new")]
    assert sorted(store.matching(listed)) == ["/d/new", "/dx"]
    store.close()


def test_changes_are_written_in_batches_not_per_key(db_path, monkeypatch):
    monkeypatch.setattr(attr_store, "FLUSH_AFTER", 3600)
    store = AttrStore(db_path, 10_000)
    for number in range(attr_store.BATCH - 1):
        store.record(f"/f{number}", attr(), V1)
    assert len(store) == 0  # still queued
    store.record("/last", attr(), V1)
    assert len(store) == attr_store.BATCH
    store.close()


def test_the_least_recently_used_entries_are_trimmed_in_a_batch(db_path):
    """The clock moves an hour per reading: a use is recorded once it is USE_REFRESH old."""
    store = AttrStore(db_path, 20, clock=(attr_store.USE_REFRESH * tick for tick in range(1, 10_000)).__next__)
    for number in range(20):
        store.record(f"/f{number:02d}", attr(), V1)
        store.flush()
    store.matching([("/f00", V1)])  # used: the most recent now
    store.flush()
    store.record("/f20", attr(), V1)
    store.flush()

    assert len(store) == 21 - (1 + 20 // 10)  # the excess and a tenth of the bound
    kept = store.matching([(f"/f{number:02d}", V1) for number in range(21)])
    assert "/f00" in kept and "/f20" in kept and "/f01" not in kept and "/f02" not in kept
    store.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_moved_aside_and_rebuilt_with_a_warning(db_path, caplog, damage):
    store = AttrStore(db_path, 100)
    for number in range(300):
        store.record(f"/f{number}", attr(), V1)
    store.close()
    content = db_path.read_bytes()
    db_path.write_bytes(b"not a database at all " * 100 if damage == "garbage" else content[:1500])

    with caplog.at_level(logging.WARNING, logger="cosfs.metadata.attr_store"):
        rebuilt = AttrStore(db_path, 100)
        rebuilt.record("/a", attr(), V1)
        rebuilt.flush()
        found = rebuilt.matching([("/a", V1), ("/f1", V1)])

    assert rebuilt.enabled
    assert found == {"/a": attr()}
    assert "damaged" in caplog.text
    assert list(db_path.parent.glob(db_path.name + ".corrupt-*"))
    rebuilt.close()


def test_an_unusable_location_turns_the_store_off_and_never_raises(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="cosfs.metadata.attr_store"):
        store = AttrStore(blocker / "attrs" / "x.sqlite", 100)
    store.record("/a", attr(), V1)
    store.flush()
    assert not store.enabled
    assert store.matching([("/a", V1)]) == {}
    assert "cannot be used" in caplog.text
    store.close()


def test_two_stores_on_one_file_write_at_once_without_damage(db_path):
    """Two mounts of the same bucket and prefix share the database (WAL, short busy timeout)."""
    stores = [AttrStore(db_path, 100_000) for _ in range(2)]

    def fill(index: int) -> None:
        for number in range(2_000):
            stores[index].record(f"/m{index}/f{number}", attr(), V1)
        stores[index].flush()

    threads = [threading.Thread(target=fill, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()

    check = AttrStore(db_path, 100_000)
    listed = [(f"/m{index}/f{number}", V1) for index in range(2) for number in range(2_000)]
    assert len(check.matching(listed)) == 4_000
    assert sqlite3.connect(db_path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_a_locked_database_keeps_the_batch_for_the_next_try(db_path):
    store = AttrStore(db_path, 100)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store.record("/a", attr(), V1)
    store.flush()  # waits at most BUSY_TIMEOUT, then keeps the change
    blocker.execute("COMMIT")
    blocker.close()
    store.flush()
    assert store.matching([("/a", V1)]) == {"/a": attr()}
    store.close()


def test_an_own_change_is_proven_by_etag_and_size_then_dated_by_the_first_list_entry(db_path):
    """A file this mount stored is known across mounts: COS's answer has no Last-Modified,
    so the first list page showing its ETag and size supplies it; from then on a metadata
    change behind the mount (same ETag and size, a later time) hides the entry again."""
    store = AttrStore(db_path, 100)
    store.record("/a", attr(), V1)
    store.record_own("/a", attr(mode=0o600))
    store.flush()
    assert store.matching([("/a", Validators("etag-2", 10, 1_600_000_000))]) == {}
    assert store.matching([("/a", V1)]) == {"/a": attr(mode=0o600)}
    store.close()

    reopened = AttrStore(db_path, 100)
    assert reopened.matching([("/a", V1)]) == {"/a": attr(mode=0o600)}
    assert reopened.matching([("/a", Validators("etag-1", 10, 1_600_000_009))]) == {}
    reopened.close()


def test_a_use_within_the_hour_rewrites_no_row(db_path, monkeypatch):
    """A remounted listing of 10,000 files rewrote every row's use time; within USE_REFRESH
    of the last recorded use nothing is written."""
    now = [1_000_000.0]
    store = AttrStore(db_path, 100, clock=lambda: now[0])
    store.record("/a", attr(), V1)
    store.flush()
    written = []
    monkeypatch.setattr(attr_store, "_apply", lambda writer, change, now_ms: written.append(change))

    now[0] += attr_store.USE_REFRESH / 2
    assert store.matching([("/a", V1)]) == {"/a": attr()}
    store.flush()
    assert written == []
    now[0] += attr_store.USE_REFRESH
    store.matching([("/a", V1)])
    store.flush()
    assert [type(change).__name__ for change in written] == ["_Use"]
    store.close()
