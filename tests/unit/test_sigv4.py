"""SigV4 signing and verifying, checked byte for byte against botocore as the reference signer."""

from __future__ import annotations

import datetime
import email.message
import hashlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from cosfs.wire.signing import sigv4
from cosfs.wire.signing.sigv4 import UNSIGNED_PAYLOAD, SigV4Error

FROZEN = datetime.datetime(2024, 1, 1, 12, 0, 0)
AMZ_DATE = "20240101T120000Z"
NOW = int(FROZEN.replace(tzinfo=datetime.timezone.utc).timestamp())
AK, SK, TOKEN = "AKIDexampleAccessKey", "exampleSecretKey/with+chars", "session-token/abc=="
REGION = "ap-guangzhou"
HOST = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
KEYS = {AK: SK, "AKIDother": "otherSecret"}
TRAILER = {"checksum": {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}}


@dataclass
class Case:
    """One request: ``path`` as sent on the wire, ``params`` decoded."""

    name: str
    method: str
    path: str
    params: List[Tuple[str, str]] = field(default_factory=list)
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    token: Optional[str] = None
    host: str = HOST


# botocore's serializer quotes a greedy {Key+} label this way before the request is signed.
UNICODE_KEY_PATH = "/" + percent_encode("dir a/ü b+c.txt", safe="/~")
LIST_PARAMS = [("prefix", "dir one/ü"), ("delimiter", "/"), ("marker", "dir one/é b+")]
PUT_HEADERS = {"Content-Type": "text/plain", "x-cos-meta-note": "  a   b  ", "x-amz-meta-n": "1"}
CASES = [
    Case("list", "GET", "/", LIST_PARAMS),
    Case("put-unicode-key", "PUT", UNICODE_KEY_PATH, headers=PUT_HEADERS, body=b"hello world"),
    Case("initiate-multipart", "POST", "/big.bin", [("uploads", "")],
         {"Content-Type": "application/octet-stream"}),
    Case("upload-part", "PUT", "/big.bin", [("partNumber", "3"), ("uploadId", "17000ab~c")],
         body=b"x" * 100),
    Case("session-token", "GET", "/obj", headers={"Range": "bytes=0-9"}, token=TOKEN),
    Case("head", "HEAD", "/obj"),
    Case("port-in-host", "GET", "/", [("list-type", "2")], host="127.0.0.1:9000"),
]
PUT = CASES[1]
# Presigned URLs sign only host, so these cases carry no headers and no body.
PRESIGN_CASES = [Case(c.name, c.method, c.path, c.params, token=c.token, host=c.host)
                 for c in CASES]


def botocore_signed(case: Case, **context) -> AWSRequest:
    """``case`` signed by botocore's S3SigV4Auth at FROZEN."""
    request = AWSRequest(
        method=case.method, url=f"http://{case.host}{case.path}", headers=dict(case.headers),
        data=case.body, params=list(case.params),
    )
    request.context.update(context)
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        S3SigV4Auth(Credentials(AK, SK, case.token), "s3", REGION).add_auth(request)
    return request


def botocore_presigned(case: Case, expires: int = 3600) -> str:
    """``case`` presigned by botocore's S3SigV4QueryAuth at FROZEN; the full URL."""
    url = f"http://{case.host}{case.path}"
    request = AWSRequest(method=case.method, url=url, params=list(case.params))
    signer = S3SigV4QueryAuth(Credentials(AK, SK, case.token), "s3", REGION, expires=expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        signer.add_auth(request)
    return request.url


def received_headers(case: Case, **context) -> Dict[str, str]:
    """What a server sees of ``case`` signed by botocore: its headers, the Host the HTTP layer
    adds, and unsigned extras."""
    signed = dict(botocore_signed(case, **context).headers)
    return {**signed, "Host": case.host, "User-Agent": "Boto3/1.x", "Content-Length": "11"}


def presigned_request(url: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``(path as sent, decoded params)`` of a presigned URL, as a server parses them."""
    parts = urlsplit(url)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def our_sign(case: Case, payload_hash: str) -> Dict[str, str]:
    headers = {**case.headers, "Host": case.host, "User-Agent": "cosfs"}
    return sigv4.sign_headers(
        AK, SK, REGION, case.method, case.path, case.params, headers, payload_hash, AMZ_DATE,
        session_token=case.token,
    )


def sign_get(headers: Dict[str, str], path: str = "/") -> Dict[str, str]:
    return sigv4.sign_headers(AK, SK, REGION, "GET", path, [], headers, UNSIGNED_PAYLOAD, AMZ_DATE)


def refusal(method: str, path: str, params, headers, secret_keys=KEYS, now=NOW) -> SigV4Error:
    """The error ``verify`` raises for this request (fails the test if it accepts)."""
    with pytest.raises(SigV4Error) as caught:
        sigv4.verify(method, path, params, headers, secret_keys, now)
    return caught.value


def put_refusal(headers: Dict[str, str], **changes) -> SigV4Error:
    """``refusal`` for PUT with ``headers`` and any argument of ``refusal`` changed."""
    arguments = dict(method=PUT.method, path=PUT.path, params=PUT.params, headers=headers)
    return refusal(**{**arguments, **changes})


def presigned_refusal(case: Case, url: str, **changes) -> SigV4Error:
    path, params = presigned_request(url)
    arguments = dict(method=case.method, path=path, params=params, headers={"Host": case.host})
    return refusal(**{**arguments, **changes})


# --- signing matches botocore ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_sign_headers_matches_botocore(case: Case) -> None:
    reference = botocore_signed(case)

    ours = our_sign(case, sigv4.payload_sha256(case.body))

    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours["x-amz-date"] == reference.headers["X-Amz-Date"] == AMZ_DATE
    assert ours["x-amz-content-sha256"] == reference.headers["X-Amz-Content-SHA256"]
    assert ours.get("x-amz-security-token") == reference.headers.get("X-Amz-Security-Token")


@pytest.mark.parametrize(
    "payload_hash, context",
    [
        (UNSIGNED_PAYLOAD, {"client_config": Config(s3={"payload_signing_enabled": False})}),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", TRAILER),
    ],
)
def test_sign_headers_matches_botocore_for_unsigned_payload(payload_hash: str, context) -> None:
    reference = botocore_signed(PUT, **context)

    ours = our_sign(PUT, payload_hash)

    assert reference.headers["X-Amz-Content-SHA256"] == payload_hash
    assert ours["Authorization"] == reference.headers["Authorization"]


@pytest.mark.parametrize("case", PRESIGN_CASES, ids=lambda c: c.name)
def test_presign_query_matches_botocore(case: Case) -> None:
    _, reference_params = presigned_request(botocore_presigned(case))

    ours = sigv4.presign_query(
        AK, SK, REGION, case.method, case.path, case.params, case.host, AMZ_DATE, 3600,
        session_token=case.token,
    )

    assert reference_params[-len(ours):] == ours
    assert reference_params[: -len(ours)] == case.params


def test_repeated_header_is_signed_as_values_joined_in_order() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/obj")
    headers = email.message.Message()
    headers["Host"] = HOST
    for value in ("one", " two  three "):
        request.headers["x-amz-meta-tag"] = value  # HTTPHeaders appends, like email.message
        headers["x-amz-meta-tag"] = value
    with mock.patch("botocore.auth.get_current_datetime", return_value=FROZEN):
        S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(request)

    ours = sigv4.sign_headers(
        AK, SK, REGION, "GET", "/obj", [], headers, sigv4.payload_sha256(b""), AMZ_DATE
    )

    assert ours["Authorization"] == request.headers["Authorization"]


def test_empty_path_is_signed_as_slash() -> None:
    assert sign_get({"Host": HOST}, path="") == sign_get({"Host": HOST}, path="/")


def test_sign_headers_replaces_the_callers_amz_headers() -> None:
    stale = {"Host": HOST, "X-Amz-Date": "19700101T000000Z", "X-Amz-Content-SHA256": "stale"}

    ours = sign_get(stale)

    assert ours == sign_get({"Host": HOST})
    assert sigv4.verify("GET", "/", [], {"Host": HOST, **ours}, KEYS, NOW) == AK


def test_sign_headers_requires_host() -> None:
    with pytest.raises(ValueError):
        sign_get({})


def test_signed_header_rule() -> None:
    signed = ["Host", "content-type", "Content-MD5", "range", "x-amz-meta-a", "X-Cos-Acl"]
    unsigned = ["user-agent", "content-length", "expect", "date", "connection", "authorization"]

    assert all(sigv4.is_signed_header(name) for name in signed)
    assert not any(sigv4.is_signed_header(name) for name in unsigned)


def test_canonical_query_encodes_space_as_percent_20_and_sorts_by_encoded_name() -> None:
    pairs = [("b", "x y"), ("a", "2"), ("a", "1"), ("uploads", ""), ("ü", "+")]

    assert sigv4.canonical_query(pairs) == "%C3%BC=%2B&a=1&a=2&b=x%20y&uploads="


def test_payload_sha256_is_hex_sha256() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    assert sigv4.payload_sha256(b"") == empty
    assert sigv4.payload_sha256(b"abc") == hashlib.sha256(b"abc").hexdigest()


# --- verify accepts what botocore signs ------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_verify_accepts_botocore_signed_request(case: Case) -> None:
    headers = received_headers(case)

    assert sigv4.verify(case.method, case.path, case.params, headers, KEYS, NOW) == AK


@pytest.mark.parametrize("case", PRESIGN_CASES, ids=lambda c: c.name)
def test_verify_accepts_botocore_presigned_url(case: Case) -> None:
    path, params = presigned_request(botocore_presigned(case))
    headers = {"Host": case.host, "User-Agent": "curl"}

    assert sigv4.verify(case.method, path, params, headers, KEYS, NOW) == AK


def test_verify_accepts_streaming_payload_hash_literally() -> None:
    headers = received_headers(PUT, **TRAILER)

    assert sigv4.verify(PUT.method, PUT.path, [], headers, KEYS, NOW) == AK


def test_verify_accepts_http_message_headers() -> None:
    headers = email.message.Message()
    for name, value in [*PUT.headers.items(), ("Host", HOST), *our_sign(PUT, "x").items()]:
        headers[name] = value

    assert sigv4.verify(PUT.method, PUT.path, [], headers, KEYS, NOW) == AK


@pytest.mark.parametrize("offset", [-14 * 60, 14 * 60])
def test_verify_accepts_time_within_fifteen_minutes(offset: int) -> None:
    headers = received_headers(PUT)

    assert sigv4.verify(PUT.method, PUT.path, [], headers, KEYS, NOW + offset) == AK


def test_presigned_url_is_valid_until_its_last_second() -> None:
    case = PRESIGN_CASES[4]
    path, params = presigned_request(botocore_presigned(case))

    assert sigv4.verify(case.method, path, params, {"Host": HOST}, KEYS, NOW + 3600) == AK


# --- verify refuses ---------------------------------------------------------------------------


def test_verify_rejects_wrong_secret() -> None:
    error = put_refusal(received_headers(PUT), secret_keys={AK: "not-the-secret"})

    assert error.code == "SignatureDoesNotMatch"


def test_verify_rejects_tampered_path() -> None:
    error = put_refusal(received_headers(PUT), path=PUT.path.replace("txt", "bin"))

    assert error.code == "SignatureDoesNotMatch"


def test_verify_rejects_added_query_parameter() -> None:
    assert put_refusal(received_headers(PUT), params=[("acl", "")]).code == "SignatureDoesNotMatch"


def test_verify_rejects_tampered_signed_header() -> None:
    headers = {**received_headers(PUT), "x-amz-meta-n": "2"}

    assert put_refusal(headers).code == "SignatureDoesNotMatch"


def test_verify_rejects_missing_signed_header() -> None:
    headers = received_headers(PUT)
    del headers["Content-Type"]

    error = put_refusal(headers)

    assert error.code == "SignatureDoesNotMatch"
    assert error.message == "signed header content-type is missing"


def test_verify_rejects_unknown_access_key() -> None:
    error = put_refusal(received_headers(PUT), secret_keys={"AKIDother": SK})

    assert error.code == "InvalidAccessKeyId"


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_verify_rejects_skewed_time(offset: int) -> None:
    assert put_refusal(received_headers(PUT), now=NOW + offset).code == "RequestTimeTooSkewed"


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=x",
        "AWS4-ECDSA-P256-SHA256 Credential=a, SignedHeaders=host, Signature=0",
        "",
    ],
)
def test_verify_rejects_malformed_authorization(authorization: str) -> None:
    headers = {**received_headers(PUT), "Authorization": authorization}

    assert put_refusal(headers).code == "AccessDenied"


def test_verify_rejects_credential_date_other_than_request_date() -> None:
    headers = received_headers(PUT)
    headers["Authorization"] = headers["Authorization"].replace("/20240101/", "/20231231/")

    assert put_refusal(headers).code == "AccessDenied"


def test_verify_rejects_signature_without_host() -> None:
    headers = received_headers(PUT)
    authorization = headers["Authorization"]
    headers["Authorization"] = authorization.replace("=content-type;host;", "=content-type;")
    assert headers["Authorization"] != authorization

    error = put_refusal(headers)

    assert (error.code, error.message) == ("AccessDenied", "SignedHeaders must include host")


def test_verify_rejects_header_form_without_payload_hash() -> None:
    headers = received_headers(PUT)
    del headers["X-Amz-Content-SHA256"]

    assert put_refusal(headers).code == "AccessDenied"


def test_verify_refuses_http_date_header_in_place_of_x_amz_date() -> None:
    case = Case("dated", "GET", "/obj", headers={"Date": "whatever"})
    headers = received_headers(case)
    assert "X-Amz-Date" not in headers

    assert refusal(case.method, case.path, [], headers).code == "AccessDenied"


def test_verify_rejects_request_without_signature() -> None:
    assert refusal("GET", "/", [], {"Host": HOST}).code == "AccessDenied"


def test_verify_rejects_header_and_query_signature_together() -> None:
    path, params = presigned_request(botocore_presigned(PRESIGN_CASES[0]))

    assert refusal("GET", path, params, received_headers(CASES[0])).code == "AccessDenied"


def test_verify_rejects_expired_presigned_url() -> None:
    case = PRESIGN_CASES[4]

    error = presigned_refusal(case, botocore_presigned(case), now=NOW + 3601)

    assert (error.code, error.message) == ("AccessDenied", "Request has expired")


def test_verify_rejects_presigned_url_dated_in_the_future() -> None:
    case = PRESIGN_CASES[5]

    error = presigned_refusal(case, botocore_presigned(case), now=NOW - 16 * 60)

    assert (error.code, error.message) == ("AccessDenied", "Request is not yet valid")


def test_verify_rejects_presigned_expiry_beyond_a_week() -> None:
    case = PRESIGN_CASES[5]

    assert presigned_refusal(case, botocore_presigned(case, expires=604801)).code == "AccessDenied"


@pytest.mark.parametrize(
    "change, code",
    [
        ({"path": "/other"}, "SignatureDoesNotMatch"),
        ({"secret_keys": {AK: "wrong"}}, "SignatureDoesNotMatch"),
        ({"secret_keys": {"AKIDother": SK}}, "InvalidAccessKeyId"),
    ],
)
def test_verify_rejects_bad_presigned_url(change: dict, code: str) -> None:
    case = PRESIGN_CASES[5]

    assert presigned_refusal(case, botocore_presigned(case), **change).code == code


@pytest.mark.parametrize(
    "old, new", [("X-Amz-Expires=3600", "X-Amz-Expires=7200"), ("prefix=", "prefix=x")]
)
def test_verify_rejects_tampered_presigned_query(old: str, new: str) -> None:
    case = PRESIGN_CASES[0]
    url = botocore_presigned(case)
    assert old in url

    assert presigned_refusal(case, url.replace(old, new)).code == "SignatureDoesNotMatch"


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, params, expected",
    [
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=a"}, [], True),
        ({"authorization": "AWS4-HMAC-SHA256 Credential=a"}, [], True),
        ({}, [("X-Amz-Algorithm", "AWS4-HMAC-SHA256")], True),
        ({"Authorization": "q-sign-algorithm=sha1&q-ak=a"}, [], False),
        ({}, [("q-sign-algorithm", "sha1")], False),
        ({"Host": HOST}, [("prefix", "a")], False),
    ],
)
def test_is_sigv4(headers: dict, params: list, expected: bool) -> None:
    assert sigv4.is_sigv4(headers, params) is expected
