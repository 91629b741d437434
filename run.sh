#!/usr/bin/env bash
# Set up (first run only) and run Retrograde's main job: record the bundled sample and open it in the TUI,
# with the bundled model's prediction of each next step beside the recording.
# Any arguments replace the default job: ./run.sh record -o t.rtrace myscript.py
set -euo pipefail
RETRO_EXTRAS="tui,neural" source "$(dirname "$0")/scripts/venv.sh"
if [ $# -eq 0 ]; then
    if [ -t 0 ] && [ -t 1 ]; then
        set -- tui --predict samples/bubble_sort.py   # record the sample, open it with the model beside it
    else
        set -- demo   # no terminal: record it, show its summary, a scripted replay and a prediction
    fi
fi
exec .venv/bin/retrograde "$@"
