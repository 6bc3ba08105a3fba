"""The emulator's HTTP/1.1 server: parse, route, authenticate, inject faults, stream.

Routing follows how clients address COS:

- ``/-/admin/...``: the admin endpoint (fault settings, request counters). A bucket name
  cannot start with ``-``, so this path can never be a bucket.
- ``/files/v2/<appid>/<bucket>/<path>``: the JSON API.
- ``Host: <bucket>-<appid>.<anything>``: the XML API, virtual-hosted (the SDK's
  ``IP=``/``Port=`` configuration sends the real COS host name to 127.0.0.1).
- ``/<bucket>-<appid>/<key>``: the XML API, path-style (boto3, s3fs, rclone, cosfs with an
  IP endpoint).
- an absolute-form target (``PUT http://host/key HTTP/1.1``, a client behind a proxy) is
  routed by the host inside it.
- anything else goes to the single configured bucket (the SDK's ``Domain=`` form).

A GET that carries a JSON API ``sign`` parameter instead of an ``Authorization`` header is a
JSON API download and is checked with the JSON signature.
"""

from __future__ import annotations

import json
import logging
import socket
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from cosfs.emulator import json_api, xml_api
from cosfs.emulator.auth import JsonAuthError
from cosfs.emulator.body import BadBody, BodyReader, ConnectionDropped
from cosfs.emulator.context import Context
from cosfs.emulator.faults import FaultInjector
from cosfs.emulator.protocol import (
    EmulatorError,
    EmuRequest,
    EmuResponse,
    chunked,
    error_response,
    new_request_id,
)
from cosfs.wire.signing import jsonsign

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/-/admin/"
#: Requests that store something (both APIs): the ones a refused name fails.
WRITE_METHODS = frozenset({"PUT", "POST"})
JSON_PREFIX = "/files/v2/"

#: JSON auth codes as the XML-style errors a download answers with.
_DOWNLOAD_AUTH_CODES = {-96: "Request has expired", -97: "SignatureDoesNotMatch", -79: "InvalidAccessKeyId"}


class EmulatorApp:
    """Turns an ``EmuRequest`` into an ``EmuResponse``: routing, auth, handlers, counters."""

    def __init__(self, ctx: Context, faults: FaultInjector) -> None:
        self.ctx = ctx
        self.faults = faults

    def handle(self, request: EmuRequest) -> EmuResponse:
        if request.raw_path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        if request.raw_path.startswith(JSON_PREFIX):
            return self._json(request)
        try:
            response = self._xml(request)
        except EmulatorError as error:
            response = error_response(error, request)
        self.faults.count(f"xml.{request.operation or request.method}")
        return response

    # --- XML API ------------------------------------------------------------------------

    def _xml(self, request: EmuRequest) -> EmuResponse:
        try:
            path = unquote(request.raw_path, errors="strict")
        except UnicodeDecodeError:
            raise EmulatorError(400, "InvalidURI", "the request path is not UTF-8") from None
        bucket, key, sign_paths = self._route(request.host, path)
        request.bucket, request.key = bucket, key
        if bucket:
            self.ctx.check_bucket(bucket)
        if request.method in WRITE_METHODS and self.faults.refuses(key):
            raise EmulatorError(400, "InvalidObjectName", "the object key is refused (fault injection)")
        if request.method in ("GET", "HEAD") and "authorization" not in request.headers and request.raw_param("sign"):
            request.signer = self._check_download(request)
        else:
            request.signer = self.ctx.auth.check_xml(request, sign_paths)
        return xml_api.handle(self.ctx, request)

    def _route(self, host: str, path: str) -> Tuple[str, str, List[str]]:
        """``(bucket, key, paths the client may have signed)`` for an XML API request."""
        hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        for bucket in self.ctx.buckets:
            if hostname.startswith(bucket + "."):
                return bucket, path[1:], [path]
        first, _, rest = path[1:].partition("/")
        if first in self.ctx.buckets or xml_api_bucket_like(first):
            return first, rest, [path, "/" + rest]
        if path == "/":
            return "", "", [path]  # GET Service (ListBuckets), as boto3's list_buckets sends it
        if len(self.ctx.buckets) == 1:
            return self.ctx.buckets[0], path[1:], [path]
        raise EmulatorError(404, "NoSuchBucket", "The specified bucket does not exist.")

    def _check_download(self, request: EmuRequest) -> str:
        name, _, appid = request.bucket.rpartition("-")
        bound = jsonsign.encode_path("/" + request.key)
        try:
            try:
                return self.ctx.auth.check_json(request, appid, name, bound)
            except JsonAuthError as error:
                if error.code != -63:
                    raise
                return self.ctx.auth.check_json(request, appid, name, jsonsign.fileid(appid, name, "/" + request.key))
        except JsonAuthError as error:
            raise EmulatorError(403, _DOWNLOAD_AUTH_CODES.get(error.code, "AccessDenied"), error.message) from None

    # --- JSON API -----------------------------------------------------------------------

    def _json(self, request: EmuRequest) -> EmuResponse:
        parts = request.raw_path[len(JSON_PREFIX):].split("/", 2)
        if len(parts) < 2 or not parts[0].isdigit():
            return json_error(-5992, "URL must be /files/v2/<appid>/<bucket>/<path>")
        appid, bucket_name = parts[0], parts[1]
        try:
            request.key = unquote(parts[2] if len(parts) > 2 else "", errors="strict")
        except UnicodeDecodeError:
            return json_error(-147, "the path is not UTF-8")
        request.bucket = f"{bucket_name}-{appid}"
        if request.bucket not in self.ctx.buckets:
            return json_error(-166, "bucket does not exist")
        if request.method in WRITE_METHODS and self.faults.refuses(request.key):
            return json_error(-180, "the path is refused (fault injection)")
        response = json_api.handle(self.ctx, request, appid, bucket_name)
        self.faults.count(f"json.{request.operation or request.method}")
        return response

    # --- admin --------------------------------------------------------------------------

    def _admin(self, request: EmuRequest) -> EmuResponse:
        what = request.raw_path[len(ADMIN_PREFIX):].rstrip("/")
        if what == "stats" and request.method == "GET":
            counts = self.faults.counts()
            return json_ok({"requests": counts, "total": sum(counts.values()), "bytes": self.faults.byte_counts()})
        if what == "stats/reset" and request.method == "POST":
            self.faults.reset_counts()
            return json_ok({"requests": {}, "total": 0, "bytes": self.faults.byte_counts()})
        if what == "faults" and request.method in ("GET", "POST"):
            if request.method == "POST":
                try:
                    self.faults.update(json.loads(request.read_body(65536) or b"{}"))
                except (ValueError, TypeError) as exc:
                    return EmuResponse(400, {"Content-Type": "application/json"},
                                       json.dumps({"error": str(exc)}).encode())
            return json_ok(vars(self.faults.settings))
        return EmuResponse(404, {"Content-Type": "application/json"}, b'{"error": "unknown admin endpoint"}')


def xml_api_bucket_like(segment: str) -> bool:
    """Whether a first path segment looks like ``name-appid`` (path-style addressing)."""
    name, _, appid = segment.rpartition("-")
    return bool(name) and appid.isdigit() and len(appid) >= 5


def json_ok(data: object) -> EmuResponse:
    return EmuResponse(200, {"Content-Type": "application/json"}, json.dumps(data, sort_keys=True).encode())


def json_error(code: int, message: str) -> EmuResponse:
    body = json.dumps({"code": code, "message": message}).encode()
    return EmuResponse(400, {"Content-Type": "application/json"}, body)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: Tuple[str, int], app: EmulatorApp) -> None:
        self.app = app
        super().__init__(address, RequestHandler)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Headers and body go out in separate writes; without TCP_NODELAY, Nagle and delayed
    #: ACKs hold every small answer back ~40 ms on loopback.
    disable_nagle_algorithm = True
    server_version = "tencent-cos"
    sys_version = ""
    server: EmulatorHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def date_time_string(self, timestamp=None) -> str:
        """The ``Date`` header from the server's clock, which tests may skew or fix."""
        return formatdate(self.server.app.ctx.clock() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature of the base class)
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        app = self.server.app
        faults = app.faults
        target = self.path
        host = self.headers.get("Host", "")
        if "://" in target:
            parts = urlsplit(target)
            host, target = parts.netloc, parts.path + (f"?{parts.query}" if parts.query else "")
        raw_path, _, raw_query = target.partition("?")
        headers = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]},{value}" if lowered in headers else value
        admin = raw_path.startswith(ADMIN_PREFIX)  # faults never touch the admin endpoint
        if not admin:
            faults.hold_while_stalled()
        reset = not admin and faults.should_reset()
        body = BodyReader(self.rfile, headers, faults, drop_half_way=reset)
        request = EmuRequest(
            method=self.command, raw_path=raw_path or "/", params=parse_qsl(raw_query, keep_blank_values=True),
            headers=headers, body=body, raw_query=raw_query, host=host, request_id=new_request_id(),
        )
        if not admin:
            faults.delay()
        try:
            if not admin and faults.should_fail():
                response = error_response(EmulatorError(503, "SlowDown", "Please reduce your request rate."), request)
                self.close_connection = True
            else:
                response = app.handle(request)
            if not body.drain():
                self.close_connection = True
        except ConnectionDropped:
            self._drop()
            return
        except BadBody as exc:
            response = error_response(EmulatorError(400, "IncompleteBody", str(exc)), request)
            self.close_connection = True
        except Exception:  # noqa: BLE001 (the server must answer, whatever a handler did)
            log.exception("unhandled error for %s %s", self.command, raw_path)
            response = error_response(EmulatorError(500, "InternalError", "We encountered an internal error."), request)
            self.close_connection = True
        if not admin:  # counted before the answer goes out: a client that has it sees the count
            bodiless = self.command == "HEAD" or response.status in (204, 304)
            faults.count_bytes(body.received, 0 if bodiless else response.length)
        self._send(request, response, reset and response.length > 1)

    def _send(self, request: EmuRequest, response: EmuResponse, drop_half_way: bool) -> None:
        faults = self.server.app.faults
        self.send_response(response.status)
        headers = {"x-cos-request-id": request.request_id, **response.headers}
        headers.setdefault("Content-Length", str(response.length))
        for name, value in headers.items():
            self.send_header(name, _latin1(str(value)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        limit = response.length // 2 if drop_half_way else None
        try:
            for chunk in _body_chunks(response):
                if limit is not None:
                    if limit <= 0:
                        break
                    chunk = chunk[:limit]
                    limit -= len(chunk)
                self.wfile.write(chunk)
                faults.throttle(len(chunk))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        finally:
            if response.stream:
                response.stream[0].close()
        if drop_half_way:
            self._drop()

    def _drop(self) -> None:
        """Close the connection abruptly (fault injection), as a crashed peer would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _latin1(value: str) -> str:
    """HTTP header values travel as latin-1; other text (metadata set through the JSON API)
    goes out as its UTF-8 bytes, which is what a client that sent UTF-8 gets back."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8").decode("latin-1")
    return value


def _body_chunks(response: EmuResponse) -> Iterator[bytes]:
    if response.stream is None:
        if response.body:
            yield response.body
        return
    yield from chunked(*response.stream)


def serve(app: EmulatorApp, host: str, port: int) -> EmulatorHTTPServer:
    """A server bound to ``host:port`` (0 picks a free port), not yet serving."""
    return EmulatorHTTPServer((host, port), app)

