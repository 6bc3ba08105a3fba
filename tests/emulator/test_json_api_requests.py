"""What ``json_api.handle`` checks before any operation: signatures (kind, replay, expiry,
key, binding), methods, op names, bodies and paths; and the shape of its answers."""

from __future__ import annotations

import json
from urllib.parse import quote

from cosfs.emulator import json_api
from cosfs.emulator.protocol import EmuRequest
from cosfs.wire.signing import jsonsign
from tests.emulator.json_api_support import APPID, BUCKET, NAME, SECRET_ID, emu  # noqa: F401

# --- signatures ----------------------------------------------------------------------------


def test_a_once_signature_works_once_then_77(emu):
    emu.put_object("a.txt")
    emu.put_object("b.txt")
    sign = emu.sign("/a.txt", "once")

    first = emu.post_json("/a.txt", {"op": "update", "biz_attr": "1"}, sign=sign)
    replay = emu.post_json("/a.txt", {"op": "update", "biz_attr": "2"}, sign=sign)

    assert first.code == 0
    assert (replay.status, replay.code) == (400, -77)
    assert emu.head("a.txt").extra == {"biz_attr": "1"}


def test_a_once_signature_is_bound_to_its_file(emu):
    emu.put_object("a.txt")
    emu.put_object("b.txt")

    answer = emu.post_json("/b.txt", {"op": "delete"}, sign=emu.sign("/a.txt", "once"))

    assert answer.code == -63 and emu.head("b.txt") is not None


def test_operations_that_need_a_multi_use_signature_refuse_a_once_one_with_74(emu):
    emu.put_object("a.txt")

    assert emu.get("/a.txt", "stat", sign="once").code == -74
    assert emu.get("/", "list", sign="once").code == -74
    assert emu.post_json("/d/", {"op": "create"}, sign="once").code == -74
    assert emu.post_form("/b.txt", [("op", "upload"), ("filecontent", b"x")], sign="once").code == -74


def test_a_multi_use_signature_may_be_bound_to_a_prefix_or_to_nothing(emu):
    emu.put_object("dir/a.txt")
    now = int(emu.clock())
    unbound = jsonsign.sign_multi(APPID, NAME, SECRET_ID, emu.auth.principals[SECRET_ID].secret_key,
                                  now + 60, now, 7)

    assert emu.get("/dir/a.txt", "stat", sign=emu.sign("/dir/")).code == 0
    assert emu.get("/dir/a.txt", "stat", sign=unbound).code == 0
    assert emu.get("/dir/a.txt", "stat", sign=emu.sign("/other/")).code == -63


def test_an_expired_signature_is_96(emu):
    emu.put_object("a.txt")
    sign = emu.sign("/a.txt")
    emu.clock.now += 301

    assert emu.get("/a.txt", "stat", sign=sign).code == -96


def test_a_signature_made_with_another_key_is_97(emu):
    emu.put_object("a.txt")
    now = int(emu.clock())
    forged = jsonsign.sign_multi(APPID, NAME, SECRET_ID, "not-the-key", now + 60, now, 1, "/a.txt")

    answer = emu.get("/a.txt", "stat", sign=forged)

    assert (answer.status, answer.code) == (400, -97)


def test_no_signature_is_81_and_a_garbled_one_5998(emu):
    assert emu.get("/", "list", sign=None).code == -81
    assert emu.get("/", "list", sign="not base64!").code == -5998


def test_a_signature_of_another_bucket_is_61(emu):
    now = int(emu.clock())
    other = jsonsign.sign_multi(APPID, "otherbucket", SECRET_ID, emu.auth.principals[SECRET_ID].secret_key,
                                now + 60, now, 1)

    assert emu.get("/", "list", sign=other).code == -61


def test_the_signature_may_come_as_a_sign_query_parameter(emu):
    emu.put_object("a.txt")
    sign = emu.sign("/a.txt")
    query = f"op=stat&sign={quote(sign, safe='')}"
    request = EmuRequest("GET", f"/files/v2/{APPID}/{NAME}/a.txt", [("op", "stat"), ("sign", sign)],
                         {"host": "127.0.0.1"}, iter([]), raw_query=query, bucket=BUCKET, key="a.txt",
                         request_id="r")

    answer = emu.call(request)

    assert answer.code == 0 and answer.data["name"] == "a.txt"


def test_without_auth_any_request_is_served(emu):
    emu.auth.no_auth = True
    emu.put_object("a.txt")

    assert emu.get("/a.txt", "stat", sign=None).code == 0


# --- methods, ops, bodies ------------------------------------------------------------------


def test_a_missing_op_is_5980_and_an_unknown_one_5992(emu):
    assert emu.send("GET", "/a.txt").code == -5980
    assert emu.get("/a.txt", "download").code == -5992
    assert emu.post_json("/a.txt", {"op": "rename"}).code == -5992


def test_an_op_sent_with_the_wrong_method_is_5996(emu):
    emu.put_object("a.txt")

    assert emu.get("/a.txt", "delete", sign="once").code == -5996
    assert emu.send("POST", "/a.txt", [("op", "stat")]).code == -5996
    assert emu.send("PUT", "/a.txt", [("op", "stat")]).code == -5996
    assert emu.head("a.txt") is not None


def test_a_body_that_is_not_json_is_5975_and_a_broken_form_5993(emu):
    not_json = emu.send("POST", "/d/", body=b"{op: create", content_type="application/json")
    broken = emu.send("POST", "/a.txt", body=b"no boundary here", content_type="multipart/form-data; boundary=x")

    assert (not_json.code, broken.code) == (-5975, -5993)


def test_a_field_that_is_not_utf8_is_147(emu):
    answer = emu.post_form("/a.txt", [("op", "upload"), ("biz_attr", b"\xff\xfe"), ("filecontent", b"x")])

    assert (answer.status, answer.code) == (400, -147)
    assert emu.head("a.txt") is None


def test_the_operation_name_is_recorded_for_the_counters(emu):
    assert emu.get("/", "list").operation == "list"
    assert emu.post_form("/f", [("op", "upload_slice_init"), ("filesize", "1")]).operation == "upload_slice_init"


# --- paths ---------------------------------------------------------------------------------


def test_an_empty_segment_or_a_dot_dot_segment_is_180(emu):
    assert emu.upload("/a//b.txt", b"x").code == -180
    assert emu.upload("/a/../b.txt", b"x").code == -180
    assert emu.upload("/a\x01.txt", b"x").code == -180


def test_nothing_after_the_bucket_is_164(emu):
    answer = emu.send("GET", "/", [("op", "list")], raw_path=f"/files/v2/{APPID}/{NAME}")

    assert (answer.status, answer.code) == (400, -164)


def test_characters_the_sdk_refuses_client_side_are_allowed(emu):
    assert emu.upload('/a?*:|\\<>".txt', b"x").code == 0
    assert emu.stat('/a?*:|\\<>".txt').data["filesize"] == 1


# --- answers -------------------------------------------------------------------------------


def test_an_error_answers_400_with_code_message_and_request_id_as_json(emu):
    answer = emu.stat("/missing.txt")

    assert (answer.status, answer.code, answer.content_type) == (400, -197, "application/json")
    assert answer.message.startswith("ERROR_CMD_FILE_NOTEXIST: ") and "missing.txt" in answer.message
    assert not answer.has_data


def test_a_success_answers_200_with_code_0_and_message_success(emu):
    request = EmuRequest("GET", f"/files/v2/{APPID}/{NAME}/", [("op", "list"), ("num", "10")],
                         {"authorization": emu.sign("/")}, iter([]), raw_query="op=list&num=10",
                         bucket=BUCKET, key="", request_id="abc")

    response = json_api.handle(emu.ctx, request, APPID, NAME)

    assert response.status == 200 and response.headers == {"Content-Type": "application/json"}
    assert json.loads(response.body) == {"code": 0, "message": "SUCCESS", "request_id": "abc",
                                         "data": {"context": "", "listover": True, "infos": []}}
