"""The status snapshot: one JSON document saying what a mount is doing, and who assembles it.

``cosfs status`` prints it (``--json`` as it is), the metrics endpoint reads the same
numbers at each scrape. The schema below is the contract with scripts: a field is added
only with a default meaning, and anything else changes ``SNAPSHOT_VERSION``. Times are Unix
seconds; byte counts are bytes; ``errno`` is a symbolic name such as ``EIO``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, TypedDict

if TYPE_CHECKING:  # the provider only calls the parts' methods: no import of the layers at run time
    from cosfs.data.staging import StagingArea
    from cosfs.data.upload_tracker import UploadTracker
    from cosfs.filesystem.open_files import OpenFiles
    from cosfs.fuse_adapter.operations import CallCounts
    from cosfs.wire.request_stats import RequestStats

SNAPSHOT_VERSION = 1


class MountInfo(TypedDict):
    bucket: str  # BUCKET-APPID
    prefix: str  # the mounted prefix ("" for the whole bucket, else "some/dir/")
    mountpoint: str  # absolute path
    api: str  # "xml" or "json"
    pid: int  # the daemon's process id
    started: float  # when the daemon started serving


class UploadEntry(TypedDict):
    path: str  # path in the mount, from its root ("/dir/file")
    bytes_done: int  # bytes COS has acknowledged (a multipart upload's finished parts)
    bytes_total: int
    started: float
    rate_bps: float  # average bytes per second since the upload started


class DirtyEntry(TypedDict):
    files: int  # files written through the mount and not yet stored in COS
    bytes: int


class CacheEntry(TypedDict):
    directory: str  # the staging directory (cache_dir/BUCKET)
    bytes: int  # disk space the staged files take
    free_bytes: int  # free space left on its filesystem


class RequestCounts(TypedDict):
    count: int  # requests finished (a request repeated after a transient failure counts once)
    errors: int  # requests that failed for good, "not found" answers apart
    retries: int  # repeats (count of attempts beyond the first)
    not_found: int  # "no such object" answers: how cosfs learns that a path does not exist


class ErrorEntry(TypedDict):
    time: float
    operation: str  # cosfs's name of the request: stat, list, put, put_part, complete, ...
    key: str  # the object key
    code: str  # COS error code (NoSuchBucket, SlowDown, -180...), "HTTP 503", or "no response"
    errno: str  # what the application was told (EIO, EACCES, ...)
    message: str
    request_id: str  # x-cos-request-id, to quote to Tencent support ("" when COS never answered)


class Snapshot(TypedDict):
    version: int
    mount: MountInfo
    uploads: List[UploadEntry]  # running uploads, oldest first
    dirty: DirtyEntry
    cache: CacheEntry
    requests: Dict[str, RequestCounts]  # per operation name
    errors: List[ErrorEntry]  # the last 20 errors, oldest first
    kernel_calls: Dict[str, int]  # FUSE operations the kernel called, per name


def nothing_pending(snapshot: Snapshot) -> bool:
    """Whether unmounting now would store nothing more: no running upload, no dirty file."""
    return not snapshot["uploads"] and snapshot["dirty"]["files"] == 0


class MountSnapshot:
    """The provider the status socket and the metrics endpoint call: a fresh ``Snapshot`` per call.

    Every part it reads answers at once, without waiting for an upload to end.
    """

    def __init__(self, mount: MountInfo, uploads: "UploadTracker", requests: "RequestStats",
                 files: "OpenFiles", staging: "StagingArea", path_of: Callable[[str], str],
                 calls: Optional["CallCounts"] = None) -> None:
        self.mount = mount
        self._uploads = uploads
        self._requests = requests
        self._files = files
        self._staging = staging
        self._path_of = path_of
        self._calls = calls

    def __call__(self) -> Snapshot:
        dirty_files, dirty_bytes = self._files.dirty_summary()
        return Snapshot(
            version=SNAPSHOT_VERSION,
            mount=MountInfo(**self.mount),
            uploads=[
                UploadEntry(path=self._path_of(upload.key), bytes_done=upload.bytes_done,
                            bytes_total=upload.bytes_total, started=upload.started, rate_bps=upload.rate_bps)
                for upload in self._uploads.snapshot()
            ],
            dirty=DirtyEntry(files=dirty_files, bytes=dirty_bytes),
            cache=CacheEntry(directory=str(self._staging.directory), bytes=self._staging.used_bytes(),
                             free_bytes=self._staging.free_bytes()),
            requests={
                operation: RequestCounts(count=counts.count, errors=counts.errors, retries=counts.retries,
                                         not_found=counts.not_found)
                for operation, counts in self._requests.counts().items()
            },
            errors=[
                ErrorEntry(time=failure.time, operation=failure.operation, key=failure.key, code=failure.code,
                           errno=failure.errno, message=failure.message, request_id=failure.request_id)
                for failure in self._requests.recent_errors()
            ],
            kernel_calls=self._calls.snapshot() if self._calls is not None else {},
        )
