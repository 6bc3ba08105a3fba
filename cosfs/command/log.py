"""Where cosfs logs: stderr in the foreground, syslog (the journal) when running as a daemon."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from typing import Optional


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
    root.addHandler(handler)
