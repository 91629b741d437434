#!/usr/bin/env bash
# Set up (first run only) and run Retrograde's main job on the bundled default sample.
# Any arguments replace the default job: ./run.sh record -o t.rtrace myscript.py
set -euo pipefail
source "$(dirname "$0")/scripts/venv.sh"
if [ $# -eq 0 ]; then set -- demo; fi
exec .venv/bin/retrograde "$@"
