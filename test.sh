#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite: ruff, mypy, the import contracts, then pytest
# once per recorder core (the C hot path in tracer/_core/, then the pure Python recorder), as
# coverage.py runs its suite once per core.
set -euo pipefail
RETRO_EXTRAS="tui,dev,neural" source "$(dirname "$0")/scripts/venv.sh"
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports --no-logo
# The DAP tests also drive the adapter with VS Code's own test client (@vscode/debugadapter-testsupport);
# without node/npm those tests skip with the reason.
if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/dap_node --silent --no-audit --no-fund >/dev/null 2>&1 ||
        echo "== npm ci in tests/dap_node failed: the node DAP client tests will skip" >&2
fi
if .venv/bin/python -c 'import sys, tracer.monitor as m; sys.exit(not m.compiled_available())'; then
    echo "== pytest with the C recorder core (RETROGRADE_RECORDER=c)"
    RETROGRADE_RECORDER=c .venv/bin/python -m pytest "$@"
else
    echo "== tracer/_core/ is not built: no C recorder core to test (the Python run follows)" >&2
fi
echo "== pytest with the pure Python recorder (RETROGRADE_RECORDER=python)"
RETROGRADE_RECORDER=python .venv/bin/python -m pytest "$@"
