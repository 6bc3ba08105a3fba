"""``cosfs status [MOUNTPOINT] [--json]``: what a mount is doing, asked of its daemon.

For each mount (the one named, or every live mount of this user) it prints the uploads in
progress with a progress bar, the bytes written and not yet stored, the staging cache's
use, requests, errors and retries per operation, and the last errors with their COS
request ids; or says "nothing pending: safe to unmount". ``--json`` prints the snapshot
document itself (``cosfs.command.snapshot``; a list of them without a mount point).

A path that is no cosfs mount of this user, or a mount whose daemon does not answer, is
one line on stderr and exit status 1. The bars are drawn by hand: the output is one
snapshot, not a live display, and twenty characters of ``#`` do not need a library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from cosfs.command.snapshot import SNAPSHOT_VERSION, Snapshot, UploadEntry, nothing_pending
from cosfs.command.status_socket import (
    NoAnswer,
    StaleSocket,
    live_mounts,
    query,
    remove_stale,
    runtime_directory,
    socket_path,
)

BAR_WIDTH = 24
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


# --- rendering --------------------------------------------------------------------------------

def human_bytes(count: float) -> str:
    """``1536`` to ``1.5 KiB``; bytes below 1 KiB as they are."""
    unit = 0
    while abs(count) >= 1024 and unit < len(_UNITS) - 1:
        count /= 1024
        unit += 1
    return f"{count:.0f} B" if unit == 0 else f"{count:.1f} {_UNITS[unit]}"


def human_duration(seconds: float) -> str:
    """``7384`` to ``2h03m``: the two largest units."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#########---------------]  38%``."""
    fraction = done / total if total > 0 else 1.0
    filled = int(fraction * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {int(fraction * 100):3d}%"


def upload_line(upload: UploadEntry) -> str:
    done, total = upload["bytes_done"], upload["bytes_total"]
    return (f"{progress_bar(done, total)}  {human_bytes(done)} / {human_bytes(total)}  "
            f"{human_bytes(upload['rate_bps'])}/s  {upload['path']}")


def render(snapshot: Snapshot, now: float) -> str:
    """The snapshot for a person: a header, what is pending, cache, requests, last errors."""
    mount, dirty, cache = snapshot["mount"], snapshot["dirty"], snapshot["cache"]
    source = mount["bucket"] + (f":/{mount['prefix'].rstrip('/')}" if mount["prefix"] else "")
    lines = [f"{mount['mountpoint']}: {source} over the {mount['api'].upper()} API "
             f"(pid {mount['pid']}, up {human_duration(now - mount['started'])})"]
    uploads = snapshot["uploads"]
    if nothing_pending(snapshot):
        lines.append("nothing pending: safe to unmount")
    else:
        lines.append(f"pending: {len(uploads)} upload(s) running, {dirty['files']} file(s) with "
                     f"{human_bytes(dirty['bytes'])} not yet stored in COS; unmounting now waits for them")
        lines.extend(f"  {upload_line(upload)}" for upload in uploads)
    lines.append(f"dirty: {dirty['files']} file(s), {human_bytes(dirty['bytes'])}")
    lines.append(f"cache: {human_bytes(cache['bytes'])} staged in {cache['directory']}, "
                 f"{human_bytes(cache['free_bytes'])} free")
    lines.extend(_request_table(snapshot["requests"]))
    lines.extend(_error_lines(snapshot["errors"]))
    return "\n".join(lines)


def _request_table(requests: Dict[str, Any]) -> List[str]:
    if not requests:
        return ["requests: none yet"]
    width = max(len("operation"), *(len(name) for name in requests))
    rows = [f"  {'operation':<{width}}  {'count':>8}  {'errors':>6}  {'retries':>7}  {'not found':>9}"]
    for name, counts in requests.items():
        rows.append(f"  {name:<{width}}  {counts['count']:>8}  {counts['errors']:>6}  {counts['retries']:>7}  "
                    f"{counts.get('not_found', 0):>9}")
    return ["requests:"] + rows


def _error_lines(errors: List[Dict[str, Any]]) -> List[str]:
    if not errors:
        return ["last errors: none"]
    lines = [f"last errors ({len(errors)}, newest last):"]
    for error in errors:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(error["time"]))
        key = f" {error['key']!r}" if error["key"] else ""
        request_id = f" [request id {error['request_id']}]" if error["request_id"] else ""
        lines.append(f"  {when}  {error['operation']}{key}: {error['code']} ({error['errno']}) "
                     f"{error['message']}{request_id}")
    return lines


# --- finding the mount ------------------------------------------------------------------------

def lexical_mountpoint(path: str) -> str:
    """The mount point as its daemon names it, resolving symlinks of the parent only: a stat
    of the mount point itself would go to the daemon, which may be the one not answering."""
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(os.path.realpath(parent), name) if name else parent


def cosfs_mount_types(mounts_file: str = "/proc/self/mounts") -> Dict[str, str]:
    """Mount point -> filesystem type, for telling "not a mount" from "another user's mount"."""
    found = {}
    try:
        with open(mounts_file, encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields = line.split()
                if len(fields) >= 3:
                    found[_unescape(fields[1])] = fields[2]
    except OSError:
        pass
    return found


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def _no_socket_line(given: str, mountpoint: str, path: Path) -> str:
    kind = cosfs_mount_types().get(mountpoint, "")
    if kind == "fuse.cosfs":
        return (f"{given} is a cosfs mount, but none of this user's daemons serves it (no {path}): run "
                "cosfs status as the user who mounted it")
    if kind:
        return f"{given} is a {kind} mount, not a cosfs mount"
    return f"{given} is not a cosfs mount (no status socket {path})"


# --- the command ------------------------------------------------------------------------------

Out = Callable[[str], None]


def _stdout(text: str) -> None:
    print(text)


def _stderr(text: str) -> None:
    print(f"cosfs status: {text}", file=sys.stderr)


def show_one(given: str, as_json: bool, out: Out = _stdout, err: Out = _stderr,
             directory: Optional[Path] = None) -> int:
    mountpoint = lexical_mountpoint(given)
    path = socket_path(mountpoint, directory)
    if not os.path.lexists(path):
        resolved = os.path.realpath(given)  # a symlink to the mount point, as a last resort
        if resolved != mountpoint and os.path.lexists(socket_path(resolved, directory)):
            mountpoint, path = resolved, socket_path(resolved, directory)
    try:
        if not os.path.lexists(path):
            raise FileNotFoundError(path)
        snapshot = query(path)
    except FileNotFoundError:
        err(_no_socket_line(given, mountpoint, path))
        return 1
    except StaleSocket:
        remove_stale(path)
        err(f"{given} is no longer served: its cosfs daemon is gone (removed its stale socket {path})")
        return 1
    except NoAnswer as silent:
        err(f"the cosfs daemon of {given} does not answer ({silent}); its log says why")
        return 1
    return _print(snapshot, as_json, out, err)


def show_all(as_json: bool, out: Out = _stdout, err: Out = _stderr, directory: Optional[Path] = None) -> int:
    directory = directory or runtime_directory()
    answered, silent = [], []
    for path, answer in live_mounts(directory):
        (silent if isinstance(answer, NoAnswer) else answered).append((path, answer))
    for path, problem in silent:
        err(f"the cosfs daemon behind {path} does not answer ({problem})")
    if not answered:
        if not silent:
            err(f"no cosfs mount of this user is running (no status socket in {directory})")
        return 1
    if as_json:
        out(json.dumps([snapshot for _, snapshot in answered], indent=2))
        return 1 if silent else 0
    status = 1 if silent else 0
    for index, (_, snapshot) in enumerate(answered):
        if index:
            out("")
        status = max(status, _print(snapshot, False, out, err))
    return status


def _print(snapshot: Dict[str, Any], as_json: bool, out: Out, err: Out) -> int:
    if as_json:
        out(json.dumps(snapshot, indent=2))
        return 0
    if snapshot.get("version") != SNAPSHOT_VERSION:
        err(f"the daemon speaks status version {snapshot.get('version')}, this cosfs reads version "
            f"{SNAPSHOT_VERSION}: run the cosfs that made the mount, or use --json")
        return 1
    out(render(snapshot, time.time()))
    return 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cosfs status",
        description="What a running cosfs mount is doing: uploads in progress, bytes not yet stored, cache use, "
                    "requests, retries and the last errors. Exit status 1 when a mount cannot be asked.")
    parser.add_argument("mountpoint", nargs="?", help="a cosfs mount point (default: every mount of this user)")
    parser.add_argument("--json", action="store_true", help="print the snapshot document for scripts")
    args = parser.parse_args(argv)
    if args.mountpoint is None:
        return show_all(args.json)
    return show_one(args.mountpoint, args.json)
