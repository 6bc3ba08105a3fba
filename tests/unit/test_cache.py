"""StatCache and ListCache: TTLs on a fake clock, negative entries, subtree invalidation."""

from __future__ import annotations

import stat
import threading

import pytest

from cosfs.metadata.attrs import Attr
from cosfs.metadata.cache import MISSING, ListCache, Listing, StatCache
from tests.support.clock import FakeClock


def run_in_threads(work, count: int = 8) -> None:
    """``work(n)`` for n in 1..count, all at once; returns when every thread is done."""
    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, count + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def attr(size: int = 0) -> Attr:
    return Attr("file", stat.S_IFREG | 0o644, 0, 0, size, 0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stats(clock) -> StatCache:
    return StatCache(ttl=10, negative_ttl=2, clock=clock)


# --- StatCache -----------------------------------------------------------------------------


def test_unknown_path_is_none(stats):
    assert stats.get("/a") is None


def test_positive_entry_until_just_before_the_ttl(stats, clock):
    stats.put("/a", attr(5))
    clock.advance(9.999)
    assert stats.get("/a") == attr(5)


def test_positive_entry_expires_exactly_at_the_ttl(stats, clock):
    stats.put("/a", attr())
    clock.advance(10)
    assert stats.get("/a") is None


def test_negative_entry_lives_its_shorter_ttl(stats, clock):
    stats.put_missing("/gone")
    clock.advance(1.999)
    assert stats.get("/gone") is MISSING
    clock.advance(0.001)
    assert stats.get("/gone") is None


def test_put_replaces_a_negative_entry(stats):
    stats.put_missing("/a")
    stats.put("/a", attr())
    assert stats.get("/a") == attr()


def test_put_missing_replaces_a_positive_entry(stats):
    stats.put("/a", attr())
    stats.put_missing("/a")
    assert stats.get("/a") is MISSING
    assert len(stats) == 1


def test_put_restarts_the_ttl(stats, clock):
    stats.put("/a", attr(1))
    clock.advance(8)
    stats.put("/a", attr(2))
    clock.advance(8)
    assert stats.get("/a") == attr(2)


def test_zero_ttl_stores_nothing(clock):
    cache = StatCache(ttl=0, negative_ttl=0, clock=clock)
    cache.put("/a", attr())
    cache.put_missing("/b")
    assert (cache.get("/a"), cache.get("/b"), len(cache)) == (None, None, 0)


def test_zero_negative_ttl_keeps_positive_entries(clock):
    cache = StatCache(ttl=5, negative_ttl=0, clock=clock)
    cache.put("/a", attr())
    cache.put_missing("/b")
    assert cache.get("/a") == attr() and cache.get("/b") is None


def test_negative_ttl_may_exceed_positive(clock):
    cache = StatCache(ttl=1, negative_ttl=5, clock=clock)
    cache.put_missing("/a")
    clock.advance(3)
    assert cache.get("/a") is MISSING


@pytest.mark.parametrize("kwargs", [{"ttl": -1, "negative_ttl": 1},
                                    {"ttl": 1, "negative_ttl": -1},
                                    {"ttl": 1, "negative_ttl": 1, "maxsize": -1}])
def test_bad_settings(kwargs):
    with pytest.raises(ValueError):
        StatCache(**kwargs)


def test_invalidate_one_path(stats):
    stats.put("/a", attr())
    stats.put("/a/b", attr())
    stats.put_missing("/c")
    stats.invalidate("/a")
    stats.invalidate("/c")
    stats.invalidate("/never")
    assert (stats.get("/a"), stats.get("/a/b"), stats.get("/c")) == (None, attr(), None)


def test_invalidate_tree_stops_at_the_component_boundary(stats):
    for path in ("/a", "/a/b", "/a/b/c", "/ab", "/a.b", "/b"):
        stats.put(path, attr())
    stats.put_missing("/a/missing")
    stats.invalidate_tree("/a")
    remaining = {p for p in ("/a", "/a/b", "/a/b/c", "/ab", "/a.b", "/b", "/a/missing")
                 if stats.get(p) is not None}
    assert remaining == {"/ab", "/a.b", "/b"}


def test_invalidate_tree_accepts_a_trailing_slash(stats):
    stats.put("/a/b", attr())
    stats.invalidate_tree("/a/")
    assert stats.get("/a/b") is None


def test_invalidate_tree_of_root_clears_all(stats):
    stats.put("/", attr())
    stats.put("/x/y", attr())
    stats.put_missing("/z")
    stats.invalidate_tree("/")
    assert len(stats) == 0


def test_clear(stats):
    stats.put("/a", attr())
    stats.put_missing("/b")
    stats.clear()
    assert len(stats) == 0 and stats.get("/a") is None


def test_len_counts_live_entries_only(stats, clock):
    stats.put("/a", attr())
    stats.put_missing("/b")
    assert len(stats) == 2
    clock.advance(2)
    assert len(stats) == 1


def test_maxsize_evicts_the_least_recently_used(clock):
    cache = StatCache(ttl=10, negative_ttl=10, maxsize=2, clock=clock)
    cache.put("/a", attr())
    cache.put("/b", attr())
    cache.get("/a")
    cache.put("/c", attr())
    assert (cache.get("/a"), cache.get("/b"), cache.get("/c")) == (attr(), None, attr())


def test_missing_sentinel_is_a_singleton_with_a_plain_repr():
    assert repr(MISSING) == "MISSING"
    assert MISSING is not None and MISSING is MISSING


def test_concurrent_put_get_invalidate(clock):
    cache = StatCache(ttl=10, negative_ttl=5, maxsize=50, clock=clock)
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(2000):
                path = f"/d{i % 7}/f{(i * worker) % 97}"
                if i % 3 == 0:
                    cache.put(path, attr(i))
                elif i % 3 == 1:
                    cache.put_missing(path)
                result = cache.get(path)
                assert result is None or result is MISSING or isinstance(result, Attr)
                if i % 101 == 0:
                    cache.invalidate_tree(f"/d{i % 7}")
                len(cache)
        except Exception as exc:  # collected and asserted on the main thread
            errors.append(exc)

    run_in_threads(work)
    assert errors == []
    assert len(cache) <= 100


# --- Listing -------------------------------------------------------------------------------


def test_listing_names_are_sorted_and_kinds_known():
    listing = Listing({"b": "file", "a": "dir", "文": "symlink", "B": "file"})
    assert listing.names() == ("B", "a", "b", "文")
    assert (listing.kind("a"), listing.kind("nope")) == ("dir", None)
    assert "b" in listing and "c" not in listing


def test_an_empty_listing_is_still_a_truthy_cache_hit():
    assert Listing()


def test_listing_refuses_unknown_kinds():
    with pytest.raises(ValueError):
        Listing({"a": "fifo"})


def test_listing_is_a_snapshot():
    source = {"a": "file"}
    listing = Listing(source)
    source["b"] = "file"
    assert listing.names() == ("a",)
    with pytest.raises(TypeError):
        listing.entries["c"] = "file"


def test_empty_listing():
    assert Listing().names() == () and Listing() == Listing({})


# --- ListCache -----------------------------------------------------------------------------


@pytest.fixture
def lists(clock) -> ListCache:
    return ListCache(ttl=3, clock=clock)


def test_listing_until_the_ttl(lists, clock):
    lists.put("/d", Listing({"x": "file"}))
    clock.advance(2.999)
    assert lists.get("/d") == Listing({"x": "file"})
    clock.advance(0.001)
    assert lists.get("/d") is None


def test_list_cache_zero_ttl_stores_nothing(clock):
    cache = ListCache(ttl=0, clock=clock)
    cache.put("/d", Listing())
    assert cache.get("/d") is None and len(cache) == 0


def test_list_invalidate_one_dir(lists):
    lists.put("/d", Listing())
    lists.put("/d/e", Listing())
    lists.invalidate("/d")
    assert lists.get("/d") is None and lists.get("/d/e") == Listing()


def test_list_invalidate_tree(lists):
    for path in ("/d", "/d/e", "/d/e/f", "/de", "/"):
        lists.put(path, Listing())
    lists.invalidate_tree("/d")
    kept = {p for p in ("/d", "/d/e", "/d/e/f", "/de", "/") if lists.get(p) is not None}
    assert kept == {"/de", "/"}


def test_list_invalidate_tree_of_root_and_clear(lists):
    lists.put("/", Listing())
    lists.put("/a", Listing())
    lists.invalidate_tree("/")
    assert len(lists) == 0
    lists.put("/a", Listing())
    lists.clear()
    assert lists.get("/a") is None


def test_list_cache_maxsize(clock):
    cache = ListCache(ttl=10, max_entries=1, clock=clock)
    cache.put("/a", Listing())
    cache.put("/b", Listing())
    assert cache.get("/a") is None and cache.get("/b") == Listing()


def test_list_cache_concurrent_use(clock):
    cache = ListCache(ttl=10, max_entries=20, clock=clock)
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(2000):
                path = f"/d{(i * worker) % 31}"
                cache.put(path, Listing({str(i): "file"}))
                cache.get(path)
                if i % 50 == 0:
                    cache.invalidate_tree("/")
        except Exception as exc:  # collected and asserted on the main thread
            errors.append(exc)

    run_in_threads(work)
    assert errors == [] and len(cache) <= 20


# --- compact listings and the entry bound --------------------------------------------------


def test_a_listing_from_list_pages_sorts_names_and_shows_a_file_over_a_same_named_directory():
    listing = Listing.of_files_and_dirs(["a-b", "c", "x"], ["a", "x", "文"])
    assert listing.names() == ("a", "a-b", "c", "x", "文")
    assert [listing.kind(name) for name in listing.names()] == ["dir", "file", "file", "file", "dir"]
    assert listing == Listing({"a": "dir", "a-b": "file", "c": "file", "x": "file", "文": "dir"})
    assert dict(listing.entries.items()) == dict(listing.entries) and len(listing.entries) == 5


def test_an_edited_listing_is_a_new_sorted_listing():
    listing = Listing({"b": "file", "d": "dir"})
    assert listing.with_entry("c", "symlink").names() == ("b", "c", "d")
    assert listing.with_entry("b", "dir").kind("b") == "dir"
    assert listing.with_entry("d", None) == Listing({"b": "file"})
    assert listing.with_entry("zz", None) == listing and listing.names() == ("b", "d")


def test_list_cache_is_bounded_by_entries_not_listings(clock):
    cache = ListCache(ttl=10, max_entries=5, clock=clock)
    cache.put("/three", Listing({name: "file" for name in "abc"}))
    cache.put("/two", Listing({"a": "file", "b": "file"}))
    assert cache.get("/three") is not None and cache.get("/two") is not None
    cache.put("/one", Listing({"a": "file"}))  # 6 entries: the least recently used listing goes
    assert cache.get("/three") is None and cache.get("/one") is not None


def test_a_listing_larger_than_the_whole_bound_is_not_cached(clock):
    cache = ListCache(ttl=10, max_entries=3, clock=clock)
    cache.put("/d", Listing({"a": "file"}))
    cache.put("/d", Listing({name: "file" for name in "abcd"}))  # the old listing of /d is stale: gone too
    assert cache.get("/d") is None
    cache.put("/e", Listing({name: "file" for name in "abc"}))
    cache.edit("/e", "d", "file")  # grown past the bound by this mount: dropped, listed again next time
    assert cache.get("/e") is None
