"""Slice uploads through ``json_api.handle``: init, data, finish, list (resume), and their
documented errors; the sessions are storage multipart uploads."""

from __future__ import annotations

import hashlib
import json

from tests.emulator.json_api_support import BUCKET, Answer, JsonHarness, emu  # noqa: F401

SLICE = 524288
DATA = bytes((i * 7 + i // 1000) % 256 for i in range(3 * SLICE + 1000))  # four slices, the last 1000 bytes
SHA = hashlib.sha1(DATA).hexdigest()
PATH = "/dir/big.bin"


def init(emu: JsonHarness, filesize: int = len(DATA), slice_size: int = SLICE, path: str = PATH,
         **fields: str) -> Answer:
    form = [("op", "upload_slice_init"), ("filesize", str(filesize)), ("slice_size", str(slice_size))]
    return emu.post_form(path, form + list(fields.items()))


def send_slice(emu: JsonHarness, session: str, offset: int, data: bytes = b"", path: str = PATH,
               **fields: str) -> Answer:
    data = data or DATA[offset:offset + SLICE]
    form = [("op", "upload_slice_data"), ("session", session), ("offset", str(offset))]
    return emu.post_form(path, form + list(fields.items()) + [("filecontent", data)])


def finish(emu: JsonHarness, session: str, filesize: int = len(DATA), path: str = PATH, **fields: str) -> Answer:
    form = [("op", "upload_slice_finish"), ("session", session), ("filesize", str(filesize))]
    return emu.post_form(path, form + list(fields.items()))


def slice_list(emu: JsonHarness, path: str = PATH) -> Answer:
    return emu.post_form(path, [("op", "upload_slice_list")])


def started(emu: JsonHarness, *offsets: int, **fields: str) -> str:
    """A session of PATH (in an existing /dir/) with the slices at ``offsets`` stored."""
    emu.create("/dir/")
    session = init(emu, **fields).data["session"]
    for offset in offsets:
        assert send_slice(emu, session, offset).code == 0
    return session


# --- the flow ------------------------------------------------------------------------------


def test_an_interrupted_upload_resumes_from_the_slices_the_server_lists(emu):
    session = started(emu, 0, SLICE)

    again = init(emu)
    listed = slice_list(emu)
    for offset in (2 * SLICE, 3 * SLICE):
        assert send_slice(emu, listed.data["session"], offset).code == 0
    done = finish(emu, session)

    assert (again.status, again.code) == (400, -4019)
    assert listed.data == {"session": session, "slice_size": SLICE, "filesize": len(DATA),
                           "listparts": [{"offset": 0, "datalen": SLICE}, {"offset": SLICE, "datalen": SLICE}]}
    assert (done.status, done.code) == (200, 0)
    assert done.data["resource_path"] == "/1250000000/examplebucket/dir/big.bin"
    assert emu.read("dir/big.bin") == DATA
    assert emu.storage.content_sha1(emu.head("dir/big.bin")) == SHA
    assert emu.storage.uploads(BUCKET) == []


def test_init_answers_a_session_and_the_slice_size(emu):
    emu.create("/dir/")

    answer = init(emu)

    assert answer.code == 0
    assert {k: answer.data[k] for k in ("slice_size", "serial_upload", "offset")} == \
        {"slice_size": SLICE, "serial_upload": 0, "offset": 0}
    upload = emu.storage.get_upload(BUCKET, answer.data["session"])
    assert (upload.key, upload.extra["api"], upload.extra["filesize"]) == ("dir/big.bin", "json", str(len(DATA)))


def test_a_slice_answers_its_offset_and_length_and_lands_as_its_part(emu):
    session = started(emu)

    answer = send_slice(emu, session, 3 * SLICE)

    assert answer.data == {"session": session, "offset": 3 * SLICE, "datalen": 1000}
    assert [(p.number, p.size) for p in emu.storage.parts(session)] == [(4, 1000)]


def test_a_slice_sent_again_replaces_the_first_copy(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE)
    assert send_slice(emu, session, 0, b"\0" * SLICE).code == 0
    assert send_slice(emu, session, 0).code == 0

    assert finish(emu, session).code == 0
    assert emu.read("dir/big.bin") == DATA


def test_an_unfinished_upload_stats_and_lists_as_a_file_still_short_of_its_size(emu):
    session = started(emu, 0)

    stat = emu.stat(PATH)
    listed = emu.list("/dir/")
    for offset in (SLICE, 2 * SLICE, 3 * SLICE):
        send_slice(emu, session, offset)
    complete_but_unfinished = emu.stat(PATH)

    assert (stat.data["filesize"], stat.data["filelen"]) == (len(DATA), SLICE)
    assert [(i["name"], i["filelen"]) for i in listed.data["infos"]] == [("big.bin", SLICE)]
    assert complete_but_unfinished.data["filelen"] < complete_but_unfinished.data["filesize"]
    assert emu.head("dir/big.bin") is None


def test_the_finished_file_keeps_the_biz_attr_given_at_init(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE, biz_attr="from init")

    finish(emu, session)

    assert emu.stat(PATH).data["biz_attr"] == "from init"


def test_slice_list_of_a_finished_file_answers_its_urls_and_of_nothing_197(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE)
    finish(emu, session)

    complete = slice_list(emu)
    missing = slice_list(emu, "/dir/other.bin")

    assert complete.code == 0 and "session" not in complete.data
    assert complete.data["access_url"] == "http://examplebucket-1250000000.file.myqcloud.com/dir/big.bin"
    assert (missing.status, missing.code) == (400, -197)


def test_slice_list_also_answers_a_get(emu):
    session = started(emu, 0)

    answer = emu.get(PATH, "upload_slice_list")

    assert answer.data["session"] == session


# --- init ----------------------------------------------------------------------------------


def test_init_with_other_sizes_replaces_the_stale_session(emu):
    stale = started(emu, 0)

    fresh = init(emu, filesize=len(DATA) - 1)

    assert fresh.code == 0 and fresh.data["session"] != stale
    assert [u.upload_id for u in emu.storage.uploads(BUCKET)] == [fresh.data["session"]]


def test_init_with_another_sha_replaces_the_stale_session(emu):
    stale = started(emu, 0, sha=SHA)

    fresh = init(emu, sha="0" * 40)

    assert fresh.code == 0 and fresh.data["session"] != stale


def test_init_of_an_identical_existing_file_is_an_instant_upload(emu):
    emu.create("/dir/")
    emu.put_object("dir/big.bin", DATA)

    answer = init(emu, sha=SHA)

    assert answer.code == 0 and "session" not in answer.data
    assert answer.data["access_url"].endswith("/dir/big.bin")
    assert emu.storage.uploads(BUCKET) == []


def test_init_over_an_existing_file_is_177_unless_insert_only_is_0(emu):
    emu.create("/dir/")
    emu.put_object("dir/big.bin", b"old")

    refused = init(emu)
    allowed = init(emu, insertOnly="0")

    assert (refused.status, refused.code) == (400, -177)
    assert allowed.code == 0 and allowed.data["session"]


def test_init_refuses_an_illegal_slice_size_with_minus_4(emu):
    emu.create("/dir/")

    answer = init(emu, slice_size=65536)

    assert (answer.status, answer.code) == (400, -4)


def test_init_without_filesize_is_5971_and_with_zero_5995(emu):
    emu.create("/dir/")

    missing = emu.post_form(PATH, [("op", "upload_slice_init"), ("slice_size", str(SLICE))])
    empty = init(emu, filesize=0)

    assert missing.code == -5971 and empty.code == -5995


def test_init_without_slice_size_means_one_mebibyte(emu):
    emu.create("/dir/")

    answer = emu.post_form(PATH, [("op", "upload_slice_init"), ("filesize", "10")])

    assert answer.data["slice_size"] == 1048576


def test_init_needs_the_parent_directory(emu):
    answer = init(emu, path="/nowhere/big.bin")

    assert (answer.status, answer.code) == (400, -197)


def test_init_on_a_directory_path_is_160(emu):
    answer = init(emu, path="/dir/")

    assert answer.code == -160


def test_init_refuses_a_malformed_sha_and_uploadparts(emu):
    emu.create("/dir/")

    bad_sha = init(emu, sha="xyz")
    bad_parts = init(emu, uploadparts='[{"offset": 0, "datalen": 5, "datasha": "00"}]')

    assert bad_sha.code == -168 and bad_parts.code == -5992


# --- data ----------------------------------------------------------------------------------


def test_a_slice_of_the_wrong_length_is_284(emu):
    session = started(emu)

    short = send_slice(emu, session, 0, DATA[:SLICE - 1])
    long_last = send_slice(emu, session, 3 * SLICE, DATA[3 * SLICE:] + b"x")

    assert (short.status, short.code) == (400, -284)
    assert long_last.code == -284


def test_a_slice_offset_off_the_grid_or_past_the_end_is_5992(emu):
    session = started(emu)

    assert send_slice(emu, session, 1000, DATA[:SLICE]).code == -5992
    assert send_slice(emu, session, 4 * SLICE, DATA[:1000]).code == -5992


def test_an_unknown_session_is_290_and_another_files_session_5983(emu):
    session = started(emu)
    emu.upload("/dir/x.bin", b"x")

    unknown = send_slice(emu, "1700000000deadbeef", 0)
    other = send_slice(emu, session, 0, path="/dir/x.bin")
    no_session = emu.post_form(PATH, [("op", "upload_slice_data"), ("offset", "0"), ("filecontent", b"x")])

    assert (unknown.status, unknown.code) == (400, -290)
    assert other.code == -5983
    assert no_session.code == -95


def test_a_slice_without_filecontent_is_5990(emu):
    session = started(emu)

    answer = emu.post_form(PATH, [("op", "upload_slice_data"), ("session", session), ("offset", "0")])

    assert answer.code == -5990


def test_a_slice_whose_sha_is_not_the_sessions_is_4016(emu):
    session = started(emu, sha=SHA)

    answer = send_slice(emu, session, 0, sha="1" * 40)

    assert answer.code == -4016


# --- finish --------------------------------------------------------------------------------


def test_finish_with_a_slice_missing_is_175_and_keeps_the_session(emu):
    session = started(emu, 0, 2 * SLICE, 3 * SLICE)

    answer = finish(emu, session)

    assert (answer.status, answer.code) == (400, -175)
    assert "524288" in answer.message
    assert emu.head("dir/big.bin") is None and slice_list(emu).data["session"] == session


def test_finish_with_another_filesize_is_175(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE)

    assert finish(emu, session, filesize=len(DATA) + 1).code == -175


def test_finish_checks_the_whole_file_sha_given_at_init_or_at_finish(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE, sha="2" * 40)

    wrong_at_init = finish(emu, session)

    assert (wrong_at_init.status, wrong_at_init.code) == (400, -4016)
    assert emu.head("dir/big.bin") is None


def test_finish_with_a_wrong_sha_leaves_an_existing_file_alone(emu):
    emu.create("/dir/")
    emu.put_object("dir/big.bin", b"old")
    session = init(emu, insertOnly="0").data["session"]
    for offset in range(0, len(DATA), SLICE):
        send_slice(emu, session, offset)

    answer = finish(emu, session, sha="3" * 40)

    assert answer.code == -4016 and emu.read("dir/big.bin") == b"old"
    assert finish(emu, session, sha=SHA).code == 0 and emu.read("dir/big.bin") == DATA


def test_finish_verifies_each_uploadparts_datasha(emu):
    """The accepted case is the captured SDK upload (test_json_api_wire)."""
    data = DATA[:SLICE + 100]
    claimed = [{"offset": 0, "datalen": SLICE, "datasha": "4" * 40},
               {"offset": SLICE, "datalen": 100, "datasha": hashlib.sha1(data).hexdigest()}]
    emu.create("/dir/")
    session = init(emu, filesize=len(data), uploadparts=json.dumps(claimed)).data["session"]
    send_slice(emu, session, 0, data[:SLICE])
    send_slice(emu, session, SLICE, data[SLICE:])

    answer = finish(emu, session, filesize=len(data))

    assert (answer.status, answer.code) == (400, -4016)
    assert "offset 0" in answer.message and emu.head("dir/big.bin") is None


def test_finish_checks_the_last_uploadparts_datasha_against_the_whole_file(emu):
    data = DATA[:SLICE + 100]
    claimed = [{"offset": 0, "datalen": SLICE, "datasha": "4" * 40},
               {"offset": SLICE, "datalen": 100, "datasha": "5" * 40}]
    emu.create("/dir/")
    session = init(emu, filesize=len(data), uploadparts=json.dumps(claimed)).data["session"]
    send_slice(emu, session, 0, data[:SLICE])
    send_slice(emu, session, SLICE, data[SLICE:])

    answer = finish(emu, session, filesize=len(data))

    assert answer.code == -4016 and "last uploadparts" in answer.message


def test_finish_with_insert_only_after_the_file_appeared_is_177(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE)
    emu.put_object("dir/big.bin", b"someone else")

    answer = finish(emu, session)

    assert answer.code == -177 and emu.read("dir/big.bin") == b"someone else"


def test_a_finished_session_is_gone(emu):
    session = started(emu, 0, SLICE, 2 * SLICE, 3 * SLICE)
    finish(emu, session)

    assert finish(emu, session).code == -290
    assert send_slice(emu, session, 0).code == -290


def test_deleting_the_path_discards_its_unfinished_upload(emu):
    session = started(emu, 0)

    deleted = emu.delete(PATH)

    assert deleted.code == 0
    assert emu.storage.uploads(BUCKET) == [] and emu.stat(PATH).code == -197
    assert send_slice(emu, session, SLICE).code == -290
