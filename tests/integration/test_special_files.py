"""Special files on a real mount: FIFOs, sockets and device files, stored as s3fs stores them.

SEMANTICS.md: "FIFOs, Unix sockets and character and block devices are stored as empty
objects: the type is in `x-cos-meta-mode` with the permission bits, a device's number in
`x-cos-meta-rdev`, as s3fs stores them. Opening one is the kernel's business (a FIFO's pipe,
a device's driver): cosfs only keeps the node."
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.bucket import Bucket
from tests.integration.test_cross_api import DIRECTIONS, both  # noqa: F401 (a fixture)

CHAR = os.makedev(1, 3)
BLOCK = os.makedev(7, 250)


def make_specials(directory: Path) -> None:
    """A FIFO, a character and a block device, and a bound Unix socket in ``directory``."""
    os.mkfifo(directory / "fifo", 0o640)
    os.mknod(directory / "char", stat.S_IFCHR | 0o600, CHAR)
    os.mknod(directory / "block", stat.S_IFBLK | 0o640, BLOCK)
    bind_socket(directory, "sock")


def bind_socket(directory: Path, name: str) -> None:
    """Bind a Unix socket at ``directory/name``, from a child working in ``directory`` (a
    socket path is limited to 108 bytes; the test's directory may be longer)."""
    subprocess.run([sys.executable, "-c", f"import socket; socket.socket(socket.AF_UNIX).bind({name!r})"],
                   cwd=directory, check=True, timeout=30)


def special_stats(directory: Path) -> dict:
    """name -> (type, permissions, rdev, uid, gid, mtime) of the special files in ``directory``."""
    shown = {}
    for name in ("fifo", "char", "block", "sock"):
        st = os.lstat(directory / name)
        shown[name] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_rdev, st.st_uid, st.st_gid,
                       st.st_mtime_ns, st.st_size)
    return shown


EXPECTED_TYPES = {"fifo": (stat.S_IFIFO, 0), "char": (stat.S_IFCHR, CHAR), "block": (stat.S_IFBLK, BLOCK),
                  "sock": (stat.S_IFSOCK, 0)}


def test_special_files_keep_type_and_rdev_after_a_remount(cos, remount, emulator):
    """Each kind of special file shows its type and device number at once, in the listing,
    and after a remount; each is one empty object with s3fs's metadata."""
    make_specials(cos.path)
    made = special_stats(cos.path)

    assert {name: (shown[0], shown[2]) for name, shown in made.items()} == EXPECTED_TYPES
    assert all(shown[6] == 0 for shown in made.values())
    with os.scandir(cos.path) as entries:
        listed = {entry.name: stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode) for entry in entries}
    assert listed == {name: kind for name, (kind, _) in EXPECTED_TYPES.items()}
    head = Bucket(emulator).head("char")
    assert head["ContentLength"] == 0
    assert head["Metadata"]["mode"] == str(stat.S_IFCHR | 0o600) and head["Metadata"]["rdev"] == str(CHAR)

    again = remount("again")
    assert special_stats(again.path) == made


@pytest.mark.parametrize("writer,reader", DIRECTIONS)
def test_special_files_read_back_identically_through_the_other_api(both, writer, reader):  # noqa: F811
    make_specials(both[writer])

    assert special_stats(both[reader]) == special_stats(both[writer])


def test_a_fifo_on_the_mount_carries_data_between_processes_without_cosfs(cos, emulator):
    """The kernel makes the pipe: a writer and a reader meet through the FIFO node, and no
    request is sent for their data."""
    os.mkfifo(cos.path / "pipe")
    emulator.admin("stats/reset")
    reader = subprocess.Popen([sys.executable, "-c", "import sys; print(open(sys.argv[1]).read(), end='')",
                               str(cos.path / "pipe")], stdout=subprocess.PIPE, text=True)
    try:
        with open(cos.path / "pipe", "w") as pipe:
            pipe.write("through the pipe")
        out, _ = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert out == "through the pipe"
    assert not any(name.endswith(("PutObject", "GetObject", "upload")) for name in emulator.stats())


def test_a_socket_bound_on_the_mount_accepts_connections(cos):
    """bind() makes the node through cosfs; connect() is the kernel's."""
    server = socket.socket(socket.AF_UNIX)
    old = os.getcwd()
    os.chdir(cos.path)
    try:
        server.bind("srv")
        server.listen(1)
        client = socket.socket(socket.AF_UNIX)
        client.connect("srv")
    finally:
        os.chdir(old)
    connection, _ = server.accept()
    client.sendall(b"hello")
    assert connection.recv(5) == b"hello"
    for open_socket in (client, connection, server):
        open_socket.close()
    assert stat.S_ISSOCK(os.lstat(cos.path / "srv").st_mode)


def itemized(source: Path, target: Path, *extra: str) -> str:
    """What ``rsync -aAXD --itemize-changes`` changes (an empty string: nothing): ``-X`` leaves
    the ACLs to ``-A``."""
    run = subprocess.run(["rsync", "-aAXD", "--itemize-changes", *extra, f"{source}/", f"{target}/"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def make_tree(root: Path) -> None:
    """Each kind of special file, xattrs, an ACL, a file, a symlink and a directory."""
    (root / "dir").mkdir(parents=True)
    make_specials(root / "dir")
    (root / "dir" / "file").write_bytes(b"content")
    os.symlink("file", root / "dir" / "link")
    os.setxattr(root / "dir" / "file", "user.color", b"blue")
    os.setxattr(root / "dir", "user.kind", b"folder")
    acl = subprocess.run(["setfacl", "-m", "u:1234:rwx", str(root / "dir" / "file")], capture_output=True, text=True)
    assert acl.returncode == 0, acl.stderr
    past = time.time_ns() - 86_400 * 10**9
    for name in ("fifo", "char", "block", "sock", "file"):
        os.utime(root / "dir" / name, ns=(past, past), follow_symlinks=False)


def test_rsync_axd_of_special_files_xattrs_and_an_acl_then_nothing_to_do(cos, remount, tmp_path):
    """``rsync -aXD`` recreates every special file with its xattrs and an ACL; a second pass,
    and one after a remount, transfers nothing."""
    source = tmp_path / "source"
    make_tree(source)

    first = itemized(source, cos.path / "copy")
    assert "dir/fifo" in first and "dir/sock" in first and "dir/char" in first

    assert itemized(source, cos.path / "copy") == ""
    again = remount("again")
    assert itemized(source, again.path / "copy") == ""
    copied = again.path / "copy" / "dir"
    assert special_stats(copied) == special_stats(source / "dir")
    assert os.getxattr(copied / "file", "user.color") == b"blue"
    acl = subprocess.run(["getfacl", "-c", str(copied / "file")], capture_output=True, text=True, check=True)
    assert "user:1234:rwx" in acl.stdout
