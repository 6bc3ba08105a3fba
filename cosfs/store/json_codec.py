"""The JSON API's wire formats as the client speaks them: multipart forms out,
``{code, message, data}`` answers in.

Pure functions with no I/O, used by ``json_store`` only: cosfs-emulator parses forms and
builds answers with its own code, so what it checks is not what this module assumes. The
shapes are the ones qcloud-cos-v4 sends (``cos-protocol.md`` section 4.3 and the
``json_wire`` vectors).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from cosfs.store.interface import ObjectInfo
from cosfs.wire import facts
from cosfs.wire.errors import CosError

if TYPE_CHECKING:
    from cosfs.wire.http import HttpResponse
    from cosfs.wire.transport import HttpRequest

FormValue = Union[str, bytes]

#: Header prefix of user metadata in ``custom_headers``; slice sizes and limits (manual 003).
META_PREFIX = facts.META_PREFIX
SLICE_SIZES = facts.SLICE_SIZES
DEFAULT_SLICE_SIZE = facts.DEFAULT_SLICE_SIZE
MAX_LIST_KEYS = facts.JSON_MAX_LIST_KEYS
MAX_UPLOAD_SIZE = facts.JSON_MAX_UPLOAD_SIZE


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


# --- answers -------------------------------------------------------------------------------


def parse_answer(body: bytes) -> Optional[Dict[str, Any]]:
    """The ``{code, message, data}`` object of an answer, or ``None`` when it is not one."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def answer_data(response: HttpResponse) -> Dict[str, Any]:
    """The ``data`` object of a successful answer (empty when there is none)."""
    payload = parse_answer(response.content) or {}
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


def _code_text(value: Any) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return ""


def check_json(response: HttpResponse, request: HttpRequest) -> Optional[CosError]:
    """The transport's error check for JSON API answers: ``None`` for code 0.

    COS answers 200 or 400 with a JSON body; anything else (a proxy's 502 page, a body
    that is not JSON) is an error with that status, whatever the body says.
    """
    status = response.status
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


def check_download(response: HttpResponse, request: HttpRequest) -> Optional[CosError]:
    """The error check for downloads: plain HTTP, with an XML ``<Error><Code>`` when present.
    416 is no error here: reading at or past the end yields no bytes."""
    status = response.status
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
