"""``python -m cosfs``: the same as the ``cosfs`` command."""

import sys

from cosfs.cli import main

sys.exit(main())
