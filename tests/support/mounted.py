"""Mount cosfs for real (a child process, as users run it) against a running emulator.

The mount runs in its own process so a hang or crash in the filesystem cannot take pytest
with it; the test talks to it only through ``os.*`` calls and shell tools. Teardown always
unmounts (lazily if needed) and kills the process, and on failure the mount's log is shown.
Missing FUSE is a failure, never a skip: a real-mount test that silently skips proves nothing.

Mounts log at debug level, every request included, and each mount's log is checked when it
stops (``Mount.stop``): README.md promises that logs never hold credentials or signatures,
so a SecretKey, a session token or an unredacted signature anywhere in it fails the test
that made it. A debug log of the whole integration suite thus holds no secret. (Debug
instead of info costs about 1% of the suite's wall time.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from tests.support.emulator import REPOSITORY, RunningEmulator

MOUNT_TIMEOUT = 30.0


def require_fuse() -> None:
    """Fail (not skip) when this machine cannot mount FUSE filesystems."""
    problems = []
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse is missing")
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        problems.append("no fusermount3/fusermount (install fuse3)")
    if problems:
        raise AssertionError("FUSE is unavailable: " + "; ".join(problems) + " (scripts/test.sh installs fuse3)")


def is_mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point, a stale one included (``os.path.ismount`` says False
    when the daemon died: stat then fails with ENOTCONN)."""
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == str(path) for line in mounts)


def unmount(path: Path) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if is_mounted(path):
        subprocess.run([tool, "-u", str(path)], capture_output=True)
    if is_mounted(path):
        subprocess.run([tool, "-uz", str(path)], capture_output=True)


def write_passwd(directory: Path, emulator: RunningEmulator, secret_key: Optional[str] = None) -> Path:
    path = directory / "passwd-cosfs"
    path.write_text(f"{emulator.secret_id}:{secret_key or emulator.secret_key}\n")
    path.chmod(0o600)
    return path


#: A signature or signed-URL parameter whose value is still there (``cosfs.wire.redact``
#: replaces values with ``[redacted]``), also percent-encoded inside another URL.
UNREDACTED = re.compile(
    r"(?i)(?:(?<![\w-])|(?<=%26)|(?<=%3F))(?P<name>q-signature|sign|x-amz-signature|x-amz-credential"
    r"|x-cos-security-token|x-amz-security-token)(?:=|%3D)(?!\[redacted\])[^\s&'\"]"
    r"|(?<![\w-])(?P<header>authorization)['\"]?\s*:\s*['\"]?(?!\[redacted\])\S"
)


def leaks_in(log: str, secrets: Iterable[str]) -> List[str]:
    """Where ``log`` shows one of ``secrets`` or a signature that was not redacted (line
    numbers and what leaked, never the secret itself)."""
    found = []
    for number, line in enumerate(log.splitlines(), 1):
        if any(secret and secret in line for secret in secrets):
            found.append(f"line {number}: a secret (SecretKey or token)")
        for match in UNREDACTED.finditer(line):
            found.append(f"line {number}: an unredacted {match.group('name') or match.group('header')} value")
    return found


@dataclass
class Mount:
    path: Path
    process: subprocess.Popen
    log_path: Path
    args: List[str]
    #: What must never appear in this mount's log: its SecretKey (and tokens, if any).
    secrets: Tuple[str, ...] = ()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """Unmount and wait for the process; returns its exit status. Then fail if the log
        holds a secret or a signature (after the cleanup, so a leak never leaves a mount)."""
        unmount(self.path)
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            unmount(self.path)
            status = self.process.wait(timeout)
        self.assert_log_holds_no_secret()
        return status

    def assert_log_holds_no_secret(self) -> None:
        leaks = leaks_in(self.log(), self.secrets)
        assert not leaks, f"the log of the mount on {self.path} ({self.log_path}) leaks: " + "; ".join(leaks)


def cosfs_command(emulator: RunningEmulator, mountpoint: Path, options: str = "", foreground: bool = True,
                  passwd: Optional[Path] = None, bucket: Optional[str] = None) -> List[str]:
    base = f"endpoint={emulator.url},retries=2,connect_timeout=5"
    if passwd is not None:
        base += f",passwd_file={passwd}"
    args = [sys.executable, "-m", "cosfs", bucket or emulator.bucket, str(mountpoint), "-o",
            base + (f",{options}" if options else "")]
    return args + (["-f"] if foreground else [])


def child_env(extra: Optional[dict] = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(extra or {})
    return env


def mount(emulator: RunningEmulator, workdir: Path, options: str = "", name: str = "mnt",
          env: Optional[dict] = None, secrets: Iterable[str] = ()) -> Mount:
    """Mount the emulator's bucket at ``workdir/name`` in the foreground; returns once it is live.

    ``secrets`` (besides the emulator's SecretKey) must never appear in its log.
    """
    require_fuse()
    mountpoint = workdir / name
    mountpoint.mkdir(parents=True, exist_ok=True)
    passwd = write_passwd(workdir, emulator)
    cache = workdir / f"{name}-cache"
    args = cosfs_command(emulator, mountpoint, f"cache_dir={cache},ensure_diskfree=0,log_level=debug"
                         + (f",{options}" if options else ""), passwd=passwd)
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=log, env=child_env(env), cwd=workdir)
    handle = Mount(mountpoint, process, log_path, args, (emulator.secret_key, *secrets))
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.ismount(mountpoint):
            return handle
        if process.poll() is not None:
            raise AssertionError(f"cosfs exited with {process.returncode} before mounting:\n{handle.log()}")
        time.sleep(0.05)
    handle.stop()
    raise AssertionError(f"cosfs did not mount within {MOUNT_TIMEOUT} s:\n{handle.log()}")


def wait_until(condition, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition`` until it returns a truthy value or the deadline passes (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
