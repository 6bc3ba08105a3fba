"""Request bodies read off the socket in chunks: Content-Length, chunked, and aws-chunked.

Handlers see the decoded payload as an iterable of chunks and stream it to disk; nothing
here holds a whole body. boto3 may frame uploads as ``Content-Encoding: aws-chunked``
(``<hex-size>[;chunk-signature=...]\\r\\n<data>\\r\\n ... 0\\r\\n<trailers>\\r\\n``), which is
decoded here so that stored objects hold the payload, not the framing.
"""

from __future__ import annotations

from typing import BinaryIO, Dict, Iterator

CHUNK = 1 << 20
#: The most an unread body is drained to keep the connection; beyond it we close instead.
DRAIN_LIMIT = 8 << 20


class ConnectionDropped(Exception):
    """Fault injection closed the connection half-way through a request body."""


class BadBody(Exception):
    """The body framing is broken (bad chunk size, truncated)."""


class BodyReader:
    """The body of one request: iterate once for the decoded payload, then ``drain``."""

    def __init__(self, rfile: BinaryIO, headers: Dict[str, str], faults, drop_half_way: bool = False) -> None:
        self._rfile = rfile
        self._faults = faults
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._remaining = 0 if self._chunked else int(headers.get("content-length", "0") or 0)
        self._aws_chunked = "aws-chunked" in headers.get("content-encoding", "").lower()
        self._drop_at = self._remaining // 2 if drop_half_way and self._remaining > 1 else None
        self._read = 0
        #: Body bytes read off the connection, framing excluded (the admin byte counters).
        self.received = 0
        self._done = not self._chunked and self._remaining == 0
        self._started = False

    # --- transfer framing ---------------------------------------------------------------

    def _raw(self) -> Iterator[bytes]:
        """The body as sent, after Transfer-Encoding."""
        if self._chunked:
            yield from self._dechunk_transfer()
        else:
            while self._remaining > 0:
                size = min(CHUNK, self._remaining)
                if self._drop_at is not None and self._read + size > self._drop_at:
                    size = max(0, self._drop_at - self._read)
                    if size:
                        self._take(size)
                    raise ConnectionDropped()
                yield self._take(size)
        self._done = True

    def _take(self, size: int) -> bytes:
        data = self._rfile.read(size)
        if len(data) < size:
            raise BadBody("the body ended before Content-Length")
        self._remaining -= len(data)
        self._read += len(data)
        self.received += len(data)
        self._faults.throttle(len(data))
        return data

    def _dechunk_transfer(self) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadBody("bad chunk size line") from None
            if size == 0:
                while self._rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return
            while size > 0:
                data = self._rfile.read(min(CHUNK, size))
                if not data:
                    raise BadBody("truncated chunk")
                size -= len(data)
                self.received += len(data)
                self._faults.throttle(len(data))
                yield data
            self._rfile.readline(8)

    # --- content framing ----------------------------------------------------------------

    def __iter__(self) -> Iterator[bytes]:
        if self._started:
            return iter(())
        self._started = True
        return self._decode_aws_chunked(self._raw()) if self._aws_chunked else self._raw()

    @staticmethod
    def _decode_aws_chunked(raw: Iterator[bytes]) -> Iterator[bytes]:
        buffer = bytearray()
        source = iter(raw)

        def fill(minimum: int) -> bool:
            while len(buffer) < minimum:
                data = next(source, None)
                if data is None:
                    return False
                buffer.extend(data)
            return True

        while True:
            while b"\r\n" not in buffer:
                if not fill(len(buffer) + 1):
                    raise BadBody("aws-chunked body ended inside a chunk header")
            header, _, rest = bytes(buffer).partition(b"\r\n")
            del buffer[: len(header) + 2]
            try:
                size = int(header.split(b";")[0], 16)
            except ValueError:
                raise BadBody("bad aws-chunked chunk header") from None
            if size == 0:
                for _ in source:  # trailers (checksums): accepted, not checked
                    pass
                return
            while size > 0:
                if not buffer and not fill(1):
                    raise BadBody("aws-chunked body truncated")
                piece = bytes(buffer[:size])
                del buffer[: len(piece)]
                size -= len(piece)
                yield piece
            if not fill(2):
                raise BadBody("aws-chunked chunk without CRLF")
            del buffer[:2]

    def drain(self) -> bool:
        """Consume what the handler did not read; ``False`` when the connection must close."""
        if self._done:
            return True
        if self._chunked or self._remaining > DRAIN_LIMIT:
            return False
        try:
            while self._remaining > 0:
                self._take(min(CHUNK, self._remaining))
        except (BadBody, ConnectionDropped):
            return False
        self._done = True
        return True
