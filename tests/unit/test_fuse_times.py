"""How the FUSE adapter reads the times a ``utimens`` asks for."""

from __future__ import annotations

from cosfs.fuse_adapter import binding
from cosfs.fuse_adapter.operations import CosOperations


class _RecordingFs:
    def __init__(self) -> None:
        self.times = []

    def utimens(self, path, mtime_ns, atime_ns=None):
        self.times.append((mtime_ns, atime_ns))


def _utimens(times):
    fs = _RecordingFs()
    CosOperations(fs).utimens("/f", times)
    return fs.times[0]


def test_both_times_now_are_one_instant():
    """``touch f`` (utimensat with NULL, or UTIME_NOW twice) sets atime and mtime to the
    same current time, as a disk filesystem does."""
    for times in (None, (binding.UTIME_NOW, binding.UTIME_NOW)):
        mtime_ns, atime_ns = _utimens(times)
        assert mtime_ns is not None and mtime_ns == atime_ns


def test_given_and_omitted_times():
    assert _utimens((5, 7)) == (7, 5)
    assert _utimens((binding.UTIME_OMIT, 7)) == (7, None)
    mtime_ns, atime_ns = _utimens((5, binding.UTIME_OMIT))
    assert (mtime_ns, atime_ns) == (None, 5)
