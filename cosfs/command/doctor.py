"""``cosfs doctor BUCKET-APPID [-o opts] [--write-test]``: will a mount work, and if not, why.

The connectivity checks of COS's access guide (manual 004) as one command: where the
endpoint resolves (private addresses mean the intranet route), TCP and TLS, the clock
against COS's (signatures fail past a minute of skew), a signed request with the
credentials a mount would use, list permission, optionally a write/read/delete, and
whether this machine can mount FUSE at all. Each check prints OK or one line saying what to
do; the exit status is 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, List, Tuple
from urllib.parse import urlsplit

import requests

from cosfs.command import diagnose
from cosfs.command.options import Options, options_from_arguments
from cosfs.command.store_factory import build_store
from cosfs.wire.errors import ConfigError, CosError

#: Skew beyond which COS refuses signatures (q-sign starts a minute in the past).
MAX_SKEW = 60.0


@dataclass
class Result:
    ok: bool
    name: str
    detail: str


def classify(address: str) -> str:
    """``private`` for COS's intranet ranges (10/8, 100.64/10 and 100/8 per manual 004,
    169.254/16 VPC), ``local`` for loopback, else ``public``."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "local"
    if isinstance(ip, ipaddress.IPv4Address) and (
        ip in ipaddress.ip_network("10.0.0.0/8")
        or ip in ipaddress.ip_network("100.0.0.0/8")
        or ip in ipaddress.ip_network("169.254.0.0/16")
    ):
        return "private"
    return "private" if ip.is_private else "public"


class Doctor:
    def __init__(self, bucket: str, options: Options, write_test: bool,
                 dev_fuse: str = "/dev/fuse", out: Callable[[str], None] = print) -> None:
        self.bucket = bucket
        self.options = options
        self.write_test = write_test
        self.dev_fuse = dev_fuse
        self.out = out
        self.results: List[Result] = []
        self.store = None

    def report(self, ok: bool, name: str, detail: str) -> bool:
        self.results.append(Result(ok, name, detail))
        self.out(f"{'OK  ' if ok else 'FAIL'}  {name}: {detail}")
        return ok

    # --- the checks, in order; a failed prerequisite stops the ones that need it --------

    def run(self) -> int:
        if self.check_store() and self.check_network():
            self.check_clock()
            if self.check_signed_request() and self.write_test:
                self.check_write()
        self.check_fuse()
        return 0 if all(result.ok for result in self.results) else 1

    def check_store(self) -> bool:
        try:
            self.store = build_store(self.bucket, self.options)
        except ConfigError as exc:
            return self.report(False, "configuration", str(exc))
        source = self.store.credentials.source
        return self.report(True, "credentials", f"from {source}")

    def _endpoint(self) -> Tuple[str, str, int]:
        parts = urlsplit(self.store.location)
        return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)

    def check_network(self) -> bool:
        scheme, host, port = self._endpoint()
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return self.report(False, "DNS", f"{host} does not resolve ({exc.strerror}): check the region "
                                             "(-o region=) or the endpoint, and the DNS settings")
        addresses = sorted({info[4][0] for info in infos})
        kinds = ", ".join(f"{a} ({classify(a)})" for a in addresses)
        self.report(True, "DNS", f"{host} resolves to {kinds}")
        started = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=self.options.connect_timeout) as sock:
                elapsed = (time.monotonic() - started) * 1000
                self.report(True, "TCP", f"connected to {host}:{port} in {elapsed:.0f} ms")
                if scheme == "https":
                    return self._check_tls(sock, host)
        except OSError as exc:
            return self.report(False, "TCP", f"cannot connect to {host}:{port} ({exc}): check the endpoint, "
                                             "firewalls and proxies")
        return True

    def _check_tls(self, sock: socket.socket, host: str) -> bool:
        context = ssl.create_default_context()
        if self.options.no_check_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                return self.report(True, "TLS", f"{tls.version()}, certificate for {host} verified")
        except (ssl.SSLError, OSError) as exc:
            return self.report(False, "TLS", f"handshake with {host} failed ({exc}): check the system's CA "
                                             "certificates (ca-certificates) or a proxy rewriting TLS")

    def check_clock(self) -> bool:
        parts = urlsplit(self.store.location)
        base = f"{parts.scheme}://{parts.netloc}"
        try:
            answer = requests.head(base + "/", timeout=self.options.connect_timeout,
                                   verify=not self.options.no_check_certificate)
            server = parsedate_to_datetime(answer.headers["Date"]).timestamp()
        except (requests.RequestException, KeyError, TypeError, ValueError) as exc:
            return self.report(False, "clock", f"cannot read COS's Date header ({exc})")
        skew = time.time() - server
        if abs(skew) > MAX_SKEW:
            direction = "ahead of" if skew > 0 else "behind"
            return self.report(False, "clock", f"this machine is {abs(skew):.0f} s {direction} COS; signatures "
                                               "fail beyond 60 s: sync it (timedatectl set-ntp true)")
        return self.report(True, "clock", f"within {abs(skew):.0f} s of COS")

    def check_signed_request(self) -> bool:
        try:
            self.store.probe()
        except CosError as error:
            where = self._endpoint()[1]
            line = diagnose.explain(error, self.bucket, where, self.store.credentials.source,
                                    self.options.connect_timeout)
            return self.report(False, "signed request", line)
        return self.report(True, "signed request", f"bucket {self.bucket} listed with these credentials")

    def check_write(self) -> bool:
        key = f".cosfs-doctor-{uuid.uuid4().hex[:12]}"
        payload = b"cosfs doctor write test\n"
        try:
            self.store.put_object(key, payload)
            back = self.store.read_range(key, 0, len(payload))
            self.store.delete_file(key)
        except CosError as error:
            return self.report(False, "write test", f"{error}: the credentials may only read this bucket "
                                                    "(grant cos:PutObject and cos:DeleteObject to write)")
        if back != payload:
            return self.report(False, "write test", "the object read back differs from what was written")
        return self.report(True, "write test", f"wrote, read back and deleted {key}")

    def check_fuse(self) -> bool:
        if not os.path.exists(self.dev_fuse):
            return self.report(False, "FUSE", f"{self.dev_fuse} is missing: load the module (modprobe fuse); in a "
                                              "container pass --device /dev/fuse and CAP_SYS_ADMIN")
        if not os.access(self.dev_fuse, os.R_OK | os.W_OK):
            return self.report(False, "FUSE", f"{self.dev_fuse} is not readable and writable by this user: add "
                                              "the user to the fuse group or run as root")
        helper = shutil.which("fusermount3") or shutil.which("fusermount")
        if helper is None:
            return self.report(False, "FUSE", "fusermount3 is missing: apt-get install fuse3")
        try:
            from cosfs.fuse_adapter import binding
        except (ImportError, OSError) as exc:
            return self.report(False, "FUSE", f"the FUSE binding cannot be loaded ({exc}): apt-get install fuse3, "
                                              "and reinstall cosfs (it needs mfusepy)")
        if self.options.allow_other and os.geteuid() != 0 and not _user_allow_other():
            return self.report(False, "FUSE", "allow_other needs 'user_allow_other' in /etc/fuse.conf "
                                              "(or mounting as root)")
        return self.report(True, "FUSE", f"{self.dev_fuse}, {os.path.basename(helper)}, {binding.describe()}")


def _user_allow_other(path: str = "/etc/fuse.conf") -> bool:
    try:
        with open(path) as conf:
            return any(line.strip() == "user_allow_other" for line in conf)
    except OSError:
        return False


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="cosfs doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("bucket", help="BUCKET-APPID")
    parser.add_argument("-o", dest="options", action="append", default=[], help="the mount's options")
    parser.add_argument("--write-test", action="store_true", help="also write, read and delete a small object")
    args = parser.parse_args(argv)
    try:
        options = options_from_arguments(args.options)
    except ConfigError as exc:
        print(f"FAIL  options: {exc}")
        return 1
    bucket = args.bucket.partition(":")[0]
    dev_fuse = os.environ.get("COSFS_DEV_FUSE", "/dev/fuse")
    return Doctor(bucket, options, args.write_test, dev_fuse).run()

