"""``-o metrics=``: the snapshot's numbers in Prometheus' text format, read back with its own parser."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cosfs.command.metrics import MetricsServer, SnapshotCollector
from cosfs.command.options import options_from_string
from cosfs.wire.errors import ConfigError
from tests.support.status_samples import BIG_UPLOAD, sample_snapshot


def samples(text: str) -> dict:
    """``{(sample name, labels as a sorted tuple): value}`` of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def exposition(snapshot: dict) -> str:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshot))
    return generate_latest(registry).decode()


def test_counters_per_operation_and_gauges_come_from_the_snapshot():
    snapshot = sample_snapshot(uploads=[BIG_UPLOAD], dirty=(1, 48 * 1024 ** 2))

    found = samples(exposition(snapshot))

    put_part = (("operation", "put_part"),)
    assert found[("cosfs_requests_total", put_part)] == 12
    assert found[("cosfs_request_errors_total", put_part)] == 1
    assert found[("cosfs_request_retries_total", put_part)] == 3
    assert found[("cosfs_request_not_found_total", (("operation", "stat"),))] == 2
    assert found[("cosfs_uploads_pending", ())] == 1
    assert found[("cosfs_upload_bytes_pending", ())] == 36 * 1024 ** 2
    assert found[("cosfs_dirty_files", ())] == 1
    assert found[("cosfs_dirty_bytes", ())] == 48 * 1024 ** 2
    assert found[("cosfs_cache_bytes", ())] == 3 * 1024 ** 2
    assert found[("cosfs_cache_free_bytes", ())] == 20 * 1024 ** 3
    info = (("api", "xml"), ("bucket", "examplebucket-1250000000"), ("mountpoint", "/mnt/cos"), ("prefix", "photos/"))
    assert found[("cosfs_mount_info", info)] == 1


def test_each_scrape_reads_a_fresh_snapshot():
    snapshots = [sample_snapshot(), sample_snapshot(uploads=[BIG_UPLOAD])]
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: snapshots.pop(0)))

    first, second = (samples(generate_latest(registry).decode()) for _ in range(2))

    assert first[("cosfs_uploads_pending", ())] == 0
    assert second[("cosfs_uploads_pending", ())] == 1


def test_the_server_answers_over_http_and_stops():
    server = MetricsServer(("127.0.0.1", 0), sample_snapshot)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        server.stop()

    assert samples(text)[("cosfs_requests_total", (("operation", "stat"),))] == 5
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


def test_a_port_in_use_is_one_clear_configuration_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}.*-o metrics="):
            MetricsServer(("127.0.0.1", port), sample_snapshot)


@pytest.mark.parametrize("text, address", [
    ("9100", ("127.0.0.1", 9100)),
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_metrics_option_takes_a_port_or_an_address(text, address):
    assert options_from_string(f"metrics={text}").metrics == address


@pytest.mark.parametrize("text", ["", "http", "127.0.0.1:", ":9100", "127.0.0.1:70000", "9100:x"])
def test_a_bad_metrics_address_is_refused(text):
    with pytest.raises(ConfigError, match="option 'metrics': expected PORT or HOST:PORT"):
        options_from_string(f"metrics={text}")


def test_metrics_are_off_by_default():
    assert options_from_string("").metrics is None
