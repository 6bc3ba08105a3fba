"""``cosfs recover BUCKET-APPID [-o opt,...] [--list]``: resolve what a cosfs that stopped left
behind, without mounting.

A cosfs killed (or crashed) while files were being written leaves their data in its staging
directory, each file with a journal record (``cosfs.data.journal``). The next mount of the
bucket resolves them before it mounts; this command does the same on its own, or only lists
them (``--list``). Both report in one line per file what became of it
(``cosfs.data.recovery``): stored in COS, or moved to ``cache_dir/lost+found``.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, TextIO

from cosfs.command.options import Options, options_from_arguments
from cosfs.command.store_factory import build_store
from cosfs.command.write_path import staging_root, upload_policy
from cosfs.data.recovery import (
    DROPPED,
    KEPT,
    LOST_AND_FOUND,
    META_APPLIED,
    UPLOADED,
    Recovery,
    Resolution,
    lost_and_found_of,
    pending,
)
from cosfs.data.uploader import Uploader
from cosfs.store.interface import Store
from cosfs.wire.errors import ConfigError, CosError


def recover(store: Store, options: Options, bucket: str) -> List[Resolution]:
    """Resolve the abandoned staged data of ``bucket`` (what a mount does first)."""
    root = staging_root(options, bucket)
    uploader = Uploader(store, upload_policy(options))
    try:
        return Recovery(root, store, uploader, lost_and_found_of(root)).run()
    finally:
        uploader.close()


def report_lines(resolutions: List[Resolution]) -> List[str]:
    """What a person must hear: a summary of what was stored, a line for each file set aside."""
    lines = []
    stored = [r for r in resolutions if r.outcome == UPLOADED]
    if stored:
        names = ", ".join(r.key for r in stored[:5]) + (", ..." if len(stored) > 5 else "")
        lines.append(f"stored {len(stored)} file(s) that a cosfs which stopped had not stored yet: {names}")
    applied = [r for r in resolutions if r.outcome == META_APPLIED]
    if applied:
        names = ", ".join(r.key for r in applied[:5]) + (", ..." if len(applied) > 5 else "")
        lines.append(f"applied {len(applied)} mode/owner/time change(s) that a cosfs which stopped had "
                     f"held: {names}")
    for resolution in resolutions:
        if resolution.outcome == LOST_AND_FOUND:
            lines.append(f"warning: {resolution.key} was not stored: {resolution.reason}; its data is in "
                         f"{resolution.where}")
        elif resolution.outcome == KEPT:
            lines.append(f"warning: {resolution.key} is not stored yet: {resolution.reason}")
    return lines


def report(resolutions: List[Resolution], out: TextIO) -> None:
    for line in report_lines(resolutions):
        print(f"cosfs: {line}", file=out)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="cosfs recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("bucket", help="BUCKET-APPID (a :/prefix is ignored: recovery is per bucket)")
    parser.add_argument("-o", dest="options", action="append", default=[], help="the mount's options")
    parser.add_argument("--list", action="store_true", help="only list what is pending; change nothing")
    args = parser.parse_args(argv)
    bucket = args.bucket.partition(":")[0]
    try:
        options = options_from_arguments(args.options)
        if args.list:
            root = staging_root(options, bucket)
            records = pending(root)
            for record in records:
                print(f"{record.bucket}/{record.key}: {record.state}")
            print(f"{len(records)} file(s) pending in {root}")
            return 0
        resolutions = recover(build_store(bucket, options), options, bucket)
    except (ConfigError, CosError) as error:
        print(f"cosfs recover: {error}", file=sys.stderr)
        return 1
    report(resolutions, sys.stdout)
    dropped = sum(1 for r in resolutions if r.outcome == DROPPED)
    kept = sum(1 for r in resolutions if r.outcome == KEPT)
    print(f"{len(resolutions)} file(s) resolved ({dropped} already in COS or deleted), {kept} still pending")
    return 1 if kept else 0
