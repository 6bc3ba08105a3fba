"""``-o trust_list``: ``ls -l`` of a directory costs its list pages and no HEAD, and shows the
sizes and times of the list entries, on both APIs. (About 2 s per API: 300 small PUTs.)"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.integration.bucket import Bucket, file_meta
from tests.integration.conftest import stop_and_show
from tests.integration.test_request_costs import LIST_OPERATIONS
from tests.support.mounted import mount

FILES = 300


@pytest.fixture
def trusting(emulator, tmp_path, api):
    """The bucket mounted with ``api`` and ``trust_list``; unmounted afterwards."""
    mounted = mount(emulator, tmp_path, f"api={api},trust_list=1")
    try:
        yield mounted
    finally:
        stop_and_show(mounted)


def test_ls_l_with_trust_list_sends_only_list_pages_and_shows_the_listed_sizes_and_times(trusting, emulator, api):
    """SEMANTICS.md (``trust_list``): "a listed file's attributes are taken from its list entry
    alone and put in the attribute cache, so `ls -l` ... costs the list pages and no HEAD. Size
    is the entry's size, mtime ... its Last-Modified, mode `0666` minus `umask`", and
    "uid, gid, mode and mtime that cosfs, COSFS or s3fs wrote in `x-cos-meta-*` are not seen"."""
    bucket = Bucket(emulator)
    sizes = {f"f{number:03d}": number % 7 for number in range(FILES)}
    for size in set(sizes.values()):
        bucket.put_many((f"data/{name}" for name, length in sizes.items() if length == size), b"x" * size,
                        file_meta(mode=0o100600, uid=1234, gid=1234, mtime=1_600_000_000))
    listed = {item["Key"][len("data/"):]: item for page in bucket.client.get_paginator("list_objects_v2")
              .paginate(Bucket=bucket.name, Prefix="data/") for item in page["Contents"]}
    directory = trusting.path / "data"
    os.stat(directory)  # what the directory itself is costs what it costs without trust_list
    emulator.admin("stats/reset")

    shown = subprocess.run(["ls", "-l", str(directory)], capture_output=True, text=True, check=True).stdout
    seen = {name: os.stat(directory / name) for name in sizes}

    counts = emulator.stats()
    print(f"\nls -l of {FILES} files with trust_list, api={api}: {counts}")
    assert len(shown.splitlines()) == FILES + 1
    assert counts and set(counts) <= LIST_OPERATIONS, counts
    for name, info in seen.items():
        assert info.st_size == sizes[name], name
        assert info.st_mtime_ns // 10**9 == int(listed[name]["LastModified"].timestamp()), name
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o644, os.getuid()), name
