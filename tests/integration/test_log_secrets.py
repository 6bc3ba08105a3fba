"""A debug log of a whole workload holds no key, signature or token, on both APIs.

SEMANTICS.md: "No log holds a secret, at any level (`debug` included) and on either API:
not the SecretKey, not a session token, not a signature or the signature of a signed URL."
At debug level urllib3 logs every request line with its query string, which on the JSON API
carries the download's ``?sign=`` (valid for ten minutes; the log held it before the
filter); the XML API sends a session token with temporary credentials. The emulator reads
its keys from a private file, as a deployment would, so no key is on any command line either.

Cost: under 1 s per API (one mount, a 3 MB multipart upload and read-back, a dozen small
operations).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.emulator import SECRET_ID, SECRET_KEY, start_emulator
from tests.support.mounted import leaks_in, mount

TEMPORARY_ID = "AKIDTEMPORARYtemporaryTEMPORARY0001"
TEMPORARY_KEY = "TEMPKEYtempkeyTEMPKEYtempkey0001"
TOKEN = "sts-session-token+/=" + "0123456789abcdef" * 8
MiB = 1024 * 1024


@pytest.fixture
def keyed_emulator(tmp_path):
    """An emulator reading a main key pair and a temporary one (with its token) from a file."""
    credentials = tmp_path / "emulator-credentials"
    credentials.write_text(f"# cosfs-emulator keys\n{SECRET_ID}:{SECRET_KEY}\n{TEMPORARY_ID}:{TEMPORARY_KEY}:{TOKEN}\n")
    credentials.chmod(0o600)
    running = start_emulator(tmp_path / "cos-root", credentials_file=credentials)
    try:
        yield running
    finally:
        running.stop()


def temporary_passwd(tmp_path: Path) -> Path:
    path = tmp_path / "passwd-sts"
    path.write_text(f"secret_id={TEMPORARY_ID}\nsecret_key={TEMPORARY_KEY}\ntoken={TOKEN}\n")
    path.chmod(0o600)
    return path


def workload(root: Path) -> None:
    """Every kind of request a mount makes: multipart/slice upload, ranged reads, list, HEAD,
    copy or move, metadata update, delete, symlink, directory marker."""
    data = os.urandom(3 * MiB + 4321)
    (root / "d").mkdir()
    (root / "d" / "big.bin").write_bytes(data)
    (root / "d" / "sec.txt").write_text("nothing secret in here")
    assert (root / "d" / "big.bin").read_bytes() == data
    assert sorted(os.listdir(root / "d")) == ["big.bin", "sec.txt"]
    assert os.stat(root / "d" / "big.bin").st_size == len(data)
    os.rename(root / "d" / "sec.txt", root / "d" / "moved.txt")
    os.chmod(root / "d" / "moved.txt", 0o600)
    os.symlink("moved.txt", root / "d" / "link")
    assert os.readlink(root / "d" / "link") == "moved.txt"
    (root / "e").mkdir()
    os.rmdir(root / "e")
    for name in ("link", "moved.txt", "big.bin"):
        os.unlink(root / "d" / name)
    os.rmdir(root / "d")


@pytest.mark.parametrize("api, options", [
    ("xml", "api=xml,signature=cos"),
    ("xml-sigv4", "api=xml,signature=v4"),
    ("json", "api=json"),
], ids=["xml", "xml-sigv4", "json"])
def test_a_debug_log_of_a_full_workload_holds_no_secret(keyed_emulator, tmp_path, api, options):
    if api.startswith("xml"):
        options += f",passwd_file={temporary_passwd(tmp_path)}"  # temporary keys: a token on every request
    mounted = mount(keyed_emulator, tmp_path, f"{options},log_level=debug,multipart_threshold=1,multipart_size=1",
                    secrets=(TEMPORARY_KEY, TOKEN))
    try:
        workload(mounted.path)
    finally:
        mounted.stop()
    log = mounted.log()

    assert leaks_in(log, (SECRET_KEY, TEMPORARY_KEY, TOKEN)) == []
    assert "urllib3.connectionpool" in log and " 206 " in log, "the log does not show urllib3's request lines"
    if api == "json":
        assert "?sign=[redacted] HTTP/1.1" in log, "no JSON API download was logged (and redacted)"
