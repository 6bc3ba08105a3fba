"""The XML API handler: dispatch a routed, authenticated request to the COS operation it names.

``handle(ctx, request)`` is the entry point; it answers an ``EmuResponse`` or raises
``EmulatorError``/``StorageError``, which the server turns into COS's ``<Error>`` document.
Object-level operations live here, bucket-level ones in ``xml_bucket``.

Metadata and boto3:

- User metadata is ``x-cos-meta-NAME``; ``x-amz-meta-NAME`` (boto3) is stored under the same
  NAME, lower-cased, without the prefix (``x-cos-`` wins if a request sends both). GET/HEAD
  answer ``x-cos-meta-NAME`` always and also ``x-amz-meta-NAME`` for SigV4-signed requests,
  so each SDK sees its own prefix. Names plus values over 2 KB (UTF-8) are ``MetadataTooLarge``.
- ``x-amz-copy-source``, ``x-amz-metadata-directive`` (``COPY``/``REPLACE``) and the
  ``x-amz-copy-source-*`` conditions are accepted wherever the ``x-cos-`` form is.
- Cache-Control, Content-Disposition, Content-Encoding, Content-Language and Expires are kept
  in the record's ``extra`` under their lower-case names and returned on GET/HEAD.

Deviations, all because COS does not document the behaviour: a ``versionId`` other than
``null`` is ``404 NoSuchVersion`` (no bucket here is versioned); a self-copy with the
``Copy`` directive is ``400 InvalidRequest``; sub-resources in ``UNSUPPORTED`` and a PUT
with ``x-cos-rename-source`` (RenameObject, which normal buckets lack) are
``501 NotImplemented`` rather than silently storing an empty object.
"""

from __future__ import annotations

import re
from email.utils import formatdate, parsedate_to_datetime
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote

from cosfs.emulator import xml_bucket
from cosfs.emulator.context import Context
from cosfs.emulator.protocol import EmulatorError, EmuRequest, EmuResponse, chunked, element, xml_response
from cosfs.emulator.storage import ObjectRecord, Received, StorageError, UploadRecord, check_key
from cosfs.emulator.xml_bucket import BodyDigests, child_text, int_param, iso_time, owner_xml, url_encoder
from cosfs.wire import facts
from cosfs.wire.signing import sigv4

MAX_OBJECT_SIZE = facts.MAX_PUT_SIZE
MAX_META_BYTES = facts.MAX_META_BYTES
MAX_PARTS = facts.MAX_PARTS
STANDARD_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type", "response-content-language": "Content-Language",
    "response-expires": "Expires", "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
}
UNSUPPORTED = frozenset({
    "acl", "cors", "lifecycle", "policy", "website", "versioning", "replication", "logging", "inventory",
    "referer", "domain", "encryption", "restore", "select", "torrent", "rename", "versions", "tagging",
    "notification", "accelerate", "intelligenttiering", "object-lock", "retention", "legal-hold",
    "attributes", "symlink", "origin", "analytics", "metrics", "publicAccessBlock", "ownershipControls",
    "requestPayment",
})
DEFAULT_TYPE = "application/octet-stream"


def handle(ctx: Context, request: EmuRequest) -> EmuResponse:
    """Answer one XML API request (bucket already checked, signature already verified)."""
    if not request.bucket:
        if request.method == "GET":
            return xml_bucket.list_buckets(ctx, request)
        raise EmulatorError(405, "MethodNotAllowed", f"{request.method} is not allowed on the service")
    names = {name for name, _ in request.params}
    unsupported = sorted(names & UNSUPPORTED)
    if unsupported:
        raise EmulatorError(501, "NotImplemented", f"cosfs-emulator does not implement ?{unsupported[0]}")
    if not request.key:
        return _bucket(ctx, request, names)
    check_key(request.key)
    method, copying = request.method, _header(request, "copy-source") is not None
    if method == "PUT" and ("partNumber" in names or "uploadId" in names):
        return upload_part_copy(ctx, request) if copying else upload_part(ctx, request)
    if method == "PUT" and "x-cos-rename-source" in request.headers:  # cosrapid/POSIX buckets only
        raise EmulatorError(501, "NotImplemented", "RenameObject needs a metadata-accelerated bucket")
    if method == "PUT":
        return copy_object(ctx, request) if copying else put_object(ctx, request)
    if method == "GET" and "uploadId" in names:
        return list_parts(ctx, request)
    if method in ("GET", "HEAD"):
        return get_object(ctx, request, head=method == "HEAD")
    if method == "DELETE":
        return abort_upload(ctx, request) if "uploadId" in names else delete_object(ctx, request)
    if method == "POST" and "uploads" in names:
        return initiate_upload(ctx, request)
    if method == "POST" and "uploadId" in names:
        return complete_upload(ctx, request)
    if method == "POST" and "append" in names:
        return append_object(ctx, request)
    raise EmulatorError(405, "MethodNotAllowed", f"{method} is not allowed on an object without a sub-resource")


def _bucket(ctx: Context, request: EmuRequest, names) -> EmuResponse:
    method = request.method
    if method == "GET" and "location" in names:
        request.operation = "GetBucketLocation"
        return xml_response(200, element("LocationConstraint", ctx.region))
    if method == "GET":
        return xml_bucket.list_uploads(ctx, request) if "uploads" in names else xml_bucket.list_objects(ctx, request)
    if method == "HEAD":
        return xml_bucket.head_bucket(ctx, request)
    if method == "POST" and "delete" in names:
        return xml_bucket.delete_objects(ctx, request)
    if method == "PUT":
        request.operation = "CreateBucket"
        raise EmulatorError(409, "BucketAlreadyOwnedByYou", "The bucket already exists and you own it.")
    if method == "DELETE" and ctx.storage.has_prefix(request.bucket, ""):
        request.operation = "DeleteBucket"
        raise EmulatorError(409, "BucketNotEmpty", "The bucket you tried to delete is not empty.")
    raise EmulatorError(405, "MethodNotAllowed", f"{method} is not allowed on this bucket in cosfs-emulator")


# --- request helpers ------------------------------------------------------------------------


def _header(request: EmuRequest, suffix: str) -> Optional[str]:
    """``x-cos-SUFFIX``, else the S3 spelling ``x-amz-SUFFIX``."""
    value = request.headers.get(f"x-cos-{suffix}")
    return value if value is not None else request.headers.get(f"x-amz-{suffix}")


def _user_meta(request: EmuRequest) -> Dict[str, str]:
    meta: Dict[str, str] = {}
    for prefix in ("x-amz-meta-", "x-cos-meta-"):
        for name, value in request.headers.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                meta[name[len(prefix):].lower()] = value
    size = sum(len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
               for k, v in meta.items())
    if size > MAX_META_BYTES:
        raise EmulatorError(400, "MetadataTooLarge", f"user metadata is {size} bytes; the limit is {MAX_META_BYTES}")
    return meta


def _standard_headers(request: EmuRequest) -> Dict[str, str]:
    kept = {}
    for name in STANDARD_HEADERS:
        value = request.headers.get(name, "")
        if name == "content-encoding":  # aws-chunked describes the transfer, not the object
            value = ",".join(t.strip() for t in value.split(",") if t.strip() and t.strip().lower() != "aws-chunked")
        if value:
            kept[name] = value
    return kept


def _content_type(request: EmuRequest) -> str:
    return request.headers.get("content-type") or DEFAULT_TYPE


def _receive(ctx: Context, request: EmuRequest, sha1: bool = True) -> Received:
    """Stream the body into the store's tmp/ and check every digest the headers promise
    (``sha1``: whether the store needs the body's SHA-1; a part's is never asked for)."""
    limit = MAX_OBJECT_SIZE
    digests = BodyDigests(request.headers)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise EmulatorError(400, "EntityTooLarge", f"the body is {declared} bytes; the limit is {limit}")
    received = ctx.storage.receive(_capped(digests.wrap(request.body), limit), sha1=sha1)
    try:
        digests.verify(received.md5)
    except EmulatorError:
        ctx.storage.discard(received)
        raise
    return received


def _capped(chunks, limit: int):
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise EmulatorError(400, "EntityTooLarge", f"the body is larger than {limit} bytes")
        yield chunk


def _check_version(request: EmuRequest) -> None:
    version = request.param("versionId")
    if version not in (None, "", "null"):
        raise EmulatorError(404, "NoSuchVersion", "The specified version does not exist.")


def _existing(ctx: Context, bucket: str, key: str) -> ObjectRecord:
    record = ctx.storage.head(bucket, key)
    if record is None:
        raise EmulatorError(404, "NoSuchKey", "The specified key does not exist.")
    return record


def _http_date(ns: int) -> str:
    return formatdate(ns // 10 ** 9, usegmt=True)


def _etag_in(value: str, etag: str) -> bool:
    tokens = [t.strip() for t in value.split(",")]
    return any(t == "*" or t.removeprefix("W/").strip('"') == etag for t in tokens)


def _seconds(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


def _not_modified(conditions: Mapping[str, str], record: ObjectRecord) -> bool:
    """RFC 7232 order: If-Match, else If-Unmodified-Since (412 when false); then
    If-None-Match, else If-Modified-Since (True: the caller answers 304 or 412)."""
    mtime = record.mtime_ns // 10 ** 9
    if conditions.get("if-match") is not None:
        if not _etag_in(conditions["if-match"], record.etag):
            raise EmulatorError(412, "PreconditionFailed", "At least one of the preconditions you specified did not hold.")
    else:
        since = _seconds(conditions.get("if-unmodified-since"))
        if since is not None and mtime > since:
            raise EmulatorError(412, "PreconditionFailed", "At least one of the preconditions you specified did not hold.")
    if conditions.get("if-none-match") is not None:
        return _etag_in(conditions["if-none-match"], record.etag)
    since = _seconds(conditions.get("if-modified-since"))
    return since is not None and mtime <= since


def _object_headers(request: EmuRequest, record: ObjectRecord) -> Dict[str, str]:
    headers = {
        "Content-Type": record.content_type, "ETag": f'"{record.etag}"',
        "Last-Modified": _http_date(record.mtime_ns), "Accept-Ranges": "bytes",
        "x-cos-object-type": record.object_type,
    }
    for name in STANDARD_HEADERS:
        if name in record.extra:
            headers["-".join(part.capitalize() for part in name.split("-"))] = record.extra[name]
    amz = sigv4.is_sigv4(request.headers, request.params)
    for name, value in record.meta.items():
        headers[f"x-cos-meta-{name}"] = value
        if amz:
            headers[f"x-amz-meta-{name}"] = value
    return headers


def _range(value: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """A single ``bytes=`` range as (first, last); None for no usable Range (whole object)."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value or "")
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        if int(last) == 0 or size == 0:
            raise EmulatorError(416, "InvalidRange", "The requested range is not satisfiable")
        return max(0, size - int(last)), size - 1
    if last and int(last) < int(first):
        return None
    if int(first) >= size:
        raise EmulatorError(416, "InvalidRange", "The requested range is not satisfiable")
    return int(first), min(int(last), size - 1) if last else size - 1


# --- objects --------------------------------------------------------------------------------


def get_object(ctx: Context, request: EmuRequest, head: bool = False) -> EmuResponse:
    request.operation = "HeadObject" if head else "GetObject"
    _check_version(request)
    record = _existing(ctx, request.bucket, request.key)
    headers = _object_headers(request, record)
    if _not_modified(request.headers, record):
        # RFC 7230: a 304's Content-Length, if any, is the length a 200 would have had
        return EmuResponse(304, {"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"],
                                 "Content-Length": str(record.size)})
    for param, name in RESPONSE_OVERRIDES.items():
        if request.param(param):
            headers[name] = request.param(param)
    span = _range(request.headers.get("range"), record.size)
    status, start, length = 200, 0, record.size
    if span is not None:
        status, start, length = 206, span[0], span[1] - span[0] + 1
        headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{record.size}"
    if head:
        headers["Content-Length"] = str(length)
        return EmuResponse(status, headers)
    return EmuResponse(status, headers, stream=(ctx.storage.open(record), start, length))


def put_object(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "PutObject"
    meta, extra = _user_meta(request), _standard_headers(request)
    forbid = (_header(request, "forbid-overwrite") or "").lower() == "true"
    if (forbid or request.headers.get("if-none-match", "").strip() == "*") and \
            ctx.storage.head(request.bucket, request.key) is not None:
        raise EmulatorError(412, "PreconditionFailed", "the object exists and overwriting it was forbidden")
    received = _receive(ctx, request)
    record = ctx.storage.put(request.bucket, request.key, received, _content_type(request), meta, extra)
    return EmuResponse(200, {"ETag": f'"{record.etag}"'})


def delete_object(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "DeleteObject"
    _check_version(request)
    ctx.storage.delete(request.bucket, request.key)
    return EmuResponse(204)


def _copy_source(ctx: Context, request: EmuRequest) -> ObjectRecord:
    """The object ``x-cos-copy-source`` names, in any of COS's or S3's spellings:
    ``<bucket>-<appid>.cos.<region>.myqcloud.com/<key>``, ``/<bucket>/<key>``, ``<bucket>/<key>``."""
    raw = (_header(request, "copy-source") or "").strip()
    path, _, query = raw.partition("?")
    version = parse_qs(query).get("versionId", [""])[0]
    if version not in ("", "null"):
        raise EmulatorError(404, "NoSuchVersion", "The specified version of the copy source does not exist.")
    host, slash, encoded_key = path.lstrip("/").partition("/")
    if not host or not slash or not encoded_key:
        raise EmulatorError(400, "InvalidArgument", f"x-cos-copy-source {raw!r} is not "
                                                    "<bucket>-<appid>.cos.<region>.myqcloud.com/<key>")
    bucket, key = host.split(".", 1)[0], unquote(encoded_key)
    if bucket not in ctx.buckets:
        raise EmulatorError(404, "NoSuchBucket", f"the copy source bucket {bucket} does not exist")
    check_key(key)
    source = _existing(ctx, bucket, key)
    conditions = {name: request.headers[f"{prefix}copy-source-{name}"]
                  for prefix in ("x-amz-", "x-cos-")
                  for name in ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
                  if f"{prefix}copy-source-{name}" in request.headers}
    if _not_modified(conditions, source):
        raise EmulatorError(412, "PreconditionFailed", "At least one of the preconditions you specified did not hold.")
    return source


def copy_object(ctx: Context, request: EmuRequest) -> EmuResponse:
    """PUT Object - Copy; ``Replaced`` takes the request's metadata, Content-Type and headers."""
    request.operation = "CopyObject"
    source = _copy_source(ctx, request)
    if source.size > MAX_OBJECT_SIZE:
        raise EmulatorError(400, "EntityTooLarge", "the copy source is larger than 5 GiB; use Upload Part - Copy")
    directive = (_header(request, "metadata-directive") or "Copy").strip().lower()
    if directive not in ("copy", "replaced", "replace"):
        raise EmulatorError(400, "InvalidArgument", f"x-cos-metadata-directive must be Copy or Replaced, not {directive!r}")
    replace = directive != "copy"
    same = source.bucket == request.bucket and source.key == request.key
    if same and not replace:
        raise EmulatorError(400, "InvalidRequest", "This copy request is illegal because it is trying to copy an "
                                                   "object to itself without changing its metadata (use Replaced).")
    meta = _user_meta(request) if replace else None
    content_type = _content_type(request) if replace else None
    extra = dict(source.extra)
    if replace:
        extra = {k: v for k, v in extra.items() if k not in STANDARD_HEADERS}
        extra.update(_standard_headers(request))
    if source.bucket == request.bucket and extra == source.extra:
        record = ctx.storage.copy(request.bucket, source.key, request.key, meta, content_type)
    else:  # another bucket, or headers kept in ``extra`` change: copy the bytes
        with ctx.storage.open(source) as body:
            received = ctx.storage.receive(chunked(body, 0, source.size))
        record = ctx.storage.put(request.bucket, request.key, received, content_type or source.content_type,
                                 source.meta if meta is None else meta, extra, etag=source.etag,
                                 object_type=source.object_type)
    body = f"<CopyObjectResult>{element('ETag', chr(34) + record.etag + chr(34))}" \
           f"{element('LastModified', iso_time(record.mtime_ns))}</CopyObjectResult>"
    return xml_response(200, body)


def append_object(ctx: Context, request: EmuRequest) -> EmuResponse:
    """POST ``?append&position=P``: P must be the current length (0 creates the object)."""
    request.operation = "AppendObject"
    declared = request.headers.get("content-length")
    if declared is None:
        raise EmulatorError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    raw = request.param("position")
    if raw is None or not raw.isdigit():
        raise EmulatorError(400, "InvalidArgument", f"position must be a non-negative integer, not {raw!r}")
    position = int(raw)
    if declared.isdigit() and position + int(declared) > MAX_OBJECT_SIZE:
        raise EmulatorError(400, "EntityTooLarge", "an appendable object may not exceed 5 GiB")
    meta, extra = _user_meta(request), _standard_headers(request)
    received = _receive(ctx, request)
    record = ctx.storage.append(request.bucket, request.key, position, received)
    if record.size == received.size and (meta or extra or "content-type" in request.headers):
        record = ctx.storage.update(request.bucket, request.key, meta, _content_type(request), extra)
    return EmuResponse(200, {"ETag": f'"{record.etag}"', "x-cos-next-append-position": str(record.size),
                             "x-cos-content-sha1": received.sha1})


# --- multipart ------------------------------------------------------------------------------


def _upload(ctx: Context, request: EmuRequest) -> UploadRecord:
    upload = ctx.storage.get_upload(request.bucket, request.param("uploadId", ""))
    if upload.key != request.key:
        raise StorageError(404, "NoSuchUpload", "The specified upload does not exist.")
    return upload


def _part_number(request: EmuRequest) -> int:
    raw = request.param("partNumber", "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PARTS:
        raise EmulatorError(400, "InvalidArgument", f"partNumber must be an integer in 1..{MAX_PARTS}, not {raw!r}")
    return int(raw)


def initiate_upload(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "CreateMultipartUpload"
    upload = ctx.storage.create_upload(request.bucket, request.key, _content_type(request),
                                       _user_meta(request), _standard_headers(request))
    return xml_response(200, f"<InitiateMultipartUploadResult>{element('Bucket', request.bucket)}"
                             f"{element('Key', upload.key)}{element('UploadId', upload.upload_id)}"
                             "</InitiateMultipartUploadResult>")


def upload_part(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "UploadPart"
    number, upload = _part_number(request), _upload(ctx, request)
    part = ctx.storage.put_part(request.bucket, upload.upload_id, number, _receive(ctx, request, sha1=False))
    return EmuResponse(200, {"ETag": f'"{part.etag}"'})


def upload_part_copy(ctx: Context, request: EmuRequest) -> EmuResponse:
    """Upload Part - Copy: ``x-cos-copy-source-range: bytes=first-last`` of the source, or all of it."""
    request.operation = "UploadPartCopy"
    number, upload = _part_number(request), _upload(ctx, request)
    source = _copy_source(ctx, request)
    first, last = 0, source.size - 1
    span = _header(request, "copy-source-range")
    if span:
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", span.strip())
        if match is None or int(match.group(1)) > int(match.group(2)):
            raise EmulatorError(400, "InvalidArgument", f"x-cos-copy-source-range must be bytes=first-last, not {span!r}")
        first, last = int(match.group(1)), int(match.group(2))
        if last >= source.size:
            raise EmulatorError(416, "InvalidRange", f"the range ends past the source's {source.size} bytes")
    if last - first + 1 > MAX_OBJECT_SIZE:
        raise EmulatorError(400, "EntityTooLarge", "a part may not exceed 5 GiB")
    part = ctx.storage.part_from_copy(request.bucket, upload.upload_id, number, source, first, last)
    return xml_response(200, f"<CopyPartResult>{element('ETag', chr(34) + part.etag + chr(34))}"
                             f"{element('LastModified', iso_time(part.mtime_ns))}</CopyPartResult>")


def complete_upload(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "CompleteMultipartUpload"
    upload = _upload(ctx, request)
    tree = xml_bucket.parse_xml(request, "CompleteMultipartUpload")
    chosen = []
    for part in tree.findall("Part"):
        number, etag = (child_text(part, "PartNumber") or "").strip(), child_text(part, "ETag")
        if not number.isdigit() or etag is None:
            raise EmulatorError(400, "MalformedXML", "every <Part> needs a numeric <PartNumber> and an <ETag>")
        chosen.append((int(number), etag.strip()))
    record = ctx.storage.complete_upload(request.bucket, upload.upload_id, chosen)
    headers = {k: v for k, v in upload.extra.items() if k in STANDARD_HEADERS}
    if headers:  # Storage.complete_upload keeps only the JSON API's extras
        record = ctx.storage.update(request.bucket, record.key, extra=headers)
    location = f"{request.bucket}.cos.{ctx.region}.myqcloud.com/{quote(record.key, safe='/')}"
    return xml_response(200, f"<CompleteMultipartUploadResult>{element('Location', location)}"
                             f"{element('Bucket', request.bucket)}{element('Key', record.key)}"
                             f"{element('ETag', chr(34) + record.etag + chr(34))}</CompleteMultipartUploadResult>")


def abort_upload(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "AbortMultipartUpload"
    ctx.storage.abort_upload(request.bucket, _upload(ctx, request).upload_id)
    return EmuResponse(204)


def list_parts(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "ListParts"
    upload, enc = _upload(ctx, request), url_encoder(request)
    marker = int_param(request, "part-number-marker", 0)
    limit = int_param(request, "max-parts", 1000, high=1000)
    remaining = [part for part in ctx.storage.parts(upload.upload_id) if part.number > marker]
    page, truncated = remaining[:limit], limit > 0 and len(remaining) > limit
    out = [element("Bucket", request.bucket)]
    if request.param("encoding-type"):
        out.append(element("Encoding-type", "url"))
    out += [element("Key", enc(upload.key)), element("UploadId", upload.upload_id),
            owner_xml(request.bucket, "Initiator"), owner_xml(request.bucket), element("StorageClass", "STANDARD"),
            element("PartNumberMarker", marker), element("NextPartNumberMarker", page[-1].number if page else marker),
            element("MaxParts", limit), element("IsTruncated", "true" if truncated else "false")]
    for part in page:
        out.append(f"<Part>{element('PartNumber', part.number)}{element('LastModified', iso_time(part.mtime_ns))}"
                   f"{element('ETag', chr(34) + part.etag + chr(34))}{element('Size', part.size)}</Part>")
    return xml_response(200, f"<ListPartsResult>{''.join(out)}</ListPartsResult>")
