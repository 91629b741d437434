#!/usr/bin/env bash
# Set up (first run only) and run Retrograde's main job: record the bundled sample and open it in the TUI.
# Any arguments replace the default job: ./run.sh record -o t.rtrace myscript.py
set -euo pipefail
source "$(dirname "$0")/scripts/venv.sh"
if [ $# -eq 0 ]; then
    if [ -t 0 ] && [ -t 1 ]; then
        set -- tui samples/bubble_sort.py   # record the bundled sample and open it in the TUI
    else
        set -- demo                          # no terminal: record it and show its summary and replay
    fi
fi
exec .venv/bin/retrograde "$@"
