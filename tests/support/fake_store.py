"""An in-memory ``Store`` with XML API semantics, call counters and failure hooks.

The filesystem, write-back and reader layers are tested against this without HTTP. Every
verb is counted in ``calls``; ``fail(verb, error, times=n)`` makes the next n calls of a
verb raise ``error`` (mountpoint-s3's failure_client idea).
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from cosfs.store.interface import ListPage, Metadata, ObjectInfo, PartInfo, StoreLimits
from cosfs.wire.errors import CosError

FAKE_LIMITS = StoreLimits(
    max_put_size=5 * 1024**3, max_parts=10000, min_part_size=5, max_part_size=5 * 1024**3,
    part_copy=True,
)


def not_found(key: str) -> CosError:
    return CosError("not found", status=404, code="NoSuchKey", key=key)


@dataclass
class StoredObject:
    data: bytes
    meta: Dict[str, str]
    content_type: str
    mtime_ns: int

    @property
    def etag(self) -> str:
        return hashlib.md5(self.data).hexdigest()


@dataclass
class FakeUpload:
    store: "FakeStore"
    key: str
    upload_id: str
    meta: Dict[str, str]
    content_type: str
    parts: Dict[int, bytes] = field(default_factory=dict)
    part_size: Optional[int] = None
    initiated_ns: int = 0

    def put_part(self, number: int, data: bytes) -> PartInfo:
        self.store._call("put_part")
        self.parts[number] = bytes(data)
        return PartInfo(number, len(data), hashlib.md5(data).hexdigest())

    def copy_part(self, number: int, source_key: str, start: int, end: int,
                  if_match: Optional[str] = None) -> PartInfo:
        self.store._call("copy_part")
        source = self.store.objects.get(source_key)
        if source is None:
            raise not_found(source_key)
        if if_match is not None and if_match != source.etag:
            raise CosError("the copy source changed", status=412, code="PreconditionFailed",
                           operation="copy_part", key=source_key)
        data = source.data[start:end + 1]
        self.parts[number] = data
        return PartInfo(number, len(data), hashlib.md5(data).hexdigest())

    def list_parts(self) -> Sequence[PartInfo]:
        self.store._call("list_parts")
        return [PartInfo(n, len(d), hashlib.md5(d).hexdigest()) for n, d in sorted(self.parts.items())]

    def complete(self, parts: Sequence[PartInfo]) -> ObjectInfo:
        self.store._call("complete")
        data = b"".join(self.parts[p.number] for p in sorted(parts, key=lambda p: p.number))
        self.store.uploads.pop(self.upload_id, None)
        return self.store._store(self.key, data, self.meta, self.content_type)

    def abort(self) -> None:
        self.store._call("abort")
        self.store.uploads.pop(self.upload_id, None)


class FakeStore:
    """Objects in a dict; directories are ``dir/`` markers or implicit prefixes, as on COS."""

    def __init__(self, limits: StoreLimits = FAKE_LIMITS, clock=None) -> None:
        self.limits = limits
        self.objects: Dict[str, StoredObject] = {}
        self.uploads: Dict[str, FakeUpload] = {}
        self.calls: Counter = Counter()
        self._failures: Dict[str, List[Exception]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._clock = clock or (lambda: 1_700_000_000.0)

    # --- test controls ------------------------------------------------------------------

    def fail(self, verb: str, error: Optional[Exception] = None, times: int = 1) -> None:
        error = error or CosError("injected", status=503, code="SlowDown", errno_value=errno.EIO)
        self._failures.setdefault(verb, []).extend([error] * times)

    def _call(self, verb: str) -> None:
        with self._lock:
            self.calls[verb] += 1
            pending = self._failures.get(verb)
            if pending:
                raise pending.pop(0)

    def _store(self, key: str, data: bytes, meta, content_type) -> ObjectInfo:
        with self._lock:
            obj = StoredObject(bytes(data), dict(meta or {}), content_type or "application/octet-stream",
                               int(self._clock() * 1e9))
            self.objects[key] = obj
        return self._info(key, obj)

    def _info(self, key: str, obj: StoredObject, with_meta: bool = True) -> ObjectInfo:
        return ObjectInfo(key, len(obj.data), obj.mtime_ns, obj.etag, key.endswith("/"),
                          dict(obj.meta) if with_meta else None, obj.content_type)

    def put_raw(self, key: str, data: bytes = b"", meta: Optional[Metadata] = None) -> None:
        """Create an object behind the filesystem's back (no call counted)."""
        self._store(key, data, meta, None)

    # --- Store protocol -----------------------------------------------------------------

    def list_page(self, prefix: str, marker: str = "", max_keys: int = 1000) -> ListPage:
        self._call("list_page")
        with self._lock:
            keys = sorted(k for k in self.objects if k.startswith(prefix) and k > marker and k != prefix)
        files, dirs, last = [], [], None
        seen_dirs = set()
        for key in keys:
            if len(files) + len(dirs) >= max_keys:
                return ListPage(tuple(files), tuple(dirs), last)
            rest = key[len(prefix):]
            if "/" in rest:
                common = prefix + rest.split("/", 1)[0] + "/"
                if common not in seen_dirs and common > marker:
                    seen_dirs.add(common)
                    dirs.append(common)
                    last = common
                continue
            files.append(self._info(key, self.objects[key], with_meta=False))
            last = key
        return ListPage(tuple(files), tuple(dirs), None)

    def walk(self, prefix: str) -> Iterator[ObjectInfo]:
        self._call("walk")
        with self._lock:
            items = sorted((k, o) for k, o in self.objects.items() if k.startswith(prefix))
        for key, obj in items:
            yield self._info(key, obj, with_meta=False)

    def stat(self, key: str) -> Optional[ObjectInfo]:
        self._call("stat")
        with self._lock:
            obj = self.objects.get(key)
        return self._info(key, obj) if obj else None

    def create_dir(self, key: str, meta: Optional[Metadata] = None) -> None:
        self._call("create_dir")
        self._store(key, b"", meta, "application/x-directory")

    def delete_file(self, key: str) -> None:
        self._call("delete_file")
        with self._lock:
            self.objects.pop(key, None)

    def delete_dir(self, key: str) -> None:
        self._call("delete_dir")
        with self._lock:
            if any(k.startswith(key) and k != key for k in self.objects):
                raise CosError("not empty", code="DirectoryNotEmpty", errno_value=errno.ENOTEMPTY, key=key)
            self.objects.pop(key, None)

    def delete_many(self, keys: Sequence[str]) -> Sequence[Tuple[str, Exception]]:
        self._call("delete_many")
        with self._lock:
            for key in keys:
                self.objects.pop(key, None)
        return []

    def move(self, src: str, dst: str, overwrite: bool = True, meta: Optional[Metadata] = None,
             content_type: Optional[str] = None) -> None:
        self._call("move")
        with self._lock:
            if src not in self.objects:
                raise not_found(src)
            if not overwrite and dst in self.objects:
                raise CosError("exists", code="-177", key=dst)
            moved = self.objects.pop(src)
            if meta is not None:
                moved = replace(moved, meta=dict(meta), content_type=content_type or moved.content_type)
            self.objects[dst] = moved

    def copy(self, src: str, dst: str, meta: Optional[Metadata] = None, content_type: Optional[str] = None) -> None:
        self._call("copy")
        with self._lock:
            obj = self.objects.get(src)
            if obj is None:
                raise not_found(src)
            self.objects[dst] = replace(obj, meta=dict(obj.meta if meta is None else meta),
                                        content_type=content_type or obj.content_type,
                                        mtime_ns=int(self._clock() * 1e9))

    def put_object(self, key: str, data: bytes, meta: Optional[Metadata] = None,
                   content_type: Optional[str] = None) -> ObjectInfo:
        self._call("put_object")
        return self._store(key, data, meta, content_type)

    def begin_upload(self, key: str, size: Optional[int] = None, meta: Optional[Metadata] = None,
                     content_type: Optional[str] = None, part_size: Optional[int] = None) -> FakeUpload:
        self._call("begin_upload")
        upload = FakeUpload(self, key, f"upload-{next(self._ids)}", dict(meta or {}),
                            content_type or "application/octet-stream", initiated_ns=int(self._clock() * 1e9))
        self.uploads[upload.upload_id] = upload
        return upload

    def find_upload(self, key: str, size: Optional[int] = None) -> Optional[FakeUpload]:
        self._call("find_upload")
        found = [u for u in self.uploads.values() if u.key == key]
        return found[-1] if found else None

    def unfinished_uploads(self, key: str) -> Sequence[Tuple[str, int]]:
        self._call("unfinished_uploads")
        return [(u.upload_id, u.initiated_ns) for u in self.uploads.values() if u.key == key]

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call("abort_upload")
        self.uploads.pop(upload_id, None)

    def read_range(self, key: str, start: int, length: int, etag: Optional[str] = None) -> bytes:
        self._call("read_range")
        with self._lock:
            obj = self.objects.get(key)
        if obj is None:
            raise not_found(key)
        if etag is not None and etag != obj.etag:
            raise CosError("the object changed", status=412, code="PreconditionFailed", operation="read", key=key)
        return obj.data[start:start + length]

    def set_meta(self, key: str, meta: Metadata, content_type: Optional[str] = None) -> None:
        self._call("set_meta")
        with self._lock:
            obj = self.objects.get(key)
            if obj is None:
                raise not_found(key)
            self.objects[key] = replace(obj, meta=dict(meta), content_type=content_type or obj.content_type)

    def probe(self) -> None:
        self._call("probe")
