"""cosfs-emulator takes its keys from a private file or the environment, never needing argv.

A command line is world-readable (``ps``, ``/proc/PID/cmdline``): ``--credentials-file`` and
``COSFS_EMULATOR_SECRET_ID``/``COSFS_EMULATOR_SECRET_KEY`` keep the SecretKey off it, and a
file others could read is refused, as cosfs refuses such passwd files. Cost: about 1.5 s
(three emulator starts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosfs.emulator.credentials import CredentialsError, read_credentials_file
from tests.emulator.test_e2e_faults import json_stat, xml_request
from tests.support.emulator import REPOSITORY, SECRET_ID, SECRET_KEY, start_emulator


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_the_emulator_accepts_the_keys_of_its_credentials_file_and_argv_holds_none(tmp_path):
    credentials = private_file(tmp_path / "keys", f"{SECRET_ID}:{SECRET_KEY}\n")
    emulator = start_emulator(tmp_path / "root", credentials_file=credentials)
    try:
        assert SECRET_KEY.encode() not in cmdline(emulator.process.pid)
        assert xml_request(emulator, "PUT", "a.txt", b"signed with the file's key").status_code == 200
        assert json_stat(emulator, "a.txt").json()["code"] == 0
    finally:
        emulator.stop()


def test_the_emulator_takes_its_keys_from_the_environment(tmp_path):
    emulator = start_emulator(tmp_path / "root", keys_in_environment=True)
    try:
        assert SECRET_KEY.encode() not in cmdline(emulator.process.pid)
        assert xml_request(emulator, "PUT", "b.txt", b"signed with the environment's key").status_code == 200
    finally:
        emulator.stop()


def test_a_credentials_file_others_can_read_is_refused_in_one_line(tmp_path):
    credentials = private_file(tmp_path / "keys", f"{SECRET_ID}:{SECRET_KEY}\n", mode=0o644)

    done = subprocess.run([sys.executable, "-m", "cosfs.emulator", "--root", str(tmp_path / "root"), "--port", "0",
                           "--credentials-file", str(credentials)], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPOSITORY)))

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"cosfs-emulator: credentials file {credentials} is accessible by group or "
                                   f"others (mode 0644): chmod 600 {credentials}")


def test_credentials_file_lines(tmp_path):
    path = private_file(tmp_path / "keys", f"# keys\n\n{SECRET_ID}:{SECRET_KEY}\n  AKIDtmp:tmpkey:TOKEN  \n")

    found = read_credentials_file(path)

    assert [(p.secret_id, p.secret_key, p.token) for p in found] == [
        (SECRET_ID, SECRET_KEY, None), ("AKIDtmp", "tmpkey", "TOKEN")]


@pytest.mark.parametrize("text, words", [
    ("", "holds no SecretId:SecretKey line"),
    ("AKIDonly\n", "line 1 is not SecretId:SecretKey"),
    ("a:b:c:d\n", "line 1 is not SecretId:SecretKey"),
    ("a::c\n", "line 1 is not SecretId:SecretKey"),
])
def test_bad_credentials_files_are_refused_without_showing_the_line(tmp_path, text, words):
    path = private_file(tmp_path / "keys", text)

    with pytest.raises(CredentialsError) as raised:
        read_credentials_file(path)

    assert words in str(raised.value) and (not text.strip() or text.strip() not in str(raised.value))
