"""``python -m cosfs``: the same as the ``cosfs`` command."""

import sys

from cosfs.command.cli import main

sys.exit(main())
