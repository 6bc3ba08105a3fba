"""Attributes that outlive the mount: a sqlite database of what HEADs answered, reused only
when a list page proves the object unchanged.

A remount starts with empty caches, and a cold ``ls -l`` of a large directory would HEAD
every file again. This store keeps, per file path of one mount of one bucket and prefix, the
``Attr`` a HEAD gave and the *validators* of that answer: the ETag, the size and the
Last-Modified time in whole seconds. A list page carries the same three for every key, so
when they match, the stored attributes are those of the object COS holds now and no HEAD is
needed; when they differ, the entry is ignored (and replaced by the next HEAD).

Why whole seconds: an XML list page dates an object to the millisecond
(``2024-01-01T00:00:00.123Z``) while a HEAD's ``Last-Modified`` is an HTTP date, to the second;
the JSON API gives whole seconds in both. ETag and size agree exactly on both APIs (the JSON
API's ``sha`` and ``filesize``, in list entries and stat answers alike).

Rules that keep it safe and cheap:

- Writes are queued and written in batches (one transaction for many keys), on the thread
  that fills a batch or asks for a flush, never under a lock other operations need: the
  queue's lock is held only to append or swap the queue.
- Readers and the writer have connections of their own (WAL: a read never waits for a
  write). Both wait at most ``BUSY_TIMEOUT`` for another mount's lock; a batch that cannot
  get it is kept for the next try, and when too much is queued the oldest recorded
  attributes are dropped (never the removals, which keep the database from outliving a
  change this mount made).
- At most ``max_entries`` entries: past that, the least recently used ones are deleted, a
  tenth of the bound at a time.
- A database that is not one (garbage, truncated) is moved aside with a warning and a new
  one is made; if even that fails, or a corruption shows later, the store turns itself off
  for this mount. It never fails a mount or a FUSE call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from cosfs.metadata.attrs import Attr
from cosfs.store.interface import ObjectInfo

log = logging.getLogger(__name__)

#: Seconds a connection waits for another mount's lock before the statement gives up.
BUSY_TIMEOUT = 0.2
#: Queued changes that make the thread adding the last one write them all.
BATCH = 256
#: A queue older than this is written by the next change, however short it is.
FLUSH_AFTER = 2.0
#: Queued changes kept while the database is locked; past that, recorded attributes are dropped.
MAX_QUEUED = 16 * BATCH
#: How stale an entry's last use may be before a use is written: LRU order to the hour is
#: enough to trim by, and a remounted listing of 10,000 files then rewrites no rows (it
#: rewrote all of them, 40% of that listing's time).
USE_REFRESH = 3600.0
#: Keys per ``IN (...)`` query (below sqlite's historic limit of 999 variables).
QUERY_CHUNK = 500
SCHEMA_VERSION = "1"
#: ``modified_s`` of attributes this mount stored itself (``Validators.of_own_change``).
UNKNOWN_MODIFIED = -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attrs (
    path TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    size INTEGER NOT NULL,
    modified_s INTEGER NOT NULL,
    attr TEXT NOT NULL,
    used INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attrs_by_use ON attrs (used);
CREATE TABLE IF NOT EXISTS about (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Validators:
    """What both a list page and a HEAD say about one version of an object."""

    etag: str
    size: int
    modified_s: int

    @classmethod
    def of(cls, info: ObjectInfo) -> "Validators":
        return cls(info.etag, info.size, info.mtime_ns // 1_000_000_000)

    @classmethod
    def of_own_change(cls, attr: Attr) -> "Validators":
        """What this mount knows of an object it just stored or changed: the ETag COS
        answered and the size, not COS's Last-Modified (no upload answer carries it)."""
        return cls(attr.etag, attr.size, UNKNOWN_MODIFIED)

    def proven_by(self, listed: "Validators") -> bool:
        """Whether a list entry showing ``listed`` is the version these validators describe.
        For this mount's own change the ETag and size decide, and the list entry's time
        then becomes part of the record."""
        if self.modified_s == UNKNOWN_MODIFIED:
            return (self.etag, self.size) == (listed.etag, listed.size)
        return self == listed


@dataclass(frozen=True)
class _Put:
    path: str
    attr: Attr
    validators: Validators


@dataclass(frozen=True)
class _Drop:
    path: str
    tree: bool


@dataclass(frozen=True)
class _Use:
    paths: Tuple[str, ...]


_Change = Union[_Put, _Drop, _Use]


def encode_attr(attr: Attr) -> str:
    return json.dumps([attr.kind, attr.mode, attr.uid, attr.gid, attr.size, attr.mtime_ns, attr.etag,
                       attr.content_type, dict(attr.meta), attr.link_target], separators=(",", ":"))


def decode_attr(text: str) -> Attr:
    kind, mode, uid, gid, size, mtime_ns, etag, content_type, meta, link_target = json.loads(text)
    return Attr(kind, mode, uid, gid, size, mtime_ns, etag, content_type, meta, link_target)


class AttrStore:
    """The persistent attributes of one mount's files (bucket and prefix), in ``path``."""

    def __init__(self, path: Path, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be 1 or more, not {max_entries}")
        self.path = path
        self.max_entries = max_entries
        self._clock = clock
        self._queue_lock = threading.Lock()
        self._queue: List[_Change] = []  # guarded by self._queue_lock
        self._queued_since = 0.0  # guarded by self._queue_lock
        self._reader_lock = threading.Lock()
        self._writer_lock = threading.Lock()
        self._reader: Optional[sqlite3.Connection] = None  # guarded by self._reader_lock
        self._writer: Optional[sqlite3.Connection] = None  # guarded by self._writer_lock
        self._entries = 0  # guarded by self._writer_lock: an upper bound of the rows
        self._off = False
        self._open()

    # --- opening ------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                self._connect()
            except sqlite3.DatabaseError as error:
                self._close_connections()
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
                log.warning("attribute cache %s is damaged (%s); moved aside to %s and started anew",
                            self.path, error, aside.name)
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                self._connect()
        except (OSError, sqlite3.Error) as error:
            self._close_connections()
            self._off = True
            log.warning("attribute cache %s cannot be used (%s); this mount HEADs files as if it were off",
                        self.path, error)

    def _connect(self) -> None:
        writer = self._writer = _connection(self.path)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.executescript(_SCHEMA)
        writer.execute("INSERT OR IGNORE INTO about VALUES ('schema', ?)", (SCHEMA_VERSION,))
        version = writer.execute("SELECT value FROM about WHERE name='schema'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version}, not {SCHEMA_VERSION}")
        self._entries = writer.execute("SELECT count(*) FROM attrs").fetchone()[0]
        self._reader = _connection(self.path)

    def _close_connections(self) -> None:
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None

    @property
    def enabled(self) -> bool:
        return not self._off

    # --- reading ------------------------------------------------------------------------

    def matching(self, listed: Sequence[Tuple[str, Validators]]) -> Dict[str, Attr]:
        """The stored attributes of those ``listed`` paths whose validators are the listed ones
        (the object has not changed since its HEAD); their use is recorded for the LRU."""
        if self._off or not listed:
            return {}
        wanted = dict(listed)
        found: Dict[str, Attr] = {}
        pinned: List[_Put] = []  # this mount's own records, dated by the list entry from now on
        touched: List[str] = []  # entries whose last use is older than USE_REFRESH
        stale_use_ms = int((self._clock() - USE_REFRESH) * 1000)
        names = list(wanted)
        try:
            with self._reader_lock:
                if self._reader is None:
                    return {}
                for start in range(0, len(names), QUERY_CHUNK):
                    chunk = names[start:start + QUERY_CHUNK]
                    rows = self._reader.execute(
                        f"SELECT path, etag, size, modified_s, attr, used FROM attrs WHERE path IN "
                        f"({','.join('?' * len(chunk))})", chunk).fetchall()
                    for path, etag, size, modified_s, attr, used in rows:
                        stored = Validators(etag, size, modified_s)
                        if stored.proven_by(wanted[path]):
                            found[path] = decode_attr(attr)
                            if stored != wanted[path]:
                                pinned.append(_Put(path, found[path], wanted[path]))
                            elif used < stale_use_ms:
                                touched.append(path)
        except sqlite3.OperationalError as error:
            log.debug("attribute cache not read (%s)", error)
            return {}
        except (sqlite3.DatabaseError, ValueError, TypeError) as error:
            self._turn_off(error)
            return {}
        for put in pinned:
            self._enqueue(put)
        if touched:
            self._enqueue(_Use(tuple(touched)))
        return found

    def count_below(self, dir_path: str, limit: int) -> int:
        """How many entries the store holds below directory ``dir_path``, counted up to
        ``limit`` (an estimate of its size that reads no more than ``limit`` index rows)."""
        if self._off:
            return 0
        below = dir_path.rstrip("/") + "/"
        try:
            with self._reader_lock:
                if self._reader is None:
                    return 0
                return self._reader.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM attrs WHERE path >= ? AND path < ? LIMIT ?)",
                    (below, below[:-1] + "0", limit)).fetchone()[0]
        except sqlite3.OperationalError as error:
            log.debug("attribute cache not read (%s)", error)
            return 0
        except sqlite3.DatabaseError as error:
            self._turn_off(error)
            return 0

    # --- changing -----------------------------------------------------------------------

    def record(self, path: str, attr: Attr, validators: Validators) -> None:
        """A HEAD of ``path`` answered ``attr`` with ``validators``."""
        self._enqueue(_Put(path, attr, validators))

    def record_own(self, path: str, attr: Attr) -> None:
        """This mount stored ``attr`` at ``path`` (an upload, a metadata change, a rename).

        The old entry is dropped first: if the new one is later shed under pressure
        (``MAX_QUEUED``), the removal still reaches the database."""
        self._enqueue(_Drop(path, False))
        self._enqueue(_Put(path, attr, Validators.of_own_change(attr)))

    def forget(self, path: str, tree: bool = False) -> None:
        """``path`` (and with ``tree`` everything below it) changed through this mount."""
        self._enqueue(_Drop(path, tree))

    def flush(self) -> None:
        """Write what is queued now (one transaction)."""
        if self._off:
            return
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if batch:
            self._write(batch)

    def close(self) -> None:
        """Write what is queued and close the database (at unmount)."""
        self.flush()
        with self._reader_lock, self._writer_lock:
            self._close_connections()
        self._off = True

    def _enqueue(self, change: _Change) -> None:
        if self._off:
            return
        now = time.monotonic()
        with self._queue_lock:
            if not self._queue:
                self._queued_since = now
            self._queue.append(change)
            due = len(self._queue) >= BATCH or now - self._queued_since >= FLUSH_AFTER
        if due:
            self.flush()

    def _write(self, batch: List[_Change]) -> None:
        now_ms = int(self._clock() * 1000)
        try:
            with self._writer_lock:
                writer = self._writer
                if writer is None:
                    return
                with writer:
                    for change in batch:
                        _apply(writer, change, now_ms)
                self._entries += sum(1 for change in batch if isinstance(change, _Put))
                if self._entries > self.max_entries:
                    self._trim(writer)
        except sqlite3.OperationalError as error:
            log.debug("attribute cache busy (%s): %d change(s) kept for later", error, len(batch))
            self._requeue(batch)
        except sqlite3.DatabaseError as error:
            self._turn_off(error)

    def _trim(self, writer: sqlite3.Connection) -> None:
        """Delete the least recently used entries down to 90% of the bound (the caller holds the lock)."""
        self._entries = writer.execute("SELECT count(*) FROM attrs").fetchone()[0]
        excess = self._entries - self.max_entries
        if excess <= 0:
            return
        doomed = excess + self.max_entries // 10
        with writer:
            writer.execute("DELETE FROM attrs WHERE path IN (SELECT path FROM attrs ORDER BY used LIMIT ?)", (doomed,))
        self._entries = max(0, self._entries - doomed)

    def _requeue(self, batch: List[_Change]) -> None:
        with self._queue_lock:
            queue = batch + self._queue
            if len(queue) > MAX_QUEUED:
                queue = [change for change in queue if isinstance(change, _Drop)]
            self._queue = queue

    def _turn_off(self, error: Exception) -> None:
        if self._off:
            return
        self._off = True
        log.warning("attribute cache %s is damaged (%s); off for this mount, rebuilt at the next one",
                    self.path, error)
        try:
            with self._reader_lock, self._writer_lock:
                self._close_connections()
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(self._clock())}")
            os.replace(self.path, aside)
        except OSError as move_error:
            log.warning("attribute cache %s not moved aside: %s", self.path, move_error)

    def __len__(self) -> int:
        """Entries stored (queued changes not counted)."""
        with self._reader_lock:
            if self._reader is None:
                return 0
            return self._reader.execute("SELECT count(*) FROM attrs").fetchone()[0]


def _connection(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def _apply(writer: sqlite3.Connection, change: _Change, now_ms: int) -> None:
    if isinstance(change, _Put):
        v = change.validators
        writer.execute("INSERT OR REPLACE INTO attrs VALUES (?, ?, ?, ?, ?, ?)",
                       (change.path, v.etag, v.size, v.modified_s, encode_attr(change.attr), now_ms))
    elif isinstance(change, _Drop):
        writer.execute("DELETE FROM attrs WHERE path = ?", (change.path,))
        if change.tree:
            below = change.path.rstrip("/") + "/"
            writer.execute("DELETE FROM attrs WHERE path >= ? AND path < ?", (below, below[:-1] + "0"))
    elif isinstance(change, _Use):
        writer.executemany("UPDATE attrs SET used = ? WHERE path = ?", ((now_ms, path) for path in change.paths))


def store_file_name(prefix: str) -> str:
    """The database file of a mount of ``prefix`` (one per bucket and prefix)."""
    return f"{hashlib.sha256(prefix.encode('utf-8')).hexdigest()[:16]}.sqlite"
