"""The in-memory directory times (``cosfs.metadata.dir_times``)."""

from __future__ import annotations

from cosfs.metadata.dir_times import DirTimes


def test_touch_get_and_forget():
    times = DirTimes()
    times.touch("/d", 5)
    times.touch("/d", 7)
    assert times.get("/d") == 7 and times.get("/e") is None
    times.forget("/d")
    assert times.get("/d") is None


def test_forget_tree_drops_the_directory_and_below_only():
    times = DirTimes()
    for path in ("/a", "/a/b", "/ab"):
        times.touch(path, 1)
    times.forget_tree("/a")
    assert (times.get("/a"), times.get("/a/b"), times.get("/ab")) == (None, None, 1)


def test_bounded_least_recently_changed_first():
    times = DirTimes(max_entries=2)
    times.touch("/a", 1)
    times.touch("/b", 2)
    times.touch("/a", 3)
    times.touch("/c", 4)
    assert (times.get("/a"), times.get("/b"), times.get("/c")) == (3, None, 4)
