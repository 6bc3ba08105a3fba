"""A real mount against a server that fails on purpose: a flaky one (503s, resets, latency)
must cost time and never an error; a stalled one must fail fast and recover by itself; many
parallel requests must never overflow the connection pool.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sysconfig
import threading
import time
from pathlib import Path
from typing import List

from cosfs.command.options import Options
from tests.integration.bucket import Bucket
from tests.support.mounted import wait_until

DEFAULTS = Options()
#: The retry options at their defaults (the mount helper lowers ``retries`` for speed).
DEFAULT_RETRIES = f"retries={DEFAULTS.retries},max_retry_time={DEFAULTS.max_retry_time:g}"
MiB = 1024 * 1024
#: Files copied and moved: 1,000 on the XML API; the JSON API needs about 2.5 times the
#: requests per file (an upload, then an update for the metadata; a move per file), so a
#: quarter of the tree keeps the pair near four minutes.
FILES = {"xml": 1000, "json": 250}
BIG = 200 * MiB
FLAKY = {"fail_rate": 0.2, "reset_rate": 0.1, "latency_ms": 20, "seed": 9}
CALM = {"fail_rate": 0, "reset_rate": 0, "latency_ms": 0}


def tool(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a tool; fail with its output when it exits non-zero."""
    done = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def stdlib_tree(target: Path, count: int) -> Path:
    """A real tree of ``count`` files: this Python's standard library in name order (caches,
    tests and binaries left out), copied under ``target/1``, then ``target/2`` and so on
    until there are enough, so the run depends neither on the stdlib's size nor on its state."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skipped = {"__pycache__", "site-packages", "dist-packages", "lib-dynload", "test", "tests", "ensurepip"}
    sources = []
    for folder, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in skipped and not d.startswith("config-"))
        sources += [path for path in (Path(folder) / name for name in sorted(files))
                    if path.is_file() and not path.is_symlink() and path.stat().st_size <= MiB]
    assert sources, f"no files to copy in {stdlib}"
    for number in range(count):
        source = sources[number % len(sources)]
        destination = target / str(number // len(sources) + 1) / source.relative_to(stdlib)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def big_file(path: Path, size: int) -> Path:
    rng = random.Random(1)
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            out.write(rng.randbytes(MiB))
    return path


def test_cp_r_a_200_mib_file_and_mv_of_the_tree_survive_a_flaky_server(emulator, remount, api, tmp_path):
    """SEMANTICS.md: "Every transient failure is retried the same way, for every kind of
    request: no connection, a connection reset, an answer cut short, a timeout, HTTP 5xx, 429
    and SlowDown." and "A repeated request never reports an error for what an earlier attempt
    already did". Issue 9 found ``cp -r`` exiting 1 with 38 errors and ``mv`` stopping after
    19 files under these very faults."""
    source = stdlib_tree(tmp_path / "src" / "tree", FILES[api])
    big = big_file(tmp_path / "src" / "big.bin", BIG)
    flaky = remount("flaky", DEFAULT_RETRIES)
    emulator.admin("faults", FLAKY)

    tool("cp", "-r", source, flaky.path / "tree")
    tool("cp", big, flaky.path / "big.bin")
    tool("mv", flaky.path / "tree", flaky.path / "moved")

    emulator.admin("faults", CALM)
    fresh = remount("fresh")
    assert tool("diff", "-r", source, fresh.path / "moved").stdout == ""
    tool("cmp", big, fresh.path / "big.bin")
    assert not (fresh.path / "tree").exists()
    log = flaky.log()
    assert "retrying" in log, "the faults never hit"
    assert "failed unexpectedly" not in log
    assert "Connection pool is full" not in log


def test_parallel_reads_never_overflow_the_connection_pool(emulator, cos):
    """Issue 9, finding 11: the pool must hold a connection for every thread that can send a
    request, or urllib3 warns "Connection pool is full, discarding connection"."""
    bucket = Bucket(emulator)
    bucket.put_many((f"f{n}" for n in range(48)), b"contents")
    handles = [os.open(cos.path / f"f{n}", os.O_RDONLY) for n in range(48)]
    emulator.admin("faults", {"latency_ms": 300})
    read: List[bytes] = []
    threads = [threading.Thread(target=lambda fd=fd: read.append(os.pread(fd, 100, 0))) for fd in handles]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for fd in handles:
            os.close(fd)

    assert read == [b"contents"] * 48
    assert "Connection pool is full" not in cos.log()


def timed(*args) -> "tuple[subprocess.CompletedProcess, float]":
    started = time.monotonic()
    done = subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=120)
    return done, time.monotonic() - started


def test_a_stalled_server_fails_ls_stat_and_cat_fast_and_they_work_again_without_remounting(emulator, remount):
    """SEMANTICS.md: "the request that meets the silence fails with ETIMEDOUT (EIO for a
    refused connection) within `read_timeout` + 2 × `connect_timeout` seconds (25 s by
    default; 20 s when connecting is quick, as to a stalled server)", "until any answer
    arrives, one request at a time asks again, with `connect_timeout` (5 s) for its whole
    attempt, at most once per `connect_timeout` seconds, and every other request fails at
    once" and "the mount works again by itself, without remounting, within
    `connect_timeout` seconds of COS answering again". Run with the default timeouts; the
    lookup that meets the stall (``ls``) bounds the cost of all three."""
    bucket = Bucket(emulator)
    for key, body in (("dir/a", b"alpha"), ("b", b"beta"), ("c", b"gamma")):
        bucket.put(key, body)
    mounted = remount("stalled", f"connect_timeout={DEFAULTS.connect_timeout:g},read_timeout={DEFAULTS.read_timeout:g}")
    slack = 1.5  # starting the tool, FUSE, the backoff before the short attempt
    first_bound = DEFAULTS.read_timeout + 2 * DEFAULTS.connect_timeout + slack
    later_bound = DEFAULTS.connect_timeout + slack
    emulator.admin("faults", {"stall": True})

    ls, ls_took = timed("ls", mounted.path / "dir")
    stat, stat_took = timed("stat", mounted.path / "b")
    cat, cat_took = timed("cat", mounted.path / "c")

    for done in (ls, stat, cat):
        assert done.returncode != 0 and "Connection timed out" in done.stderr, done.stderr
    assert ls_took <= first_bound, f"ls took {ls_took:.1f} s"
    assert stat_took <= later_bound and cat_took <= later_bound, f"stat {stat_took:.1f} s, cat {cat_took:.1f} s"
    assert ls_took + stat_took + cat_took <= first_bound + later_bound

    emulator.admin("faults", {"stall": False})
    wait_until(lambda: subprocess.run(["ls", mounted.path / "dir"], capture_output=True).returncode == 0,
               timeout=DEFAULTS.connect_timeout + slack, what="ls to work again")
    assert tool("ls", mounted.path / "dir").stdout.split() == ["a"]
    tool("stat", mounted.path / "b")
    assert tool("cat", mounted.path / "c").stdout == "gamma"
