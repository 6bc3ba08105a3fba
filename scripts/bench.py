#!/usr/bin/env python3
"""Benchmark cosfs against the raw HTTP limit of the same cosfs-emulator (and s3fs/rclone if installed).

    python scripts/bench.py [--size-mib 256] [--files 1000] [--api xml] [--tools cosfs,s3fs,rclone]
    python scripts/bench.py --heads 2000 [--threads 8]

Everything runs in one go on one machine, so compare the ratios, not the absolute numbers
(these machines are shared and noisy). The raw limit is boto3 talking to the same server:
multipart PUT and ranged GETs with 8 threads, and LIST pages. Each mounted tool then does
the same work through its mount: write one large file, read it back after a remount (cold
page cache), create many small files, and `ls -l` them cold and warm. Writes are timed until
the data is in the bucket (a tool that uploads after `close` returns is waited for). Request
counts come from the emulator's admin endpoint.

``--heads N`` measures instead what one small request costs the client: N small objects with
metadata are put with boto3, then ``stat`` is called on each of them from ``--threads`` threads
through the real store stack (``build_store``), on both APIs. It reports stats per second and
the CPU time of this process per stat (the emulator runs in its own process), so a change to
signing, request building or answer parsing shows up in the CPU column even on a noisy machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPOSITORY = Path(__file__).resolve().parents[1]
BUCKET = "bench-1250000000"
SECRET_ID = "AKIDbenchbenchbenchbenchbenchbench00"
SECRET_KEY = "benchkeybenchkeybenchkeybenchkey"
MiB = 1024 * 1024


def env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))


class Emulator:
    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cosfs.emulator", "--root", str(root), "--port", "0", "--bucket", BUCKET,
             "--secret-id", SECRET_ID, "--secret-key", SECRET_KEY],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env())
        line = self.process.stdout.readline()
        self.url = line.split()[-1]

    def stats(self) -> Dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/-/admin/stats") as answer:
            return json.loads(answer.read())["requests"]

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/admin/stats/reset", method="POST")).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- the raw HTTP limit ----------------------------------------------------------------------


def raw_limit(emulator: Emulator, size: int, files: int) -> Dict[str, float]:
    from boto3.s3.transfer import TransferConfig

    s3 = client(emulator)
    transfer = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8)
    data = os.urandom(size)
    source = Path(tempfile.mkstemp()[1])
    source.write_bytes(data)
    target = source.with_suffix(".back")
    results = {
        "write MB/s": size / MiB / timed(lambda: s3.upload_file(str(source), BUCKET, "raw/big.bin", Config=transfer)),
        "read MB/s": size / MiB / timed(lambda: s3.download_file(BUCKET, "raw/big.bin", str(target), Config=transfer)),
    }
    source.unlink()
    target.unlink()
    small = os.urandom(4096)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        elapsed = timed(lambda: list(pool.map(
            lambda i: s3.put_object(Bucket=BUCKET, Key=f"raw/small/f{i:05d}", Body=small), range(files))))
    results["small files/s"] = files / elapsed
    paginator = s3.get_paginator("list_objects")
    results["list s"] = timed(lambda: [p for p in paginator.paginate(Bucket=BUCKET, Prefix="raw/small/",
                                                                        Delimiter="/")])
    return results


# --- a mounted tool --------------------------------------------------------------------------


def mount_cosfs(emulator: Emulator, mountpoint: Path, work: Path, api: str) -> subprocess.Popen:
    passwd = work / "passwd"
    passwd.write_text(f"{SECRET_ID}:{SECRET_KEY}\n")
    passwd.chmod(0o600)
    return subprocess.Popen(
        [sys.executable, "-m", "cosfs", BUCKET, str(mountpoint), "-f", "-o",
         f"api={api},endpoint={emulator.url},passwd_file={passwd},cache_dir={work / 'cache'},ensure_diskfree=0"],
        stdout=subprocess.DEVNULL, stderr=open(work / "cosfs.log", "ab"), env=env())


def mount_s3fs(emulator: Emulator, mountpoint: Path, work: Path, api: str) -> subprocess.Popen:
    passwd = work / "passwd-s3fs"
    passwd.write_text(f"{SECRET_ID}:{SECRET_KEY}\n")
    passwd.chmod(0o600)
    return subprocess.Popen(
        ["s3fs", BUCKET, str(mountpoint), "-f", "-o",
         f"url={emulator.url},use_path_request_style,passwd_file={passwd},endpoint=ap-guangzhou,sigv4"],
        stdout=subprocess.DEVNULL, stderr=open(work / "s3fs.log", "ab"))


def mount_rclone(emulator: Emulator, mountpoint: Path, work: Path, api: str) -> subprocess.Popen:
    config = {"RCLONE_CONFIG_COS_TYPE": "s3", "RCLONE_CONFIG_COS_PROVIDER": "Other",
              "RCLONE_CONFIG_COS_ENDPOINT": emulator.url, "RCLONE_CONFIG_COS_ACCESS_KEY_ID": SECRET_ID,
              "RCLONE_CONFIG_COS_SECRET_ACCESS_KEY": SECRET_KEY, "RCLONE_CONFIG_COS_FORCE_PATH_STYLE": "true"}
    return subprocess.Popen(
        ["rclone", "mount", f"cos:{BUCKET}", str(mountpoint), "--vfs-cache-mode", "writes",
         "--cache-dir", str(work / "rclone-cache")],
        stdout=subprocess.DEVNULL, stderr=open(work / "rclone.log", "ab"),
        env={**{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}, **config})  # rclone 1.60 rejects it


MOUNTERS = {"cosfs": mount_cosfs, "s3fs": mount_s3fs, "rclone": mount_rclone}


def wait_mounted(path: Path, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(path):
        if process.poll() is not None or time.monotonic() > deadline:
            logs = "\n".join(f"{log.name}: {log.read_text(errors='replace')[-2000:]}"
                              for log in path.parent.glob("*.log"))
            raise RuntimeError(f"{path} did not mount\n{logs}")
        time.sleep(0.05)


def unmount(path: Path, process: subprocess.Popen) -> None:
    subprocess.run(["fusermount3", "-u", str(path)], capture_output=True)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def client(emulator: Emulator):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=emulator.url, region_name="ap-guangzhou", aws_access_key_id=SECRET_ID,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))


def wait_stored(emulator: Emulator, prefix: str, count: int, min_size: int = 0, timeout: float = 600) -> None:
    """Until ``count`` objects of at least ``min_size`` bytes exist under ``prefix``: tools that upload
    after ``close`` returns (rclone) are timed until their data is really in the bucket."""
    s3 = client(emulator)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pages = s3.get_paginator("list_objects").paginate(Bucket=BUCKET, Prefix=prefix)
        found = [o for page in pages for o in page.get("Contents", []) if o["Size"] >= min_size]
        if len(found) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{count} objects under {prefix} did not arrive within {timeout} s")


def through_mount(tool: str, emulator: Emulator, work: Path, size: int, files: int, api: str) -> Dict[str, float]:
    mountpoint = work / f"mnt-{tool}"
    mountpoint.mkdir(exist_ok=True)
    mounter = MOUNTERS[tool]
    process = mounter(emulator, mountpoint, work, api)
    wait_mounted(mountpoint, process)
    data = os.urandom(size)
    results = {}

    def write_big() -> None:
        with open(mountpoint / f"{tool}-big.bin", "wb") as out:
            for start in range(0, size, MiB):
                out.write(data[start:start + MiB])

    results["write MB/s"] = size / MiB / timed(
        lambda: (write_big(), wait_stored(emulator, f"{tool}-big.bin", 1, size)))
    small = os.urandom(4096)
    small_dir = f"{tool}-small"
    (mountpoint / small_dir).mkdir()

    def write_small(index: int) -> None:
        (mountpoint / small_dir / f"f{index:05d}").write_bytes(small)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results["small files/s"] = files / timed(
            lambda: (list(pool.map(write_small, range(files))), wait_stored(emulator, f"{small_dir}/", files)))
    unmount(mountpoint, process)

    process = mounter(emulator, mountpoint, work, api)
    wait_mounted(mountpoint, process)
    emulator.reset()
    results["ls -l cold s"] = timed(lambda: subprocess.run(["ls", "-l", str(mountpoint / small_dir)],
                                                           capture_output=True, check=True))
    results["ls -l cold requests"] = sum(emulator.stats().values())
    emulator.reset()
    results["ls -l warm s"] = timed(lambda: subprocess.run(["ls", "-l", str(mountpoint / small_dir)],
                                                           capture_output=True, check=True))
    results["ls -l warm requests"] = sum(emulator.stats().values())

    def read_big() -> None:
        with open(mountpoint / f"{tool}-big.bin", "rb") as source:
            while source.read(MiB):
                pass

    results["read MB/s"] = size / MiB / timed(read_big)
    unmount(mountpoint, process)
    return results


# --- the cost of one small request ----------------------------------------------------------


def heads(emulator: Emulator, work: Path, count: int, threads: int, rounds: int) -> Dict[str, Dict[str, float]]:
    """Stats per second and client CPU ms per stat for each API, best of ``rounds`` runs."""
    sys.path.insert(0, str(REPOSITORY))  # this checkout's cosfs, not an installed one
    from cosfs.command.options import options_from_string
    from cosfs.command.store_factory import build_store

    s3 = client(emulator)
    keys = [f"heads/f{index:05d}" for index in range(count)]
    meta = {"mode": "33188", "uid": "0", "gid": "0", "mtime": "1600000000"}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata=meta), keys))
    passwd = work / "passwd"
    passwd.write_text(f"{SECRET_ID}:{SECRET_KEY}\n")
    passwd.chmod(0o600)
    results = {}
    for api in ("xml", "json"):
        store = build_store(BUCKET, options_from_string(f"api={api},endpoint={emulator.url},passwd_file={passwd}"))
        if store.stat(keys[0]) is None:
            raise RuntimeError(f"{api} store does not see {keys[0]}")
        best: Dict[str, float] = {}
        for _ in range(rounds):
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                cpu_started, started = time.process_time(), time.perf_counter()
                found = sum(info is not None for info in pool.map(store.stat, keys))
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if found != count:
                raise RuntimeError(f"{api}: {found} of {count} objects found")
            if not best or cpu < best["cpu_ms"] * count / 1000:
                best = {"heads_per_s": count / elapsed, "cpu_ms": cpu / count * 1000}
        results[api] = best
    return results


def heads_table(results: Dict[str, Dict[str, float]]) -> str:
    lines = ["| API | stats/s | client CPU ms per stat |", "|---|---|---|"]
    for api, values in results.items():
        lines.append(f"| {api} | {values['heads_per_s']:,.0f} | {values['cpu_ms']:.3f} |")
    return "\n".join(lines)


def table(rows: Dict[str, Dict[str, float]], baseline: Dict[str, float]) -> str:
    metrics = ["write MB/s", "read MB/s", "small files/s", "ls -l cold s", "ls -l cold requests",
               "ls -l warm s", "ls -l warm requests"]
    lines = ["| metric | raw HTTP (boto3) | " + " | ".join(rows) + " |",
             "|---|---|" + "---|" * len(rows)]
    for metric in metrics:
        cells = []
        for values in rows.values():
            value = values.get(metric)
            base = baseline.get(metric)
            ratio = f" ({value / base:.0%})" if value is not None and base and metric.endswith("/s") else ""
            cells.append("—" if value is None else f"{value:,.2f}{ratio}")
        base_cell = f"{baseline[metric]:,.2f}" if metric in baseline else "—"
        lines.append(f"| {metric} | {base_cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="size of the large file")
    parser.add_argument("--files", type=int, default=1000, help="number of 4 KiB files")
    parser.add_argument("--api", default="xml", choices=["xml", "json"], help="cosfs's API")
    parser.add_argument("--tools", default="cosfs,s3fs,rclone", help="mounts to measure (skipped if not installed)")
    parser.add_argument("--heads", type=int, default=0, metavar="N",
                        help="instead: stat N small objects through the store and report CPU per stat")
    parser.add_argument("--threads", type=int, default=8, help="threads calling stat (with --heads)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per API, the least CPU kept (with --heads)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cosfs-bench-"))
    emulator = Emulator(work / "root")
    try:
        if args.heads:
            results = heads(emulator, work, args.heads, args.threads, args.rounds)
            print(f"$ python scripts/bench.py --heads {args.heads} --threads {args.threads} --rounds {args.rounds}")
            print(f"{os.cpu_count()} CPUs; emulator on loopback; best of {args.rounds} runs by client CPU\n")
            print(heads_table(results))
            return 0
        size = args.size_mib * MiB
        baseline = raw_limit(emulator, size, args.files)
        rows = {}
        for tool in args.tools.split(","):
            if tool != "cosfs" and shutil.which(tool) is None:
                print(f"{tool}: not installed, skipped", file=sys.stderr)
                continue
            rows[tool if tool != "cosfs" else f"cosfs (api={args.api})"] = through_mount(
                tool, emulator, work, size, args.files, args.api)
        print(f"$ python scripts/bench.py --size-mib {args.size_mib} --files {args.files} --api {args.api}")
        print(f"{os.cpu_count()} CPUs; emulator on loopback; ratios are against the raw HTTP column\n")
        print(table(rows, baseline))
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
