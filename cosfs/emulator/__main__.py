"""``python -m cosfs.emulator``: the same as the ``cosfs-emulator`` command."""

import sys

from cosfs.emulator.cli import main

sys.exit(main())
