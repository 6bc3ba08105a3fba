"""``cosfs-emulator``: run a local COS server (XML and JSON APIs) on a directory.

    cosfs-emulator --root ./cos-data --port 9000 --bucket examplebucket-1250000000

It prints ``listening on http://HOST:PORT`` once it accepts connections (with ``--port 0``
the port is picked free), then the credentials to use when it generated them, and serves
until SIGINT/SIGTERM. Keys it is given come from ``--credentials-file`` or the environment
(``cosfs.emulator.credentials``); ``--secret-key`` shows the key to every user in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

from cosfs import __version__
from cosfs.emulator.auth import Authenticator, Principal
from cosfs.emulator.context import Context
from cosfs.emulator.credentials import (
    ENV_SECRET_ID,
    ENV_SECRET_KEY,
    CredentialsError,
    from_environment,
    read_credentials_file,
)
from cosfs.emulator.faults import FaultInjector, FaultSettings
from cosfs.emulator.server import EmulatorApp, serve
from cosfs.emulator.storage import Storage

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]*-[0-9]{5,12}$")

EPILOG = """\
addressing (XML API):
  virtual-hosted  Host: <bucket>-<appid>.cos.<region>.myqcloud.com, e.g. cos-python-sdk-v5 with
                  CosConfig(Region=..., Scheme='http', IP='127.0.0.1', Port=PORT)
  path-style      http://127.0.0.1:PORT/<bucket>-<appid>/<key> (boto3, s3fs, rclone, cosfs)
  proxy           absolute-form targets (coscmd with http_proxy=http://127.0.0.1:PORT)
JSON API:         http://127.0.0.1:PORT/files/v2/<appid>/<bucket>/<path>
signatures:       COS q-sign, AWS SigV4 (header and presigned), JSON API multi/once signatures
admin endpoint (never a bucket):
  GET  /-/admin/stats        request counters per operation, and body bytes in and out (JSON)
  POST /-/admin/stats/reset  zero the counters
  GET  /-/admin/faults       current fault settings
  POST /-/admin/faults       change them: {"fail_rate": 0.1, "reset_rate": 0, "latency_ms": 0,
                             "bandwidth_mbps": 0, "seed": 1, "refuse_keys": "REGEX", "stall": false}
stall (--stall, or "stall": true): connections are accepted and requests read, but none is
  answered until it is switched off; held requests are answered then. The admin endpoint
  always answers.
"""


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cosfs-emulator",
        description="A local Tencent Cloud COS server (XML and JSON APIs, signature checks, data on disk, "
        "fault injection) for trying cosfs without an account, tests and benchmarks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cosfs-emulator {__version__}")
    parser.add_argument("--root", required=True, type=Path, help="directory holding all data (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port; 0 picks a free one (default 9000)")
    parser.add_argument("--bucket", action="append", dest="buckets", metavar="NAME-APPID",
                        help="a bucket to serve (repeatable; default examplebucket-1250000000)")
    parser.add_argument("--region", default="ap-guangzhou", help="region the server pretends to be")
    parser.add_argument("--credentials-file", type=Path, metavar="FILE",
                        help="read the SecretId:SecretKey to accept from FILE (more lines: more pairs, "
                        "ID:KEY:TOKEN for temporary ones); it must be private to its owner (chmod 600)")
    parser.add_argument("--secret-id", help=f"SecretId to accept (default ${ENV_SECRET_ID}, else generated "
                        "and printed)")
    parser.add_argument("--secret-key", help=f"SecretKey to accept (default ${ENV_SECRET_KEY}, else generated "
                        "and printed); every user sees it in ps: prefer --credentials-file or the environment")
    parser.add_argument("--credential", action="append", default=[], metavar="ID:KEY[:TOKEN]",
                        help="more credentials; with TOKEN they are temporary and need x-cos-security-token "
                        "(shown in ps too: prefer more lines in --credentials-file)")
    parser.add_argument("--public-read", action="store_true", help="allow anonymous GET and HEAD")
    parser.add_argument("--no-auth", action="store_true", help="accept unsigned requests (experiments only)")
    parser.add_argument("--fixed-time", type=float, metavar="UNIX",
                        help="the server's clock stands still at this time (signature checks, Date)")
    parser.add_argument("--clock-skew", type=float, default=0.0, metavar="SECONDS",
                        help="the server's clock runs this far ahead (negative: behind) of the real one")
    parser.add_argument("--fail-rate", type=float, default=0.0, metavar="P", help="answer 503 SlowDown with probability P")
    parser.add_argument("--reset-rate", type=float, default=0.0, metavar="P",
                        help="close the connection mid-body with probability P")
    parser.add_argument("--latency-ms", type=int, default=0, metavar="N", help="add N ms to every request")
    parser.add_argument("--bandwidth", type=float, default=0.0, metavar="MBPS",
                        help="limit each connection's body throughput to MBPS MB/s")
    parser.add_argument("--stall", action="store_true",
                        help="start stalled: read requests, answer none until the admin endpoint says stall false")
    parser.add_argument("--no-fsync", action="store_true",
                        help="do not fsync received data: it survives the emulator's process, not a crash of "
                             "the machine (tests and benchmarks)")
    parser.add_argument("--seed", type=int, help="seed of the fault injection random source")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if args.credentials_file and (args.secret_id or args.secret_key):
        parser.error("give the credentials once: --credentials-file or --secret-id/--secret-key")
    args.buckets = args.buckets or ["examplebucket-1250000000"]
    for bucket in args.buckets:
        if not BUCKET_RE.match(bucket):
            parser.error(f"bucket {bucket!r} is not NAME-APPID (e.g. examplebucket-1250000000)")
    return args


def principals(args: argparse.Namespace) -> Tuple[List[Principal], bool]:
    """Every key pair to accept, the main one first, and whether the main one was generated.

    The main pair comes from ``--credentials-file``, else the flags, else the environment
    (``cosfs.emulator.credentials``); a missing half is generated.
    """
    if args.credentials_file:
        found, generated = read_credentials_file(args.credentials_file), False
    else:
        env_id, env_key = from_environment(os.environ)
        secret_id, secret_key = args.secret_id or env_id, args.secret_key or env_key
        generated = not (secret_id and secret_key)
        found = [Principal(secret_id or "AKID" + secrets.token_hex(16), secret_key or secrets.token_hex(16))]
    for text in args.credential:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise SystemExit(f"cosfs-emulator: --credential {text!r} is not ID:KEY or ID:KEY:TOKEN")
        found.append(Principal(*parts))
    return found, generated


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        accepted, generated = principals(args)
    except CredentialsError as exc:
        print(f"cosfs-emulator: {exc}", file=sys.stderr)
        return 2

    if args.fixed_time is not None:
        fixed = args.fixed_time
        clock = lambda: fixed  # noqa: E731
    else:
        skew = args.clock_skew
        clock = lambda: time.time() + skew  # noqa: E731
    faults = FaultInjector(FaultSettings(args.fail_rate, args.reset_rate, args.latency_ms, args.bandwidth, args.seed,
                                         stall=args.stall))
    storage = Storage(args.root, clock=clock, fsync=not args.no_fsync)
    auth = Authenticator(accepted, clock, no_auth=args.no_auth, public_read=args.public_read)
    app = EmulatorApp(Context(storage, auth, args.region, args.buckets, clock), faults)
    try:
        server = serve(app, args.host, args.port)
    except OSError as exc:
        print(f"cosfs-emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    print(f"buckets: {', '.join(args.buckets)}  region: {args.region}", flush=True)
    if generated:
        print(f"secret id: {accepted[0].secret_id}\nsecret key: {accepted[0].secret_key}", flush=True)

    def stop(signum, frame):  # noqa: ARG001 (signal handler signature)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        storage.close()
    return 0
