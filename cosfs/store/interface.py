"""The store interface: the verbs the filesystem needs from COS, and the values they return.

Two implementations exist, one per COS API (``cosfs.store.xml_store`` and
``cosfs.store.json_store``); the filesystem sees only this protocol and never learns
which API it talks to. Where the APIs differ in what they can do, ``StoreLimits`` says so
as data (part sizes, whether a part can be copied server-side, whether an upload must know
its size up front), so the layers above decide by capability, never by API name.

Keys are bucket-relative, never start with ``/``; a directory key ends with ``/`` and the
bucket root is ``""``. Every method raises ``cosfs.wire.errors.CosError`` on failure.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Protocol, Sequence, Tuple

from cosfs.wire import facts
from cosfs.wire.credentials import CredentialProvider
from cosfs.wire.errors import CosfsError

#: User metadata: the part after ``x-cos-meta-``, lower-cased, to its value.
Metadata = Mapping[str, str]


@dataclass(frozen=True)
class ObjectInfo:
    """What COS knows about one object (a file, or a ``dir/`` marker).

    ``etag`` is an opaque version token: the XML ETag without quotes, or the JSON API sha.
    ``meta`` is ``None`` when the source did not carry user metadata (a list page), and a
    mapping (possibly empty) when it did (a stat).
    """

    key: str
    size: int
    mtime_ns: int
    etag: str = ""
    is_dir: bool = False
    meta: Optional[Metadata] = None
    content_type: Optional[str] = None


@dataclass(frozen=True)
class ListPage:
    """One page of a directory listing: files (with attributes) and sub-directory keys.

    ``next_marker`` is ``None`` on the last page; otherwise pass it back to ``list_page``.
    The directory's own marker object is never among ``files``.
    """

    files: Tuple[ObjectInfo, ...] = ()
    dirs: Tuple[str, ...] = ()
    next_marker: Optional[str] = None


@dataclass(frozen=True)
class PartInfo:
    """A stored part of an unfinished upload. ``number`` counts from 1."""

    number: int
    size: int
    etag: str = ""


@dataclass(frozen=True)
class StoreLimits:
    """What one API allows; the write path sizes its uploads from these, not from the API name."""

    max_put_size: int
    max_parts: int
    min_part_size: int
    max_part_size: int
    #: When not empty, the only part sizes the API accepts (JSON API slice sizes).
    allowed_part_sizes: Tuple[int, ...] = ()
    #: Whether an upload session must be told the final size when it begins.
    upload_needs_size: bool = False
    #: Whether ``UploadSession.copy_part`` works (server-side copy of a byte range).
    part_copy: bool = False
    #: Largest object ``copy``/``set_meta`` handle in one request.
    max_copy_size: int = 5 * 1024**3
    #: Whether directories are real entries of the API (JSON) rather than ``dir/`` markers.
    native_dirs: bool = False
    #: Total size of user metadata COS accepts on one object.
    max_meta_bytes: int = facts.MAX_META_BYTES
    #: Largest ``max_keys`` one ``list_page`` request may ask for.
    max_list_keys: int = 1000
    #: Whether an unfinished upload can be aborted (``abort_upload``); where it cannot (JSON),
    #: starting a new upload of the same key takes the unfinished session over.
    abortable_uploads: bool = True


class UploadSession(Protocol):
    """A multipart (XML) or slice (JSON) upload of one object, begun and not yet finished."""

    key: str
    upload_id: str
    #: The part size this session requires (JSON), or ``None`` when any part size within
    #: ``StoreLimits`` is accepted (XML).
    part_size: Optional[int]

    def put_part(self, number: int, data: bytes) -> PartInfo:
        """Store part ``number`` (from 1); storing the same number again replaces it."""

    def copy_part(self, number: int, source_key: str, start: int, end: int,
                  if_match: Optional[str] = None) -> PartInfo:
        """Fill part ``number`` with bytes ``start..end`` (inclusive) of ``source_key``, server-side;
        with ``if_match`` (an ETag as ``stat`` reports it), only from that version of the source:
        another one fails with status 412 (ESTALE) instead of mixing versions in one object."""

    def list_parts(self) -> Sequence[PartInfo]:
        """The parts COS holds for this session, in order: what a resumed upload can skip."""

    def complete(self, parts: Sequence[PartInfo]) -> ObjectInfo:
        """Assemble ``parts`` into the object; only now does the object change for readers."""

    def abort(self) -> None:
        """Discard the stored parts. The object, if it existed, is left untouched."""


class Store(Protocol):
    """The verbs the filesystem needs from a bucket, and nothing else."""

    limits: StoreLimits
    #: Where the credentials come from (``.source`` says it for messages).
    credentials: "CredentialProvider"

    @property
    def location(self) -> str:
        """The URL requests go to, for messages (``https://bucket.cos.region.myqcloud.com``)."""

    def list_page(self, prefix: str, marker: str = "", max_keys: int = 1000) -> ListPage:
        """One page of the directory ``prefix`` (``""`` or a key ending in ``/``)."""

    def walk(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` at any depth, directory markers included."""

    def stat(self, key: str) -> Optional[ObjectInfo]:
        """Attributes and user metadata of ``key``, or ``None`` if it does not exist."""

    def create_dir(self, key: str, meta: Optional[Metadata] = None) -> None:
        """Create the directory ``key`` (ending in ``/``)."""

    def delete_file(self, key: str) -> None:
        """Delete the file ``key``; deleting a missing key is not an error."""

    def delete_dir(self, key: str) -> None:
        """Delete the empty directory ``key``; ENOTEMPTY if anything is below it."""

    def delete_many(self, keys: Sequence[str]) -> Sequence[Tuple[str, Exception]]:
        """Delete ``keys``; returns the ``(key, error)`` pairs that could not be deleted."""

    def move(self, src: str, dst: str, overwrite: bool = True, meta: Optional[Metadata] = None,
             content_type: Optional[str] = None) -> None:
        """Give the object ``src`` the key ``dst`` (copy + delete where the API has no move),
        keeping its metadata, or replacing it with ``meta`` and ``content_type``: where the
        move is a copy, the copy carries them (no request of their own); elsewhere a metadata
        update of ``dst`` follows the move."""

    def copy(self, src: str, dst: str, meta: Optional[Metadata] = None) -> None:
        """Copy ``src`` to ``dst``, keeping its metadata, or replacing it with ``meta``."""

    def put_object(
        self,
        key: str,
        data: bytes,
        meta: Optional[Metadata] = None,
        content_type: Optional[str] = None,
    ) -> ObjectInfo:
        """Store ``data`` (at most ``limits.max_put_size``) as ``key`` in one request."""

    def begin_upload(
        self,
        key: str,
        size: Optional[int] = None,
        meta: Optional[Metadata] = None,
        content_type: Optional[str] = None,
        part_size: Optional[int] = None,
    ) -> UploadSession:
        """Start a multipart/slice upload of ``key``; ``size`` is required when
        ``limits.upload_needs_size``."""

    def find_upload(self, key: str, size: Optional[int] = None) -> Optional[UploadSession]:
        """An unfinished upload of ``key`` that COS still holds, to resume; ``None`` if none."""

    def unfinished_uploads(self, key: str) -> Sequence[Tuple[str, int]]:
        """``(upload id, initiated ns)`` of every unfinished upload of exactly ``key``, so a
        crashed writer's sessions can be found and aborted (empty where the API cannot list)."""

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Discard the unfinished upload ``upload_id`` of ``key`` (gone already is fine)."""

    def read_range(self, key: str, start: int, length: int, etag: Optional[str] = None) -> bytes:
        """Up to ``length`` bytes of ``key`` from ``start``; empty at or past the end.

        ``etag`` (as ``stat`` reports it) pins the version: when the object is no longer
        that version, a ``CosError`` with status 412 (ESTALE) is raised instead of its bytes."""

    def set_meta(
        self, key: str, meta: Metadata, content_type: Optional[str] = None
    ) -> None:
        """Replace the user metadata of ``key`` in place, without rewriting its data."""

    def probe(self) -> None:
        """One signed request that proves endpoint, credentials and bucket all work."""


@dataclass(frozen=True)
class UploadPlan:
    """How to cut an object into parts: ``part_count`` parts of ``part_size`` bytes (the last
    one may be shorter)."""

    part_size: int
    part_count: int


def plan_parts(size: int, limits: StoreLimits, preferred_part_size: int) -> UploadPlan:
    """Choose a part size for ``size`` bytes: the preferred one when it fits, larger when
    ``max_parts`` would be exceeded, and always one the API accepts."""
    if limits.allowed_part_sizes:
        candidates = sorted(limits.allowed_part_sizes)
        part_size = next((s for s in candidates if s >= preferred_part_size), candidates[-1])
        for candidate in candidates:
            if candidate >= part_size and -(-size // candidate) <= limits.max_parts:
                part_size = candidate
                break
    else:
        part_size = max(limits.min_part_size, min(preferred_part_size, limits.max_part_size))
        if -(-size // part_size) > limits.max_parts:
            part_size = -(-size // limits.max_parts)
    count = max(1, -(-size // part_size))
    if count > limits.max_parts or part_size > limits.max_part_size:
        raise CosfsError(
            f"an object of {size} bytes needs more than {limits.max_parts} parts of at most "
            f"{limits.max_part_size} bytes; COS cannot store it",
            errno.EFBIG,
        )
    return UploadPlan(part_size=part_size, part_count=count)
