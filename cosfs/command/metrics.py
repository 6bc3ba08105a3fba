"""``-o metrics=[HOST:]PORT``: the status snapshot's numbers for Prometheus, over HTTP.

A custom collector reads the same snapshot as ``cosfs status`` at each scrape, so the two
never disagree and nothing is counted twice. It is served by the maintained
``prometheus_client`` library (text exposition format, content negotiation, a threaded
HTTP server) on the address given. Only ``metrics=PORT`` binds the loopback address; a
host, when written, is used as written (``metrics=0.0.0.0:9100`` is a deliberate choice):
the endpoint has no authentication and shows the bucket name and the mount point, so
expose it only to a trusted network. The address is bound before the mount is made, so a
port in use fails the mount with one line instead of a mount without its metrics.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Tuple

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from cosfs.command.snapshot import Snapshot
from cosfs.wire.errors import ConfigError

log = logging.getLogger(__name__)

#: The per-operation counters: metric name, help, field of the snapshot's ``requests``.
_REQUEST_COUNTERS = (
    ("cosfs_requests", "COS requests finished, each counted once however often it was repeated", "count"),
    ("cosfs_request_errors", "COS requests that failed for good (not-found answers apart)", "errors"),
    ("cosfs_request_retries", "repeats of COS requests after a transient failure", "retries"),
    ("cosfs_request_not_found", "'no such object' answers (how cosfs learns a path does not exist)", "not_found"),
)


class SnapshotCollector:
    """A ``prometheus_client`` collector: one fresh snapshot into metric families at each scrape."""

    def __init__(self, provider: Callable[[], Snapshot]) -> None:
        self._provider = provider

    def collect(self) -> Iterator[Metric]:
        snapshot = self._provider()
        mount = snapshot["mount"]
        info = InfoMetricFamily("cosfs_mount", "the mounted bucket")
        info.add_metric([], {"bucket": mount["bucket"], "prefix": mount["prefix"],
                             "mountpoint": mount["mountpoint"], "api": mount["api"]})
        yield info
        yield GaugeMetricFamily("cosfs_start_time_seconds", "when the daemon started serving (Unix time)",
                                value=mount["started"])
        for name, help_text, field in _REQUEST_COUNTERS:
            family = CounterMetricFamily(name, help_text, labels=["operation"])
            for operation, counts in snapshot["requests"].items():
                family.add_metric([operation], counts[field])
            yield family
        uploads = snapshot["uploads"]
        yield _gauge("cosfs_uploads_pending", "uploads running", len(uploads))
        yield _gauge("cosfs_upload_bytes_pending", "bytes of running uploads not yet stored",
                     sum(upload["bytes_total"] - upload["bytes_done"] for upload in uploads))
        dirty = snapshot["dirty"]
        yield _gauge("cosfs_dirty_files", "files written through the mount and not yet stored", dirty["files"])
        yield _gauge("cosfs_dirty_bytes", "bytes written through the mount and not yet stored", dirty["bytes"])
        yield _gauge("cosfs_cache_bytes", "disk space the staged files take", snapshot["cache"]["bytes"])
        yield _gauge("cosfs_cache_free_bytes", "free space on the staging filesystem", snapshot["cache"]["free_bytes"])


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


class MetricsServer:
    """The HTTP endpoint: bound and serving from construction until ``stop``."""

    def __init__(self, address: Tuple[str, int], provider: Callable[[], Snapshot]) -> None:
        host, port = address
        registry = CollectorRegistry()
        registry.register(SnapshotCollector(provider))
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port} ({exc.strerror or exc}): choose a free "
                              "port or another address with -o metrics=[HOST:]PORT") from None
        self.port: int = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
