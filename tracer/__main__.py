"""python -m tracer: the retrograde command line."""

from __future__ import annotations

import sys

from tracer.cli import main

if __name__ == "__main__":
    sys.exit(main())
