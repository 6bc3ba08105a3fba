"""Everyday tools on the mount: cp -r, tar, mv, rm -r, mkdir -p, and awkward names, with each API."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from tests.integration.bucket import Bucket
from tests.integration.local_tree import make_tree, run

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def tar_listing(archive: Path) -> list:
    """``tar tvf`` lines (mode, owner, size, full mtime, name), in name order."""
    lines = run("tar", "--full-time", "-tvf", archive).stdout.splitlines()
    return sorted(lines, key=lambda line: line.split()[5])


@pytest.mark.parametrize("package", ["email", "json"])
def test_cp_r_of_a_stdlib_package_diffs_clean(cos, package):
    run("cp", "-r", STDLIB / package, cos.path / package)

    assert run("diff", "-r", STDLIB / package, cos.path / package).stdout == ""


def test_tar_extract_into_the_mount_and_create_back_out_is_identical(cos, tmp_path):
    tree = make_tree(tmp_path / "src")
    run("tar", "-cf", tmp_path / "in.tar", "-C", tree.parent, "tree")

    run("tar", "-xf", tmp_path / "in.tar", "-C", cos.path)
    run("tar", "-cf", tmp_path / "out.tar", "-C", cos.path, "tree")

    assert tar_listing(tmp_path / "out.tar") == tar_listing(tmp_path / "in.tar")
    (tmp_path / "back").mkdir()
    run("tar", "-xf", tmp_path / "out.tar", "-C", tmp_path / "back")
    assert run("diff", "-r", "--no-dereference", tree, tmp_path / "back" / "tree").stdout == ""


def test_mv_of_a_directory_tree_within_the_mount(cos, emulator):
    run("cp", "-r", STDLIB / "json", cos.path / "before")
    names = run("find", ".", cwd=cos.path / "before").stdout.splitlines()

    run("mv", cos.path / "before", cos.path / "after")

    assert not (cos.path / "before").exists()
    assert sorted(run("find", ".", cwd=cos.path / "after").stdout.splitlines()) == sorted(names)
    assert run("diff", "-r", STDLIB / "json", cos.path / "after").stdout == ""
    assert not [key for key in Bucket(emulator).keys() if key.startswith("before")]


def test_mv_of_a_tree_into_the_mount_from_local_disk(cos, tmp_path):
    tree = make_tree(tmp_path / "src")

    run("mv", tree, cos.path / "moved")

    assert not tree.exists()
    assert (cos.path / "moved" / "sub" / "deeper" / "blob").stat().st_size == 300_000
    assert os.readlink(cos.path / "moved" / "sub" / "link") == "../a.txt"


def test_rm_r_removes_the_whole_tree(cos, emulator):
    run("cp", "-r", STDLIB / "json", cos.path / "doomed")
    (cos.path / "kept").write_bytes(b"stay")

    run("rm", "-r", cos.path / "doomed")

    assert os.listdir(cos.path) == ["kept"]
    assert Bucket(emulator).keys() == ["kept"]


def test_mkdir_p_creates_every_level(cos):
    run("mkdir", "-p", cos.path / "a" / "b" / "c")

    assert (cos.path / "a" / "b" / "c").is_dir()
    assert os.listdir(cos.path / "a") == ["b"] and os.listdir(cos.path / "a" / "b") == ["c"]


def test_mkdir_p_of_an_existing_path_succeeds(cos):
    (cos.path / "a" / "b").mkdir(parents=True)

    run("mkdir", "-p", cos.path / "a" / "b")

    assert (cos.path / "a" / "b").is_dir()


AWKWARD = ["中文.txt", "café é.txt", "with space.txt", "a+b.txt", "100%.txt", "%2F-not-a-slash", "mixed 中 +%é"]


def test_awkward_names_round_trip(cos, emulator):
    for number, name in enumerate(AWKWARD):
        (cos.path / name).write_bytes(f"file {number}".encode())

    listed = sorted(os.listdir(cos.path))
    contents = [(cos.path / name).read_bytes() for name in AWKWARD]

    assert listed == sorted(AWKWARD)
    assert contents == [f"file {number}".encode() for number in range(len(AWKWARD))]
    assert sorted(Bucket(emulator).keys()) == sorted(AWKWARD)


def test_awkward_directory_names_hold_files(cos):
    directory = cos.path / "目录 a+b %20"
    directory.mkdir()
    (directory / "é x").write_bytes(b"inside")

    assert os.listdir(directory) == ["é x"]
    assert (directory / "é x").read_bytes() == b"inside"
    assert os.listdir(cos.path) == ["目录 a+b %20"]


def test_rename_to_an_awkward_name(cos, emulator):
    (cos.path / "plain").write_bytes(b"renamed")

    os.rename(cos.path / "plain", cos.path / "中文 +%.txt")

    assert (cos.path / "中文 +%.txt").read_bytes() == b"renamed"
    assert Bucket(emulator).keys() == ["中文 +%.txt"]
