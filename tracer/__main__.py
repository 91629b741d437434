"""python -m tracer: the recorder's commands (record, info, export, corpus); `retrograde` has them all."""

from __future__ import annotations

import sys

from tracer.cli import main

if __name__ == "__main__":
    sys.exit(main())
