"""Remove signatures, tokens and keys from text bound for a log.

A signed request is a bearer credential for as long as its signature is valid (a JSON API
download's ``?sign=`` for ten minutes, a presigned XML URL for its whole lifetime), and a
session token or SecretKey is worse. Such text reaches logs in ways cosfs does not choose:
urllib3 logs each request line with its query string at debug level, and an exception's
message may quote a URL. ``redact`` is applied to every rendered log record (the filter
of ``cosfs.command.log``). It keeps the parameter and header names, so a log still says
what was sent, and replaces their values with ``[redacted]``:

- the whole value of ``Authorization`` (q-sign, SigV4 and JSON API signatures all travel
  there), as a header line (``Authorization: ...``), a ``key=value`` pair or a quoted
  dict/JSON entry (``'Authorization': '...'``);
- query parameters that carry a signature, a credential or a token: ``sign`` (JSON API
  downloads, COS SDK presigned URLs), ``q-signature``, ``q-ak``, ``X-Amz-Signature``,
  ``X-Amz-Credential``, ``X-Amz-Security-Token``, ``x-cos-security-token``, ``Signature``
  and ``token``, also percent-encoded inside another URL (``%26q-signature%3D...``), and
  the secret lines of a credentials file (``secret_key=``, ``COSAccessToken=``, ...);
- the same names as header lines or dict entries (``x-cos-security-token: ...``), except
  the plain words ``sign``, ``signature`` and ``token``, which prose uses ("cannot sign:");
- the credential values themselves (SecretKey, session token) wherever they appear, when
  the caller knows them.

Pure functions: no I/O, no state.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import quote

REDACTED = "[redacted]"

#: Known secrets shorter than this are not searched for: replacing every "abc" in a log
#: would hide more than it protects (real SecretKeys have 32 characters, tokens hundreds).
MIN_SECRET_LENGTH = 8

_QUERY_NAMES = (
    "q-signature", "q-ak", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-cos-security-token", "signature", "sign", "security_token", "sessiontoken", "token",
    "cosaccesstoken", "secret_key", "secretkey", "cossecretkey",
)
_HEADER_NAMES = (
    "x-cos-security-token", "x-amz-security-token", "x-amz-signature", "x-amz-credential", "q-signature",
    "security_token", "sessiontoken",
)

#: A name starts a word, or follows a percent-encoded ``&`` or ``?``.
_START = r"(?:(?<![\w-])|(?<=%26)|(?<=%3F))"
#: A value runs to the next separator of a query, a line, a quoted string or a list
#: (``%26`` included); one already redacted is left alone.
_VALUE = r"(?!\[redacted\])(?:(?!%26)[^&\s'\"<>#,;)\]}])+"

#: Headers whose whole value is a credential, spaces and commas included (SigV4's
#: ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``).
_AUTHORIZATION = re.compile(
    r"""(?ix)
    (?<![\w-])(?P<name>(?:proxy-)?authorization)
    (?P<sep>['"]?\s*[:=]\s*)
    (?: (?P<quote>['"])(?:(?!(?P=quote)).)*(?P=quote)   # quoted: up to the closing quote
      | [^\r\n]+                                        # bare: to the end of the line
    )
    """
)
_QUERY_PARAMETER = re.compile(rf"(?i){_START}(?P<name>{'|'.join(map(re.escape, _QUERY_NAMES))})"
                              rf"(?P<sep>=|%3D){_VALUE}")
_HEADER_FIELD = re.compile(rf"(?i){_START}(?P<name>{'|'.join(map(re.escape, _HEADER_NAMES))})"
                           rf"(?P<sep>['\"]?\s*:\s*['\"]?){_VALUE}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every signature, token and credential value replaced by ``[redacted]``.

    ``secrets`` are values known to be secret (the SecretKey, a session token); each is
    removed verbatim and percent-encoded. Redacting twice changes nothing more.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
        encoded = quote(secret, safe="")
        if encoded != secret:
            text = text.replace(encoded, REDACTED)
    text = _AUTHORIZATION.sub(_keep_name, text)
    text = _QUERY_PARAMETER.sub(_keep_name, text)
    return _HEADER_FIELD.sub(_keep_name, text)


def _keep_name(match: "re.Match[str]") -> str:
    """The name and separator as they were, the value replaced (inside its quotes, if any)."""
    quote_mark = match.groupdict().get("quote") or ""
    return f"{match.group('name')}{match.group('sep')}{quote_mark}{REDACTED}{quote_mark}"
