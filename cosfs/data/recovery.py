"""Resolve the staged data a cosfs that is gone left behind: store it, or keep it safe.

Run by ``cosfs`` before it mounts a bucket, and by ``cosfs recover``. Every journal record
(``cosfs.data.journal``) in a staging directory whose mount is gone is resolved once:

- ``stored`` or ``unlinked``: COS already has the data, or nobody wants it: deleted.
- ``closed`` or ``failed`` (a complete version that was not stored): if the object in COS
  is still the one that version replaces (same ETag, or still absent), the data is
  uploaded; if the object changed since, the data goes to lost+found. A transient failure
  leaves it for the next try; a refusal (a name COS refuses, say) sends it to lost+found.
- ``writing`` (the file was open for writing when cosfs stopped): the data is not a
  version anyone finished, so it is never published over COS's copy: lost+found.
- a streamed file whose sent bytes were freed (``punched``): the staging file has holes
  where those bytes were, so it is never uploaded as it is. When it was closed (a complete
  version), COS still holds the object it replaces, and its session holds every part of
  the freed range, the session is completed (part 1 and the parts after the range sent
  from the staging file) and the object given the record's metadata. Otherwise (still
  being written, a part missing, the object changed) the session is aborted and what is
  left goes to lost+found, with a log line naming the range.

A *sparse* record (``Record.sparse``: only the bytes written were staged, see
``cosfs.data.sparse``) is stored by the same rebuild a flush uses (``cosfs.data.rebuild``:
unchanged parts copied from the object it changes, pinned to its ETag), which needs the
object to still have the base ETag. Where it goes to lost+found instead, its layout (written
ranges, new size, base ETag) is saved beside the data as ``NAME.extents.json``: the data
file alone holds the written bytes at their offsets and holes elsewhere.

A pending metadata change (a ``.meta`` record: a chmod, chown or utimens held for a moment
after an upload) is applied if the object still has the ETag the change was based on, and
dropped with a log line if it is gone or changed since (someone else wrote it).

Multipart sessions a record names, or that began for its key after its upload started
(a crash may come before the id was written), are aborted, so COS stops billing their
parts. Nothing is deleted without a log line; lost+found is
``cache_dir/lost+found/<time>/<key>``, next to the buckets' staging directories.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Union

from cosfs.data import journal, rebuild
from cosfs.data.journal import AbandonedDirectory, MetaRecord, Record
from cosfs.data.sparse import Layout
from cosfs.data.stream_upload import stream_part_size
from cosfs.data.uploader import Uploader
from cosfs.store.interface import Store
from cosfs.wire.errors import CosError, CosfsError

log = logging.getLogger(__name__)

UPLOADED = "uploaded"
LOST_AND_FOUND = "lost+found"
KEPT = "kept"
DROPPED = "dropped"
META_APPLIED = "metadata applied"

#: Uploads of a key that began this long before a record's upload started are still ours
#: (COS's clock and ours differ a little).
CLOCK_MARGIN_NS = 60 * 1_000_000_000
#: Bytes compared per request when checking whether COS already holds a staged version.
COMPARE_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Resolution:
    """What became of one staged file."""

    bucket: str
    key: str
    size: int
    outcome: str
    reason: str
    where: Optional[Path] = None

    def describe(self) -> str:
        """One line for the terminal and the log."""
        text = f"{self.bucket}/{self.key} ({self.size} bytes): {self.outcome}: {self.reason}"
        return text + (f"; data in {self.where}" if self.where is not None else "")


class _FileSource:
    """A staged file on disk as the uploader reads it (``ByteSource``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def read_range(self, start: int, end: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(end - start)
        if len(data) != end - start:
            raise CosfsError(f"staging file {self.path} shrank while it was being stored")
        return data


class Recovery:
    """Resolves the abandoned staging directories of one bucket (``root``)."""

    def __init__(self, root: Path, store: Store, uploader: Uploader, lost_and_found: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.store = store
        self.uploader = uploader
        self.lost_and_found = lost_and_found
        self.clock = clock
        self._found_dir: Optional[Path] = None

    def run(self) -> List[Resolution]:
        """Resolve every abandoned directory; returns what became of each file."""
        resolutions: List[Resolution] = []
        for directory in journal.abandoned_directories(self.root):
            try:
                resolutions.extend(self._resolve_directory(directory))
            finally:
                directory.close()
        for resolution in resolutions:
            log.debug("recovered %s", resolution.describe())
        return resolutions

    def _resolve_directory(self, directory: AbandonedDirectory) -> List[Resolution]:
        records, orphans = directory.entries()
        resolutions = []
        for group in records:
            data_file = journal.data_path(group[0])
            try:
                record, record_file = journal.read_newest(group, journal.read_record)
            except ValueError as error:
                resolutions.append(self._orphan(data_file, f"its record is unreadable ({error})"))
                _unlink_all(group)
                continue
            _unlink_all(other for other in group if other != record_file)
            try:
                resolutions.append(self._resolve(record, record_file, data_file))
            except CosError as error:
                size = data_file.stat().st_size if data_file.exists() else 0
                resolutions.append(Resolution(record.bucket, record.key, size, KEPT,
                                              f"could not ask COS about it ({error}); the next mount tries again",
                                              data_file))
        for data_file in orphans:
            resolutions.append(self._orphan(data_file, "it has no journal record"))
        for group in directory.meta_records():
            resolutions.append(self._resolve_meta(group))
        return resolutions

    def _resolve_meta(self, group: List[Path]) -> Resolution:
        """Apply a pending metadata change (its newest readable record of ``group``) to the
        object it was based on, or drop it."""
        try:
            record, record_file = journal.read_newest(group, journal.read_meta_record)
        except ValueError as error:
            log.warning("dropped %s: %s", group[0], error)
            _unlink_all(group)
            return Resolution(self.root.name, group[0].name, 0, DROPPED, f"its record is unreadable ({error})")
        _unlink_all(other for other in group if other != record_file)
        try:
            current = self.store.stat(record.key)
            if current is None or current.etag != record.base_etag:
                why = "the object is gone" if current is None else "the object changed in COS since"
                log.warning("dropped a pending metadata change of %r (mode, owner or times): %s",
                            record.key, why)
                record_file.unlink(missing_ok=True)
                return Resolution(record.bucket, record.key, 0, DROPPED,
                                  f"its pending metadata change was not applied: {why}")
            self.store.set_meta(record.key, record.meta, record.content_type)
        except CosError as error:
            return Resolution(record.bucket, record.key, 0, KEPT,
                              f"its pending metadata change could not be applied ({error}); the next mount "
                              "tries again")
        record_file.unlink(missing_ok=True)
        return Resolution(record.bucket, record.key, current.size, META_APPLIED,
                          "its pending metadata change was applied")

    def _resolve(self, record: Record, record_file: Path, data_file: Path) -> Resolution:
        size = data_file.stat().st_size if data_file.exists() else 0
        if record.sparse:
            size = record.size or 0
        if record.punched and data_file.exists() and self._completed_stream(record, data_file, size):
            self._abort_sessions(record)  # any other session it began (its own is complete now)
            self._delete(record_file, data_file)
            return Resolution(record.bucket, record.key, size, UPLOADED, "its streamed upload was completed")
        self._abort_sessions(record)
        if not data_file.exists():
            record_file.unlink(missing_ok=True)
            return Resolution(record.bucket, record.key, 0, DROPPED, "its data file is gone")
        if record.state in (journal.STORED, journal.UNLINKED):
            why = "COS already holds it" if record.state == journal.STORED else "it was deleted while open"
            self._delete(record_file, data_file)
            return Resolution(record.bucket, record.key, size, DROPPED, why)
        if record.punched and record.punched[1] > record.punched[0]:
            start, end = record.punched
            log.warning("%s/%s was being streamed to COS when cosfs stopped: bytes %d..%d were sent and freed "
                        "from the staging area, so what is left is not a complete version; its upload was "
                        "aborted and the rest goes to lost+found", record.bucket, record.key, start, end)
            return self._to_lost_and_found(record, record_file, data_file, size,
                                           f"it was being streamed and bytes {start}..{end} are only in the "
                                           "aborted upload: an incomplete version is never published")
        if record.state == journal.WRITING:
            return self._to_lost_and_found(record, record_file, data_file, size,
                                           "it was still open for writing: an unfinished version is never "
                                           "published over what COS holds")
        current = self.store.stat(record.key)
        current_etag = current.etag if current is not None else None
        if current_etag != record.base_etag:
            if current is not None and current.size == size and self._holds(record, data_file, size):
                self._delete(record_file, data_file)  # the upload completed; the crash came before its record
                return Resolution(record.bucket, record.key, size, DROPPED, "COS already holds this version")
            return self._to_lost_and_found(record, record_file, data_file, size,
                                           "the object changed in COS since this version was written")
        # Where COS cannot abort a session (JSON), a new multipart upload of the key takes the
        # crashed one over and finishes it, so none is left behind.
        take_over = bool(record.upload_id) and not self.store.limits.abortable_uploads
        try:
            if record.sparse:
                rebuild.store_version(self.uploader, self.store, Layout.of_record(record),
                                      _FileSource(data_file).read_range, record.meta, record.content_type)
            else:
                self.uploader.upload(record.key, _FileSource(data_file), record.meta, record.content_type,
                                     multipart=True if take_over else None)
        except CosError as error:
            if error.transient:
                return Resolution(record.bucket, record.key, size, KEPT,
                                  f"storing it failed for now ({error}); the next mount tries again", data_file)
            return self._to_lost_and_found(record, record_file, data_file, size, f"COS refused it ({error})")
        self._delete(record_file, data_file)
        return Resolution(record.bucket, record.key, size, UPLOADED, "stored in COS")

    def _completed_stream(self, record: Record, data_file: Path, size: int) -> bool:
        """Complete the session of a closed streamed file, if COS holds every part its
        staging file lacks (see the module docstring); whether it was done."""
        base = record.stream_part_size
        if record.state not in (journal.CLOSED, journal.FAILED) or not record.upload_id or not base:
            return False
        try:
            current = self.store.stat(record.key)
            if (current.etag if current is not None else None) != record.base_etag:
                return False
            session = self.store.find_upload(record.key)
            if session is None or session.upload_id != record.upload_id:
                return False
            listed = {part.number: part for part in session.list_parts()}
            low, high = record.punched
            source = _FileSource(data_file)
            parts, number, start = [], 1, 0
            while start < size:
                end = min(size, start + stream_part_size(number, base, self.store.limits))
                if start < high and end > low:  # freed here: only the session has it
                    part = listed.get(number)
                    if part is None or part.size != end - start or start < low or end > high:
                        log.warning("the unfinished upload of %r lacks part %d; it cannot be completed",
                                    record.key, number)
                        return False
                else:
                    part = session.put_part(number, source.read_range(start, end))
                parts.append(part)
                number, start = number + 1, end
            session.complete(parts)
            self.store.set_meta(record.key, record.meta, record.content_type)
        except CosError as error:
            if error.transient:
                raise
            log.warning("completing the unfinished upload of %r failed: %s", record.key, error)
            return False
        log.info("completed the streamed upload of %r (%d bytes) that cosfs left when it stopped", record.key, size)
        return True

    def _holds(self, record: Record, data_file: Path, size: int) -> bool:
        """Whether the object in COS has exactly the bytes of ``data_file`` (read back in
        chunks: the ETag of a multipart upload cannot be checked without its part size); of
        a sparse record, the bytes written (the rest came from the object it changed)."""
        ranges = Layout.of_record(record).extents if record.sparse else [(0, size)]
        with open(data_file, "rb") as local:
            for first, last in ranges:
                for start in range(first, last, COMPARE_CHUNK):
                    length = min(COMPARE_CHUNK, last - start)
                    local.seek(start)
                    if self.store.read_range(record.key, start, length) != local.read(length):
                        return False
        return True

    def _abort_sessions(self, record: Record) -> None:
        """Abort the multipart sessions the crashed writer began for the record's key (where
        the API cannot abort, the upload that follows takes them over)."""
        if not self.store.limits.abortable_uploads:
            return
        ours = {record.upload_id} if record.upload_id else set()
        if record.upload_started is not None:
            started_ns = int(record.upload_started * 1e9) - CLOCK_MARGIN_NS
            try:
                ours.update(upload_id for upload_id, initiated in self.store.unfinished_uploads(record.key)
                            if initiated >= started_ns)
            except CosError as error:
                log.warning("could not list the unfinished uploads of %r: %s", record.key, error)
        for upload_id in sorted(ours):
            try:
                self.store.abort_upload(record.key, upload_id)
                log.info("aborted the unfinished upload %s of %r", upload_id, record.key)
            except CosError as error:
                log.warning("could not abort upload %s of %r (%s); the next recovery tries again",
                            upload_id, record.key, error)

    def _to_lost_and_found(self, record: Record, record_file: Path, data_file: Path, size: int,
                           reason: str) -> Resolution:
        target = self._place(record.key)
        shutil.move(str(data_file), target)
        if record.sparse:
            beside = target.with_name(target.name + ".extents.json")
            beside.write_text(json.dumps({
                "key": record.key, "size": record.size, "extents": record.extents,
                "base_etag": record.base_etag, "base_size": record.base_size, "base_kept": record.base_kept,
                "note": "the data file holds only the written ranges (extents, [start, end) at their own "
                        "offsets); the other bytes were the object's with ETag base_etag below base_kept, "
                        "zeros above" + ("; a file still open for writing may have more ranges than these"
                                         if record.state == journal.WRITING else ""),
            }, indent=1, sort_keys=True))
            reason += f"; its written ranges are in {beside.name}"
        record_file.unlink(missing_ok=True)
        return Resolution(record.bucket, record.key, size, LOST_AND_FOUND, reason, target)

    def _orphan(self, data_file: Path, reason: str) -> Resolution:
        bucket = self.root.name
        if not data_file.exists():
            return Resolution(bucket, data_file.name, 0, DROPPED, reason)
        size = data_file.stat().st_size
        if size == 0:
            data_file.unlink()
            return Resolution(bucket, data_file.name, 0, DROPPED, reason + ", and it is empty")
        target = self._place(f"unknown/{data_file.name}")
        shutil.move(str(data_file), target)
        return Resolution(bucket, data_file.name, size, LOST_AND_FOUND, reason, target)

    def _place(self, key: str) -> Path:
        """A new path for ``key`` in this run's lost+found directory (never outside it)."""
        if self._found_dir is None:
            stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(self.clock()))
            self.lost_and_found.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._found_dir = self.lost_and_found / stamp
        parts = [part for part in key.split("/") if part not in ("", ".", "..")] or ["object"]
        target = self._found_dir.joinpath(*parts)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        candidate, number = target, 1
        while candidate.exists():
            candidate = target.with_name(f"{target.name}.{number}")
            number += 1
        return candidate

    @staticmethod
    def _delete(record_file: Path, data_file: Path) -> None:
        data_file.unlink(missing_ok=True)
        record_file.unlink(missing_ok=True)


def _unlink_all(record_files: Iterable[Path]) -> None:
    """Delete record files no longer needed: generations replaced by a newer one, or cut
    short by the crash (logged: nothing is deleted without a log line)."""
    for path in record_files:
        log.info("deleted %s: a journal record replaced by a newer one, or cut short by the crash", path)
        path.unlink(missing_ok=True)


def lost_and_found_of(staging_root: Path) -> Path:
    """``cache_dir/lost+found`` for the staging directory ``cache_dir/BUCKET``."""
    return staging_root.parent / "lost+found"


def pending(root: Path) -> List[Union[Record, MetaRecord]]:
    """The records (staged data, held metadata changes) in the abandoned staging directories
    under ``root``, resolving nothing."""
    found: List[Union[Record, MetaRecord]] = []
    for directory in journal.abandoned_directories(root):
        try:
            for group in directory.entries()[0]:
                try:
                    found.append(journal.read_newest(group, journal.read_record)[0])
                except ValueError as error:
                    log.warning("%s", error)
            for group in directory.meta_records():
                try:
                    found.append(journal.read_newest(group, journal.read_meta_record)[0])
                except ValueError as error:
                    log.warning("%s", error)
        finally:
            directory.close()
    return found
