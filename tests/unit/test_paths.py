"""Mount paths <-> COS keys, name validation, and POSIX path helpers."""

from __future__ import annotations

import errno

import pytest

from cosfs.metadata.paths import (
    MAX_KEY_BYTES,
    MAX_NAME_BYTES,
    PathMapper,
    basename,
    join,
    parent,
    visible_name,
)
from cosfs.wire.errors import ConfigError, CosfsError


@pytest.mark.parametrize(
    "given, expected",
    [("", ""), ("/", ""), ("//", ""), ("/sub/dir", "sub/dir/"), ("sub/dir/", "sub/dir/"),
     ("/sub/dir/", "sub/dir/"), ("sub", "sub/"), ("数据/日志", "数据/日志/")],
)
def test_prefix_is_normalised(given, expected):
    assert PathMapper(given).prefix == expected


@pytest.mark.parametrize("bad", ["a//b", "/a/../b", "./a", "a/\0b", "a/\udcff"])
def test_bad_prefix_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        PathMapper(bad)


@pytest.mark.parametrize(
    "path, key",
    [("/a", "a"), ("/a/b", "a/b"), ("/with space", "with space"), ("/a+b", "a+b"),
     ("/100%", "100%"), ("/%2F", "%2F"), ("/中文/文件.txt", "中文/文件.txt"),
     ("/emoji 😀", "emoji 😀"), ("/a/b/", "a/b")],
)
def test_file_key_without_prefix(path, key):
    assert PathMapper().file_key(path) == key


def test_file_key_with_prefix():
    assert PathMapper("/sub/dir").file_key("/a/b") == "sub/dir/a/b"


@pytest.mark.parametrize(
    "prefix, path, key",
    [("", "/", ""), ("", "/a", "a/"), ("", "/a/b", "a/b/"), ("", "/a/b/", "a/b/"),
     ("sub", "/", "sub/"), ("/sub/dir", "/x y", "sub/dir/x y/")],
)
def test_dir_key(prefix, path, key):
    assert PathMapper(prefix).dir_key(path) == key


def test_root_has_no_file_key():
    with pytest.raises(ValueError):
        PathMapper().file_key("/")


def test_relative_path_is_a_programming_error():
    with pytest.raises(ValueError):
        PathMapper().file_key("a/b")


@pytest.mark.parametrize(
    "prefix, key, path",
    [("", "", "/"), ("", "a", "/a"), ("", "a/", "/a"), ("", "a/b/", "/a/b"),
     ("sub/", "sub/", "/"), ("sub/", "sub/a+b %", "/a+b %"), ("sub/", "sub/目录/", "/目录")],
)
def test_path_of(prefix, key, path):
    assert PathMapper(prefix).path_of(key) == path


@pytest.mark.parametrize("path", ["/a", "/a/b c", "/中/文", "/a+b/100%"])
def test_path_of_inverts_both_keys(path):
    mapper = PathMapper("/p/q")
    assert mapper.path_of(mapper.file_key(path)) == path
    assert mapper.path_of(mapper.dir_key(path)) == path


def test_path_of_outside_prefix():
    with pytest.raises(ValueError, match="outside"):
        PathMapper("sub").path_of("other/a")


def test_prefix_match_is_by_component():
    with pytest.raises(ValueError):
        PathMapper("sub").path_of("subway/a")


@pytest.mark.parametrize("path", ["/bad\udcff", "/ok/\udc80name"])
def test_lone_surrogate_is_einval_naming_the_path(path):
    with pytest.raises(CosfsError) as caught:
        PathMapper().file_key(path)
    assert caught.value.errno == errno.EINVAL
    assert repr(path) in caught.value.message


@pytest.mark.parametrize("path", ["//", "/a//b", "/a/./b", "/a/../b", "/a\0b", "/a//"])
def test_malformed_path_is_einval(path):
    with pytest.raises(CosfsError) as caught:
        PathMapper().dir_key(path)
    assert caught.value.errno == errno.EINVAL


def test_key_of_exactly_the_limit_is_accepted():
    path = "/" + "/".join(["x" * 200] * 4) + "/" + "y" * (MAX_KEY_BYTES - 804)
    assert len(PathMapper().file_key(path).encode()) == MAX_KEY_BYTES


def test_key_over_the_limit_is_enametoolong():
    path = "/" + "/".join(["x" * 200] * 4) + "/" + "y" * (MAX_KEY_BYTES - 803)
    with pytest.raises(CosfsError) as caught:
        PathMapper().file_key(path)
    assert caught.value.errno == errno.ENAMETOOLONG


def test_key_limit_counts_utf8_bytes_and_the_prefix():
    name = "文" * 80  # 240 bytes
    path = "/" + "/".join([name] * 3)  # 722 bytes of key
    assert PathMapper().dir_key(path)
    with pytest.raises(CosfsError) as caught:
        PathMapper("p" * 130).dir_key(path)
    assert caught.value.errno == errno.ENAMETOOLONG


def test_dir_key_counts_its_slash():
    path = "/" + "/".join(["x" * 200] * 4) + "/" + "y" * (MAX_KEY_BYTES - 804)
    with pytest.raises(CosfsError):
        PathMapper().dir_key(path)


def test_component_over_255_bytes_is_enametoolong():
    with pytest.raises(CosfsError) as caught:
        PathMapper().file_key("/a/" + "文" * 86)  # 258 bytes
    assert caught.value.errno == errno.ENAMETOOLONG


def test_component_of_255_bytes_is_accepted():
    assert PathMapper().file_key("/" + "x" * MAX_NAME_BYTES)


@pytest.mark.parametrize(
    "path, expected",
    [("/", "/"), ("/a", "/"), ("/a/b", "/a"), ("/a/b/", "/a"), ("/中/文 件", "/中")],
)
def test_parent(path, expected):
    assert parent(path) == expected


@pytest.mark.parametrize(
    "path, expected", [("/", ""), ("/a", "a"), ("/a/b c", "b c"), ("/a/b/", "b")]
)
def test_basename(path, expected):
    assert basename(path) == expected


@pytest.mark.parametrize(
    "dir_path, name, expected",
    [("/", "a", "/a"), ("/a", "b", "/a/b"), ("/a/", "b+c", "/a/b+c"), ("/x", "文", "/x/文")],
)
def test_join(dir_path, name, expected):
    assert join(dir_path, name) == expected


def test_join_inverts_parent_and_basename():
    path = "/a/b c/d%"
    assert join(parent(path), basename(path)) == path


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_join_refuses_invisible_names(name):
    with pytest.raises(ValueError):
        join("/a", name)


@pytest.mark.parametrize("name", ["a", "...", ".hidden", "a b", "+%", "文件", "x" * 255])
def test_visible_names(name):
    assert visible_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\0b", "x" * 256, "bad\udcff", "a\tb", "a\x1f", "\x7f"])
def test_invisible_names(name):
    assert not visible_name(name)


@pytest.mark.parametrize("char", [chr(code) for code in range(0x20)] + ["\x7f"])
def test_a_control_character_is_einval_naming_its_code_point(char):
    path = f"/d/a{char}b"
    for method in (PathMapper().file_key, PathMapper().dir_key, PathMapper().check):
        with pytest.raises(CosfsError) as caught:
            method(path)
        assert caught.value.errno == errno.EINVAL
        assert f"U+{ord(char):04X}" in caught.value.message and "control character" in caught.value.message


@pytest.mark.parametrize("name", ["\x80", "\u200b", "a\u00a0b", "emoji \U0001f600"])
def test_other_characters_are_accepted(name):
    assert PathMapper().file_key("/" + name) == name and visible_name(name)


def test_a_prefix_with_a_control_character_is_refused():
    with pytest.raises(ConfigError):
        PathMapper("/sub/a\tb")
