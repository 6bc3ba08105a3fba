"""xml_api.handle called directly: objects, ranges, conditions, copy, append and listings."""

from __future__ import annotations

import base64
import hashlib
import zlib
from email.utils import formatdate

import pytest

from cosfs.emulator import xml_api
from tests.emulator.xml_api_support import BUCKET, OTHER_BUCKET, START, emu, md5_b64, texts, xml  # noqa: F401

BODY = b"0123456789"


# --- PUT / GET / HEAD / DELETE ------------------------------------------------------------


def test_put_then_get_returns_body_etag_and_metadata(emu):
    put = emu.put("dir/a.txt", BODY, content_type="text/plain", x_cos_meta_Mode="0100644")
    got = emu.get("dir/a.txt")
    assert put.headers["ETag"] == f'"{hashlib.md5(BODY).hexdigest()}"'
    assert (got.status, got.body) == (200, BODY)
    assert got.headers["ETag"] == put.headers["ETag"]
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["x-cos-meta-mode"] == "0100644"
    assert got.headers["x-cos-object-type"] == "normal"
    assert got.headers["Last-Modified"] == formatdate(START, usegmt=True)
    assert got.operation == "GetObject"


def test_head_has_length_and_no_body(emu):
    emu.put("k", BODY)
    head = emu.request("HEAD", "k")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "10")
    assert head.headers["Accept-Ranges"] == "bytes"


def test_missing_object_is_no_such_key_and_delete_is_204_anyway(emu):
    assert emu.error("GET", "nope") == (404, "NoSuchKey")
    assert emu.request("DELETE", "nope").status == 204
    emu.put("k")
    assert emu.request("DELETE", "k").status == 204
    assert emu.error("HEAD", "k") == (404, "NoSuchKey")


def test_amz_meta_is_stored_like_cos_meta_and_echoed_to_sigv4_clients_only(emu):
    emu.put("k", x_amz_meta_Color="blue")
    plain = emu.get("k")
    sigv4 = emu.get("k", authorization="AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=z")
    assert plain.headers["x-cos-meta-color"] == "blue" and "x-amz-meta-color" not in plain.headers
    assert sigv4.headers["x-amz-meta-color"] == "blue"


def test_metadata_over_2kb_is_refused_and_nothing_stored(emu):
    assert emu.put("ok", x_cos_meta_a="v" * 2047).status == 200
    assert emu.error("PUT", "big", headers={"x-cos-meta-a": "v" * 2048}, body=b"x") == (400, "MetadataTooLarge")
    assert emu.storage.head(BUCKET, "big") is None


def test_content_md5_mismatch_is_bad_digest_and_stores_nothing(emu):
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert emu.error("PUT", "k", headers={"content-md5": wrong}, body=BODY) == (400, "BadDigest")
    assert emu.error("PUT", "k", headers={"content-md5": "bm90LTE2LWJ5dGVz"}, body=BODY) == (400, "InvalidDigest")
    assert emu.storage.head(BUCKET, "k") is None
    assert emu.leftovers() == []
    assert emu.put("k", BODY, content_md5=md5_b64(BODY)).status == 200


def test_amz_checksums_are_verified(emu):
    crc = base64.b64encode(zlib.crc32(BODY).to_bytes(4, "big")).decode()
    assert emu.put("k", BODY, x_amz_checksum_crc32=crc).status == 200
    assert emu.error("PUT", "k2", headers={"x-amz-checksum-crc32": "AAAAAA=="}, body=BODY) == (400, "BadDigest")
    bad_sha = hashlib.sha256(b"other").hexdigest()
    assert emu.error("PUT", "k3", headers={"x-amz-content-sha256": bad_sha}, body=BODY) == \
        (400, "XAmzContentSHA256Mismatch")
    assert emu.put("k4", BODY, x_amz_content_sha256=hashlib.sha256(BODY).hexdigest()).status == 200
    assert emu.put("k5", BODY, x_amz_content_sha256="UNSIGNED-PAYLOAD").status == 200


def test_declared_length_over_5_gib_is_entity_too_large_before_reading(emu):
    headers = {"content-length": str(5 * 1024 ** 3 + 1)}
    assert emu.error("PUT", "huge", headers=headers, chunks=[]) == (400, "EntityTooLarge")


def test_streamed_body_over_the_limit_is_refused(emu, monkeypatch):
    monkeypatch.setattr(xml_api, "MAX_OBJECT_SIZE", 8)
    assert emu.error("PUT", "k", headers={"transfer-encoding": "chunked"}, chunks=[b"12345", b"67890"]) == \
        (400, "EntityTooLarge")
    assert emu.leftovers() == []


def test_forbid_overwrite_and_if_none_match_star(emu):
    emu.put("k")
    assert emu.error("PUT", "k", headers={"x-cos-forbid-overwrite": "true"}, body=b"x") == (412, "PreconditionFailed")
    assert emu.error("PUT", "k", headers={"if-none-match": "*"}, body=b"x") == (412, "PreconditionFailed")
    assert emu.put("new", if_none_match="*").status == 200


# --- ranges and conditions ------------------------------------------------------------------


@pytest.mark.parametrize("spec, status, body, content_range", [
    ("bytes=2-4", 206, b"234", "bytes 2-4/10"),
    ("bytes=7-", 206, b"789", "bytes 7-9/10"),
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
    ("bytes=-100", 206, BODY, "bytes 0-9/10"),
    ("bytes=0-1,4-5", 200, BODY, None),
    ("items=0-1", 200, BODY, None),
    ("bytes=5-2", 200, BODY, None),
])
def test_range(emu, spec, status, body, content_range):
    emu.put("k", BODY)
    got = emu.get("k", range=spec)
    assert (got.status, got.body, got.headers.get("Content-Range")) == (status, body, content_range)


@pytest.mark.parametrize("spec", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_unsatisfiable_range_is_416(emu, spec):
    emu.put("k", BODY)
    assert emu.error("GET", "k", headers={"range": spec}) == (416, "InvalidRange")


def test_conditional_get(emu):
    etag = emu.put("k", BODY).headers["ETag"]
    before, after = formatdate(START - 60, usegmt=True), formatdate(START + 60, usegmt=True)
    assert emu.get("k", if_match=etag).status == 200
    assert emu.error("GET", "k", headers={"if-match": '"0000"'}) == (412, "PreconditionFailed")
    not_modified = emu.get("k", if_none_match=etag)
    assert (not_modified.status, not_modified.body, not_modified.headers["ETag"]) == (304, b"", etag)
    assert not_modified.headers["Content-Length"] == "10"
    assert emu.request("HEAD", "k", headers={"if-none-match": etag}).status == 304
    assert emu.get("k", if_none_match='"0000"').status == 200
    assert emu.get("k", if_modified_since=after).status == 304
    assert emu.get("k", if_modified_since=before).status == 200
    assert emu.error("GET", "k", headers={"if-unmodified-since": before}) == (412, "PreconditionFailed")
    assert emu.get("k", if_match=etag, if_unmodified_since=before).status == 200  # If-Match wins
    assert emu.get("k", if_none_match='"0000"', if_modified_since=after).status == 200  # If-None-Match wins


def test_response_overrides(emu):
    emu.put("k", BODY, content_type="text/plain", cache_control="no-cache")
    got = emu.request("GET", "k", params=[("response-content-type", "image/png"),
                                           ("response-content-disposition", "attachment")])
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["Content-Disposition"] == "attachment"
    assert got.headers["Cache-Control"] == "no-cache"


def test_version_other_than_null_is_no_such_version(emu):
    emu.put("k")
    assert emu.request("GET", "k", params=[("versionId", "null")]).status == 200
    assert emu.error("GET", "k", params=[("versionId", "v1")]) == (404, "NoSuchVersion")


# --- copy -------------------------------------------------------------------------------------


def _copy(emu, dst, source, **headers):
    headers = {"x-cos-copy-source": source, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return emu.request("PUT", dst, headers=headers)


@pytest.mark.parametrize("source", [
    f"{BUCKET}.cos.ap-guangzhou.myqcloud.com/src%20dir/a%2Bb.txt",
    f"/{BUCKET}/src%20dir/a%2Bb.txt",
    f"{BUCKET}/src%20dir/a%2Bb.txt",
    f"{BUCKET}.cos.ap-guangzhou.myqcloud.com/src%20dir/a%2Bb.txt?versionId=null",
])
def test_copy_source_forms(emu, source):
    emu.put("src dir/a+b.txt", BODY, x_cos_meta_mode="0644", content_type="text/plain")
    answer = _copy(emu, "dst", source)
    got = emu.get("dst")
    assert answer.status == 200 and texts(xml(answer), "ETag") == [f'"{hashlib.md5(BODY).hexdigest()}"']
    assert (got.body, got.headers["x-cos-meta-mode"], got.headers["Content-Type"]) == (BODY, "0644", "text/plain")


def test_copy_replaced_takes_the_requests_metadata(emu):
    emu.put("src", BODY, x_cos_meta_mode="0644", x_cos_meta_uid="1", content_type="text/plain",
            cache_control="no-cache")
    _copy(emu, "src", f"/{BUCKET}/src", x_cos_metadata_directive="Replaced", x_cos_meta_mode="0600",
          content_type="application/json")
    got = emu.get("src")
    assert got.body == BODY
    assert (got.headers["x-cos-meta-mode"], got.headers["Content-Type"]) == ("0600", "application/json")
    assert "x-cos-meta-uid" not in got.headers and "Cache-Control" not in got.headers


def test_copy_across_buckets_and_s3_replace_spelling(emu):
    emu.request("PUT", "src", body=BODY, bucket=OTHER_BUCKET, headers={"x-cos-meta-a": "1"})
    _copy(emu, "dst", f"/{OTHER_BUCKET}/src", x_amz_metadata_directive="REPLACE", x_amz_meta_b="2")
    got = emu.get("dst")
    assert (got.body, got.headers.get("x-cos-meta-b"), "x-cos-meta-a" in got.headers) == (BODY, "2", False)


def test_copy_errors(emu, monkeypatch):
    emu.put("src", BODY)
    assert emu.error("PUT", "src", headers={"x-cos-copy-source": f"/{BUCKET}/src"}) == (400, "InvalidRequest")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": f"/{BUCKET}/missing"}) == (404, "NoSuchKey")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": "nokey"}) == (400, "InvalidArgument")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": "/nobucket-1/src"}) == (404, "NoSuchBucket")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": f"/{BUCKET}/src",
                                          "x-cos-metadata-directive": "Merge"}) == (400, "InvalidArgument")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": f"/{BUCKET}/src",
                                          "x-cos-copy-source-if-match": '"0"'}) == (412, "PreconditionFailed")
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": f"/{BUCKET}/src?versionId=v9"}) == \
        (404, "NoSuchVersion")
    monkeypatch.setattr(xml_api, "MAX_OBJECT_SIZE", 5)
    assert emu.error("PUT", "d", headers={"x-cos-copy-source": f"/{BUCKET}/src"}) == (400, "EntityTooLarge")
    assert emu.storage.head(BUCKET, "d") is None


def test_copy_source_conditions_that_hold(emu):
    etag = emu.put("src", BODY).headers["ETag"]
    assert _copy(emu, "d", f"/{BUCKET}/src", x_cos_copy_source_if_match=etag).status == 200
    assert _copy(emu, "d2", f"/{BUCKET}/src", x_amz_copy_source_if_none_match='"0"').status == 200


# --- append -----------------------------------------------------------------------------------


def _append(emu, key, position, data, **headers):
    params = [("append", "")] + ([] if position is None else [("position", str(position))])
    return emu.request("POST", key, params=params, body=data, headers=headers)


def test_append_creates_then_extends(emu):
    first = _append(emu, "log", 0, b"hello ", **{"content-type": "text/plain", "x-cos-meta-a": "1"})
    second = _append(emu, "log", 6, b"world")
    got = emu.get("log")
    assert first.headers["x-cos-next-append-position"] == "6"
    assert second.headers["x-cos-next-append-position"] == "11"
    assert second.headers["x-cos-content-sha1"] == hashlib.sha1(b"world").hexdigest()
    assert (got.body, got.headers["x-cos-object-type"]) == (b"hello world", "appendable")
    assert (got.headers["Content-Type"], got.headers["x-cos-meta-a"]) == ("text/plain", "1")
    assert second.operation == "AppendObject"


def test_append_errors(emu):
    _append(emu, "log", 0, b"abc")
    emu.put("normal", BODY)
    assert emu.error("POST", "log", params=[("append", ""), ("position", "1")], body=b"x") == \
        (409, "PositionNotEqualToLength")
    assert emu.error("POST", "normal", params=[("append", ""), ("position", "10")], body=b"x") == \
        (409, "ObjectNotAppendable")
    assert emu.error("POST", "log", params=[("append", "")], body=b"x") == (400, "InvalidArgument")
    assert emu.error("POST", "log", params=[("append", ""), ("position", "3")], chunks=[b"x"]) == \
        (411, "MissingContentLength")
    assert emu.get("log").body == b"abc"
    assert emu.leftovers() == []


# --- listing ---------------------------------------------------------------------------------


def _list(emu, **params):
    return xml(emu.request("GET", params=[(k.replace("_", "-"), str(v)) for k, v in params.items()]))


def test_list_url_encoding_uses_percent_20(emu):
    for key in ("a b+c/d%e.txt", "中文/x.txt"):
        emu.put(key)
    tree = _list(emu, prefix="", delimiter="/", encoding_type="url")
    assert texts(tree, "CommonPrefixes/Prefix") == ["a%20b%2Bc/", "%E4%B8%AD%E6%96%87/"]
    tree = _list(emu, prefix="a b+c/", encoding_type="url")
    assert texts(tree, "Contents/Key") == ["a%20b%2Bc/d%25e.txt"]
    assert texts(tree, "Prefix") == ["a%20b%2Bc/"] and texts(tree, "EncodingType") == ["url"]
    assert texts(_list(emu, prefix="a b+c/"), "Contents/Key") == ["a b+c/d%e.txt"]


def test_list_pages_with_next_marker_even_without_delimiter(emu):
    keys = [f"k{i:02d}" for i in range(5)]
    for key in keys:
        emu.put(key)
    seen, marker, pages = [], "", 0
    while True:
        tree = _list(emu, marker=marker, max_keys=2)
        seen += texts(tree, "Contents/Key")
        pages += 1
        if texts(tree, "IsTruncated") == ["false"]:
            assert tree.find("NextMarker") is None
            break
        marker = texts(tree, "NextMarker")[0]
    assert (seen, pages) == (keys, 3)


def test_list_common_prefixes_and_contents(emu):
    for key in ("a/1", "a/2", "b", "c/d/e"):
        emu.put(key)
    tree = _list(emu, delimiter="/")
    assert texts(tree, "Contents/Key") == ["b"]
    assert texts(tree, "CommonPrefixes/Prefix") == ["a/", "c/"]
    contents = tree.find("Contents")
    assert contents.findtext("ETag").startswith('"') and contents.findtext("Size") == "4"
    assert contents.findtext("LastModified") == "2023-11-14T22:13:20.000Z"
    assert contents.findtext("Owner/ID") == "1250000000" and contents.findtext("StorageClass") == "STANDARD"
    tree = _list(emu, delimiter="/", max_keys=1, marker="a/")
    assert texts(tree, "Contents/Key") == ["b"] and texts(tree, "NextMarker") == ["b"]


def test_list_max_keys_is_capped_and_validated(emu):
    emu.put("k")
    assert texts(_list(emu, max_keys=5000), "MaxKeys") == ["1000"]
    assert emu.error("GET", params=[("max-keys", "x")]) == (400, "InvalidArgument")
    assert emu.error("GET", params=[("max-keys", "-1")]) == (400, "InvalidArgument")
    assert emu.error("GET", params=[("encoding-type", "base64")]) == (400, "InvalidArgument")


def test_list_v2_continuation_token_start_after_and_key_count(emu):
    for key in ("a", "b", "c", "d"):
        emu.put(key)
    first = _list(emu, list_type=2, max_keys=2)
    token = texts(first, "NextContinuationToken")[0]
    second = _list(emu, list_type=2, max_keys=2, continuation_token=token)
    after = _list(emu, list_type=2, start_after="b")
    assert (texts(first, "Contents/Key"), texts(first, "KeyCount")) == (["a", "b"], ["2"])
    assert (texts(second, "Contents/Key"), texts(second, "IsTruncated")) == (["c", "d"], ["false"])
    assert texts(after, "Contents/Key") == ["c", "d"]
    assert emu.error("GET", params=[("list-type", "2"), ("continuation-token", "%%%")]) == (400, "InvalidArgument")


def test_head_bucket_and_location_and_unsupported(emu):
    assert emu.request("HEAD").status == 200
    assert xml(emu.request("GET", params=[("location", "")])).text == "ap-guangzhou"
    assert emu.error("GET", params=[("acl", "")]) == (501, "NotImplemented")
    assert emu.error("PUT", "k", params=[("tagging", "")]) == (501, "NotImplemented")
    assert emu.error("POST", "k") == (405, "MethodNotAllowed")
    assert emu.error("PUT", "dst", headers={"x-cos-rename-source": "/src"}) == (501, "NotImplemented")
    assert emu.storage.head(BUCKET, "dst") is None
    assert emu.error("PUT") == (409, "BucketAlreadyOwnedByYou")
