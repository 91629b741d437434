"""python -m retrograde: the retrograde command line."""

from __future__ import annotations

import sys

from retrograde.cli import main

if __name__ == "__main__":
    sys.exit(main())
