"""Directories through ``json_api.handle``: create, stat, list, delete; markers and prefixes
written through the XML API (plain ``Storage.put``) count as directories too."""

from __future__ import annotations

from tests.emulator.json_api_support import NAME, emu  # noqa: F401


def names(answer) -> list:
    return [info["name"] for info in answer.data["infos"]]


# --- create --------------------------------------------------------------------------------


def test_create_writes_the_marker_with_its_biz_attr(emu):
    answer = emu.create("/photos/", "album")

    assert (answer.status, answer.code, answer.message) == (200, 0, "SUCCESS")
    assert answer.data == {"ctime": 1700000001, "resource_path": "/1250000000/examplebucket/photos/"}
    marker = emu.head("photos/")
    assert (marker.size, marker.extra) == (0, {"biz_attr": "album"})


def test_create_of_an_existing_directory_is_178(emu):
    emu.create("/photos/")
    emu.put_object("xml/only.txt")  # an implicit directory, written through the XML API

    assert emu.create("/photos/").code == -178
    assert emu.create("/xml/").code == -178
    assert emu.create("/").code == -178


def test_create_where_a_file_has_the_name_is_178(emu):
    emu.put_object("photos")

    answer = emu.create("/photos/")

    assert (answer.status, answer.code) == (400, -178)


def test_create_needs_the_parent_directory(emu):
    missing = emu.create("/a/b/")
    emu.create("/a/")
    present = emu.create("/a/b/")

    assert (missing.status, missing.code) == (400, -197)
    assert present.code == 0


def test_create_under_an_implicit_parent_succeeds(emu):
    emu.put_object("xml/only.txt")

    assert emu.create("/xml/sub/").code == 0


def test_create_without_the_trailing_slash_is_161(emu):
    answer = emu.create("/photos")

    assert (answer.status, answer.code) == (400, -161)


# --- stat ----------------------------------------------------------------------------------


def test_stat_of_a_directory_answers_biz_attr_and_times(emu):
    emu.create("/photos/", "album")
    emu.clock.now += 100

    answer = emu.stat("/photos/")

    assert answer.data == {"biz_attr": "album", "ctime": 1700000001, "mtime": 1700000001}


def test_stat_of_an_implicit_directory_and_of_the_root(emu):
    emu.put_object("xml/deep/file.txt")

    implicit = emu.stat("/xml/")
    deeper = emu.stat("/xml/deep/")
    root = emu.stat("/")

    assert implicit.data == deeper.data == root.data == {"biz_attr": "", "ctime": 0, "mtime": 0}


def test_stat_of_a_missing_directory_is_197(emu):
    emu.put_object("photos")  # a file is not the directory photos/

    answer = emu.stat("/photos/")

    assert (answer.status, answer.code) == (400, -197)


# --- list ----------------------------------------------------------------------------------


def test_list_answers_files_and_directories_directly_under_the_directory(emu):
    emu.create("/d/")
    emu.create("/d/sub/")
    emu.put_object("d/a.txt", b"aaa")
    emu.put_object("d/xml/deep/x.txt")  # an implicit subdirectory
    emu.put_object("d/sub/inner.txt")

    answer = emu.list("/d/")

    assert (answer.data["listover"], answer.data["context"]) == (True, "")
    assert names(answer) == ["a.txt", "sub/", "xml/"]
    file_info, sub, implicit = answer.data["infos"]
    assert (file_info["filesize"], file_info["filelen"]) == (3, 3)
    assert file_info["access_url"] == f"http://{NAME}-1250000000.file.myqcloud.com/d/a.txt"
    assert set(sub) == {"name", "ctime", "mtime"} and sub["ctime"] == 1700000001
    assert (implicit["ctime"], implicit["mtime"]) == (0, 0)


def test_list_of_the_root(emu):
    emu.create("/d/")
    emu.put_object("top.txt")

    assert names(emu.list("/")) == ["d/", "top.txt"]


def test_list_with_a_prefix_keeps_the_entries_starting_with_it(emu):
    emu.create("/d/")
    for key in ("d/pre1.txt", "d/pre2.txt", "d/other.txt", "d/prefix/x"):
        emu.put_object(key)

    answer = emu.list("/d/pre")

    assert names(answer) == ["pre1.txt", "pre2.txt", "prefix/"]


def test_list_pages_with_context_until_listover(emu):
    emu.create("/d/")
    for index in range(5):
        emu.put_object(f"d/f{index}.txt")
    emu.put_object("d/g/x")

    first = emu.list("/d/", num=4)
    second = emu.list("/d/", num=4, context=first.data["context"])

    assert names(first) == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
    assert (first.data["listover"], first.data["context"]) == (False, f"/{NAME}/d/f3.txt")
    assert names(second) == ["f4.txt", "g/"]
    assert second.data["listover"] is True


def test_list_continues_after_a_directory_entry_without_its_contents(emu):
    for key in ("d/a/1", "d/a/2", "d/b.txt"):
        emu.put_object(key)

    first = emu.list("/d/", num=1)
    second = emu.list("/d/", num=1, context=first.data["context"])

    assert (names(first), names(second)) == (["a/"], ["b.txt"])


def test_list_with_exactly_num_entries_is_over(emu):
    emu.put_object("d/a")
    emu.put_object("d/b")

    answer = emu.list("/d/", num=2)

    assert answer.data["listover"] is True and names(answer) == ["a", "b"]


def test_list_num_outside_1_to_199_is_165_or_157(emu):
    emu.create("/d/")

    assert emu.list("/d/", num=200).code == -165
    assert emu.list("/d/", num=0).code == -157
    assert emu.list("/d/", num=199).code == 0


def test_list_without_num_lists_up_to_199(emu):
    emu.put_object("d/a")

    answer = emu.get("/d/", "list")

    assert names(answer) == ["a"]


def test_list_patterns_keep_only_directories_or_only_files(emu):
    for key in ("d/a.txt", "d/b/x", "d/c.txt", "d/e/x"):
        emu.put_object(key)

    dirs = emu.list("/d/", pattern="eListDirOnly")
    files = emu.list("/d/", pattern="eListFileOnly", num=1)
    both = emu.list("/d/", pattern="eListBoth")

    assert names(dirs) == ["b/", "e/"]
    assert names(files) == ["a.txt"] and files.data["listover"] is False
    assert names(both) == ["a.txt", "b/", "c.txt", "e/"]
    assert emu.list("/d/", pattern="eListAll").code == -5992


def test_list_order_1_goes_backwards_and_pages(emu):
    for key in ("d/a", "d/b", "d/c"):
        emu.put_object(key)

    first = emu.list("/d/", num=2, order=1)
    second = emu.list("/d/", num=2, order=1, context=first.data["context"])

    assert (names(first), names(second)) == (["c", "b"], ["a"])


def test_list_of_a_missing_directory_is_197(emu):
    answer = emu.list("/nothing/")

    assert (answer.status, answer.code) == (400, -197)


def test_list_refuses_a_context_of_another_directory(emu):
    emu.put_object("d/a")

    answer = emu.list("/d/", context=f"/{NAME}/elsewhere/a")

    assert answer.code == -5992


def test_list_orders_names_bytewise_as_cos_does(emu):
    for key in ("d/Z", "d/a", "d/é", "d/~"):
        emu.put_object(key)

    assert names(emu.list("/d/")) == ["Z", "a", "~", "é"]


# --- delete --------------------------------------------------------------------------------


def test_delete_of_an_empty_directory_removes_its_marker(emu):
    emu.create("/d/")

    answer = emu.delete("/d/")

    assert answer.code == 0 and not answer.has_data
    assert emu.head("d/") is None and emu.stat("/d/").code == -197


def test_delete_of_a_directory_with_anything_under_it_is_173(emu):
    emu.create("/d/")
    emu.put_object("d/f")
    emu.put_object("xml/f")  # implicit: never empty

    assert emu.delete("/d/").code == -173
    assert emu.delete("/xml/").code == -173
    assert emu.head("d/") is not None


def test_delete_of_a_directory_with_an_unfinished_upload_is_173(emu):
    emu.create("/d/")
    emu.post_form("/d/big.bin", [("op", "upload_slice_init"), ("filesize", "10"), ("slice_size", "524288")])

    assert emu.delete("/d/").code == -173


def test_delete_of_a_missing_directory_is_197_and_of_the_root_180(emu):
    assert emu.delete("/d/").code == -197
    assert emu.delete("/").code == -180


def test_delete_of_a_directory_accepts_a_multi_use_signature_too(emu):
    emu.create("/d/")

    assert emu.delete("/d/", sign="multi").code == 0
