"""Store a sparsely staged version: copy what did not change server-side, send only the rest.

The new version (``cosfs.data.sparse.Layout``) names the ranges that are the old object's
same bytes: the bytes still kept that no write touched. Those are copied server-side
(Upload Part - Copy with ``x-cos-copy-source-If-Match`` on the base ETag, so an object
changed meanwhile fails the upload instead of mixing two versions), in as few parts as
keep the upload workers busy (``cosfs.data.part_plan``). The rest is assembled here (old
bytes by ranged GETs pinned to the same ETag where a part needs them to reach COS's part
minimum, written bytes from the staging file, zeros) and uploaded. A version no larger
than the multipart threshold is assembled whole and PUT; where the API cannot copy parts
(JSON), everything is assembled (``OpenFiles`` stages whole copies there, so only
recovery could get here).

Appending to a large object then costs the appended bytes and a few copy requests: not
the object's size.
Nothing here speaks HTTP: the store and the uploader are injected.
"""

from __future__ import annotations

from typing import Callable, Optional

from cosfs.data.sparse import Layout, RangeReader
from cosfs.data.uploader import PartCopies, Uploader
from cosfs.store.interface import Metadata, ObjectInfo, Store


class RebuildSource:
    """A sparse version as the uploader reads it (``ByteSource``): exact byte ranges."""

    def __init__(self, store: Store, layout: Layout, local: RangeReader) -> None:
        self.layout = layout
        self._store = store
        self._local = local

    @property
    def size(self) -> int:
        return self.layout.size

    def read_range(self, start: int, end: int) -> bytes:
        return self.layout.assemble(start, end, self._local, self._base)

    def _base(self, start: int, end: int) -> bytes:
        return self._store.read_range(self.layout.key, start, end - start, etag=self.layout.base_etag)


def part_copies(layout: Layout) -> PartCopies:
    """The ranges of ``layout`` COS may copy from the base object: its kept bytes that no
    write touched."""
    kept = min(layout.base_kept, layout.size)
    runs = [(start, end) for start, end, written in layout.extents.pieces(0, kept) if not written]
    return PartCopies(layout.key, layout.base_etag, runs)


def store_version(uploader: Uploader, store: Store, layout: Layout, local: RangeReader,
                  meta: Optional[Metadata] = None, content_type: Optional[str] = None,
                  on_session: Optional[Callable[[Optional[str]], None]] = None) -> ObjectInfo:
    """Store the version ``layout`` describes as ``layout.key`` (the key of its base object);
    ``local`` reads the written bytes. On failure the object is untouched and the error
    raised (a multipart upload is aborted, as every upload's is)."""
    return uploader.upload(layout.key, RebuildSource(store, layout, local), meta, content_type,
                           on_session=on_session, copies=part_copies(layout))
