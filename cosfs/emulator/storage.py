"""The emulator's durable object store: an SQLite index and immutable data files under ``--root``.

Layout::

    ROOT/index.db                  objects, unfinished uploads and their parts
    ROOT/data/<bucket>/<xx>/<uuid>  object bodies, never modified once written
    ROOT/parts/<upload-id>/<n>     parts of unfinished uploads
    ROOT/tmp/                      bodies being received

Why this shape: an object key never becomes a file name (keys like ``../x``, ``a`` next to
``a/b`` or 900-byte names would be unsafe or impossible as paths), so no key can reach
outside the root whatever it contains. Bodies are streamed into ``tmp/``, fsynced, renamed
into ``data/`` and only then made visible by one index transaction: a crash at any point
leaves either the old object or the new one, never a partial one. Files that no index row
names (a crash between rename and commit) are removed at start-up. Because data files are
immutable, a copy is a hard link.

Keys are stored as UTF-8 BLOBs so that SQLite orders them bytewise, as COS lists them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from cosfs.wire import facts

MAX_KEY_BYTES = facts.MAX_KEY_BYTES
MIN_PART_SIZE = facts.MIN_PART_SIZE
MAX_PARTS = facts.MAX_PARTS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key BLOB NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    sha1 TEXT NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    content_type TEXT NOT NULL, meta TEXT NOT NULL, extra TEXT NOT NULL,
    object_type TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (bucket, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key BLOB NOT NULL,
    initiated_ns INTEGER NOT NULL, content_type TEXT NOT NULL, meta TEXT NOT NULL,
    extra TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, data TEXT NOT NULL, mtime_ns INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)) WITHOUT ROWID;
"""


class StorageError(Exception):
    """A request the store refuses; ``code`` and ``status`` are the XML API's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str
    sha1: str
    mtime_ns: int
    ctime_ns: int
    content_type: str
    meta: Dict[str, str]
    #: API-specific attributes that are not COS metadata (JSON ``biz_attr``, ``authority``...).
    extra: Dict[str, str]
    object_type: str
    data: str


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated_ns: int
    content_type: str
    meta: Dict[str, str]
    #: JSON slice sessions keep ``filesize``/``slice_size`` here.
    extra: Dict[str, str]


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    etag: str
    data: str
    mtime_ns: int


@dataclass
class ListResult:
    objects: List[ObjectRecord] = field(default_factory=list)
    prefixes: List[str] = field(default_factory=list)
    truncated: bool = False
    next_marker: str = ""


@dataclass
class Received:
    """A body received into ``tmp/``: where it is and its digests. ``sha1`` is empty where
    nobody needs it yet (a part; a completed upload: ``Storage.content_sha1`` computes it
    when first asked)."""

    path: Path
    size: int
    md5: str
    sha1: str = ""


def check_key(key: str) -> None:
    """Refuse keys COS refuses, and any key that looks like an escape attempt."""
    raw = key.encode("utf-8", "surrogatepass")
    if not key:
        raise StorageError(400, "InvalidObjectName", "empty object key")
    if len(raw) > MAX_KEY_BYTES:
        raise StorageError(400, "KeyTooLong", f"object key is {len(raw)} bytes; the limit is {MAX_KEY_BYTES}")
    if any(ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise StorageError(400, "InvalidObjectName", "object key contains a control character or NUL")
    if key.startswith("/") or ".." in key.split("/"):
        raise StorageError(400, "InvalidObjectName", "object key is absolute or contains a '..' segment")


def _next_prefix(prefix: bytes) -> Optional[bytes]:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class Storage:
    """Objects and unfinished uploads of every bucket; safe to use from many threads."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.clock = clock
        #: Without fsync, what was answered survives the emulator's process (kill -9), not a
        #: crash of the machine: enough for tests and benchmarks, three syscalls per PUT fewer.
        self.fsync = fsync
        for sub in ("data", "parts", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.root / "index.db"), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL" if fsync else "PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._collect_garbage()

    # --- helpers ------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return int(self.clock() * 1e9)

    def _data_path(self, name: str) -> Path:
        return self.root / name

    def _collect_garbage(self) -> None:
        """Remove what a crash left behind: received bodies and unreferenced data files."""
        shutil.rmtree(self.root / "tmp", ignore_errors=True)
        (self.root / "tmp").mkdir()
        with self._lock:
            referenced = {row[0] for row in self._db.execute("SELECT data FROM objects")}
            referenced |= {row[0] for row in self._db.execute("SELECT data FROM parts")}
        for base in ("data", "parts"):
            for path in (self.root / base).rglob("*"):
                if path.is_file() and str(path.relative_to(self.root)) not in referenced:
                    path.unlink()

    def receive(self, chunks: Iterable[bytes], sha1: bool = True) -> Received:
        """Stream ``chunks`` into a new file under ``tmp/`` and fsync it (unless ``fsync`` is
        off). ``sha1=False`` skips the SHA-1 nobody asks of a part (a third of the hashing)."""
        path = self.root / "tmp" / uuid.uuid4().hex
        md5, sha, size = hashlib.md5(), hashlib.sha1() if sha1 else None, 0
        try:
            with open(path, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    md5.update(chunk)
                    if sha is not None:
                        sha.update(chunk)
                    size += len(chunk)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Received(path, size, md5.hexdigest(), sha.hexdigest() if sha is not None else "")

    def _joined(self, paths: List[Path]) -> Received:
        """The files ``paths`` end to end in a new file under ``tmp/``, copied by the kernel
        (``copy_file_range``) and not hashed: a completed upload's ETag comes from its parts'
        ETags, and its SHA-1 is computed only if the JSON API asks (``content_sha1``)."""
        path = self.root / "tmp" / uuid.uuid4().hex
        size = 0
        try:
            with open(path, "wb") as out:
                for source in paths:
                    with open(source, "rb") as body:
                        length = os.fstat(body.fileno()).st_size
                        copied = 0
                        while copied < length:
                            step = os.copy_file_range(body.fileno(), out.fileno(), length - copied)
                            if step == 0:
                                raise StorageError(500, "InternalError", f"{source.name} ended early")
                            copied += step
                        size += length
                if self.fsync:
                    os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Received(path, size, "")

    def content_sha1(self, record: ObjectRecord) -> str:
        """The SHA-1 of ``record``'s bytes (the JSON API's ``sha``), computed and kept the
        first time it is asked for where the object was assembled from parts."""
        if record.sha1:
            return record.sha1
        digest = hashlib.sha1()
        with self.open(record) as body:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
        sha1 = digest.hexdigest()
        with self._lock:
            self._db.execute("UPDATE objects SET sha1=? WHERE bucket=? AND data=?", (sha1, record.bucket, record.data))
        return sha1

    def discard(self, received: Received) -> None:
        received.path.unlink(missing_ok=True)

    def _adopt(self, received: Received, directory: str) -> str:
        """Move a received body to its final place; returns its name relative to the root."""
        name = f"{directory}/{uuid.uuid4().hex}"
        target = self._data_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, target)
        if self.fsync:
            _fsync_dir(target.parent)
        return name

    def _row_to_record(self, row) -> ObjectRecord:
        return ObjectRecord(
            bucket=row[0], key=row[1].decode("utf-8", "surrogatepass"), size=row[2], etag=row[3],
            sha1=row[4], mtime_ns=row[5], ctime_ns=row[6], content_type=row[7],
            meta=json.loads(row[8]), extra=json.loads(row[9]), object_type=row[10], data=row[11],
        )

    # --- objects ------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> Optional[ObjectRecord]:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM objects WHERE bucket=? AND key=?", (bucket, key.encode("utf-8", "surrogatepass"))
            ).fetchone()
        return self._row_to_record(row) if row else None

    def open(self, record: ObjectRecord) -> BinaryIO:
        """The body of ``record``; still readable if the object is replaced meanwhile."""
        return open(self._data_path(record.data), "rb")

    def put(
        self,
        bucket: str,
        key: str,
        received: Received,
        content_type: str = "application/octet-stream",
        meta: Optional[Dict[str, str]] = None,
        extra: Optional[Dict[str, str]] = None,
        etag: Optional[str] = None,
        object_type: str = "normal",
    ) -> ObjectRecord:
        """Make ``received`` the object ``key``, atomically replacing any previous one."""
        try:
            check_key(key)
        except StorageError:
            self.discard(received)
            raise
        name = self._adopt(received, f"data/{bucket}/{uuid.uuid4().hex[:2]}")
        return self._commit(bucket, key, name, received.size, etag or received.md5, received.sha1,
                            content_type, meta or {}, extra or {}, object_type)

    def _commit(self, bucket, key, name, size, etag, sha1, content_type, meta, extra, object_type,
                keep_ctime: bool = True) -> ObjectRecord:
        now = self._now_ns()
        raw_key = key.encode("utf-8", "surrogatepass")
        with self._lock:
            old = self._db.execute("SELECT data, ctime_ns FROM objects WHERE bucket=? AND key=?",
                                   (bucket, raw_key)).fetchone()
            ctime = old[1] if old and keep_ctime else now
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (bucket, raw_key, size, etag, sha1, now, ctime, content_type,
                 json.dumps(meta, sort_keys=True), json.dumps(extra, sort_keys=True), object_type, name),
            )
        if old and old[0] != name:
            self._data_path(old[0]).unlink(missing_ok=True)
        return self.head(bucket, key)

    def copy(self, bucket: str, src: str, dst: str, meta: Optional[Dict[str, str]] = None,
             content_type: Optional[str] = None) -> ObjectRecord:
        """Copy ``src`` to ``dst`` server-side (a hard link: data files never change);
        ``meta``/``content_type`` replace the source's when given."""
        check_key(dst)
        record = self.head(bucket, src)
        if record is None:
            raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
        name = f"data/{bucket}/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"
        target = self._data_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(self._data_path(record.data), target)
        return self._commit(bucket, dst, name, record.size, record.etag, record.sha1,
                            content_type if content_type is not None else record.content_type,
                            record.meta if meta is None else meta, record.extra, record.object_type,
                            keep_ctime=src == dst)

    def update(self, bucket: str, key: str, meta: Optional[Dict[str, str]] = None,
               content_type: Optional[str] = None, extra: Optional[Dict[str, str]] = None) -> ObjectRecord:
        """Change metadata in place (JSON API ``update``); ``None`` leaves a part unchanged."""
        record = self.head(bucket, key)
        if record is None:
            raise StorageError(404, "NoSuchKey", "The specified key does not exist.")
        with self._lock:
            self._db.execute(
                "UPDATE objects SET meta=?, content_type=?, extra=?, mtime_ns=? WHERE bucket=? AND key=?",
                (json.dumps(record.meta if meta is None else meta, sort_keys=True),
                 record.content_type if content_type is None else content_type,
                 json.dumps({**record.extra, **(extra or {})}, sort_keys=True), self._now_ns(),
                 bucket, key.encode("utf-8", "surrogatepass")),
            )
        return self.head(bucket, key)

    def delete(self, bucket: str, key: str) -> bool:
        """Delete ``key``; returns whether it existed."""
        raw_key = key.encode("utf-8", "surrogatepass")
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE bucket=? AND key=?", (bucket, raw_key)).fetchone()
            if row is None:
                return False
            self._db.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, raw_key))
        self._data_path(row[0]).unlink(missing_ok=True)
        return True

    def append(self, bucket: str, key: str, position: int, received: Received) -> ObjectRecord:
        """APPEND Object: add ``received`` at ``position``, which must be the current length."""
        check_key(key)
        with self._lock:  # one append at a time, so the position check holds until the commit
            try:
                record = self.head(bucket, key)
                if record is not None and record.object_type != "appendable":
                    raise StorageError(409, "ObjectNotAppendable", "the object is not appendable")
                current = record.size if record else 0
                if position != current:
                    raise StorageError(409, "PositionNotEqualToLength",
                                       f"position {position} is not the object length {current}")
                combined = self.receive(_concat([self._data_path(record.data)] if record else [], received.path))
            finally:
                self.discard(received)
            return self.put(bucket, key, combined, record.content_type if record else "application/octet-stream",
                            record.meta if record else {}, record.extra if record else {},
                            object_type="appendable")

    def list(self, bucket: str, prefix: str = "", delimiter: str = "", marker: str = "",
             max_keys: int = 1000) -> ListResult:
        """A GET Bucket page: keys after ``marker`` under ``prefix``, grouped at ``delimiter``."""
        result = ListResult()
        raw_prefix = prefix.encode("utf-8")
        upper = _next_prefix(raw_prefix) if raw_prefix else None
        cursor, include_cursor = marker.encode("utf-8"), False
        if cursor < raw_prefix:
            cursor, include_cursor = raw_prefix, True
        elif delimiter and marker.startswith(prefix) and delimiter in marker[len(prefix):]:
            rest = marker[len(prefix):]
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            skip = _next_prefix(common.encode("utf-8"))
            if skip is None:
                return result
            cursor, include_cursor = skip, True
        while len(result.objects) + len(result.prefixes) < max_keys:
            rows = self._range(bucket, cursor, include_cursor, upper, 1000)
            if not rows:
                return result
            include_cursor = False
            for row in rows:
                if len(result.objects) + len(result.prefixes) >= max_keys:
                    result.truncated = True
                    return result
                key = row[1].decode("utf-8", "surrogatepass")
                rest = key[len(prefix):]
                if delimiter and delimiter in rest:
                    common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                    result.prefixes.append(common)
                    result.next_marker = common
                    skip = _next_prefix(common.encode("utf-8"))
                    if skip is None:
                        return result
                    cursor, include_cursor = skip, True
                    break
                result.objects.append(self._row_to_record(row))
                result.next_marker = key
                cursor = row[1]
        result.truncated = bool(self._range(bucket, cursor, include_cursor, upper, 1))
        return result

    def _range(self, bucket: str, cursor: bytes, inclusive: bool, upper: Optional[bytes], limit: int):
        condition = "key >= ?" if inclusive else "key > ?"
        query = f"SELECT * FROM objects WHERE bucket=? AND {condition}"
        args: List[object] = [bucket, cursor]
        if upper is not None:
            query += " AND key < ?"
            args.append(upper)
        query += " ORDER BY key LIMIT ?"
        args.append(limit)
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def has_prefix(self, bucket: str, prefix: str) -> bool:
        """Whether any object key starts with ``prefix`` (an implicit directory)."""
        raw = prefix.encode("utf-8")
        return bool(self._range(bucket, raw, True, _next_prefix(raw), 1))

    # --- multipart ----------------------------------------------------------------------

    def create_upload(self, bucket: str, key: str, content_type: str = "application/octet-stream",
                      meta: Optional[Dict[str, str]] = None, extra: Optional[Dict[str, str]] = None) -> UploadRecord:
        check_key(key)
        upload_id = f"{int(self.clock())}{uuid.uuid4().hex}"
        with self._lock:
            self._db.execute("INSERT INTO uploads VALUES (?,?,?,?,?,?,?)",
                             (upload_id, bucket, key.encode("utf-8", "surrogatepass"), self._now_ns(),
                              content_type, json.dumps(meta or {}), json.dumps(extra or {})))
        return self.get_upload(bucket, upload_id)

    def get_upload(self, bucket: str, upload_id: str) -> UploadRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE upload_id=? AND bucket=?",
                                   (upload_id, bucket)).fetchone()
        if row is None:
            raise StorageError(404, "NoSuchUpload", "The specified upload does not exist.")
        return UploadRecord(row[0], row[1], row[2].decode("utf-8", "surrogatepass"), row[3], row[4],
                            json.loads(row[5]), json.loads(row[6]))

    def uploads(self, bucket: str, prefix: str = "") -> List[UploadRecord]:
        """Unfinished uploads whose key starts with ``prefix``, by key then initiation time."""
        raw = prefix.encode("utf-8")
        with self._lock:
            rows = self._db.execute("SELECT upload_id FROM uploads WHERE bucket=? AND key >= ? "
                                    "ORDER BY key, initiated_ns", (bucket, raw)).fetchall()
        records = [self.get_upload(bucket, row[0]) for row in rows]
        return [r for r in records if r.key.startswith(prefix)]

    def put_part(self, bucket: str, upload_id: str, number: int, received: Received) -> PartRecord:
        """Store part ``number``; the same number again replaces it."""
        try:
            self.get_upload(bucket, upload_id)
        except StorageError:
            self.discard(received)
            raise
        if not 1 <= number <= MAX_PARTS:
            self.discard(received)
            raise StorageError(400, "InvalidArgument", f"part number {number} is not within 1..{MAX_PARTS}")
        name = self._adopt(received, f"parts/{upload_id}")
        with self._lock:
            old = self._db.execute("SELECT data FROM parts WHERE upload_id=? AND number=?",
                                   (upload_id, number)).fetchone()
            self._db.execute("INSERT OR REPLACE INTO parts VALUES (?,?,?,?,?,?)",
                             (upload_id, number, received.size, received.md5, name, self._now_ns()))
        if old:
            self._data_path(old[0]).unlink(missing_ok=True)
        return PartRecord(number, received.size, received.md5, name, self._now_ns())

    def part_from_copy(self, bucket: str, upload_id: str, number: int, source: ObjectRecord,
                       start: int, end: int) -> PartRecord:
        """Upload Part Copy: bytes ``start..end`` of ``source`` as part ``number``."""
        with self.open(source) as body:
            body.seek(start)
            received = self.receive(read_exactly(body, end - start + 1), sha1=False)
        return self.put_part(bucket, upload_id, number, received)

    def parts(self, upload_id: str) -> List[PartRecord]:
        with self._lock:
            rows = self._db.execute("SELECT number, size, etag, data, mtime_ns FROM parts WHERE upload_id=? "
                                    "ORDER BY number", (upload_id,)).fetchall()
        return [PartRecord(*row) for row in rows]

    def complete_upload(self, bucket: str, upload_id: str, chosen: List[Tuple[int, str]],
                        min_part_size: int = MIN_PART_SIZE) -> ObjectRecord:
        """Assemble ``chosen`` ``(number, etag)`` parts, checked as COS checks them."""
        upload = self.get_upload(bucket, upload_id)
        stored = {part.number: part for part in self.parts(upload_id)}
        if not chosen:
            raise StorageError(400, "MalformedXML", "CompleteMultipartUpload lists no part")
        numbers = [number for number, _ in chosen]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise StorageError(400, "InvalidPartOrder", "parts must be listed in ascending order")
        selected = []
        for index, (number, etag) in enumerate(chosen):
            part = stored.get(number)
            if part is None or etag.strip('"') != part.etag:
                raise StorageError(400, "InvalidPart", f"part {number} was not uploaded or its ETag differs")
            if part.size < min_part_size and index < len(chosen) - 1:
                raise StorageError(400, "EntityTooSmall", f"part {number} is smaller than {min_part_size} bytes")
            selected.append(part)
        received = self._joined([self._data_path(p.data) for p in selected])
        digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in selected)).hexdigest()
        record = self.put(bucket, upload.key, received, upload.content_type, upload.meta,
                          {k: v for k, v in upload.extra.items() if k in ("biz_attr", "authority")},
                          etag=f"{digest}-{len(selected)}")
        self._drop_upload(upload_id)
        return record

    def abort_upload(self, bucket: str, upload_id: str) -> None:
        self.get_upload(bucket, upload_id)
        self._drop_upload(upload_id)

    def _drop_upload(self, upload_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            self._db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
        shutil.rmtree(self.root / "parts" / upload_id, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _concat(paths: List[Path], tail: Optional[Path] = None, chunk: int = 1 << 20) -> Iterable[bytes]:
    for path in paths + ([tail] if tail else []):
        with open(path, "rb") as body:
            while True:
                data = body.read(chunk)
                if not data:
                    break
                yield data


def read_exactly(body: BinaryIO, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Up to ``length`` bytes from ``body``'s position, a chunk at a time."""
    while length > 0:
        data = body.read(min(chunk, length))
        if not data:
            return
        length -= len(data)
        yield data
