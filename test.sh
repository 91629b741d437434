#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: ruff, mypy, pytest.
set -euo pipefail
RETRO_EXTRAS="tui,dev,neural" source "$(dirname "$0")/scripts/venv.sh"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
