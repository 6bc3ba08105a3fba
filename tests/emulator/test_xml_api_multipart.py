"""xml_api.handle called directly: multipart uploads, part copy, upload listings, multi-delete."""

from __future__ import annotations

import hashlib

from cosfs.emulator.xml_bucket import BodyDigests
from tests.emulator.xml_api_support import BUCKET, emu, md5_b64, texts, xml  # noqa: F401

MIB = 1024 * 1024


def _initiate(emu, key, **headers):
    answer = emu.request("POST", key, params=[("uploads", "")], headers=headers)
    return texts(xml(answer), "UploadId")[0]


def _part(emu, key, upload_id, number, data, **headers):
    params = [("partNumber", str(number)), ("uploadId", upload_id)]
    return emu.request("PUT", key, params=params, body=data, headers=headers).headers["ETag"]


def _complete_body(parts):
    items = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
    return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()


def _complete(emu, key, upload_id, parts=None, body=None):
    return emu.request("POST", key, params=[("uploadId", upload_id)],
                       body=body if body is not None else _complete_body(parts))


def test_multipart_upload_assembles_parts_and_keeps_initiate_metadata(emu):
    upload_id = _initiate(emu, "big", **{"content-type": "video/mp4", "x-cos-meta-mode": "0644",
                                         "content-disposition": "inline"})
    one, two = b"a" * MIB, b"tail"
    etags = [(1, _part(emu, "big", upload_id, 1, one)), (2, _part(emu, "big", upload_id, 2, two))]
    answer = _complete(emu, "big", upload_id, etags)
    got = emu.get("big")
    digest = hashlib.md5(hashlib.md5(one).digest() + hashlib.md5(two).digest()).hexdigest()
    assert texts(xml(answer), "ETag") == [f'"{digest}-2"']
    assert texts(xml(answer), "Location") == [f"{BUCKET}.cos.ap-guangzhou.myqcloud.com/big"]
    assert got.body == one + two
    assert (got.headers["Content-Type"], got.headers["x-cos-meta-mode"]) == ("video/mp4", "0644")
    assert got.headers["Content-Disposition"] == "inline"
    assert emu.error("GET", "big", params=[("uploadId", upload_id)]) == (404, "NoSuchUpload")
    assert emu.leftovers() == []


def test_complete_accepts_namespaced_xml_as_boto3_sends_it(emu):
    upload_id = _initiate(emu, "k")
    etag = _part(emu, "k", upload_id, 1, b"x")
    body = _complete_body([(1, etag)]).replace(
        b"<CompleteMultipartUpload>", b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    assert _complete(emu, "k", upload_id, body=body).status == 200
    assert emu.get("k").body == b"x"


def test_complete_validation_errors(emu):
    upload_id = _initiate(emu, "k")
    small = _part(emu, "k", upload_id, 1, b"small")
    big = _part(emu, "k", upload_id, 2, b"b" * MIB)
    assert emu.error("POST", "k", params=[("uploadId", upload_id)],
                     body=_complete_body([(2, big), (1, small)])) == (400, "InvalidPartOrder")
    assert emu.error("POST", "k", params=[("uploadId", upload_id)],
                     body=_complete_body([(1, '"0000"')])) == (400, "InvalidPart")
    assert emu.error("POST", "k", params=[("uploadId", upload_id)],
                     body=_complete_body([(1, small), (2, big)])) == (400, "EntityTooSmall")
    for bad in (b"<CompleteMultipartUpload><Part>", b"not xml", b"<Other/>", b"<CompleteMultipartUpload/>",
                b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part>"
                b"</CompleteMultipartUpload>",
                b'<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>'):
        assert emu.error("POST", "k", params=[("uploadId", upload_id)], body=bad) == (400, "MalformedXML")
    assert emu.storage.head(BUCKET, "k") is None
    assert _complete(emu, "k", upload_id, [(2, big)]).status == 200


def test_unknown_upload_and_bad_part_numbers(emu):
    upload_id = _initiate(emu, "k")
    for number in ("0", "10001", "x"):
        params = [("partNumber", number), ("uploadId", upload_id)]
        assert emu.error("PUT", "k", params=params, body=b"x") == (400, "InvalidArgument")
    assert emu.error("PUT", "k", params=[("partNumber", "1"), ("uploadId", "nope")], body=b"x") == \
        (404, "NoSuchUpload")
    assert emu.error("PUT", "other", params=[("partNumber", "1"), ("uploadId", upload_id)], body=b"x") == \
        (404, "NoSuchUpload")
    assert emu.error("POST", "k", params=[("uploadId", "nope")], body=b"<x/>") == (404, "NoSuchUpload")
    assert emu.leftovers() == []


def test_part_content_md5_is_checked(emu):
    upload_id = _initiate(emu, "k")
    params = [("partNumber", "1"), ("uploadId", upload_id)]
    assert emu.error("PUT", "k", params=params, body=b"x", headers={"content-md5": md5_b64(b"y")}) == \
        (400, "BadDigest")
    assert emu.storage.parts(upload_id) == []


def test_same_part_number_overwrites(emu):
    upload_id = _initiate(emu, "k")
    _part(emu, "k", upload_id, 1, b"first")
    etag = _part(emu, "k", upload_id, 1, b"second")
    _complete(emu, "k", upload_id, [(1, etag)])
    assert emu.get("k").body == b"second"


def test_abort_then_upload_is_gone(emu):
    upload_id = _initiate(emu, "k")
    _part(emu, "k", upload_id, 1, b"x")
    assert emu.request("DELETE", "k", params=[("uploadId", upload_id)]).status == 204
    assert emu.error("DELETE", "k", params=[("uploadId", upload_id)]) == (404, "NoSuchUpload")
    assert list((emu.root / "parts").iterdir()) == []


def test_list_parts_pages(emu):
    upload_id = _initiate(emu, "dir/a b")
    for number in (1, 2, 3):
        _part(emu, "dir/a b", upload_id, number, bytes([number]) * 3)
    first = xml(emu.request("GET", "dir/a b", params=[("uploadId", upload_id), ("max-parts", "2"),
                                                       ("encoding-type", "url")]))
    second = xml(emu.request("GET", "dir/a b", params=[("uploadId", upload_id), ("part-number-marker", "2")]))
    assert texts(first, "Part/PartNumber") == ["1", "2"] and texts(first, "IsTruncated") == ["true"]
    assert texts(first, "NextPartNumberMarker") == ["2"] and texts(first, "Key") == ["dir/a%20b"]
    assert texts(second, "Part/PartNumber") == ["3"] and texts(second, "IsTruncated") == ["false"]
    assert texts(second, "Part/Size") == ["3"]
    assert texts(second, "Part/ETag") == [f'"{hashlib.md5(bytes([3]) * 3).hexdigest()}"']


def test_upload_part_copy_with_and_without_range(emu):
    source = bytes(range(256)) * 8192  # 2 MiB
    emu.put("src", source)
    upload_id = _initiate(emu, "dst")
    headers = {"x-cos-copy-source": f"{BUCKET}.cos.ap-guangzhou.myqcloud.com/src",
               "x-cos-copy-source-range": f"bytes=0-{MIB - 1}"}
    one = emu.request("PUT", "dst", params=[("partNumber", "1"), ("uploadId", upload_id)], headers=headers)
    two = emu.request("PUT", "dst", params=[("partNumber", "2"), ("uploadId", upload_id)],
                      headers={"x-amz-copy-source": f"{BUCKET}/src"})
    etags = [(1, texts(xml(one), "ETag")[0]), (2, texts(xml(two), "ETag")[0])]
    assert one.operation == "UploadPartCopy" and xml(one).tag == "CopyPartResult"
    _complete(emu, "dst", upload_id, etags)
    assert emu.get("dst").body == source[:MIB] + source


def test_upload_part_copy_range_errors(emu):
    emu.put("src", b"0123456789")
    upload_id = _initiate(emu, "dst")
    params = [("partNumber", "1"), ("uploadId", upload_id)]
    for span, expected in (("bytes=0-10", (416, "InvalidRange")), ("bytes=5-1", (400, "InvalidArgument")),
                           ("0-3", (400, "InvalidArgument"))):
        headers = {"x-cos-copy-source": f"/{BUCKET}/src", "x-cos-copy-source-range": span}
        assert emu.error("PUT", "dst", params=params, headers=headers) == expected


def test_list_uploads_prefix_delimiter_and_markers(emu):
    ids = {key: _initiate(emu, key) for key in ("a/1", "a/2", "b", "c")}
    second_b = _initiate(emu, "b")
    tree = xml(emu.request("GET", params=[("uploads", ""), ("delimiter", "/")]))
    assert texts(tree, "Upload/Key") == ["b", "b", "c"] and texts(tree, "CommonPrefixes/Prefix") == ["a/"]
    page = xml(emu.request("GET", params=[("uploads", ""), ("max-uploads", "2")]))
    assert texts(page, "Upload/Key") == ["a/1", "a/2"] and texts(page, "IsTruncated") == ["true"]
    rest = xml(emu.request("GET", params=[("uploads", ""), ("key-marker", "b"),
                                          ("upload-id-marker", ids["b"])]))
    assert texts(rest, "Upload/UploadId") == [second_b, ids["c"]]
    grouped = xml(emu.request("GET", params=[("uploads", ""), ("delimiter", "/"), ("key-marker", "a/")]))
    assert texts(grouped, "Upload/Key") == ["b", "b", "c"] and texts(grouped, "CommonPrefixes/Prefix") == []
    only_a = xml(emu.request("GET", params=[("uploads", ""), ("prefix", "a/"), ("encoding-type", "url")]))
    assert texts(only_a, "Upload/Key") == ["a/1", "a/2"]


# --- DeleteObjects --------------------------------------------------------------------------


def _delete_body(keys, quiet=False):
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f"<Delete><Quiet>{'true' if quiet else 'false'}</Quiet>{objects}</Delete>".encode()


def _multi_delete(emu, body, **headers):
    headers = headers or {"content-md5": md5_b64(body)}
    return emu.request("POST", params=[("delete", "")], body=body, headers=headers)


def test_multi_delete_reports_each_key(emu):
    emu.put("a")
    emu.put("b")
    tree = xml(_multi_delete(emu, _delete_body(["a", "missing", "../bad"])))
    assert texts(tree, "Deleted/Key") == ["a", "missing"]
    assert texts(tree, "Error/Key") == ["../bad"] and texts(tree, "Error/Code") == ["InvalidObjectName"]
    assert emu.storage.head(BUCKET, "a") is None and emu.storage.head(BUCKET, "b") is not None


def test_multi_delete_quiet_lists_only_errors(emu):
    emu.put("a")
    tree = xml(_multi_delete(emu, _delete_body(["a", "/abs"], quiet=True)))
    assert tree.findall("Deleted") == [] and texts(tree, "Error/Key") == ["/abs"]


def test_multi_delete_needs_a_matching_digest(emu):
    emu.put("a")
    body = _delete_body(["a"])
    assert emu.error("POST", params=[("delete", "")], body=body) == (400, "InvalidRequest")
    assert emu.error("POST", params=[("delete", "")], body=body,
                     headers={"content-md5": md5_b64(b"other")}) == (400, "BadDigest")
    assert emu.error("POST", params=[("delete", "")], body=body,
                     headers={"content-md5": "short"}) == (400, "InvalidDigest")
    assert emu.storage.head(BUCKET, "a") is not None


def test_multi_delete_accepts_boto3_crc32_instead_of_md5(emu):
    emu.put("a")
    body = _delete_body(["a"]).replace(b"<Delete>", b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">')
    import base64
    import zlib
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert texts(xml(_multi_delete(emu, body, **{"x-amz-checksum-crc32": crc})), "Deleted/Key") == ["a"]
    assert emu.error("POST", params=[("delete", "")], body=body,
                     headers={"x-amz-checksum-crc32": "AAAAAA=="}) == (400, "BadDigest")


def test_multi_delete_limits(emu):
    for body in (_delete_body([f"k{i}" for i in range(1001)]), _delete_body([]),
                 b"<Delete><Object></Object></Delete>", b"<Delete"):
        assert emu.error("POST", params=[("delete", "")], body=body,
                         headers={"content-md5": md5_b64(body)}) == (400, "MalformedXML")
    assert len(texts(xml(_multi_delete(emu, _delete_body([f"k{i}" for i in range(1000)]))), "Deleted/Key")) == 1000


def test_body_digests_ignore_checksums_they_cannot_compute():
    digests = BodyDigests({"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="})
    digests.check_bytes(b"anything")
    assert digests.present
