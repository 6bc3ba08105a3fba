"""Extended attributes on a real mount, in the encoding s3fs and COSFS share.

SEMANTICS.md: "Extended attributes are stored in the object's metadata, all of them in one
`x-cos-meta-xattr` value (a URL-encoded JSON object of base64 values), as s3fs and COSFS
store them."
"""

from __future__ import annotations

import errno
import os
import subprocess
import urllib.parse

import pytest

from tests.integration.bucket import Bucket, file_meta
from tests.integration.test_kernel_caches import kernel_calls
from tests.integration.test_request_costs import settled_stats
from tests.support.mounted import wait_until

MiB = 1024 * 1024
#: What storing a whole object costs: a re-upload would send one of these.
UPLOADS = {"xml.PutObject", "xml.UploadPart", "xml.CreateMultipartUpload", "json.upload",
           "json.upload_slice_init", "json.upload_slice_data"}


def errno_of(call, *args) -> int:
    with pytest.raises(OSError) as raised:
        call(*args)
    return raised.value.errno


def test_flags_too_large_and_removed_each_hold_after_a_remount(cos, remount):
    """SEMANTICS.md: "XATTR_CREATE of an existing name is EEXIST, XATTR_REPLACE of a missing
    one ENODATA [...] an attribute that would take the object's metadata past COS's 2 KB is
    refused with E2BIG"."""
    target = cos.path / "f"
    target.write_bytes(b"data")
    os.setxattr(target, "user.kept", b"first", os.XATTR_CREATE)
    assert errno_of(os.setxattr, target, "user.kept", b"again", os.XATTR_CREATE) == errno.EEXIST
    assert errno_of(os.setxattr, target, "user.none", b"x", os.XATTR_REPLACE) == errno.ENODATA
    os.setxattr(target, "user.kept", b"\x00binary\xff", os.XATTR_REPLACE)
    os.setxattr(target, "user.gone", b"soon")
    os.removexattr(target, "user.gone")
    assert errno_of(os.setxattr, target, "user.big", b"x" * 2100) == errno.E2BIG
    assert errno_of(os.removexattr, target, "user.gone") == errno.ENODATA
    cos.stop()  # a change of a file just written is held for a moment; the unmount stores it

    again = remount("again").path / "f"

    assert os.getxattr(again, "user.kept") == b"\x00binary\xff"
    assert sorted(os.listxattr(again)) == ["user.kept"]
    for name in ("user.gone", "user.big", "user.none"):
        assert errno_of(os.getxattr, again, name) == errno.ENODATA
    assert again.read_bytes() == b"data"
    assert "E2BIG" in cos.log() or "at most 2048" in cos.log()


def test_setfattr_getfattr_on_a_file_and_a_directory(cos, remount, emulator):
    (cos.path / "d").mkdir()
    (cos.path / "d" / "f").write_text("x")
    for path in (cos.path / "d", cos.path / "d" / "f"):
        subprocess.run(["setfattr", "-n", "user.note", "-v", "hello world", str(path)], check=True, timeout=30)
    cos.stop()

    again = remount("again").path
    for path in (again / "d", again / "d" / "f"):
        shown = subprocess.run(["getfattr", "-d", "--absolute-names", str(path)], capture_output=True, text=True,
                               check=True, timeout=30).stdout
        assert 'user.note="hello world"' in shown
    stored = Bucket(emulator).head("d/")["Metadata"]["xattr"]
    assert urllib.parse.unquote(stored) == '{"user.note":"aGVsbG8gd29ybGQ="}'


def test_an_attribute_written_as_s3fs_writes_it_is_read(cos, emulator):
    meta = dict(file_meta(), xattr="%7B%22user.from%22%3A%22czNmcw%3D%3D%22%7D")
    Bucket(emulator).put("from-s3fs", b"x", meta)

    assert os.getxattr(cos.path / "from-s3fs", "user.from") == b"s3fs"


def test_setfacl_getfacl_round_trip(cos, remount):
    """SEMANTICS.md: "POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`) are
    stored as xattrs, and the mode follows the ACL's mask as on a disk"."""
    (cos.path / "d").mkdir()
    target = cos.path / "d" / "f"
    target.write_text("x")
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:99:r", str(target)], check=True, timeout=30)
    subprocess.run(["setfacl", "-d", "-m", "u:1234:rwx", str(cos.path / "d")], check=True, timeout=30)
    before = subprocess.run(["getfacl", "-c", str(target)], capture_output=True, text=True, check=True).stdout
    cos.stop()

    again = remount("again").path
    after = subprocess.run(["getfacl", "-c", str(again / "d" / "f")], capture_output=True, text=True,
                           check=True).stdout
    defaults = subprocess.run(["getfacl", "-c", "-d", str(again / "d")], capture_output=True, text=True,
                              check=True).stdout

    assert after == before and "user:1234:rw-" in after and "group:99:r--" in after and "mask::rw-" in after
    assert "user:1234:rwx" in defaults
    assert oct(os.stat(again / "d" / "f").st_mode & 0o070) == oct(0o060)  # the mask is the group bits
    os.chmod(again / "d" / "f", 0o640)
    assert "mask::r--" in subprocess.run(["getfacl", "-c", str(again / "d" / "f")], capture_output=True,
                                         text=True, check=True).stdout


def test_ls_l_asks_for_xattrs_without_a_request(cos, emulator):
    """``ls -l`` asks for ``security.selinux`` and ACLs of each entry: answered from the
    attributes its ``stat`` cached, the walk costs what it did when xattrs were refused."""
    Bucket(emulator).put_many((f"d/f{number:02d}" for number in range(20)), b"abc", file_meta(mode=0o100600))
    os.listdir(cos.path / "d")
    for name in os.listdir(cos.path / "d"):
        os.lstat(cos.path / "d" / name)
    emulator.admin("stats/reset")
    before = kernel_calls(cos)

    listed = subprocess.run(["ls", "-l", str(cos.path / "d")], capture_output=True, text=True, check=True).stdout

    assert len(listed.splitlines()) == 21
    assert sum(settled_stats(emulator).values()) == 0
    after = kernel_calls(cos)
    print(f"\nls -l of 20 files: kernel xattr calls {after.get('getxattr', 0) - before.get('getxattr', 0)} "
          f"getxattr, {after.get('listxattr', 0) - before.get('listxattr', 0)} listxattr")


def test_setxattr_of_a_50_mib_file_copies_its_metadata_and_uploads_nothing(cos, emulator, api):
    """SEMANTICS.md: "Setting or removing one changes the metadata in place (a copy of the
    object onto itself, the JSON API's update): the data is never sent again"."""
    Bucket(emulator).put("big.bin", os.urandom(50 * MiB), file_meta())
    target = cos.path / "big.bin"
    assert os.stat(target).st_size == 50 * MiB
    emulator.admin("stats/reset")

    os.setxattr(target, "user.tag", b"checked")
    os.removexattr(target, "user.tag")
    os.setxattr(target, "user.tag", b"final")

    counts = settled_stats(emulator)
    print(f"\nsetxattr x2 + removexattr of a 50 MiB file, api={api}: {counts}")
    changes = counts.get("xml.CopyObject", 0) + counts.get("json.update", 0)
    assert changes == 3 and not UPLOADS & set(counts), counts
    wait_until(lambda: Bucket(emulator).head("big.bin")["Metadata"].get("xattr"), timeout=10, what="the xattr")
    assert Bucket(emulator).head("big.bin")["ContentLength"] == 50 * MiB


def test_noxattr_refuses_them_and_ls_makes_no_xattr_call(cos, remount):
    """README: "`noxattr`: refuse extended attributes (EOPNOTSUPP), like s3fs's `noxattr`: `ls -l`
    then makes no xattr call per entry"."""
    for index in range(20):
        (cos.path / f"f{index}").write_bytes(b"x")
    cos.stop()
    plain = remount("plain", "noxattr")
    assert errno_of(os.getxattr, plain.path / "f0", "user.any") == errno.EOPNOTSUPP
    assert errno_of(os.setxattr, plain.path / "f0", "user.any", b"v") == errno.EOPNOTSUPP
    subprocess.run(["ls", "-l", str(plain.path)], check=True, capture_output=True)
    before = kernel_calls(plain).get("getxattr", 0)
    subprocess.run(["ls", "-l", str(plain.path)], check=True, capture_output=True)
    assert kernel_calls(plain).get("getxattr", 0) == before, "the kernel answered the xattr lookups itself"
