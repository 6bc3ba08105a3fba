"""The emulator's request and response values, shared by the HTTP server and both API handlers.

A handler receives an ``EmuRequest`` (already routed: bucket and key known, signature
checked) and returns an ``EmuResponse``; it never touches sockets. Bodies stay streams in
both directions, so a 5 GiB object is never held in memory.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import unquote
from xml.sax.saxutils import escape

from cosfs.emulator.storage import StorageError, read_exactly

#: An XML API error answer (HTTP status, COS code, message): the type the store raises too.
EmulatorError = StorageError


@dataclass
class EmuRequest:
    method: str
    #: The URL path exactly as received (percent-encoded).
    raw_path: str
    #: The query decoded with form rules (``+`` is a space), in order.
    params: List[Tuple[str, str]]
    #: Header names lower-cased.
    headers: Dict[str, str]
    #: The body, read lazily in chunks; consumed at most once.
    body: Iterable[bytes]
    #: The query string exactly as received (for values that must not be form-decoded).
    raw_query: str = ""
    host: str = ""
    bucket: str = ""
    key: str = ""
    #: The SecretId that signed the request (empty when anonymous).
    signer: str = ""
    request_id: str = ""
    #: The operation name a handler recognised (``PutObject``, ``upload_slice_data``...), for counters.
    operation: str = ""

    def param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def raw_param(self, name: str) -> Optional[str]:
        """A query value percent-decoded but with ``+`` kept: the JSON SDK's ``?sign=`` is raw base64."""
        for item in self.raw_query.split("&"):
            key, _, value = item.partition("=")
            if key == name:
                return unquote(value)
        return None

    def has_param(self, name: str) -> bool:
        return any(key == name for key, _ in self.params)

    def read_body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole body, for small XML/JSON/form payloads only."""
        data = bytearray()
        for chunk in self.body:
            data += chunk
            if len(data) > limit:
                raise EmulatorError(400, "EntityTooLarge", "request body too large for this operation")
        return bytes(data)


@dataclass
class EmuResponse:
    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: A streamed body instead of ``body``: the file, where to start and how many bytes.
    stream: Optional[Tuple[BinaryIO, int, int]] = None

    @property
    def length(self) -> int:
        return self.stream[2] if self.stream else len(self.body)


def new_request_id() -> str:
    return base64.b64encode(os.urandom(18), b"-_").decode("ascii")


def xml_response(status: int, body: str, headers: Optional[Dict[str, str]] = None) -> EmuResponse:
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return EmuResponse(status, {"Content-Type": "application/xml", **(headers or {})}, text.encode("utf-8"))


def error_response(error: EmulatorError, request: EmuRequest) -> EmuResponse:
    """COS's ``<Error>`` document; HEAD answers carry no body."""
    if request.method == "HEAD":
        return EmuResponse(error.status, {"x-cos-error-code": error.code})
    resource = escape(xml_safe(f"/{request.key}" if request.key else "/"))
    body = (
        f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
        f"<Resource>{resource}</Resource><RequestId>{request.request_id}</RequestId>"
        f"<TraceId>{request.request_id}</TraceId></Error>"
    )
    return xml_response(error.status, body)


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot carry percent-encoded (a key may hold them)."""
    return "".join(
        ch if ch in "\t\n\r" or (ord(ch) >= 0x20 and not 0xD800 <= ord(ch) <= 0xDFFF and ch not in "\ufffe\uffff")
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in text
    )


def element(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def chunked(file: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """Up to ``length`` bytes of ``file`` from ``start``, in chunks: bodies are never read whole."""
    file.seek(start)
    return read_exactly(file, length)
