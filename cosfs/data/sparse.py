"""A write into an existing object, staged without downloading the object.

A ``SparseFile`` is what a write, append or truncate of an existing object stages: a
``StagedFile`` holding only the bytes written (at their own offsets; the rest are holes),
the ranges written (``Extents``), the new size, and the object it changes (key, ETag, size).
Its bytes, wherever read (a read of the open file, the rebuild at flush, recovery), are
``Layout.assemble``: written bytes where written, else the object's bytes below
``base_kept`` (read pinned to the base ETag, so a change in COS fails the read with ESTALE
instead of mixing versions), else zeros (a truncate up, or one down and up again).

Appending a line to a 1 GiB log then moves the line, not the gigabyte: the rebuild
(``cosfs.data.rebuild``) copies the untouched parts server-side.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Protocol

from cosfs.data import journal
from cosfs.data.extents import Extents
from cosfs.data.journal import Record
from cosfs.data.staging import StagedFile
from cosfs.wire.errors import CosfsError

#: ``(start, end) -> bytes``: exactly those bytes of one source.
RangeReader = Callable[[int, int], bytes]


class BaseReader(Protocol):
    """What reads the object's bytes (an ``ObjectReader`` pinned to the base ETag)."""

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Layout:
    """Where each byte of a sparsely staged version comes from (a snapshot)."""

    key: str
    size: int
    base_etag: str
    base_size: int
    #: Bytes of the object still part of the file: past it, unwritten bytes are zeros.
    base_kept: int
    extents: Extents

    def assemble(self, start: int, end: int, local: RangeReader, base: RangeReader) -> bytes:
        """Bytes ``[start, min(end, size))``: written ones from ``local``, the object's from
        ``base``, zeros elsewhere. Short reads of either are errors (never silently zeros)."""
        end = min(end, self.size)
        pieces: List[bytes] = []
        for piece_start, piece_end, written in self.extents.pieces(start, end):
            if written:
                pieces.append(_exact(local(piece_start, piece_end), piece_start, piece_end, "staging file", self))
                continue
            old_end = min(piece_end, self.base_kept)
            if piece_start < old_end:
                pieces.append(_exact(base(piece_start, old_end), piece_start, old_end, "object", self))
            zeros = piece_end - max(piece_start, old_end)
            if zeros > 0:
                pieces.append(bytes(zeros))
        return b"".join(pieces)

    @classmethod
    def of_record(cls, record: Record) -> "Layout":
        """The layout a sparse journal record describes."""
        return cls(record.key, record.size or 0, record.base_etag or "", record.base_size or 0,
                   record.base_kept or 0, Extents(record.extents))


def _exact(data: bytes, start: int, end: int, what: str, layout: Layout) -> bytes:
    if len(data) != end - start:
        raise CosfsError(f"the {what} of {layout.key!r} gave {len(data)} bytes for {start}..{end}; the "
                         "version cannot be assembled", errno.EIO)
    return data


class SparseFile:
    """A sparsely staged version of an existing object; ``OpenFiles`` uses it as a ``StagedFile``.

    Writes, truncates and journal changes come under the file's lock in ``OpenFiles``; reads
    may come from any thread: ``_lock`` keeps the extent map and sizes whole for them.
    """

    def __init__(self, staged: StagedFile, base_size: int, open_base: Callable[[str, int, str], BaseReader]) -> None:
        record = staged.record
        if not record.base_etag:
            raise ValueError("a sparse staging file needs the ETag of the object it changes")
        self._staged = staged
        self._open_base = open_base
        self._lock = threading.Lock()
        self._extents = Extents()  # guarded by self._lock
        self._size = base_size  # guarded by self._lock
        self._base_size = base_size  # guarded by self._lock
        self._base_kept = base_size  # guarded by self._lock
        self._base_etag: str = record.base_etag  # guarded by self._lock
        self._key = record.key  # guarded by self._lock
        self._reader: Optional[BaseReader] = None  # guarded by self._lock
        self.path: Path = staged.path
        self.label = staged.label
        self.journal()  # the record describes the layout from the start

    # --- what OpenFiles asks of a staged file --------------------------------------------

    @property
    def size(self) -> int:
        with self._lock:
            return self._size

    @property
    def held_bytes(self) -> int:
        """The written bytes it holds on local disk (the rest is the object's, in COS)."""
        return self._staged.held_bytes

    @property
    def kept(self) -> bool:
        return self._staged.kept

    @property
    def state(self) -> str:
        return self._staged.state

    @property
    def record(self) -> Record:
        return self._staged.record

    @property
    def record_path(self) -> Path:
        return self._staged.record_path

    def layout(self) -> Layout:
        with self._lock:
            return Layout(self._key, self._size, self._base_etag, self._base_size, self._base_kept,
                          Extents(self._extents))

    def journal(self, **changes: Any) -> None:
        """Change fields of the journal record; the layout goes with every change."""
        reader = None
        with self._lock:
            if "key" in changes and changes["key"] != self._key:
                self._key = changes["key"]
                reader, self._reader = self._reader, None  # it reads the old name
            layout = dict(sparse=True, extents=self._extents.to_list(), size=self._size,
                          base_size=self._base_size, base_kept=self._base_kept)
        if reader is not None:
            reader.close()
        self._staged.journal(**changes, **layout)

    def write(self, offset: int, data: bytes) -> int:
        written = self._staged.write(offset, data)
        with self._lock:
            self._extents.add(offset, offset + written)
            self._size = max(self._size, offset + written)
        return written

    def truncate(self, length: int) -> None:
        with self._lock:
            self._extents.clip(length)
            self._base_kept = min(self._base_kept, length)
            self._size = length
        if length < self._staged.size:
            self._staged.truncate(length)

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only at the end of the file.

        Runs without the file's lock in ``OpenFiles``: an upload that completes meanwhile
        (``rebase``) may take the written bytes away mid-read; the read then starts again
        from the new layout."""
        while True:
            layout = self.layout()
            try:
                return layout.assemble(offset, offset + length, self.read_local,
                                       lambda start, end: self._read_base(layout.base_etag, start, end))
            except CosfsError:
                with self._lock:
                    if self._base_etag == layout.base_etag:
                        raise

    def read_local(self, start: int, end: int) -> bytes:
        """Written bytes ``[start, end)`` from the staging file."""
        return self._staged.read(start, end - start)

    def _read_base(self, etag: str, start: int, end: int) -> bytes:
        with self._lock:
            if etag != self._base_etag:
                raise CosfsError(f"{self.label!r} was stored while it was read", errno.ESTALE)
            if self._reader is None:
                self._reader = self._open_base(self._key, self._base_size, self._base_etag)
            reader = self._reader
        return reader.read(start, end - start)

    def rebase(self, etag: str) -> None:
        """COS now holds this version as ``etag``: it becomes the base, the written bytes are
        dropped from the staging file (reads fetch them from COS), and later writes start a
        new extent map."""
        with self._lock:
            self._extents.clear()
            self._base_etag = etag
            self._base_size = self._base_kept = self._size
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        self._staged.truncate(0)
        self.journal(base_etag=etag)

    def keep(self) -> Path:
        self.journal(state=journal.FAILED)
        return self._staged.keep()

    def discard(self, force: bool = False) -> None:
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        self._staged.discard(force=force)
