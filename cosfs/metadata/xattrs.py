"""Extended attributes in object metadata, in the one encoding s3fs and Tencent's COSFS share.

All of an object's extended attributes are one user metadata value, ``x-cos-meta-xattr``:
a JSON object mapping each name to its value in base64, URL-encoded as s3fs's
``urlEncodePath`` does (letters, digits and ``.-_~/`` kept, every other byte ``%XX``).
s3fs (``build_xattrs``) writes the names in byte order without spaces, ``{}`` when none
is left; so does this module, so a bucket shared with s3fs or COSFS shows the same
attributes through every mount. A name is written as JSON writes it, which for any name
without ``"``, ``\\`` or a control character is the raw bytes s3fs writes.

Reading is lenient where s3fs is: a value that is not JSON is read pair by pair as s3fs's
``parse_xattrs`` does (split at commas, the name before the last colon), and a pair it
cannot read is skipped. Nothing is logged: the value may come from another tool.

Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import urllib.parse
from typing import Dict, Mapping, Optional

from cosfs.wire.errors import CosfsError

#: The user metadata key (after ``x-cos-meta-``) holding the encoded attributes.
META_XATTR = "xattr"
#: setxattr's flags (``<sys/xattr.h>``): fail if the name exists / if it does not.
XATTR_CREATE = getattr(os, "XATTR_CREATE", 1)
XATTR_REPLACE = getattr(os, "XATTR_REPLACE", 2)
#: The errno of a missing attribute (Linux: ENODATA, which ``<sys/xattr.h>`` calls ENOATTR).
ENOATTR = getattr(errno, "ENOATTR", errno.ENODATA)
#: Kept unescaped by s3fs's ``urlEncodePath`` besides letters and digits.
_SAFE = "/.-_~"


def decode(meta: Mapping[str, str]) -> Dict[str, bytes]:
    """The extended attributes ``meta`` holds (name -> value), ``{}`` when none."""
    encoded = meta.get(META_XATTR)
    if not encoded:
        return {}
    text = urllib.parse.unquote_to_bytes(encoded).decode("utf-8", "surrogateescape")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        pairs = {name: value for name, value in document.items() if isinstance(value, str)}
    else:
        pairs = _s3fs_pairs(text)
    attributes = {}
    for name, value in pairs.items():
        decoded = _base64(value)
        if name and decoded is not None:
            attributes[name] = decoded
    return attributes


def encode(attributes: Mapping[str, bytes]) -> str:
    """The ``xattr`` metadata value for ``attributes`` (``{}`` encoded when empty)."""
    names = sorted(attributes, key=lambda name: name.encode("utf-8", "surrogateescape"))
    body = ",".join(
        json.dumps(name, ensure_ascii=False) + ":" + json.dumps(base64.b64encode(attributes[name]).decode("ascii"))
        for name in names
    )
    raw = ("{" + body + "}").encode("utf-8", "surrogateescape")
    return urllib.parse.quote_from_bytes(raw, safe=_SAFE)


def with_attribute(meta: Mapping[str, str], name: str, value: bytes, flags: int, path: str) -> Dict[str, str]:
    """``meta`` with attribute ``name`` set to ``value``: EEXIST if it exists and ``flags``
    has XATTR_CREATE, ENODATA if it does not and ``flags`` has XATTR_REPLACE."""
    attributes = decode(meta)
    if flags & XATTR_CREATE and name in attributes:
        raise CosfsError(f"{path}: extended attribute {name} exists", errno.EEXIST)
    if flags & XATTR_REPLACE and name not in attributes:
        raise CosfsError(f"{path}: no extended attribute {name}", ENOATTR)
    attributes[name] = bytes(value)
    return _stored(meta, attributes)


def without_attribute(meta: Mapping[str, str], name: str, path: str) -> Dict[str, str]:
    """``meta`` without attribute ``name``; ENODATA if it has none of that name.

    The last one removed leaves ``{}``, not an absent key: the JSON API's metadata update
    merges, so a key merely left out would keep its old value there."""
    attributes = decode(meta)
    if name not in attributes:
        raise CosfsError(f"{path}: no extended attribute {name}", ENOATTR)
    del attributes[name]
    return _stored(meta, attributes)


def value_of(meta: Mapping[str, str], name: str, path: str) -> bytes:
    """The value of attribute ``name``; ENODATA if there is none."""
    if META_XATTR not in meta:  # most objects: no parsing
        raise CosfsError(f"{path}: no extended attribute {name}", ENOATTR)
    value = decode(meta).get(name)
    if value is None:
        raise CosfsError(f"{path}: no extended attribute {name}", ENOATTR)
    return value


def meta_bytes(meta: Mapping[str, str]) -> int:
    """The size COS counts against its user metadata limit: every name (after
    ``x-cos-meta-``) and value, in UTF-8, as the emulator counts them."""
    return sum(len(key.encode("utf-8", "surrogateescape")) + len(value.encode("utf-8", "surrogateescape"))
               for key, value in meta.items())


def _stored(meta: Mapping[str, str], attributes: Mapping[str, bytes]) -> Dict[str, str]:
    changed = dict(meta)
    changed[META_XATTR] = encode(attributes)
    return changed


def _s3fs_pairs(text: str) -> Dict[str, str]:
    """s3fs's ``parse_xattrs``: between the first ``{`` and the last ``}``, pairs split at
    commas, each name and value before and after its last colon, in double quotes."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return {}
    pairs = {}
    for pair in text[start + 1:end].split(","):
        name, colon, value = pair.rpartition(":")
        if not colon:
            continue
        name, value = _unquoted(name), _unquoted(value)
        if name is not None and value is not None:
            pairs[name] = value
    return pairs


def _unquoted(text: str) -> Optional[str]:
    """s3fs's ``takeout_str_dquart``: the text between the first and last double quote
    (the text itself when it has none); ``None`` when a quote is unmatched or inside."""
    first = text.find('"')
    if first < 0:
        return text
    last = text.rfind('"')
    inner = text[first + 1:last]
    if last == first or '"' in inner:
        return None
    return inner


def _base64(text: str) -> Optional[bytes]:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
