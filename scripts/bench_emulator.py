#!/usr/bin/env python3
"""Loopback throughput of cosfs-emulator measured with boto3, next to the raw disk speed.

    python scripts/bench_emulator.py [--size-mib 1024] [--root DIR] [--threads 8]

One object of ``--size-mib`` MiB goes up and comes back four ways: a single-stream PUT and
GET, then a multipart upload with one part per thread and ranged GETs with one range per
thread. The disk line is what the same file system does without HTTP: write the file in
8 MiB blocks plus fsync (what the emulator does with every body), then read it with its
pages dropped from the cache (``POSIX_FADV_DONTNEED``). The emulator's GETs usually come
from the page cache, as the object was just written.

boto3 is told not to hash payloads (``payload_signing_enabled=False``,
``request_checksum_calculation=when_required``): the numbers are the server's, not the
client's SHA-256. Not run in CI. Without ``--root`` the emulator runs on a new temporary
directory, removed afterwards; a given ``--root`` is kept, minus the two objects and the
disk-test file the benchmark wrote.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

REPOSITORY = Path(__file__).resolve().parents[1]
BUCKET = "examplebucket-1250000000"
REGION = "ap-guangzhou"
SECRET_ID = "AKIDbenchbenchbenchbenchbenchbench00"
SECRET_KEY = "benchkeybenchkeybenchkeybenchkey"
MiB = 1024 * 1024
BLOCK = 8 * MiB


class Emulator:
    """``python -m cosfs.emulator`` on a free port; stopped with SIGTERM."""

    def __init__(self, root: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cosfs.emulator", "--root", str(root), "--port", "0", "--bucket", BUCKET,
             "--region", REGION, "--secret-id", SECRET_ID, "--secret-key", SECRET_KEY],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            raise SystemExit(f"bench_emulator: the emulator did not start (it said {line!r})")
        self.url = line.split()[-1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def s3_client(url: str):
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path", "payload_signing_enabled": False},
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
        max_pool_connections=32, retries={"max_attempts": 1}, read_timeout=600,
    )
    return boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id=SECRET_ID,
                        aws_secret_access_key=SECRET_KEY, config=config)


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# --- the disk without HTTP --------------------------------------------------------------------


def disk_write(path: Path, size: int) -> None:
    """Write ``size`` bytes in 8 MiB blocks and fsync, as the emulator stores a body."""
    block = os.urandom(BLOCK)
    with open(path, "wb") as out:
        for offset in range(0, size, BLOCK):
            out.write(block[:min(BLOCK, size - offset)])
        out.flush()
        os.fsync(out.fileno())


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def disk_read(path: Path) -> int:
    total = 0
    with open(path, "rb", buffering=0) as source:
        while True:
            data = source.read(BLOCK)
            if not data:
                return total
            total += len(data)


# --- the emulator through boto3 ---------------------------------------------------------------


def put_single(s3, key: str, source: Path) -> None:
    with open(source, "rb") as body:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentLength=source.stat().st_size)


def get_single(s3, key: str, size: int) -> None:
    received = sum(len(chunk) for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(BLOCK))
    if received != size:
        raise SystemExit(f"bench_emulator: GET returned {received} bytes, expected {size}")


def spans(size: int, count: int) -> List[Tuple[int, int]]:
    """``count`` (first, last) byte ranges covering ``size``, the last one taking the rest."""
    step = -(-size // count)
    return [(first, min(first + step, size) - 1) for first in range(0, size, step)]


def read_parts(source: Path, ranges: List[Tuple[int, int]]) -> List[bytes]:
    with open(source, "rb") as body:
        return [os.pread(body.fileno(), last - first + 1, first) for first, last in ranges]


def put_multipart(s3, key: str, parts: List[bytes], threads: int, complete_seconds: List[float]) -> None:
    """Upload ``parts`` in parallel and complete; the completion's own time goes to ``complete_seconds``."""
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]

    def send(number: int) -> dict:
        answer = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                Body=parts[number - 1])
        return {"PartNumber": number, "ETag": answer["ETag"]}

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(send, range(1, len(parts) + 1)))
    complete_seconds.append(timed(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})))


def get_ranged(s3, key: str, ranges: List[Tuple[int, int]], threads: int) -> None:
    def fetch(span: Tuple[int, int]) -> int:
        body = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={span[0]}-{span[1]}")["Body"]
        return sum(len(chunk) for chunk in body.iter_chunks(BLOCK))

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        received = sum(pool.map(fetch, ranges))
    if received != ranges[-1][1] + 1:
        raise SystemExit(f"bench_emulator: ranged GETs returned {received} bytes, expected {ranges[-1][1] + 1}")


# --- report -----------------------------------------------------------------------------------


def report(rows: List[Tuple[str, float]], size: int, args: argparse.Namespace, root: Path) -> str:
    lines = [
        f"command: {shlex.join([sys.executable] + sys.argv)}",
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"root:    {root} (object and disk file: {size // MiB} MiB; {args.threads} threads for the parallel lines)",
        "",
        f"{'measurement':<44} {'seconds':>8} {'MB/s':>8}",
        f"{'-' * 44} {'-' * 8} {'-' * 8}",
    ]
    lines += [f"{name:<44} {seconds:8.2f} {size / 1e6 / seconds:8.1f}" for name, seconds in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace, root: Path) -> str:
    size = args.size_mib * MiB
    emulator = Emulator(root)
    scratch = root / "bench-disk-test.bin"  # next to the emulator's data: the same file system
    rows: List[Tuple[str, float]] = []
    try:
        s3 = s3_client(emulator.url)
        rows.append(("disk: write + fsync (8 MiB blocks)", timed(lambda: disk_write(scratch, size))))
        drop_cache(scratch)
        rows.append(("disk: read, page cache dropped", timed(lambda: disk_read(scratch))))
        rows.append(("emulator PUT, single stream", timed(lambda: put_single(s3, "single.bin", scratch))))
        rows.append(("emulator GET, single stream", timed(lambda: get_single(s3, "single.bin", size))))
        ranges = spans(size, args.threads)
        parts, complete = read_parts(scratch, ranges), []
        rows.append((f"emulator PUT, multipart, {len(parts)} parts / {args.threads} threads",
                     timed(lambda: put_multipart(s3, "parallel.bin", parts, args.threads, complete))))
        rows.append(("  of which CompleteMultipartUpload", complete[0]))
        del parts
        rows.append((f"emulator GET, {len(ranges)} ranges / {args.threads} threads",
                     timed(lambda: get_ranged(s3, "parallel.bin", ranges, args.threads))))
        for key in ("single.bin", "parallel.bin"):
            s3.delete_object(Bucket=BUCKET, Key=key)
    finally:
        emulator.stop()
        scratch.unlink(missing_ok=True)
    return report(rows, size, args, root)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="object and disk-test size in MiB (default 1024)")
    parser.add_argument("--root", type=Path, help="emulator root (default: a new temporary directory)")
    parser.add_argument("--threads", type=int, default=8, help="threads (and parts, ranges) for the parallel lines")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.size_mib // args.threads < 5:
        parser.error("--size-mib / --threads must leave each part at least 5 MiB (S3's smallest part)")
    temporary = None if args.root else Path(tempfile.mkdtemp(prefix="cosfs-bench-"))
    root = (args.root or temporary / "root").resolve()
    try:
        print(run(args, root))
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
