"""Where cosfs logs: stderr in the foreground, syslog (the journal) when running as a daemon."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys


def setup_logging(level: str, foreground: bool) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if foreground or not os.path.exists("/dev/log"):
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s cosfs %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.handlers.SysLogHandler(address="/dev/log", facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.setFormatter(logging.Formatter("cosfs[%(process)d]: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
