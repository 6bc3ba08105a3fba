"""AWS Signature Version 4 (``AWS4-HMAC-SHA256``) for COS's S3 API: sign, presign and verify.

Pure functions, no I/O and no clock: the caller passes the time. The canonical request
follows the S3 flavour of SigV4, which differs from the generic one (and from q-sign) in
ways that matter for byte-exact signatures:

- the path is signed exactly as sent, already percent-encoded, never normalized or
  encoded a second time (``/a%20b%2Bc`` stays ``/a%20b%2Bc``);
- every query parameter is signed; names and values are encoded with ``quote(x,
  safe='-_.~')`` (space is ``%20``), sorted by encoded name, then encoded value;
  a sub-resource such as ``uploads`` is signed as ``uploads=``;
- header names are lower-cased, values trimmed with inner whitespace runs collapsed,
  repeated headers joined with ``,``;
- the payload hash is whatever ``x-amz-content-sha256`` says; S3 requires that header, and
  the time comes from ``x-amz-date`` (the HTTP ``Date`` alternative is not supported).

The verifier (used by cosfs-emulator so that boto3, s3fs-fuse and rclone can talk to it)
rebuilds the canonical request from the ``SignedHeaders`` list the client sent, so unsigned
headers a proxy or HTTP library adds are tolerated. It checks signatures only: body hashes,
session tokens and the region in the credential scope are left to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW_SECONDS = 15 * 60
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
SAFE = "-_.~"
SIGNED_HEADER_NAMES = frozenset({"host", "content-type", "content-md5", "range"})

Pairs = Sequence[Tuple[str, str]]
Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]


class SigV4Error(Exception):
    """Why a SigV4 signature was refused; ``code`` is the S3/COS error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def payload_sha256(body: bytes) -> str:
    """The hex SHA-256 of ``body``, the value of ``x-amz-content-sha256`` for a signed payload."""
    return hashlib.sha256(body).hexdigest()


def is_signed_header(name: str) -> bool:
    """Whether ``sign_headers`` signs header ``name``.

    The rule: ``host``, ``content-type``, ``content-md5``, ``range`` and every ``x-amz-*`` or
    ``x-cos-*`` header. These are the headers that change what a request means; others
    (``user-agent``, ``content-length``, ``expect``, ``connection``...) are rewritten by HTTP
    libraries and proxies, and signing them would only make valid requests fail.
    """
    lowered = name.strip().lower()
    return lowered in SIGNED_HEADER_NAMES or lowered.startswith(("x-amz-", "x-cos-"))


def canonical_query(params: Iterable[Tuple[str, str]]) -> str:
    """The SigV4 canonical query string of decoded ``(name, value)`` pairs."""
    encoded = sorted((quote(name, safe=SAFE), quote(value, safe=SAFE)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in encoded)


def sign_headers(
    access_key: str, secret_key: str, region: str, method: str, path: str, params: Pairs,
    headers: Headers, payload_hash: str, amz_date: str, service: str = "s3",
    session_token: Optional[str] = None,
) -> Dict[str, str]:
    """The headers to add to a request so that it carries a SigV4 ``Authorization``.

    ``path`` is the URL path as sent (percent-encoded), ``params`` the decoded query pairs,
    ``headers`` the headers as sent and must include ``host`` (with the port when it is not
    the default). ``payload_hash`` is ``payload_sha256(body)`` or ``UNSIGNED_PAYLOAD``;
    ``amz_date`` is the signing time as ``20240101T000000Z``. Any ``x-amz-date``,
    ``x-amz-content-sha256`` or ``x-amz-security-token`` in ``headers`` is replaced.
    """
    added = {"x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    if session_token:
        added["x-amz-security-token"] = session_token
    header_map = {**_header_map(headers), **_header_map(added)}
    signed = sorted(name for name in header_map if is_signed_header(name))
    if "host" not in signed:
        raise ValueError("headers must include host: SigV4 requires it to be signed")
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = _string_to_sign(
        method, path, canonical_query(params), header_map, signed, payload_hash, amz_date, scope
    )
    signature = _signature(secret_key, scope, string_to_sign)
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
    return added


def presign_query(
    access_key: str, secret_key: str, region: str, method: str, path: str, params: Pairs,
    host: str, amz_date: str, expires: int, service: str = "s3",
    session_token: Optional[str] = None,
) -> List[Tuple[str, str]]:
    """The ``X-Amz-*`` query pairs that make a URL valid for ``expires`` seconds from ``amz_date``.

    Append them (encoded) after ``params``. Only ``host`` is signed and the payload is
    ``UNSIGNED-PAYLOAD``, since whoever uses the URL chooses the body and the other headers.
    """
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    auth = [("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", f"{access_key}/{scope}"),
            ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host")]
    if session_token:
        auth.append(("X-Amz-Security-Token", session_token))
    string_to_sign = _string_to_sign(
        method, path, canonical_query([*params, *auth]), _header_map([("host", host)]),
        ["host"], UNSIGNED_PAYLOAD, amz_date, scope,
    )
    return auth + [("X-Amz-Signature", _signature(secret_key, scope, string_to_sign))]


def is_sigv4(headers: Headers, params: Pairs) -> bool:
    """Whether a request claims SigV4 (header or presigned form), so it goes to ``verify``."""
    authorization = _header_map(headers).get("authorization", "")
    return authorization.startswith("AWS4-") or any(n == "X-Amz-Algorithm" for n, _ in params)


def verify(
    method: str, path: str, params: Pairs, headers: Headers, secret_keys: Mapping[str, str],
    now: int,
) -> str:
    """Check a SigV4-signed request and return the access key that signed it.

    ``path`` is the raw URL path as received (not decoded), ``params`` the decoded query
    pairs, ``headers`` the received headers, ``secret_keys`` maps access keys to secret
    keys, ``now`` is Unix time. Raises ``SigV4Error`` on any refusal.
    """
    header_map = _header_map(headers)
    query: Dict[str, str] = {}
    for name, value in params:
        query.setdefault(name, value)
    if "X-Amz-Algorithm" in query and "authorization" in header_map:
        raise SigV4Error("AccessDenied", "only one auth mechanism allowed")
    if "X-Amz-Algorithm" in query:
        credential, signed_list, signature, amz_date = _presigned_fields(query, now)
        payload_hash = UNSIGNED_PAYLOAD
        params = [(name, value) for name, value in params if name != "X-Amz-Signature"]
    elif "authorization" in header_map:
        credential, signed_list, signature, amz_date = _header_fields(header_map, now)
        payload_hash = header_map["x-amz-content-sha256"]
    else:
        raise SigV4Error("AccessDenied", "request carries no SigV4 signature")
    access_key, scope = _split_credential(credential, amz_date)
    if access_key not in secret_keys:
        raise SigV4Error("InvalidAccessKeyId", f"access key {access_key} does not exist")
    signed = signed_list.lower().split(";")
    if "host" not in signed:
        raise SigV4Error("AccessDenied", "SignedHeaders must include host")
    missing = [name for name in signed if name not in header_map]
    if missing:
        raise SigV4Error("SignatureDoesNotMatch", f"signed header {missing[0]} is missing")
    string_to_sign = _string_to_sign(
        method, path, canonical_query(params), header_map, signed, payload_hash, amz_date, scope
    )
    expected = _signature(secret_keys[access_key], scope, string_to_sign)
    if not hmac.compare_digest(expected, signature):
        raise SigV4Error("SignatureDoesNotMatch", "signature does not match")
    return access_key


def _header_map(headers: Headers) -> Dict[str, str]:
    """Lower-cased name -> canonical value, repeated headers joined with ``,``.

    A mapping is read through ``items()``, which on ``http.client.HTTPMessage`` keeps repeats.
    """
    merged: Dict[str, List[str]] = {}
    pairs = headers.items() if hasattr(headers, "items") else headers
    for name, value in pairs:
        merged.setdefault(name.strip().lower(), []).append(" ".join(str(value).split()))
    return {name: ",".join(values) for name, values in merged.items()}


def _string_to_sign(
    method: str, path: str, query: str, header_map: Mapping[str, str],
    signed: Sequence[str], payload_hash: str, amz_date: str, scope: str,
) -> str:
    canonical_headers = "".join(f"{name}:{header_map[name]}\n" for name in signed)
    canonical_request = "\n".join(
        [method.upper(), path or "/", query, canonical_headers, ";".join(signed), payload_hash]
    )
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _signature(secret_key: str, scope: str, string_to_sign: str) -> str:
    """HMAC chain ``AWS4<secret>`` -> date -> region -> service -> ``aws4_request`` -> signature."""
    key = f"AWS4{secret_key}".encode("utf-8")
    for part in scope.split("/"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _header_fields(header_map: Mapping[str, str], now: int) -> Tuple[str, str, str, str]:
    """``(credential, signed headers, signature, amz_date)`` of an ``Authorization`` in date."""
    algorithm, _, rest = header_map["authorization"].partition(" ")
    fields = {}
    for item in rest.split(","):
        name, sep, text = item.strip().partition("=")
        if sep:
            fields[name] = text
    needed = ("Credential", "SignedHeaders", "Signature")
    if algorithm != ALGORITHM or any(name not in fields for name in needed):
        raise SigV4Error("AccessDenied", f"malformed Authorization, expected {ALGORITHM} {needed}")
    if "x-amz-date" not in header_map or "x-amz-content-sha256" not in header_map:
        raise SigV4Error("AccessDenied", "S3 SigV4 needs x-amz-date and x-amz-content-sha256")
    amz_date = header_map["x-amz-date"]
    if abs(now - _epoch(amz_date)) > MAX_SKEW_SECONDS:
        raise SigV4Error("RequestTimeTooSkewed", f"request time {amz_date} is over 15 min from now")
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"], amz_date


def _presigned_fields(query: Mapping[str, str], now: int) -> Tuple[str, str, str, str]:
    """``(credential, signed headers, signature, amz_date)`` of a presigned URL still in date."""
    needed = ("Credential", "Date", "Expires", "SignedHeaders", "Signature")
    if query["X-Amz-Algorithm"] != ALGORITHM or any(f"X-Amz-{n}" not in query for n in needed):
        raise SigV4Error("AccessDenied", f"malformed presigned URL, expected {ALGORITHM} {needed}")
    amz_date = query["X-Amz-Date"]
    expires = query["X-Amz-Expires"]
    if not expires.isdigit() or int(expires) > MAX_EXPIRES_SECONDS:
        raise SigV4Error("AccessDenied", f"X-Amz-Expires must be 0..604800, got {expires!r}")
    start = _epoch(amz_date)
    if now < start - MAX_SKEW_SECONDS:
        raise SigV4Error("AccessDenied", "Request is not yet valid")
    if now > start + int(expires):
        raise SigV4Error("AccessDenied", "Request has expired")
    fields = (query[f"X-Amz-{name}"] for name in ("Credential", "SignedHeaders", "Signature"))
    return (*fields, amz_date)


def _epoch(amz_date: str) -> int:
    try:
        parsed = datetime.strptime(amz_date, AMZ_DATE_FORMAT)
    except ValueError:
        raise SigV4Error("AccessDenied", f"bad date {amz_date!r}, want 20240101T000000Z") from None
    return int(parsed.replace(tzinfo=timezone.utc).timestamp())


def _split_credential(credential: str, amz_date: str) -> Tuple[str, str]:
    """``(access key, scope)`` of ``AK/DATE/REGION/SERVICE/aws4_request``; DATE must match."""
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or parts[4] != "aws4_request" or parts[1] != amz_date[:8] or not parts[0]:
        raise SigV4Error("AccessDenied", f"malformed credential {credential!r} for date {amz_date}")
    return parts[0], "/".join(parts[1:])
