"""The composition root: build store, caches, staging, filesystem and FUSE adapter; run the mount.

The only place that knows every layer. Everything here happens after the command line has
been checked and the bucket probed (``cosfs.command.cli``).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Optional

from cosfs.command.options import Options, fuse_threads, io_threads
from cosfs.command.write_path import max_cache_bytes, stall_timeout, staging_root, upload_policy
from cosfs.data.read_budget import ReadBudget
from cosfs.data.reader import ObjectReader
from cosfs.data.staging import StagingArea
from cosfs.data.stream_upload import DirtyBudget, Streams
from cosfs.data.upload_tracker import UploadTracker
from cosfs.data.uploader import Uploader
from cosfs.filesystem.lookup import Lookup
from cosfs.filesystem.open_files import OpenFiles
from cosfs.filesystem.pending_meta import PendingMeta
from cosfs.filesystem.posix import CosFilesystem
from cosfs.fuse_adapter import binding
from cosfs.fuse_adapter.operations import CallCounts, CosOperations
from cosfs.metadata.attr_store import AttrStore, store_file_name
from cosfs.metadata.attrs import AttrDefaults
from cosfs.metadata.cache import ListCache, StatCache
from cosfs.metadata.paths import PathMapper
from cosfs.store.interface import Store

log = logging.getLogger(__name__)

MiB = 1024 * 1024


def attr_store_path(options: Options, bucket: str, prefix: str) -> Path:
    """The persistent attribute cache of a mount of ``bucket`` at ``prefix``:
    ``cache_dir/BUCKET/attrs/<hash of the prefix>.sqlite``, in a directory of its own (the
    staging area warns about files it finds in ``cache_dir/BUCKET``)."""
    return staging_root(options, bucket) / "attrs" / store_file_name(prefix)


def build_filesystem(store: Store, options: Options, prefix: str, bucket: str,
                     clock: Callable[[], float] = time.time,
                     ttl_clock: Callable[[], float] = time.monotonic,
                     uploads: Optional[UploadTracker] = None) -> CosFilesystem:
    """Caches, staging, uploader and the filesystem for one mount of ``bucket``.

    ``clock`` stamps modification times (and, read now, dates the directories that have no
    marker object: the mount's start time); ``ttl_clock`` ages cache entries (monotonic, so
    a wall-clock jump neither freezes nor flushes the caches); ``uploads`` hears the uploads'
    progress (for ``cosfs status``).
    """
    defaults = AttrDefaults(
        uid=os.getuid() if options.uid is None else options.uid,
        gid=os.getgid() if options.gid is None else options.gid,
        umask=options.umask,
    )
    io_pool = ThreadPoolExecutor(max_workers=io_threads(options), thread_name_prefix="cosfs-io")
    heads = ThreadPoolExecutor(max_workers=options.parallel_heads, thread_name_prefix="cosfs-head")
    reads = ThreadPoolExecutor(max_workers=options.parallel_reads, thread_name_prefix="cosfs-read")
    stats = StatCache(options.stat_cache_ttl, options.negative_cache_ttl, options.max_stat_cache_size, ttl_clock)
    listings = ListCache(options.list_cache_ttl, options.max_list_cache_entries, ttl_clock)
    staging = StagingArea(staging_root(options, bucket), options.ensure_diskfree * MiB, bucket)
    staging.max_cache_bytes = max_cache_bytes(options, staging.free_bytes())
    persistent = (AttrStore(attr_store_path(options, bucket, prefix), options.max_attr_cache_entries)
                  if options.attr_cache else None)
    lookup = Lookup(store, PathMapper(prefix), stats, listings, defaults, heads, clock,
                    mount_time_ns=int(clock() * 1e9), persistent=persistent, trust_list=options.trust_list)
    pending = PendingMeta(store, lookup, staging.directory, bucket, options.metadata_delay, ttl_clock)
    reader_factory = functools.partial(ObjectReader, pool=reads, budget=ReadBudget(options.max_read_buffers_mb * MiB),
                                       readahead_max=options.max_readahead_mb * MiB)
    uploader = Uploader(store, upload_policy(options), io_pool, uploads)
    streams = Streams(store, uploader, DirtyBudget(options.max_dirty_mb * MiB), stall_timeout(options))
    files = OpenFiles(store, lookup, staging, uploader, clock, reader_factory, pending=pending, streams=streams)
    return CosFilesystem(store, lookup, files, defaults, clock, io_pool, read_only=options.ro)


def fuse_mount_options(options: Options, fsname: str) -> Dict[str, object]:
    """libfuse's options for this mount. The kernel keeps attributes and names as long as
    cosfs's own caches do (``stat_cache_ttl``, ``negative_cache_ttl``), not libfuse's 1 s:
    a repeated lookup within the TTL never reaches Python. ``-o attr_timeout=`` and the
    other generic options given on the command line win."""
    return binding.mount_options(
        fsname,
        allow_other=options.allow_other,
        read_only=options.ro,
        max_threads=fuse_threads(options),
        attr_timeout=options.stat_cache_ttl,
        entry_timeout=options.stat_cache_ttl,
        negative_timeout=options.negative_cache_ttl,
        extra={name: (value if value else True) for name, value in options.fuse},
    )


def run_mount(
    fs: CosFilesystem,
    mountpoint: str,
    options: Options,
    fsname: str,
    on_mounted: Optional[Callable[[], None]] = None,
    debug: bool = False,
    calls: Optional[CallCounts] = None,
) -> None:
    """Mount and serve until unmounted; pending uploads are flushed before returning."""

    def unmounting() -> None:
        failed = fs.files.close_all()
        unapplied = fs.pending.close()
        fs.files.staging.close()
        if fs.lookup.persistent is not None:
            fs.lookup.persistent.close()
        if failed:
            log.error("unmounting with %d file(s) not stored in COS (kept in the staging area for the next "
                      "mount or cosfs recover): %s", len(failed), ", ".join(failed))
        if unapplied:
            log.error("unmounting with %d metadata change(s) not stored in COS (kept in the staging area for the "
                      "next mount or cosfs recover): %s", len(unapplied), ", ".join(unapplied))

    fs.pending.start()
    operations = CosOperations(fs, on_mounted=on_mounted, on_unmount=unmounting, calls=calls,
                               xattrs=not options.noxattr)
    mount_options = fuse_mount_options(options, fsname)
    log.info("mounting %s on %s with %s", fsname, mountpoint, binding.describe())
    try:
        binding.FUSE(operations, mountpoint, foreground=True, debug=debug, **mount_options)
    finally:
        fs.files.staging.close()  # done by unmounting() already, unless libfuse never started
