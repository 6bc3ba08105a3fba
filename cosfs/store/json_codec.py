"""The JSON API's wire formats: multipart forms, ``{code, message, data}`` answers, and the
per-slice SHA-1 list (``uploadparts``).

Pure functions with no I/O, shared by ``json_store`` (the client) and cosfs-emulator (the
server), so both sides read and write the same shapes: the ones qcloud-cos-v4 sends
(``cos-protocol.md`` section 4.3 and the ``json_wire`` vectors).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from cosfs.errors import CosError
from cosfs.model import ObjectInfo

if TYPE_CHECKING:
    import requests

    from cosfs.transport import HttpRequest

FormValue = Union[str, bytes]

#: Header prefix of user metadata in ``custom_headers``.
META_PREFIX = "x-cos-meta-"

MiB = 1024 * 1024
#: The slice sizes COS accepts (manual 003); the SDK's default is 1 MiB.
SLICE_SIZES = (512 * 1024, MiB, 2 * MiB, 3 * MiB)
DEFAULT_SLICE_SIZE = MiB
#: The largest ``num`` of a list request (-165 above it, whatever the manual's 1000 says).
MAX_LIST_KEYS = 199
#: The largest simple upload.
MAX_UPLOAD_SIZE = 20 * MiB


def slice_size_for(part_size: Optional[int]) -> int:
    """The allowed slice size for a wished ``part_size``: the smallest one not below it,
    3 MiB at most; 1 MiB when there is no wish."""
    if part_size is None:
        return DEFAULT_SLICE_SIZE
    return next((size for size in SLICE_SIZES if size >= part_size), SLICE_SIZES[-1])


# --- request shapes (field order as qcloud-cos-v4 sends them) ------------------------------


def list_params(num: int, context: str) -> List[Tuple[str, str]]:
    return [("op", "list"), ("num", str(max(1, min(num, MAX_LIST_KEYS)))), ("context", context)]


def move_params(dest_path: str, overwrite: bool) -> List[Tuple[str, str]]:
    """Query of a move: v4 sends it in the query string with no body."""
    return [("op", "move"), ("dest_fileid", dest_path), ("to_over_write", "1" if overwrite else "0")]


def copy_form(dest_path: str) -> List[Tuple[str, FormValue]]:
    return [("op", "copy"), ("dest_fileid", dest_path), ("to_over_write", "1")]


def upload_form(data: bytes, sha: str) -> List[Tuple[str, FormValue]]:
    """A simple upload that overwrites (``insertOnly=0``), as a file system write must."""
    return [("op", "upload"), ("biz_attr", ""), ("sha", sha), ("insertOnly", "0"), ("filecontent", data)]


def slice_init_form(size: int, slice_size: int) -> List[Tuple[str, FormValue]]:
    return [
        ("op", "upload_slice_init"), ("biz_attr", ""), ("slice_size", str(slice_size)),
        ("filesize", str(size)), ("insertOnly", "0"),
    ]


def slice_data_form(session: str, offset: int, data: bytes) -> List[Tuple[str, FormValue]]:
    return [("op", "upload_slice_data"), ("session", session), ("offset", str(offset)), ("filecontent", data)]


def slice_finish_form(session: str, size: int) -> List[Tuple[str, FormValue]]:
    return [("op", "upload_slice_finish"), ("session", session), ("filesize", str(size))]

# --- multipart/form-data -------------------------------------------------------------------


def encode_form(
    fields: Sequence[Tuple[str, FormValue]],
    file_name: str = "filecontent",
    boundary: Optional[str] = None,
) -> Tuple[str, bytes]:
    """``(content_type, body)`` of a multipart form with ``fields`` in order.

    The field called ``file_name`` goes as a file part (``application/octet-stream``), the
    others as plain fields, as the manual's examples show them; the server accepts both.
    """
    values = [(name, value.encode("utf-8") if isinstance(value, str) else value) for name, value in fields]
    boundary = boundary or _fresh_boundary(values)
    chunks: List[bytes] = []
    for name, value in values:
        chunks.append(f"--{boundary}\r\n".encode("ascii"))
        chunks.append(_part_header(name, name == file_name))
        chunks.append(value)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def _fresh_boundary(values: Sequence[Tuple[str, bytes]]) -> str:
    """A random boundary that occurs in none of the values (a clash is astronomically rare,
    but a silent one would corrupt the upload)."""
    while True:
        boundary = uuid.uuid4().hex
        marker = boundary.encode("ascii")
        if not any(marker in value for _, value in values):
            return boundary


def _part_header(name: str, is_file: bool) -> bytes:
    quoted = name.replace('"', "%22")
    if is_file:
        return (
            f'Content-Disposition: form-data; name="{quoted}"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8")
    return f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode("utf-8")


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


# --- answers -------------------------------------------------------------------------------


def parse_answer(body: bytes) -> Optional[Dict[str, Any]]:
    """The ``{code, message, data}`` object of an answer, or ``None`` when it is not one."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def answer_data(response: requests.Response) -> Dict[str, Any]:
    """The ``data`` object of a successful answer (empty when there is none)."""
    payload = parse_answer(response.content) or {}
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


def _code_text(value: Any) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return ""


def check_json(response: requests.Response, request: HttpRequest) -> Optional[CosError]:
    """The transport's error check for JSON API answers: ``None`` for code 0.

    COS answers 200 or 400 with a JSON body; anything else (a proxy's 502 page, a body
    that is not JSON) is an error with that status, whatever the body says.
    """
    status = response.status_code
    payload = parse_answer(response.content)
    code = _code_text(payload.get("code")) if payload else ""
    if status in (200, 400) and code == "0":
        return None
    if payload and payload.get("message"):
        message = str(payload["message"])
    elif payload is None:
        message = f"HTTP {status} answer is not a JSON API answer"
    else:
        message = f"HTTP {status} answer"
    return CosError(
        message,
        status=status,
        code=code,
        request_id=response.headers.get("x-cos-request-id", ""),
        operation=request.operation,
        key=request.key,
    )


_XML_CODE_RE = re.compile(rb"<Code>\s*([^<]*?)\s*</Code>")


def check_download(response: requests.Response, request: HttpRequest) -> Optional[CosError]:
    """The error check for downloads: plain HTTP, with an XML ``<Error><Code>`` when present.
    416 is no error here: reading at or past the end yields no bytes."""
    status = response.status_code
    if status in (200, 206, 416):
        return None
    match = _XML_CODE_RE.search(response.content or b"")
    code = match.group(1).decode("utf-8", "replace") if match else ""
    return CosError(
        f"download answered HTTP {status}",
        status=status,
        code=code,
        request_id=response.headers.get("x-cos-request-id", ""),
        operation=request.operation,
        key=request.key,
    )


# --- attributes ----------------------------------------------------------------------------


def seconds_ns(value: Any) -> int:
    """A 10-digit Unix time (int or string, as the manual and the examples disagree) in ns."""
    try:
        return int(float(value)) * 1_000_000_000
    except (TypeError, ValueError):
        return 0


def custom_headers(meta: Optional[Mapping[str, str]], content_type: Optional[str]) -> Dict[str, str]:
    """The ``custom_headers`` object of an update: user metadata and the content type."""
    headers = {f"{META_PREFIX}{name}": value for name, value in (meta or {}).items()}
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def read_custom_headers(headers: Any) -> Tuple[Dict[str, str], Optional[str]]:
    """``(user metadata, content type)`` from a stat's ``custom_headers``."""
    meta: Dict[str, str] = {}
    content_type = None
    for name, value in (headers or {}).items() if isinstance(headers, dict) else ():
        lowered = str(name).lower()
        if lowered.startswith(META_PREFIX):
            meta[lowered[len(META_PREFIX):]] = str(value)
        elif lowered == "content-type":
            content_type = str(value)
    return meta, content_type


def is_dir_entry(info: Mapping[str, Any]) -> bool:
    """Whether a list entry is a directory: its name ends in ``/`` or it has no ``filesize``."""
    return str(info.get("name", "")).endswith("/") or "filesize" not in info


def is_unfinished(info: Mapping[str, Any]) -> bool:
    """Whether a file's upload is still going on (``filelen`` below ``filesize``): such a
    file has no readable content yet."""
    try:
        return int(info.get("filelen", info["filesize"])) < int(info["filesize"])
    except (KeyError, TypeError, ValueError):
        return False


def file_info(key: str, info: Mapping[str, Any], with_meta: bool) -> ObjectInfo:
    """The ``ObjectInfo`` of a file from a stat (``with_meta``) or a list entry."""
    meta, content_type = read_custom_headers(info.get("custom_headers")) if with_meta else (None, None)
    return ObjectInfo(
        key=key,
        size=int(info.get("filesize") or 0),
        mtime_ns=seconds_ns(info.get("mtime")),
        etag=str(info.get("sha") or ""),
        meta=meta,
        content_type=content_type,
    )


def dir_info(key: str, info: Mapping[str, Any], with_meta: bool) -> ObjectInfo:
    """The ``ObjectInfo`` of a directory from a stat (``with_meta``) or a list entry."""
    meta = read_custom_headers(info.get("custom_headers"))[0] if with_meta else None
    return ObjectInfo(key=key, size=0, mtime_ns=seconds_ns(info.get("mtime")), is_dir=True, meta=meta)


def list_parts(data: Mapping[str, Any]) -> List[Tuple[int, int]]:
    """``(offset, datalen)`` of the stored slices in an ``upload_slice_list`` answer, in
    order. ``listparts`` is a list, or a JSON string of one (the manual types it String)."""
    parts = data.get("listparts") or []
    if isinstance(parts, str):
        parts = json.loads(parts or "[]")
    return sorted((int(part["offset"]), int(part["datalen"])) for part in parts)


# --- uploadparts: the per-slice SHA-1 list --------------------------------------------------

_SHA1_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_MASK = 0xFFFFFFFF
_BLOCK = struct.Struct(">16I")


def intermediate_sha1(data: bytes, slice_size: int) -> List[Dict[str, Any]]:
    """The ``uploadparts`` list of ``data`` cut into ``slice_size`` slices.

    Each non-final slice carries the SHA-1 chaining state after it (no padding), each word
    little-endian; the final one carries the real SHA-1 of the whole file. hashlib does not
    expose the chaining state, so this hashes in pure Python at about 1 MB/s: cosfs does not
    send ``uploadparts`` (the server does not require it); cosfs-emulator uses this to check
    the list when a client sends one.
    """
    if slice_size <= 0 or slice_size % 64:
        raise ValueError(f"slice size {slice_size} is not a positive multiple of 64 bytes")
    parts: List[Dict[str, Any]] = []
    state = _SHA1_INIT
    for offset in range(0, len(data), slice_size):
        end = min(offset + slice_size, len(data))
        if end == len(data):
            datasha = hashlib.sha1(data).hexdigest()
        else:
            state = _sha1_compress(state, data, offset, end)
            datasha = struct.pack("<5I", *state).hex()
        parts.append({"offset": offset, "datalen": end - offset, "datasha": datasha})
    return parts


def _sha1_compress(state: Tuple[int, ...], data: bytes, start: int, end: int) -> Tuple[int, ...]:
    """SHA-1's compression function over the 64-byte blocks of ``data[start:end]``."""
    h0, h1, h2, h3, h4 = state
    for pos in range(start, end, 64):
        w = list(_BLOCK.unpack_from(data, pos))
        for i in range(16, 80):
            x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w.append(((x << 1) | (x >> 31)) & _MASK)
        a, b, c, d, e = h0, h1, h2, h3, h4
        for i in range(0, 20):
            t = (((a << 5) | (a >> 27)) + (d ^ (b & (c ^ d))) + e + 0x5A827999 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(20, 40):
            t = (((a << 5) | (a >> 27)) + (b ^ c ^ d) + e + 0x6ED9EBA1 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(40, 60):
            t = (((a << 5) | (a >> 27)) + ((b & c) | (d & (b | c))) + e + 0x8F1BBCDC + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(60, 80):
            t = (((a << 5) | (a >> 27)) + (b ^ c ^ d) + e + 0xCA62C1D6 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        h0, h1, h2 = (h0 + a) & _MASK, (h1 + b) & _MASK, (h2 + c) & _MASK
        h3, h4 = (h3 + d) & _MASK, (h4 + e) & _MASK
    return (h0, h1, h2, h3, h4)
