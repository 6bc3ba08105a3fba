"""Hostile keys and bodies: each is refused with COS's error, and nothing lands outside the root."""

from __future__ import annotations

import pytest

from tests.emulator.xml_api_support import BUCKET, Harness, md5_b64

BAD_KEYS = [
    ("../x", "InvalidObjectName"),
    ("a/../../b", "InvalidObjectName"),
    ("/abs", "InvalidObjectName"),
    ("a\x00b", "InvalidObjectName"),
    ("a\nb", "InvalidObjectName"),
    ("x" * 851, "KeyTooLong"),
    ("中" * 284, "KeyTooLong"),  # 852 bytes in UTF-8
]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _only_emulator_files(tmp_path, root):
    """Everything under tmp_path is the emulator's root: index.db*, and empty data/, parts/, tmp/."""
    assert [p.name for p in tmp_path.iterdir()] == [root.name]
    top = {p.name for p in root.iterdir()}
    assert {"data", "parts", "tmp"} <= top
    assert all(name in ("data", "parts", "tmp") or name.startswith("index.db") for name in top)
    assert [p for p in root.rglob("*") if p.is_file() and not p.name.startswith("index.db")] == []


@pytest.fixture
def emu(tmp_path):
    harness = Harness(tmp_path / "root")
    yield harness
    harness.storage.close()
    _only_emulator_files(tmp_path, harness.root)


@pytest.mark.parametrize("key, code", BAD_KEYS)
def test_bad_keys_are_refused_by_every_writing_operation(emu, key, code):
    assert emu.error("PUT", key, body=b"payload") == (400, code)
    assert emu.error("POST", key, params=[("uploads", "")]) == (400, code)
    assert emu.error("POST", key, params=[("append", ""), ("position", "0")], body=b"x") == (400, code)
    assert emu.error("GET", key) == (400, code)
    assert emu.error("DELETE", key) == (400, code)


@pytest.mark.parametrize("key, code", BAD_KEYS[:4])
def test_bad_copy_source_and_destination_keys(emu, key, code):
    emu.put("good", b"x")
    assert emu.error("PUT", key, headers={"x-cos-copy-source": f"/{BUCKET}/good"}) == (400, code)
    assert emu.error("PUT", "dst", headers={"x-cos-copy-source": f"/{BUCKET}/{key}"}) == (400, code)
    emu.request("DELETE", "good")


def test_encoded_traversal_in_copy_source_is_decoded_then_refused(emu):
    emu.put("good", b"x")
    assert emu.error("PUT", "dst", headers={"x-cos-copy-source": f"/{BUCKET}/%2E%2E/%2E%2E/etc/passwd"}) == \
        (400, "InvalidObjectName")
    emu.request("DELETE", "good")


def test_bodies_refused_after_reading_leave_no_temporary_file(emu):
    assert emu.error("PUT", "k", headers={"content-md5": md5_b64(b"other")}, body=b"x" * 4096) == \
        (400, "BadDigest")
    assert emu.error("PUT", "k", headers={"x-amz-checksum-sha256": "AAAA"}, body=b"x") == (400, "BadDigest")
    assert emu.error("PUT", "k", headers={"x-amz-checksum-sha1": "AAAA"}, body=b"x") == (400, "BadDigest")
    assert emu.storage.head(BUCKET, "k") is None


def test_xml_bombs_and_garbage_are_malformed_xml(emu):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b"<Delete><Object><Key>&b;</Key></Object></Delete>")
    external = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>'
    for body in (bomb, external, b"\xff\xfe<", b"<Delete><Object><Key>a</Key></Object>"):
        assert emu.error("POST", params=[("delete", "")], body=body,
                         headers={"content-md5": md5_b64(body)}) == (400, "MalformedXML")


def test_oversized_xml_body_is_refused(emu):
    body = b"<Delete>" + b" " * (4 * 1024 * 1024 + 1) + b"</Delete>"
    status, code = emu.error("POST", params=[("delete", "")], body=body, headers={"content-md5": md5_b64(body)})
    assert (status, code) == (400, "EntityTooLarge")


def test_bad_numbers_in_query(emu):
    emu.put("k", b"x")
    assert emu.error("POST", "k", params=[("append", ""), ("position", "-1")], body=b"x") == (400, "InvalidArgument")
    assert emu.error("GET", params=[("uploads", ""), ("max-uploads", "many")]) == (400, "InvalidArgument")
    upload = emu.request("POST", "u", params=[("uploads", "")])
    upload_id = upload.body.split(b"<UploadId>")[1].split(b"</UploadId>")[0].decode()
    assert emu.error("GET", "u", params=[("uploadId", upload_id), ("max-parts", "x")]) == (400, "InvalidArgument")
    emu.request("DELETE", "u", params=[("uploadId", upload_id)])
    emu.request("DELETE", "k")
