"""``scripts/bench.py --listing``: the pure parts (option parsing, request split, the table), without mounts.

The benchmark itself is not run here: it mounts three tools and takes minutes.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def run(tool: str, state: str, seconds: float, scenario: str = "ls -l", files: int = 1000, latency_ms: int = 0,
        shown=1000, requests=(1, 1000, 0)) -> dict:
    return {"latency_ms": latency_ms, "files": files, "scenario": scenario, "state": state, "tool": tool,
            "seconds": seconds, "requests": dict(zip(("list", "head", "other"), requests)), "shown": shown}


def test_listing_sizes_are_parsed_in_order_once_each():
    assert bench.parse_counts("1000,10000") == [1000, 10000]
    assert bench.parse_counts("100_000, 1000,1000") == [100000, 1000]


@pytest.mark.parametrize("text", ["", "1000,", "ten", "-5", "0", "1e3"])
def test_a_bad_listing_size_says_what_to_give(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive whole numbers separated by commas"):
        bench.parse_counts(text)


def test_latencies_allow_zero_and_refuse_anything_else():
    assert bench.parse_latencies("0,10") == [0, 10]
    with pytest.raises(argparse.ArgumentTypeError, match="whole milliseconds"):
        bench.parse_latencies("10ms")


def test_the_command_line_reaches_the_listing_options():
    with pytest.raises(SystemExit):
        bench.main(["--listing", "lots"])


def test_requests_are_split_into_list_head_and_other_on_both_apis():
    counts = {"xml.ListObjects": 2, "xml.ListObjectsV2": 1, "json.list": 1, "xml.HeadObject": 7, "json.stat": 3,
              "xml.GetObject": 4, "xml.HeadBucket": 1}
    assert bench.request_split(counts) == {"list": 4, "head": 10, "other": 5}


def test_the_table_gives_cosfs_speed_as_s3fs_seconds_over_cosfs_seconds_against_each_target():
    runs = [run("cosfs", "cold", 2.0), run("s3fs", "cold", 1.0), run("rclone", "cold", 3.0),
            run("cosfs", "remounted", 0.1, requests=(1, 0, 0)), run("s3fs", "remounted", 1.5),
            run("cosfs", "cold", 9.0, latency_ms=10)]
    lines = bench.listing_table(runs, 0).splitlines()
    assert lines[0] == ("| scenario | N | state | cosfs s | s3fs s | rclone s | cosfs speed vs s3fs (target) "
                        "| cosfs requests LIST / HEAD / other | s3fs requests LIST / HEAD / other "
                        "| CPU s cosfs / emulator | CPU s s3fs / emulator |")
    assert lines[2] == ("| `ls -l` | 1,000 | cold | 2.00 | 1.00 | 3.00 | 0.50× (≥ 0.9× MISSED) "
                        "| 1 / 1,000 / 0 | 1 / 1,000 / 0 | — | — |")
    assert lines[3] == ("| `ls -l` | 1,000 | remounted | 0.10 | 1.50 | — | 15.00× (≥ 10× met) "
                        "| 1 / 0 / 0 | 1 / 1,000 / 0 | — | — |")
    assert len(lines) == 4, "the 10 ms run belongs to another table"


def test_a_run_that_showed_too_few_files_is_marked():
    table = bench.listing_table([run("cosfs", "cold", 0.05, shown=998)], 0)
    assert "| 0.050 (showed 998) |" in table
    assert "speed" not in table, "no ratio without s3fs"
