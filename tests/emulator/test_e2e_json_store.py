"""Our ``JsonStore`` drives every operation of manual 003 against a running cosfs-emulator,
over real HTTP: directories (create, list with paging, stat, delete), simple and slice
uploads, resuming a slice upload, move, copy, update of custom headers, stat, delete, ranged
download, and the refusal of a replayed once signature.
"""

from __future__ import annotations

import errno
import hashlib
import random
import time
from typing import List, Optional, Sequence, Tuple

import pytest
import requests

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store
from cosfs.store import json_codec
from cosfs.store.json_store import JsonStore
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.errors import CosError
from cosfs.wire.signing import jsonsign
from tests.support.emulator import RunningEmulator

MiB = 1024 * 1024


@pytest.fixture
def store(emulator) -> JsonStore:
    credentials = StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test")
    return build_store(emulator.bucket, options_from_string(f"api=json,endpoint={emulator.url}"), credentials)


def pattern(size: int, seed: int = 1) -> bytes:
    """``size`` bytes that differ from one position (and one seed) to the next."""
    return random.Random(seed).randbytes(size)


def sign(emulator: RunningEmulator, key: str, once: bool = False) -> str:
    now, rand = int(time.time()), random.randint(0, 999_999_999)
    args = (emulator.appid, emulator.bucket_name, emulator.secret_id, emulator.secret_key)
    if once:
        return jsonsign.sign_once(*args, now, rand, "/" + key)
    return jsonsign.sign_multi(*args, now + 300, now, rand, "/" + key)


def post_form(emulator: RunningEmulator, key: str, fields: Sequence[Tuple[str, json_codec.FormValue]],
              authorization: Optional[str] = None) -> Tuple[int, dict]:
    """A JSON API form POST, signed (multi-use) unless ``authorization`` is given."""
    content_type, body = json_codec.encode_form(fields)
    url = f"{emulator.url}/files/v2/{emulator.appid}/{emulator.bucket_name}{jsonsign.encode_path('/' + key)}"
    response = requests.post(url, data=body, timeout=30, headers={
        "Content-Type": content_type, "Authorization": authorization or sign(emulator, key)})
    return response.status_code, response.json()


def names(page) -> List[str]:
    return sorted([info.key for info in page.files] + list(page.dirs))


# --- directories ----------------------------------------------------------------------------


def test_create_dir_is_stat_and_listed_as_a_directory(store):
    store.create_dir("photos/")

    info = store.stat("photos/")

    assert info is not None and info.is_dir
    assert store.list_page("").dirs == ("photos/",)


def test_delete_dir_removes_an_empty_directory(store):
    store.create_dir("empty/")

    store.delete_dir("empty/")

    assert store.stat("empty/") is None and store.list_page("").dirs == ()


def test_delete_dir_refuses_a_directory_that_holds_a_file(store):
    store.create_dir("full/")
    store.put_object("full/f", b"x")

    with pytest.raises(CosError) as refused:
        store.delete_dir("full/")

    assert (refused.value.code, refused.value.errno) == ("-173", errno.ENOTEMPTY)
    assert store.stat("full/") is not None


def test_list_pages_through_more_than_199_entries(store):
    store.create_dir("many/")
    expected = {f"many/f{n:03d}" for n in range(203)} | {"many/sub1/", "many/sub2/"}
    for key in sorted(expected):
        if key.endswith("/"):
            store.create_dir(key)
        else:
            store.put_object(key, b"")
    pages = [store.list_page("many/", max_keys=1000)]

    while pages[-1].next_marker is not None:
        pages.append(store.list_page("many/", marker=pages[-1].next_marker, max_keys=1000))

    listed = [name for page in pages for name in names(page)]
    assert [len(names(page)) for page in pages] == [199, 6]
    assert sorted(listed) == sorted(expected)


def test_walk_finds_files_in_subdirectories(store):
    store.create_dir("w/")
    store.create_dir("w/sub/")
    store.put_object("w/a", b"1")
    store.put_object("w/sub/b", b"2")

    walked = sorted(info.key for info in store.walk("w/"))

    assert walked == ["w/a", "w/sub/", "w/sub/b"]


# --- uploads --------------------------------------------------------------------------------


def test_simple_upload_is_stat_with_its_size_and_sha1(store):
    data = pattern(1000)

    store.put_object("up.bin", data)

    info = store.stat("up.bin")
    assert (info.size, info.etag, info.is_dir) == (1000, hashlib.sha1(data).hexdigest(), False)


def test_slice_upload_init_data_finish_stores_the_file(store):
    data = pattern(3 * MiB + 5)
    session = store.begin_upload("sliced.bin", len(data), part_size=MiB)

    parts = [session.put_part(n + 1, data[offset:offset + MiB]) for n, offset in enumerate(range(0, len(data), MiB))]
    session.complete(parts)

    assert store.stat("sliced.bin").etag == hashlib.sha1(data).hexdigest()
    assert store.read_range("sliced.bin", 0, len(data)) == data


def test_a_fresh_init_during_an_unfinished_upload_answers_4019(emulator, store):
    first = store.begin_upload("resume.bin", 3 * MiB, part_size=MiB)
    first.put_part(1, pattern(MiB))

    status, answer = post_form(emulator, "resume.bin", json_codec.slice_init_form(3 * MiB, MiB))

    assert (status, answer["code"]) == (400, -4019)


def test_a_resumed_upload_sends_only_the_missing_slices(emulator, store):
    data = pattern(4 * MiB)
    first = store.begin_upload("resume.bin", len(data), part_size=MiB)
    first.put_part(1, data[:MiB])
    first.put_part(2, data[MiB:2 * MiB])

    resumed = store.begin_upload("resume.bin", len(data), part_size=MiB)
    stored = resumed.list_parts()
    parts = list(stored) + [resumed.put_part(n, data[(n - 1) * MiB:n * MiB]) for n in (3, 4)]
    resumed.complete(parts)

    assert resumed.upload_id == first.upload_id
    assert [(part.number, part.size) for part in stored] == [(1, MiB), (2, MiB)]
    assert emulator.stats()["json.upload_slice_data"] == 4
    assert store.read_range("resume.bin", 0, len(data)) == data


# --- move, copy, update ---------------------------------------------------------------------


def test_move_without_overwrite_refuses_an_existing_destination(store):
    store.put_object("src", b"source")
    store.put_object("dst", b"target")

    with pytest.raises(CosError) as refused:
        store.move("src", "dst", overwrite=False)

    assert (refused.value.code, refused.value.errno) == ("-177", errno.EEXIST)
    assert (store.read_range("src", 0, 10), store.read_range("dst", 0, 10)) == (b"source", b"target")


def test_move_without_overwrite_renames_to_a_free_name(store):
    store.put_object("src", b"source")

    store.move("src", "fresh", overwrite=False)

    assert store.stat("src") is None and store.read_range("fresh", 0, 10) == b"source"


def test_move_with_overwrite_replaces_the_destination(store):
    store.create_dir("d/")
    store.put_object("src", b"source")
    store.put_object("d/dst", b"target")

    store.move("src", "d/dst", overwrite=True)

    assert store.stat("src") is None and store.read_range("d/dst", 0, 10) == b"source"


def test_copy_keeps_the_source_and_duplicates_the_data(store):
    data = pattern(5000)
    store.put_object("original", data)

    store.copy("original", "duplicate")

    assert store.read_range("original", 0, 5000) == data
    assert store.read_range("duplicate", 0, 5000) == data


def test_update_of_custom_headers_is_seen_by_stat(store):
    store.put_object("meta.txt", b"m")

    store.set_meta("meta.txt", {"mode": "0100600", "uid": "1000"}, "text/plain")

    info = store.stat("meta.txt")
    assert (info.meta, info.content_type) == ({"mode": "0100600", "uid": "1000"}, "text/plain")


def test_update_merges_into_the_headers_a_file_has(store):
    store.put_object("meta.txt", b"m", meta={"mode": "0100644"})

    store.set_meta("meta.txt", {"uid": "1000"})

    assert store.stat("meta.txt").meta == {"mode": "0100644", "uid": "1000"}


# --- stat, delete, download -----------------------------------------------------------------


def test_stat_of_a_missing_file_is_none(store):
    store.create_dir("dir/")

    assert (store.stat("missing"), store.stat("dir/missing"), store.stat("dir")) == (None, None, None)


def test_delete_file_removes_it_from_stat_and_listing(store):
    store.put_object("gone", b"x")
    store.put_object("kept", b"y")

    store.delete_file("gone")

    assert store.stat("gone") is None
    assert [info.key for info in store.list_page("").files] == ["kept"]


@pytest.mark.parametrize("start, length, expected", [
    (0, 10, b"0123456789"), (3, 4, b"3456"), (7, 100, b"789"), (10, 5, b""), (50, 1, b""),
])
def test_read_range_returns_the_bytes_of_the_range(store, start, length, expected):
    store.put_object("digits", b"0123456789")

    assert store.read_range("digits", start, length) == expected


def test_a_once_signature_is_refused_the_second_time(emulator, store):
    store.put_object("once.txt", b"first")
    authorization = sign(emulator, "once.txt", once=True)
    first = post_form(emulator, "once.txt", [("op", "delete")], authorization)
    store.put_object("once.txt", b"second")

    status, answer = post_form(emulator, "once.txt", [("op", "delete")], authorization)

    assert (first[0], first[1]["code"]) == (200, 0)
    assert (status, answer["code"]) == (400, -77)
    assert store.read_range("once.txt", 0, 10) == b"second"
