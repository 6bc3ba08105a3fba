"""XmlStore against a fake HTTP layer: request shapes, parsing, errors, retries."""

from __future__ import annotations

import base64
import errno
import hashlib

import pytest
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from cosfs.store.endpoints import Bucket, xml_endpoint
from cosfs.store.interface import PartInfo
from cosfs.store.xml_store import XmlStore, XmlUploadSession, encode_key, info_from_headers
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.errors import CosError
from cosfs.wire.signing import qsign
from tests.support.fake_http import FakeResponse, fake_transport

BUCKET = Bucket("examplebucket", "1250000000")
CREDENTIALS = Credentials("AKIDEXAMPLE", "SECRETKEY")
NOW = 1_700_000_000


def make_store(handler, endpoint=None, credentials=CREDENTIALS, retry=None):
    transport, pools = fake_transport(handler, retry)
    store = XmlStore(
        BUCKET,
        xml_endpoint(BUCKET, "ap-guangzhou", endpoint),
        StaticProvider(credentials, "test"),
        transport,
        region="ap-guangzhou",
        clock=lambda: NOW,
    )
    return store, pools


def list_body(keys=(), prefixes=(), truncated=False, next_marker=None, prefix=""):
    contents = "".join(
        f"<Contents><Key>{k}</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
        f'<ETag>"etag-{k}"</ETag><Size>{len(k)}</Size></Contents>'
        for k in keys
    )
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    marker = f"<NextMarker>{next_marker}</NextMarker>" if next_marker else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>examplebucket-1250000000</Name><EncodingType>url</EncodingType><Prefix>{prefix}</Prefix>"
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{marker}{contents}{common}"
        "</ListBucketResult>"
    ).encode()


def error_body(code, message="msg", request_id="req-1"):
    return (
        f"<?xml version='1.0' encoding='utf-8' ?><Error><Code>{code}</Code>"
        f"<Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()


def verify_signature(seen):
    """What COS does with our Authorization: rebuild and compare."""
    fields = qsign.parse_authorization(seen.headers["Authorization"])
    qsign.verify(fields, CREDENTIALS.secret_key, seen.method, seen.path, seen.params, seen.headers, NOW)


# --- listing --------------------------------------------------------------------------------


def test_list_page_decodes_url_encoded_keys_and_common_prefixes():
    body = list_body(
        keys=["dir%2F", "dir%2Fa%20b%2Bc.txt", "dir%2F%E4%B8%AD%E6%96%87"],
        prefixes=["dir%2Fsub%20dir%2F"],
        prefix="dir%2F",
    )
    store, pools = make_store(lambda seen: FakeResponse(200, body))
    page = store.list_page("dir/")
    assert [f.key for f in page.files] == ["dir/a b+c.txt", "dir/中文"]
    assert page.dirs == ("dir/sub dir/",)
    assert page.next_marker is None
    assert page.files[0].size == len("dir%2Fa%20b%2Bc.txt")
    assert page.files[0].mtime_ns == 1704164645 * 10**9
    assert page.files[0].etag == "etag-dir%2Fa%20b%2Bc.txt"
    assert page.files[0].meta is None
    query = pools.requests[0].query
    assert query == {"prefix": "dir/", "delimiter": "/", "marker": "", "max-keys": "1000", "encoding-type": "url"}
    verify_signature(pools.requests[0])


def test_list_page_follows_next_marker_when_truncated():
    pages = {
        "": list_body(keys=["a%201"], truncated=True, next_marker="a%201"),
        "a 1": list_body(keys=["b"]),
    }
    store, pools = make_store(lambda seen: FakeResponse(200, pages[seen.query["marker"]]))
    first = store.list_page("")
    assert first.next_marker == "a 1"
    second = store.list_page("", first.next_marker)
    assert [f.key for f in second.files] == ["b"] and second.next_marker is None
    assert pools.requests[1].query["marker"] == "a 1"


def test_truncated_page_without_next_marker_continues_after_last_key():
    store, _ = make_store(lambda seen: FakeResponse(200, list_body(keys=["x", "y"], truncated=True)))
    assert store.list_page("").next_marker == "y"


def test_walk_lists_recursively_across_pages():
    pages = {
        "": list_body(keys=["d%2F", "d%2Fa"], truncated=True, next_marker="d%2Fa"),
        "d/a": list_body(keys=["d%2Fe%2Ff"]),
    }
    store, pools = make_store(lambda seen: FakeResponse(200, pages[seen.query["marker"]]))
    walked = list(store.walk("d/"))
    assert [(o.key, o.is_dir) for o in walked] == [("d/", True), ("d/a", False), ("d/e/f", False)]
    assert all(r.query["delimiter"] == "" for r in pools.requests)


# --- stat and errors ------------------------------------------------------------------------


def test_stat_reads_size_mtime_etag_and_user_metadata():
    headers = {
        "Content-Length": "11", "ETag": '"5eb63bbbe01eeed093cb22bb8f5acdc3"',
        "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT", "Content-Type": "text/plain",
        "x-cos-meta-mode": "0100644", "X-Cos-Meta-UID": "1000",
    }
    store, pools = make_store(lambda seen: FakeResponse(200, b"", headers))
    info = store.stat("dir/a b.txt")
    assert (info.size, info.etag, info.content_type) == (11, "5eb63bbbe01eeed093cb22bb8f5acdc3", "text/plain")
    assert info.mtime_ns == 1_700_000_000 * 10**9
    assert info.meta == {"mode": "0100644", "uid": "1000"}
    assert pools.requests[0].method == "HEAD"
    assert pools.requests[0].url.endswith("/dir/a%20b.txt")


def test_metadata_names_are_lowered_from_any_header_mapping():
    """urllib3's headers (original case, repeats merged) give the same info as any other mapping."""
    headers = {"Content-Length": "3", "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT",
               "X-Cos-Meta-Mode": "0100644", "x-cos-meta-uid": "1000", "X-Cos-Request-Id": "r"}
    plain = info_from_headers("f", headers, lambda: 0)
    assert plain.meta == {"mode": "0100644", "uid": "1000"}
    assert info_from_headers("f", HTTPHeaderDict(headers), lambda: 0) == plain


def test_stat_of_missing_key_is_none_from_a_bodiless_404():
    store, _ = make_store(lambda seen: FakeResponse(404, b"", {"x-cos-request-id": "r1"}))
    assert store.stat("missing") is None


def test_bodiless_403_on_head_is_eacces_with_request_id():
    store, _ = make_store(lambda seen: FakeResponse(403, b"", {"x-cos-request-id": "req-42"}))
    with pytest.raises(CosError) as raised:
        store.stat("secret")
    assert raised.value.errno == errno.EACCES
    assert raised.value.status == 403
    assert raised.value.request_id == "req-42"


@pytest.mark.parametrize(
    "status, code, expected",
    [
        (404, "NoSuchBucket", errno.ENODEV),
        (403, "SignatureDoesNotMatch", errno.EACCES),
        (400, "KeyTooLong", errno.ENAMETOOLONG),
        (400, "EntityTooLarge", errno.EFBIG),
        (409, "BucketNotEmpty", errno.ENOTEMPTY),
    ],
)
def test_xml_error_body_becomes_cos_error_with_errno(status, code, expected):
    store, _ = make_store(lambda seen: FakeResponse(status, error_body(code, "boom", "req-9")))
    with pytest.raises(CosError) as raised:
        store.list_page("")
    error = raised.value
    assert (error.status, error.code, error.errno, error.request_id) == (status, code, expected, "req-9")
    assert "boom" in str(error) and "req-9" in str(error)


def test_copy_answering_200_with_error_body_is_an_error():
    store, pools = make_store(lambda seen: FakeResponse(200, error_body("InternalError")))
    with pytest.raises(CosError) as raised:
        store.copy("a", "b")
    assert raised.value.code == "InternalError"
    assert len(pools.requests) == 4, "a transient error inside a 200 is retried (1 + 3 retries)"


def test_complete_answering_200_with_error_body_is_an_error():
    store, _ = make_store(lambda seen: FakeResponse(200, error_body("InvalidPart")))
    with pytest.raises(CosError) as raised:
        XmlUploadSession(store, "big.bin", "U1").complete([PartInfo(1, 5, "e1")])
    assert raised.value.code == "InvalidPart"
    assert raised.value.errno == errno.EIO


# --- retries --------------------------------------------------------------------------------


def test_transient_error_then_success_is_retried():
    answers = [FakeResponse(503, error_body("SlowDown")), FakeResponse(200, list_body(keys=["a"]))]
    store, pools = make_store(lambda seen: answers.pop(0))
    assert [f.key for f in store.list_page("").files] == ["a"]
    assert len(pools.requests) == 2
    first, second = (r.headers["Authorization"] for r in pools.requests)
    assert first and second


def test_client_error_is_not_retried():
    store, pools = make_store(lambda seen: FakeResponse(403, error_body("AccessDenied")))
    with pytest.raises(CosError):
        store.list_page("")
    assert len(pools.requests) == 1


def test_connection_errors_exhaust_retries_then_eio():
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    store, pools = make_store(lambda seen: reset)
    with pytest.raises(CosError) as raised:
        store.stat("a")
    assert raised.value.errno == errno.EIO and raised.value.status == 0
    assert len(pools.requests) == 4


def test_timeouts_report_etimedout():
    store, _ = make_store(lambda seen: ReadTimeoutError(None, "/k", "Read timed out."))
    with pytest.raises(CosError) as raised:
        store.read_range("a", 0, 10)
    assert raised.value.errno == errno.ETIMEDOUT


# --- writes ---------------------------------------------------------------------------------


def test_put_object_sends_md5_metadata_and_a_valid_signature():
    store, pools = make_store(lambda seen: FakeResponse(200, b"", {"ETag": '"abc"'}))
    info = store.put_object("中文/a b+c%~.txt", b"hello world", {"mode": "0100644"}, "text/plain")
    seen = pools.requests[0]
    assert seen.method == "PUT"
    assert seen.url.endswith("/%E4%B8%AD%E6%96%87/a%20b%2Bc%25~.txt")
    assert seen.headers["Content-MD5"] == base64.b64encode(hashlib.md5(b"hello world").digest()).decode()
    assert seen.headers["x-cos-meta-mode"] == "0100644"
    assert "content-md5" in seen.headers["Authorization"] and "x-cos-meta-mode" in seen.headers["Authorization"]
    verify_signature(seen)
    assert (info.size, info.etag) == (11, "abc")


def test_security_token_is_sent_and_signed():
    temporary = Credentials("AKIDTMP", "SECRETKEY", token="TOKEN123")
    store, pools = make_store(lambda seen: FakeResponse(200, b"", {"Content-Length": "0"}), credentials=temporary)
    store.stat("a")
    seen = pools.requests[0]
    assert seen.headers["x-cos-security-token"] == "TOKEN123"
    assert "x-cos-security-token" in qsign.parse_authorization(seen.headers["Authorization"])["q-header-list"]


def test_anonymous_requests_carry_no_authorization():
    store, pools = make_store(lambda seen: FakeResponse(200, list_body()), credentials=None)
    store.list_page("")
    assert "Authorization" not in pools.requests[0].headers


def test_set_meta_is_a_self_copy_with_replaced_directive():
    store, pools = make_store(lambda seen: FakeResponse(200, b"<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>"))
    store.set_meta("dir/f.txt", {"mode": "0100600"}, "text/plain")
    headers = pools.requests[0].headers
    assert headers["x-cos-metadata-directive"] == "Replaced"
    assert headers["x-cos-copy-source"] == "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/f.txt"
    assert headers["x-cos-meta-mode"] == "0100600" and headers["Content-Type"] == "text/plain"


def test_move_with_meta_is_one_copy_carrying_it_then_the_delete():
    store, adapter = make_store(lambda seen: FakeResponse(
        204 if seen.method == "DELETE" else 200, b"<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>"))
    store.move("dir/.f.Xyz", "dir/f", meta={"mode": "0100600"}, content_type="text/plain")
    copy, delete = adapter.requests
    assert copy.headers["x-cos-metadata-directive"] == "Replaced" and copy.headers["x-cos-meta-mode"] == "0100600"
    assert copy.headers["x-cos-copy-source"].endswith("/dir/.f.Xyz")
    assert copy.headers["Content-Type"] == "text/plain"
    assert delete.method == "DELETE"


def test_multi_delete_batches_of_1000_with_md5_and_reports_failures():
    def handler(seen):
        assert seen.query == {"delete": ""}
        assert seen.headers["Content-MD5"] == base64.b64encode(hashlib.md5(seen.body).digest()).decode()
        return FakeResponse(200, b"<DeleteResult><Error><Key>k7</Key><Code>AccessDenied</Code>"
                                 b"<Message>no</Message></Error></DeleteResult>")

    store, pools = make_store(handler)
    failures = store.delete_many([f"k{i}" for i in range(2500)])
    assert len(pools.requests) == 3
    assert pools.requests[0].body.count(b"<Object>") == 1000
    assert pools.requests[2].body.count(b"<Object>") == 500
    assert [(key, error.errno) for key, error in failures] == [("k7", errno.EACCES)] * 3


def test_delete_dir_refuses_non_empty_directory():
    store, pools = make_store(lambda seen: FakeResponse(200, list_body(keys=["d%2F", "d%2Fx"])))
    with pytest.raises(CosError) as raised:
        store.delete_dir("d/")
    assert raised.value.errno == errno.ENOTEMPTY
    assert all(r.method == "GET" for r in pools.requests)


def test_multipart_upload_sequence():
    def handler(seen):
        if seen.method == "POST" and "uploads" in seen.query:
            return FakeResponse(200, b"<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>")
        if seen.method == "PUT":
            return FakeResponse(200, b"", {"ETag": f'"etag{seen.query["partNumber"]}"'})
        return FakeResponse(200, b"<CompleteMultipartUploadResult><ETag>\"final-2\"</ETag></CompleteMultipartUploadResult>")

    store, pools = make_store(handler)
    session = store.begin_upload("big.bin", meta={"mode": "0100644"})
    parts = [session.put_part(1, b"a" * 10), session.put_part(2, b"b" * 5)]
    info = session.complete(parts)
    assert info.etag == "final-2" and info.size == 15
    complete = pools.requests[-1]
    assert complete.query == {"uploadId": "U1"}
    assert b'<PartNumber>1</PartNumber><ETag>"etag1"</ETag>' in complete.body
    assert pools.requests[1].query == {"partNumber": "1", "uploadId": "U1"}
    assert "Content-MD5" in pools.requests[1].headers


def test_copy_part_sends_the_range_and_pins_the_source_version():
    """A sparse write's rebuild copies parts of the object it changes only from the version it
    was based on: ``x-cos-copy-source-If-Match`` (a changed source answers 412: ESTALE)."""
    def handler(seen):
        if seen.method == "POST":
            return FakeResponse(200, b"<InitiateMultipartUploadResult><UploadId>U1</UploadId></InitiateMultipartUploadResult>")
        if "x-cos-copy-source-If-Match" in seen.headers:
            return FakeResponse(412, error_body("PreconditionFailed"))
        return FakeResponse(200, b"<CopyPartResult><ETag>\"p1\"</ETag></CopyPartResult>")

    store, pools = make_store(handler)
    session = store.begin_upload("new.bin")
    assert session.copy_part(1, "old.bin", 0, 9) == PartInfo(1, 10, "p1")
    with pytest.raises(CosError) as caught:
        session.copy_part(2, "old.bin", 10, 19, if_match="abc")
    assert caught.value.errno == errno.ESTALE
    copied = pools.requests[-1]
    assert copied.query == {"partNumber": "2", "uploadId": "U1"}
    assert copied.headers["x-cos-copy-source-range"] == "bytes=10-19"
    assert copied.headers["x-cos-copy-source-If-Match"] == '"abc"'
    assert copied.headers["x-cos-copy-source"].endswith("/old.bin")


def test_complete_whose_answer_was_cut_is_success_when_the_object_is_there():
    """The first complete stored the object but its answer was cut short; the repeat then
    answers NoSuchUpload, which is no error when the object has the upload's size."""
    answers = [FakeResponse(200, b"<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>",
                            cut_after=10),
               FakeResponse(404, error_body("NoSuchUpload")),
               FakeResponse(200, b"", {"Content-Length": "15", "ETag": '"final-2"'})]
    store, pools = make_store(lambda seen: answers.pop(0))

    info = XmlUploadSession(store, "big.bin", "U1").complete([PartInfo(1, 10, "e1"), PartInfo(2, 5, "e2")])

    assert (info.size, info.etag) == (15, "final-2")
    assert [seen.method for seen in pools.requests] == ["POST", "POST", "HEAD"]


def test_complete_answering_no_such_upload_at_the_first_attempt_is_an_error():
    """An upload that was aborted or expired must not pass for done because an older object
    of the same size is there."""
    store, pools = make_store(lambda seen: FakeResponse(404, error_body("NoSuchUpload")))

    with pytest.raises(CosError) as raised:
        XmlUploadSession(store, "big.bin", "U1").complete([PartInfo(1, 15, "e1")])

    assert raised.value.code == "NoSuchUpload" and len(pools.requests) == 1


def test_read_range_cut_short_resumes_and_returns_exactly_the_range():
    data = bytes(range(256)) * 64
    answers = [
        FakeResponse(206, data[100:4100], {"Content-Range": f"bytes 100-4099/{len(data)}", "ETag": '"e"'},
                     cut_after=1000),
        FakeResponse(206, data[1100:4100], {"Content-Range": f"bytes 1100-4099/{len(data)}", "ETag": '"e"'}),
    ]
    store, pools = make_store(lambda seen: answers.pop(0))

    assert store.read_range("f", 100, 4000) == data[100:4100]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=100-4099", "bytes=1100-4099"]
    verify_signature(pools.requests[1])


def test_read_range_sends_range_and_treats_416_as_end_of_file():
    answers = [FakeResponse(206, b"bcd"), FakeResponse(416, error_body("InvalidRange"))]
    store, pools = make_store(lambda seen: answers.pop(0))
    assert store.read_range("f", 1, 3) == b"bcd"
    assert pools.requests[0].headers["Range"] == "bytes=1-3"
    assert store.read_range("f", 100, 3) == b""


# --- addressing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, encoded",
    [
        ("a b.txt", "a%20b.txt"),
        ("a+b%c~d", "a%2Bb%25c~d"),
        ("中文", "%E4%B8%AD%E6%96%87"),
        ("dir/./x", "dir/.%2Fx"),
        ("odd/!'()*@$,;:[]#?.txt", "odd/%21%27%28%29%2A%40%24%2C%3B%3A%5B%5D%23%3F.txt"),
    ],
)
def test_key_encoding_matches_the_sdk(key, encoded):
    assert encode_key(key) == encoded


def test_path_style_endpoint_signs_the_bucket_in_the_path():
    store, pools = make_store(lambda seen: FakeResponse(200, b"", {"Content-Length": "1"}),
                                endpoint="http://127.0.0.1:9000")
    store.stat("k 1")
    seen = pools.requests[0]
    assert seen.url == "http://127.0.0.1:9000/examplebucket-1250000000/k%201"
    verify_signature(seen)
