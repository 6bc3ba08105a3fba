#!/usr/bin/env python3
"""Benchmark cosfs against the raw HTTP limit of the same cosfs-emulator (and s3fs/rclone if installed).

    python scripts/bench.py [--size-mib 256] [--files 1000] [--api xml] [--tools cosfs,s3fs,rclone]
    python scripts/bench.py --heads 2000 [--threads 8]
    python scripts/bench.py --listing 1000,10000 [--latency-ms 0,10] [--tools cosfs,s3fs,rclone] [--json FILE]
    python scripts/bench.py --large [--large-gib 1] [--huge-gib 4] [--scale-mib 1,16,256] [--rsync-files 3000]

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

``--listing N,N`` times what an object-store mount is judged on: ``ls -l``, ``find -type f`` and
``du -s`` of a directory of N one-byte files (put once through boto3 with the mode/uid/gid/mtime
metadata s3fs and cosfs write, then reused for every latency and tool; ``--root DIR`` keeps them for
the next run). Each command runs cold (fresh mount, empty cache directory), warm (the same mount right
after) and remounted (unmounted and mounted again on the same cache directory, where cosfs keeps its
attribute database; s3fs and rclone keep no metadata on disk). One markdown table per ``--latency-ms``
(set on the emulator between runs): seconds per tool, cosfs's speed against s3fs with the target of
issue 10, and LIST / HEAD / other requests counted by the emulator; ``--json FILE`` keeps the runs.

``--large`` measures issue 11's large-file and rsync rows for the raw line and each tool, one after the other
on one emulator: writes of every size (``dd bs=1M`` from one local random file, timed until the object is
in the bucket; the scaling table, with each write's peak RSS and local disk), the ``--large-gib`` object
read after a remount on an empty cache directory, 1 MiB appended to it (``cat >>``, also as a share of its
write time) and 4 KiB rewritten in its middle (``dd conv=notrunc``), both on server-side copies of the raw
line's object, then ``rsync -a`` of a tree of ``--rsync-files`` 4 KiB files into a fresh mount: files per
second and the emulator's requests per file. Each result is checked against the bucket (``WRONG`` when it
differs). Disk needed: about three times ``--huge-gib`` (the local source, the tool's staging, the bucket).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

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

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/-/admin/stats", timeout=10) as answer:
            return json.loads(answer.read())["requests"]

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/-/admin/stats/reset", method="POST"),
                               timeout=10).read()

    def set_latency(self, milliseconds: int) -> None:
        """Every request answered ``milliseconds`` later (the emulator's ``latency_ms`` fault)."""
        body = json.dumps({"latency_ms": milliseconds}).encode()
        request = urllib.request.Request(f"{self.url}/-/admin/faults", data=body, method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` and its threads so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# --- the raw HTTP limit ----------------------------------------------------------------------


def raw_limit(emulator: Emulator, size: int, files: int) -> dict[str, float]:
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


def mount_cosfs(emulator: Emulator, mountpoint: Path, work: Path, api: str, cache: Path) -> subprocess.Popen:
    passwd = work / "passwd"
    passwd.write_text(f"{SECRET_ID}:{SECRET_KEY}\n")
    passwd.chmod(0o600)
    return subprocess.Popen(
        [sys.executable, "-m", "cosfs", BUCKET, str(mountpoint), "-f", "-o",
         f"api={api},endpoint={emulator.url},passwd_file={passwd},cache_dir={cache},ensure_diskfree=0"],
        stdout=subprocess.DEVNULL, stderr=open(work / "cosfs.log", "ab"), env=env())


def mount_s3fs(emulator: Emulator, mountpoint: Path, work: Path, api: str, cache: Path) -> subprocess.Popen:
    """s3fs keeps no metadata on disk (``cache`` is unused); its stat cache holds 200,000 entries instead of
    100,000 so that a warm listing of 100,000 files is answered from it, as cosfs's is."""
    passwd = work / "passwd-s3fs"
    passwd.write_text(f"{SECRET_ID}:{SECRET_KEY}\n")
    passwd.chmod(0o600)
    return subprocess.Popen(
        ["s3fs", BUCKET, str(mountpoint), "-f", "-o",
         (f"url={emulator.url},use_path_request_style,passwd_file={passwd},endpoint=ap-guangzhou,sigv4,"
          "max_stat_cache_size=200000")],
        stdout=subprocess.DEVNULL, stderr=open(work / "s3fs.log", "ab"))


def mount_rclone(emulator: Emulator, mountpoint: Path, work: Path, api: str, cache: Path) -> subprocess.Popen:
    config = {"RCLONE_CONFIG_COS_TYPE": "s3", "RCLONE_CONFIG_COS_PROVIDER": "Other",
              "RCLONE_CONFIG_COS_ENDPOINT": emulator.url, "RCLONE_CONFIG_COS_ACCESS_KEY_ID": SECRET_ID,
              "RCLONE_CONFIG_COS_SECRET_ACCESS_KEY": SECRET_KEY, "RCLONE_CONFIG_COS_FORCE_PATH_STYLE": "true"}
    return subprocess.Popen(
        ["rclone", "mount", f"cos:{BUCKET}", str(mountpoint), "--vfs-cache-mode", "writes",
         "--cache-dir", str(cache)],
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
    subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, check=False)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


def client(emulator: Emulator, connections: int = 16):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=emulator.url, region_name="ap-guangzhou", aws_access_key_id=SECRET_ID,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=connections))


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


def through_mount(tool: str, emulator: Emulator, work: Path, size: int, files: int, api: str) -> dict[str, float]:
    mountpoint = work / f"mnt-{tool}"
    mountpoint.mkdir(exist_ok=True)
    mounter = MOUNTERS[tool]
    cache = work / f"{tool}-cache"
    process = mounter(emulator, mountpoint, work, api, cache)
    wait_mounted(mountpoint, process)
    data = os.urandom(size)
    results = {}

    def write_big() -> None:
        with open(mountpoint / f"{tool}-big.bin", "wb") as out:
            out.writelines(data[start:start + MiB] for start in range(0, size, MiB))

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

    process = mounter(emulator, mountpoint, work, api, cache)
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


# --- listings --------------------------------------------------------------------------------

#: The commands timed on a directory of N files: ``ls -l`` and ``du -s`` stat every entry; ``find -type f``
#: may be answered from the directory entries' types alone.
LISTING_SCENARIOS = ("ls -l", "find -type f", "du -s")
#: cold: fresh mount and empty cache directory; warm: the same mount right after; remounted: unmounted and
#: mounted again on the same cache directory (only cosfs keeps attributes there).
LISTING_STATES = ("cold", "warm", "remounted")
#: What each state must reach, as s3fs's seconds over cosfs's (issue 10).
LISTING_TARGETS = {"cold": 0.9, "warm": 1.0, "remounted": 10.0}
LIST_OPERATIONS = {"xml.ListObjects", "xml.ListObjectsV2", "json.list"}
HEAD_OPERATIONS = {"xml.HeadObject", "json.stat"}
#: What s3fs and cosfs write for a file's attributes (``x-cos-meta-*``, ``x-amz-meta-*`` through boto3).
FILE_META = {"mode": str(0o100644), "uid": "0", "gid": "0", "mtime": "1600000000"}
DIRECTORY_META = {"mode": str(0o040755), "uid": "0", "gid": "0", "mtime": "1600000000"}


def parse_counts(text: str) -> list[int]:
    """``"1000,10000"`` -> ``[1000, 10000]``: positive whole numbers, each once, in the order given."""
    counts: list[int] = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        if not part.isdigit() or int(part) <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: give positive whole numbers separated by commas, "
                                             "e.g. 1000,10000")
        if int(part) not in counts:
            counts.append(int(part))
    return counts


def parse_latencies(text: str) -> list[int]:
    """``"0,10"`` -> ``[0, 10]``: milliseconds the emulator adds to every request, zero allowed."""
    latencies: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r}: give whole milliseconds separated by commas, e.g. 0,10")
        if int(part) not in latencies:
            latencies.append(int(part))
    return latencies


def request_split(counts: dict[str, int]) -> dict[str, int]:
    """The emulator's per-operation counters as LIST, HEAD and everything else."""
    split = {"list": 0, "head": 0, "other": 0}
    for operation, count in counts.items():
        kind = "list" if operation in LIST_OPERATIONS else "head" if operation in HEAD_OPERATIONS else "other"
        split[kind] += count
    return split


def listing_directory(files: int) -> str:
    return f"list-{files}"


def fill_listing(emulator: Emulator, files: int, threads: int) -> float | None:
    """Put ``files`` one-byte objects with attribute metadata under ``list-N/`` (and its directory object)
    through boto3; seconds it took, None when the emulator's root already holds them (``--root``)."""
    s3 = client(emulator, threads)
    prefix = listing_directory(files) + "/"
    pages = s3.get_paginator("list_objects").paginate(Bucket=BUCKET, Prefix=prefix)
    if sum(len(page.get("Contents", [])) for page in pages) == files + 1:
        return None
    keys = [f"{prefix}f{index:06d}" for index in range(files)]
    started = time.perf_counter()
    s3.put_object(Bucket=BUCKET, Key=prefix, Body=b"", Metadata=DIRECTORY_META)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=b"x", Metadata=FILE_META), keys))
    return time.perf_counter() - started


def fill_cell(seconds: float | None) -> str:
    return "already in --root" if seconds is None else f"{seconds:.1f} s"


def run_scenario(scenario: str, directory: Path) -> int | None:
    """Run one listing command on ``directory``; the number of files it showed (None for ``du``)."""
    if scenario == "ls -l":
        shown = subprocess.run(["ls", "-l", str(directory)], stdout=subprocess.PIPE, check=True).stdout
        return shown.count(b"\n") - 1  # the "total" line
    if scenario == "find -type f":
        shown = subprocess.run(["find", str(directory), "-type", "f"], stdout=subprocess.PIPE, check=True).stdout
        return shown.count(b"\n")
    subprocess.run(["du", "-s", str(directory)], stdout=subprocess.DEVNULL, check=True)
    return None


def listing_for_tool(tool: str, emulator: Emulator, work: Path, api: str, files: int,
                     latency_ms: int) -> list[dict[str, object]]:
    """Each scenario cold, warm and remounted through ``tool``: seconds, requests by kind, files shown."""
    mountpoint = work / f"mnt-{tool}"
    mountpoint.mkdir(exist_ok=True)
    mounter = MOUNTERS[tool]
    runs: list[dict[str, object]] = []
    for scenario in LISTING_SCENARIOS:
        cache = work / f"{tool}-listing-cache"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()
        for state in LISTING_STATES:
            if state != "warm":
                process = mounter(emulator, mountpoint, work, api, cache)
            try:
                if state != "warm":
                    wait_mounted(mountpoint, process)
                emulator.reset()
                client_cpu, server_cpu = cpu_seconds(process.pid), cpu_seconds(emulator.process.pid)
                started = time.perf_counter()
                shown = run_scenario(scenario, mountpoint / listing_directory(files))
                seconds = time.perf_counter() - started
                client_cpu = cpu_seconds(process.pid) - client_cpu
                server_cpu = cpu_seconds(emulator.process.pid) - server_cpu
                requests = request_split(emulator.stats())
            except BaseException:
                unmount(mountpoint, process)
                raise
            if state != "cold":
                unmount(mountpoint, process)
            runs.append({"latency_ms": latency_ms, "files": files, "scenario": scenario, "state": state,
                         "tool": tool, "seconds": round(seconds, 3), "requests": requests, "shown": shown,
                         "client_cpu": round(client_cpu, 2), "server_cpu": round(server_cpu, 2)})
            print(f"  {latency_ms} ms, N={files:,}, {tool}, {scenario}, {state}: {seconds:.2f} s, "
                  f"LIST/HEAD/other {requests_cell(requests)}, CPU s {tool} {client_cpu:.2f} "
                  f"emulator {server_cpu:.2f}", file=sys.stderr)
        shutil.rmtree(cache, ignore_errors=True)
    return runs


def requests_cell(requests: dict[str, int]) -> str:
    return f"{requests['list']:,} / {requests['head']:,} / {requests['other']:,}"


def listing_table(runs: list[dict[str, object]], latency_ms: int) -> str:
    """One markdown table of the runs at ``latency_ms``: a row per scenario, N and state, a column of seconds
    per tool, cosfs's speed against s3fs's (s3fs seconds / cosfs seconds: above 1, cosfs is faster) with
    its target, the requests cosfs and s3fs sent (LIST / HEAD / other), and the CPU seconds the mount's
    process and the emulator spent (on 2 cores, a client's CPU is taken from the emulator's)."""
    runs = [run for run in runs if run["latency_ms"] == latency_ms]
    tools = list(dict.fromkeys(str(run["tool"]) for run in runs))
    cells = {(run["scenario"], run["files"], run["state"], run["tool"]): run for run in runs}
    compared = "cosfs" in tools and "s3fs" in tools
    counted = [tool for tool in ("cosfs", "s3fs") if tool in tools]
    header = ["scenario", "N", "state"] + [f"{tool} s" for tool in tools]
    header += ["cosfs speed vs s3fs (target)"] if compared else []
    header += [f"{tool} requests LIST / HEAD / other" for tool in counted]
    header += [f"CPU s {tool} / emulator" for tool in counted]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scenario in LISTING_SCENARIOS:
        for files in dict.fromkeys(run["files"] for run in runs):
            for state in LISTING_STATES:
                row = [cells.get((scenario, files, state, tool)) for tool in tools]
                if not any(row):
                    continue
                line = [f"`{scenario}`", f"{files:,}", state]
                line += ["—" if run is None else f"{seconds_cell(float(run['seconds']))}{incomplete(run)}"
                         for run in row]
                if compared:
                    line.append(speed_cell(cells.get((scenario, files, state, "cosfs")),
                                           cells.get((scenario, files, state, "s3fs")), LISTING_TARGETS[state]))
                for tool in counted:
                    run = cells.get((scenario, files, state, tool))
                    line.append("—" if run is None else requests_cell(run["requests"]))
                for tool in counted:
                    run = cells.get((scenario, files, state, tool))
                    line.append("—" if run is None or "client_cpu" not in run
                                else f"{run['client_cpu']:.2f} / {run['server_cpu']:.2f}")
                lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def seconds_cell(seconds: float) -> str:
    """Three decimals below a tenth of a second, where a warm run's milliseconds still differ; two above."""
    return f"{seconds:.3f}" if seconds < 0.1 else f"{seconds:,.2f}"


def incomplete(run: dict[str, object]) -> str:
    """A mark on a run that showed another number of files than there are."""
    shown = run.get("shown")
    return "" if shown is None or shown == run["files"] else f" (showed {shown:,})"


def speed_cell(cosfs: dict[str, object] | None, s3fs: dict[str, object] | None, target: float) -> str:
    if cosfs is None or s3fs is None:
        return "—"
    speed = float(s3fs["seconds"]) / max(float(cosfs["seconds"]), 0.001)
    return f"{speed:.2f}× (≥ {target:g}× {'met' if speed >= target else 'MISSED'})"


def listings(emulator: Emulator, work: Path, args: argparse.Namespace, tools: list[str]) -> dict[str, object]:
    """Fill once, then every latency × N × tool; the runs and the fill times, as ``--json`` writes them."""
    fill_seconds = {}
    emulator.set_latency(0)
    for files in args.listing:
        seconds = fill_listing(emulator, files, args.fill_threads)
        fill_seconds[files] = None if seconds is None else round(seconds, 1)
        print(f"fill {files:,} files: {fill_cell(seconds)}", file=sys.stderr)
    runs: list[dict[str, object]] = []
    for latency_ms in args.latency_ms:
        emulator.set_latency(latency_ms)
        for files in args.listing:
            for tool in tools:
                runs.extend(listing_for_tool(tool, emulator, work, args.api, files, latency_ms))
    emulator.set_latency(0)
    return {"fill_seconds": fill_seconds, "runs": runs}


# --- the cost of one small request ----------------------------------------------------------


def heads(emulator: Emulator, work: Path, count: int, threads: int, rounds: int) -> dict[str, dict[str, float]]:
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
        best: dict[str, float] = {}
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


def heads_table(results: dict[str, dict[str, float]]) -> str:
    lines = ["| API | stats/s | client CPU ms per stat |", "|---|---|---|"]
    for api, values in results.items():
        lines.append(f"| {api} | {values['heads_per_s']:,.0f} | {values['cpu_ms']:.3f} |")
    return "\n".join(lines)


def table(rows: dict[str, dict[str, float]], baseline: dict[str, float]) -> str:
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


# --- large files and rsync (issue 11) --------------------------------------------------------

GiB = 1024 * MiB
#: Issue 11's append and rewrite: a MiB added at the end of the large object, 4 KiB replaced in its middle.
APPEND_BYTES = MiB
REWRITE_BYTES = 4096
#: The rsync tree: files of 4 KiB (as the throughput mode's small files), this many a directory.
RSYNC_FILE_BYTES = 4096
RSYNC_FILES_PER_DIRECTORY = 100
#: Issue 11's targets for cosfs: the append under 5% of the large write's time, rsync at twice s3fs's
#: files per second and at most 4 requests per file on the XML API.
APPEND_TARGET = 0.05
RSYNC_SPEED_TARGET = 2.0
RSYNC_REQUESTS_TARGET = 4.0
#: How often the local disk and RSS of a tool are sampled while it writes.
SAMPLE_SECONDS = 0.05


def parse_gib(text: str) -> int:
    """``"0.25"`` -> 256: a size given in GiB on the command line, as the whole MiB the bench works in."""
    try:
        mib = float(text) * 1024
    except ValueError:
        mib = 0.0
    if mib < 1 or mib != int(mib):
        raise argparse.ArgumentTypeError(f"{text!r}: give GiB that make whole MiB, at least 1 MiB "
                                         "(1, 0.25, 0.0078125 for 8 MiB)")
    return int(mib)


def size_label(mib: int) -> str:
    return f"{mib // 1024:,} GiB" if mib % 1024 == 0 else f"{mib:,} MiB"


def status_kib(text: str, field: str) -> int | None:
    """One ``kB`` field of ``/proc/PID/status`` (``VmHWM:\\t  1234 kB`` -> 1234); None when it is absent
    (a kernel thread, or a process that has exited)."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number, _, unit = value.strip().partition(" ")
            if unit.strip() != "kB" or not number.isdigit():
                raise ValueError(f"unexpected {field} line in /proc/PID/status: {line!r}")
            return int(number)
    return None


def local_disk_bytes(directory: Path, pid: int | None) -> int:
    """Disk blocks (``st_blocks`` × 512) of the files under ``directory`` plus those of the deleted regular
    files process ``pid`` holds open: s3fs without ``use_cache`` keeps its temporary files that way (in
    /tmp), invisible to a walk of any directory. A file counts once, however many names or descriptors."""
    seen = set()
    total = 0

    def add(status: os.stat_result) -> None:
        nonlocal total
        if stat.S_ISREG(status.st_mode) and (status.st_dev, status.st_ino) not in seen:
            seen.add((status.st_dev, status.st_ino))
            total += status.st_blocks * 512

    for root, _, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(OSError):
                add(os.lstat(os.path.join(root, name)))
    if pid is not None:
        with contextlib.suppress(OSError):
            for descriptor in os.listdir(f"/proc/{pid}/fd"):
                path = f"/proc/{pid}/fd/{descriptor}"
                with contextlib.suppress(OSError):
                    if os.readlink(path).endswith(" (deleted)"):
                        add(os.stat(path))
    return total


class PeakWatch:
    """The peak RSS and local disk of a tool's process while one action runs. The RSS is the kernel's own
    peak (``VmHWM``), reset when the watch starts by writing 5 to ``/proc/PID/clear_refs``; where that is
    refused, the peak of ``VmRSS`` sampled with the disk every ``SAMPLE_SECONDS`` stands in for it. The disk
    is what the action added at its peak: a tool's cache may still hold earlier files (rclone keeps what it
    uploaded), which are not this write's cost."""

    def __init__(self, pid: int, directory: Path) -> None:
        self.pid, self.directory = pid, directory
        self.peak_rss_kib = 0
        self.peak_disk = 0
        self.disk_at_start = 0
        self.exact_rss = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.exact_rss = True
        except OSError:
            self.exact_rss = False
        self.disk_at_start = local_disk_bytes(self.directory, self.pid)
        self._sample()
        self._thread.start()

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self.exact_rss:
            with contextlib.suppress(OSError):
                self.peak_rss_kib = max(self.peak_rss_kib,
                                        status_kib(Path(f"/proc/{self.pid}/status").read_text(), "VmHWM") or 0)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        with contextlib.suppress(OSError):
            rss = status_kib(Path(f"/proc/{self.pid}/status").read_text(), "VmRSS") or 0
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.peak_disk = max(self.peak_disk, local_disk_bytes(self.directory, self.pid))


class Poller:
    """boto3 asking the bucket whether a tool's work has arrived (rclone uploads after ``close`` returns),
    counting the requests it sends so that they are taken out of the emulator's counters."""

    def __init__(self, emulator: Emulator) -> None:
        self.s3 = client(emulator)
        self.requests = 0
        self.s3.meta.events.register("before-send", self._count)

    def _count(self, **_: object) -> None:
        self.requests += 1

    def until(self, check: Callable[[], bool], what: str, interval: float = 0.05, timeout: float = 1800) -> None:
        """Until ``check()`` holds, asking every ``interval`` seconds (a listing of thousands of keys less
        often than a HEAD: the polls share the 2 CPUs with the tool they wait for)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not in the bucket within {timeout:.0f} s")
            time.sleep(interval)

    def size(self, key: str) -> int | None:
        try:
            return self.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        except self.s3.exceptions.ClientError:
            return None

    def read(self, key: str, start: int, length: int) -> bytes:
        try:
            answer = self.s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={start}-{start + length - 1}")
        except self.s3.exceptions.ClientError:
            return b""
        return answer["Body"].read()

    def keys(self, prefix: str) -> set:
        pages = self.s3.get_paginator("list_objects").paginate(Bucket=BUCKET, Prefix=prefix)
        return {entry["Key"] for page in pages for entry in page.get("Contents", [])}

    def delete_prefix(self, prefix: str) -> None:
        keys = sorted(self.keys(prefix))
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key}
                                                                       for key in keys[start:start + 1000]]})


class SeekableStream(io.RawIOBase):
    """A raw stream with a position that ``seek`` moves (never below 0) relative to its start, itself or
    its ``end``."""

    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    @property
    def end(self) -> int:
        raise NotImplementedError

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.end}[whence]
        self._position = max(0, base + offset)
        return self._position


class FilePrefix(SeekableStream):
    """The first ``size`` bytes of a file, seekable: boto3 uploads it as it would a file of that size, so
    one local file of the largest size serves every size of the scaling table."""

    def __init__(self, path: Path, size: int) -> None:
        super().__init__()
        self._descriptor = os.open(path, os.O_RDONLY)
        self._size = size

    @property
    def end(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.pread(self._descriptor, max(0, min(len(buffer), self._size - self._position)), self._position)
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._descriptor)
        super().close()


class NullSink(SeekableStream):
    """Where boto3's parallel ranged GETs write when only their speed matters (a tool's read goes to no
    file either); ``size`` is how far they wrote, to check that everything came."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    @property
    def end(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._position += len(data)
        self.size = max(self.size, self._position)
        return len(data)


class LargeSources:
    """The local files every tool reads from: one random file of the largest size (each write takes a prefix),
    the MiB appended, the 4 KiB rewritten and the rsync tree."""

    def __init__(self, work: Path, largest_mib: int, rsync_files: int) -> None:
        self.big = work / "source.bin"
        with open(self.big, "wb") as out:
            out.writelines(os.urandom(min(8 * MiB, largest_mib * MiB - start))
                           for start in range(0, largest_mib * MiB, 8 * MiB))
        self.append = work / "append.bin"
        self.append.write_bytes(os.urandom(APPEND_BYTES))
        self.rewrite = work / "rewrite.bin"
        self.rewrite.write_bytes(os.urandom(REWRITE_BYTES))
        self.tree = work / "rsync-source"
        self.tree_files = [rsync_path(index) for index in range(rsync_files)]
        for name in self.tree_files:
            (self.tree / name).parent.mkdir(parents=True, exist_ok=True)
            (self.tree / name).write_bytes(os.urandom(RSYNC_FILE_BYTES))

    def piece(self, start: int, length: int) -> bytes:
        with open(self.big, "rb") as source:
            source.seek(start)
            return source.read(length)


def rsync_path(index: int) -> str:
    """The ``index``-th file of the rsync tree, ``d000/f00000``: ``RSYNC_FILES_PER_DIRECTORY`` a directory."""
    return f"d{index // RSYNC_FILES_PER_DIRECTORY:03d}/f{index:05d}"


def measure(tool: str, scenario: str, size_mib: int, emulator: Emulator, poller: Poller,
            action: Callable[[], object], settle: Callable[[], object], check: Callable[[], bool],
            process: subprocess.Popen | None = None, cache: Path | None = None) -> dict[str, object]:
    """Time ``action`` to its end (the ``close``) and then ``settle`` (until the bucket holds the result),
    with the CPU of the tool's process (of this process for the raw line) and of the emulator, the
    requests the emulator answered (the poller's excepted) and, for a tool, its peak RSS and local disk;
    ``check`` (after all that) says whether the result is right."""
    emulator.reset()
    poller.requests = 0
    own_cpu = process is None
    client_cpu = time.process_time() if own_cpu else cpu_seconds(process.pid)
    server_cpu = cpu_seconds(emulator.process.pid)
    watch = None if own_cpu else PeakWatch(process.pid, cache)
    if watch is not None:
        watch.start()
    try:
        started = time.perf_counter()
        action()
        closed = time.perf_counter() - started
        settle()
        seconds = time.perf_counter() - started
    finally:
        if watch is not None:
            watch.finish()
    client_cpu = (time.process_time() if own_cpu else cpu_seconds(process.pid)) - client_cpu
    server_cpu = cpu_seconds(emulator.process.pid) - server_cpu
    requests = sum(emulator.stats().values()) - poller.requests
    run: dict[str, object] = {
        "tool": tool, "scenario": scenario, "size_mib": size_mib, "seconds": round(seconds, 3),
        "close_seconds": round(closed, 3), "requests": requests, "client_cpu": round(client_cpu, 2),
        "server_cpu": round(server_cpu, 2)}
    if watch is not None:
        run.update(peak_rss_mib=round(watch.peak_rss_kib / 1024, 1),
                   peak_disk_mib=round((watch.peak_disk - watch.disk_at_start) / MiB, 1), rss_is_vmhwm=watch.exact_rss)
    run["ok"] = bool(check())
    size = f" {size_label(size_mib)}" if size_mib else ""
    print(f"  {tool}, {scenario}{size}: {seconds:.2f} s (close {closed:.2f} s), {requests:,} requests"
          f"{'' if run['ok'] else ', WRONG RESULT'}", file=sys.stderr)
    return run


def large_raw(emulator: Emulator, sources: LargeSources, sizes: list[int], large_mib: int,
              rsync_files: int) -> list[dict[str, object]]:
    """The raw limit: boto3 with 8 threads and 8 MiB parts writes each size and reads the large object back;
    the rsync line is the tree's files put with 8 threads. ``large/raw-N`` stays: the tools' appends and
    rewrites start from server-side copies of it."""
    from boto3.s3.transfer import TransferConfig

    poller = Poller(emulator)
    s3 = client(emulator)
    transfer = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8)
    runs = []
    for mib in sizes:
        key = f"large/raw-{mib}"
        with FilePrefix(sources.big, mib * MiB) as view:
            runs.append(measure("raw", "write", mib, emulator, poller,
                                lambda view=view, key=key: s3.upload_fileobj(view, BUCKET, key, Config=transfer),
                                lambda: None, lambda key=key, mib=mib: poller.size(key) == mib * MiB))
        if mib != large_mib:
            s3.delete_object(Bucket=BUCKET, Key=key)
    sink = NullSink()
    runs.append(measure("raw", "read", large_mib, emulator, poller,
                        lambda: s3.download_fileobj(BUCKET, f"large/raw-{large_mib}", sink, Config=transfer),
                        lambda: None, lambda: sink.size == large_mib * MiB))

    runs.append(raw_append(emulator, poller, s3, sources, large_mib))

    def put(name: str) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"rsync-raw/{name}", Body=(sources.tree / name).read_bytes())

    def put_all() -> None:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(put, sources.tree_files))

    runs.append(measure("raw", "rsync", 0, emulator, poller, put_all, lambda: None,
                        lambda: len(poller.keys("rsync-raw/")) == rsync_files))
    runs[-1]["files"] = rsync_files
    poller.delete_prefix("rsync-raw/")
    return runs


def raw_append(emulator: Emulator, poller: Poller, s3, sources: LargeSources, large_mib: int) -> dict[str, object]:
    """The least an append of a MiB to the large object can cost: one multipart upload of (up to) 8 Upload
    Part - Copy requests of the old bytes, from 8 threads, and one part of the new MiB, as boto3 sends them."""
    large, key = large_mib * MiB, "large/raw-append"
    s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": f"large/raw-{large_mib}"})
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    appended = sources.append.read_bytes()

    def append() -> None:
        upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        count = max(1, min(8, large // (2 * MiB)))  # each copy well above COS's 1 MB part minimum
        step = -(-large // count)

        def copy(number: int) -> dict[str, object]:
            start = (number - 1) * step
            result = s3.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number,
                                         CopySource={"Bucket": BUCKET, "Key": key}, CopySourceIfMatch=etag,
                                         CopySourceRange=f"bytes={start}-{min(large, start + step) - 1}")
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            parts = list(pool.map(copy, range(1, count + 1)))
        tail = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=count + 1, Body=appended)
        parts.append({"PartNumber": count + 1, "ETag": tail["ETag"]})
        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})

    run = measure("raw", "append", large_mib, emulator, poller, append, lambda: None,
                  lambda: poller.size(key) == large + APPEND_BYTES and poller.read(key, large, APPEND_BYTES) == appended)
    s3.delete_object(Bucket=BUCKET, Key=key)
    return run


@contextlib.contextmanager
def mounted(tool: str, emulator: Emulator, mountpoint: Path, work: Path, api: str, cache: Path):
    """``tool`` mounted on an empty cache directory; unmounted afterwards, whatever happens."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    process = MOUNTERS[tool](emulator, mountpoint, work, api, cache)
    try:
        wait_mounted(mountpoint, process)
        yield process
    finally:
        unmount(mountpoint, process)


def large_for_tool(tool: str, emulator: Emulator, work: Path, api: str, sources: LargeSources, sizes: list[int],
                   large_mib: int) -> list[dict[str, object]]:
    """Through ``tool``'s mount: write each size (dd bs=1M from the local file), read the large object after
    a remount on an empty cache directory, append a MiB to a copy of the raw large object and rewrite 4 KiB
    in the middle of another, then the rsync pass on a fresh mount."""
    mountpoint = work / f"mnt-{tool}"
    mountpoint.mkdir(exist_ok=True)
    cache = work / f"{tool}-large-cache"
    directory = f"large-{tool}"
    poller = Poller(emulator)
    runs = []
    large_key = f"{directory}/w{large_mib}"
    with mounted(tool, emulator, mountpoint, work, api, cache) as process:
        (mountpoint / directory).mkdir()
        for mib in sizes:
            key = f"{directory}/w{mib}"
            middle = mib * MiB // 2
            runs.append(measure(
                tool, "write", mib, emulator, poller,
                lambda key=key, mib=mib: subprocess.run(
                    ["dd", f"if={sources.big}", f"of={mountpoint / key}", "bs=1M", f"count={mib}", "status=none"],
                    check=True),
                lambda key=key, mib=mib: poller.until(lambda: poller.size(key) == mib * MiB, key),
                lambda key=key, middle=middle: poller.read(key, middle, 4096) == sources.piece(middle, 4096),
                process, cache))
            if mib != large_mib:
                os.unlink(mountpoint / key)
    large = large_mib * MiB
    append_key, rewrite_key = f"{directory}/append", f"{directory}/rewrite"
    for key in (append_key, rewrite_key):  # before the mount, so that no listing cached in it misses them
        poller.s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": f"large/raw-{large_mib}"})
    with mounted(tool, emulator, mountpoint, work, api, cache) as process:
        got = [0]

        def read_all() -> None:
            with open(mountpoint / large_key, "rb", buffering=0) as source:
                buffer = bytearray(MiB)
                while True:
                    count = source.readinto(buffer)
                    if not count:
                        break
                    got[0] += count

        runs.append(measure(tool, "read", large_mib, emulator, poller, read_all, lambda: None,
                            lambda: got[0] == large, process, cache))
        appended = sources.append.read_bytes()
        runs.append(measure(
            tool, "append", large_mib, emulator, poller,
            lambda: subprocess.run(["sh", "-c", 'cat "$1" >> "$2"', "append", str(sources.append),
                                    str(mountpoint / append_key)], check=True),
            lambda: poller.until(lambda: poller.size(append_key) == large + APPEND_BYTES, append_key),
            lambda: (poller.read(append_key, large, APPEND_BYTES) == appended
                     and poller.read(append_key, large - 4096, 4096) == sources.piece(large - 4096, 4096)),
            process, cache))
        offset = large // 2 // REWRITE_BYTES * REWRITE_BYTES
        rewritten = sources.rewrite.read_bytes()
        runs.append(measure(
            tool, "rewrite", large_mib, emulator, poller,
            lambda: subprocess.run(["dd", f"if={sources.rewrite}", f"of={mountpoint / rewrite_key}",
                                    f"bs={REWRITE_BYTES}", f"seek={offset // REWRITE_BYTES}", "count=1",
                                    "conv=notrunc", "status=none"], check=True),
            lambda: poller.until(lambda: poller.read(rewrite_key, offset, REWRITE_BYTES) == rewritten, rewrite_key),
            lambda: (poller.size(rewrite_key) == large
                     and poller.read(rewrite_key, offset + REWRITE_BYTES, 4096)
                     == sources.piece(offset + REWRITE_BYTES, 4096)),
            process, cache))
    poller.delete_prefix(directory + "/")
    runs.append(rsync_pass(tool, emulator, work, api, sources, poller))
    poller.delete_prefix(f"rsync-{tool}/")
    left = poller.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    runs[-1]["multipart_uploads_left"] = len(left)
    if left:  # not a speed, but a tool's bug the bench would otherwise hide; abort them for the next tool
        print(f"  {tool}: {len(left)} multipart uploads left in the bucket", file=sys.stderr)
        for upload in left:
            poller.s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    return runs


def rsync_pass(tool: str, emulator: Emulator, work: Path, api: str, sources: LargeSources,
               poller: Poller) -> dict[str, object]:
    """``rsync -a`` of the tree into an empty directory of a fresh mount, timed until every file is in the
    bucket; its requests are counted through the unmount, so that whatever a tool sends late counts too."""
    mountpoint = work / f"mnt-{tool}"
    cache = work / f"{tool}-large-cache"
    expected = {f"rsync-{tool}/{name}" for name in sources.tree_files}
    done: list[subprocess.CompletedProcess] = []
    with mounted(tool, emulator, mountpoint, work, api, cache) as process:
        run = measure(
            tool, "rsync", 0, emulator, poller,
            lambda: done.append(subprocess.run(["rsync", "-a", f"{sources.tree}/", str(mountpoint / f"rsync-{tool}")],
                                               capture_output=True, text=True, check=False)),
            lambda: poller.until(lambda: expected <= poller.keys(f"rsync-{tool}/"), f"rsync-{tool}/", interval=0.25),
            lambda: True, process, cache)
        polled = poller.requests
    run["requests"] = sum(emulator.stats().values()) - polled
    run["files"] = len(expected)
    run["rsync_exit"] = done[0].returncode
    run["ok"] = done[0].returncode == 0
    if done[0].returncode:
        print(f"  {tool}: rsync exited {done[0].returncode}: {done[0].stderr[-500:]}", file=sys.stderr)
    return run


def large_cell(run: dict[str, object] | None, value: float | None, shown: Callable[[float], str]) -> str:
    """``value`` as ``shown`` writes it, marked when the run's result was wrong or rsync failed."""
    if run is None or value is None:
        return "—"
    marks = "" if run.get("ok", True) else " (WRONG)"
    if run.get("rsync_exit"):
        marks += f" (rsync exit {run['rsync_exit']})"
    return shown(value) + marks


def speed_text(value: float) -> str:
    return f"{value:,.1f}"


def mib_text(value: float) -> str:
    return f"{value:,.0f}"


def ratio_text(value: float) -> str:
    return f"{value:,.2f}"


def mb_per_s(run: dict[str, object]) -> float:
    return int(run["size_mib"]) / max(float(run["seconds"]), 0.001)


def files_per_s(run: dict[str, object]) -> float:
    return int(run["files"]) / max(float(run["seconds"]), 0.001)


def versus(value: float | None, raw: float | None, s3fs: float | None, tool: str) -> str:
    """`` (61% of raw, 1.10× s3fs)``: a speed against the raw line and against s3fs's."""
    parts = []
    if value is not None and raw:
        parts.append(f"{value / raw:.0%} of raw")
    if value is not None and s3fs and tool != "s3fs":
        parts.append(f"{value / s3fs:.2f}× s3fs")
    return f" ({', '.join(parts)})" if parts else ""


def large_table(runs: list[dict[str, object]], large_mib: int, huge_mib: int, api: str) -> str:
    """Issue 11's rows: a column per tool after the raw line (speeds also as a share of raw and against
    s3fs), cosfs against each target, and the requests and CPU seconds of cosfs and s3fs (tool / emulator)."""
    tools = [tool for tool in dict.fromkeys(str(run["tool"]) for run in runs) if tool != "raw"]
    cells = {(run["tool"], run["scenario"], run["size_mib"]): run for run in runs}
    counted = [tool for tool in ("cosfs", "s3fs") if tool in tools]
    large, huge = size_label(large_mib), size_label(huge_mib)
    rsync = next((run for run in runs if run["scenario"] == "rsync"), None)
    files = f"{int(rsync['files']):,} " if rsync else ""

    def find(tool: str, scenario: str) -> dict[str, object] | None:
        size = {"write huge": huge_mib, "rsync": 0, "rsync requests": 0}.get(scenario, large_mib)
        return cells.get((tool, scenario.split()[0], size))

    rows = [  # label, scenario key, value of a run, how it is shown, a speed (against raw and s3fs), counted here
        (f"write {large} MB/s", "write", mb_per_s, speed_text, True, True),
        (f"read {large} after remount MB/s", "read", mb_per_s, speed_text, True, True),
        (f"write {huge} MB/s", "write huge", mb_per_s, speed_text, True, True),
        (f"write {huge} peak RSS MiB", "write huge", lambda run: run.get("peak_rss_mib"), mib_text, False, False),
        (f"write {huge} peak local disk MiB", "write huge", lambda run: run.get("peak_disk_mib"), mib_text, False,
         False),
        (f"append 1 MiB to {large} s", "append", lambda run: float(run["seconds"]), seconds_cell, False, True),
        (f"rewrite 4 KiB in {large} s", "rewrite", lambda run: float(run["seconds"]), seconds_cell, False, True),
        (f"`rsync -a` {files}files, files/s", "rsync", files_per_s, speed_text, True, True),
        ("`rsync -a` requests per file", "rsync requests",
         lambda run: int(run["requests"]) / int(run["files"]), ratio_text, False, False),
    ]
    header = ["metric", "raw HTTP (boto3)"] + [f"cosfs (api={api})" if tool == "cosfs" else tool for tool in tools]
    header += ["cosfs against issue 11's target"]
    header += [f"{tool} requests" for tool in counted] + [f"CPU s {tool} / emulator" for tool in counted]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, scenario, value_of, shown, speed, counts in rows:
        def value(tool: str, scenario: str = scenario, value_of: Callable = value_of) -> float | None:
            run = find(tool, scenario)
            return None if run is None else value_of(run)

        raw_run = find("raw", scenario)
        shown_raw = speed or scenario in ("rsync requests", "append")
        raw_value = value("raw") if raw_run is not None and shown_raw else None
        line = [label, large_cell(raw_run, raw_value, shown)]
        for tool in tools:
            cell = large_cell(find(tool, scenario), value(tool), shown)
            line.append(cell + (versus(value(tool), raw_value, value("s3fs"), tool) if speed and cell != "—" else ""))
        line.append(target_cell(scenario, find("cosfs", scenario), find("cosfs", "write"), find("s3fs", scenario),
                                api))
        for tool in counted:
            run = find(tool, scenario)
            line.append("—" if run is None or not counts else f"{int(run['requests']):,}")
        for tool in counted:
            run = find(tool, scenario)
            line.append("—" if run is None or not counts else f"{run['client_cpu']:.2f} / {run['server_cpu']:.2f}")
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def target_cell(scenario: str, cosfs: dict[str, object] | None, cosfs_write: dict[str, object] | None,
                s3fs: dict[str, object] | None, api: str) -> str:
    """cosfs against issue 11's target on this row: the append as a share of its own large write, rsync's
    files/s against s3fs's, rsync's requests per file (a target on the XML API)."""
    if cosfs is None:
        return "—"
    if scenario == "append" and cosfs_write is not None:
        share = float(cosfs["seconds"]) / max(float(cosfs_write["seconds"]), 0.001)
        return f"{share:.1%} of its write (< {APPEND_TARGET:.0%} {'met' if share < APPEND_TARGET else 'MISSED'})"
    if scenario == "rsync" and s3fs is not None:
        speed = files_per_s(cosfs) / max(files_per_s(s3fs), 0.001)
        return f"{speed:.2f}× s3fs (≥ {RSYNC_SPEED_TARGET:g}× {'met' if speed >= RSYNC_SPEED_TARGET else 'MISSED'})"
    if scenario == "rsync requests":
        per_file = int(cosfs["requests"]) / int(cosfs["files"])
        if api != "xml":
            return f"{per_file:.2f} (the target of ≤ {RSYNC_REQUESTS_TARGET:g} is for api=xml)"
        met = "met" if per_file <= RSYNC_REQUESTS_TARGET else "MISSED"
        return f"{per_file:.2f} (≤ {RSYNC_REQUESTS_TARGET:g} {met})"
    return "—"


def scaling_table(runs: list[dict[str, object]]) -> str:
    """Write time by size: seconds until the object is in the bucket (MB/s) per tool and the raw line, then
    each tool's peak RSS and local disk during that write."""
    writes = [run for run in runs if run["scenario"] == "write"]
    tools = list(dict.fromkeys(str(run["tool"]) for run in writes))
    mounted_tools = [tool for tool in tools if tool != "raw"]
    cells = {(run["tool"], run["size_mib"]): run for run in writes}
    header = ["size"] + [("raw HTTP (boto3)" if tool == "raw" else tool) + " s (MB/s)" for tool in tools]
    header += [f"{tool} peak RSS / disk MiB" for tool in mounted_tools]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mib in sorted({int(run["size_mib"]) for run in writes}):
        line = [size_label(mib)]
        for tool in tools:
            run = cells.get((tool, mib))
            line.append("—" if run is None else
                        f"{seconds_cell(float(run['seconds']))} ({large_cell(run, mb_per_s(run), speed_text)})")
        for tool in mounted_tools:
            run = cells.get((tool, mib))
            line.append("—" if run is None else f"{run['peak_rss_mib']:,.0f} / {run['peak_disk_mib']:,.0f}")
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def large_header(args: argparse.Namespace, command: str) -> str:
    return "\n".join([
        command,
        (f"{os.cpu_count()} CPUs; emulator on loopback, fsyncing what it receives (as in every mode of this "
         f"script; the tests run it with --no-fsync); cosfs api={args.api}"),
        ("writes: dd bs=1M from a local random file, timed until the object is in the bucket (close included; "
         "rclone uploads only --vfs-write-back, 5 s by default, after close, and is waited for); read: 1 MiB "
         "reads after a remount on an empty cache directory; append and rewrite: on server-side copies of the "
         "raw line's object, timed until the bucket holds the change; raw HTTP: boto3, 8 threads, 8 MiB parts "
         "(rsync: put_object from 8 threads)"),
        ("peak RSS: VmHWM of the tool's process, reset through /proc/PID/clear_refs before each write; local "
         "disk: what the write added to the blocks of the files under the tool's cache directory plus of "
         "deleted files its process holds open (s3fs without use_cache keeps its temporary files so, in /tmp), "
         "sampled every "
         f"{SAMPLE_SECONDS * 1000:.0f} ms; requests: counted by the emulator, the bench's own polling taken out "
         "(rsync: through the unmount)"),
    ])


def print_large(emulator: Emulator, work: Path, args: argparse.Namespace, command: str) -> None:
    """The ``--large`` mode: the raw line, then every tool, one after the other on the same emulator."""
    sizes = sorted(set(args.scale_mib) | {args.large_gib, args.huge_gib})
    tools = installed(args.tools)
    if shutil.which("rsync") is None:
        raise SystemExit("bench: --large needs rsync")
    sources = LargeSources(work, max(sizes), args.rsync_files)
    runs = large_raw(emulator, sources, sizes, args.large_gib, args.rsync_files)
    for tool in tools:
        runs.extend(large_for_tool(tool, emulator, work, args.api, sources, sizes, args.large_gib))
    print(large_header(args, command))
    print(f"\nIssue 11: large files and an rsync pass (MB/s are MiB/s)\n\n"
          f"{large_table(runs, args.large_gib, args.huge_gib, args.api)}")
    print(f"\nWrite time by size\n\n{scaling_table(runs)}")
    for run in runs:
        if run.get("multipart_uploads_left"):
            print(f"\n{run['tool']} left {run['multipart_uploads_left']} multipart uploads in the bucket")
    if args.json:
        results = {"command": command, "cpus": os.cpu_count(), "api": args.api, "emulator_fsync": True,
                   "large_mib": args.large_gib, "huge_mib": args.huge_gib, "sizes_mib": sizes,
                   "rsync_files": args.rsync_files, "runs": runs}
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def installed(tools: str) -> list[str]:
    """The tools of ``--tools`` that can run here; the others are named on stderr."""
    found = []
    for tool in tools.split(","):
        if tool not in MOUNTERS:
            raise SystemExit(f"bench: unknown tool {tool!r} in --tools; choose among {', '.join(MOUNTERS)}")
        if tool != "cosfs" and shutil.which(tool) is None:
            print(f"{tool}: not installed, skipped", file=sys.stderr)
            continue
        found.append(tool)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="size of the large file")
    parser.add_argument("--files", type=int, default=1000, help="number of 4 KiB files")
    parser.add_argument("--api", default="xml", choices=["xml", "json"], help="cosfs's API")
    parser.add_argument("--tools", default="cosfs,s3fs,rclone", help="mounts to measure (skipped if not installed)")
    parser.add_argument("--heads", type=int, default=0, metavar="N",
                        help="instead: stat N small objects through the store and report CPU per stat")
    parser.add_argument("--threads", type=int, default=8, help="threads calling stat (with --heads)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per API, the least CPU kept (with --heads)")
    parser.add_argument("--listing", type=parse_counts, default=[], metavar="N,N",
                        help="instead: time ls -l, find and du on directories of N files, cold, warm and remounted")
    parser.add_argument("--latency-ms", type=parse_latencies, default=[0], metavar="MS,MS",
                        help="latencies the emulator adds to every request, one table each (with --listing)")
    parser.add_argument("--fill-threads", type=int, default=16, help="boto3 threads putting the files (with --listing)")
    parser.add_argument("--root", type=Path, metavar="DIR",
                        help="the emulator's root, kept afterwards: a later --listing run reuses its files")
    parser.add_argument("--large", action="store_true",
                        help="instead: issue 11's large-file writes, read, append, rewrite and an rsync pass")
    parser.add_argument("--large-gib", type=parse_gib, default=1024, metavar="GIB",
                        help="the large object written, read, appended to and rewritten (with --large)")
    parser.add_argument("--huge-gib", type=parse_gib, default=4096, metavar="GIB",
                        help="the write whose peak RSS and local disk are reported (with --large)")
    parser.add_argument("--scale-mib", type=parse_counts, default=[1, 16, 256], metavar="MIB,MIB",
                        help="more write sizes for the scaling table; the large and huge ones are always in it")
    parser.add_argument("--rsync-files", type=int, default=3000, metavar="N",
                        help="files of 4 KiB in the tree rsync copies (with --large)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write the results there (with --listing or --large)")
    parser.add_argument("--quick", action="store_true",
                        help="every mode at a tiny size, each once (CI runs it so that the script cannot rot; "
                             "its figures mean nothing)")
    args = parser.parse_args(argv)
    command = "$ python scripts/bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.quick:
        for quick in (["--size-mib", "4", "--files", "20"], ["--heads", "100", "--rounds", "1"],
                      ["--listing", "100"], ["--large", "--large-gib", str(2 / 1024), "--huge-gib", str(8 / 1024),
                                             "--scale-mib", "1", "--rsync-files", "30"]):
            main(quick + ["--tools", args.tools, "--api", args.api])
        return 0
    work = Path(tempfile.mkdtemp(prefix="cosfs-bench-"))
    emulator = Emulator(args.root or work / "root")
    try:
        if args.large:
            print_large(emulator, work, args, command)
        elif args.listing:
            print_listings(emulator, work, args, command)
        elif args.heads:
            results = heads(emulator, work, args.heads, args.threads, args.rounds)
            print(f"$ python scripts/bench.py --heads {args.heads} --threads {args.threads} --rounds {args.rounds}")
            print(f"{os.cpu_count()} CPUs; emulator on loopback; best of {args.rounds} runs by client CPU\n")
            print(heads_table(results))
        else:
            size = args.size_mib * MiB
            baseline = raw_limit(emulator, size, args.files)
            rows = {}
            for tool in installed(args.tools):
                rows[tool if tool != "cosfs" else f"cosfs (api={args.api})"] = through_mount(
                    tool, emulator, work, size, args.files, args.api)
            print(f"$ python scripts/bench.py --size-mib {args.size_mib} --files {args.files} --api {args.api}")
            print(f"{os.cpu_count()} CPUs; emulator on loopback; ratios are against the raw HTTP column\n")
            print(table(rows, baseline))
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def print_listings(emulator: Emulator, work: Path, args: argparse.Namespace, command: str) -> None:
    """The ``--listing`` mode: fill, run every tool, print one table per latency (and ``--json``)."""
    tools = installed(args.tools)
    results = {"command": command, "cpus": os.cpu_count(), **listings(emulator, work, args, tools)}
    print(command)
    fills = ", ".join(f"{files:,} files {fill_cell(seconds)}" for files, seconds in results["fill_seconds"].items())
    print(f"{os.cpu_count()} CPUs; emulator on loopback; fill through boto3 with {args.fill_threads} threads: "
          + fills)
    for latency_ms in args.latency_ms:
        print(f"\n{latency_ms} ms added to every request; requests are LIST / HEAD / other\n")
        print(listing_table(results["runs"], latency_ms))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")

if __name__ == "__main__":
    sys.exit(main())
