"""The journal of staged data: what each staging file holds and what must become of it.

Every staging file (``NAME.staged``) has a small record beside it (``NAME.record``, JSON)
naming the bucket and key it belongs to, the object's ETag when the staged copy was taken
(``base_etag``; ``None`` when there was no object), the metadata to store it with, the
upload session begun for it, whether it is a sparse copy (only the bytes written, with
their ranges and the new size: ``Record.sparse``), and its state:

- ``writing``: open and being changed; the data is not a complete version yet;
- ``closed``: the writer is done; the data is a complete version waiting to be stored;
- ``failed``: storing a complete version failed; the data waits for the next try;
- ``stored``: COS holds exactly this data; the file is only a local copy;
- ``unlinked``: the path was deleted while open; the data is worth nothing.

A second kind of record, ``NAME.meta`` (JSON, no data file), is a *pending metadata
change* (``MetaRecord``): a chmod, chown or utimens of a file this mount stored moments
ago, held to be folded into a following rename or applied by one copy when its delay ends
(``cosfs.filesystem.pending_meta``). It names the key, the ETag of the object it was based
on and the complete metadata to give it.

A file being streamed (sent part by part while it is written) names the byte range already
sent and freed from local disk (``punched``); it is written before the bytes are freed.

Records are written before the data they describe is acknowledged, so after a crash of
cosfs every staging file says what it is; the next mount, or ``cosfs recover``, resolves
them (``cosfs.data.recovery``). A record that replaces another goes through a temporary
file and a rename (a crash leaves the old or the new one); a record with nothing before
it is created in place (``write_record(new=True)``: a crash in the middle leaves a prefix
that never parses, of a staging file still empty or a change whose call had not returned).
They are not fsynced: they are there for a crash of cosfs (kill -9, OOM), after which the
kernel still writes them, as it writes the staged data (fsynced only when its upload failed,
``StagedFile.keep``).

A staged file's records in order, for a file created, written and closed: ``writing``
(created with the empty staging file), ``closed`` before its upload, then ``stored``; or,
when the close is that of the file's only handle, the staging file and its record are
deleted as soon as COS holds the data, with no ``stored`` record first (a crash in
between leaves a ``closed`` record of data COS holds: recovery reads the object back and
drops the copy). ``failed`` replaces ``closed`` when the upload fails, and a later write
makes it ``writing`` again.

A mount keeps its files in its own directory, locked for its lifetime: a directory whose
lock can be taken belongs to a cosfs that is gone.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

log = logging.getLogger(__name__)

DATA_SUFFIX = ".staged"
RECORD_SUFFIX = ".record"
META_SUFFIX = ".meta"
LOCK_NAME = "lock"
INSTANCE_PREFIX = "mount-"

WRITING = "writing"
CLOSED = "closed"
FAILED = "failed"
STORED = "stored"
UNLINKED = "unlinked"
STATES = (WRITING, CLOSED, FAILED, STORED, UNLINKED)


@dataclass
class Record:
    """What one staging file holds (see the module docstring for the states)."""

    bucket: str
    key: str
    base_etag: Optional[str]
    state: str = WRITING
    meta: Dict[str, str] = field(default_factory=dict)
    content_type: Optional[str] = None
    upload_id: Optional[str] = None
    #: When the current upload began (wall clock): uploads of the key that COS holds and
    #: that began after it are ours, even if the crash came before ``upload_id`` was written.
    upload_started: Optional[float] = None
    created: float = field(default_factory=time.time)
    #: A sparse staging file (``cosfs.data.sparse``): the data file holds only the ranges in
    #: ``extents`` (``[start, end)`` pairs, at their own offsets); the other bytes of the
    #: ``size`` bytes are the first ``base_kept`` bytes of the object with ETag ``base_etag``
    #: (``base_size`` bytes long), then zeros. Older records lack these: whole copies.
    sparse: bool = False
    extents: List[List[int]] = field(default_factory=list)
    size: Optional[int] = None
    base_size: Optional[int] = None
    base_kept: Optional[int] = None
    #: A streamed file (``cosfs.data.stream_upload``): bytes ``[x, y)`` were sent as parts of
    #: the session ``upload_id`` and freed from the staging file (holes now); ``None`` for a
    #: file staged whole. Such a file is never a version to publish on its own.
    punched: Optional[List[int]] = None
    #: A streamed file's first part size (part sizes grow from it: ``stream_upload``), so
    #: recovery can tell which parts the session must hold.
    stream_part_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown staging state {self.state!r}")


@dataclass
class MetaRecord:
    """A metadata change not yet in COS: give ``key`` the metadata ``meta`` (all of it, not
    a difference), provided the object is still the one with ETag ``base_etag``."""

    bucket: str
    key: str
    base_etag: str
    meta: Dict[str, str]
    content_type: Optional[str] = None
    created: float = field(default_factory=time.time)

    @property
    def state(self) -> str:
        """What ``cosfs recover --list`` says of it, beside the staged files' states."""
        return "metadata change"


def write_record(path: Path, record: Union[Record, MetaRecord], new: bool = False) -> None:
    """Replace the record at ``path`` in one step (a crash leaves the old or the new one).

    ``new``: there is no record at ``path`` yet, so it is created in place, without a
    temporary file and a rename (one rename less per staged file and per held metadata
    change). A crash in the middle leaves nothing that parses (a prefix of a JSON object
    never does), which recovery treats as a record never written: the staging file it
    names is then still empty (its record comes before its data) and is dropped; a
    metadata change is dropped (the call that made it had not returned). Should a record
    be there after all, it is replaced as usual.
    """
    data = json.dumps(dataclasses.asdict(record), sort_keys=True).encode("utf-8")
    if new:
        try:
            _write_file(path, data, os.O_EXCL)
            return
        except FileExistsError:
            pass
    temporary = path.with_name(path.name + ".tmp")
    _write_file(temporary, data, os.O_TRUNC)
    os.replace(temporary, path)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | mode, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def read_record(path: Path) -> Record:
    """The record at ``path``; ``ValueError`` when it is not one (truncated, edited, foreign)."""
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return Record(**fields)
    except (OSError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a cosfs staging record: {error}") from None


def read_meta_record(path: Path) -> MetaRecord:
    """The pending metadata change at ``path``; ``ValueError`` when it is not one."""
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return MetaRecord(**fields)
    except (OSError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a cosfs metadata record: {error}") from None


def new_meta_record_path(directory: Path, key: str) -> Path:
    """A fresh name in ``directory`` for a pending metadata change of ``key``."""
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in key.rstrip("/").rsplit("/", 1)[-1])[:40]
    return directory / f"{stem or 'object'}.{secrets.token_hex(6)}{META_SUFFIX}"


def data_path(record_path: Path) -> Path:
    return record_path.with_name(record_path.name[: -len(RECORD_SUFFIX)] + DATA_SUFFIX)


def record_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name[: -len(DATA_SUFFIX)] + RECORD_SUFFIX)


class InstanceDirectory:
    """This mount's own staging directory under the bucket's, locked while the mount lives."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / f"{INSTANCE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        self.path.mkdir(mode=0o700)
        self._lock_fd: Optional[int] = _take_lock(self.path)
        if self._lock_fd is None:
            raise OSError(f"cannot lock the new staging directory {self.path}")

    def close(self) -> None:
        """Release the lock and remove the directory if nothing is left in it."""
        if self._lock_fd is None:
            return
        leftover = [p for p in self.path.iterdir() if p.name != LOCK_NAME]
        if not leftover:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
            _remove_empty(self.path)
            _remove_empty(self.root)  # the bucket's directory too, when no other mount uses it
        os.close(self._lock_fd)
        self._lock_fd = None


class AbandonedDirectory:
    """The staging directory of a cosfs that is gone, locked by us while we resolve it."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    def meta_records(self) -> List[Path]:
        """The pending metadata changes (``MetaRecord`` files) the mount left."""
        return sorted(self.path.glob("*" + META_SUFFIX))

    def entries(self) -> Tuple[List[Path], List[Path]]:
        """``(records, data files without a record)``."""
        records = sorted(self.path.glob("*" + RECORD_SUFFIX))
        covered = {data_path(record) for record in records}
        orphans = sorted(p for p in self.path.glob("*" + DATA_SUFFIX) if p not in covered)
        return records, orphans

    def close(self) -> None:
        """Unlock; remove the directory when every file in it was resolved."""
        for temporary in self.path.glob("*.tmp"):
            temporary.unlink(missing_ok=True)  # a record half-written when cosfs died
        leftover = [p for p in self.path.iterdir() if p.name != LOCK_NAME]
        if not leftover:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
            _remove_empty(self.path)
        os.close(self._lock_fd)


def abandoned_directories(root: Path) -> Iterator[AbandonedDirectory]:
    """The staging directories under ``root`` whose mount is gone, each locked for the caller."""
    if not root.is_dir():
        return
    for path in sorted(root.glob(INSTANCE_PREFIX + "*")):
        if not path.is_dir():
            continue
        fd = _take_lock(path)
        if fd is not None:
            yield AbandonedDirectory(path, fd)


def _take_lock(directory: Path) -> Optional[int]:
    """An exclusive lock on ``directory/lock`` (created if needed), or ``None`` if held."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError as error:
        log.debug("kept %s: %s", directory, error)
