"""The key pairs cosfs-emulator accepts, from a file or the environment rather than argv.

A command line is readable by every user of the machine (``ps``, ``/proc/PID/cmdline``), so
``--secret-key`` is for throw-away test keys only. The emulator reads its keys, in order:

1. ``--credentials-file FILE``: ``SecretId:SecretKey`` lines (``SecretId:SecretKey:Token``
   for temporary credentials), blank lines and ``#`` comments ignored; the first line is the
   main pair. The format of a cosfs passwd file's default line, so one file can serve both.
   Like cosfs, the emulator refuses a file that group or others may access.
2. ``--secret-id`` / ``--secret-key``.
3. ``COSFS_EMULATOR_SECRET_ID`` / ``COSFS_EMULATOR_SECRET_KEY`` (what a systemd
   ``EnvironmentFile=`` gives; a process's environment is readable by its owner and root only).

A missing half is generated and printed at start-up. Messages never show a secret.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List, Mapping

from cosfs.emulator.auth import Principal

ENV_SECRET_ID = "COSFS_EMULATOR_SECRET_ID"
ENV_SECRET_KEY = "COSFS_EMULATOR_SECRET_KEY"


class CredentialsError(Exception):
    """A credentials file that cannot be used; the message says why and what to do."""


def read_credentials_file(path: Path) -> List[Principal]:
    """The principals in ``path``, the main pair first; refused unless only its owner may read it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"credentials file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise CredentialsError(f"credentials file {path} is accessible by group or others (mode "
                               f"{stat.S_IMODE(st.st_mode):04o}): chmod 600 {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials file {path}: {exc}") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise CredentialsError(f"credentials file {path} line {number} is not SecretId:SecretKey or "
                                   "SecretId:SecretKey:Token (the line is not shown: it may hold a secret)")
        found.append(Principal(*parts))
    if not found:
        raise CredentialsError(f"credentials file {path} holds no SecretId:SecretKey line")
    return found


def from_environment(environ: Mapping[str, str]) -> "tuple[str, str]":
    """``(SecretId, SecretKey)`` from the environment, ``""`` for what is not set."""
    return environ.get(ENV_SECRET_ID, ""), environ.get(ENV_SECRET_KEY, "")
