"""`python -m retrograde.dap` (or this file's path, as editors' test clients launch it): `retrograde dap`."""

import os
import sys

if not __package__:
    # Run by path: this folder is sys.path[0], where its modules would shadow real ones. The project
    # root (two folders up) makes `retrograde` importable even without an install.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, os.path.dirname(os.path.dirname(here)))

from retrograde.dap.cli import main

if __name__ == "__main__":
    sys.exit(main())
