"""``redact`` on real-looking log lines, and the filter every cosfs log handler carries.

The lines are made with cosfs's own signing code and encoders, so they carry real
signatures in the exact form they take on the wire: the tests assert that the signature,
token or key is gone and that the rest of the line (what was requested, the status) stays.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import socket
from urllib.parse import quote

import pytest

from cosfs.command.log import REDACTION, RedactingFilter, RememberingProvider, setup_logging
from cosfs.wire.credentials import Credentials, StaticProvider
from cosfs.wire.redact import REDACTED, redact
from cosfs.wire.signing import jsonsign, qsign, sigv4
from cosfs.wire.transport import encode_query

SECRET_ID = "AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE0000"
SECRET_KEY = "EXAMPLEKEYexamplekeyEXAMPLEKEY00"
TOKEN = "sts-token+with/base64=chars" + "x" * 40
NOW = 1_700_000_000
AMZ_DATE = "20231114T221320Z"


def json_download_line() -> "tuple[str, str]":
    """urllib3's debug line for a JSON API download, and the ``sign`` value in it."""
    sign = jsonsign.sign_download("1250000000", "examplebucket", SECRET_ID, SECRET_KEY, NOW + 600, NOW, 7,
                                  "/dir/sec.txt")
    line = (f'http://examplebucket-1250000000.file.myqcloud.com:80 "GET /dir/sec.txt?'
            f'{encode_query([("sign", sign)])} HTTP/1.1" 206 10')
    return line, sign


def q_sign() -> str:
    return qsign.authorization(SECRET_ID, SECRET_KEY, "GET", "/dir/sec.txt", [], {"host": "h"}, NOW, NOW + 600)


def test_json_download_url_loses_its_sign_but_keeps_the_request():
    line, sign = json_download_line()

    cleaned = redact(line)

    assert sign not in cleaned and quote(sign, safe="") not in cleaned
    assert f"GET /dir/sec.txt?sign={REDACTED} HTTP/1.1\" 206 10" in cleaned


def test_json_api_authorization_header_is_redacted_whole():
    value = jsonsign.sign_multi("1250000000", "examplebucket", SECRET_ID, SECRET_KEY, NOW + 600, NOW, 7, "/d/")

    assert redact(f"Authorization: {value}") == f"Authorization: {REDACTED}"


def test_xml_q_sign_authorization_header_line_and_dict():
    auth = q_sign()
    signature = qsign.parse_authorization(auth)["q-signature"]

    header_line = redact(f"Authorization: {auth}\nHost: h")
    host = "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
    as_dict = redact(repr({"Authorization": auth, "Host": host}))

    assert header_line == f"Authorization: {REDACTED}\nHost: h"
    assert signature not in as_dict
    assert as_dict == repr({"Authorization": REDACTED, "Host": host})


def test_xml_q_sign_in_a_presigned_url_plain_and_as_the_sdk_encodes_it():
    auth = q_sign()
    signature = qsign.parse_authorization(auth)["q-signature"]
    plain = f"https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/sec.txt?{auth}"
    sdk = f"https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/sec.txt?sign={quote(auth, safe='')}"

    for url in (plain, sdk):
        cleaned = redact(url)
        assert signature not in cleaned and SECRET_ID not in cleaned, cleaned
        assert cleaned.startswith("https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/sec.txt?")
    assert "q-sign-time=1700000000;1700000600" in redact(plain)


def test_sigv4_authorization_header_with_its_spaces_and_commas():
    headers = sigv4.sign_headers(SECRET_ID, SECRET_KEY, "ap-guangzhou", "PUT", "/b/k", [],
                                 {"host": "127.0.0.1:9000"}, sigv4.UNSIGNED_PAYLOAD, AMZ_DATE, session_token=TOKEN)
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    line = "send: " + "\r\n".join(f"{name}: {value}" for name, value in headers.items())

    cleaned = redact(line)

    assert signature not in cleaned and TOKEN not in cleaned and SECRET_ID not in cleaned
    assert f"Authorization: {REDACTED}" in cleaned and f"x-amz-security-token: {REDACTED}" in cleaned
    assert f"x-amz-date: {AMZ_DATE}" in cleaned


def test_sigv4_presigned_url():
    pairs = sigv4.presign_query(SECRET_ID, SECRET_KEY, "ap-guangzhou", "GET", "/b/k", [], "127.0.0.1:9000",
                                AMZ_DATE, 600, session_token=TOKEN)
    values = dict(pairs)
    url = f'http://127.0.0.1:9000 "GET /b/k?{encode_query(pairs)} HTTP/1.1" 200 3'

    cleaned = redact(url)

    for name in ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token"):
        assert values[name] not in cleaned and quote(values[name], safe="") not in cleaned
        assert f"{name}={REDACTED}" in cleaned
    assert f"X-Amz-Date={AMZ_DATE}" in cleaned and cleaned.endswith('HTTP/1.1" 200 3')


@pytest.mark.parametrize("text", [
    f"x-cos-security-token: {TOKEN}",
    f"{{'x-cos-security-token': '{TOKEN}', 'Host': 'h'}}",
    f"/k?x-cos-security-token={quote(TOKEN, safe='')}&versionId=1",
    f"token={TOKEN}",
    f"COSAccessToken={TOKEN}",
])
def test_session_tokens_in_headers_queries_and_key_value_lines(text):
    cleaned = redact(text)

    assert TOKEN not in cleaned and quote(TOKEN, safe="") not in cleaned
    assert REDACTED in cleaned


def test_a_signed_url_inside_another_url_is_redacted_too():
    line, sign = json_download_line()
    inner = line.split()[2]
    outer = f"/redirect?to={quote('http://h' + inner, safe='')}"

    cleaned = redact(outer)

    assert quote(quote(sign, safe=""), safe="") not in cleaned and REDACTED in cleaned


def test_known_secrets_are_removed_verbatim_and_percent_encoded():
    key = "abc+/def=ghijkl"
    text = f"a {SECRET_KEY} b {quote(key, safe='')} c {key} d"

    cleaned = redact(text, [SECRET_KEY, key, "", None or "short"])

    assert cleaned == f"a {REDACTED} b {REDACTED} c {REDACTED} d"


def test_short_known_values_are_not_searched_for():
    assert redact("open /a/abc", ["abc"]) == "open /a/abc"


@pytest.mark.parametrize("text", [
    "uploaded 'dir/sign.txt': 12 bytes, 1 part(s), 0.1 s",
    "cannot sign: clock skew of 900 s",
    "HEAD stat 'tokens/list' -> 200 in 3 ms (request id NjU1)",
    'http://127.0.0.1:9000 "GET /examplebucket-1250000000/?prefix=a%2F&delimiter=%2F&max-keys=1 HTTP/1.1" 200 2',
    "Authorization failed for examplebucket-1250000000",
])
def test_ordinary_lines_are_left_alone(text):
    assert redact(text) == text


def test_redacting_twice_changes_nothing_more():
    line, _ = json_download_line()
    auth = q_sign()
    text = f"{line}\nAuthorization: {auth}\n{{'x-cos-security-token': '{TOKEN}'}} {SECRET_KEY}"

    once = redact(text, [SECRET_KEY])

    assert redact(once, [SECRET_KEY]) == once


# --- the logging filter ----------------------------------------------------------------------


@pytest.fixture
def captured():
    """A handler like setup_logging's, with its own RedactingFilter, on a private logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    redaction = RedactingFilter()
    handler.addFilter(redaction)
    logger = logging.getLogger("test_redact.library")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield logger, redaction, stream
    finally:
        logger.removeHandler(handler)


def test_the_filter_redacts_the_rendered_message_arguments_included(captured):
    logger, _, stream = captured
    line, sign = json_download_line()
    scheme_host, request = line.split(" ", 1)

    logger.debug('%s "%s %s %s" %s %s', scheme_host, "GET", request.split()[1], "HTTP/1.1", 206, 10)

    output = stream.getvalue()
    assert quote(sign, safe="") not in output and f"?sign={REDACTED} HTTP/1.1" in output


def test_the_filter_redacts_exception_text_and_stack(captured):
    logger, _, stream = captured
    line, sign = json_download_line()
    try:
        raise ConnectionError(f"Max retries exceeded with url: {line.split()[2]}")
    except ConnectionError:
        logger.exception("read failed")
    logger.debug("here", stack_info=True)

    output = stream.getvalue()
    assert quote(sign, safe="") not in output
    assert f"sign={REDACTED}" in output and "Traceback" in output and "Stack (most recent call last)" in output


def test_the_filter_removes_the_credentials_a_provider_hands_out(captured):
    logger, redaction, stream = captured
    provider = RememberingProvider(StaticProvider(Credentials(SECRET_ID, SECRET_KEY, TOKEN), "test"), redaction)

    logger.warning("a message quoting %s and %s", SECRET_KEY, TOKEN)

    assert provider.get().secret_key == SECRET_KEY and provider.source == "test"
    assert SECRET_KEY not in stream.getvalue() and TOKEN not in stream.getvalue()


def test_an_unformattable_record_does_not_print_its_arguments(captured):
    logger, _, stream = captured

    logger.warning("two %s %s", f"sign={SECRET_KEY}")

    assert SECRET_KEY not in stream.getvalue() and "unformattable log message" in stream.getvalue()


@pytest.fixture
def restored_root_logger():
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)


def fake_syslog(tmp_path, monkeypatch) -> socket.socket:
    """A datagram socket standing in for /dev/log, and SysLogHandler pointed at it."""
    socket_path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(socket_path)
    server.settimeout(5)

    class SocketSysLogHandler(logging.handlers.SysLogHandler):
        def __init__(self, address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_USER):
            super().__init__(address=socket_path, facility=facility)

    monkeypatch.setattr(logging.handlers, "SysLogHandler", SocketSysLogHandler)
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda path: path == "/dev/log" or real_exists(path))
    return server


@pytest.mark.parametrize("where", ["stderr", "logfile", "syslog"])
def test_every_handler_setup_logging_makes_redacts_library_records(where, tmp_path, monkeypatch, capsys,
                                                                  restored_root_logger):
    """urllib3's request line, as it logs it (format and arguments), comes out redacted, on
    stderr (foreground), in a logfile and to syslog (a socket standing in for /dev/log)."""
    line, sign = json_download_line()
    scheme_host, request = line.split(" ", 1)
    logfile = tmp_path / "cosfs.log"
    syslog = fake_syslog(tmp_path, monkeypatch) if where == "syslog" else None
    setup_logging("debug", foreground=where == "stderr", logfile=str(logfile) if where == "logfile" else None)

    logging.getLogger("urllib3.connectionpool").debug('%s "%s %s %s" %s %s', scheme_host, "GET",
                                                      request.split()[1], "HTTP/1.1", 206, 10)

    assert [REDACTION in handler.filters for handler in restored_root_logger.handlers] == [True]
    if where == "stderr":
        output = capsys.readouterr().err
    elif where == "logfile":
        output = logfile.read_text()
    else:
        output = syslog.recv(65536).decode()
        syslog.close()
    assert f"?sign={REDACTED} HTTP/1.1" in output and quote(sign, safe="") not in output
