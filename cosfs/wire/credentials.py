"""Find the COS credentials for a mount, keep temporary ones fresh, and refuse exposed key files.

Sources are tried in order and the first present one wins: ``public_bucket=1`` (anonymous),
``-o passwd_file=``, ``COSFS_SECRET_ID``/``COSFS_SECRET_KEY``, COSFS's ``COSACCESSKEYID``/
``COSSECRETACCESSKEY``, ``~/.passwd-cosfs``, ``/etc/passwd-cosfs``. That is Tencent COSFS's order
with our variables in front of its own, so existing COSFS setups keep working, an explicit option
beats the environment, and the environment beats files left over from an earlier setup.

A file holds either COSFS passwd lines (``BucketName-APPID:SecretId:SecretKey``, or one
``SecretId:SecretKey`` default), read once, or ``key=value`` lines (COSFS's STS file) whose
session token expires. Those are re-read when the file's stat changes, checked at most once per
``check_interval``, so a job that refreshes the token (ideally by renaming a new file over the old
one) is picked up without remounting. A failed reload keeps the last good credentials and logs one
warning: a half-written file must not take a working mount down.

As in s3fs and COSFS, a key file that group or others may access is refused, on every (re)load;
only the system-wide ``/etc/passwd-cosfs`` may be group-readable (640, for an admin group).
Messages name the file, line and fix, never a secret.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Protocol, Tuple

from cosfs.wire.errors import ConfigError

log = logging.getLogger(__name__)

#: Accepted spellings (lower-cased) of the keys of a ``key=value`` file: ours and COSFS's STS names.
KEY_ALIASES = {
    "secret_id": "secret_id", "secretid": "secret_id", "cosaccesskeyid": "secret_id",
    "secret_key": "secret_key", "secretkey": "secret_key", "cossecretkey": "secret_key",
    "token": "token", "security_token": "token", "sessiontoken": "token", "cosaccesstoken": "token",
    "expiration": "expiration", "cosaccesstokenexpire": "expiration",
}

#: Environment variables in lookup order: (SecretId, SecretKey, session token or None).
_ENV_SOURCES = (
    ("COSFS_SECRET_ID", "COSFS_SECRET_KEY", "COSFS_SECURITY_TOKEN"),
    ("COSACCESSKEYID", "COSSECRETACCESSKEY", None),
)

_NOT_SHOWN = "(the line is not shown: it may hold a secret)"
_PASSWD_LINE = "BucketName-APPID:SecretId:SecretKey"


@dataclass(frozen=True)
class Credentials:
    """A key pair, and the session token of temporary credentials (sent as x-cos-security-token)."""

    secret_id: str
    secret_key: str
    token: Optional[str] = None
    #: Unix time after which temporary credentials stop working, when known.
    expiration: Optional[float] = None

    def __repr__(self) -> str:
        token = "<hidden>" if self.token else None
        return f"Credentials(secret_id={self.secret_id!r}, secret_key=<hidden>, token={token})"


class CredentialProvider(Protocol):
    """Hands out the current credentials; ``None`` means anonymous requests."""

    #: Where the credentials come from, for messages (never the secret itself).
    source: str

    def get(self) -> Optional[Credentials]:
        ...


class StaticProvider:
    """Fixed credentials (or ``None`` for anonymous access to a public-read bucket)."""

    def __init__(self, credentials: Optional[Credentials], source: str) -> None:
        self._credentials = credentials
        self.source = source

    def get(self) -> Optional[Credentials]:
        return self._credentials


class FileProvider:
    """Credentials from a ``key=value`` file, re-read when it changes so that a refreshed token
    is used without remounting; a broken new version is reported once and the old keys kept."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic,
                 check_interval: float = 1.0, *, allow_group_read: bool = False) -> None:
        self.path = path
        self.source = f"credentials file {path}"
        self._clock = clock
        self._check_interval = check_interval
        self._allow_group_read = allow_group_read
        self._lock = threading.Lock()
        # The first load raises: a mount must not start without usable credentials.
        self._credentials, self._signature = self._load()  # guarded by self._lock
        self._next_check = clock() + check_interval  # guarded by self._lock

    def get(self) -> Optional[Credentials]:
        """The newest good credentials; the file is stat'ed at most once per check interval."""
        with self._lock:
            now = self._clock()
            if now >= self._next_check:
                self._next_check = now + self._check_interval
                self._reload_if_changed()
            return self._credentials

    def _load(self) -> Tuple[Credentials, tuple]:
        lines, signature = _read_lines(self.path, self._allow_group_read)
        return parse_key_values(self.path, lines), signature

    def _reload_if_changed(self) -> None:
        try:
            current: Optional[tuple] = _signature(os.stat(self.path))
        except OSError:
            current = None
        if current == self._signature:
            return
        self._signature = current  # even if the load fails, so each bad version warns once
        try:
            self._credentials, self._signature = self._load()
        except ConfigError as err:
            log.warning("%s; still using the credentials loaded before", err.message)
            return
        log.info("reloaded credentials from %s", self.path)


def check_permissions(path: str, allow_group_read: bool = False) -> None:
    """Refuse a key file that is not a regular file or that other users may access: whoever
    reads the keys owns the bucket. Group-read is for the system-wide file only."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ConfigError(f"cannot stat credentials file {path}: {err.strerror}") from None
    _check_mode(path, st, allow_group_read)


def _check_mode(path: str, st: os.stat_result, allow_group_read: bool) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"credentials file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    exposed = mode & 0o077 & ~(stat.S_IRGRP if allow_group_read else 0)
    if exposed:
        kinds = [word for bits, word in ((0o044, "readable"), (0o022, "writable"),
                                         (0o011, "executable")) if exposed & bits]
        fix = f"chmod {640 if allow_group_read else 600} {path}"
        raise ConfigError(f"credentials file {path} is {'/'.join(kinds)} by group or others "
                          f"(mode {mode:04o}); run: {fix}")


def _signature(st: os.stat_result) -> tuple:
    # ctime too, so that a chmod alone (which keeps mtime) is noticed.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_lines(path: str, allow_group_read: bool) -> Tuple[List[str], tuple]:
    """Check and read a key file; the signature is that of the bytes actually read."""
    try:
        # O_NONBLOCK: a FIFO planted at the path fails the mode check instead of hanging.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            st = os.fstat(f.fileno())
            _check_mode(path, st, allow_group_read)
            text = f.read().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read credentials file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path} is not UTF-8 text") from None
    return text.splitlines(), _signature(st)


def _content_lines(lines: List[str]) -> Iterator[Tuple[int, str]]:
    """(1-based line number, stripped text) of each line that is not blank or a # comment."""
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_expiration(text: str) -> float:
    """Unix time from unix seconds or ISO-8601; no offset means GMT, as in COSFS's
    ``COSAccessTokenExpire=2017-08-29T20:30:00``. Raises ``ValueError`` for anything else."""
    value = text.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value  # Z: Python < 3.11
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"expiration {value!r} is neither unix seconds nor an ISO-8601 time "
                         "such as 2017-08-29T20:30:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def parse_key_values(path: str, lines: List[str]) -> Credentials:
    """Credentials from ``key=value`` lines (keys in ``KEY_ALIASES``, any case; others ignored)."""
    values: Dict[str, str] = {}
    line_of: Dict[str, int] = {}
    for number, line in _content_lines(lines):
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"credentials file {path} line {number} is not key=value "
                              f"{_NOT_SHOWN}")
        name = KEY_ALIASES.get(key.strip().lower())
        if name:
            values[name], line_of[name] = value.strip(), number
    missing = [name for name in ("secret_id", "secret_key") if not values.get(name)]
    if missing:
        raise ConfigError(f"credentials file {path} has no {' and no '.join(missing)}; "
                          "add lines secret_id=<SecretId> and secret_key=<SecretKey>")
    expiration = None
    if values.get("expiration"):
        try:
            expiration = parse_expiration(values["expiration"])
        except ValueError as err:
            where = f"credentials file {path} line {line_of['expiration']}"
            raise ConfigError(f"{where}: {err}") from None
    return Credentials(values["secret_id"], values["secret_key"], values.get("token") or None,
                       expiration)


def parse_passwd(path: str, lines: List[str], bucket: str) -> Credentials:
    """The key pair for ``bucket`` from COSFS passwd lines: a ``BucketName-APPID`` line beats a
    legacy ``bucketname`` line (COSFS <= 1.0.5), which beats the ``SecretId:SecretKey`` default."""
    name, dash, appid = bucket.rpartition("-")
    ranks = {bucket: 0}
    if dash and name and appid.isdigit():
        ranks[name] = 1
    best: Dict[int, Tuple[int, Credentials]] = {}
    for number, line in _content_lines(lines):
        fields = [field.strip() for field in line.split(":")]
        if len(fields) not in (2, 3) or not all(fields):
            problem = "an empty field" if len(fields) in (2, 3) else f"{len(fields)} fields"
            raise ConfigError(f"passwd file {path} line {number} has {problem}; expected "
                              f"{_PASSWD_LINE} or SecretId:SecretKey {_NOT_SHOWN}")
        rank = 2 if len(fields) == 2 else ranks.get(fields[0])
        if rank is None:
            continue
        if rank in best:  # as in s3fs: which of the two was meant is unknowable
            whose = "default" if rank == 2 else f"bucket {fields[0]}"
            raise ConfigError(f"passwd file {path} lines {best[rank][0]} and {number} are both "
                              f"{whose} lines; keep one")
        best[rank] = (number, Credentials(fields[-2], fields[-1]))
    if not best:
        raise ConfigError(f"passwd file {path} has no line for bucket {bucket} and no default line;"
                          f" add {bucket}:SecretId:SecretKey (or SecretId:SecretKey for any bucket)")
    return best[min(best)][1]


def _provider_from_file(path: str, bucket: str, allow_group_read: bool,
                        clock: Callable[[], float]) -> CredentialProvider:
    """A ``FileProvider`` if any line holds ``=`` (a key=value file), else the passwd line."""
    lines, _ = _read_lines(path, allow_group_read)
    if any("=" in line for _, line in _content_lines(lines)):
        return FileProvider(path, clock=clock, allow_group_read=allow_group_read)
    return StaticProvider(parse_passwd(path, lines, bucket), f"passwd file {path}")


def _provider_from_environment(environ: Mapping[str, str], id_name: str, key_name: str,
                               token_name: Optional[str]) -> Optional[StaticProvider]:
    secret_id, secret_key = environ.get(id_name, ""), environ.get(key_name, "")
    token = environ.get(token_name, "") if token_name else ""
    if not secret_id and not secret_key:
        if token:
            raise ConfigError(f"{token_name} is set but {id_name} and {key_name} are not; "
                              "set the temporary key pair the token belongs to")
        return None
    if not secret_id or not secret_key:
        missing, present = (id_name, key_name) if not secret_id else (key_name, id_name)
        raise ConfigError(f"{present} is set but {missing} is not; set both or neither")
    return StaticProvider(Credentials(secret_id, secret_key, token or None),
                          f"environment ({id_name})")


def resolve_credentials(
    bucket: str, passwd_file: Optional[str] = None, public_bucket: bool = False,
    environ: Optional[Mapping[str, str]] = None, home: Optional[str] = None,
    etc_file: str = "/etc/passwd-cosfs", clock: Callable[[], float] = time.monotonic,
) -> CredentialProvider:
    """The credential source for mounting ``bucket`` (``name-appid``), first present source
    wins. A source that is present but broken raises ``ConfigError`` instead of falling
    through, so a typo never quietly mounts with some other keys."""
    if public_bucket:
        return StaticProvider(None, "anonymous (public_bucket=1)")
    etc_path = os.path.abspath(etc_file)
    if passwd_file is not None:
        if not os.path.exists(passwd_file):
            raise ConfigError(f"passwd_file {passwd_file} does not exist")
        path = os.path.abspath(passwd_file)  # the daemon may chdir before a reload
        return _provider_from_file(path, bucket, path == etc_path, clock)
    for id_name, key_name, token_name in _ENV_SOURCES:
        provider = _provider_from_environment(os.environ if environ is None else environ,
                                              id_name, key_name, token_name)
        if provider is not None:
            return provider
    home_path = os.path.join(os.path.expanduser("~") if home is None else home, ".passwd-cosfs")
    for path, allow_group_read in ((home_path, False), (etc_path, True)):
        if os.path.exists(path):
            return _provider_from_file(path, bucket, allow_group_read, clock)
    raise ConfigError(
        f"no credentials for bucket {bucket}: searched COSFS_SECRET_ID/COSFS_SECRET_KEY, "
        f"COSACCESSKEYID/COSSECRETACCESSKEY, {home_path} and {etc_path}; create {home_path} "
        "containing SecretId:SecretKey and chmod 600 it, or set COSFS_SECRET_ID and "
        "COSFS_SECRET_KEY, or pass -o passwd_file=FILE, or -o public_bucket=1 for a public-read "
        "bucket")
