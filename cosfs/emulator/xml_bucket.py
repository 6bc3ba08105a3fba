"""The XML API's bucket-level operations, and the XML/digest helpers both XML modules share.

Operations: GET Service (ListBuckets), GET Bucket (ListObjects, and ListObjectsV2 for
``list-type=2``), HEAD Bucket, POST ``?delete`` (DeleteObjects) and GET ``?uploads``
(ListMultipartUploads). ``xml_api`` dispatches to them.

Choices (COS documents them, or S3 does where COS is silent):

- ``encoding-type=url`` encodes with ``quote(x, safe='/')``: space is ``%20`` and ``+`` is
  ``%2B``, so both the COS SDK (``unquote``) and boto3 (``unquote_plus``) decode it.
- A truncated ListObjects page always carries ``NextMarker``, with or without a delimiter.
- ``max-keys``/``max-uploads`` above 1000 are capped at 1000; a negative or non-numeric
  value is ``400 InvalidArgument``; ``0`` gives an empty, untruncated page.
- DeleteObjects needs a body digest: ``Content-MD5`` (what the COS SDK sends) or an
  ``x-amz-checksum-*`` header (what boto3 >= 1.36 sends instead of Content-MD5).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from datetime import datetime, timezone
from typing import Dict, Iterable, Iterator, List, Optional
from urllib.parse import quote
from xml.etree import ElementTree

from cosfs.emulator.context import Context
from cosfs.emulator.protocol import EmulatorError, EmuRequest, EmuResponse, element, xml_response
from cosfs.emulator.storage import StorageError, UploadRecord, check_key
from cosfs.wire import facts

MAX_LIST = facts.MAX_LIST_KEYS
MAX_XML_BODY = 4 * 1024 * 1024

# --- shared helpers -----------------------------------------------------------------------


def iso_time(ns: int) -> str:
    """``2024-01-01T00:00:00.000Z``, the form COS uses inside XML."""
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def appid_of(bucket: str) -> str:
    return bucket.rsplit("-", 1)[-1]


def owner_xml(bucket: str, tag: str = "Owner") -> str:
    appid = appid_of(bucket)
    return f"<{tag}>{element('ID', appid)}{element('DisplayName', appid)}</{tag}>"


def url_encoder(request: EmuRequest):
    """The function that encodes names in the answer: ``quote`` for ``encoding-type=url``."""
    encoding = request.param("encoding-type")
    if encoding is None or encoding == "":
        return lambda text: text
    if encoding.lower() != "url":
        raise EmulatorError(400, "InvalidArgument", f"encoding-type must be url, not {encoding!r}")
    return lambda text: quote(text, safe="/")


def int_param(request: EmuRequest, name: str, default: int, low: int = 0, high: Optional[int] = None) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EmulatorError(400, "InvalidArgument", f"{name} must be an integer, not {raw!r}") from None
    if value < low:
        raise EmulatorError(400, "InvalidArgument", f"{name} must be >= {low}, not {value}")
    return min(value, high) if high is not None else value


def parse_xml(request: EmuRequest, root: str, limit: int = MAX_XML_BODY) -> ElementTree.Element:
    """The request body as XML whose root is ``root``, namespaces stripped; else MalformedXML."""
    data = request.read_body(limit)
    BodyDigests(request.headers).check_bytes(data)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise EmulatorError(400, "MalformedXML", "DTDs and entities are not accepted")
    try:
        tree = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise EmulatorError(400, "MalformedXML", f"the XML you provided is not well-formed: {exc}") from None
    for node in tree.iter():
        if isinstance(node.tag, str):
            node.tag = node.tag.rsplit("}", 1)[-1]
    if tree.tag != root:
        raise EmulatorError(400, "MalformedXML", f"expected a <{root}> document, got <{tree.tag}>")
    return tree


def child_text(node: ElementTree.Element, name: str) -> Optional[str]:
    found = node.find(name)
    return None if found is None else (found.text or "")


class BodyDigests:
    """Checks a body against what its headers promise.

    ``Content-MD5`` (base64 of 16 bytes, else ``InvalidDigest``), ``x-amz-checksum-crc32``,
    ``-sha1``, ``-sha256`` (mismatch: ``BadDigest``) and a hex ``x-amz-content-sha256``
    (mismatch: ``XAmzContentSHA256Mismatch``). Checksums this module cannot compute
    (``crc32c``, ``crc64nvme``) are not checked.
    """

    def __init__(self, headers: Dict[str, str]) -> None:
        self.md5: Optional[bytes] = None
        raw_md5 = headers.get("content-md5")
        if raw_md5 is not None:
            try:
                self.md5 = base64.b64decode(raw_md5.strip(), validate=True)
            except (binascii.Error, ValueError):
                self.md5 = b""
            if len(self.md5) != 16:
                raise EmulatorError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        self.checksums = {name[len("x-amz-checksum-"):]: value for name, value in headers.items()
                          if name.startswith("x-amz-checksum-") and name != "x-amz-checksum-mode"}
        declared = headers.get("x-amz-content-sha256", "")
        self.sha256_hex = declared.lower() if len(declared) == 64 else None
        self._crc32: Optional[int] = 0 if "crc32" in self.checksums else None
        self._sha256 = hashlib.sha256() if self.sha256_hex or "sha256" in self.checksums else None
        self._sha1 = hashlib.sha1() if "sha1" in self.checksums else None

    @property
    def present(self) -> bool:
        return self.md5 is not None or bool(self.checksums)

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self._crc32 is not None:
                self._crc32 = zlib.crc32(chunk, self._crc32)
            if self._sha256 is not None:
                self._sha256.update(chunk)
            if self._sha1 is not None:
                self._sha1.update(chunk)
            yield chunk

    def verify(self, md5_hex: str) -> None:
        """Raise the COS error if the body that went through ``wrap`` is not what was promised."""
        if self.md5 is not None and self.md5.hex() != md5_hex:
            raise EmulatorError(400, "BadDigest", "The Content-MD5 you specified did not match what was received.")
        computed = {}
        if self._crc32 is not None:
            computed["crc32"] = self._crc32.to_bytes(4, "big")
        if self._sha1 is not None:
            computed["sha1"] = self._sha1.digest()
        if self._sha256 is not None:
            computed["sha256"] = self._sha256.digest()
            if self.sha256_hex and self.sha256_hex != computed["sha256"].hex():
                raise EmulatorError(400, "XAmzContentSHA256Mismatch",
                                    "The provided 'x-amz-content-sha256' header does not match what was computed.")
        for name, digest in computed.items():
            if name in self.checksums and base64.b64encode(digest).decode() != self.checksums[name].strip():
                raise EmulatorError(400, "BadDigest", f"The {name.upper()} you specified did not match the "
                                                      "calculated checksum.")

    def check_bytes(self, data: bytes) -> None:
        for _ in self.wrap([data]):
            pass
        self.verify(hashlib.md5(data).hexdigest())


# --- operations -----------------------------------------------------------------------------


def list_buckets(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "ListBuckets"
    owner = owner_xml(ctx.buckets[0]) if ctx.buckets else ""
    items = "".join(f"<Bucket>{element('Name', b)}{element('Location', ctx.region)}"
                    f"{element('CreationDate', iso_time(0))}</Bucket>" for b in ctx.buckets)
    return xml_response(200, f"<ListAllMyBucketsResult>{owner}<Buckets>{items}</Buckets></ListAllMyBucketsResult>")


def head_bucket(ctx: Context, request: EmuRequest) -> EmuResponse:
    request.operation = "HeadBucket"
    return EmuResponse(200, {"x-cos-bucket-region": ctx.region})


def list_objects(ctx: Context, request: EmuRequest) -> EmuResponse:
    """GET Bucket; ``list-type=2`` answers ListObjectsV2 with an opaque continuation token."""
    v2 = request.param("list-type") == "2"
    request.operation = "ListObjectsV2" if v2 else "ListObjects"
    enc = url_encoder(request)
    prefix, delimiter = request.param("prefix", ""), request.param("delimiter", "")
    max_keys = int_param(request, "max-keys", MAX_LIST, high=MAX_LIST)
    token = request.param("continuation-token")
    if v2:
        marker = _decode_token(token) if token is not None else request.param("start-after", "")
    else:
        marker = request.param("marker", "")
    page = ctx.storage.list(request.bucket, prefix, delimiter, marker, max_keys) if max_keys else None
    out = [element("Name", request.bucket)]
    if request.param("encoding-type"):
        out.append(element("EncodingType", "url"))
    out.append(element("Prefix", enc(prefix)))
    if v2:
        if token is not None:
            out.append(element("ContinuationToken", token))
        if request.param("start-after"):
            out.append(element("StartAfter", enc(request.param("start-after"))))
        count = len(page.objects) + len(page.prefixes) if page else 0
        out.append(element("KeyCount", count))
    else:
        out.append(element("Marker", enc(marker)))
    out.append(element("MaxKeys", max_keys))
    if delimiter:
        out.append(element("Delimiter", enc(delimiter)))
    truncated = bool(page and page.truncated)
    out.append(element("IsTruncated", "true" if truncated else "false"))
    if truncated and v2:
        out.append(element("NextContinuationToken", _encode_token(page.next_marker)))
    elif truncated:
        out.append(element("NextMarker", enc(page.next_marker)))
    for record in page.objects if page else []:
        out.append(f"<Contents>{element('Key', enc(record.key))}"
                   f"{element('LastModified', iso_time(record.mtime_ns))}{element('ETag', chr(34) + record.etag + chr(34))}"
                   f"{element('Size', record.size)}{owner_xml(request.bucket)}"
                   f"{element('StorageClass', 'STANDARD')}</Contents>")
    for common in page.prefixes if page else []:
        out.append(f"<CommonPrefixes>{element('Prefix', enc(common))}</CommonPrefixes>")
    return xml_response(200, f"<ListBucketResult>{''.join(out)}</ListBucketResult>")


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode("utf-8", "surrogatepass")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        raise EmulatorError(400, "InvalidArgument", "The continuation token provided is incorrect") from None


def delete_objects(ctx: Context, request: EmuRequest) -> EmuResponse:
    """POST ``?delete``: up to 1000 keys; a missing key counts as deleted, as COS reports it."""
    request.operation = "DeleteObjects"
    if not BodyDigests(request.headers).present:
        raise EmulatorError(400, "InvalidRequest", "Missing required header for this request: Content-MD5")
    tree = parse_xml(request, "Delete")
    quiet = (child_text(tree, "Quiet") or "").strip().lower() == "true"
    keys = [child_text(node, "Key") for node in tree.findall("Object")]
    if not keys or len(keys) > MAX_LIST or any(key is None for key in keys):
        raise EmulatorError(400, "MalformedXML", f"<Delete> must list 1..{MAX_LIST} <Object><Key> entries")
    out = []
    for key in keys:
        try:
            check_key(key)
            ctx.storage.delete(request.bucket, key)
        except StorageError as exc:
            out.append(f"<Error>{element('Key', key)}{element('Code', exc.code)}"
                       f"{element('Message', exc.message)}</Error>")
            continue
        if not quiet:
            out.append(f"<Deleted>{element('Key', key)}</Deleted>")
    return xml_response(200, f"<DeleteResult>{''.join(out)}</DeleteResult>")


def list_uploads(ctx: Context, request: EmuRequest) -> EmuResponse:
    """GET ``?uploads``: unfinished uploads by key, then initiation time, paged by markers."""
    request.operation = "ListMultipartUploads"
    enc = url_encoder(request)
    prefix, delimiter = request.param("prefix", ""), request.param("delimiter", "")
    key_marker, id_marker = request.param("key-marker", ""), request.param("upload-id-marker", "")
    limit = int_param(request, "max-uploads", MAX_LIST, high=MAX_LIST)
    entries = _after_markers(ctx.storage.uploads(request.bucket, prefix), key_marker, id_marker)
    rest = key_marker[len(prefix):] if key_marker.startswith(prefix) else ""
    if delimiter and delimiter in rest:  # the marker is a common prefix: skip what it groups
        grouped = prefix + rest[: rest.index(delimiter) + len(delimiter)]
        entries = [u for u in entries if not u.key.startswith(grouped)]
    uploads: List[UploadRecord] = []
    prefixes: List[str] = []
    truncated, next_key, next_id = False, "", ""
    for upload in entries:
        rest = upload.key[len(prefix):]
        common = prefix + rest[: rest.index(delimiter) + len(delimiter)] if delimiter and delimiter in rest else None
        if common is not None and prefixes and prefixes[-1] == common:
            continue
        if len(uploads) + len(prefixes) >= limit:
            truncated = True
            break
        if common is not None:
            prefixes.append(common)
            next_key, next_id = common, ""
        else:
            uploads.append(upload)
            next_key, next_id = upload.key, upload.upload_id
    out = [element("Bucket", request.bucket)]
    if request.param("encoding-type"):
        out.append(element("Encoding-Type", "url"))
    out += [element("KeyMarker", enc(key_marker)), element("UploadIdMarker", id_marker),
            element("NextKeyMarker", enc(next_key) if truncated else ""),
            element("NextUploadIdMarker", next_id if truncated else ""),
            element("MaxUploads", limit), element("Prefix", enc(prefix))]
    if delimiter:
        out.append(element("Delimiter", enc(delimiter)))
    out.append(element("IsTruncated", "true" if truncated else "false"))
    for upload in uploads:
        out.append(f"<Upload>{element('Key', enc(upload.key))}{element('UploadId', upload.upload_id)}"
                   f"{element('StorageClass', 'STANDARD')}{owner_xml(request.bucket, 'Initiator')}"
                   f"{owner_xml(request.bucket)}{element('Initiated', iso_time(upload.initiated_ns))}</Upload>")
    for common in prefixes:
        out.append(f"<CommonPrefixes>{element('Prefix', enc(common))}</CommonPrefixes>")
    return xml_response(200, f"<ListMultipartUploadsResult>{''.join(out)}</ListMultipartUploadsResult>")


def _after_markers(uploads: List[UploadRecord], key_marker: str, id_marker: str) -> List[UploadRecord]:
    """S3 marker rules: keys after ``key_marker``, or, with an upload-id marker, also the
    uploads of ``key_marker`` that come after that upload."""
    if not key_marker:
        return uploads
    raw_marker = key_marker.encode("utf-8", "surrogatepass")
    after = [u for u in uploads if u.key.encode("utf-8", "surrogatepass") > raw_marker]
    if not id_marker:
        return after
    same = [u for u in uploads if u.key == key_marker]
    ids = [u.upload_id for u in same]
    return (same[ids.index(id_marker) + 1:] if id_marker in ids else []) + after
