"""The store protocol over the legacy COS JSON API (``/files/v2``), as qcloud-cos-v4 speaks it.

Directories are real entries of this API, so listing, mkdir and rmdir map one to one. What
the API lacks is said in ``limits``: slices of four fixed sizes, an upload that must know
its size up front, and no server-side part copy. Request shapes and signatures follow
``cos-protocol.md`` section 4 and the ``json_wire`` vectors: multi-use signatures bound to
the target for reads and uploads, once signatures for delete, update, move and copy.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import unquote

from cosfs.store import json_codec
from cosfs.store.endpoints import Bucket, Endpoint
from cosfs.store.interface import ListPage, Metadata, ObjectInfo, PartInfo, StoreLimits
from cosfs.wire.credentials import CredentialProvider
from cosfs.wire.errors import CosError
from cosfs.wire.retry import RetryRun
from cosfs.wire.signing import jsonsign
from cosfs.wire.transport import HttpRequest, Signer, Transport

log = logging.getLogger(__name__)

JSON_LIMITS = StoreLimits(
    max_put_size=json_codec.MAX_UPLOAD_SIZE,
    max_parts=10000,
    min_part_size=json_codec.SLICE_SIZES[0],
    max_part_size=json_codec.SLICE_SIZES[-1],
    allowed_part_sizes=json_codec.SLICE_SIZES,
    upload_needs_size=True,
    part_copy=False,
    native_dirs=True,
    max_list_keys=json_codec.MAX_LIST_KEYS,
    abortable_uploads=False,
)

Form = Sequence[Tuple[str, json_codec.FormValue]]
Answer = Dict[str, Any]


class JsonStore:
    """A bucket through the JSON API; thread-safe as far as ``transport`` is."""

    limits = JSON_LIMITS

    def __init__(
        self,
        bucket: Bucket,
        api: Endpoint,
        download: Endpoint,
        credentials: CredentialProvider,
        transport: Transport,
        *,
        sign_validity: int = 600,
        clock: Callable[[], float] = time.time,
        rng: Optional[random.Random] = None,
    ) -> None:
        self._bucket = bucket
        self.api = api
        self._download = download
        self.credentials = credentials
        self._transport = transport
        self._validity = max(1, min(sign_validity, jsonsign.MAX_MULTI_VALIDITY))
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._pins = _DownloadPins()

    # --- reading ---------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The URL requests go to, for messages."""
        return self.api.base_url + self.api.path_prefix

    def list_page(self, prefix: str, marker: str = "", max_keys: int = 1000) -> ListPage:
        """A missing directory lists as empty, as a prefix nothing starts with does on the XML API."""
        try:
            files, dirs, next_marker = self._list(prefix, marker, max_keys)
        except CosError as error:
            if error.errno != errno.ENOENT:
                raise
            return ListPage()
        return ListPage(tuple(files), tuple(d.key for d in dirs), next_marker)

    def walk(self, prefix: str) -> Iterator[ObjectInfo]:
        """Depth first: each page's files, then each of its directories and what is below it."""
        marker: Optional[str] = ""
        while marker is not None:
            files, dirs, marker = self._list(prefix, marker, json_codec.MAX_LIST_KEYS)
            yield from files
            for entry in dirs:
                yield entry
                yield from self.walk(entry.key)

    def _list(
        self, prefix: str, marker: str, max_keys: int
    ) -> Tuple[List[ObjectInfo], List[ObjectInfo], Optional[str]]:
        """Files, directories and the next context of one list page. A ``prefix`` not ending
        in ``/`` lists the entries of its directory whose names start with its last part.
        Files still being uploaded are left out, as ``stat`` does not see them either."""
        params = json_codec.list_params(max_keys, marker or "")
        data = self._send(self._request("GET", "/" + prefix, "list", prefix, params=params))
        parent = prefix[: prefix.rfind("/") + 1]
        files: List[ObjectInfo] = []
        dirs: List[ObjectInfo] = []
        for entry in data.get("infos") or ():
            name = str(entry.get("name", ""))
            if json_codec.is_dir_entry(entry):
                dirs.append(json_codec.dir_info(parent + name.rstrip("/") + "/", entry, False))
            elif not json_codec.is_unfinished(entry):
                files.append(json_codec.file_info(parent + name, entry, False))
        context = str(data.get("context") or "")
        return files, dirs, (context if context and not data.get("listover") else None)

    def stat(self, key: str) -> Optional[ObjectInfo]:
        """``None`` also for a file whose upload has not finished (no content to read yet) and
        for a file key that names a directory (the directory is ``key/``)."""
        request = self._request("GET", "/" + key, "stat", key, params=[("op", "stat")])
        try:
            data = self._send(request)
        except CosError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
        if key == "" or key.endswith("/"):
            return json_codec.dir_info(key, data, True)
        if "filesize" not in data or json_codec.is_unfinished(data):
            return None
        return json_codec.file_info(key, data, True)

    def read_range(self, key: str, start: int, length: int, etag: Optional[str] = None) -> bytes:
        """A ranged GET on the download host; the transport resumes a body cut short, so the
        answer is whole. The ``?sign=`` is made once per call: it stays valid for
        ``sign_validity``, longer than the transport retries.

        ``etag`` is the SHA-1 the JSON API reports, which the download host does not know:
        the version is pinned by the download's own ETag, learnt from the first answer for
        that SHA-1 and sent as ``If-Match`` from then on (an answer of another ETag is a 412)."""
        if length <= 0:
            return b""
        pinned = self._pins.get(key, etag) if etag else None
        headers = {"If-Match": pinned} if pinned else {}
        request = self._request("GET", "/" + key, "read", key, self._download, byte_range=(start, start + length - 1),
                                headers=headers)
        credentials = self.credentials.get()
        if credentials is not None:
            now, rand = self._now_rand()
            request.params.append(("sign", jsonsign.sign_download(
                self._bucket.appid, self._bucket.name, credentials.secret_id,
                credentials.secret_key, now + self._validity, now, rand, "/" + key,
            )))
        try:
            response = self._transport.send(request, lambda _: {}, json_codec.check_download)
        except CosError as error:
            if pinned and error.status == 412:
                self._pins.forget(key, etag)  # the next open learns the new version's ETag (the
                # reader that saw the 412 never fetches again, so it cannot learn it instead)
            raise
        if response.status == 416:
            return b""
        if etag and not self._pins.same(key, etag, response.headers.get("ETag", "")):
            self._pins.forget(key, etag)  # the next open learns the new version's ETag
            raise CosError("the object changed since it was opened", status=412, code="PreconditionFailed",
                           operation="read", key=key)
        if response.status == 200:
            return response.content[start:start + length]
        return response.content[:length]

    def probe(self) -> None:
        """List one entry of the root; unlike ``list_page``, "not found" (no such bucket) raises."""
        self._list("", "", 1)

    # --- writing ---------------------------------------------------------------------------

    def create_dir(self, key: str, meta: Optional[Metadata] = None) -> None:
        """``create``; a repeat answering "exists" (-178) after an attempt whose answer was
        lost is success when the directory is there: that attempt made it."""
        try:
            self._post_json("/" + key, {"op": "create", "biz_attr": ""}, "create_dir", key, once=False)
        except CosError as error:
            if not (error.repeated and error.errno == errno.EEXIST and self.stat(key) is not None):
                raise
            log.info("directory %r was created by an earlier attempt", key)
        if meta:
            # An extension beyond the manual, which documents update for files only: a
            # directory's mode and owner live in its metadata too.
            self.set_meta(key, meta)

    def delete_file(self, key: str) -> None:
        self._delete(key, "delete_file")

    def delete_dir(self, key: str) -> None:
        self._delete(key, "delete_dir")

    def _delete(self, key: str, operation: str) -> None:
        try:
            self._post_json("/" + key, {"op": "delete"}, operation, key, once=True)
        except CosError as error:
            if error.errno != errno.ENOENT:
                raise

    def delete_many(self, keys: Sequence[str]) -> Sequence[Tuple[str, Exception]]:
        """One request per key (the JSON API has no batch delete); directories by their ``/``."""
        failures: List[Tuple[str, Exception]] = []
        for key in keys:
            try:
                self._delete(key, "delete_dir" if key.endswith("/") else "delete_file")
            except CosError as error:
                failures.append((key, error))
        return failures

    def move(self, src: str, dst: str, overwrite: bool = True, meta: Optional[Metadata] = None,
             content_type: Optional[str] = None) -> None:
        """The JSON API's own move, never repeated blindly: after a transient failure the
        move may have happened, so the keys are looked at before trying again. Its move
        cannot change metadata: ``meta`` costs one update of ``dst`` after it."""
        self._move(src, dst, overwrite)
        if meta is not None:
            self.set_meta(dst, meta, content_type)

    def _move(self, src: str, dst: str, overwrite: bool) -> None:
        run = self._transport.retry.start()
        while True:
            try:
                self._move_once(src, dst, overwrite, run)
                return
            except CosError as failure:
                if not failure.transient:
                    raise
                error = failure
            if not run.another():
                break
            if self._move_landed(src, dst, error):
                return
        if self._move_landed(src, dst, error):
            return
        raise error

    def _move_once(self, src: str, dst: str, overwrite: bool, run: RetryRun) -> None:
        params = json_codec.move_params("/" + dst, overwrite)
        request = self._request("POST", "/" + src, "move", src, params=params, idempotent=False)
        self._send(request, once=True, run=run)

    def _move_landed(self, src: str, dst: str, error: CosError) -> bool:
        """Whether a move that failed with ``error`` did happen after all; raises ``error``
        when neither key exists any more, as then nothing can be tried again."""
        if self.stat(src) is not None:
            return False
        if self.stat(dst) is not None:
            return True
        raise error

    def copy(self, src: str, dst: str, meta: Optional[Metadata] = None) -> None:
        self._post_form("/" + src, json_codec.copy_form("/" + dst), "copy", src, once=True)
        if meta:
            self.set_meta(dst, meta)

    def put_object(
        self, key: str, data: bytes, meta: Optional[Metadata] = None, content_type: Optional[str] = None
    ) -> ObjectInfo:
        if len(data) > self.limits.max_put_size:
            raise CosError(
                f"{len(data)} bytes is more than the {self.limits.max_put_size} bytes one "
                "JSON API upload takes; use a slice upload",
                code="-285", operation="put_object", key=key,
            )
        sha = hashlib.sha1(data).hexdigest()
        self._post_form("/" + key, json_codec.upload_form(data, sha), "put_object", key)
        if meta or content_type:
            self.set_meta(key, meta or {}, content_type)
        return ObjectInfo(
            key=key, size=len(data), mtime_ns=self._now_ns(), etag=sha,
            meta=dict(meta or {}), content_type=content_type,
        )

    def set_meta(self, key: str, meta: Metadata, content_type: Optional[str] = None) -> None:
        """The JSON API's update. COS documents it as changing only the headers it is sent,
        so a metadata name left out keeps its old value rather than being removed."""
        body = {"op": "update", "custom_headers": json_codec.custom_headers(meta, content_type)}
        self._post_json("/" + key, body, "set_meta", key, once=True)

    # --- slice uploads ---------------------------------------------------------------------

    def begin_upload(
        self, key: str, size: Optional[int] = None, meta: Optional[Metadata] = None,
        content_type: Optional[str] = None, part_size: Optional[int] = None,
    ) -> JsonUploadSession:
        """``upload_slice_init``; on -4019 (an unfinished upload of ``key`` exists) that
        upload's session is taken over when its size matches. Its stored slices hold unknown
        bytes: a caller with new content sends every part, which replaces them."""
        if size is None:
            raise CosError(
                "a JSON API slice upload must be told the file size when it begins",
                operation="begin_upload", key=key, errno_value=errno.EINVAL,
            )
        slice_size = json_codec.slice_size_for(part_size)
        form = json_codec.slice_init_form(size, slice_size)
        try:
            data = self._post_form("/" + key, form, "begin_upload", key)
        except CosError as error:
            if error.code != "-4019":
                raise
            session = self._resumable(key, size, meta, content_type)
            if session is None:
                raise CosError(
                    f"COS holds an unfinished upload of {key!r} of another size; it must expire "
                    "before a new upload of this key can begin",
                    status=error.status, code=error.code, request_id=error.request_id,
                    operation="begin_upload", key=key,
                ) from error
            return session
        if data.get("access_url") and not data.get("session"):
            return JsonUploadSession(self, key, size, "", slice_size, meta, content_type, instant=True)
        return self._session(key, size, data, meta, content_type)

    def find_upload(self, key: str, size: Optional[int] = None) -> Optional[JsonUploadSession]:
        return self._resumable(key, size, None, None)

    def unfinished_uploads(self, key: str) -> Sequence[Tuple[str, int]]:
        """Nothing: the JSON API cannot list or abort slice sessions. COS expires them, and
        until then the next upload of the same key takes the session over (-4019)."""
        return ()

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Nothing to send: the JSON API has no abort (see ``unfinished_uploads``)."""

    def _resumable(
        self, key: str, size: Optional[int], meta: Optional[Metadata], content_type: Optional[str]
    ) -> Optional[JsonUploadSession]:
        """The unfinished upload of ``key`` from ``upload_slice_list``, if there is one of
        ``size`` bytes (any size when ``None``; a listing without ``filesize`` is trusted,
        as finish checks the size again)."""
        try:
            data = self._slice_list(key)
        except CosError as error:
            if error.errno == errno.ENOENT:
                return None
            raise
        listed = None if data.get("filesize") is None else int(data["filesize"])
        total = listed if listed is not None else size
        if not data.get("session") or total is None or (size is not None and total != size):
            return None
        return self._session(key, total, data, meta, content_type)

    def _session(
        self, key: str, size: int, data: Answer, meta: Optional[Metadata], content_type: Optional[str]
    ) -> JsonUploadSession:
        slice_size = int(data.get("slice_size") or json_codec.DEFAULT_SLICE_SIZE)
        return JsonUploadSession(self, key, size, str(data["session"]), slice_size, meta, content_type)

    def _slice_list(self, key: str) -> Answer:
        return self._post_form("/" + key, [("op", "upload_slice_list")], "list_parts", key)

    def _slice_data(self, key: str, session: str, offset: int, data: bytes) -> None:
        self._post_form("/" + key, json_codec.slice_data_form(session, offset, data), "put_part", key)

    def _slice_finish(self, key: str, session: str, size: int) -> None:
        self._post_form("/" + key, json_codec.slice_finish_form(session, size), "complete_upload", key)

    # --- requests --------------------------------------------------------------------------

    def _request(
        self, method: str, cos_path: str, operation: str, key: str,
        endpoint: Optional[Endpoint] = None, **fields: Any,
    ) -> HttpRequest:
        """A request on ``cos_path`` (``/`` + key) at the API endpoint, or at ``endpoint``."""
        endpoint = endpoint or self.api
        return HttpRequest(
            method=method,
            base_url=endpoint.base_url,
            path=endpoint.path_prefix + jsonsign.encode_path(cos_path),
            sign_path=unquote(endpoint.path_prefix) + cos_path,
            operation=operation,
            key=key,
            **fields,
        )

    def _post_json(self, cos_path: str, body: Answer, operation: str, key: str, once: bool) -> Answer:
        headers = {"Content-Type": "application/json"}
        payload = json.dumps(body).encode("utf-8")
        request = self._request("POST", cos_path, operation, key, headers=headers, body=payload)
        return self._send(request, once)

    def _post_form(self, cos_path: str, form: Form, operation: str, key: str, once: bool = False) -> Answer:
        content_type, payload = json_codec.encode_form(form)
        headers = {"Content-Type": content_type}
        request = self._request("POST", cos_path, operation, key, headers=headers, body=payload)
        return self._send(request, once)

    def _send(self, request: HttpRequest, once: bool = False, run: Optional[RetryRun] = None) -> Answer:
        """Send a JSON API request signed for its own cos path (its ``sign_path`` without the
        API prefix); the answer's ``data``."""
        bound = request.sign_path[len(unquote(self.api.path_prefix)):]
        response = self._transport.send(request, self._signer(bound, once), json_codec.check_json, run)
        return json_codec.answer_data(response)

    def _signer(self, cos_path: str, once: bool) -> Signer:
        """A signer making a fresh signature per attempt (a once signature is good for one
        request only), or none for anonymous access."""

        def sign(_request: HttpRequest) -> Dict[str, str]:
            credentials = self.credentials.get()
            if credentials is None:
                return {}
            now, rand = self._now_rand()
            appid, bucket = self._bucket.appid, self._bucket.name
            sid, skey = credentials.secret_id, credentials.secret_key
            if once:
                value = jsonsign.sign_once(appid, bucket, sid, skey, now, rand, cos_path)
            else:
                expire_at = now + self._validity
                value = jsonsign.sign_multi(appid, bucket, sid, skey, expire_at, now, rand, cos_path)
            return {"Authorization": value}

        return sign

    def _now_rand(self) -> Tuple[int, int]:
        return int(self._clock()), self._rng.randint(0, 999_999_999)

    def _now_ns(self) -> int:
        return int(self._clock() * 1_000_000_000)


class JsonUploadSession:
    """One slice upload: fixed-size slices at ``(number - 1) * part_size``, then finish."""

    def __init__(
        self, store: JsonStore, key: str, size: int, session: str, slice_size: int,
        meta: Optional[Metadata], content_type: Optional[str], instant: bool = False,
    ) -> None:
        self.key = key
        self.upload_id = session
        self.part_size: Optional[int] = slice_size
        self.size = size
        self._slice_size = slice_size
        self._store = store
        self._meta = meta
        self._content_type = content_type
        #: COS already held these bytes (instant upload): there is nothing to send.
        self._instant = instant

    def put_part(self, number: int, data: bytes) -> PartInfo:
        offset = (number - 1) * self._slice_size
        expected = min(self._slice_size, self.size - offset)
        if number < 1 or expected <= 0 or len(data) != expected:
            raise CosError(
                f"part {number} of a {self.size}-byte slice upload must hold {max(expected, 0)} "
                f"bytes (slices of {self._slice_size}), not {len(data)}",
                code="-284", operation="put_part", key=self.key,
            )
        if not self._instant:
            self._store._slice_data(self.key, self.upload_id, offset, data)
        return PartInfo(number, len(data))

    def copy_part(self, number: int, source_key: str, start: int, end: int,
                  if_match: Optional[str] = None) -> PartInfo:
        raise CosError(
            "the JSON API cannot copy part of an object server-side",
            operation="copy_part", key=self.key, errno_value=errno.ENOTSUP,
        )

    def list_parts(self) -> Sequence[PartInfo]:
        if self._instant:
            offsets = range(0, self.size, self._slice_size)
            stored = [(offset, min(self._slice_size, self.size - offset)) for offset in offsets]
        else:
            stored = json_codec.list_parts(self._store._slice_list(self.key))
        return [PartInfo(offset // self._slice_size + 1, length) for offset, length in stored]

    def complete(self, parts: Sequence[PartInfo]) -> ObjectInfo:
        """``upload_slice_finish`` (the server knows its slices; ``parts`` only must add up to
        the size), then the metadata, then a stat for the sha the finish does not return."""
        if sum(part.size for part in parts) != self.size:
            raise CosError(
                f"parts add up to {sum(part.size for part in parts)} bytes, the upload is of {self.size}",
                code="-175", operation="complete_upload", key=self.key,
            )
        if not self._instant:
            self._finish()
        if self._meta or self._content_type:
            self._store.set_meta(self.key, self._meta or {}, self._content_type)
        info = self._store.stat(self.key)
        if info is not None:
            return info
        return ObjectInfo(
            key=self.key, size=self.size, mtime_ns=self._store._now_ns(),
            meta=dict(self._meta or {}), content_type=self._content_type,
        )

    def _finish(self) -> None:
        """``upload_slice_finish``. A repeat answering that the session does not exist (-290)
        after an attempt whose answer was lost is success when the file is there with the
        upload's size: that attempt finished it."""
        try:
            self._store._slice_finish(self.key, self.upload_id, self.size)
        except CosError as error:
            if not (error.repeated and error.code == "-290"):
                raise
            info = self._store.stat(self.key)
            if info is None or info.size != self.size:
                raise
            log.info("slice upload of %r was finished by an earlier attempt", self.key)

    def abort(self) -> None:
        """Nothing to send: the JSON API has no abort. COS keeps the slices until it expires
        them, and until then ``begin_upload`` of the same key takes this session over."""


class _DownloadPins:
    """Which download ETag each ``(key, SHA-1)`` read so far had, for the last ``limit`` of them."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._etags: "OrderedDict[Tuple[str, str], str]" = OrderedDict()  # guarded by self._lock

    def get(self, key: str, sha: str) -> Optional[str]:
        with self._lock:
            return self._etags.get((key, sha))

    def same(self, key: str, sha: str, etag: str) -> bool:
        """Whether ``etag`` is the one pinned for ``(key, sha)`` (the first one seen is)."""
        if not etag:
            return True  # a download host that sends no ETag cannot be checked
        with self._lock:
            pinned = self._etags.setdefault((key, sha), etag)
            self._etags.move_to_end((key, sha))
            while len(self._etags) > self._limit:
                self._etags.popitem(last=False)
        return pinned == etag

    def forget(self, key: str, sha: str) -> None:
        with self._lock:
            self._etags.pop((key, sha), None)
