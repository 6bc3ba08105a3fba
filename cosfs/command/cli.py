"""``cosfs BUCKET-APPID[:/prefix] MOUNTPOINT [-o opt[,opt...]] [-f] [-d]``: check, then mount.

Everything that can be wrong is checked before anything is mounted, and reported in one
line with what to do: bad options, credentials, the mountpoint, and one signed request to
COS (endpoint reachable, credentials accepted, bucket there, clock right). Then the
process daemonizes (unless ``-f``) and the parent exits 0 only once the mount is live, so
``mount``, fstab and scripts see the result. Logs go to stderr in the foreground and to
syslog in the background; they never contain secrets or signatures.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import sys
from typing import List, Optional, Tuple

from cosfs import __version__
from cosfs.command import diagnose, doctor, recover, status
from cosfs.command.log import setup_logging
from cosfs.command.options import Options, options_help, parse_options, split_option_string
from cosfs.command.store_factory import build_store
from cosfs.command.write_path import staging_root
from cosfs.data.recovery import pending
from cosfs.wire.errors import ConfigError, CosError

log = logging.getLogger("cosfs")

USAGE = ("cosfs BUCKET-APPID[:/prefix] MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s]\n"
         "       cosfs doctor BUCKET-APPID [-o opt[,opt...]] [--write-test]\n"
         "       cosfs recover BUCKET-APPID [-o opt[,opt...]] [--list]\n"
         "       cosfs status [MOUNTPOINT] [--json]")


class UsageError(Exception):
    pass


def parse_command_line(argv: List[str]) -> Tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(
        prog="cosfs", usage=USAGE, add_help=False,
        description="Mount a Tencent Cloud COS bucket as a directory.",
    )
    parser.add_argument("bucket", nargs="?")
    parser.add_argument("mountpoint", nargs="?")
    parser.add_argument("-o", dest="options", action="append", default=[])
    parser.add_argument("-f", dest="foreground", action="store_true")
    parser.add_argument("-d", dest="debug", action="store_true")
    parser.add_argument("-s", dest="single_thread", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--version", action="store_true")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise UsageError(f"unknown argument {unknown[0]!r}")
    if args.help or args.version:
        return args, Options()
    if not args.bucket or not args.mountpoint:
        raise UsageError("a bucket and a mountpoint are required")
    pairs = [pair for text in args.options for pair in split_option_string(text)]
    options = parse_options(pairs)
    if args.debug:
        options = dataclasses.replace(options, log_level="debug")
    return args, options


def split_bucket(text: str) -> Tuple[str, str]:
    """``bucket-appid:/some/prefix`` to ``("bucket-appid", "some/prefix/")``."""
    bucket, _, prefix = text.partition(":")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


#: What ``stat`` says on a FUSE mount whose daemon is gone: ENOTCONN once the process died
#: (kill -9, a crash), ECONNABORTED when the connection was aborted through /sys/fs/fuse.
DEAD_MOUNT_ERRORS = (errno.ENOTCONN, errno.ECONNABORTED)


def check_mountpoint(path: str, nonempty: bool) -> str:
    """The mountpoint, resolved, once it is an empty directory that nothing is mounted on.

    A mount whose process died still sits in the mount table and answers every call with
    ENOTCONN; ``os.path.exists`` calls that "does not exist", which sent users to ``mkdir``.
    ``stat`` may still answer from the kernel's attribute cache (``attr_timeout``, the stat
    TTL), so a mount point is asked for ``statfs``, which always reaches its daemon.
    """
    resolved = os.path.realpath(path)
    try:
        os.stat(resolved)
        if os.path.ismount(resolved):
            os.statvfs(resolved)  # the kernel caches a dead mount's attributes, never its statfs
    except FileNotFoundError:
        raise ConfigError(f"mountpoint {path} does not exist: create it with mkdir -p {path}") from None
    except OSError as exc:
        if exc.errno in DEAD_MOUNT_ERRORS:
            raise ConfigError(f"{path} is a stale mount: the process that served it has died ({exc.strerror}); "
                              f"unmount it with fusermount3 -u {path}, then mount again") from None
        raise ConfigError(f"cannot use mountpoint {path}: {exc.strerror}") from None
    if not os.path.isdir(resolved):
        raise ConfigError(f"mountpoint {path} is not a directory")
    if os.path.ismount(resolved):
        raise ConfigError(f"{path} is already a mount point: unmount it first (fusermount3 -u {path})")
    if not nonempty and os.listdir(resolved):
        raise ConfigError(f"mountpoint {path} is not empty: its files would be hidden; use an empty "
                          "directory or -o nonempty")
    return resolved


def print_help() -> None:
    print(f"usage: {USAGE}\n")
    print("Mount a Tencent Cloud COS bucket (XML or legacy JSON API) as a directory.\n")
    print("  -f          stay in the foreground (logs on stderr)")
    print("  -d          debug logging (implies nothing else; add -f to see it)")
    print("  -s          accepted for compatibility (cosfs always serves requests in parallel)")
    print("  --version   print versions and exit\n")
    print("options (-o name=value,...):")
    print(options_help())
    print("\nGeneric FUSE options (allow_root, auto_unmount, kernel_cache, attr_timeout=, ...) are passed "
          "to libfuse;\nmount(8) options (_netdev, noauto, x-systemd.*, ...) are accepted and ignored.")


def print_version() -> None:
    try:
        from cosfs.fuse_adapter import binding

        binding = binding.describe()
    except (ImportError, OSError) as exc:
        binding = f"no FUSE binding ({exc})"
    print(f"cosfs {__version__} ({binding})")


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        return doctor.main(argv[1:])
    if argv[:1] == ["recover"]:
        return recover.main(argv[1:])
    if argv[:1] == ["status"]:
        return status.main(argv[1:])
    try:
        args, options = parse_command_line(argv)
    except (UsageError, SystemExit) as exc:
        print(f"cosfs: {exc}\nusage: {USAGE}  (cosfs --help for options)", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"cosfs: {exc}", file=sys.stderr)
        return 1
    if args.help:
        print_help()
        return 0
    if args.version:
        print_version()
        return 0
    setup_logging(options.log_level, foreground=True)
    try:
        return mount_command(args, options)
    except ConfigError as exc:
        print(f"cosfs: {exc}", file=sys.stderr)
        return 1


def mount_command(args: argparse.Namespace, options: Options) -> int:
    bucket, prefix = split_bucket(args.bucket)
    mountpoint = check_mountpoint(args.mountpoint, any(name == "nonempty" for name, _ in options.fuse))
    store = build_store(bucket, dataclasses.replace(options, retries=min(options.retries, 1)))
    try:
        store.probe()
    except CosError as error:
        line = diagnose.explain(error, bucket, store.location, store.credentials.source, options.connect_timeout)
        print(f"cosfs: {line}", file=sys.stderr)
        return 1
    notes = recover_abandoned(bucket, options)
    try:
        from cosfs.command import daemon  # loads the FUSE binding and libfuse: fail before daemonizing
    except (ImportError, OSError) as exc:
        print(f"cosfs: cannot load FUSE ({exc}): install libfuse (apt-get install fuse3) and "
              "reinstall cosfs (it needs mfusepy)", file=sys.stderr)
        return 1
    if not os.path.exists("/dev/fuse"):
        print("cosfs: /dev/fuse is missing: load the fuse module (modprobe fuse) or, in a container, "
              "pass the device (--device /dev/fuse)", file=sys.stderr)
        return 1
    return daemon.run(args, options, bucket, prefix, mountpoint, notes)


def recover_abandoned(bucket: str, options: Options) -> List[str]:
    """Before mounting: store or set aside what a cosfs that stopped left in the staging area,
    and say so on the terminal (``cosfs recover`` does the same without mounting). Returns
    the lines said, for the daemon's log."""
    if not pending(staging_root(options, bucket)):
        return []
    try:
        resolutions = recover.recover(build_store(bucket, options), options, bucket)
    except CosError as error:
        lines = [f"warning: could not resolve what an earlier cosfs left in the staging area ({error}); "
                 f"run cosfs recover {bucket} later"]
    else:
        lines = recover.report_lines(resolutions)
    for line in lines:
        print(f"cosfs: {line}", file=sys.stderr)
    return lines
