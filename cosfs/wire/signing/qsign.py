"""The COS XML API request signature (``q-sign-algorithm=sha1``), signing and verifying.

Pure functions, no I/O and no clock: the caller passes the time. This reproduces
cos-python-sdk-v5 1.9.44 byte for byte (``cos-protocol.md`` section 1):

- the path is signed raw (``/`` + the key, not URL-encoded);
- every query parameter is signed, empty sub-resources (``uploads=``) included;
- only the headers COS lists are signed (``SIGNED_HEADER_NAMES`` plus ``x-cos-*``/``x-ci-*``);
- names and values go through ``quote(x, safe='-_.~')``; names are lower-cased after quoting;
- the signing key is the *hex* HMAC-SHA1 of the key time, used as a string.

A client signs many requests with one KeyTime: ``key_time`` rounds it to a window, and the
SignKey (an HMAC of the secret and the KeyTime alone) is kept for the requests that share
it, so each request pays for one HMAC and one SHA-1, not two HMACs.

The verifier (used by cosfs-emulator) rebuilds the string to sign from the lists inside the
``Authorization`` value, so unsigned headers and parameters a client adds are tolerated.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

SIGNED_HEADER_NAMES = frozenset(
    {
        "cache-control", "content-disposition", "content-encoding", "content-type",
        "content-md5", "content-length", "expect", "expires", "host", "if-match",
        "if-modified-since", "if-none-match", "if-unmodified-since", "origin", "range",
        "transfer-encoding", "pic-operations",
    }
)

Pairs = Sequence[Tuple[str, str]]

#: How far back a client's KeyTime starts, for clocks behind the server's (the SDK uses 60 s).
CLOCK_SKEW = 60
#: The KeyTime window: requests within one share a KeyTime, so its SignKey is computed once.
KEY_TIME_WINDOW = 60


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def is_signed_header(name: str) -> bool:
    """Whether the official SDK includes header ``name`` in the signature."""
    lowered = name.lower()
    return (
        lowered in SIGNED_HEADER_NAMES
        or lowered.startswith("x-cos-")
        or lowered.startswith("x-ci-")
    )


def _canonical(pairs: Iterable[Tuple[str, str]]) -> Tuple[str, str]:
    """``(name list, name=value string)`` of quoted, lower-cased, sorted pairs."""
    encoded = sorted((_quote(name).lower(), _quote(value)) for name, value in pairs)
    return ";".join(n for n, _ in encoded), "&".join(f"{n}={v}" for n, v in encoded)


def key_time(now: int, validity: int) -> Tuple[int, int]:
    """``(start, end)`` of the KeyTime for a request signed at ``now``, valid ``validity`` s.

    Rounded to ``KEY_TIME_WINDOW`` so that requests signed close together share it (and its
    SignKey): ``start <= now - CLOCK_SKEW`` and ``end >= now + validity`` always hold, so a
    signature is never shorter-lived than asked; it lives at most one window longer.
    """
    window_start = now - now % KEY_TIME_WINDOW
    return window_start - CLOCK_SKEW, window_start + KEY_TIME_WINDOW + validity


@functools.lru_cache(maxsize=8)
def sign_key(secret_key: str, sign_time: str) -> str:
    """The SignKey: the hex HMAC-SHA1 of the KeyTime, used as a string.

    Kept for the few KeyTimes in use (``lru_cache`` is thread-safe and keyed by both
    arguments, so a new secret or a new KeyTime never gets an old key).
    """
    return hmac.new(secret_key.encode("utf-8"), sign_time.encode("utf-8"), hashlib.sha1).hexdigest()


@dataclass(frozen=True)
class SignedParts:
    """The intermediate strings of one signature (kept for tests and debugging)."""

    header_list: str
    param_list: str
    http_string: str
    string_to_sign: str
    signature: str


def compute(
    secret_key: str,
    method: str,
    path: str,
    params: Pairs,
    headers: Pairs,
    sign_time: str,
) -> SignedParts:
    """Sign exactly the given ``params`` and ``headers`` (already filtered) for ``sign_time``.

    ``sign_time`` is ``"<start>;<end>"``; it serves as both q-sign-time and q-key-time.
    """
    header_list, header_string = _canonical(headers)
    param_list, param_string = _canonical(params)
    http_string = f"{method.lower()}\n{path}\n{param_string}\n{header_string}\n"
    digest = hashlib.sha1(http_string.encode("utf-8")).hexdigest()
    string_to_sign = f"sha1\n{sign_time}\n{digest}\n"
    signature = hmac.new(sign_key(secret_key, sign_time).encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).hexdigest()
    return SignedParts(header_list, param_list, http_string, string_to_sign, signature)


def signable_headers(headers: Mapping[str, str], host: Optional[str]) -> List[Tuple[str, str]]:
    """The headers the SDK signs, with ``host`` (no port) added when no Host header is given."""
    chosen = [(name, value) for name, value in headers.items() if is_signed_header(name)]
    if host is not None and not any(name.lower() == "host" for name, _ in chosen):
        chosen.append(("host", host))
    return chosen


def authorization(
    secret_id: str,
    secret_key: str,
    method: str,
    path: str,
    params: Pairs,
    headers: Mapping[str, str],
    start: int,
    end: int,
    host: Optional[str] = None,
) -> str:
    """The ``Authorization`` header value for one request valid from ``start`` to ``end``.

    ``path`` is ``/`` + the raw key (the bucket root is ``/``); ``host`` is the host name
    without port, signed when the headers carry no Host of their own.
    """
    sign_time = f"{start};{end}"
    parts = compute(secret_key, method, path, params, signable_headers(headers, host), sign_time)
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={sign_time}"
        f"&q-key-time={sign_time}&q-header-list={parts.header_list}"
        f"&q-url-param-list={parts.param_list}&q-signature={parts.signature}"
    )


def parse_authorization(value: str) -> dict:
    """Split an ``Authorization`` value (or the ``q-*`` query of a presigned URL) into fields."""
    fields = {}
    for item in value.split("&"):
        name, sep, text = item.partition("=")
        if sep:
            fields[name.strip()] = unquote(text.strip())
    return fields


class VerifyError(Exception):
    """Why a q-sign signature was refused; ``code`` is the COS error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify(
    fields: Mapping[str, str],
    secret_key: str,
    method: str,
    path: str,
    params: Pairs,
    headers: Mapping[str, str],
    now: int,
) -> None:
    """Check a parsed q-sign ``Authorization`` against the request it came with.

    ``path`` is the URL path decoded once; ``params`` the query decoded with form rules;
    ``headers`` the received headers (case-insensitive). A port on ``Host`` is ignored, as
    the SDKs sign the host name alone. Raises ``VerifyError`` on any mismatch.
    """
    required = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-signature")
    if any(name not in fields for name in required) or fields["q-sign-algorithm"] != "sha1":
        raise VerifyError("AccessDenied", "malformed Authorization")
    sign_time = fields["q-sign-time"]
    try:
        start, end = (int(x) for x in sign_time.split(";"))
    except ValueError:
        raise VerifyError("AccessDenied", "malformed q-sign-time") from None
    if not start <= now <= end:
        raise VerifyError("Request has expired", "Request has expired")
    received_headers = {}
    for name, value in headers.items():
        if name.lower() == "host":
            value = _strip_port(value)
        received_headers.setdefault(_quote(name).lower(), (name, value))
    received_params = {}
    for name, value in params:
        received_params.setdefault(_quote(name).lower(), (name, value))
    signed_headers = _pick(received_headers, fields.get("q-header-list", ""), "header")
    signed_params = _pick(received_params, fields.get("q-url-param-list", ""), "parameter")
    parts = compute(secret_key, method, path, signed_params, signed_headers, sign_time)
    if not hmac.compare_digest(parts.signature, fields["q-signature"]):
        raise VerifyError("SignatureDoesNotMatch", "signature does not match")


def _pick(received: Mapping[str, Tuple[str, str]], listing: str, what: str) -> List[Tuple[str, str]]:
    """The received pairs named in a ``q-header-list``/``q-url-param-list``."""
    chosen = []
    for name in listing.lower().split(";"):
        if not name:
            continue
        if name not in received:
            raise VerifyError("SignatureDoesNotMatch", f"signed {what} {name} is missing")
        chosen.append(received[name])
    return chosen


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
