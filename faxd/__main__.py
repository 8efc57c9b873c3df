"""``python -m faxd``: the same command as the ``faxd`` script."""

from __future__ import annotations

import sys

from faxd.cli import main

if __name__ == "__main__":
    sys.exit(main())
