"""The COS XML API (S3-compatible) implementation of the store protocol.

Requests are shaped as cos-python-sdk-v5 sends them (``cos-protocol.md`` section 2): keys
encoded with ``quote(key, safe='/-_.~')`` and ``./`` escaped, list requests with all five
parameters and ``encoding-type=url``, Content-MD5 on every body, ``x-cos-copy-source`` in
the SDK's form. Directories are ``dir/`` marker objects; a move is copy + delete, since a
normal bucket has no rename.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import time
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

from cosfs.store import xml_codec
from cosfs.store.endpoints import Bucket, Endpoint
from cosfs.store.interface import ListPage, Metadata, ObjectInfo, PartInfo, StoreLimits
from cosfs.wire import facts
from cosfs.wire.credentials import CredentialProvider
from cosfs.wire.errors import CosError
from cosfs.wire.http import HttpResponse
from cosfs.wire.signing import qsign, sigv4
from cosfs.wire.transport import HttpRequest, Transport

log = logging.getLogger(__name__)

GiB = 1024**3
MiB = 1024**2

XML_LIMITS = StoreLimits(
    max_put_size=facts.MAX_PUT_SIZE,
    max_parts=facts.MAX_PARTS,
    min_part_size=facts.MIN_PART_SIZE,
    max_part_size=facts.MAX_PART_SIZE,
    part_copy=True,
    max_copy_size=facts.MAX_PUT_SIZE,
    max_list_keys=facts.MAX_LIST_KEYS,
)

#: Operations whose 200 answer may still carry an ``<Error>`` body.
_RESULT_OPERATIONS = frozenset({"copy", "copy_part", "complete"})
_META_PREFIX = "x-cos-meta-"
_META_PREFIX_LENGTH = len(_META_PREFIX)
_STATUS_CODES = {403: "AccessDenied", 404: "NoSuchKey", 409: "Conflict", 412: "PreconditionFailed", 416: "InvalidRange"}


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def encode_key(key: str) -> str:
    """A key as the SDK puts it in a URL path; ``./`` escaped so no one resolves dot segments."""
    return quote(key, safe="/-_.~").replace("./", ".%2F")


def meta_headers(meta: Optional[Metadata]) -> dict:
    return {f"{_META_PREFIX}{name}": value for name, value in (meta or {}).items()}


def check_response(response: HttpResponse, request: HttpRequest) -> Optional[CosError]:
    """The ``CosError`` an XML API answer stands for, or ``None`` for success."""
    status = response.status
    body = response.content if request.method != "HEAD" else b""
    if 200 <= status < 300:
        if request.operation not in _RESULT_OPERATIONS:
            return None
        error = xml_codec.parse_error(body)
        if error is None:
            return None
        code, message, request_id = error.code, error.message, error.request_id
    else:
        error = xml_codec.parse_error(body)
        if error is not None:
            code, message, request_id = error.code, error.message, error.request_id
        else:
            code = response.headers.get("x-cos-error-code", "") or _STATUS_CODES.get(status, "")
            if request.method == "HEAD" and status == 404:
                code = "NoSuchResource"
            message = response.reason or f"HTTP {status}"
            request_id = ""
    return CosError(
        message or code,
        status=status,
        code=code,
        request_id=request_id or response.headers.get("x-cos-request-id", ""),
        operation=request.operation,
        key=request.key,
    )


def _lowered_items(headers: Mapping[str, str]) -> Iterable[Tuple[str, str]]:
    """``(lower-cased name, value)`` pairs; a header an answer repeats is one comma-joined
    value (urllib3's ``itermerged``), as ``get`` answers it."""
    merged = getattr(headers, "itermerged", None)
    return ((name.lower(), value) for name, value in (merged() if merged is not None else headers.items()))


def info_from_headers(key: str, headers: Mapping[str, str], clock: Callable[[], float]) -> ObjectInfo:
    """An ``ObjectInfo`` from HEAD (or PUT) answer headers, user metadata included.

    Called once per file of a cold ``ls -l``: it looks up the four headers it needs and
    lowers each name once to find the ``x-cos-meta-*`` ones.
    """
    modified = headers.get("Last-Modified") or headers.get("Date")
    mtime_ns = xml_codec.http_date_to_ns(modified) if modified else int(clock() * 1e9)
    meta = {name[_META_PREFIX_LENGTH:]: value for name, value in _lowered_items(headers)
            if name.startswith(_META_PREFIX)}
    return ObjectInfo(
        key=key,
        size=int(headers.get("Content-Length", "0") or 0),
        mtime_ns=mtime_ns,
        etag=xml_codec.strip_etag(headers.get("ETag", "")),
        is_dir=key.endswith("/") or key == "",
        meta=meta,
        content_type=headers.get("Content-Type"),
    )


class XmlStore:
    """A bucket over the XML API. Thread-safe: it holds no per-request state."""

    limits = XML_LIMITS

    def __init__(
        self,
        bucket: Bucket,
        endpoint: Endpoint,
        credentials: CredentialProvider,
        transport: Transport,
        *,
        region: str,
        signature: str = "cos",
        sign_validity: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signature not in ("cos", "v4"):
            raise ValueError(f"signature must be cos or v4, not {signature!r}")
        self.bucket = bucket
        self.endpoint = endpoint
        self.credentials = credentials
        self.transport = transport
        self.region = region
        self.signature = signature
        self.sign_validity = sign_validity
        self.clock = clock

    @property
    def location(self) -> str:
        """The URL requests go to, for messages."""
        return self.endpoint.base_url + self.endpoint.path_prefix

    # --- requests -----------------------------------------------------------------------

    def _request(self, method: str, key: str, operation: str, **fields) -> HttpRequest:
        path = f"{self.endpoint.path_prefix}/{encode_key(key)}"
        return HttpRequest(
            method=method,
            base_url=self.endpoint.base_url,
            path=path,
            sign_path=unquote(self.endpoint.path_prefix) + "/" + key,
            operation=operation,
            key=key,
            **fields,
        )

    def _sign(self, request: HttpRequest) -> Mapping[str, str]:
        credentials = self.credentials.get()
        if credentials is None:
            return {}
        headers = dict(request.headers)
        added = {}
        now = int(self.clock())
        if self.signature == "v4":
            headers["host"] = request.netloc
            amz_date = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            return sigv4.sign_headers(
                credentials.secret_id, credentials.secret_key, self.region, request.method,
                request.path, request.params, headers, sigv4.payload_sha256(request.body),
                amz_date, session_token=credentials.token,
            )
        if credentials.token:
            added["x-cos-security-token"] = credentials.token
            headers.update(added)
        if request.body or request.method in ("PUT", "POST"):
            headers.setdefault("Content-Length", str(len(request.body)))
        start, end = qsign.key_time(now, self.sign_validity)
        added["Authorization"] = qsign.authorization(
            credentials.secret_id, credentials.secret_key, request.method, request.sign_path,
            request.params, headers, start, end, host=self.endpoint.hostname,
        )
        return added

    def _send(self, request: HttpRequest) -> HttpResponse:
        if request.body or request.method in ("PUT", "POST"):
            request.headers.setdefault("Content-MD5", content_md5(request.body))
        return self.transport.send(request, self._sign, check_response)

    def _copy_source(self, key: str) -> str:
        if self.endpoint.path_prefix:
            return f"{self.endpoint.path_prefix}/{encode_key(key)}"
        return f"{self.bucket.full_name}.cos.{self.region}.myqcloud.com/{encode_key(key)}"

    # --- listing ------------------------------------------------------------------------

    def _list(self, prefix: str, marker: str, max_keys: int, delimiter: str) -> xml_codec.ListResult:
        request = self._request("GET", "", "list", params=[
            ("prefix", prefix), ("delimiter", delimiter), ("marker", marker),
            ("max-keys", str(max_keys)), ("encoding-type", "url"),
        ])
        request.key = prefix
        return xml_codec.parse_list(self._send(request).content)

    def list_page(self, prefix: str, marker: str = "", max_keys: int = 1000) -> ListPage:
        result = self._list(prefix, marker, min(max_keys, self.limits.max_list_keys), "/")
        files = tuple(f for f in result.files if f.key != prefix)
        return ListPage(files, result.prefixes, result.next_marker if result.truncated else None)

    def walk(self, prefix: str) -> Iterator[ObjectInfo]:
        marker = ""
        while True:
            result = self._list(prefix, marker, self.limits.max_list_keys, "")
            yield from result.files
            if not result.truncated:
                return
            marker = result.next_marker

    # --- objects ------------------------------------------------------------------------

    def stat(self, key: str) -> Optional[ObjectInfo]:
        try:
            response = self._send(self._request("HEAD", key, "stat"))
        except CosError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
        return info_from_headers(key, response.headers, self.clock)

    def create_dir(self, key: str, meta: Optional[Metadata] = None) -> None:
        headers = {"Content-Type": "application/x-directory", **meta_headers(meta)}
        self._send(self._request("PUT", key, "mkdir", headers=headers))

    def delete_file(self, key: str) -> None:
        try:
            self._send(self._request("DELETE", key, "delete"))
        except CosError as error:
            if error.errno != errno.ENOENT:
                raise

    def delete_dir(self, key: str) -> None:
        below = self._list(key, "", 2, "")
        if any(item.key != key for item in below.files):
            raise CosError("directory is not empty", code="DirectoryNotEmpty", operation="rmdir",
                           key=key, errno_value=errno.ENOTEMPTY, transient=False)
        self.delete_file(key)

    def delete_many(self, keys: Sequence[str]) -> Sequence[Tuple[str, Exception]]:
        failures: List[Tuple[str, Exception]] = []
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            request = self._request("POST", "", "delete_many", params=[("delete", "")],
                                    headers={"Content-Type": "application/xml"},
                                    body=xml_codec.build_delete(batch))
            for key, code, message in xml_codec.parse_delete_result(self._send(request).content):
                failures.append((key, CosError(message, code=code, operation="delete", key=key)))
        return failures

    def copy(self, src: str, dst: str, meta: Optional[Metadata] = None,
             content_type: Optional[str] = None) -> None:
        headers = {
            "x-cos-copy-source": self._copy_source(src),
            "x-cos-metadata-directive": "Copy" if meta is None else "Replaced",
        }
        if meta is not None:
            headers.update(meta_headers(meta))
            headers["Content-Type"] = content_type or "application/octet-stream"
        try:
            self._send(self._request("PUT", dst, "copy", headers=headers))
        except CosError as error:
            if error.code != "EntityTooLarge":
                raise
            self._copy_large(src, dst, meta, content_type)

    def _copy_large(self, src: str, dst: str, meta: Optional[Metadata], content_type: Optional[str]) -> None:
        """Copy an object over the single-copy limit with Upload Part Copy."""
        source = self.stat(src)
        if source is None:
            raise CosError("copy source vanished", code="NoSuchKey", operation="copy", key=src)
        if meta is None:
            meta, content_type = source.meta, source.content_type
        session = self.begin_upload(dst, source.size, meta, content_type)
        part_size = max(self.limits.min_part_size, -(-source.size // self.limits.max_parts), 1 * GiB)
        try:
            parts = [
                session.copy_part(n + 1, src, start, min(start + part_size, source.size) - 1)
                for n, start in enumerate(range(0, source.size, part_size))
            ]
            session.complete(parts)
        except BaseException:
            session.abort()
            raise

    def move(self, src: str, dst: str, overwrite: bool = True, meta: Optional[Metadata] = None,
             content_type: Optional[str] = None) -> None:
        if not overwrite and self.stat(dst) is not None:
            raise CosError("destination exists", code="FileAlreadyExists", operation="move", key=dst)
        self.copy(src, dst, meta, content_type)
        self.delete_file(src)

    def put_object(self, key: str, data: bytes, meta: Optional[Metadata] = None,
                   content_type: Optional[str] = None) -> ObjectInfo:
        if len(data) > self.limits.max_put_size:
            raise CosError("object too large for one PUT", code="EntityTooLarge", operation="put", key=key)
        headers = {"Content-Type": content_type or "application/octet-stream", **meta_headers(meta)}
        response = self._send(self._request("PUT", key, "put", headers=headers, body=bytes(data)))
        info = info_from_headers(key, response.headers, self.clock)
        return ObjectInfo(key, len(data), info.mtime_ns, info.etag or hashlib.md5(data).hexdigest(),
                          key.endswith("/"), dict(meta or {}), headers["Content-Type"])

    def read_range(self, key: str, start: int, length: int, etag: Optional[str] = None) -> bytes:
        """A ranged GET (with ``If-Match`` when ``etag`` is given); the transport resumes a
        body cut short, so the answer is whole."""
        if length <= 0:
            return b""
        headers = {"If-Match": etag if etag.startswith('"') else f'"{etag}"'} if etag else {}
        request = self._request("GET", key, "read", byte_range=(start, start + length - 1), headers=headers)
        try:
            response = self._send(request)
        except CosError as error:
            if error.status == 416:
                return b""
            raise
        if response.status == 200:
            return response.content[start:start + length]
        return response.content

    def set_meta(self, key: str, meta: Metadata, content_type: Optional[str] = None) -> None:
        if content_type is None:
            current = self.stat(key)
            if current is None:
                raise CosError("no such object", code="NoSuchKey", operation="set_meta", key=key)
            content_type = current.content_type
        self.copy(key, key, meta, content_type)

    def probe(self) -> None:
        self._list("", "", 1, "/")

    # --- multipart ----------------------------------------------------------------------

    def begin_upload(self, key: str, size: Optional[int] = None, meta: Optional[Metadata] = None,
                     content_type: Optional[str] = None, part_size: Optional[int] = None) -> "XmlUploadSession":
        headers = {"Content-Type": content_type or "application/octet-stream", **meta_headers(meta)}
        request = self._request("POST", key, "initiate", params=[("uploads", "")], headers=headers)
        return XmlUploadSession(self, key, xml_codec.parse_upload_id(self._send(request).content))

    def find_upload(self, key: str, size: Optional[int] = None) -> Optional["XmlUploadSession"]:
        uploads = self.unfinished_uploads(key)
        if not uploads:
            return None
        newest = max(uploads, key=lambda upload: upload[1])
        return XmlUploadSession(self, key, newest[0])

    def unfinished_uploads(self, key: str) -> Sequence[Tuple[str, int]]:
        request = self._request("GET", "", "list_uploads", params=[
            ("uploads", ""), ("prefix", key), ("delimiter", ""), ("key-marker", ""),
            ("upload-id-marker", ""), ("max-uploads", "1000"), ("encoding-type", "url"),
        ])
        return [(upload_id, xml_codec.iso_to_ns(initiated) if initiated else 0)
                for found, upload_id, initiated in xml_codec.parse_list_uploads(self._send(request).content)
                if found == key]

    def abort_upload(self, key: str, upload_id: str) -> None:
        XmlUploadSession(self, key, upload_id).abort()


class XmlUploadSession:
    """One multipart upload. Parts may be sent from several threads at once."""

    part_size = None

    def __init__(self, store: XmlStore, key: str, upload_id: str) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id

    def _part_request(self, number: int, operation: str, **fields) -> HttpRequest:
        return self.store._request("PUT", self.key, operation,
                                   params=[("partNumber", str(number)), ("uploadId", self.upload_id)], **fields)

    def put_part(self, number: int, data: bytes) -> PartInfo:
        response = self.store._send(self._part_request(number, "put_part", body=bytes(data)))
        etag = xml_codec.strip_etag(response.headers.get("ETag", "")) or hashlib.md5(data).hexdigest()
        return PartInfo(number, len(data), etag)

    def copy_part(self, number: int, source_key: str, start: int, end: int,
                  if_match: Optional[str] = None) -> PartInfo:
        headers = {
            "x-cos-copy-source": self.store._copy_source(source_key),
            "x-cos-copy-source-range": f"bytes={start}-{end}",
        }
        if if_match:
            headers["x-cos-copy-source-If-Match"] = if_match if if_match.startswith('"') else f'"{if_match}"'
        response = self.store._send(self._part_request(number, "copy_part", headers=headers))
        return PartInfo(number, end - start + 1, xml_codec.parse_etag_result(response.content))

    def list_parts(self) -> Sequence[PartInfo]:
        parts: List[PartInfo] = []
        marker = "0"
        while True:
            request = self.store._request("GET", self.key, "list_parts", params=[
                ("uploadId", self.upload_id), ("part-number-marker", marker),
                ("max-parts", "1000"), ("encoding-type", "url"),
            ])
            page = xml_codec.parse_list_parts(self.store._send(request).content)
            parts.extend(page.parts)
            if not page.truncated:
                return parts
            marker = page.next_marker

    def complete(self, parts: Sequence[PartInfo]) -> ObjectInfo:
        request = self.store._request("POST", self.key, "complete", params=[("uploadId", self.upload_id)],
                                      headers={"Content-Type": "application/xml"},
                                      body=xml_codec.build_complete(parts))
        total = sum(part.size for part in parts)
        try:
            response = self.store._send(request)
        except CosError as error:
            if not (error.repeated and error.code == "NoSuchUpload"):
                raise
            return self._completed_before(total, error)
        etag = xml_codec.parse_etag_result(response.content)
        return ObjectInfo(self.key, total, int(self.store.clock() * 1e9), etag)

    def _completed_before(self, total: int, error: CosError) -> ObjectInfo:
        """A repeated complete answers NoSuchUpload when an earlier attempt succeeded but its
        answer was lost; the object then exists with the expected size. (A first attempt
        answering NoSuchUpload is a failure: the upload was aborted or expired.)"""
        info = self.store.stat(self.key)
        if info is None or info.size != total:
            raise error
        log.info("upload of %r was completed by an earlier attempt", self.key)
        return info

    def abort(self) -> None:
        request = self.store._request("DELETE", self.key, "abort", params=[("uploadId", self.upload_id)])
        try:
            self.store._send(request)
        except CosError as error:
            if error.errno != errno.ENOENT:
                raise
