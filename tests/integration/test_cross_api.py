"""One bucket, two mounts: one with the XML API, one with the legacy JSON API.

What either API writes, the other reads back identically: content, size, mode, mtime,
directories and symlinks. Small parts make a 3 MiB file a multipart (XML) or slice (JSON)
upload.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.support.mounted import mount

SMALL_PARTS = "multipart_threshold=1,multipart_size=1"


@pytest.fixture
def both(emulator, tmp_path):
    """``{"xml": path, "json": path}``: the same bucket mounted with each API."""
    mounts = {api: mount(emulator, tmp_path, f"api={api},{SMALL_PARTS}", name=f"mnt-{api}") for api in ("xml", "json")}
    try:
        yield {api: mounted.path for api, mounted in mounts.items()}
    finally:
        for api, mounted in mounts.items():
            status = mounted.stop()
            print(f"--- cosfs log, api={api} (exit status {status}) ---\n{mounted.log()}")


DIRECTIONS = [("json", "xml"), ("xml", "json")]


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_small_file_reads_back_identically(both, writer, reader):
    data = os.urandom(10_000)
    (both[writer] / "small.bin").write_bytes(data)

    assert (both[reader] / "small.bin").read_bytes() == data


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_multipart_file_reads_back_identically(both, writer, reader):
    data = os.urandom(3 * 1024 * 1024 + 123)
    (both[writer] / "large.bin").write_bytes(data)

    read = (both[reader] / "large.bin").read_bytes()

    assert hashlib.sha256(read).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_attributes_read_back_identically(both, writer, reader):
    """The mode and times of a file just written are held for a moment; SEMANTICS.md:
    "`fsync()` [...] applies its held metadata change": the writer's fsync stores them
    before the other mount looks."""
    (both[writer] / "f").write_bytes(b"attrs")
    os.chmod(both[writer] / "f", 0o604)
    os.utime(both[writer] / "f", ns=(1_500_000_000_250_000_000, 1_500_000_000_250_000_000))
    descriptor = os.open(both[writer] / "f", os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    written = os.stat(both[writer] / "f")

    read = os.stat(both[reader] / "f")

    assert (read.st_mode, read.st_size, read.st_mtime_ns, read.st_uid) == (
        written.st_mode, written.st_size, written.st_mtime_ns, written.st_uid)


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_directories_and_symlinks_read_back(both, writer, reader):
    (both[writer] / "d" / "e").mkdir(parents=True)
    (both[writer] / "d" / "e" / "f").write_bytes(b"nested")
    os.symlink("d/e/f", both[writer] / "link")

    assert sorted(os.listdir(both[reader])) == ["d", "link"]
    assert os.readlink(both[reader] / "link") == "d/e/f"
    assert (both[reader] / "link").read_bytes() == b"nested"


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_awkward_names_read_back(both, writer, reader):
    names = ["中文 +%.txt", "é"]
    for name in names:
        (both[writer] / name).write_text(name)

    assert sorted(os.listdir(both[reader])) == sorted(names)
    assert [(both[reader] / name).read_text() for name in names] == names
