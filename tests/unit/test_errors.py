"""The one errno table: XML codes, JSON codes, HTTP statuses, unknown codes."""

from __future__ import annotations

import errno
import logging

import pytest

from cosfs.wire.errors import CosError, errno_for, is_transient


@pytest.mark.parametrize(
    "code, status, expected",
    [
        ("NoSuchKey", 404, errno.ENOENT),
        ("NoSuchResource", 404, errno.ENOENT),
        ("-197", 400, errno.ENOENT),
        ("-6101", 400, errno.ENOENT),
        ("AccessDenied", 403, errno.EACCES),
        ("SignatureDoesNotMatch", 403, errno.EACCES),
        ("-97", 400, errno.EACCES),
        ("-177", 400, errno.EEXIST),
        ("-173", 400, errno.ENOTEMPTY),
        ("BucketNotEmpty", 409, errno.ENOTEMPTY),
        ("EntityTooLarge", 400, errno.EFBIG),
        ("-285", 400, errno.EFBIG),
        ("KeyTooLong", 400, errno.ENAMETOOLONG),
        ("MethodNotAllowed", 405, errno.ENOTSUP),
        ("Timeout", 0, errno.ETIMEDOUT),
        ("", 404, errno.ENOENT),
        ("", 500, errno.EIO),
    ],
)
def test_codes_map_to_errno(code, status, expected):
    assert errno_for(code, status) == expected


def test_unknown_code_is_eio_and_logged_once_with_request_id(caplog):
    with caplog.at_level(logging.WARNING, logger="cosfs.wire.errors"):
        assert errno_for("BrandNewCode", 400, "req-1") == errno.EINVAL
        assert errno_for("BrandNewCode", 400, "req-2") == errno.EINVAL
        assert errno_for("OtherNewCode", 0, "req-3") == errno.EIO
    messages = [r.getMessage() for r in caplog.records]
    assert sum("BrandNewCode" in m for m in messages) == 1
    assert any("req-1" in m for m in messages)


@pytest.mark.parametrize(
    "code, status, transient",
    [("SlowDown", 503, True), ("", 429, True), ("InternalError", 200, True), ("-71", 400, True),
     ("NoSuchKey", 404, False), ("-177", 400, False), ("ConnectionError", 0, True)],
)
def test_transient_classification(code, status, transient):
    assert is_transient(code, status) is transient


def test_cos_error_message_names_operation_key_code_and_request_id():
    error = CosError("The specified key does not exist.", status=404, code="NoSuchKey",
                     request_id="NjU", operation="stat", key="a.txt")
    assert str(error) == "stat 'a.txt': NoSuchKey: The specified key does not exist. (request id NjU)"
    assert error.errno == errno.ENOENT and not error.transient
