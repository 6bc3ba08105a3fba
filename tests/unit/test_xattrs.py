"""The ``x-cos-meta-xattr`` encoding, checked against what s3fs writes and reads."""

from __future__ import annotations

import errno

import pytest

from cosfs.metadata import xattrs
from cosfs.wire.errors import CosfsError


def test_encoding_is_s3fs_build_xattrs():
    """s3fs's test_string_util.cpp: ``{"foo":"YmFy"}`` and ``{"1234":"NTY3OA==","foo":"YmFy"}``
    (names in byte order), URL-encoded by ``urlEncodePath``."""
    assert xattrs.encode({"foo": b"bar"}) == "%7B%22foo%22%3A%22YmFy%22%7D"
    assert xattrs.encode({"foo": b"bar", "1234": b"5678"}) == (
        "%7B%221234%22%3A%22NTY3OA%3D%3D%22%2C%22foo%22%3A%22YmFy%22%7D")
    assert xattrs.encode({}) == "%7B%7D"


@pytest.mark.parametrize("attributes", [
    {"user.a": b"", "user.b": b"\x00\xff" * 10},
    {"foo:bar": b"baz"},
    {"user.caf\u00e9": b"v", "user.comma,quote\"": b"w"},
    {"user.raw\udce9": b"non-UTF-8 name"},
])
def test_round_trip(attributes):
    assert xattrs.decode({"xattr": xattrs.encode(attributes)}) == attributes


def test_a_non_ascii_name_is_written_as_s3fs_writes_its_bytes():
    assert xattrs.encode({"user.\u00e9": b"v"}) == "%7B%22user.%C3%A9%22%3A%22dg%3D%3D%22%7D"


def test_s3fs_leniency_a_value_that_is_not_json_is_read_pair_by_pair():
    """s3fs's parse_xattrs skips a pair it cannot read and keeps the others."""
    text = '{"good":"YmFy","bad":"x\',"alsogood":"YmF6"'  # no closing brace: not JSON
    assert xattrs.decode({"xattr": text + "}"}) == {"good": b"bar", "alsogood": b"baz"}
    assert xattrs.decode({"xattr": "garbage"}) == {}
    assert xattrs.decode({"xattr": ""}) == {}
    assert xattrs.decode({}) == {}


def test_flags():
    meta = xattrs.with_attribute({"mode": "33188"}, "user.a", b"1", 0, "/f")
    assert meta["mode"] == "33188"
    with pytest.raises(CosfsError) as exists:
        xattrs.with_attribute(meta, "user.a", b"2", xattrs.XATTR_CREATE, "/f")
    assert exists.value.errno == errno.EEXIST
    with pytest.raises(CosfsError) as missing:
        xattrs.with_attribute(meta, "user.b", b"2", xattrs.XATTR_REPLACE, "/f")
    assert missing.value.errno == errno.ENODATA
    replaced = xattrs.with_attribute(meta, "user.a", b"2", xattrs.XATTR_REPLACE, "/f")
    assert xattrs.value_of(replaced, "user.a", "/f") == b"2"


def test_removing_the_last_attribute_leaves_an_empty_object_for_the_json_api_merge():
    meta = xattrs.with_attribute({}, "user.a", b"1", 0, "/f")
    emptied = xattrs.without_attribute(meta, "user.a", "/f")
    assert emptied == {"xattr": "%7B%7D"} and xattrs.decode(emptied) == {}
    with pytest.raises(CosfsError) as missing:
        xattrs.without_attribute(emptied, "user.a", "/f")
    assert missing.value.errno == errno.ENODATA


def test_acl_sets_the_mode_and_follows_a_chmod():
    """setfacl -m u:1234:rw,g:99:r on a 0644 file: the mask (rw) becomes the group bits;
    a chmod to 0640 makes the mask r."""
    import struct

    from cosfs.metadata import acl

    entries = [(acl.USER_OBJ, 6, 0xFFFFFFFF), (acl.USER, 6, 1234), (acl.GROUP_OBJ, 4, 0xFFFFFFFF),
               (acl.GROUP, 4, 99), (acl.MASK, 6, 0xFFFFFFFF), (acl.OTHER, 4, 0xFFFFFFFF)]
    value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    assert acl.mode_of(acl.parse(value, "/f"), 0o100644) == (0o100664, False)
    assert acl.mode_of([entries[0], entries[2], entries[5]], 0o100600) == (0o100644, True)
    chmodded = acl.parse(acl.with_mode(value, 0o640), "/f")
    assert [permissions for tag, permissions, _ in chmodded if tag == acl.MASK] == [4]
    for broken in (b"", struct.pack("<I", 1), value[:-1], struct.pack("<I", 2) + struct.pack("<HHI", *entries[0])):
        with pytest.raises(CosfsError) as refused:
            acl.parse(broken, "/f")
        assert refused.value.errno == errno.EINVAL


def test_meta_bytes_counts_names_and_values_in_utf8():
    assert xattrs.meta_bytes({"mode": "33188", "x": "\u00e9"}) == 4 + 5 + 1 + 2
