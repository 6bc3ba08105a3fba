"""The status socket: where a mount's daemon answers ``cosfs status`` with one JSON snapshot.

One Unix socket per mount, in the user's runtime directory: ``/run/cosfs/`` for root,
``$XDG_RUNTIME_DIR/cosfs/`` for a user who has one, else ``$TMPDIR/cosfs-<uid>/``
(``COSFS_RUNTIME_DIR`` overrides all three). The directory is 0700 and must belong to the
user, the socket is 0600: only the mounting user (and root) can read a mount's status,
which names files and keys. The socket's name comes from the mount point, so
``cosfs status /mnt/x`` finds it without asking every mount.

The protocol is one line each way: the client sends ``status``, the daemon answers the
snapshot as one JSON line and closes. The server knows nothing of the filesystem; it calls
the provider it was given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import socketserver
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

log = logging.getLogger(__name__)

#: Seconds a client waits for a daemon's answer (a daemon that takes longer is reported as not answering).
ANSWER_TIMEOUT = 5.0
#: The request line; anything else is answered with an error document.
REQUEST = b"status\n"
#: How often the server thread looks whether it should stop (the longest ``stop`` waits).
_POLL_INTERVAL = 0.2
_MAX_ANSWER = 16 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NoAnswer(Exception):
    """The daemon behind a socket does not answer (in time, or with a snapshot)."""


class StaleSocket(NoAnswer):
    """Nothing listens on the socket any more: its daemon died without removing it."""


def runtime_directory() -> Path:
    """Where this user's mounts put their status sockets."""
    override = os.environ.get("COSFS_RUNTIME_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run/cosfs")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "cosfs"
    return Path(tempfile.gettempdir()) / f"cosfs-{os.geteuid()}"


def socket_name(mountpoint: str) -> str:
    """``mnt-cos.1a2b3c4d5e6f.sock`` for ``/mnt/cos``: readable, unique per mount point (the
    digest tells ``/mnt/a-b`` from ``/mnt/a/b``) and short enough for a socket address."""
    readable = _UNSAFE.sub("_", mountpoint.strip("/").replace("/", "-"))[-24:].lstrip("-") or "root"
    digest = hashlib.sha256(os.fsencode(mountpoint)).hexdigest()[:12]
    return f"{readable}.{digest}.sock"


def socket_path(mountpoint: str, directory: Optional[Path] = None) -> Path:
    return (directory or runtime_directory()) / socket_name(mountpoint)


def ensure_private_directory(directory: Path) -> None:
    """Create ``directory`` 0700, or check that it is ours and close it to others; OSError if
    another user owns it (in a shared /tmp someone could have made it to read our status)."""
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid():
        raise PermissionError(f"{directory} is not a directory of user {os.geteuid()}: remove it or set "
                              "COSFS_RUNTIME_DIR")
    if stat.S_IMODE(found.st_mode) != 0o700:
        os.chmod(directory, 0o700)


# --- the server (in the mount's daemon) -----------------------------------------------------

class _Handler(socketserver.StreamRequestHandler):
    timeout = ANSWER_TIMEOUT

    def handle(self) -> None:
        try:
            request = self.rfile.readline(1024)
        except OSError:
            return
        if request == REQUEST:
            try:
                answer: Dict[str, Any] = dict(self.server.provider())
            except Exception as exc:  # noqa: BLE001 (a broken snapshot must not kill the server thread)
                log.exception("status snapshot failed")
                answer = {"error": f"the snapshot failed: {exc}"}
        else:
            answer = {"error": f"unknown request {request[:40]!r}; send {REQUEST!r}"}
        try:
            self.wfile.write(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass  # the client left


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, provider: Callable[[], Any]) -> None:
        self.provider = provider
        super().__init__(str(path), _Handler)


class StatusServer:
    """Serves ``provider()``'s snapshot on the socket at ``path`` from a thread of its own."""

    def __init__(self, path: Path, provider: Callable[[], Any]) -> None:
        self.path = path
        self._provider = provider
        self._server: Optional[_Server] = None
        self._inode: Optional[Tuple[int, int]] = None

    def start(self) -> bool:
        """Listen; False (with a warning logged) when the socket cannot be made: the mount
        works all the same, only ``cosfs status`` will not see it."""
        try:
            ensure_private_directory(self.path.parent)
            self._remove_stale()
            server = _Server(self.path, self._provider)
        except OSError as exc:
            log.warning("no status socket for this mount (%s: %s); cosfs status will not see it",
                        self.path, exc.strerror or exc)
            return False
        os.chmod(self.path, 0o600)  # born with the umask's mode, but in a 0700 directory: never open to others
        found = os.stat(self.path)
        self._inode = (found.st_dev, found.st_ino)
        self._server = server
        threading.Thread(target=server.serve_forever, args=(_POLL_INTERVAL,), name="cosfs-status", daemon=True).start()
        log.info("status socket %s", self.path)
        return True

    def stop(self) -> None:
        """Stop answering and remove the socket (if it still is ours)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        try:
            found = os.stat(self.path)
            if (found.st_dev, found.st_ino) == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass

    def _remove_stale(self) -> None:
        """A socket left by a daemon that died is removed; a live one is not ours to take."""
        try:
            query(self.path, timeout=1.0)
        except FileNotFoundError:
            return
        except StaleSocket:
            remove_stale(self.path)
            return
        except NoAnswer:
            pass
        raise FileExistsError(f"another cosfs daemon listens on {self.path}")


# --- the client (cosfs status) --------------------------------------------------------------

def query(path: Path, timeout: Optional[float] = None) -> Dict[str, Any]:
    """The snapshot the daemon behind ``path`` answers within ``timeout`` (``ANSWER_TIMEOUT``).
    ``FileNotFoundError``: no such socket; ``StaleSocket``: its daemon is gone; ``NoAnswer``:
    the daemon is there but does not answer."""
    timeout = ANSWER_TIMEOUT if timeout is None else timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(REQUEST)
            answer = _read_all(sock)
        except FileNotFoundError:
            raise
        except ConnectionRefusedError:
            raise StaleSocket(f"nothing listens on {path}: its daemon is gone") from None
        except socket.timeout:
            raise NoAnswer(f"no answer within {timeout:g} s") from None
        except ConnectionResetError:
            raise NoAnswer("the daemon closed the connection without answering: it may be ending") from None
        except OSError as exc:
            raise NoAnswer(f"{path}: {exc.strerror or exc}") from None
    if not answer:
        raise NoAnswer("the daemon closed the connection without answering")
    try:
        document = json.loads(answer)
    except ValueError:
        raise NoAnswer("the daemon's answer is not JSON") from None
    if not isinstance(document, dict):
        raise NoAnswer("the daemon's answer is not a JSON object")
    if "error" in document:
        raise NoAnswer(f"the daemon answered: {document['error']}")
    return document


def live_mounts(directory: Optional[Path] = None,
                timeout: Optional[float] = None) -> Iterator[Tuple[Path, Union[Dict[str, Any], NoAnswer]]]:
    """Each socket in the runtime directory with its daemon's snapshot, or the ``NoAnswer``
    of a daemon that is there but silent. Sockets of dead daemons are removed on the way."""
    directory = directory or runtime_directory()
    try:
        names = sorted(entry for entry in os.listdir(directory) if entry.endswith(".sock"))
    except FileNotFoundError:
        return
    for name in names:
        path = directory / name
        try:
            yield path, query(path, timeout)
        except FileNotFoundError:
            continue
        except StaleSocket:
            remove_stale(path)
        except NoAnswer as silent:
            yield path, silent


def remove_stale(path: Path) -> None:
    """Remove the socket of a daemon that died without removing it (SIGKILL, a crash)."""
    path.unlink(missing_ok=True)
    log.debug("removed stale status socket %s", path)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    size = 0
    while size <= _MAX_ANSWER:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
