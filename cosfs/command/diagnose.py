"""One line that says what is wrong and what to do, for a failed first contact with COS.

Used by the mount command before it mounts anything, and by ``cosfs doctor``. The COS
error code decides the sentence; the request id is kept so support can trace it.
"""

from __future__ import annotations

import errno

from cosfs.wire.errors import CosError

_CREDENTIAL_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "-97", "-79", "-98", "-5998", "-62"}
_CLOCK_CODES = {"RequestTimeTooSkewed", "Request has expired", "-96"}
_BUCKET_CODES = {"NoSuchBucket", "-166", "-144", "-61", "-70"}


def explain(error: CosError, bucket: str, where: str, credentials_source: str, connect_timeout: float) -> str:
    """A sentence for ``error`` met while probing ``bucket`` at ``where`` (an endpoint URL)."""
    code = error.code
    request = f" (request id {error.request_id})" if error.request_id else ""
    if code in _CREDENTIAL_CODES:
        return (f"COS rejected the credentials from {credentials_source} ({code}){request}: check the "
                f"SecretId and SecretKey (and that they belong to the account owning {bucket})")
    if code in ("InvalidToken", "ExpiredToken"):
        return (f"the session token from {credentials_source} is invalid or expired ({code}){request}: "
                "refresh the temporary credentials")
    if code in _CLOCK_CODES:
        return (f"COS says the request time is wrong ({code}){request}: this machine's clock is off; "
                "sync it (timedatectl set-ntp true) and retry")
    if code in _BUCKET_CODES or error.errno == errno.ENODEV:
        return (f"bucket {bucket} does not exist at {where} ({code or error.status}){request}: check the "
                "bucket name, its APPID and the region (-o region=)")
    if code == "Timeout":
        return (f"no answer from {where} ({error.message}): check the endpoint/region, the network and any "
                f"firewall or proxy (-o connect_timeout=, now {connect_timeout:g} s, and -o read_timeout= to "
                "wait longer)")
    if code == "ConnectionError":
        return (f"cannot connect to {where}: {error.message}; check the endpoint/region (-o region=, "
                "-o endpoint=) and the network")
    if error.errno == errno.EACCES:
        return (f"the credentials from {credentials_source} may not list bucket {bucket} ({code or error.status})"
                f"{request}: grant them read access to the bucket (cos:GetBucket), or use -o public_bucket=1 "
                "for a public-read bucket")
    return f"COS answered {code or error.status}: {error.message}{request}"

