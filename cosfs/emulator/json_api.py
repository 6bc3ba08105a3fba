"""The legacy JSON API (``/files/v2/<appid>/<bucket>/<path>``): one routed request in, one
``{code, message, data}`` answer out, over the same objects the XML API serves.

``handle`` checks the signature (the kind each operation needs), the path and the fields,
runs the operation and answers HTTP 200 with code 0 or HTTP 400 with the manual's negative
code; a ``StorageError`` becomes the matching JSON code. Slice uploads are in ``json_slices``.

Model: a file is the object ``dir/name``; a directory is its ``dir/`` marker object, or any key
prefix ``dir/`` (directories written through the XML API have no marker); the bucket root
always exists. ``biz_attr``, ``authority`` and the Cache-Control, Content-Disposition,
Content-Language and Content-Encoding custom headers live in the object's ``extra`` (the last
four under their lower-case names, as the XML API keeps them); ``x-cos-meta-*`` are the
object's user metadata and Content-Type its content type, so both APIs see them.

Choices where manual 003 and the SDKs leave room (each one checked by the tests):

- signatures: stat, list, create and uploads need a multi-use one (a once signature is -74);
  update needs a once one (multi is -73); delete, move and copy accept either, as the SDKs
  and the manual's own examples differ. A once signature works once (-77).
- paths: a file operation on a path ending in ``/`` is -160, create without the ``/`` -161,
  nothing after the bucket -164, ``//``, a control character, a ``..`` segment or a key over
  850 bytes -180, a field that is not UTF-8 -147. The characters the SDK refuses
  client-side (``?*:|\\<>"``) are allowed: objects written through the XML API may use them.
- parameters: a missing ``op`` is -5980, an unknown one -5992, an operation with the wrong
  HTTP method -5996, a malformed value -5992, a body that is not JSON -5975, not a form -5993.
- create: a directory that exists, the root, or a file of the same name is -178 (路径冲突);
  the parent must exist (-197), as for upload, slice init, move and copy. The answer has
  ``ctime`` and ``resource_path``. Creating a file where a directory of that name exists is
  -178 too.
- delete: a directory with anything under it, including an unfinished upload, is -173; the
  root is -180. Deleting a file also discards its unfinished uploads (a path with only an
  unfinished upload is deleted that way).
- upload: data over 20 MiB is -285; a ``sha`` the data does not have is -5984; ``insertOnly``
  defaults to 1 (-177 when the file exists).
- answers: the URLs are cos-protocol.md 4.1's with the region's short name (``gz`` for
  ap-guangzhou), ``preview_url`` without the examples' ``?cmd=txt_preview``; stat's
  ``slicesize`` is the file size (the manual's example); operations without data (delete,
  update, move, copy) answer no ``data`` member, as the manual's examples show.
- list: ``num`` defaults to 199; directory names end in ``/`` (the manual's examples list only
  files); ``context`` is ``/<bucket>/<path of the last entry>`` and empty once ``listover``;
  unfinished uploads are listed with ``filelen < filesize``. ``order=1`` lists in descending
  name order (reading the whole directory). Implicit directories and the root have times 0.
- move/copy: ``dest_fileid`` with a leading ``/`` is a bucket path, without one it is relative
  to the source's directory; ``to_over_write`` defaults to 0; a destination equal to the
  source is -177 without overwrite, else nothing happens. Move is copy then delete.
- update: ``custom_headers`` are merged into what the file has (the manual: "只需填写需要增加
  或修改的项"); a header name COS does not keep is -182; an ``authority`` outside eInvalid,
  eWRPrivate, eWPrivateRPublic is -182; ``flag`` (qcloud-cos 3.3.6: 0x01 biz_attr,
  0x40 custom_headers, 0x80 authority) limits the update to the flagged parts, and selecting
  none is -179. Extension: update on a directory stores the attributes on its marker
  (creating the marker of an implicit directory); stat of a directory returns them.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from cosfs.emulator import json_slices
from cosfs.emulator.auth import JsonAuthError
from cosfs.emulator.context import Context
from cosfs.emulator.forms import decode_form
from cosfs.emulator.json_slices import Fields, JsonError
from cosfs.emulator.protocol import EmulatorError, EmuRequest, EmuResponse
from cosfs.emulator.storage import ObjectRecord, StorageError, check_key
from cosfs.wire.facts import JSON_MAX_LIST_KEYS as MAX_LIST_KEYS
from cosfs.wire.facts import JSON_MAX_UPLOAD_SIZE as MAX_UPLOAD_SIZE
from cosfs.wire.facts import META_PREFIX
from cosfs.wire.signing import jsonsign

JSON_PREFIX = "/files/v2/"
DEFAULT_TYPE = "application/octet-stream"
AUTHORITIES = ("eInvalid", "eWRPrivate", "eWPrivateRPublic")
#: custom_headers kept in ``extra`` (lower-case key -> the name answered).
EXTRA_HEADERS = {"cache-control": "Cache-Control", "content-disposition": "Content-Disposition",
                 "content-language": "Content-Language", "content-encoding": "Content-Encoding"}
#: Short names of the JSON API regions, as in its URLs.
REGIONS = {"ap-shanghai": "sh", "ap-guangzhou": "gz", "ap-beijing-1": "tj", "ap-tianjin": "tj",
           "ap-singapore": "sgp"}
_BODY_LIMIT = MAX_UPLOAD_SIZE + 1024 * 1024

#: StorageError code -> JSON code; anything else is -181 (storage back-end error).
STORAGE_CODES = {"NoSuchKey": -197, "NoSuchUpload": -290, "KeyTooLong": -180, "InvalidObjectName": -180,
                 "InvalidArgument": -5992, "InvalidPart": -175, "EntityTooSmall": -175}


class Call:
    """One request being answered: where it goes and what it carries."""

    def __init__(self, ctx: Context, request: EmuRequest, appid: str, bucket_name: str, fields: Fields) -> None:
        self.ctx, self.request, self.appid, self.bucket_name, self.fields = ctx, request, appid, bucket_name, fields
        self.storage, self.bucket, self.key = ctx.storage, request.bucket, request.key


def handle(ctx: Context, request: EmuRequest, appid: str, bucket_name: str) -> EmuResponse:
    """Answer one JSON API request (already routed to an existing bucket)."""
    try:
        if request.method not in ("GET", "POST"):
            raise JsonError(-5996, f"the JSON API takes GET and POST, not {request.method}")
        fields = _read_fields(request)
        op = fields.text("op")
        if not op:
            raise JsonError(-5980, "the request names no op")
        request.operation = op
        handler, methods, signature = OPERATIONS.get(op, (None, (), ""))
        if handler is None:
            raise JsonError(-5992, f"unknown op {op!r}")
        if request.method not in methods:
            raise JsonError(-5996, f"op {op} takes {' or '.join(methods)}, not {request.method}")
        _authorize(ctx, request, appid, bucket_name, signature)
        _check_path(request)
        data = handler(Call(ctx, request, appid, bucket_name, fields))
    except (JsonAuthError, JsonError) as error:
        return _answer(request, error.code, error.message)
    except StorageError as error:
        return _answer(request, STORAGE_CODES.get(error.code, -181), f"{error.code}: {error.message}")
    except EmulatorError as error:  # read_body: the body is over the limit
        return _answer(request, -285, error.message)
    return _answer(request, 0, "SUCCESS", data)


def _answer(request: EmuRequest, code: int, message: str, data: Optional[dict] = None) -> EmuResponse:
    if code:
        name = json_slices.CODE_NAMES.get(code)
        message = f"{name}: {message}" if name else message
    payload: Dict[str, object] = {"code": code, "message": message, "request_id": request.request_id}
    if data is not None:
        payload["data"] = data
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return EmuResponse(400 if code else 200, {"Content-Type": "application/json"}, body)


# --- request parsing -----------------------------------------------------------------------


def _read_fields(request: EmuRequest) -> Fields:
    """The query (without ``sign``), overridden by a POST's JSON or multipart form body."""
    values: Dict[str, object] = {k: v for k, v in request.params if k != "sign"}
    if request.method != "POST":
        return Fields(values)
    body = request.read_body(_BODY_LIMIT)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        try:
            values.update(decode_form(content_type, body))
        except ValueError as error:
            raise JsonError(-5993, f"bad multipart/form-data body: {error}") from None
    elif body.strip():
        try:
            parsed = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parsed = None
        if not isinstance(parsed, dict):
            raise JsonError(-5975, "the body is neither a JSON object nor a multipart form")
        values.update(parsed)
    return Fields(values)


def _authorize(ctx: Context, request: EmuRequest, appid: str, bucket_name: str, signature: str) -> None:
    """Verify the signature; ``signature`` is the kind the op needs: multi, once or any."""
    sign = request.headers.get("authorization") or request.raw_param("sign") or ""
    if sign and not ctx.auth.no_auth:
        try:
            expire = jsonsign.decode(sign).fields.get("e")
        except jsonsign.SignatureFormatError:
            expire = None  # check_json answers -5998
        if expire == "0" and signature == "multi":
            raise JsonError(-74, f"op {request.operation} needs a multi-use signature, not a once one")
        if expire not in (None, "0") and signature == "once":
            raise JsonError(-73, f"op {request.operation} needs a once signature (e=0)")
    target = jsonsign.fileid(appid, bucket_name, "/" + request.key)
    request.signer = ctx.auth.check_json(request, appid, bucket_name, target)


def _check_path(request: EmuRequest) -> None:
    raw = request.raw_path.split("?", 1)[0]
    if raw.startswith(JSON_PREFIX) and len(raw[len(JSON_PREFIX):].split("/", 2)) < 3:
        raise JsonError(-164, "the URL has no path after the bucket")
    _check_key(request.key)


def _check_key(key: str) -> None:
    if not key:
        return
    if key.startswith("/") or "//" in key:
        raise JsonError(-180, f"path /{key} has an empty segment")
    try:
        check_key(key)
    except StorageError as error:
        raise JsonError(-180, error.message) from None


def _file_path(call: Call, key: Optional[str] = None) -> str:
    key = call.key if key is None else key
    if not key or key.endswith("/"):
        raise JsonError(-160, f"op {call.request.operation} needs a file path, not /{key}")
    return key


def parent_dir(key: str) -> str:
    """``a/b/`` for ``a/b/c`` and ``a/b/c/``; '' (the root) for ``a`` and ``a/``."""
    stripped = key[:-1] if key.endswith("/") else key
    return stripped[: stripped.rfind("/") + 1]


def _require_parent(call: Call, key: str) -> None:
    parent = parent_dir(key)
    if parent and not call.storage.has_prefix(call.bucket, parent):
        raise JsonError(-197, f"directory /{parent} does not exist")


def _require_no_dir(call: Call, key: str) -> None:
    if call.storage.has_prefix(call.bucket, key + "/"):
        raise JsonError(-178, f"/{key}/ is a directory")


# --- answers -------------------------------------------------------------------------------


def _seconds(ns: int) -> int:
    return ns // 1_000_000_000


def file_urls(call: Call, key: str) -> Dict[str, str]:
    """The URLs COS answers for a file (cos-protocol.md 4.1)."""
    region = REGIONS.get(call.ctx.region, call.ctx.region)
    path, host = jsonsign.encode_path("/" + key), f"{call.bucket_name}-{call.appid}"
    return {
        "access_url": f"http://{host}.file.myqcloud.com{path}",
        "resource_path": f"/{call.appid}/{call.bucket_name}{path}",
        "source_url": f"http://{host}.cos{region}.myqcloud.com{path}",
        "url": f"http://{region}.file.myqcloud.com/files/v2/{call.appid}/{call.bucket_name}{path}",
        "preview_url": f"http://{host}.preview.myqcloud.com{path}",
    }


def _file_info(call: Call, record: ObjectRecord) -> Dict[str, object]:
    urls = file_urls(call, record.key)
    info: Dict[str, object] = {
        "filesize": record.size, "filelen": record.size, "sha": call.storage.content_sha1(record),
        "ctime": _seconds(record.ctime_ns), "mtime": _seconds(record.mtime_ns),
        "access_url": urls["access_url"], "source_url": urls["source_url"], "preview_url": urls["preview_url"],
    }
    if "authority" in record.extra:
        info["authority"] = record.extra["authority"]
    return info


def custom_headers(record: ObjectRecord) -> Dict[str, str]:
    headers = {name: record.extra[lower] for lower, name in EXTRA_HEADERS.items() if lower in record.extra}
    if record.content_type and record.content_type != DEFAULT_TYPE:
        headers["Content-Type"] = record.content_type
    for name, value in sorted(record.meta.items()):
        headers[name if name.startswith(META_PREFIX) else META_PREFIX + name] = value
    return headers


def _name(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


# --- directories and stat ------------------------------------------------------------------


def stat(call: Call) -> Dict[str, object]:
    key, storage = call.key, call.storage
    if not key or key.endswith("/"):
        marker = storage.head(call.bucket, key) if key else None
        if key and marker is None and not storage.has_prefix(call.bucket, key):
            raise JsonError(-197, f"directory /{key} does not exist")
        if marker is None:
            return {"biz_attr": "", "ctime": 0, "mtime": 0}
        return _with_headers(marker, {"biz_attr": marker.extra.get("biz_attr", ""),
                                      "ctime": _seconds(marker.ctime_ns), "mtime": _seconds(marker.mtime_ns)})
    record = storage.head(call.bucket, key)
    if record is not None:
        return _with_headers(record, {"name": _name(key), "biz_attr": record.extra.get("biz_attr", ""),
                                      **_file_info(call, record), "forbid": 0, "slicesize": record.size})
    unfinished = json_slices.sessions(storage, call.bucket, key)
    if unfinished:
        return {"name": _name(key), **json_slices.describe(storage, unfinished[-1]), "forbid": 0}
    raise JsonError(-197, f"file /{key} does not exist")


def _with_headers(record: ObjectRecord, info: Dict[str, object]) -> Dict[str, object]:
    """``info`` plus the record's ``custom_headers``, when it has any."""
    headers = custom_headers(record)
    return {**info, "custom_headers": headers} if headers else info


def create(call: Call) -> Dict[str, object]:
    key, storage = call.key, call.storage
    if key and not key.endswith("/"):
        raise JsonError(-161, f"a directory path ends in '/': /{key}")
    if not key or storage.has_prefix(call.bucket, key) or storage.head(call.bucket, key[:-1]):
        raise JsonError(-178, f"/{key} exists")
    _require_parent(call, key)
    biz_attr = call.fields.text("biz_attr") or ""
    record = storage.put(call.bucket, key, storage.receive([]), extra={"biz_attr": biz_attr} if biz_attr else {})
    return {"ctime": _seconds(record.ctime_ns), "resource_path": file_urls(call, key)["resource_path"]}


def delete(call: Call) -> None:
    key, storage, bucket = call.key, call.storage, call.bucket
    if key and not key.endswith("/"):
        existed = storage.delete(bucket, key)
        if not json_slices.discard(storage, bucket, key) and not existed:
            raise JsonError(-197, f"file /{key} does not exist")
        return None
    if not key:
        raise JsonError(-180, "the bucket root cannot be deleted")
    children = [o for o in storage.list(bucket, prefix=key, max_keys=2).objects if o.key != key]
    if children or any(u.extra.get("api") == "json" for u in storage.uploads(bucket, key)):
        raise JsonError(-173, f"directory /{key} is not empty")
    if not storage.delete(bucket, key):
        raise JsonError(-197, f"directory /{key} does not exist")
    return None


def list_dir(call: Call) -> Dict[str, object]:
    key, fields = call.key, call.fields
    split = key.rfind("/") + 1
    directory, prefix = key[:split], key[split:]
    num = fields.integer("num", MAX_LIST_KEYS)
    if num > MAX_LIST_KEYS:
        raise JsonError(-165, f"num {num} is over {MAX_LIST_KEYS}")
    if num < 1:
        raise JsonError(-157, f"num {num} is below 1")
    pattern = fields.text("pattern") or "eListBoth"
    wanted = {"eListBoth": ("dir", "file"), "eListDirOnly": ("dir",), "eListFileOnly": ("file",)}.get(pattern)
    order = fields.integer("order", 0)
    if wanted is None or order not in (0, 1):
        raise JsonError(-5992, f"pattern {pattern!r} / order {order} is not supported")
    if directory and not call.storage.has_prefix(call.bucket, directory):
        raise JsonError(-197, f"directory /{directory} does not exist")
    after = _context_name(call, directory, fields.text("context") or "")
    entries = (e for e in _children(call, directory, prefix, "" if order else after) if e[1] in wanted)
    if order:
        entries = (e for e in sorted(entries, key=lambda e: _sort_key(e[0]), reverse=True)
                   if not after or _sort_key(e[0]) < _sort_key(after))
    page: List[Tuple[str, str, object]] = []
    for entry in entries:
        if len(page) == num:
            last = page[-1][0]
            return {"context": f"/{call.bucket_name}/{directory}{last}", "listover": False,
                    "infos": [_entry_info(call, directory, e) for e in page]}
        page.append(entry)
    return {"context": "", "listover": True, "infos": [_entry_info(call, directory, e) for e in page]}


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def _context_name(call: Call, directory: str, context: str) -> str:
    """The entry name a ``context`` continues after ('' for the first page)."""
    if not context:
        return ""
    head = f"/{call.bucket_name}/{directory}"
    if not context.startswith(head) or len(context) == len(head):
        raise JsonError(-5992, f"context {context!r} does not come from a listing of /{directory}")
    return context[len(head):]


def _children(call: Call, directory: str, prefix: str, after: str) -> Iterator[Tuple[str, str, object]]:
    """``(name, 'dir'|'file', record)`` directly under ``directory`` starting with ``prefix``,
    after ``after``, bytewise; unfinished uploads merged in (an object of the same name wins)."""
    storage, bucket = call.storage, call.bucket
    uploads = sorted(((u.key[len(directory):], "file", u) for u in storage.uploads(bucket, directory + prefix)
                      if u.extra.get("api") == "json" and "/" not in u.key[len(directory):]
                      and _sort_key(u.key[len(directory):]) > _sort_key(after)), key=lambda e: _sort_key(e[0]))
    previous = None
    for entry in heapq.merge(_stored_children(call, directory, prefix, after), uploads, key=lambda e: _sort_key(e[0])):
        if entry[0] != previous:
            previous = entry[0]
            yield entry


def _stored_children(call: Call, directory: str, prefix: str, after: str) -> Iterator[Tuple[str, str, object]]:
    marker = directory + after if after else ""
    while True:
        page = call.storage.list(call.bucket, prefix=directory + prefix, delimiter="/", marker=marker)
        items = [(o.key, o) for o in page.objects] + [(p, None) for p in page.prefixes]
        for item_key, record in sorted(items, key=lambda item: _sort_key(item[0])):
            name = item_key[len(directory):]
            if name and name != "/":
                yield (name, "dir" if record is None else "file", record)
        if not page.truncated:
            return
        marker = page.next_marker


def _entry_info(call: Call, directory: str, entry: Tuple[str, str, object]) -> Dict[str, object]:
    name, kind, record = entry
    if kind == "dir":
        marker = call.storage.head(call.bucket, directory + name)
        times = (_seconds(marker.ctime_ns), _seconds(marker.mtime_ns)) if marker else (0, 0)
        return {"name": name, "ctime": times[0], "mtime": times[1]}
    if isinstance(record, ObjectRecord):
        return {"name": name, **_file_info(call, record)}
    info = json_slices.describe(call.storage, record)
    return {"name": name, **{k: info[k] for k in ("filesize", "filelen", "sha", "ctime", "mtime")}}


# --- files ---------------------------------------------------------------------------------


def upload(call: Call) -> Dict[str, str]:
    key, storage, fields = _file_path(call), call.storage, call.fields
    content = fields.content()
    if content is None:
        raise JsonError(-5990, "op upload needs filecontent")
    if len(content) > MAX_UPLOAD_SIZE:
        raise JsonError(-285, f"{len(content)} bytes is over the {MAX_UPLOAD_SIZE}-byte simple upload limit")
    sha = (fields.text("sha") or "").strip().lower()
    if sha and sha != hashlib.sha1(content).hexdigest():
        raise JsonError(-5984, f"sha {sha} is not the SHA-1 of the data")
    insert_only = fields.flag("insertOnly", True)
    _require_parent(call, key)
    _require_no_dir(call, key)
    if insert_only and storage.head(call.bucket, key) is not None:
        raise JsonError(-177, f"/{key} exists and insertOnly is 1")
    biz_attr = fields.text("biz_attr") or ""
    storage.put(call.bucket, key, storage.receive([content]), extra={"biz_attr": biz_attr} if biz_attr else {})
    return file_urls(call, key)


def _slice_op(step: Callable, new_file: bool = False) -> Callable[[Call], Dict[str, object]]:
    """A ``json_slices`` step as an operation; the URLs answer a finished file."""
    def run(call: Call) -> Dict[str, object]:
        key = _file_path(call)
        if new_file:
            _require_parent(call, key)
            _require_no_dir(call, key)
        result = step(call.storage, call.bucket, key, call.fields)
        return file_urls(call, key) if isinstance(result, ObjectRecord) else result
    return run


def _transfer(call: Call, remove_source: bool) -> None:
    """move (copy, then delete the source) and copy."""
    src, storage, fields = _file_path(call), call.storage, call.fields
    dest = fields.text("dest_fileid") or ""
    if not dest:
        raise JsonError(-5992, f"op {call.request.operation} needs dest_fileid")
    dst = dest[1:] if dest.startswith("/") else parent_dir(src) + dest
    _file_path(call, dst)
    _check_key(dst)
    overwrite = fields.flag("to_over_write", False)
    if storage.head(call.bucket, src) is None:
        raise JsonError(-197, f"file /{src} does not exist")
    _require_parent(call, dst)
    _require_no_dir(call, dst)
    if not overwrite and storage.head(call.bucket, dst) is not None:
        raise JsonError(-177, f"/{dst} exists and to_over_write is 0")
    if dst == src:
        return None
    storage.copy(call.bucket, src, dst)
    if remove_source:
        storage.delete(call.bucket, src)
    return None


def update(call: Call) -> None:
    key, storage, fields = call.key, call.storage, call.fields
    flag = fields.integer("flag") if "flag" in fields else None
    if flag is not None and not flag & 0xC1:
        raise JsonError(-179, f"flag {flag:#x} selects none of biz_attr 0x01, custom_headers 0x40, authority 0x80")

    def wants(bit: int, name: str) -> bool:
        return name in fields and (flag is None or bool(flag & bit))

    extra: Dict[str, str] = {}
    meta, content_type = None, None
    if wants(0x01, "biz_attr"):
        extra["biz_attr"] = fields.text("biz_attr") or ""
    if wants(0x80, "authority"):
        authority = fields.text("authority")
        if authority not in AUTHORITIES:
            raise JsonError(-182, f"authority {authority!r} is not one of {', '.join(AUTHORITIES)}")
        extra["authority"] = authority
    record = storage.head(call.bucket, key) if key else None
    if record is None and key.endswith("/") and storage.has_prefix(call.bucket, key):
        record = storage.put(call.bucket, key, storage.receive([]))  # an implicit directory gets its marker
    if record is None:
        raise JsonError(-180 if not key else -197, f"/{key} does not exist or cannot carry attributes")
    if wants(0x40, "custom_headers"):
        meta, content_type = dict(record.meta), None
        for name, value in (fields.mapping("custom_headers") or {}).items():
            lower, value = str(name).lower(), str(value)
            if lower.startswith(META_PREFIX) and len(lower) > len(META_PREFIX):
                meta[lower[len(META_PREFIX):]] = value
            elif lower == "content-type":
                content_type = value
            elif lower in EXTRA_HEADERS:
                extra[lower] = value
            else:
                raise JsonError(-182, f"custom header {name!r} is not one COS keeps")
    storage.update(call.bucket, key, meta=meta, content_type=content_type, extra=extra)
    return None


#: op -> (handler, HTTP methods, signature kind).
OPERATIONS: Dict[str, Tuple[Callable[[Call], Optional[dict]], Tuple[str, ...], str]] = {
    "stat": (stat, ("GET",), "multi"),
    "list": (list_dir, ("GET",), "multi"),
    "create": (create, ("POST",), "multi"),
    "delete": (delete, ("POST",), "any"),
    "update": (update, ("POST",), "once"),
    "upload": (upload, ("POST",), "multi"),
    "upload_slice_init": (_slice_op(json_slices.init, new_file=True), ("POST",), "multi"),
    "upload_slice_data": (_slice_op(json_slices.data), ("POST",), "multi"),
    "upload_slice_finish": (_slice_op(json_slices.finish), ("POST",), "multi"),
    "upload_slice_list": (_slice_op(json_slices.listing), ("POST", "GET"), "multi"),
    "move": (lambda call: _transfer(call, True), ("POST",), "any"),
    "copy": (lambda call: _transfer(call, False), ("POST",), "any"),
}
