"""The emulator's own JSON API parsers: multipart forms and the per-slice SHA-1 list.

They are the server's code, apart from the client's (``cosfs.store.json_codec`` only
encodes), so each is checked against what the official SDKs send and against the client's
encoder.
"""

from __future__ import annotations

import pytest

from cosfs.emulator.forms import decode_form
from cosfs.emulator.slice_hashes import intermediate_sha1
from cosfs.store import json_codec


def test_intermediate_sha1_reproduces_the_sdk_vector():
    data = bytes(i % 251 for i in range(2621440))

    parts = intermediate_sha1(data, 1048576)

    assert parts == [
        {"offset": 0, "datalen": 1048576, "datasha": "463935c7eea4ca2705d0f481ecedb31f4d0f3a96"},
        {"offset": 1048576, "datalen": 1048576, "datasha": "657c72d675f1e792607e5c0a7405f66cbdb8c290"},
        {"offset": 2097152, "datalen": 524288, "datasha": "d08b7e21afb7bc45b7bc7e265d812094252a14ac"},
    ]


def test_decode_form_round_trips_encode_form():
    payload = b"\r\n--not-the-boundary\r\n\x00\xff" * 10
    fields = [("op", "upload_slice_data"), ("session", "s1"), ("offset", "0"), ("filecontent", payload)]

    content_type, body = json_codec.encode_form(fields)

    assert decode_form(content_type, body) == {
        "op": b"upload_slice_data", "session": b"s1", "offset": b"0", "filecontent": payload,
    }
    assert b'name="filecontent"; filename="filecontent"\r\nContent-Type: application/octet-stream' in body


def test_decode_form_reads_the_sdk_file_part_only_body():
    boundary = "ddd73bc3183670d307c539f81b5c5593"
    parts = [("op", b"upload"), ("biz_attr", b""), ("sha", b"2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"),
             ("insertOnly", b"0"), ("filecontent", b"hello world")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n\r\n'.encode()
        + value + b"\r\n"
        for name, value in parts
    ) + f"--{boundary}--\r\n".encode()

    fields = decode_form(f"multipart/form-data; boundary={boundary}", body)

    assert fields == dict(parts)


def test_decode_form_refuses_what_is_not_a_form():
    with pytest.raises(ValueError):
        decode_form("application/json", b"{}")
    unclosed = b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1'
    with pytest.raises(ValueError):
        decode_form("multipart/form-data; boundary=x", unclosed)
