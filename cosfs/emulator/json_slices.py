"""JSON API slice uploads (``upload_slice_init/data/finish/list``) as storage multipart uploads;
also what ``json_api`` shares with them: request fields, the error type and the code names.

A session is a ``Storage`` multipart upload whose ``extra`` says ``api=json`` and keeps the
session's ``filesize``, ``slice_size``, ``sha``, ``biz_attr``, ``insert_only`` and
``uploadparts``; the session id is the upload id. The slice at offset ``o`` is part
``o // slice_size + 1``; finish assembles the parts with ``complete_upload(min_part_size=0)``
so the file appears atomically, with the session's ``biz_attr``. The XML API sees sessions as
ordinary unfinished multipart uploads.

Choices where manual 003 is silent (each one checked by the tests):

- ``slice_size`` not one of 512 KiB, 1, 2 or 3 MiB is -4, the manual's only code for an
  illegal slice size (listed among its SDK codes); a missing ``slice_size`` means 1 MiB.
- init: an existing file with the same ``sha`` and size is an instant upload (秒传: the answer
  carries the file's URLs and no session); otherwise an existing file is -177 unless
  ``insertOnly=0``. An unfinished session of the path with the same ``filesize`` and
  ``slice_size`` (and no conflicting ``sha``) is -4019, so the client resumes it through
  ``upload_slice_list``; with other parameters the stale session is discarded and a new one
  starts, which lets a client restart an upload of changed content.
- a session id that does not exist is -290 (无效的session); one of another path -5983.
- a slice must start at a multiple of ``slice_size`` below ``filesize`` (-5992) and be exactly
  ``slice_size`` long, the last one the remainder (-284); sending a slice again replaces it.
- finish: a ``filesize`` other than the session's, or missing slices, is -175; a whole-file
  ``sha`` (given at init, data or finish) that the data does not have is -4016, and so is an
  ``uploadparts`` entry whose ``datasha`` is not the data's. The intermediate ``datasha``
  values (SHA-1 chaining states) take ``slice_hashes.intermediate_sha1``, pure Python at about
  0.5 MB/s, so they are checked for files up to ``VERIFY_PARTS_LIMIT`` (the captured SDK
  upload of 2.5 MiB is); above it only the last entry (the whole file's SHA-1) and the
  offsets and lengths are, which keeps finish from stalling an SDK for minutes.
- an unfinished upload is never reported with ``filelen == filesize``, so no client takes it
  for a finished file before ``upload_slice_finish``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Dict, List, Mapping, Optional, Union

from cosfs.emulator.slice_hashes import intermediate_sha1
from cosfs.emulator.storage import MAX_PARTS, ObjectRecord, PartRecord, Storage, StorageError, UploadRecord
from cosfs.wire.facts import DEFAULT_SLICE_SIZE, SLICE_SIZES

#: Largest file whose intermediate ``uploadparts`` hashes are checked (pure-Python SHA-1).
VERIFY_PARTS_LIMIT = 3 * 1024 * 1024
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
#: Held while init looks for a path's sessions and makes one, so two parallel inits of the
#: same upload make one session and one -4019 (held briefly; data and finish do not take it).
_INIT_LOCK = threading.Lock()

#: Manual 003's names of the JSON API's codes; an answer's message starts with its code's name.
CODE_NAMES = {
    -61: "ERROR_PROXY_SIGN_BUCKET_NOTMATCH", -63: "ERROR_PROXY_FILEID_NOTMATCH",
    -70: "ERROR_PROXY_APPID_USERID_NOTMATCH",
    -73: "ERROR_PROXY_AUTH_ONCESIGN_EXPIREDNOTEMPTY", -74: "ERROR_PROXY_AUTH_MULTISIGN_EXPIREDEMPTY",
    -76: "ERROR_PROXY_AUTH_ONCESIGN_NOFILEID", -77: "ERROR_PROXY_AUTH_REPLAY_ATTACH",
    -79: "ERROR_PROXY_AUTH_SECRETID_NOEXIST", -81: "ERROR_PROXY_AUTH_SIGN_EMPTY",
    -95: "ERROR_PROXY_NO_SESSION", -96: "ERROR_PROXY_AUTH_EXPIRED", -97: "ERROR_PROXY_AUTH_FAILED",
    -147: "ERROR_CMD_NOT_UTF8_ENCODING", -157: "ERROR_CMD_PARAM_MIN_NUM",
    -160: "ERROR_CMD_PARAM_PAHT_FILE_SURPLUS_SLASH", -161: "ERROR_CMD_PARAM_PATH_DIR_MISSING_SLASH",
    -164: "ERROR_CMD_PARAM_PATH_EMPTY", -165: "ERROR_CMD_COS_MAX_NUM", -168: "ERROR_CMD_COS_INVALID_SHA",
    -173: "ERROR_CMD_COS_DIR_NOT_EMPTY", -175: "ERROR_CMD_COS_FILE_SIZE_NOT_EQU",
    -177: "ERROR_CMD_COS_FILE_EXIST", -178: "ERROR_CMD_COS_PATH_CONFLICT",
    -179: "ERROR_CMD_COS_INVALID_MOD_FLAG", -180: "ERROR_CMD_COS_INVALID_PATH", -181: "ERROR_CMD_COS_ERROR",
    -182: "ERROR_CMD_PARAM_INVALID", -197: "ERROR_CMD_FILE_NOTEXIST", -284: "ERROR_PROCESS_WRONG_SLICE_SIZE",
    -285: "ERROR_PROCESS_FILE_TOO_LARGE", -290: "ERROR_PROCESS_OFFSET", -4016: "ErrNotSameSHA",
    -4019: "ErrOffsetToZero", -5971: "ERROR_CGI_PARAM_MISSING_FILESIZE", -5975: "ERROR_CGI_JSON_PARSE_ERROR",
    -5980: "ERROR_CGI_PARAM_MISSING_OP", -5983: "ERROR_CGI_WRONG_SESSION", -5984: "ERROR_CGI_SHA_NOT_MATCH",
    -5990: "ERROR_CGI_MISSING_FILECONTENT", -5992: "ERROR_CGI_REQ_PARAM", -5993: "ERROR_CGI_FORM_ERR",
    -5995: "ERROR_CGI_FILESIZE", -5996: "ERROR_CGI_REQ_METHOD", -5998: "ERROR_CGI_AUTHORIZATION",
}


class JsonError(Exception):
    """A JSON API error answer: a negative ``code`` from manual 003 and what went wrong."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Fields:
    """A request's parameters: the query, overridden by the JSON body or the form fields.

    Form values are bytes, JSON values whatever JSON gave; the accessors turn them into what
    an operation expects or raise the manual's code for a malformed value.
    """

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = dict(values)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def content(self) -> Optional[bytes]:
        """The file data: ``filecontent``, or ``fileContent`` as cos-js-sdk-v4 names it."""
        for name in ("filecontent", "fileContent"):
            value = self._values.get(name)
            if value is not None:
                return value if isinstance(value, bytes) else str(value).encode("utf-8")
        return None

    def text(self, name: str) -> Optional[str]:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise JsonError(-147, f"field {name} is not UTF-8") from None
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def integer(self, name: str, default: Optional[int] = None) -> Optional[int]:
        text = self.text(name)
        if text is None or text.strip() == "":
            return default
        try:
            return int(text.strip())
        except ValueError:
            raise JsonError(-5992, f"field {name} must be an integer, not {text!r}") from None

    def flag(self, name: str, default: bool) -> bool:
        value = self.integer(name, 1 if default else 0)
        if value not in (0, 1):
            raise JsonError(-5992, f"field {name} must be 0 or 1, not {value}")
        return value == 1

    def mapping(self, name: str) -> Optional[Dict[str, object]]:
        value = self._values.get(name)
        if value is None or isinstance(value, dict):
            return value
        try:
            parsed = json.loads(self.text(name) or "{}")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise JsonError(-5975, f"field {name} must be a JSON object")
        return parsed


# --- sessions ------------------------------------------------------------------------------


def sessions(storage: Storage, bucket: str, key: str) -> List[UploadRecord]:
    """The unfinished JSON sessions of ``key``, oldest first."""
    return [u for u in storage.uploads(bucket, key) if u.key == key and u.extra.get("api") == "json"]


def discard(storage: Storage, bucket: str, key: str) -> int:
    """Drop every session of ``key`` (the file is deleted); returns how many there were."""
    found = sessions(storage, bucket, key)
    for upload in found:
        storage.abort_upload(bucket, upload.upload_id)
    return len(found)


def describe(storage: Storage, upload: UploadRecord) -> Dict[str, object]:
    """Stat/list attributes of an unfinished upload: ``filelen`` stays below ``filesize``."""
    filesize = int(upload.extra["filesize"])
    received = sum(part.size for part in storage.parts(upload.upload_id))
    seconds = upload.initiated_ns // 1_000_000_000
    return {
        "biz_attr": upload.extra.get("biz_attr", ""), "filesize": filesize,
        "filelen": min(received, filesize - 1), "sha": upload.extra.get("sha", ""),
        "ctime": seconds, "mtime": seconds, "slicesize": int(upload.extra["slice_size"]),
    }


def _session(storage: Storage, bucket: str, key: str, fields: Fields) -> UploadRecord:
    session = fields.text("session")
    if not session:
        raise JsonError(-95, "the request carries no session")
    try:
        upload = storage.get_upload(bucket, session)
    except StorageError:
        raise JsonError(-290, f"session {session} does not exist (finished, discarded or never made)") from None
    if upload.key != key or upload.extra.get("api") != "json":
        raise JsonError(-5983, f"session {session} is not an upload of {key}")
    return upload


def _sha(fields: Fields) -> str:
    sha = (fields.text("sha") or "").strip().lower()
    if sha and not _SHA1_RE.match(sha):
        raise JsonError(-168, f"sha {sha!r} is not 40 hex digits")
    return sha


def _uploadparts(fields: Fields, filesize: int, slice_size: int) -> str:
    """The ``uploadparts`` list as stored JSON ('' when absent), checked against the sizes."""
    text = fields.text("uploadparts")
    if not text:
        return ""
    try:
        parts = json.loads(text)
        shape = [(int(p["offset"]), int(p["datalen"]), str(p["datasha"]).lower()) for p in parts]
    except (ValueError, TypeError, KeyError):
        raise JsonError(-5992, "uploadparts must be a JSON list of {offset, datalen, datasha}") from None
    expected = [(o, min(slice_size, filesize - o)) for o in range(0, filesize, slice_size)]
    if [(o, n) for o, n, _ in shape] != expected:
        raise JsonError(-5992, f"uploadparts does not cut {filesize} bytes into {slice_size}-byte slices")
    return json.dumps([sha for _, _, sha in shape])


# --- operations ----------------------------------------------------------------------------


def init(storage: Storage, bucket: str, key: str, fields: Fields) -> Union[Dict[str, object], ObjectRecord]:
    """``upload_slice_init``: a new session, or the existing file for an instant upload."""
    filesize = fields.integer("filesize")
    if filesize is None:
        raise JsonError(-5971, "upload_slice_init needs filesize")
    if filesize <= 0:
        raise JsonError(-5995, f"filesize must be positive, not {filesize}; upload an empty file with op=upload")
    slice_size = fields.integer("slice_size", DEFAULT_SLICE_SIZE)
    if slice_size not in SLICE_SIZES:
        raise JsonError(-4, f"slice_size {slice_size} is not one of {', '.join(map(str, SLICE_SIZES))}")
    if -(-filesize // slice_size) > MAX_PARTS:
        raise JsonError(-285, f"{filesize} bytes need more than {MAX_PARTS} slices of {slice_size} bytes")
    sha, insert_only = _sha(fields), fields.flag("insertOnly", True)
    uploadparts = _uploadparts(fields, filesize, slice_size)
    existing = storage.head(bucket, key)
    if existing is not None and sha and existing.size == filesize and storage.content_sha1(existing) == sha:
        return existing
    if existing is not None and insert_only:
        raise JsonError(-177, f"{key} exists and insertOnly is 1")
    with _INIT_LOCK:
        for stale in sessions(storage, bucket, key):
            extra = stale.extra
            if (int(extra["filesize"]), int(extra["slice_size"])) == (filesize, slice_size) \
                    and not (sha and extra.get("sha") and extra["sha"] != sha):
                raise JsonError(-4019, f"an unfinished upload of {key} exists; resume it (upload_slice_list)")
            storage.abort_upload(bucket, stale.upload_id)
        upload = storage.create_upload(bucket, key, extra={
            "api": "json", "filesize": str(filesize), "slice_size": str(slice_size), "sha": sha,
            "biz_attr": fields.text("biz_attr") or "", "insert_only": "1" if insert_only else "0",
            "uploadparts": uploadparts,
        })
    return {"session": upload.upload_id, "slice_size": slice_size, "serial_upload": 0, "offset": 0}


def data(storage: Storage, bucket: str, key: str, fields: Fields) -> Dict[str, object]:
    """``upload_slice_data``: store one slice of the session."""
    upload = _session(storage, bucket, key, fields)
    filesize, slice_size = int(upload.extra["filesize"]), int(upload.extra["slice_size"])
    offset = fields.integer("offset")
    if offset is None or offset < 0 or offset >= filesize or offset % slice_size:
        raise JsonError(-5992, f"offset {offset} is not a multiple of {slice_size} below {filesize}")
    content = fields.content()
    if content is None:
        raise JsonError(-5990, "upload_slice_data needs filecontent")
    expected = min(slice_size, filesize - offset)
    if len(content) != expected:
        raise JsonError(-284, f"the slice at {offset} must be {expected} bytes, not {len(content)}")
    sha = _sha(fields)
    if sha and upload.extra.get("sha") and sha != upload.extra["sha"]:
        raise JsonError(-4016, f"sha {sha} is not the session's {upload.extra['sha']}")
    storage.put_part(bucket, upload.upload_id, offset // slice_size + 1, storage.receive([content]))
    return {"session": upload.upload_id, "offset": offset, "datalen": len(content)}


def finish(storage: Storage, bucket: str, key: str, fields: Fields) -> ObjectRecord:
    """``upload_slice_finish``: check the slices and make them the file, atomically."""
    upload = _session(storage, bucket, key, fields)
    filesize, slice_size = int(upload.extra["filesize"]), int(upload.extra["slice_size"])
    claimed = fields.integer("filesize")
    if claimed is None:
        raise JsonError(-5971, "upload_slice_finish needs filesize")
    if claimed != filesize:
        raise JsonError(-175, f"filesize {claimed} is not the session's {filesize}")
    parts = storage.parts(upload.upload_id)
    stored = {part.number: part.size for part in parts}
    missing = [o for o in range(0, filesize, slice_size) if stored.get(o // slice_size + 1) is None]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise JsonError(-175, f"{len(missing)} slice(s) missing, at offset {shown}")
    _verify(storage, upload, parts, {_sha(fields), upload.extra.get("sha", "")} - {""})
    if upload.extra.get("insert_only") == "1" and storage.head(bucket, key) is not None:
        raise JsonError(-177, f"{key} was created meanwhile and the session has insertOnly 1")
    return storage.complete_upload(bucket, upload.upload_id, [(p.number, p.etag) for p in parts], min_part_size=0)


def listing(storage: Storage, bucket: str, key: str, fields: Fields) -> Union[Dict[str, object], ObjectRecord]:
    """``upload_slice_list``: the newest session's slices, else the finished file."""
    found = sessions(storage, bucket, key)
    if found:
        upload = found[-1]
        slice_size = int(upload.extra["slice_size"])
        answer: Dict[str, object] = {
            "session": upload.upload_id, "slice_size": slice_size, "filesize": int(upload.extra["filesize"]),
            "listparts": [{"offset": (p.number - 1) * slice_size, "datalen": p.size}
                          for p in storage.parts(upload.upload_id)],
        }
        if upload.extra.get("sha"):
            answer["sha"] = upload.extra["sha"]
        return answer
    record = storage.head(bucket, key)
    if record is None:
        raise JsonError(-197, f"{key} has neither an unfinished upload nor a file")
    return record


def _verify(storage: Storage, upload: UploadRecord, parts: List[PartRecord], shas: set) -> None:
    """Raise -4016 unless the slices hash to every claimed ``sha`` and ``uploadparts`` entry."""
    claimed_parts = json.loads(upload.extra.get("uploadparts") or "[]")
    if not shas and not claimed_parts:
        return
    filesize, slice_size = int(upload.extra["filesize"]), int(upload.extra["slice_size"])
    digest = hashlib.sha1()
    whole = bytearray() if claimed_parts and filesize <= VERIFY_PARTS_LIMIT else None
    for part in parts:
        # Storage keeps part data under its root (the layout its docstring documents).
        with open(storage.root / part.data, "rb") as body:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
                if whole is not None:
                    whole += chunk
    actual = digest.hexdigest()
    for sha in shas:
        if sha != actual:
            raise JsonError(-4016, f"the data's SHA-1 is {actual}, not {sha}")
    if claimed_parts and claimed_parts[-1] != actual:
        raise JsonError(-4016, f"the last uploadparts datasha is {claimed_parts[-1]}, the data's SHA-1 is {actual}")
    if whole is not None:
        for index, part in enumerate(intermediate_sha1(bytes(whole), slice_size)):
            if part["datasha"] != claimed_parts[index]:
                raise JsonError(-4016, f"uploadparts datasha at offset {part['offset']} does not match the data")
