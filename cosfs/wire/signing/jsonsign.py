"""The legacy JSON API signatures (multi-use, once, download), signing and verifying.

Pure functions: time and randomness are arguments. The format is manual 003's
``Sign = Base64(HMAC-SHA1(SecretKey, Original) || Original)`` with ``Original`` a string of
``k=v`` fields. The field order does not matter to COS; we use the order of the official
Python SDK (qcloud-cos-v4: ``a,k,e,t,r,f,b``), which the vectors reproduce.

- multi-use: ``e`` is an absolute expiry; ``f`` is the fileid the signature is bound to
  (``/<appid>/<bucket><url-encoded path>``), or empty.
- once: ``e=0``, ``f`` bound to the object; COS accepts it only once.
- download: ``f`` is the encoded path alone, without ``/<appid>/<bucket>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple
from urllib.parse import quote, unquote

#: The longest validity COS accepts for a multi-use signature (90 days).
MAX_MULTI_VALIDITY = 7776000


def encode_path(path: str, safe: str = "~/") -> str:
    """``path`` URL-encoded as the Python SDK does (everything but alnum and ``_.-~/``)."""
    return quote(path.encode("utf-8"), safe=safe)


def fileid(appid: str, bucket: str, path: str) -> str:
    """The fileid of ``path`` (``/`` first, directories end in ``/``) in ``bucket``."""
    return f"/{appid}/{bucket}{encode_path(path)}"


def sign_fields(fields: Sequence[Tuple[str, str]], secret_key: str) -> str:
    """Sign an ordered list of ``(name, value)`` fields."""
    original = "&".join(f"{name}={value}" for name, value in fields)
    return sign_original(original, secret_key)


def sign_original(original: str, secret_key: str) -> str:
    digest = hmac.new(secret_key.encode("utf-8"), original.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest + original.encode("utf-8")).decode("ascii")


def _fields(appid, bucket, secret_id, expire_at, now, rand, bound) -> Sequence[Tuple[str, str]]:
    return (
        ("a", str(appid)), ("k", secret_id), ("e", str(expire_at)), ("t", str(now)),
        ("r", str(rand)), ("f", bound), ("b", bucket),
    )


def sign_multi(
    appid: str, bucket: str, secret_id: str, secret_key: str,
    expire_at: int, now: int, rand: int, path: str = "",
) -> str:
    """A multi-use signature valid until ``expire_at``, bound to ``path`` (or to nothing)."""
    bound = fileid(appid, bucket, path) if path else ""
    return sign_fields(_fields(appid, bucket, secret_id, expire_at, now, rand, bound), secret_key)


def sign_once(
    appid: str, bucket: str, secret_id: str, secret_key: str, now: int, rand: int, path: str,
) -> str:
    """A single-use signature for one operation on ``path`` (delete, update, move)."""
    bound = fileid(appid, bucket, path)
    return sign_fields(_fields(appid, bucket, secret_id, 0, now, rand, bound), secret_key)


def sign_download(
    appid: str, bucket: str, secret_id: str, secret_key: str,
    expire_at: int, now: int, rand: int, path: str,
) -> str:
    """The ``?sign=`` value of a download URL for ``path``."""
    bound = encode_path(path)
    return sign_fields(_fields(appid, bucket, secret_id, expire_at, now, rand, bound), secret_key)


class SignatureFormatError(ValueError):
    """The value is not a JSON API signature at all (COS answers -5998)."""


@dataclass(frozen=True)
class DecodedSign:
    digest: bytes
    original: str
    fields: Dict[str, str]

    def matches(self, secret_key: str) -> bool:
        """Whether the HMAC was made with ``secret_key``."""
        expected = hmac.new(
            secret_key.encode("utf-8"), self.original.encode("utf-8"), hashlib.sha1
        ).digest()
        return hmac.compare_digest(expected, self.digest)


def decode(sign: str) -> DecodedSign:
    """Split a signature into its HMAC and fields. Fields may come in any order; ``f`` may
    contain escaped ``&`` (``%26``) but never a raw one."""
    try:
        raw = base64.b64decode(sign.strip(), validate=True)
        original = raw[20:].decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SignatureFormatError("signature is not base64 of HMAC + fields") from None
    if len(raw) <= 20:
        raise SignatureFormatError("signature too short")
    fields: Dict[str, str] = {}
    for item in original.split("&"):
        name, sep, value = item.partition("=")
        if not sep:
            raise SignatureFormatError(f"field {item!r} has no '='")
        fields[name] = value
    return DecodedSign(raw[:20], original, fields)


class JsonVerifyError(Exception):
    """Why a JSON API signature was refused; ``code`` is the JSON API error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify(
    sign: str,
    secret_keys: Dict[str, str],
    appid: str,
    bucket: str,
    target_fileid: str,
    now: int,
) -> DecodedSign:
    """Check a JSON API signature for a request on ``target_fileid`` (encoded, as from
    ``fileid``, or a bare encoded path for downloads).

    ``secret_keys`` maps SecretId to SecretKey. A multi-use signature must not be expired and
    its ``f`` must be empty or a prefix of the target; a once signature (``e=0``) must be
    bound to the target exactly. ``f`` is compared after URL-decoding, because the SDKs
    disagree on which reserved characters they escape. Replay of a once signature is the
    caller's to detect (it needs state). Raises ``JsonVerifyError`` with manual 003's code.
    """
    try:
        decoded = decode(sign)
    except SignatureFormatError as exc:
        raise JsonVerifyError(-5998, str(exc)) from None
    fields = decoded.fields
    missing = [name for name in ("a", "k", "e", "t", "r", "f") if name not in fields]
    if missing:
        raise JsonVerifyError(-5998, f"signature lacks field(s) {', '.join(missing)}")
    if fields["a"] != str(appid):
        raise JsonVerifyError(-70, "appid in the signature does not match the request")
    if "b" in fields and fields["b"] != bucket:
        raise JsonVerifyError(-61, "bucket in the signature does not match the request")
    secret_key = secret_keys.get(fields["k"])
    if secret_key is None:
        raise JsonVerifyError(-79, "SecretId does not exist")
    if not decoded.matches(secret_key):
        raise JsonVerifyError(-97, "signature does not match")
    try:
        expire_at = int(fields["e"])
    except ValueError:
        raise JsonVerifyError(-5998, "field e is not a number") from None
    bound = unquote(fields["f"])
    target = unquote(target_fileid)
    if expire_at == 0:
        if not bound:
            raise JsonVerifyError(-76, "once signature without fileid")
        if bound != target:
            raise JsonVerifyError(-63, "fileid does not match the signature")
    else:
        if expire_at < now:
            raise JsonVerifyError(-96, "signature expired")
        if bound and not target.startswith(bound):
            raise JsonVerifyError(-63, "fileid does not match the signature")
    return decoded
