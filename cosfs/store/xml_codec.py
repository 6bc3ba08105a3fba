"""The XML bodies of the COS XML API: parse what COS answers, build what it expects.

COS answers in the S3 schema, with or without a namespace (the SDK strips several), so
every lookup here ignores namespaces. List responses are requested with
``encoding-type=url``: COS then percent-encodes keys, prefixes and markers (space as
``%20``), and we decode them with ``unquote`` (not ``unquote_plus``), as the SDK does.
"""

from __future__ import annotations

import datetime
import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import List, Optional, Sequence, Tuple
from urllib.parse import unquote
from xml.sax.saxutils import escape

from cosfs.store.interface import ObjectInfo, PartInfo


class MalformedResponse(ValueError):
    """COS answered with a body we cannot read."""


def _root(body: bytes) -> ET.Element:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedResponse(f"not XML: {exc}") from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _text(element: Optional[ET.Element], name: str, default: str = "") -> str:
    if element is None:
        return default
    found = element.find(name)
    return found.text or "" if found is not None and found.text is not None else default


def iso_to_ns(text: str) -> int:
    """``2024-01-01T00:00:00.000Z`` (list responses) to nanoseconds since the epoch."""
    stamp = text.strip().rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    try:
        seconds = _utc_seconds(whole)
    except ValueError:
        raise MalformedResponse(f"bad timestamp {text!r}") from None
    nanos = int((fraction + "000000000")[:9]) if fraction else 0
    return seconds * 10**9 + nanos


@functools.lru_cache(maxsize=1024)
def _utc_seconds(whole: str) -> int:
    """``2024-01-01T00:00:00`` to seconds since the epoch. A list page holds a thousand of
    them, often the same second many times; ``strptime`` was a tenth of a remounted listing.
    Only that exact form is accepted: ``fromisoformat`` alone takes others too, among them
    a UTC offset (``00:00+01``) that would be read as UTC, an hour off."""
    if len(whole) != 19 or whole[4] != "-" or whole[7] != "-" or whole[10] != "T" or whole[13] != ":" \
            or whole[16] != ":" or not whole.isascii():
        raise ValueError(whole)
    return int(datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp())


def http_date_to_ns(text: str) -> int:
    """An RFC 1123 date (``Last-Modified``, ``Date``) to nanoseconds since the epoch."""
    try:
        return int(parsedate_to_datetime(text).timestamp()) * 10**9
    except (TypeError, ValueError):
        raise MalformedResponse(f"bad HTTP date {text!r}") from None


def strip_etag(etag: str) -> str:
    return etag.strip().strip('"')


@dataclass(frozen=True)
class ErrorBody:
    code: str
    message: str
    request_id: str


def parse_error(body: bytes) -> Optional[ErrorBody]:
    """The ``<Error>`` of a failed request, or ``None`` if the body is not one."""
    if not body or b"<Error" not in body[:512]:
        return None
    try:
        root = _root(body)
    except MalformedResponse:
        return None
    if root.tag != "Error":
        return None
    return ErrorBody(_text(root, "Code"), _text(root, "Message"), _text(root, "RequestId"))


@dataclass(frozen=True)
class ListResult:
    files: Tuple[ObjectInfo, ...]
    prefixes: Tuple[str, ...]
    truncated: bool
    next_marker: str


def parse_list(body: bytes) -> ListResult:
    """A ``ListBucketResult`` page, keys decoded."""
    root = _root(body)
    if root.tag != "ListBucketResult":
        raise MalformedResponse(f"expected ListBucketResult, got {root.tag}")
    encoded = _text(root, "EncodingType").lower() == "url"
    decode = unquote if encoded else (lambda text: text)
    files = []
    for item in root.findall("Contents"):
        key = decode(_text(item, "Key"))
        files.append(
            ObjectInfo(
                key=key,
                size=int(_text(item, "Size", "0") or 0),
                mtime_ns=iso_to_ns(_text(item, "LastModified", "1970-01-01T00:00:00Z")),
                etag=strip_etag(_text(item, "ETag")),
                is_dir=key.endswith("/"),
            )
        )
    prefixes = tuple(decode(_text(p, "Prefix")) for p in root.findall("CommonPrefixes"))
    truncated = _text(root, "IsTruncated").lower() == "true"
    next_marker = decode(_text(root, "NextMarker"))
    if truncated and not next_marker:
        last = [f.key for f in files] + list(prefixes)
        next_marker = max(last) if last else ""
    return ListResult(tuple(files), prefixes, truncated, next_marker)


def parse_upload_id(body: bytes) -> str:
    upload_id = _text(_root(body), "UploadId")
    if not upload_id:
        raise MalformedResponse("InitiateMultipartUploadResult without UploadId")
    return upload_id


def parse_etag_result(body: bytes) -> str:
    """The ETag of a copy, part copy or complete answer. COS can answer 200 with an
    ``<Error>`` body there; ``parse_error`` must be checked first."""
    etag = _text(_root(body), "ETag")
    if not etag:
        raise MalformedResponse("result without ETag")
    return strip_etag(etag)


@dataclass(frozen=True)
class PartsPage:
    parts: Tuple[PartInfo, ...]
    truncated: bool
    next_marker: str


def parse_list_parts(body: bytes) -> PartsPage:
    root = _root(body)
    parts = tuple(
        PartInfo(int(_text(p, "PartNumber")), int(_text(p, "Size", "0")), strip_etag(_text(p, "ETag")))
        for p in root.findall("Part")
    )
    return PartsPage(parts, _text(root, "IsTruncated").lower() == "true", _text(root, "NextPartNumberMarker"))


def parse_list_uploads(body: bytes) -> List[Tuple[str, str, str]]:
    """``(key, upload_id, initiated)`` of each unfinished upload in the answer."""
    root = _root(body)
    decode = unquote if _text(root, "EncodingType").lower() == "url" else (lambda text: text)
    return [
        (decode(_text(u, "Key")), _text(u, "UploadId"), _text(u, "Initiated"))
        for u in root.findall("Upload")
    ]


def parse_delete_result(body: bytes) -> List[Tuple[str, str, str]]:
    """``(key, code, message)`` for each key a multi-delete could not delete."""
    root = _root(body)
    return [(_text(e, "Key"), _text(e, "Code"), _text(e, "Message")) for e in root.findall("Error")]


def build_delete(keys: Sequence[str]) -> bytes:
    objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
    return f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode("utf-8")


def build_complete(parts: Sequence[PartInfo]) -> bytes:
    items = "".join(
        f'<Part><PartNumber>{p.number}</PartNumber><ETag>"{p.etag}"</ETag></Part>'
        for p in sorted(parts, key=lambda part: part.number)
    )
    return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode("utf-8")
