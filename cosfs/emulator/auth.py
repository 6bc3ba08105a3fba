"""Who signed a request: COS q-sign, AWS SigV4 and JSON API signatures, checked as COS does.

The verification itself is cosfs's own signing code (``cosfs.wire.signing``), the same code whose
output matches Tencent's SDK vectors; this module only decides which scheme a request uses,
finds the key, checks the session token of temporary credentials and remembers used once
signatures (a replay gets -77).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional

from cosfs.emulator.protocol import EmulatorError, EmuRequest
from cosfs.wire.signing import jsonsign, qsign, sigv4


@dataclass(frozen=True)
class Principal:
    """A key pair the server accepts; ``token`` is set for temporary credentials."""

    secret_id: str
    secret_key: str
    token: Optional[str] = None


class JsonAuthError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Authenticator:
    """Checks signatures against the configured principals at the server's clock."""

    def __init__(
        self,
        principals: Iterable[Principal],
        clock: Callable[[], float],
        *,
        no_auth: bool = False,
        public_read: bool = False,
        replay_memory: int = 100_000,
    ) -> None:
        self.principals: Dict[str, Principal] = {p.secret_id: p for p in principals}
        self.clock = clock
        self.no_auth = no_auth
        self.public_read = public_read
        self._used_once: "OrderedDict[str, None]" = OrderedDict()
        self._replay_memory = replay_memory
        self._lock = threading.Lock()

    def _keys(self) -> Dict[str, str]:
        return {sid: p.secret_key for sid, p in self.principals.items()}

    # --- XML API ------------------------------------------------------------------------

    def check_xml(self, request: EmuRequest, sign_paths: List[str]) -> str:
        """The SecretId that signed ``request`` ('' for an allowed anonymous read).

        ``sign_paths`` are the decoded paths a client may have signed (virtual-hosted: the
        key; path-style: with and without the bucket segment).
        """
        if self.no_auth:
            return ""
        now = int(self.clock())
        authorization = request.headers.get("authorization", "")
        if sigv4.is_sigv4(request.headers, request.params):
            try:
                signer = sigv4.verify(request.method, request.raw_path, request.params,
                                      request.headers, self._keys(), now)
            except sigv4.SigV4Error as exc:
                raise EmulatorError(403, exc.code, exc.message) from None
            self._check_token(signer, request.headers.get("x-amz-security-token")
                              or request.headers.get("x-cos-security-token") or request.param("X-Amz-Security-Token"))
            return signer
        if authorization.startswith("q-sign-algorithm") or request.has_param("q-sign-algorithm"):
            return self._check_qsign(request, sign_paths, now)
        if self.public_read and request.method in ("GET", "HEAD"):
            return ""
        raise EmulatorError(403, "AccessDenied", "Access Denied: the request is not signed")

    def _check_qsign(self, request: EmuRequest, sign_paths: List[str], now: int) -> str:
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("q-sign-algorithm"):
            fields = qsign.parse_authorization(authorization)
            params = request.params
        else:
            fields = {k: v for k, v in request.params if k.startswith("q-")}
            params = [(k, v) for k, v in request.params if not k.startswith("q-")]
        principal = self.principals.get(fields.get("q-ak", ""))
        if principal is None:
            raise EmulatorError(403, "InvalidAccessKeyId", "The SecretId does not exist")
        error: Optional[qsign.VerifyError] = None
        for path in sign_paths:
            try:
                qsign.verify(fields, principal.secret_key, request.method, path, params, request.headers, now)
            except qsign.VerifyError as exc:
                error = exc
                continue
            self._check_token(principal.secret_id, request.headers.get("x-cos-security-token")
                              or request.param("x-cos-security-token"))
            return principal.secret_id
        assert error is not None
        raise EmulatorError(403, error.code, error.message)

    def _check_token(self, secret_id: str, token: Optional[str]) -> None:
        expected = self.principals[secret_id].token
        if expected is not None and token != expected:
            raise EmulatorError(403, "InvalidAccessKeyId", "temporary credentials need their security token")
        if expected is None and token:
            raise EmulatorError(403, "InvalidToken", "a security token was sent with permanent credentials")

    # --- JSON API -----------------------------------------------------------------------

    def check_json(self, request: EmuRequest, appid: str, bucket_name: str, target_fileid: str) -> str:
        """The SecretId behind a JSON API signature bound to ``target_fileid`` (encoded)."""
        if self.no_auth:
            return ""
        sign = request.headers.get("authorization") or request.raw_param("sign") or ""
        if not sign:
            if self.public_read and request.method == "GET":
                return ""
            raise JsonAuthError(-81, "signature is empty")
        try:
            decoded = jsonsign.verify(sign, self._keys(), appid, bucket_name, target_fileid, int(self.clock()))
        except jsonsign.JsonVerifyError as exc:
            raise JsonAuthError(exc.code, exc.message) from None
        if decoded.fields.get("e") == "0":
            self._use_once(sign)
        return decoded.fields["k"]

    def _use_once(self, sign: str) -> None:
        with self._lock:
            if sign in self._used_once:
                raise JsonAuthError(-77, "once signature already used")
            self._used_once[sign] = None
            while len(self._used_once) > self._replay_memory:
                self._used_once.popitem(last=False)
