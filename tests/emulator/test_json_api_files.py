"""Files through ``json_api.handle``: upload, stat, update, delete, move, copy, and what the
XML API (the ``Storage`` underneath) sees of them and they of it."""

from __future__ import annotations

import hashlib
import json

from cosfs.emulator.storage import MAX_KEY_BYTES
from cosfs.store.json_codec import encode_form
from cosfs.wire.facts import JSON_MAX_UPLOAD_SIZE as MAX_UPLOAD_SIZE
from tests.emulator.json_api_support import BUCKET, NAME, emu  # noqa: F401

HOST = f"{NAME}-1250000000"


# --- upload --------------------------------------------------------------------------------


def test_upload_stores_the_file_and_answers_its_urls(emu):
    emu.create("/d/")

    answer = emu.upload("/d/a b.txt", b"hello", sha=hashlib.sha1(b"hello").hexdigest(), biz_attr="tag")

    assert (answer.status, answer.code, answer.content_type) == (200, 0, "application/json")
    assert answer.data == {
        "access_url": f"http://{HOST}.file.myqcloud.com/d/a%20b.txt",
        "resource_path": f"/1250000000/{NAME}/d/a%20b.txt",
        "source_url": f"http://{HOST}.cosgz.myqcloud.com/d/a%20b.txt",
        "url": f"http://gz.file.myqcloud.com/files/v2/1250000000/{NAME}/d/a%20b.txt",
        "preview_url": f"http://{HOST}.preview.myqcloud.com/d/a%20b.txt",
    }
    record = emu.head("d/a b.txt")
    assert emu.read("d/a b.txt") == b"hello"
    assert (record.sha1, record.extra) == (hashlib.sha1(b"hello").hexdigest(), {"biz_attr": "tag"})


def test_upload_to_the_root_needs_no_directory(emu):
    assert emu.upload("/top.txt", b"x").code == 0


def test_upload_over_an_existing_file_is_177_by_default(emu):
    emu.put_object("f.txt", b"old")

    default = emu.upload("/f.txt", b"new")
    explicit = emu.upload("/f.txt", b"new", insertOnly="1")
    overwrite = emu.upload("/f.txt", b"new", insertOnly="0")

    assert (default.status, default.code, explicit.code) == (400, -177, -177)
    assert overwrite.code == 0 and emu.read("f.txt") == b"new"


def test_upload_with_a_sha_the_data_does_not_have_is_5984(emu):
    answer = emu.upload("/f.txt", b"data", sha="0" * 40)

    assert (answer.status, answer.code) == (400, -5984)
    assert emu.head("f.txt") is None


def test_upload_needs_the_parent_directory(emu):
    answer = emu.upload("/missing/f.txt", b"x")

    assert (answer.status, answer.code) == (400, -197)


def test_upload_where_a_directory_has_the_name_is_178(emu):
    emu.create("/d/")

    assert emu.upload("/d", b"x").code == -178


def test_upload_over_twenty_mebibytes_is_285(emu):
    answer = emu.upload("/big.bin", b"\0" * (MAX_UPLOAD_SIZE + 1))

    assert (answer.status, answer.code) == (400, -285)


def test_upload_without_filecontent_is_5990(emu):
    assert emu.post_form("/f.txt", [("op", "upload")]).code == -5990


def test_upload_accepts_the_js_sdks_plain_fields_and_filecontent_name(emu):
    content_type, body = encode_form([("op", "upload"), ("insertOnly", "0"), ("fileContent", b"js")], "fileContent")

    answer = emu.send("POST", "/js.txt", body=body, content_type=content_type)

    assert answer.code == 0 and emu.read("js.txt") == b"js"


def test_upload_to_a_directory_path_is_160(emu):
    assert emu.upload("/d/", b"x").code == -160


# --- stat ----------------------------------------------------------------------------------


def test_stat_of_a_file_answers_the_manuals_fields(emu):
    emu.upload("/f.txt", b"12345", biz_attr="tag")

    answer = emu.stat("/f.txt")

    assert answer.data == {
        "name": "f.txt", "biz_attr": "tag", "filesize": 5, "filelen": 5, "sha": hashlib.sha1(b"12345").hexdigest(),
        "ctime": 1700000001, "mtime": 1700000001, "access_url": f"http://{HOST}.file.myqcloud.com/f.txt",
        "source_url": f"http://{HOST}.cosgz.myqcloud.com/f.txt",
        "preview_url": f"http://{HOST}.preview.myqcloud.com/f.txt", "forbid": 0, "slicesize": 5,
    }


def test_stat_of_an_object_written_through_the_xml_api_shows_its_headers(emu):
    emu.put_object("x.txt", b"xml", "text/plain", {"mode": "0100644"}, {"cache-control": "no-cache"})

    answer = emu.stat("/x.txt")

    assert answer.data["custom_headers"] == {"Cache-Control": "no-cache", "Content-Type": "text/plain",
                                             "x-cos-meta-mode": "0100644"}
    assert answer.data["filesize"] == 3


def test_stat_of_a_missing_file_is_197(emu):
    emu.create("/d/")

    assert emu.stat("/d").code == -197
    assert emu.stat("/nothing.txt").code == -197


# --- update --------------------------------------------------------------------------------


def test_update_merges_custom_headers_into_metadata_content_type_and_extra(emu):
    emu.put_object("f.txt", b"x", meta={"uid": "1000", "mode": "0100600"})

    answer = emu.update("/f.txt", biz_attr="b", authority="eWPrivateRPublic", custom_headers={
        "x-cos-meta-Mode": "0100644", "Content-Type": "text/plain", "Cache-Control": "no",
        "Content-Language": "ch", "Content-Disposition": "inline", "Content-Encoding": "gzip"})

    assert (answer.code, answer.has_data) == (0, False)
    record = emu.head("f.txt")
    assert record.meta == {"uid": "1000", "mode": "0100644"}
    assert record.content_type == "text/plain"
    assert record.extra == {"biz_attr": "b", "authority": "eWPrivateRPublic", "cache-control": "no",
                            "content-language": "ch", "content-disposition": "inline", "content-encoding": "gzip"}
    stat = emu.stat("/f.txt").data
    assert stat["authority"] == "eWPrivateRPublic"
    assert stat["custom_headers"]["x-cos-meta-mode"] == "0100644"
    assert emu.read("f.txt") == b"x"


def test_update_with_a_flag_changes_only_the_flagged_parts(emu):
    emu.upload("/f.txt", b"x", biz_attr="old")

    answer = emu.update("/f.txt", flag=0x40, biz_attr="ignored", authority="eWRPrivate",
                        custom_headers={"x-cos-meta-a": "1"})

    assert answer.code == 0
    record = emu.head("f.txt")
    assert (record.meta, record.extra) == ({"a": "1"}, {"biz_attr": "old"})
    assert emu.update("/f.txt", flag=0x02).code == -179


def test_update_refuses_an_unknown_authority_or_header(emu):
    emu.put_object("f.txt")

    assert emu.update("/f.txt", authority="ePublic").code == -182
    assert emu.update("/f.txt", custom_headers={"X-Other": "1"}).code == -182
    assert emu.head("f.txt").extra == {}


def test_update_of_a_missing_file_is_197(emu):
    assert emu.update("/f.txt", biz_attr="x").code == -197


def test_update_of_a_directory_keeps_the_attributes_on_its_marker(emu):
    emu.create("/d/")
    emu.put_object("xml/f")

    marker = emu.update("/d/", custom_headers={"x-cos-meta-mode": "040755"}, biz_attr="dir attr")
    implicit = emu.update("/xml/", custom_headers={"x-cos-meta-mode": "040700"})

    assert (marker.code, implicit.code) == (0, 0)
    stat = emu.stat("/d/").data
    assert stat["biz_attr"] == "dir attr" and stat["custom_headers"] == {"x-cos-meta-mode": "040755"}
    assert emu.head("xml/").meta == {"mode": "040700"}


def test_update_needs_a_once_signature(emu):
    emu.put_object("f.txt")

    answer = emu.update("/f.txt", sign="multi", biz_attr="x")

    assert (answer.status, answer.code) == (400, -73)


def test_update_accepts_custom_headers_sent_as_a_json_string_in_a_form(emu):
    emu.put_object("f.txt")
    fields = [("op", "update"), ("custom_headers", json.dumps({"x-cos-meta-k": "v"}))]

    assert emu.post_form("/f.txt", fields, sign="once").code == 0
    assert emu.head("f.txt").meta == {"k": "v"}


# --- delete --------------------------------------------------------------------------------


def test_delete_removes_the_file(emu):
    emu.put_object("f.txt")

    answer = emu.delete("/f.txt")

    assert (answer.status, answer.code, answer.has_data) == (200, 0, False)
    assert emu.head("f.txt") is None


def test_delete_of_a_missing_file_is_197(emu):
    answer = emu.delete("/f.txt")

    assert (answer.status, answer.code) == (400, -197)


def test_delete_accepts_a_multi_use_signature(emu):
    emu.put_object("f.txt")

    assert emu.delete("/f.txt", sign="multi").code == 0


# --- move and copy -------------------------------------------------------------------------


def test_move_keeps_the_data_and_metadata(emu):
    emu.create("/d/")
    emu.create("/e/")
    emu.put_object("d/a.txt", b"body", "text/plain", {"mode": "0100644"}, {"biz_attr": "kept"})

    answer = emu.move("/d/a.txt", "/e/b c.txt")

    assert (answer.code, answer.has_data) == (0, False)
    moved = emu.head("e/b c.txt")
    assert emu.head("d/a.txt") is None and emu.read("e/b c.txt") == b"body"
    assert (moved.content_type, moved.meta, moved.extra) == ("text/plain", {"mode": "0100644"}, {"biz_attr": "kept"})


def test_move_to_a_bare_name_stays_in_the_sources_directory(emu):
    emu.put_object("d/a.txt")

    assert emu.move("/d/a.txt", "renamed.txt").code == 0
    assert emu.head("d/renamed.txt") is not None


def test_move_over_an_existing_file_needs_to_over_write(emu):
    emu.put_object("a.txt", b"a")
    emu.put_object("b.txt", b"b")

    refused = emu.move("/a.txt", "/b.txt")
    explicit = emu.move("/a.txt", "/b.txt", overwrite=0)
    allowed = emu.move("/a.txt", "/b.txt", overwrite=1)

    assert (refused.code, explicit.code, allowed.code) == (-177, -177, 0)
    assert emu.read("b.txt") == b"a" and emu.head("a.txt") is None


def test_move_of_a_missing_source_is_197_and_into_a_missing_directory_197(emu):
    emu.put_object("a.txt")

    assert emu.move("/none.txt", "/b.txt").code == -197
    assert emu.move("/a.txt", "/missing/b.txt").code == -197
    assert emu.head("a.txt") is not None


def test_move_onto_itself(emu):
    emu.put_object("a.txt", b"same")

    assert emu.move("/a.txt", "/a.txt").code == -177
    assert emu.move("/a.txt", "a.txt", overwrite=1).code == 0
    assert emu.read("a.txt") == b"same"


def test_move_refuses_a_directory_destination_and_a_bad_path(emu):
    emu.put_object("a.txt")

    assert emu.move("/a.txt", "/d/").code == -160
    assert emu.move("/a.txt", "/x//y").code == -180
    assert emu.move("/a.txt", "").code == -5992
    assert emu.move("/a.txt", "/b.txt", overwrite=2).code == -5992


def test_move_reads_its_fields_from_a_form_or_a_json_body(emu):
    emu.put_object("a.txt")
    form = [("op", "move"), ("dest_fileid", "b.txt")]

    by_form = emu.post_form("/a.txt", form, sign="multi")
    by_json = emu.post_json("/b.txt", {"op": "move", "dest_fileid": "/c.txt", "to_over_write": 0}, sign="multi")

    assert (by_form.code, by_json.code) == (0, 0)
    assert emu.head("c.txt") is not None and emu.head("a.txt") is None and emu.head("b.txt") is None


def test_copy_keeps_the_source(emu):
    emu.put_object("a.txt", b"a", meta={"k": "v"})
    emu.put_object("b.txt", b"b")

    refused = emu.copy("/a.txt", "/b.txt")
    copied = emu.copy("/a.txt", "/c.txt")
    overwritten = emu.copy("/a.txt", "/b.txt", overwrite=1)

    assert (refused.code, copied.code, overwritten.code) == (-177, 0, 0)
    assert emu.read("a.txt") == emu.read("b.txt") == emu.read("c.txt") == b"a"
    assert emu.head("c.txt").meta == {"k": "v"}


# --- the XML API's view --------------------------------------------------------------------


def test_a_file_written_here_reads_back_through_storage_with_its_metadata(emu):
    emu.create("/d/")
    emu.upload("/d/中文 +.bin", bytes(range(256)), biz_attr="a")
    emu.update("/d/中文 +.bin", custom_headers={"x-cos-meta-mode": "0100600", "Content-Type": "image/png"})

    record = emu.head("d/中文 +.bin")

    assert emu.read("d/中文 +.bin") == bytes(range(256))
    assert (record.meta, record.content_type, record.size) == ({"mode": "0100600"}, "image/png", 256)
    assert record.etag == hashlib.md5(bytes(range(256))).hexdigest()


def test_objects_put_through_storage_are_visible_to_stat_and_list(emu):
    emu.put_object("xml/a.txt", b"from xml", meta={"mode": "0100644"})
    emu.put_object("xml/sub/", b"")

    stat = emu.stat("/xml/a.txt")
    listed = emu.list("/xml/")

    assert stat.data["filesize"] == 8 and stat.data["custom_headers"] == {"x-cos-meta-mode": "0100644"}
    assert [i["name"] for i in listed.data["infos"]] == ["a.txt", "sub/"]


def test_a_key_too_long_for_the_store_is_180(emu):
    answer = emu.upload("/" + "k" * (MAX_KEY_BYTES + 1), b"x")

    assert (answer.status, answer.code) == (400, -180)
    assert emu.storage.list(BUCKET).objects == []
