"""Start cosfs-emulator as a child process on 127.0.0.1 with a free port and a given root.

The child runs the source tree's code (``PYTHONPATH`` is set to the repository), prints
``listening on http://127.0.0.1:PORT``, and is stopped with SIGTERM (or killed) by the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

REPOSITORY = Path(__file__).resolve().parents[2]
BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
SECRET_ID = "AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE0000"
SECRET_KEY = "EXAMPLEKEYexamplekeyEXAMPLEKEY00"


@dataclass
class RunningEmulator:
    root: Path
    args: List[str]
    process: subprocess.Popen
    port: int
    bucket: str = BUCKET
    region: str = REGION
    secret_id: str = SECRET_ID
    secret_key: str = SECRET_KEY
    output: List[str] = field(default_factory=list)
    log_path: Optional[Path] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def appid(self) -> str:
        return self.bucket.rsplit("-", 1)[1]

    @property
    def bucket_name(self) -> str:
        return self.bucket.rsplit("-", 1)[0]

    def admin(self, path: str, body: Optional[dict] = None) -> dict:
        """Call the admin endpoint (``stats``, ``stats/reset``, ``faults``)."""
        data = None if body is None else json.dumps(body).encode()
        method = "POST" if body is not None or path.endswith("reset") else "GET"
        request = urllib.request.Request(f"{self.url}/-/admin/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict:
        return self.admin("stats")["requests"]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._close_pipes()

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.process.stdout:
            self.process.stdout.close()


def start_emulator(root: Path, *extra_args: str, port: int = 0, timeout: float = 30.0,
                   secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY,
                   credentials_file: Optional[Path] = None, keys_in_environment: bool = False) -> RunningEmulator:
    """Start the emulator on ``root``; returns once it accepts connections.

    The keys go on its command line (fixed test keys), or come as a deployment gives them:
    from ``credentials_file`` (``secret_id``/``secret_key`` must be its first line's) or,
    with ``keys_in_environment``, from ``COSFS_EMULATOR_SECRET_ID``/``_SECRET_KEY``.
    It runs with ``--no-fsync``: data outlives the emulator's process, which is all a test
    needs, and filling 100,000 objects takes a third of the time.
    """
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if credentials_file is not None:
        keys = ["--credentials-file", str(credentials_file)]
    elif keys_in_environment:
        keys = []
        env.update(COSFS_EMULATOR_SECRET_ID=secret_id, COSFS_EMULATOR_SECRET_KEY=secret_key)
    else:
        keys = ["--secret-id", secret_id, "--secret-key", secret_key]
    args = [
        sys.executable, "-m", "cosfs.emulator", "--root", str(root), "--port", str(port),
        "--bucket", BUCKET, "--region", REGION, "--no-fsync", *keys, *extra_args,
    ]
    log_path = Path(str(root) + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:  # a file, not a pipe: a chatty server must never block on stderr
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    deadline = time.monotonic() + timeout
    output: List[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise RuntimeError(f"emulator exited with {process.returncode}: {log_path.read_text()}")
            continue
        output.append(line)
        if line.startswith("listening on http://"):
            found = int(line.rsplit(":", 1)[1])
            return RunningEmulator(root, args, process, found, secret_id=secret_id, secret_key=secret_key,
                                   output=output, log_path=log_path)
    process.kill()
    raise RuntimeError(f"emulator did not start within {timeout} s: {''.join(output)}")
