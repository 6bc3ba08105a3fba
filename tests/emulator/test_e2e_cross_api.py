"""One bucket, two APIs: what the JSON API writes, the XML API reads back identically (through
our ``XmlStore`` and Tencent's ``qcloud_cos`` SDK), and the other way round; user metadata
(``x-cos-meta-*``) and directory markers too. All over HTTP to a running cosfs-emulator.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from cosfs.command.options import options_from_string
from cosfs.command.store_factory import build_store
from cosfs.wire.credentials import Credentials, StaticProvider

pytest.importorskip("qcloud_cos")
from qcloud_cos import CosConfig, CosS3Client  # noqa: E402

MiB = 1024 * 1024
UNICODE_KEY = "中文/a b+c%~!.txt"


def _credentials(emulator) -> StaticProvider:
    return StaticProvider(Credentials(emulator.secret_id, emulator.secret_key), "test")


@pytest.fixture
def json_store(emulator):
    options = options_from_string(f"api=json,endpoint={emulator.url}")
    return build_store(emulator.bucket, options, _credentials(emulator))


@pytest.fixture
def xml_store(emulator):
    return build_store(emulator.bucket, options_from_string(f"endpoint={emulator.url}"), _credentials(emulator))


@pytest.fixture
def sdk(emulator) -> CosS3Client:
    config = CosConfig(Region=emulator.region, SecretId=emulator.secret_id, SecretKey=emulator.secret_key,
                       Scheme="http", IP="127.0.0.1", Port=emulator.port)
    return CosS3Client(config, retry=1)


def pattern(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def sdk_read(sdk: CosS3Client, bucket: str, key: str) -> bytes:
    return sdk.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read()


# --- data -----------------------------------------------------------------------------------


def test_a_file_uploaded_through_json_reads_back_identically_through_xml_store(json_store, xml_store):
    data = pattern(100_000)
    json_store.put_object("j.bin", data)

    assert xml_store.read_range("j.bin", 0, len(data) + 10) == data
    assert xml_store.stat("j.bin").etag == hashlib.md5(data).hexdigest()


def test_a_file_uploaded_through_json_reads_back_identically_through_the_sdk(emulator, json_store, sdk):
    data = pattern(100_000)
    json_store.put_object("j.bin", data)

    assert sdk_read(sdk, emulator.bucket, "j.bin") == data


def test_a_unicode_key_written_through_json_is_the_same_key_for_xml(emulator, json_store, xml_store, sdk):
    json_store.create_dir("中文/")
    json_store.put_object(UNICODE_KEY, b"unicode")

    assert xml_store.read_range(UNICODE_KEY, 0, 100) == b"unicode"
    assert sdk_read(sdk, emulator.bucket, UNICODE_KEY) == b"unicode"


def test_an_object_put_through_xml_reads_back_identically_through_json(json_store, xml_store):
    data = pattern(100_000)
    xml_store.put_object("x.bin", data)

    assert json_store.read_range("x.bin", 0, len(data) + 10) == data
    assert json_store.stat("x.bin").etag == hashlib.sha1(data).hexdigest()


def test_an_object_put_by_the_sdk_reads_back_identically_through_json(emulator, json_store, sdk):
    data = pattern(100_000)
    sdk.put_object(Bucket=emulator.bucket, Key=UNICODE_KEY, Body=data)

    assert json_store.read_range(UNICODE_KEY, 0, len(data)) == data


def test_a_file_deleted_through_json_is_gone_for_xml(json_store, xml_store):
    xml_store.put_object("doomed", b"x")

    json_store.delete_file("doomed")

    assert xml_store.stat("doomed") is None


# --- metadata -------------------------------------------------------------------------------


def test_custom_headers_updated_through_json_are_xml_metadata(emulator, json_store, xml_store, sdk):
    json_store.put_object("m.txt", b"m")

    json_store.set_meta("m.txt", {"mode": "0100640", "uid": "1000"}, "text/plain")

    info = xml_store.stat("m.txt")
    head = sdk.head_object(Bucket=emulator.bucket, Key="m.txt")
    assert (info.meta, info.content_type) == ({"mode": "0100640", "uid": "1000"}, "text/plain")
    assert (head["x-cos-meta-mode"], head["x-cos-meta-uid"], head["Content-Type"]) == ("0100640", "1000", "text/plain")


def test_metadata_put_through_xml_is_seen_by_json_stat(json_store, xml_store):
    xml_store.put_object("m.txt", b"m", meta={"mode": "0100600", "gid": "50"}, content_type="text/csv")

    info = json_store.stat("m.txt")

    assert (info.meta, info.content_type) == ({"mode": "0100600", "gid": "50"}, "text/csv")


def test_metadata_put_by_the_sdk_is_seen_by_json_stat(emulator, json_store, sdk):
    sdk.put_object(Bucket=emulator.bucket, Key="s.txt", Body=b"s", Metadata={"x-cos-meta-mode": "0100755"})

    assert json_store.stat("s.txt").meta == {"mode": "0100755"}


# --- directories ----------------------------------------------------------------------------


def test_a_directory_created_through_json_is_a_marker_object_for_xml(emulator, json_store, xml_store, sdk):
    json_store.create_dir("made-by-json/")

    marker = xml_store.stat("made-by-json/")

    assert marker is not None and marker.size == 0
    assert xml_store.list_page("").dirs == ("made-by-json/",)
    assert sdk.head_object(Bucket=emulator.bucket, Key="made-by-json/")["Content-Length"] == "0"


def test_a_directory_marker_put_through_xml_is_a_directory_for_json(json_store, xml_store):
    xml_store.create_dir("made-by-xml/")

    info = json_store.stat("made-by-xml/")

    assert info is not None and info.is_dir
    assert json_store.list_page("").dirs == ("made-by-xml/",)


def test_a_key_with_slashes_put_through_xml_shows_its_directories_to_json(json_store, xml_store):
    xml_store.put_object("implicit/deeper/file", b"f")

    assert json_store.list_page("").dirs == ("implicit/",)
    assert json_store.list_page("implicit/").dirs == ("implicit/deeper/",)
    assert [info.key for info in json_store.list_page("implicit/deeper/").files] == ["implicit/deeper/file"]


def test_a_directory_deleted_through_json_loses_its_xml_marker(json_store, xml_store):
    xml_store.create_dir("temporary/")

    json_store.delete_dir("temporary/")

    assert xml_store.stat("temporary/") is None


# --- large files ----------------------------------------------------------------------------


def test_a_large_json_slice_upload_reads_back_identically_through_xml(emulator, json_store, xml_store, sdk):
    data = pattern(21 * MiB + 12345)
    session = json_store.begin_upload("large.bin", len(data), part_size=3 * MiB)
    parts = [session.put_part(n + 1, data[offset:offset + 3 * MiB])
             for n, offset in enumerate(range(0, len(data), 3 * MiB))]

    session.complete(parts)

    expected = hashlib.sha256(data).hexdigest()
    assert xml_store.stat("large.bin").size == len(data)
    assert hashlib.sha256(xml_store.read_range("large.bin", 0, len(data))).hexdigest() == expected
    assert hashlib.sha256(sdk_read(sdk, emulator.bucket, "large.bin")).hexdigest() == expected


def test_a_large_xml_multipart_upload_reads_back_identically_through_json(json_store, xml_store):
    data = pattern(21 * MiB + 7)
    session = xml_store.begin_upload("large.bin", len(data))
    parts = [session.put_part(n + 1, data[offset:offset + 5 * MiB])
             for n, offset in enumerate(range(0, len(data), 5 * MiB))]

    session.complete(parts)

    assert json_store.stat("large.bin").etag == hashlib.sha1(data).hexdigest()
    assert hashlib.sha256(json_store.read_range("large.bin", 0, len(data))).hexdigest() == \
        hashlib.sha256(data).hexdigest()
