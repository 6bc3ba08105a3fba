"""JsonStore against a scripted JSON API (fake connection pools): request shapes, signatures,
answer parsing, error mapping, slice uploads; and the json_codec helpers."""

from __future__ import annotations

import errno
import json
import random
from typing import Callable, Dict, List

import pytest
from urllib3.exceptions import ProtocolError

from cosfs.emulator.forms import decode_form
from cosfs.store.endpoints import Bucket, Endpoint
from cosfs.store.interface import ListPage, PartInfo
from cosfs.store.json_store import JsonStore
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.errors import CosError
from cosfs.wire.signing import jsonsign
from tests.support.fake_http import FakeResponse, SeenRequest, fake_transport

APPID = "1250000000"
BUCKET = Bucket("examplebucket", APPID)
API = Endpoint("http://127.0.0.1:9", f"/files/v2/{APPID}/examplebucket")
DOWNLOAD = Endpoint("http://127.0.0.1:9", f"/examplebucket-{APPID}")
SECRET_ID, SECRET_KEY = "AKIDEXAMPLE", "EXAMPLEKEY"
NOW = 1_700_000_000
HALF_MIB = 512 * 1024

def ok(data: Dict = None, status: int = 200) -> FakeResponse:
    body = {"code": 0, "message": "SUCCESS", "data": data or {}}
    return FakeResponse(status, json.dumps(body).encode(), {"x-cos-request-id": "req-1"})


def fail(code: int, status: int = 400) -> FakeResponse:
    body = {"code": code, "message": f"error {code}"}
    return FakeResponse(status, json.dumps(body).encode(), {"x-cos-request-id": "req-1"})


def op_of(seen: SeenRequest) -> str:
    """The JSON API operation of a request, wherever the client put it."""
    if "op" in seen.query:
        return seen.query["op"]
    content_type = seen.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        return decode_form(content_type, seen.body)["op"].decode()
    if seen.body:
        return json.loads(seen.body)["op"]
    return "download"


def form_of(seen: SeenRequest) -> Dict[str, bytes]:
    return decode_form(seen.headers["Content-Type"], seen.body)


class ScriptedCos:
    """Answers each operation from a script: one answer, a list used in order, or a function."""

    def __init__(self, **answers) -> None:
        self.answers = answers

    def __call__(self, seen: SeenRequest):
        answer = self.answers[op_of(seen)]
        if isinstance(answer, list):
            answer = answer.pop(0)
        return answer(seen) if callable(answer) else answer


def make_store(cos: Callable, credentials=Credentials(SECRET_ID, SECRET_KEY)):
    transport, pools = fake_transport(cos)
    store = JsonStore(
        BUCKET, API, DOWNLOAD, StaticProvider(credentials, "test"), transport,
        clock=lambda: NOW, rng=random.Random(7),
    )
    return store, pools


def cos_path(seen: SeenRequest) -> str:
    assert seen.path.startswith(API.path_prefix)
    return seen.path[len(API.path_prefix):]


def ops(pools) -> List[str]:
    return [op_of(seen) for seen in pools.requests]


# --- listing -------------------------------------------------------------------------------


def file_entry(name: str, size: int = 5, **extra) -> Dict:
    return {"name": name, "filesize": size, "filelen": size, "sha": "s-" + name, "mtime": 1600000000, **extra}


def test_list_follows_context_until_listover_and_caps_num():
    pages = {
        "": ok({"context": "c1", "listover": False, "infos": [file_entry("a")]}),
        "c1": ok({"context": "c2", "listover": False, "infos": [file_entry("b")]}),
        "c2": ok({"context": "c3", "listover": True, "infos": [file_entry("c")]}),
    }
    store, pools = make_store(ScriptedCos(list=lambda seen: pages[seen.query["context"]]))

    keys, marker, markers = [], "", []
    while marker is not None:
        page = store.list_page("d/", marker, max_keys=1000)
        keys += [info.key for info in page.files]
        marker = page.next_marker
        markers.append(marker)

    assert keys == ["d/a", "d/b", "d/c"]
    assert markers == ["c1", "c2", None]
    assert [seen.query["context"] for seen in pools.requests] == ["", "c1", "c2"]
    assert {seen.query["num"] for seen in pools.requests} == {"199"}
    assert {cos_path(seen) for seen in pools.requests} == {"/d/"}


def test_list_tells_directories_from_files():
    infos = [
        file_entry("f.txt", 12),
        {"name": "sub/", "mtime": 1},
        {"name": "nosize", "mtime": 1},
        file_entry("uploading", 100, filelen=10),
    ]
    store, _ = make_store(ScriptedCos(list=ok({"context": "", "listover": True, "infos": infos})))

    page = store.list_page("d/")

    assert page.dirs == ("d/sub/", "d/nosize/")
    assert [(f.key, f.size, f.mtime_ns, f.etag, f.meta) for f in page.files] == [
        ("d/f.txt", 12, 1600000000 * 10**9, "s-f.txt", None)
    ]
    assert page.next_marker is None


def test_walk_goes_depth_first_and_yields_directories():
    listings = {
        "/": [file_entry("top"), {"name": "a/", "mtime": 1}],
        "/a/": [{"name": "b/", "mtime": 2}, file_entry("x")],
        "/a/b/": [file_entry("y")],
    }
    answer = lambda seen: ok({"context": "", "listover": True, "infos": listings[cos_path(seen)]})
    store, _ = make_store(ScriptedCos(list=answer))

    walked = [(info.key, info.is_dir) for info in store.walk("")]

    assert walked == [("top", False), ("a/", True), ("a/x", False), ("a/b/", True), ("a/b/y", False)]


# --- stat ----------------------------------------------------------------------------------


def test_stat_file_reads_size_sha_meta_and_content_type():
    data = file_entry("f", 21, custom_headers={"X-Cos-Meta-Mode": "0100644", "Content-Type": "text/plain"})
    store, pools = make_store(ScriptedCos(stat=ok(data)))

    info = store.stat("dir/a b.txt")

    assert (info.key, info.size, info.etag, info.is_dir) == ("dir/a b.txt", 21, "s-f", False)
    assert info.mtime_ns == 1600000000 * 10**9
    assert info.meta == {"mode": "0100644"} and info.content_type == "text/plain"
    assert pools.requests[0].url.endswith("/dir/a%20b.txt?op=stat")


def test_stat_directory_and_root():
    store, pools = make_store(ScriptedCos(stat=ok({"biz_attr": "", "mtime": 5})))

    assert store.stat("dir/").is_dir and store.stat("").is_dir
    assert [cos_path(seen) for seen in pools.requests] == ["/dir/", "/"]


def test_stat_missing_is_none():
    store, _ = make_store(ScriptedCos(stat=fail(-197)))
    assert store.stat("nope") is None


def test_stat_unfinished_upload_is_none():
    store, _ = make_store(ScriptedCos(stat=ok(file_entry("f", 100, filelen=40))))
    assert store.stat("f") is None


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, code, call, expected",
    [
        ("create", -177, lambda store: store.create_dir("d/"), errno.EEXIST),
        ("delete", -173, lambda store: store.delete_dir("d/"), errno.ENOTEMPTY),
        ("list", -97, lambda store: store.list_page(""), errno.EACCES),
    ],
)
def test_json_codes_reach_the_errno_table(op, code, call, expected):
    store, _ = make_store(ScriptedCos(**{op: fail(code)}))

    with pytest.raises(CosError) as raised:
        call(store)

    assert raised.value.errno == expected
    assert (raised.value.code, raised.value.status, raised.value.request_id) == (str(code), 400, "req-1")


def test_non_json_502_is_retried_then_eio():
    store, pools = make_store(ScriptedCos(stat=FakeResponse(502, b"<html>Bad Gateway</html>")))

    with pytest.raises(CosError) as raised:
        store.stat("f")

    assert len(pools.requests) == 4
    assert (raised.value.status, raised.value.errno) == (502, errno.EIO)


def test_delete_of_missing_key_is_success_and_delete_many_reports_failures():
    answers = {"/gone": fail(-197), "/busy/": fail(-173), "/ok": ok()}
    store, pools = make_store(ScriptedCos(delete=lambda seen: answers[cos_path(seen)]))

    failures = store.delete_many(["gone", "busy/", "ok"])

    assert [(key, error.errno) for key, error in failures] == [("busy/", errno.ENOTEMPTY)]
    assert len(pools.requests) == 3


# --- signatures ----------------------------------------------------------------------------


def signature_of(seen: SeenRequest) -> Dict[str, str]:
    decoded = jsonsign.decode(seen.headers["Authorization"])
    assert decoded.matches(SECRET_KEY)
    return decoded.fields


def fileid(key: str) -> str:
    return jsonsign.fileid(APPID, "examplebucket", "/" + key)


@pytest.mark.parametrize(
    "call, key",
    [
        (lambda store: store.delete_file("dir/a b.txt"), "dir/a b.txt"),
        (lambda store: store.set_meta("dir/f", {"mode": "1"}), "dir/f"),
        (lambda store: store.move("dir/a.txt", "dir/b c.txt"), "dir/a.txt"),
        (lambda store: store.copy("dir/a.txt", "dir/b.txt"), "dir/a.txt"),
    ],
)
def test_mutations_use_a_once_signature_bound_to_the_source(call, key):
    store, pools = make_store(lambda seen: ok())

    call(store)

    fields = signature_of(pools.requests[0])
    assert fields["e"] == "0" and fields["f"] == fileid(key) and fields["b"] == "examplebucket"


@pytest.mark.parametrize(
    "call, bound",
    [
        (lambda store: store.list_page("dir/"), "dir/"),
        (lambda store: store.stat("dir/f"), "dir/f"),
        (lambda store: store.put_object("dir/f", b"x"), "dir/f"),
        (lambda store: store.create_dir("dir/sub/"), "dir/sub/"),
    ],
)
def test_reads_and_uploads_use_a_multi_signature_bound_to_the_target(call, bound):
    store, pools = make_store(lambda seen: ok({"listover": True, "filesize": 1}))

    call(store)

    fields = signature_of(pools.requests[0])
    assert int(fields["e"]) == NOW + 600 and int(fields["t"]) == NOW
    assert fields["f"] == fileid(bound)
    assert len(fields["r"]) <= 10


class FixedRandom:
    def randint(self, low: int, high: int) -> int:
        return 123456789


#: Authorization headers qcloud-cos-v4 sent (json_wire vectors), up to the common tail.
SDK_SIGNS = {
    "delete": "hkKdI5Re2jPeplBOPxTIYyMNKIRhPTEyNTAwMDAwMDAmaz1BS0lERVhBTVBMRUVYQU1QTEVFWEFNUExFRVhB",
    "move": "sjkhG5G2GSxGHMGCHSbG+/e1HvNhPTEyNTAwMDAwMDAmaz1BS0lERVhBTVBMRUVYQU1QTEVFWEFNUExFRVhB",
    "list": "zaKYVYXb0+biZQuMyCGcBzlWeqJhPTEyNTAwMDAwMDAmaz1BS0lERVhBTVBMRUVYQU1QTEVFWEFNUExFRVhB",
}


def test_signatures_match_the_sdk_wire_vectors():
    transport, pools = fake_transport(lambda seen: ok({"listover": True}))
    credentials = Credentials("AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE0000", "EXAMPLEKEYexamplekeyEXAMPLEKEY00")
    store = JsonStore(
        BUCKET, API, DOWNLOAD, StaticProvider(credentials, "vectors"), transport,
        sign_validity=300, clock=lambda: NOW, rng=FixedRandom(),
    )

    store.delete_file("dir/a b.txt")
    store.move("dir/a.txt", "dir/b c.txt")
    store.list_page("dir/pre", max_keys=100)

    signs = {op_of(seen): seen.headers["Authorization"] for seen in pools.requests}
    assert {op: sign[: len(SDK_SIGNS[op])] for op, sign in signs.items()} == SDK_SIGNS
    assert pools.requests[2].url.endswith("/dir/pre?op=list&num=100&context=")


def test_anonymous_requests_carry_no_authorization():
    store, pools = make_store(ScriptedCos(stat=ok({"mtime": 1})), credentials=None)
    store.stat("d/")
    assert "Authorization" not in pools.requests[0].headers


# --- move, copy, create, update ------------------------------------------------------------


def test_move_sends_query_without_body():
    store, pools = make_store(ScriptedCos(move=ok()))

    store.move("dir/a.txt", "dir/b c.txt", overwrite=False)

    seen = pools.requests[0]
    assert (seen.method, cos_path(seen), seen.body) == ("POST", "/dir/a.txt", b"")
    assert seen.query == {"op": "move", "dest_fileid": "/dir/b c.txt", "to_over_write": "0"}


def test_move_lost_answer_then_destination_present_is_success_without_repeat():
    stats = {"/a": fail(-197), "/b": ok(file_entry("b"))}
    reset = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    cos = ScriptedCos(move=reset, stat=lambda seen: stats[cos_path(seen)])
    store, pools = make_store(cos)

    store.move("a", "b")

    assert ops(pools).count("move") == 1


def test_move_failed_with_source_still_present_is_tried_again():
    cos = ScriptedCos(move=[fail(-71), ok()], stat=ok(file_entry("a")))
    store, pools = make_store(cos)

    store.move("a", "b")

    assert ops(pools) == ["move", "stat", "move"]


def test_move_with_meta_is_the_move_then_one_update_of_the_destination():
    store, adapter = make_store(ScriptedCos(move=ok(), update=ok()))

    store.move("a", "d/b", meta={"mode": "0100600"})

    assert ops(adapter) == ["move", "update"]
    assert cos_path(adapter.requests[1]) == "/d/b"
    assert json.loads(adapter.requests[1].body)["custom_headers"] == {"x-cos-meta-mode": "0100600"}


def test_copy_is_a_form_then_update_when_meta_given():
    store, pools = make_store(ScriptedCos(copy=ok(), update=ok()))

    store.copy("a", "d/b", meta={"mode": "0100600"})

    form = form_of(pools.requests[0])
    assert form == {"op": b"copy", "dest_fileid": b"/d/b", "to_over_write": b"1"}
    update = pools.requests[1]
    assert cos_path(update) == "/d/b"
    assert json.loads(update.body)["custom_headers"] == {"x-cos-meta-mode": "0100600"}


def test_create_dir_posts_json_then_updates_meta_on_the_directory():
    store, pools = make_store(ScriptedCos(create=ok(), update=ok()))

    store.create_dir("d/sub/", meta={"mode": "040755"})

    create, update = pools.requests
    assert json.loads(create.body) == {"op": "create", "biz_attr": ""}
    assert create.headers["Content-Type"] == "application/json"
    assert cos_path(update) == "/d/sub/" and signature_of(update)["e"] == "0"
    assert json.loads(update.body) == {"op": "update", "custom_headers": {"x-cos-meta-mode": "040755"}}


def test_create_dir_repeated_after_a_lost_answer_is_success_when_the_directory_is_there():
    """The first create made the directory but its answer was cut; the repeat answers -178."""
    cut = FakeResponse(200, json.dumps({"code": 0}).encode(), cut_after=3)
    store, pools = make_store(ScriptedCos(create=[cut, fail(-178)], stat=ok({"mtime": 1})))

    store.create_dir("d/sub/")

    assert ops(pools) == ["create", "create", "stat"]


def test_create_dir_of_an_existing_directory_is_eexist_at_the_first_attempt():
    store, pools = make_store(ScriptedCos(create=fail(-178)))

    with pytest.raises(CosError) as raised:
        store.create_dir("d/sub/")

    assert raised.value.errno == errno.EEXIST and ops(pools) == ["create"]


# --- simple upload -------------------------------------------------------------------------


def test_put_object_sends_the_sdk_form_then_metadata():
    store, pools = make_store(ScriptedCos(upload=ok({"access_url": "x"}), update=ok()))

    info = store.put_object("d/f", b"hello world", meta={"mode": "0100644"}, content_type="text/plain")

    form = form_of(pools.requests[0])
    sha = "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"
    assert form == {
        "op": b"upload", "biz_attr": b"", "sha": sha.encode(), "insertOnly": b"0", "filecontent": b"hello world",
    }
    assert json.loads(pools.requests[1].body)["custom_headers"] == {
        "x-cos-meta-mode": "0100644", "Content-Type": "text/plain",
    }
    assert (info.size, info.etag, info.mtime_ns) == (11, sha, NOW * 10**9)


def test_put_object_over_20_mib_is_efbig_without_a_request():
    store, pools = make_store(lambda seen: ok())

    with pytest.raises(CosError) as raised:
        store.put_object("big", bytes(20 * 1024 * 1024 + 1))

    assert raised.value.errno == errno.EFBIG and pools.requests == []


# --- slice upload --------------------------------------------------------------------------

SIZE = 2 * HALF_MIB + 100
CHUNKS = [b"a" * HALF_MIB, b"b" * HALF_MIB, b"c" * 100]


def finished_stat(seen: SeenRequest) -> FakeResponse:
    return ok(file_entry("big", SIZE))


def test_slice_upload_init_data_finish():
    cos = ScriptedCos(
        upload_slice_init=ok({"session": "s1", "slice_size": HALF_MIB}),
        upload_slice_data=ok(), upload_slice_finish=ok(), stat=finished_stat,
    )
    store, pools = make_store(cos)

    session = store.begin_upload("d/big", size=SIZE, part_size=400_000)
    parts = [session.put_part(n, chunk) for n, chunk in enumerate(CHUNKS, 1)]
    info = session.complete(parts)

    assert ops(pools) == ["upload_slice_init"] + ["upload_slice_data"] * 3 + ["upload_slice_finish", "stat"]
    init = form_of(pools.requests[0])
    assert (init["filesize"], init["slice_size"], init["insertOnly"]) == (str(SIZE).encode(), b"524288", b"0")
    offsets = [form_of(seen)["offset"] for seen in pools.requests[1:4]]
    assert offsets == [b"0", b"524288", b"1048576"]
    assert all(form_of(seen)["session"] == b"s1" for seen in pools.requests[1:5])
    assert form_of(pools.requests[1])["filecontent"] == CHUNKS[0]
    assert form_of(pools.requests[4])["filesize"] == str(SIZE).encode()
    assert (session.part_size, info.size) == (HALF_MIB, SIZE)


def test_slice_upload_resumes_after_4019_and_sends_only_missing_parts():
    listing = ok({"session": "old", "slice_size": HALF_MIB, "filesize": SIZE,
                  "listparts": [{"offset": 0, "datalen": HALF_MIB}]})
    cos = ScriptedCos(
        upload_slice_init=fail(-4019), upload_slice_list=listing,
        upload_slice_data=ok(), upload_slice_finish=ok(), stat=finished_stat,
    )
    store, pools = make_store(cos)

    session = store.begin_upload("d/big", size=SIZE)
    stored = session.list_parts()
    sent = [session.put_part(n, CHUNKS[n - 1]) for n in (2, 3) if n not in {p.number for p in stored}]
    session.complete(list(stored) + sent)

    assert session.upload_id == "old" and stored == [PartInfo(1, HALF_MIB)]
    data = [seen for seen in pools.requests if op_of(seen) == "upload_slice_data"]
    assert [form_of(seen)["offset"] for seen in data] == [b"524288", b"1048576"]
    assert form_of(pools.requests[-2])["session"] == b"old"


def test_slice_finish_repeated_after_a_lost_answer_is_success_when_the_file_is_there():
    lost = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    cos = ScriptedCos(upload_slice_init=ok({"session": "s1", "slice_size": HALF_MIB}), upload_slice_data=ok(),
                      upload_slice_finish=[lost, fail(-290)], stat=finished_stat)
    store, pools = make_store(cos)
    session = store.begin_upload("d/big", size=SIZE)

    info = session.complete([session.put_part(n, chunk) for n, chunk in enumerate(CHUNKS, 1)])

    assert info.size == SIZE
    assert ops(pools)[-4:] == ["upload_slice_finish", "upload_slice_finish", "stat", "stat"]


def test_slice_finish_repeated_is_an_error_when_the_file_is_not_the_upload():
    lost = ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    cos = ScriptedCos(upload_slice_init=ok({"session": "s1", "slice_size": HALF_MIB}), upload_slice_data=ok(),
                      upload_slice_finish=[lost, fail(-290)], stat=ok(file_entry("big", SIZE - 1)))
    store, _ = make_store(cos)
    session = store.begin_upload("d/big", size=SIZE)

    with pytest.raises(CosError) as raised:
        session.complete([session.put_part(n, chunk) for n, chunk in enumerate(CHUNKS, 1)])

    assert raised.value.code == "-290"


def test_unfinished_upload_of_another_size_is_an_error():
    listing = ok({"session": "old", "slice_size": HALF_MIB, "filesize": SIZE + 1, "listparts": []})
    store, _ = make_store(ScriptedCos(upload_slice_init=fail(-4019), upload_slice_list=listing))

    with pytest.raises(CosError) as raised:
        store.begin_upload("d/big", size=SIZE)

    assert raised.value.code == "-4019"


def test_slice_session_refuses_wrong_part_size_and_part_copy_and_aborts_silently():
    store, pools = make_store(ScriptedCos(upload_slice_init=ok({"session": "s1", "slice_size": HALF_MIB})))
    session = store.begin_upload("d/big", size=SIZE)

    with pytest.raises(CosError) as wrong_size:
        session.put_part(1, b"short")
    with pytest.raises(CosError) as copy:
        session.copy_part(1, "other", 0, 9)
    session.abort()

    assert wrong_size.value.errno == errno.EINVAL and copy.value.errno == errno.ENOTSUP
    assert ops(pools) == ["upload_slice_init"]


def test_begin_upload_needs_the_size():
    store, _ = make_store(lambda seen: ok())
    with pytest.raises(CosError) as raised:
        store.begin_upload("d/big")
    assert raised.value.errno == errno.EINVAL


def test_find_upload():
    listing = ok({"session": "s9", "slice_size": HALF_MIB, "filesize": SIZE})
    store, _ = make_store(ScriptedCos(upload_slice_list=[listing, listing, fail(-197)]))

    assert store.find_upload("d/big", size=SIZE).upload_id == "s9"
    assert store.find_upload("d/big", size=SIZE - 1) is None
    assert store.find_upload("d/big") is None


# --- downloads -----------------------------------------------------------------------------


def test_read_range_sends_range_and_download_signature():
    store, pools = make_store(ScriptedCos(download=FakeResponse(206, b"0123456789")))

    assert store.read_range("dir/a b.txt", 10, 10) == b"0123456789"

    seen = pools.requests[0]
    assert seen.path == "/examplebucket-1250000000/dir/a b.txt"
    assert seen.headers["Range"] == "bytes=10-19"
    fields = jsonsign.decode(seen.query["sign"]).fields
    assert fields["f"] == "/dir/a%20b.txt" and int(fields["e"]) > NOW


def test_read_range_cut_short_resumes_on_the_download_host_and_returns_exactly_the_range():
    data = bytes(range(256)) * 64
    answers = [
        FakeResponse(206, data[:3000], {"Content-Range": f"bytes 0-2999/{len(data)}", "ETag": '"e"'}, cut_after=7),
        FakeResponse(206, data[7:3000], {"Content-Range": f"bytes 7-2999/{len(data)}", "ETag": '"e"'}),
    ]
    store, pools = make_store(ScriptedCos(download=answers))

    assert store.read_range("f", 0, 3000) == data[:3000]
    assert [seen.headers["Range"] for seen in pools.requests] == ["bytes=0-2999", "bytes=7-2999"]
    assert pools.requests[1].headers["If-Match"] == '"e"'


def test_read_range_past_the_end_and_full_answers():
    store, _ = make_store(ScriptedCos(download=[FakeResponse(416), FakeResponse(200, b"abcdefgh")]))

    assert store.read_range("f", 100, 10) == b""
    assert store.read_range("f", 2, 3) == b"cde"


def test_read_range_xml_error_code_is_mapped():
    body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>"
    store, _ = make_store(ScriptedCos(download=FakeResponse(404, body)))

    with pytest.raises(CosError) as raised:
        store.read_range("f", 0, 1)

    assert (raised.value.code, raised.value.errno) == ("NoSuchKey", errno.ENOENT)


def test_probe_reports_a_missing_bucket_while_list_page_of_a_missing_directory_is_empty():
    def handler(seen):
        return FakeResponse(400, json.dumps({"code": -166, "message": "ERROR_CMD_COS_INDEX_ERROR"}).encode())

    store, _ = make_store(handler)
    assert store.list_page("gone/") == ListPage()
    with pytest.raises(CosError) as raised:
        store.probe()
    assert raised.value.code == "-166"
