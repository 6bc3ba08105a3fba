"""Status snapshots for the tests of ``cosfs status`` and the metrics: one mount, an upload, an error."""

from __future__ import annotations

from cosfs.command.snapshot import SNAPSHOT_VERSION

NOW = 1_700_000_000.0


def sample_snapshot(mountpoint: str = "/mnt/cos", uploads=None, dirty=(0, 0), errors=None) -> dict:
    return {
        "version": SNAPSHOT_VERSION,
        "mount": {"bucket": "examplebucket-1250000000", "prefix": "photos/", "mountpoint": mountpoint,
                  "api": "xml", "pid": 4242, "started": NOW - 3725},
        "uploads": uploads or [],
        "dirty": {"files": dirty[0], "bytes": dirty[1]},
        "cache": {"directory": "/var/cache/cosfs/examplebucket-1250000000", "bytes": 3 * 1024 ** 2,
                  "free_bytes": 20 * 1024 ** 3},
        "requests": {"put_part": {"count": 12, "errors": 1, "retries": 3, "not_found": 0},
                     "stat": {"count": 5, "errors": 0, "retries": 0, "not_found": 2}},
        "errors": errors or [],
    }


BIG_UPLOAD = {"path": "/videos/big.mp4", "bytes_done": 12 * 1024 ** 2, "bytes_total": 48 * 1024 ** 2,
              "started": NOW - 6, "rate_bps": 2 * 1024 ** 2}
SLOW_DOWN = {"time": NOW - 60, "operation": "put_part", "key": "photos/videos/big.mp4", "code": "SlowDown",
             "errno": "EIO", "message": "Please reduce your request rate.", "request_id": "NjU1ZTk0YjBfMjQ"}
