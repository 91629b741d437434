# Sourced by run.sh and test.sh: find Python >= 3.12 and make/refresh .venv with the project installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
find_python() {
    for cand in python3.13 python3.12 python3 python; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    for dir in "$HOME"/.pyenv/versions/3.13* "$HOME"/.pyenv/versions/3.12*; do
        if [ -x "$dir/bin/python" ]; then echo "$dir/bin/python"; return 0; fi
    done
    echo "Retrograde needs Python 3.12 or newer (for sys.monitoring); none was found on PATH or in pyenv." >&2
    return 1
}
extras="${RETRO_EXTRAS:-tui}"
stamp=".venv/.installed-$(cat pyproject.toml setup.py tracer/_core/*.[ch] | sha1sum | cut -c1-12)-${extras//,/_}"
if [ ! -x .venv/bin/python ]; then
    py=$(find_python)
    "$py" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]" \
        2> >(grep -v "WARNING: Location" >&2)
    rm -f .venv/.installed-*
    touch "$stamp"
fi
