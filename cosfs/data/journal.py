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
them (``cosfs.data.recovery``). Every record file is created whole under a name no file
has, never rewritten: a record that replaces another is its next *generation*
(``X.record``, ``X~1.record``, ``X~2.record``..., ``replace_record``), written before the
one it replaces is unlinked. A crash leaves the old generation, or both (the newest is the
record), or the old one and a prefix of the new one, which never parses (a prefix of a
JSON object never does) and so is not the record. The first generation cut short names a
staging file still empty (its record comes before its data), or a metadata change whose
call had not returned. (A temporary file renamed over the old record did the same, but
ext4 starts writing back the new file on every rename over an existing one, which cost
each record write four times more than creating a file and unlinking another.)
They are not fsynced: they are there for a crash of cosfs (kill -9, OOM), after which the
kernel still writes them, as it writes the staged data (fsynced only when its upload failed,
``StagedFile.keep``).

A staged file's records in order, for a file created, written and closed: ``writing``
(created with the empty staging file), ``closed`` before its upload, then ``stored``
(the copy serves the handles still open), deleted with the staging file at the last close;
or, when the upload itself comes with the last close (deferred) or at unmount, deleted as
soon as COS holds the data, with no ``stored`` record first (a crash in between leaves a
``closed`` record of data COS holds: recovery reads the object back and drops the copy).
``failed`` replaces ``closed`` when the upload fails, and a later write makes it
``writing`` again.

A mount keeps its files in its own directory, locked for its lifetime: a directory whose
lock can be taken belongs to a cosfs that is gone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

log = logging.getLogger(__name__)
R = TypeVar("R")

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


#: Separates a record's generation from its name (``X~2.record``): no staging file's name
#: and no metadata record's name has it (``StagingArea.create``, ``new_meta_record_path``).
GENERATION_MARK = "~"


def write_record(path: Path, record: Union[Record, MetaRecord]) -> None:
    """Create the record file ``path`` (a name no file has: ``FileExistsError`` otherwise);
    on failure, nothing of it is left."""
    data = json.dumps(_fields(record), sort_keys=True).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def replace_record(path: Path, record: Union[Record, MetaRecord]) -> Path:
    """Write ``record`` as the next generation of the record file ``path``, then unlink
    ``path``; returns the new file's path. An old generation that cannot be unlinked is
    left (logged): the newer one wins wherever both are found."""
    newer = next_generation(path)
    write_record(newer, record)
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not remove the replaced journal record %s: %s", path, error)
    return newer


def _fields(record: Union[Record, MetaRecord]) -> Dict[str, object]:
    """The record's fields as JSON takes them: every value is a str, number, None, or a
    list or dict of those, so the instance's own dict serves (``asdict`` would deep-copy)."""
    return vars(record)


def _split_generation(path: Path) -> Tuple[str, int, str]:
    """``(base name, generation, suffix)`` of a record file's name."""
    suffix = RECORD_SUFFIX if path.name.endswith(RECORD_SUFFIX) else META_SUFFIX
    stem = path.name[: -len(suffix)]
    base, mark, number = stem.rpartition(GENERATION_MARK)
    if mark and number.isdigit():
        return base, int(number), suffix
    return stem, 0, suffix


def next_generation(path: Path) -> Path:
    """The name of the record that replaces the one at ``path``."""
    base, generation, suffix = _split_generation(path)
    return path.with_name(f"{base}{GENERATION_MARK}{generation + 1}{suffix}")


def generations(paths: Iterable[Path]) -> List[List[Path]]:
    """Record files grouped by what they describe (one staging file, one metadata change),
    each group newest first; more than one file in a group only when cosfs died while it
    replaced a record."""
    groups: Dict[Tuple[Path, str, str], List[Tuple[int, Path]]] = {}
    for path in paths:
        base, generation, suffix = _split_generation(path)
        groups.setdefault((path.parent, base, suffix), []).append((generation, path))
    return [[path for _, path in sorted(group, reverse=True)] for _, group in sorted(groups.items())]


def read_newest(group: List[Path], read: Callable[[Path], R]) -> Tuple[R, Path]:
    """The newest record of ``group`` (newest first) that can be read, and its file;
    ``ValueError`` when none can (the first generation was cut short)."""
    failure: Optional[ValueError] = None
    for path in group:
        try:
            return read(path), path
        except ValueError as error:
            failure = failure or error
    raise failure or ValueError("no record")


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
    """The staging file a record (of any generation) describes."""
    base, _, _ = _split_generation(record_path)
    return record_path.with_name(base + DATA_SUFFIX)


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

    def meta_records(self) -> List[List[Path]]:
        """The pending metadata changes (``MetaRecord`` files) the mount left, each as its
        generations, newest first (``generations``)."""
        return generations(self.path.glob("*" + META_SUFFIX))

    def entries(self) -> Tuple[List[List[Path]], List[Path]]:
        """``(records, data files without a record)``; each staging file's records as
        their generations, newest first (``generations``)."""
        records = generations(self.path.glob("*" + RECORD_SUFFIX))
        covered = {data_path(group[0]) for group in records}
        orphans = sorted(p for p in self.path.glob("*" + DATA_SUFFIX) if p not in covered)
        return records, orphans

    def close(self) -> None:
        """Unlock; remove the directory when every file in it was resolved."""
        for temporary in self.path.glob("*.tmp"):
            temporary.unlink(missing_ok=True)  # a record half-written by an older cosfs
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
