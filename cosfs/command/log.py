"""Where cosfs logs (stderr in the foreground, syslog or a file as a daemon), and never a secret.

Every handler set up here carries one ``RedactingFilter``, so each record that reaches a
log, from cosfs or from a library (urllib3 logs every request line, query string included,
at debug level), is rendered and scrubbed by ``cosfs.wire.redact`` first: its message with
the arguments filled in, its exception text and its stack. The filter also knows the
credential values the mount signs with (``remember_credentials``) and removes them verbatim.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
from typing import FrozenSet, Optional

from cosfs.wire.credentials import CredentialProvider, Credentials
from cosfs.wire.redact import redact

_EXCEPTION_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Renders each record and removes signatures, tokens and known secrets from it.

    The record is changed in place (message rendered into ``msg``, ``args`` dropped,
    exception text pre-formatted), so every handler and formatter after this filter sees
    only the redacted text. Redacting is idempotent: a record that passes two handlers is
    scrubbed twice, harmlessly.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: FrozenSet[str] = frozenset()  # replaced whole under self._lock, read without it

    def remember(self, *values: Optional[str]) -> None:
        """Remove these values (a SecretKey, a session token) from every record from now on."""
        new = {value for value in values if value} - self._secrets
        if new:
            with self._lock:
                self._secrets = self._secrets | new

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a broken format must not print its arguments unredacted)
            message = f"unformattable log message from {record.pathname}:{record.lineno}"
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


#: The one filter on every cosfs handler; it outlives ``setup_logging`` (called again after
#: daemonizing) so that the secrets it learnt stay known.
REDACTION = RedactingFilter()


class RememberingProvider:
    """A credential provider that shows every credentials it hands out to the log filter
    before they sign anything, so a reloaded temporary key or token is redacted too (and the
    first ones as soon as it is made)."""

    def __init__(self, provider: CredentialProvider, redaction: RedactingFilter = REDACTION) -> None:
        self._provider = provider
        self._redaction = redaction
        self.source = provider.source
        self.get()

    def get(self) -> Optional[Credentials]:
        credentials = self._provider.get()
        if credentials is not None:
            self._redaction.remember(credentials.secret_key, credentials.token)
        return credentials


def remember_credentials(provider: CredentialProvider) -> CredentialProvider:
    """``provider``, wrapped so that the log never shows the secrets it hands out."""
    return provider if isinstance(provider, RememberingProvider) else RememberingProvider(provider)


def setup_logging(level: str, foreground: bool, logfile: Optional[str] = None) -> None:
    """stderr in the foreground; else ``logfile`` if given, else syslog (``/dev/log``)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if logfile and not foreground:
        handler: logging.Handler = logging.FileHandler(logfile)
        handler.setFormatter(logging.Formatter("%(asctime)s cosfs[%(process)d] %(levelname)s %(name)s: %(message)s"))
    elif foreground or not os.path.exists("/dev/log"):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s cosfs %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("cosfs[%(process)d]: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTION)
    root.addHandler(handler)
