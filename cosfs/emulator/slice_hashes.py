"""The JSON API's per-slice SHA-1 list (``uploadparts``), as the server checks it.

A slice upload may carry, for each slice, the SHA-1 chaining state after it: COS compares
them with the data it received. hashlib does not expose the chaining state, so this hashes
in pure Python (about 1 MB/s); cosfs does not send the list (COS does not require it), and
the emulator checks it when a client (an official SDK) sends one.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Dict, List, Tuple

_SHA1_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)
_MASK = 0xFFFFFFFF
_BLOCK = struct.Struct(">16I")


def intermediate_sha1(data: bytes, slice_size: int) -> List[Dict[str, Any]]:
    """The ``uploadparts`` list of ``data`` cut into ``slice_size`` slices.

    Each non-final slice carries the SHA-1 chaining state after it (no padding), each word
    little-endian; the final one carries the real SHA-1 of the whole file.
    """
    if slice_size <= 0 or slice_size % 64:
        raise ValueError(f"slice size {slice_size} is not a positive multiple of 64 bytes")
    parts: List[Dict[str, Any]] = []
    state = _SHA1_INIT
    for offset in range(0, len(data), slice_size):
        end = min(offset + slice_size, len(data))
        if end == len(data):
            datasha = hashlib.sha1(data).hexdigest()
        else:
            state = _sha1_compress(state, data, offset, end)
            datasha = struct.pack("<5I", *state).hex()
        parts.append({"offset": offset, "datalen": end - offset, "datasha": datasha})
    return parts


def _sha1_compress(state: Tuple[int, ...], data: bytes, start: int, end: int) -> Tuple[int, ...]:
    """SHA-1's compression function over the 64-byte blocks of ``data[start:end]``."""
    h0, h1, h2, h3, h4 = state
    for pos in range(start, end, 64):
        w = list(_BLOCK.unpack_from(data, pos))
        for i in range(16, 80):
            x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w.append(((x << 1) | (x >> 31)) & _MASK)
        a, b, c, d, e = h0, h1, h2, h3, h4
        for i in range(0, 20):
            t = (((a << 5) | (a >> 27)) + (d ^ (b & (c ^ d))) + e + 0x5A827999 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(20, 40):
            t = (((a << 5) | (a >> 27)) + (b ^ c ^ d) + e + 0x6ED9EBA1 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(40, 60):
            t = (((a << 5) | (a >> 27)) + ((b & c) | (d & (b | c))) + e + 0x8F1BBCDC + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        for i in range(60, 80):
            t = (((a << 5) | (a >> 27)) + (b ^ c ^ d) + e + 0xCA62C1D6 + w[i]) & _MASK
            e, d, c, b, a = d, c, ((b << 30) | (b >> 2)) & _MASK, a, t
        h0, h1, h2 = (h0 + a) & _MASK, (h1 + b) & _MASK, (h2 + c) & _MASK
        h3, h4 = (h3 + d) & _MASK, (h4 + e) & _MASK
    return (h0, h1, h2, h3, h4)
