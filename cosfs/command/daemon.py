"""Run the mount in the foreground or as a daemon whose parent exits once the mount is live.

The parent waits on a pipe: the child writes ``ok`` when FUSE calls ``init`` (the kernel
has the mount), or the reason it failed. So ``cosfs`` in a script, ``mount -t fuse.cosfs``
and fstab report success only when the directory really is the bucket. Under systemd
(``NOTIFY_SOCKET`` set) the same moment sends ``READY=1``.

From that moment until the process ends (after the last upload at unmount) the daemon
answers ``cosfs status`` on its status socket, and, with ``-o metrics=``, Prometheus.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import sys
import threading
import time
from typing import Callable, Sequence

from cosfs.command.kernel_readahead import set_read_ahead
from cosfs.command.log import setup_logging
from cosfs.command.metrics import MetricsServer
from cosfs.command.mount import build_filesystem, run_mount
from cosfs.command.options import Options
from cosfs.command.snapshot import MountInfo, MountSnapshot
from cosfs.command.status_socket import StatusServer, socket_path
from cosfs.command.store_factory import build_store, build_transport
from cosfs.data.upload_tracker import UploadTracker
from cosfs.fuse_adapter.operations import CallCounts
from cosfs.wire.errors import ConfigError
from cosfs.wire.request_stats import RequestStats

log = logging.getLogger(__name__)

READY_TIMEOUT = 120.0


def notify_systemd(message: str) -> None:
    """Send ``message`` to systemd's notification socket when there is one (Type=notify)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], exc)


def _serve(args: argparse.Namespace, options: Options, bucket: str, prefix: str, mountpoint: str,
           on_mounted: Callable[[], None]) -> None:
    requests, uploads, calls = RequestStats(), UploadTracker(), CallCounts()
    store = build_store(bucket, options, transport=build_transport(options, observer=requests))
    fs = build_filesystem(store, options, prefix, bucket, uploads=uploads)
    fsname = f"cosfs#{bucket}" + (f":/{prefix.rstrip('/')}" if prefix else "")
    snapshot = MountSnapshot(
        MountInfo(bucket=bucket, prefix=prefix, mountpoint=mountpoint, api=options.api, pid=os.getpid(),
                  started=time.time()),
        uploads, requests, fs.files, fs.files.staging, fs.lookup.mapper.path_of, calls,
    )
    status = StatusServer(socket_path(mountpoint), snapshot)
    metrics = MetricsServer(options.metrics, snapshot) if options.metrics else None

    live = []

    def mounted() -> None:
        live.append(True)
        # After init returns: the kernel holds every request on the mount until it does.
        threading.Thread(target=set_read_ahead, args=(mountpoint, options.read_ahead_kb),
                         name="cosfs-readahead", daemon=True).start()
        status.start()
        log.info("%s is mounted on %s", fsname, mountpoint)
        notify_systemd(f"READY=1\nSTATUS=serving {fsname} on {mountpoint}")
        on_mounted()

    try:
        run_mount(fs, mountpoint, options, fsname, on_mounted=mounted, calls=calls)
    except RuntimeError as exc:
        if not live:
            raise ConfigError(f"libfuse could not mount {mountpoint} (error {exc}); see the log above") from None
        log.info("stopped by a signal (libfuse status %s)", exc)  # libfuse 3 reports SIGTERM this way
    finally:
        status.stop()
        if metrics is not None:
            metrics.stop()
    notify_systemd("STOPPING=1")
    log.info("%s unmounted from %s", fsname, mountpoint)


def run(args: argparse.Namespace, options: Options, bucket: str, prefix: str, mountpoint: str,
        notes: Sequence[str] = ()) -> int:
    """Mount in the foreground, or fork a daemon and wait until its mount is live. ``notes``
    (what recovery told the terminal) go to the daemon's log too, which the terminal is not."""
    if args.foreground:
        _serve(args, options, bucket, prefix, mountpoint, lambda: None)
        return 0
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return _wait_for_child(read_end, pid)
    os.close(read_end)
    os.setsid()
    _detach_stdio()
    setup_logging(options.log_level, foreground=False, logfile=options.logfile)
    for note in notes:
        log.warning("%s", note)
    reported = []

    def report(message: str) -> None:
        if not reported:
            reported.append(message)
            os.write(write_end, message.encode())
            os.close(write_end)

    try:
        _serve(args, options, bucket, prefix, mountpoint, lambda: report("ok"))
    except Exception as exc:  # noqa: BLE001 (the parent must hear about any failure)
        log.error("mount failed: %s", exc)
        report(f"error: {exc}")
        os._exit(1)
    report("error: the mount ended before it was ready")
    os._exit(0)


def _wait_for_child(read_end: int, pid: int) -> int:
    ready, _, _ = select.select([read_end], [], [], READY_TIMEOUT)
    message = os.read(read_end, 4096).decode(errors="replace") if ready else ""
    os.close(read_end)
    if message == "ok":
        return 0
    if not message:
        message = f"error: the mount did not become ready within {READY_TIMEOUT:g} s"
    print(f"cosfs: {message.removeprefix('error: ')}", file=sys.stderr)
    return 1


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
