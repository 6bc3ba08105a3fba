"""Parse the multipart/form-data bodies JSON API clients send (upload, slice, copy).

The emulator's own parser, written for the server side: the client (``cosfs.store.json_codec``)
only encodes forms, so a wrong assumption there is caught here, not mirrored. Checked against
the bodies the official SDKs send (the ``json_wire`` vectors).
"""

from __future__ import annotations

import re
from typing import Dict, Tuple

_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_NAME_RE = re.compile(r';\s*name=(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)


def decode_form(content_type: str, body: bytes) -> Dict[str, bytes]:
    """The fields of a multipart form, by name. Plain fields and file parts read alike (the
    Python SDK sends every field as a file part); the first of repeated names wins.
    Raises ``ValueError`` when the body is not a multipart form."""
    match = _BOUNDARY_RE.search(content_type or "")
    if not match or not content_type.lower().startswith("multipart/form-data"):
        raise ValueError(f"content type {content_type!r} is not multipart/form-data with a boundary")
    delimiter = b"\r\n--" + (match.group(1) or match.group(2)).encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise ValueError("multipart body does not contain its boundary")
    fields: Dict[str, bytes] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return fields
        name, value = _decode_part(chunk)
        fields.setdefault(name, value)
    raise ValueError("multipart body ends without its closing boundary")


def _decode_part(chunk: bytes) -> Tuple[str, bytes]:
    """``(name, value)`` of one part; ``chunk`` starts right after the boundary line's text."""
    line_end = chunk.find(b"\r\n")
    head_end = chunk.find(b"\r\n\r\n", max(line_end, 0))
    if line_end < 0 or head_end < 0:
        raise ValueError("multipart part without a header block")
    headers = chunk[line_end + 2:head_end].decode("utf-8", "replace")
    for line in headers.split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            match = _NAME_RE.search(line)
            if match:
                return match.group(1) if match.group(1) is not None else match.group(2), chunk[head_end + 4:]
    raise ValueError("multipart part without a Content-Disposition name")
