#!/usr/bin/env python3
"""Benchmark cosfs against the raw HTTP limit of the same cosfs-emulator (and s3fs/rclone if installed).

    python scripts/bench.py [--size-mib 256] [--files 1000] [--api xml] [--tools cosfs,s3fs,rclone]
    python scripts/bench.py --heads 2000 [--threads 8]
    python scripts/bench.py --listing 1000,10000 [--latency-ms 0,10] [--tools cosfs,s3fs,rclone] [--json FILE]

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
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
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
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results there (with --listing)")
    parser.add_argument("--quick", action="store_true",
                        help="every mode at a tiny size, each once (CI runs it so that the script cannot rot; "
                             "its figures mean nothing)")
    args = parser.parse_args(argv)
    command = "$ python scripts/bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.quick:
        for quick in (["--size-mib", "4", "--files", "20"], ["--heads", "100", "--rounds", "1"],
                      ["--listing", "100"]):
            main(quick + ["--tools", args.tools, "--api", args.api])
        return 0
    work = Path(tempfile.mkdtemp(prefix="cosfs-bench-"))
    emulator = Emulator(args.root or work / "root")
    try:
        if args.listing:
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
