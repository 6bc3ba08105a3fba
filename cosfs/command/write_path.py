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


def upload_policy(options: Options) -> UploadPolicy:
    return UploadPolicy(
        part_size=options.multipart_size * MiB,
        multipart_threshold=options.multipart_threshold * MiB,
        parallel=options.parallel_count,
    )
