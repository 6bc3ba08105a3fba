"""The write contract of SEMANTICS.md, attacked the way users broke it, on both APIs.

Every test reproduces a finding of issue 9: a failed write (ENOSPC) that replaced a 30 MiB
object with 0 bytes, a shell redirection that published an empty object before its data,
and closes that re-sent the whole file. What COS received is read from the emulator's
request counters and from the bucket itself (boto3, behind the mount's back).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys

import pytest

from tests.integration.bucket import Bucket
from tests.support.mounted import wait_until

MiB = 1024 * 1024
#: The emulator's counters of a request that stores a whole object (what "an upload" is).
STORING = {"xml.PutObject", "xml.CompleteMultipartUpload", "json.upload", "json.upload_slice_finish"}
#: And of every request that sends object data.
SENDING = STORING | {"xml.UploadPart", "xml.CreateMultipartUpload", "json.upload_slice_init",
                     "json.upload_slice_data"}


def uploads(emulator) -> int:
    return sum(count for name, count in emulator.stats().items() if name in STORING)


def sends(emulator) -> int:
    return sum(count for name, count in emulator.stats().items() if name in SENDING)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- finding 1: a failed write never replaces the object ---------------------------------


@pytest.fixture
def full_disk(remount):
    """A mount whose staging area is always "full": ensure_diskfree asks for ~9 TB free."""
    return remount("full", "ensure_diskfree=9000000").path


def test_a_write_that_hits_enospc_leaves_the_old_object_intact(full_disk, emulator, tmp_path):
    """SEMANTICS.md: "An object that already exists is never deleted or truncated before its
    replacement is complete." ``cp big keep`` hitting ENOSPC used to leave 0 bytes."""
    old = os.urandom(30 * MiB)
    Bucket(emulator).put("keep", old)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(8 * MiB))
    emulator.admin("stats/reset")

    copy = subprocess.run(["cp", str(big), str(full_disk / "keep")], capture_output=True, text=True)

    assert copy.returncode != 0 and "No space left on device" in copy.stderr
    assert sends(emulator) == 0, "nothing may be uploaded after a write failed"
    assert digest(Bucket(emulator).get("keep")) == digest(old)
    wait_until(lambda: (full_disk / "keep").stat().st_size == 30 * MiB, what="the old size (kernel cache: 1 s)")


def test_a_new_file_whose_write_failed_leaves_no_object(full_disk, emulator):
    """SEMANTICS.md: "a failed upload leaves no empty object behind"; neither does a failed write."""
    emulator.admin("stats/reset")
    shell = subprocess.run(["sh", "-c", f"echo hello > {full_disk / 'nospace'}"], capture_output=True, text=True)

    assert shell.returncode != 0
    assert sends(emulator) == 0
    assert not Bucket(emulator).exists("nospace")
    wait_until(lambda: "nospace" not in os.listdir(full_disk), what="the never-stored name to leave the listing")


def test_every_close_after_a_failed_write_reports_it_until_truncated(full_disk, emulator):
    """A poisoned file: later closes fail too and store nothing; truncating to zero starts over."""
    Bucket(emulator).put("doc", b"original")
    fd = os.open(full_disk / "doc", os.O_WRONLY)
    with pytest.raises(OSError) as failed_write:
        os.write(fd, b"x" * MiB)
    assert failed_write.value.errno == errno.ENOSPC
    second = os.dup(fd)
    with pytest.raises(OSError) as first_close:
        os.close(fd)
    with pytest.raises(OSError) as second_close:
        os.close(second)
    assert first_close.value.errno == second_close.value.errno == errno.ENOSPC
    assert Bucket(emulator).get("doc") == b"original"

    with open(full_disk / "doc", "wb"):  # O_TRUNC: a new version, written empty
        pass
    wait_until(lambda: Bucket(emulator).get("doc") == b"", what="the empty version to be stored")


# --- finding 2: > and dd never publish an empty object first ------------------------------


def test_shell_redirection_publishes_nothing_before_the_data(cos, emulator):
    """``>`` opens with O_TRUNC, dups, closes the original: that close must not store an
    empty object over the old one. Only the close after the data stores, once."""
    old = os.urandom(3 * MiB)
    Bucket(emulator).put("f", old)
    new = cos.path.parent / "new"
    new.write_bytes(b"new content")
    emulator.admin("stats/reset")

    subprocess.run(["sh", "-c", f"cat {new} > {cos.path / 'f'}"], check=True)

    assert Bucket(emulator).get("f") == b"new content"
    assert uploads(emulator) == 1


def test_kill_9_during_a_redirected_copy_leaves_the_old_object(remount, emulator, tmp_path):
    """The copy that follows ``> f`` is killed with the daemon: COS keeps the 50 MiB object
    (it used to hold 0 bytes), and the next mount sets the unfinished data aside."""
    mounted = remount("victim")
    old = os.urandom(50 * MiB)
    Bucket(emulator).put("big", old)
    progress = tmp_path / "progress"
    writer = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} -u -c '{SLOW_WRITER}' {progress} > {mounted.path / 'big'}"])
    try:
        wait_until(lambda: progress.exists() and int(progress.read_text() or 0) >= 5, 30,
                   what="the redirected copy to be under way")
        mounted.process.kill()
        mounted.process.wait(10)
    finally:
        writer.kill()
        writer.wait(10)
        mounted.stop()
    assert digest(Bucket(emulator).get("big")) == digest(old)

    again = remount("victim")
    assert digest((again.path / "big").read_bytes()) == digest(old)
    assert "big" in again.log() and "lost+found" in again.log()
    kept = list((tmp_path / "victim-cache" / "lost+found").rglob("big"))
    assert len(kept) == 1 and kept[0].stat().st_size >= 5 * MiB


#: Writes 1 MiB a time to stdout, counting in the file named by argv[1], forever.
SLOW_WRITER = ("import sys, time\n"
               "n = 0\n"
               "while True:\n"
               "    sys.stdout.buffer.write(bytes(1048576)); sys.stdout.flush(); n += 1\n"
               "    open(sys.argv[1], \"w\").write(str(n)); time.sleep(0.05)\n")


# --- finding 3: closes upload only what changed, once -------------------------------------


def test_thirty_children_writing_one_redirection_make_one_upload(cos, emulator):
    """``(for i in $(seq 30); do head -c 1M /dev/urandom; done) > f``: each ``head`` closes
    an inherited descriptor; only the shell that opened it stores the file, once (it made
    32 uploads of 0, 1, ..., 30 MB)."""
    emulator.admin("stats/reset")
    subprocess.run(["bash", "-c", f"(for i in $(seq 30); do head -c 1M /dev/urandom; done) > {cos.path / 'f'}"],
                   check=True)

    assert uploads(emulator) == 1
    assert len(Bucket(emulator).get("f")) == 30 * MiB


def test_read_only_closes_never_upload_a_file_being_written(cos, emulator):
    """While one handle writes, 20 read-only open/close cycles store nothing (they made 20
    full uploads); the writer's close stores once."""
    writer = open(cos.path / "f", "wb")
    writer.write(os.urandom(MiB))
    writer.flush()
    emulator.admin("stats/reset")
    for _ in range(20):
        with open(cos.path / "f", "rb") as reader:
            assert len(reader.read()) == MiB
    assert sends(emulator) == 0
    writer.close()
    assert uploads(emulator) == 1
    assert len(Bucket(emulator).get("f")) == MiB


def test_a_close_without_changes_after_an_upload_sends_nothing(cos, emulator):
    (cos.path / "f").write_bytes(b"stored once")
    emulator.admin("stats/reset")
    fd = os.open(cos.path / "f", os.O_RDWR)
    os.close(fd)
    os.close(os.open(cos.path / "f", os.O_RDONLY))
    assert sends(emulator) == 0
