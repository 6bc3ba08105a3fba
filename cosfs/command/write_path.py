"""Where a mount of a bucket stages its writes and how it uploads them: shared by the mount
and by ``cosfs recover``, which must find and store the same files without loading FUSE.
"""

from __future__ import annotations

import os
from pathlib import Path

from cosfs.command.options import Options
from cosfs.data.uploader import UploadPolicy

MiB = 1024 * 1024


def default_cache_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/cache/cosfs")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cosfs"


def staging_root(options: Options, bucket: str) -> Path:
    """The bucket's staging directory, ``cache_dir/BUCKET`` (each mount stages in its own
    subdirectory; ``cache_dir/lost+found`` is beside it)."""
    return (Path(options.cache_dir) if options.cache_dir else default_cache_dir()) / bucket


def max_cache_bytes(options: Options, free_bytes: int) -> int:
    """What staged files may hold (``max_cache_mb``; by default half of ``free_bytes``, the
    staging filesystem's free space when the mount starts)."""
    return options.max_cache_mb * MiB if options.max_cache_mb else free_bytes // 2


def stall_timeout(options: Options) -> float:
    """How long a write waits for the dirty budget while no part is stored anywhere: each part
    request gives up within ``max_retry_time``, so twice that (and a margin) means stuck."""
    return 2 * options.max_retry_time + 10


def upload_policy(options: Options) -> UploadPolicy:
    return UploadPolicy(
        part_size=options.multipart_size * MiB,
        multipart_threshold=options.multipart_threshold * MiB,
        parallel=options.parallel_count,
    )
