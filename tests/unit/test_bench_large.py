"""``scripts/bench.py --large``: the pure parts (sizes, /proc parsing, the disk measure, the tables), without
mounts. The mode itself runs end to end, tiny, in tests/system/test_bench_quick.py."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pytest

from tests.unit.test_bench_listing import load_bench

bench = load_bench()
MiB = 1024 * 1024


def run(tool: str, scenario: str, size_mib: int, seconds: float, **extra) -> dict:
    values = {"tool": tool, "scenario": scenario, "size_mib": size_mib, "seconds": seconds, "ok": True,
              "close_seconds": seconds, "requests": 1, "client_cpu": 0.5, "server_cpu": 0.25}
    if tool != "raw":
        values.update(peak_rss_mib=60.0, peak_disk_mib=0.0)
    values.update(extra)
    return values


def runs_of(tool: str, write_s: float, huge_s: float, append_s: float, rsync_s: float, rsync_requests: int,
            **huge) -> list:
    return [run(tool, "write", 1024, write_s), run(tool, "write", 4096, huge_s, **huge),
            run(tool, "read", 1024, 4.0), run(tool, "append", 1024, append_s), run(tool, "rewrite", 1024, 0.05),
            run(tool, "rsync", 0, rsync_s, files=3000, requests=rsync_requests)]


def test_sizes_are_given_in_gib_and_kept_in_whole_mib():
    assert bench.parse_gib("1") == 1024
    assert bench.parse_gib("0.25") == 256
    assert bench.parse_gib(str(8 / 1024)) == 8


@pytest.mark.parametrize("text", ["0", "-1", "0.0001", "one", "1.0001"])
def test_a_size_that_is_not_whole_mib_says_what_to_give(text):
    with pytest.raises(argparse.ArgumentTypeError, match="whole MiB"):
        bench.parse_gib(text)


def test_sizes_are_labelled_in_gib_when_whole():
    assert [bench.size_label(mib) for mib in (1, 256, 512, 1024, 4096)] == \
        ["1 MiB", "256 MiB", "512 MiB", "1 GiB", "4 GiB"]


def test_proc_status_fields_are_read_in_kib():
    status = "Name:\tcosfs\nVmPeak:\t  900000 kB\nVmHWM:\t   123456 kB\nVmRSS:\t   100000 kB\nThreads:\t12\n"
    assert bench.status_kib(status, "VmHWM") == 123456
    assert bench.status_kib(status, "VmRSS") == 100000
    assert bench.status_kib("Name:\tkthreadd\n", "VmHWM") is None, "kernel threads have no memory lines"
    with pytest.raises(ValueError, match="VmHWM"):
        bench.status_kib("VmHWM:\t12 MB\n", "VmHWM")


def test_this_process_status_has_a_peak_at_least_its_rss():
    status = Path(f"/proc/{os.getpid()}/status").read_text()
    assert bench.status_kib(status, "VmHWM") >= bench.status_kib(status, "VmRSS") > 0


def test_local_disk_counts_allocated_blocks_under_the_directory_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").write_bytes(os.urandom(MiB))
    os.link(tmp_path / "sub" / "data", tmp_path / "hard-link")
    with open(tmp_path / "sparse", "wb") as sparse:
        sparse.truncate(64 * MiB)
    used = bench.local_disk_bytes(tmp_path, None)
    assert MiB <= used < 2 * MiB, "a hard link counts once and a hole takes no disk"


def test_local_disk_counts_deleted_files_the_process_holds_open(tmp_path):
    before = bench.local_disk_bytes(tmp_path, os.getpid())
    with tempfile.TemporaryFile(dir=tmp_path) as hidden:  # unlinked at once, as s3fs's temporary files
        hidden.write(os.urandom(2 * MiB))
        hidden.flush()
        os.fsync(hidden.fileno())
        assert not list(tmp_path.iterdir()), "the walk alone cannot see it"
        assert bench.local_disk_bytes(tmp_path, os.getpid()) - before >= 2 * MiB
        assert bench.local_disk_bytes(tmp_path, None) == 0


def test_a_file_prefix_uploads_as_a_file_of_that_size(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 64)
    with bench.FilePrefix(source, 1000) as view:
        assert view.seek(0, os.SEEK_END) == 1000
        view.seek(990)
        assert view.read(100) == (bytes(range(256)) * 4)[990:1000]
        assert view.read(100) == b""
        view.seek(0)
        assert view.read() == source.read_bytes()[:1000]


def test_the_null_sink_keeps_how_far_ranged_writes_reached():
    sink = bench.NullSink()
    sink.seek(8 * MiB)
    sink.write(b"x" * MiB)
    sink.seek(0)
    sink.write(b"y" * MiB)
    assert sink.size == 9 * MiB


def test_the_rsync_tree_has_a_hundred_files_a_directory():
    assert bench.rsync_path(0) == "d000/f00000"
    assert bench.rsync_path(99) == "d000/f00099"
    assert bench.rsync_path(2999) == "d029/f02999"


def test_the_large_table_compares_with_raw_and_s3fs_and_checks_each_target():
    runs = (runs_of("raw", 2.0, 8.0, 0.0, 3.0, 3000)
            + runs_of("cosfs", 4.0, 16.0, 0.1, 6.0, 10500, peak_rss_mib=123.4, peak_disk_mib=96.0)
            + runs_of("s3fs", 8.0, 32.0, 1.0, 15.0, 90000)
            + runs_of("rclone", 16.0, 64.0, 5.0, 30.0, 9000))
    runs = [value for value in runs if (value["tool"], value["scenario"]) not in {("raw", "append"),
                                                                                 ("raw", "rewrite")}]
    lines = bench.large_table(runs, 1024, 4096, "xml").splitlines()
    assert lines[0] == ("| metric | raw HTTP (boto3) | cosfs (api=xml) | s3fs | rclone "
                        "| cosfs against issue 11's target | cosfs requests | s3fs requests | CPU s cosfs / emulator | CPU s s3fs / emulator |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert rows["write 1 GiB MB/s"] == ("| write 1 GiB MB/s | 512.0 | 256.0 (50% of raw, 2.00× s3fs) "
                                        "| 128.0 (25% of raw) | 64.0 (12% of raw, 0.50× s3fs) | — | 1 | 1 "
                                        "| 0.50 / 0.25 | 0.50 / 0.25 |")
    assert "| 123 | 60 | 60 | — |" in rows["write 4 GiB peak RSS MiB"]
    assert rows["write 4 GiB peak local disk MiB"].startswith("| write 4 GiB peak local disk MiB | — | 96 | 0 | 0 |")
    assert "| 2.5% of its write (< 5% met) |" in rows["append 1 MiB to 1 GiB s"]
    assert "| — | 0.10 | 1.00 | 5.00 |" in rows["append 1 MiB to 1 GiB s"]
    assert "| 2.50× s3fs (≥ 2× met) |" in rows["`rsync -a` 3,000 files, files/s"]
    assert "| 1.00 | 3.50 | 30.00 | 3.00 | 3.50 (≤ 4 met) |" in rows["`rsync -a` requests per file"]
    assert len(lines) == 2 + 9


def test_missed_targets_and_wrong_results_are_marked():
    runs = (runs_of("cosfs", 1.0, 4.0, 0.5, 10.0, 15000)
            + runs_of("s3fs", 1.0, 4.0, 0.5, 15.0, 90000, ok=False))
    runs[-1]["rsync_exit"] = 23
    table = bench.large_table(runs, 1024, 4096, "xml")
    assert "50.0% of its write (< 5% MISSED)" in table
    assert "1.50× s3fs (≥ 2× MISSED)" in table
    assert "5.00 (≤ 4 MISSED)" in table
    assert "(rsync exit 23)" in table
    assert "(WRONG)" in table
    assert table.splitlines()[2].split(" | ")[1] == "—", "no raw runs: a dash"


def test_the_requests_target_is_for_the_xml_api():
    table = bench.large_table(runs_of("cosfs", 1.0, 4.0, 0.01, 1.0, 15000), 1024, 4096, "json")
    assert "5.00 (the target of ≤ 4 is for api=xml)" in table
    assert "| cosfs (api=json) |" in table


def test_the_scaling_table_gives_seconds_speed_and_peaks_by_size():
    runs = [run("raw", "write", 1, 0.01), run("raw", "write", 1024, 2.0), run("cosfs", "write", 1, 0.02),
            run("cosfs", "write", 1024, 4.0, peak_rss_mib=80.4, peak_disk_mib=1024.0)]
    lines = bench.scaling_table(runs).splitlines()
    assert lines[0] == "| size | raw HTTP (boto3) s (MB/s) | cosfs s (MB/s) | cosfs peak RSS / disk MiB |"
    assert lines[2] == "| 1 MiB | 0.010 (100.0) | 0.020 (50.0) | 60 / 0 |"
    assert lines[3] == "| 1 GiB | 2.00 (512.0) | 4.00 (256.0) | 80 / 1,024 |"


def test_the_command_line_reaches_the_large_options():
    with pytest.raises(SystemExit):
        bench.main(["--large", "--large-gib", "0.3"])
