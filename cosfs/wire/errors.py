"""The exception types cosfs raises and the one table that turns COS error codes into errno.

Every error that reaches the filesystem carries the errno to report, decided here and
nowhere else. The tables follow ``cos-protocol.md`` section 2 (XML API codes, from COS
doc 436/7730) and section 4.4 (JSON API codes, from the JSON API manual). A code that is
not in a table maps by HTTP status, and failing that to EIO; each unknown code is logged
once with the request id so it can be added here.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import Optional

log = logging.getLogger(__name__)


class CosfsError(Exception):
    """Base of every cosfs error: a message a person can act on, and the errno to report."""

    def __init__(self, message: str, errno_value: int = errno.EIO) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno_value


class ConfigError(CosfsError):
    """Bad option, bad credentials file, or anything else the user must fix before mounting."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errno.EINVAL)


class CosError(CosfsError):
    """An error answer from COS (or a transport failure while talking to it).

    ``status`` is the HTTP status (0 when no response arrived), ``code`` the COS error code
    (an XML code such as ``NoSuchKey``, or a JSON API code such as ``-197`` as a string),
    ``request_id`` the ``x-cos-request-id`` to quote to Tencent support, and ``transient``
    whether repeating the same request may succeed. The transport sets ``attempts`` (how
    many were made) and ``repeated``: an earlier attempt failed transiently and was
    repeated, so it may have taken effect (a repeated mkdir may meet the directory it made).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        operation: str = "",
        key: str = "",
        errno_value: Optional[int] = None,
        transient: Optional[bool] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        self.operation = operation
        self.key = key
        if errno_value is None:
            errno_value = errno_for(code, status, request_id)
        if transient is None:
            transient = is_transient(code, status)
        self.transient = transient
        self.attempts = 1
        self.repeated = False
        super().__init__(message, errno_value)

    def __str__(self) -> str:
        parts = [f"{self.operation or 'request'}"]
        if self.key:
            parts.append(f"{self.key!r}")
        head = " ".join(parts)
        detail = self.code or (f"HTTP {self.status}" if self.status else "no response")
        text = f"{head}: {detail}: {self.message}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


# --- XML API codes -------------------------------------------------------------------------

XML_CODE_ERRNO = {
    "NoSuchKey": errno.ENOENT,
    "NoSuchResource": errno.ENOENT,
    "NoSuchVersion": errno.ENOENT,
    "NoSuchCopySource": errno.ENOENT,
    "NoSuchUpload": errno.ENOENT,
    "NoSuchBucket": errno.ENODEV,
    "AccessDenied": errno.EACCES,
    "AccessForbidden": errno.EACCES,
    "SignatureDoesNotMatch": errno.EACCES,
    "InvalidAccessKeyId": errno.EACCES,
    "PaymentRequired": errno.EACCES,
    "RequestTimeTooSkewed": errno.EACCES,
    "Request has expired": errno.EACCES,
    "ExpiredToken": errno.EACCES,
    "InvalidToken": errno.EACCES,
    "BucketNotEmpty": errno.ENOTEMPTY,
    "PathConflict": errno.EEXIST,
    "FileAlreadyExists": errno.EEXIST,
    "PreconditionFailed": errno.ESTALE,
    "EntityTooLarge": errno.EFBIG,
    "KeyTooLong": errno.ENAMETOOLONG,
    "InvalidObjectName": errno.EINVAL,
    "InvalidArgument": errno.EINVAL,
    "InvalidURI": errno.EINVAL,
    "InvalidRange": errno.EINVAL,
    "EntityTooSmall": errno.EIO,
    "InvalidPart": errno.EIO,
    "InvalidPartOrder": errno.EIO,
    "MalformedXML": errno.EIO,
    "BadDigest": errno.EIO,
    "InvalidDigest": errno.EIO,
    "MissingContentLength": errno.EIO,
    "ObjectNotAppendable": errno.EIO,
    "AppendPositionErr": errno.EIO,
    "PositionNotEqualToLength": errno.EIO,
    "InvalidObjectState": errno.EIO,
    "MethodNotAllowed": errno.ENOTSUP,
    "NotImplemented": errno.ENOTSUP,
    "SlowDown": errno.EIO,
    "ServiceUnavailable": errno.EIO,
    "InternalError": errno.EIO,
    "RequestTimeout": errno.ETIMEDOUT,
}

#: XML codes worth repeating the request for (with backoff).
XML_TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"}
)

# --- JSON API codes (manual 003, "错误码") ----------------------------------------------------

_JSON_GROUPS = {
    errno.ENOENT: (-197, -6101, -404, -6992, -166, -144),
    errno.EEXIST: (-177, -176, -178),
    errno.ENOTEMPTY: (-173,),
    errno.EACCES: (-97, -98, -81, -79, -82, -70, -62, -61, -63, -5998, -403, -64, -96, -77, -60),
    errno.EINVAL: (
        -76, -73, -74, -180, -160, -161, -164, -147, -165, -157,
        -5991, -284, -283, -4, -5999, -5992, -5993, -5990, -5980, -5979, -5971, -182,
        -95, -168, -179, -5975, -5995, -5996,
    ),
    errno.EFBIG: (-285, -6996),
    errno.EIO: (
        -71, -300, -152, -181, -196, -5997, -174, -5984, -4016, -175,
        -4019, -4018, -4024, -4026, -4027, -9999, -5973, -290, -5983,
    ),
    errno.EAGAIN: (-45062,),
}
JSON_CODE_ERRNO = {code: err for err, codes in _JSON_GROUPS.items() for code in codes}

#: JSON codes worth repeating the request for: rate limiting and backend hiccups.
JSON_TRANSIENT_CODES = frozenset({-71, -300, -152, -181, -196, -5997, -4025, -4017})

#: JSON codes that mean "sign again and retry once": expired or replayed signature.
JSON_RESIGN_CODES = frozenset({-96, -77})

_STATUS_ERRNO = {
    400: errno.EINVAL,
    401: errno.EACCES,
    403: errno.EACCES,
    404: errno.ENOENT,
    405: errno.ENOTSUP,
    409: errno.EEXIST,
    411: errno.EIO,
    412: errno.ESTALE,
    413: errno.EFBIG,
    416: errno.EINVAL,
    501: errno.ENOTSUP,
    612: errno.ENOENT,
}

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 599})

_unknown_seen: set = set()
_unknown_lock = threading.Lock()


def _json_code(code: str) -> Optional[int]:
    if code.startswith("-") and code[1:].isdigit():
        return int(code)
    return None


def errno_for(code: str, status: int = 0, request_id: str = "") -> int:
    """The errno to report for a COS error ``code`` (XML name or JSON number) and HTTP ``status``."""
    json_code = _json_code(code)
    if json_code is not None and json_code in JSON_CODE_ERRNO:
        return JSON_CODE_ERRNO[json_code]
    if code in XML_CODE_ERRNO:
        return XML_CODE_ERRNO[code]
    if code in ("Timeout", "ReadTimeout", "ConnectTimeout"):
        return errno.ETIMEDOUT
    if status in _STATUS_ERRNO:
        result = _STATUS_ERRNO[status]
    else:
        result = errno.EIO
    if code and code not in ("ConnectionError",):
        with _unknown_lock:
            first = code not in _unknown_seen
            _unknown_seen.add(code)
        if first:
            log.warning(
                "unknown COS error code %s (HTTP %s, request id %s) reported as %s",
                code, status, request_id or "-", errno.errorcode.get(result, result),
            )
    return result


def is_transient(code: str, status: int = 0) -> bool:
    """Whether repeating the request may succeed: throttling, 5xx, backend timeouts, no answer."""
    json_code = _json_code(code)
    if json_code is not None:
        return json_code in JSON_TRANSIENT_CODES or status in TRANSIENT_STATUSES
    if code in XML_TRANSIENT_CODES:
        return True
    if code in ("ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout"):
        return True
    return status in TRANSIENT_STATUSES
