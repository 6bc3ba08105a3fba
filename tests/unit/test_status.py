"""``cosfs status``: the status socket (server and client over a real Unix socket), rendering, the command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path

import pytest

from cosfs.command import cli, status, status_socket
from cosfs.command.snapshot import SNAPSHOT_VERSION
from cosfs.command.status_socket import NoAnswer, StaleSocket, StatusServer, query, socket_name, socket_path
from tests.support.status_samples import BIG_UPLOAD, NOW, SLOW_DOWN, sample_snapshot


@pytest.fixture
def run_dir(monkeypatch):
    """A runtime directory of its own (COSFS_RUNTIME_DIR), short enough for socket addresses
    (108 bytes at most: pytest's tmp_path is too deep)."""
    parent = Path(tempfile.mkdtemp(prefix="cosfs-run-"))
    monkeypatch.setenv("COSFS_RUNTIME_DIR", str(parent / "run"))
    try:
        yield parent / "run"
    finally:
        shutil.rmtree(parent)


@pytest.fixture
def serve(run_dir):
    """``serve(mountpoint, provider)`` starts a StatusServer in ``run_dir``; all are stopped afterwards."""
    servers = []

    def start(mountpoint: str, provider=None) -> StatusServer:
        server = StatusServer(socket_path(mountpoint), provider or (lambda: sample_snapshot(mountpoint)))
        assert server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def dead_socket(path: Path) -> None:
    """A socket file nothing listens on: what a killed daemon leaves behind."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def silent_socket(path: Path) -> socket.socket:
    """A daemon that accepts connections and never answers."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(4)
    return sock


class Lines:
    def __init__(self) -> None:
        self.lines = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# --- where sockets live ---------------------------------------------------------------------

def test_runtime_directory_per_user(monkeypatch):
    monkeypatch.delenv("COSFS_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert status_socket.runtime_directory() == Path("/run/cosfs")

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert status_socket.runtime_directory() == Path("/run/user/1000/cosfs")

    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert status_socket.runtime_directory().name == "cosfs-1000"

    monkeypatch.setenv("COSFS_RUNTIME_DIR", "/somewhere")
    assert status_socket.runtime_directory() == Path("/somewhere")


def test_socket_names_are_readable_distinct_and_short():
    assert socket_name("/mnt/cos").startswith("mnt-cos.")
    assert socket_name("/mnt/a-b") != socket_name("/mnt/a/b")
    assert socket_name("/").startswith("root.")
    assert len(socket_name("/" + "very-long-directory-name/" * 20)) <= 42
    assert socket_name("/mnt/cos") == socket_name("/mnt/cos")


# --- server and client ----------------------------------------------------------------------

def test_the_server_answers_the_snapshot_on_a_private_socket(serve, run_dir):
    server = serve("/mnt/cos")

    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert query(server.path) == json.loads(json.dumps(sample_snapshot("/mnt/cos")))


def test_a_runtime_directory_open_to_others_is_closed_and_another_users_is_refused(run_dir, monkeypatch):
    run_dir.mkdir(mode=0o755)
    os.chmod(run_dir, 0o755)
    status_socket.ensure_private_directory(run_dir)
    assert stat.S_IMODE(os.stat(run_dir).st_mode) == 0o700

    monkeypatch.setattr(os, "geteuid", lambda: os.stat(run_dir).st_uid + 1)
    with pytest.raises(PermissionError, match="COSFS_RUNTIME_DIR"):
        status_socket.ensure_private_directory(run_dir)


def test_stop_removes_the_socket(serve):
    server = serve("/mnt/cos")

    server.stop()

    assert not server.path.exists()
    with pytest.raises(FileNotFoundError):
        query(server.path)


def test_a_stale_socket_is_replaced_by_a_new_server(run_dir, serve):
    path = socket_path("/mnt/cos")
    dead_socket(path)
    with pytest.raises(StaleSocket):
        query(path)

    serve("/mnt/cos")

    assert query(path)["mount"]["mountpoint"] == "/mnt/cos"


def test_a_live_socket_is_not_taken_over(serve):
    serve("/mnt/cos")

    assert not StatusServer(socket_path("/mnt/cos"), lambda: {}).start()
    assert query(socket_path("/mnt/cos"))["mount"]["pid"] == 4242


def test_a_failing_provider_is_reported_and_the_server_keeps_serving(serve):
    answers = [RuntimeError("boom"), sample_snapshot()]

    def provider():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    server = serve("/mnt/cos", provider)

    with pytest.raises(NoAnswer, match="boom"):
        query(server.path)
    assert query(server.path)["version"] == SNAPSHOT_VERSION


def test_an_unknown_request_gets_an_error_document(serve):
    server = serve("/mnt/cos")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(server.path))
        sock.sendall(b"shutdown\n")
        answer = json.loads(sock.makefile("rb").readline())
    assert "unknown request" in answer["error"]


# --- rendering ------------------------------------------------------------------------------

def test_progress_bar():
    assert status.progress_bar(0, 100, width=10) == "[----------]   0%"
    assert status.progress_bar(25, 100, width=10) == "[##--------]  25%"
    assert status.progress_bar(100, 100, width=10) == "[##########] 100%"
    assert status.progress_bar(0, 0, width=10) == "[##########] 100%"


def test_human_units():
    assert [status.human_bytes(n) for n in (0, 1023, 1536, 5 * 1024 ** 3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]
    assert [status.human_duration(s) for s in (5, 62, 3725, 90000)] == ["5s", "1m02s", "1h02m", "1d01h"]


def test_render_shows_uploads_dirty_cache_requests_and_errors_with_request_ids():
    snapshot = sample_snapshot(uploads=[BIG_UPLOAD], dirty=(1, 48 * 1024 ** 2), errors=[SLOW_DOWN])

    text = status.render(snapshot, NOW)

    lines = text.splitlines()
    assert lines[0] == "/mnt/cos: examplebucket-1250000000:/photos over the XML API (pid 4242, up 1h02m)"
    assert lines[1].startswith("pending: 1 upload(s) running, 1 file(s) with 48.0 MiB not yet stored")
    assert lines[2] == "  [######------------------]  25%  12.0 MiB / 48.0 MiB  2.0 MiB/s  /videos/big.mp4"
    assert "dirty: 1 file(s), 48.0 MiB" in lines
    assert "cache: 3.0 MiB staged in /var/cache/cosfs/examplebucket-1250000000, 20.0 GiB free" in lines
    assert any(line.split() == ["put_part", "12", "1", "3", "0"] for line in lines)
    error_line = lines[-1]
    assert "put_part 'photos/videos/big.mp4': SlowDown (EIO) Please reduce your request rate." in error_line
    assert error_line.endswith("[request id NjU1ZTk0YjBfMjQ]")
    assert "safe to unmount" not in text


def test_render_says_plainly_when_nothing_is_pending():
    text = status.render(sample_snapshot(), NOW)

    assert text.splitlines()[1] == "nothing pending: safe to unmount"
    assert "last errors: none" in text


# --- the command ----------------------------------------------------------------------------

def test_status_of_a_mount_prints_it(serve, run_dir):
    serve("/mnt/cos", lambda: sample_snapshot(uploads=[BIG_UPLOAD], dirty=(1, 10)))
    out, err = Lines(), Lines()

    assert status.show_one("/mnt/cos", False, out, err) == 0

    assert "/videos/big.mp4" in out.text and "[######" in out.text
    assert err.lines == []


def test_status_json_prints_the_snapshot_document(serve):
    serve("/mnt/cos")
    out, err = Lines(), Lines()

    assert status.show_one("/mnt/cos", True, out, err) == 0

    assert json.loads(out.text) == sample_snapshot("/mnt/cos")


def test_status_of_a_directory_that_is_not_a_cosfs_mount_is_one_line_and_exit_1(run_dir, tmp_path, capsys):
    assert cli.main(["status", str(tmp_path)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"cosfs status: {tmp_path} is not a cosfs mount")


def test_status_of_a_mount_whose_daemon_does_not_answer_is_one_line_and_exit_1(run_dir, monkeypatch):
    monkeypatch.setattr(status_socket, "ANSWER_TIMEOUT", 0.2)
    listener = silent_socket(socket_path("/mnt/hung"))
    out, err = Lines(), Lines()
    try:
        started = time.monotonic()
        assert status.show_one("/mnt/hung", False, out, err) == 1
        assert time.monotonic() - started < 5
    finally:
        listener.close()

    assert out.lines == []
    assert len(err.lines) == 1 and "does not answer (no answer within 0.2 s)" in err.text


def test_status_of_a_mount_whose_daemon_died_removes_its_socket(run_dir):
    path = socket_path("/mnt/gone")
    dead_socket(path)
    err = Lines()

    assert status.show_one("/mnt/gone", False, Lines(), err) == 1

    assert "its cosfs daemon is gone" in err.text
    assert not path.exists()


def test_status_without_argument_lists_every_live_mount_and_cleans_stale_sockets(serve, run_dir):
    serve("/mnt/one")
    serve("/mnt/two")
    dead_socket(socket_path("/mnt/dead"))
    out, err = Lines(), Lines()

    assert status.show_all(False, out, err) == 0

    assert "/mnt/one: " in out.text and "/mnt/two: " in out.text
    assert err.lines == []
    assert not socket_path("/mnt/dead").exists()

    out = Lines()
    assert status.show_all(True, out, err) == 0
    assert [doc["mount"]["mountpoint"] for doc in json.loads(out.text)] == ["/mnt/one", "/mnt/two"]


def test_status_without_argument_and_no_mount_is_one_line_and_exit_1(run_dir):
    err = Lines()

    assert status.show_all(False, Lines(), err) == 1

    assert err.lines == [f"no cosfs mount of this user is running (no status socket in {run_dir})"]


def test_a_snapshot_of_another_version_is_refused_for_people_and_passed_to_scripts(serve):
    serve("/mnt/cos", lambda: dict(sample_snapshot(), version=SNAPSHOT_VERSION + 1))
    out, err = Lines(), Lines()

    assert status.show_one("/mnt/cos", False, out, err) == 1
    assert "status version 2" in err.text

    assert status.show_one("/mnt/cos", True, out, Lines()) == 0
    assert json.loads(out.text)["version"] == SNAPSHOT_VERSION + 1
