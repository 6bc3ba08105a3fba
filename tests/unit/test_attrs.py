"""Object metadata <-> POSIX attributes, compatible with what Tencent's COSFS writes and reads."""

from __future__ import annotations

import stat

import pytest

from cosfs.metadata.attrs import (
    BLOCK_SIZE,
    Attr,
    AttrDefaults,
    attr_from_info,
    implicit_dir_attr,
    meta_for,
    meta_of,
    root_attr,
    with_changes,
)
from cosfs.store.interface import ObjectInfo

DEFAULTS = AttrDefaults(uid=1000, gid=100, umask=0o022)
LAST_MODIFIED = 1_690_000_000 * 10**9
NS = 10**9


def info(key="a/file", meta=None, size=10, content_type=None, is_dir=False):
    return ObjectInfo(
        key=key, size=size, mtime_ns=LAST_MODIFIED, etag="e1", is_dir=is_dir,
        meta=meta, content_type=content_type,
    )


# --- round trip ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, mode, kind",
    [("f", stat.S_IFREG | 0o640, "file"), ("d/", stat.S_IFDIR | 0o750, "dir"),
     ("l", stat.S_IFLNK | 0o777, "symlink"), ("x", stat.S_IFREG | 0o4755, "file")],
)
@pytest.mark.parametrize("mtime_ns", [1_700_000_000 * NS, 1_700_000_000 * NS + 123_456_789, 1])
def test_round_trip(key, mode, kind, mtime_ns):
    meta = meta_for(mode, 501, 20, mtime_ns)
    attr = attr_from_info(info(key=key, meta=meta), DEFAULTS)
    assert (attr.kind, attr.mode, attr.uid, attr.gid, attr.mtime_ns) == (
        kind, mode, 501, 20, mtime_ns,
    )


def test_round_trip_of_a_time_before_the_epoch():
    meta = meta_for(stat.S_IFREG | 0o644, 0, 0, -1_500_000_000)
    assert meta["mtime"] == "-2" and meta["mtime-nsec"] == "500000000"
    assert attr_from_info(info(meta=meta), DEFAULTS).mtime_ns == -1_500_000_000


def test_meta_for_writes_cosfs_decimal_fields():
    meta = meta_for(stat.S_IFREG | 0o644, 0, 0, 1_700_000_000 * NS + 5)
    assert meta == {
        "mode": "33188", "uid": "0", "gid": "0", "mtime": "1700000000", "mtime-nsec": "5",
    }


def test_meta_for_omits_zero_nanoseconds():
    meta = meta_for(stat.S_IFDIR | 0o755, 1, 2, 7 * NS)
    assert meta["mode"] == "16877" and meta["mtime"] == "7"
    assert "mtime-nsec" not in meta


def test_meta_for_overwrites_a_stale_value_with_zero_instead_of_dropping_it():
    """The JSON API's update merges metadata: a dropped key would keep its old value there."""
    meta = meta_for(stat.S_IFDIR | 0o755, 1, 2, 7 * NS, base={"mtime-nsec": "9"})
    assert meta["mtime-nsec"] == "0"


def test_meta_for_keeps_other_keys_and_does_not_touch_base():
    base = {"mode": "1", "color": "blue"}
    meta = meta_for(stat.S_IFREG | 0o600, 1, 1, 0, base=base)
    assert meta["color"] == "blue" and meta["mode"] == str(stat.S_IFREG | 0o600)
    assert base == {"mode": "1", "color": "blue"}


def test_meta_of_an_attr_keeps_its_unknown_keys():
    meta = dict(meta_for(stat.S_IFREG | 0o644, 1, 1, NS), sha="abc")
    attr = attr_from_info(info(meta=meta), DEFAULTS)
    chmodded = with_changes(attr, mode=0o600)
    stored = meta_of(chmodded)
    assert stored["sha"] == "abc" and stored["mode"] == str(stat.S_IFREG | 0o600)


# --- metadata written by COSFS / s3sync --------------------------------------------------


def test_cosfs_integer_mtime():
    meta = {"mode": "33188", "uid": "0", "gid": "0", "mtime": "1700000000"}
    attr = attr_from_info(info(meta=meta), DEFAULTS)
    assert attr.mtime_ns == 1_700_000_000 * NS and attr.mode == stat.S_IFREG | 0o644


def test_s3fs_fractional_mtime_is_read():
    attr = attr_from_info(info(meta={"mtime": "1700000000.5"}), DEFAULTS)
    assert attr.mtime_ns == 1_700_000_000 * NS + 500_000_000


def test_fraction_wins_over_mtime_nsec():
    attr = attr_from_info(info(meta={"mtime": "10.25", "mtime-nsec": "7"}), DEFAULTS)
    assert attr.mtime_ns == 10 * NS + 250_000_000


@pytest.mark.parametrize("nsec", ["1000000000", "-1", "x", "1.5"])
def test_bad_mtime_nsec_is_ignored(nsec):
    attr = attr_from_info(info(meta={"mtime": "10", "mtime-nsec": nsec}), DEFAULTS)
    assert attr.mtime_ns == 10 * NS


def test_mode_without_type_bits_is_a_file():
    attr = attr_from_info(info(key="a/f", meta={"mode": "420"}), DEFAULTS)
    assert attr.kind == "file" and attr.mode == stat.S_IFREG | 0o644


def test_mode_without_type_bits_on_a_slash_key_is_a_dir():
    attr = attr_from_info(info(key="a/d/", meta={"mode": "493"}, size=0), DEFAULTS)
    assert attr.kind == "dir" and attr.mode == stat.S_IFDIR | 0o755


@pytest.mark.parametrize(
    "content_type", ["application/x-directory", "Application/X-Directory; charset=UTF-8"]
)
def test_directory_content_type_is_a_dir(content_type):
    attr = attr_from_info(info(key="a/d", meta={"mode": "493"}, content_type=content_type),
                          DEFAULTS)
    assert attr.kind == "dir" and attr.mode == stat.S_IFDIR | 0o755


def test_slash_key_is_a_dir_even_if_the_mode_says_file():
    attr = attr_from_info(info(key="d/", meta={"mode": str(stat.S_IFREG | 0o700)}), DEFAULTS)
    assert attr.mode == stat.S_IFDIR | 0o700


def test_dir_type_bits_on_a_plain_key_are_a_dir():
    attr = attr_from_info(info(key="old", meta={"mode": str(stat.S_IFDIR | 0o711)}), DEFAULTS)
    assert attr.kind == "dir" and attr.mode == stat.S_IFDIR | 0o711


@pytest.mark.parametrize("type_bits", [stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK])
def test_special_type_bits_on_an_empty_object_are_a_special_file(type_bits):
    """s3fs's mknod: an empty object whose mode carries the type; a device's number in ``rdev``."""
    attr = attr_from_info(info(size=0, meta={"mode": str(type_bits | 0o640), "rdev": "2049"}), DEFAULTS)
    assert (attr.kind, attr.mode, attr.rdev) == ("special", type_bits | 0o640, 2049)
    assert attr.to_stat()["st_rdev"] == 2049
    assert attr_from_info(info(size=0, meta={"mode": str(type_bits | 0o640)}), DEFAULTS, is_dir=False).kind == "special"


def test_special_type_bits_on_an_object_with_data_show_a_regular_file():
    """Its bytes stay readable: only an empty object can be a FIFO or a device."""
    attr = attr_from_info(info(size=5, meta={"mode": str(stat.S_IFIFO | 0o600)}), DEFAULTS)
    assert (attr.kind, attr.mode, attr.rdev) == ("file", stat.S_IFREG | 0o600, 0)


@pytest.mark.parametrize("rdev", ["", "x", "-1", str(2**64)])
def test_an_unparsable_rdev_is_zero(rdev):
    attr = attr_from_info(info(size=0, meta={"mode": str(stat.S_IFCHR | 0o600), "rdev": rdev}), DEFAULTS)
    assert attr.rdev == 0


def test_octal_looking_mode_is_decimal_like_cosfs():
    attr = attr_from_info(info(meta={"mode": "0644"}), DEFAULTS)
    assert attr.mode == stat.S_IFREG | 644  # 0o1204, as COSFS shows it


def test_mode_beyond_sixteen_bits_falls_back_to_the_umask():
    attr = attr_from_info(info(meta={"mode": "0100644"}), DEFAULTS)  # decimal 100644
    assert attr.mode == stat.S_IFREG | 0o644


def test_s3sync_owner_group_permissions():
    meta = {"owner": "33", "group": "44", "permissions": str(stat.S_IFREG | 0o664)}
    attr = attr_from_info(info(meta=meta), DEFAULTS)
    assert (attr.uid, attr.gid, attr.mode) == (33, 44, stat.S_IFREG | 0o664)


def test_cosfs_names_win_over_s3sync_names():
    meta = {"uid": "1", "owner": "33", "gid": "2", "group": "44", "mode": "384",
            "permissions": "511"}
    attr = attr_from_info(info(meta=meta), DEFAULTS)
    assert (attr.uid, attr.gid, attr.mode) == (1, 2, stat.S_IFREG | 0o600)


@pytest.mark.parametrize(
    "value", ["", "abc", "-1", "0644x", "1.5", "4294967296", " ", "+5", "9" * 5000]
)
def test_unparsable_ids_fall_back_to_defaults(value):
    attr = attr_from_info(info(meta={"uid": value, "gid": value}), DEFAULTS)
    assert (attr.uid, attr.gid) == (1000, 100)


@pytest.mark.parametrize("value", ["", "rw-r--r--", "0644x", "-420", "65536"])
def test_unparsable_mode_falls_back_to_the_umask(value):
    attr = attr_from_info(info(meta={"mode": value}), DEFAULTS)
    assert attr.mode == stat.S_IFREG | 0o644


@pytest.mark.parametrize("value", ["", "soon", "1e9", "1.", ".5", "1.1234567890", "9" * 5000,
                                   "9" * 20])
def test_unparsable_mtime_falls_back_to_last_modified(value):
    assert attr_from_info(info(meta={"mtime": value}), DEFAULTS).mtime_ns == LAST_MODIFIED


def test_surrounding_whitespace_is_tolerated():
    attr = attr_from_info(info(meta={"uid": " 7 ", "mtime": "9 "}), DEFAULTS)
    assert attr.uid == 7 and attr.mtime_ns == 9 * NS


# --- objects without metadata --------------------------------------------------------------


def test_list_page_object_gets_defaults_and_last_modified():
    attr = attr_from_info(info(meta=None), DEFAULTS)
    assert (attr.kind, attr.mode, attr.uid, attr.gid, attr.mtime_ns, attr.size) == (
        "file", stat.S_IFREG | 0o644, 1000, 100, LAST_MODIFIED, 10,
    )
    assert dict(attr.meta) == {} and attr.etag == "e1"


def test_dir_marker_without_metadata_gets_the_dir_mode():
    attr = attr_from_info(info(key="a/d/", meta={}, size=0), AttrDefaults(0, 0, umask=0o027))
    assert attr.kind == "dir" and attr.mode == stat.S_IFDIR | 0o750


def test_native_dir_of_the_json_api():
    attr = attr_from_info(info(key="a/d", is_dir=True, size=0), DEFAULTS)
    assert attr.kind == "dir"


def test_caller_can_say_it_is_a_dir():
    attr = attr_from_info(info(key="a/d", meta={"mode": "448"}), DEFAULTS, is_dir=True)
    assert attr.mode == stat.S_IFDIR | 0o700


def test_caller_can_say_it_is_not_a_dir():
    attr = attr_from_info(info(key="a/d", content_type="application/x-directory"), DEFAULTS,
                          is_dir=False)
    assert attr.kind == "file"


def test_implicit_dir_and_root():
    implicit = implicit_dir_attr(DEFAULTS, 1_700_000_000 * 10**9)
    assert (implicit.kind, implicit.mode, implicit.uid, implicit.mtime_ns) == (
        "dir", stat.S_IFDIR | 0o755, 1000, 1_700_000_000 * 10**9,
    )
    assert root_attr(DEFAULTS, 42).mtime_ns == 42


def test_an_implicit_dir_has_no_default_time():
    """Its time is always chosen by the caller: a default of 0 showed 1 January 1970."""
    with pytest.raises(TypeError):
        implicit_dir_attr(DEFAULTS)  # type: ignore[call-arg]


def test_defaults_follow_the_umask():
    defaults = AttrDefaults(uid=0, gid=0, umask=0o077)
    assert (defaults.file_mode, defaults.dir_mode) == (0o600, 0o700)
    assert AttrDefaults(0, 0).file_mode == 0o644


def test_umask_out_of_range():
    with pytest.raises(ValueError):
        AttrDefaults(0, 0, umask=0o1000)


# --- Attr ----------------------------------------------------------------------------------


def test_to_stat_of_a_file():
    attr = Attr("file", stat.S_IFREG | 0o644, 1, 2, 1025, 1_700_000_000 * NS + 3)
    st = attr.to_stat()
    assert st == {
        "st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_uid": 1, "st_gid": 2,
        "st_size": 1025, "st_blocks": 3, "st_blksize": BLOCK_SIZE, "st_rdev": 0,
        "st_atime": 1_700_000_000 * NS + 3, "st_mtime": 1_700_000_000 * NS + 3,
        "st_ctime": 1_700_000_000 * NS + 3,
    }


@pytest.mark.parametrize("size, blocks", [(0, 0), (1, 1), (512, 1), (513, 2)])
def test_to_stat_blocks(size, blocks):
    assert Attr("file", stat.S_IFREG, 0, 0, size, 0).to_stat()["st_blocks"] == blocks


def test_to_stat_of_a_dir_and_values_are_ints():
    st = implicit_dir_attr(DEFAULTS, 5).to_stat()
    assert st["st_nlink"] == 2
    assert all(type(value) is int for value in st.values())


def test_to_stat_of_an_object_without_anything_has_no_none():
    st = attr_from_info(ObjectInfo(key="k", size=0, mtime_ns=0), DEFAULTS).to_stat()
    assert None not in st.values()


def test_attr_refuses_a_mode_of_another_kind():
    with pytest.raises(ValueError):
        Attr("dir", stat.S_IFREG | 0o644, 0, 0, 0, 0)


def test_attr_meta_cannot_be_changed_through_it_or_its_source():
    source = {"mode": "33188"}
    attr = Attr("file", stat.S_IFREG, 0, 0, 0, 0, meta=source)
    source["mode"] = "0"
    with pytest.raises(TypeError):
        attr.meta["mode"] = "1"
    assert attr.meta["mode"] == "33188"


def test_attr_is_hashable_and_compares_by_value():
    one = Attr("file", stat.S_IFREG, 0, 0, 0, 0, meta={"a": "1"})
    two = Attr("file", stat.S_IFREG, 0, 0, 0, 0, meta={"a": "1"})
    assert one == two and hash(one) == hash(two)


def test_with_changes_adds_type_bits_and_keeps_the_rest():
    attr = implicit_dir_attr(DEFAULTS, 5)
    changed = with_changes(attr, mode=0o700, uid=7)
    assert (changed.mode, changed.uid, changed.mtime_ns) == (stat.S_IFDIR | 0o700, 7, 5)


def test_with_changes_of_kind_keeps_the_permissions():
    attr = Attr("file", stat.S_IFREG | 0o640, 0, 0, 4, 0)
    link = with_changes(attr, kind="symlink", link_target="/etc")
    assert link.mode == stat.S_IFLNK | 0o640 and link.link_target == "/etc"


# --- ctime, atime, nlink ----------------------------------------------------------------


def test_ctime_and_atime_round_trip_under_s3fs_names():
    meta = meta_for(stat.S_IFREG | 0o644, 0, 0, 5 * NS, ctime_ns=7 * NS + 1, atime_ns=3 * NS)
    assert (meta["ctime"], meta["ctime-nsec"], meta["atime"]) == ("7", "1", "3")
    attr = attr_from_info(info(meta=meta), DEFAULTS)
    assert (attr.ctime_ns, attr.atime_ns) == (7 * NS + 1, 3 * NS)
    stat_dict = attr.to_stat()
    assert (stat_dict["st_atime"], stat_dict["st_mtime"], stat_dict["st_ctime"]) == (3 * NS, 5 * NS, 7 * NS + 1)
    assert meta_of(attr) == meta


def test_s3fs_fractional_ctime_is_read():
    attr = attr_from_info(info(meta={"mtime": "5", "ctime": "6.250000000"}), DEFAULTS)
    assert attr.ctime_ns == 6 * NS + 250_000_000


def test_without_stored_times_atime_and_ctime_show_mtime():
    attr = attr_from_info(info(meta={"mtime": "5"}), DEFAULTS)
    assert (attr.access_ns, attr.change_ns) == (5 * NS, 5 * NS)


def test_ctime_is_never_shown_before_mtime():
    """A write moves mtime alone: the ctime shown follows it."""
    attr = attr_from_info(info(meta={"mtime": "9", "ctime": "6"}), DEFAULTS)
    assert attr.to_stat()["st_ctime"] == 9 * NS


def test_nlink_shown_is_the_given_count_or_the_kinds_usual():
    directory = implicit_dir_attr(DEFAULTS, NS)
    assert directory.to_stat()["st_nlink"] == 2
    assert with_changes(directory, nlink=5).to_stat()["st_nlink"] == 5
