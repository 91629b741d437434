"""Renders the README's picture of the TUI: samples/bubble_sort.py recorded, stopped just after a swap.

Run `python -m tui.screenshot docs/tui.svg` from the project root.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile

from replay.recorded import RecordedTimeline
from tui.app import make_app

SIZE = (120, 36)


async def _shoot(trace: str, sample: str, out: str) -> None:
    app = make_app(RecordedTimeline(trace), title=os.path.basename(sample))
    async with app.run_test(size=SIZE) as pilot:
        app.engine.add_breakpoint(f"{sample}:13")  # the swap
        app.update_marks()
        for key in ("c", "c", "c", "colon", *"p items[i], items[i + 1]", "enter", "escape", "n"):
            await pilot.press(key)
            await app.settle()
            await pilot.pause()
        directory, name = os.path.split(os.path.abspath(out))
        app.save_screenshot(name, path=directory)


def main(argv: list[str]) -> int:
    out = argv[0] if argv else os.path.join("docs", "tui.svg")
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sample = os.path.join(project, "samples", "bubble_sort.py")
    with tempfile.TemporaryDirectory() as workdir:
        trace = os.path.join(workdir, "bubble_sort.rtrace")
        subprocess.run([sys.executable, "-m", "tracer", "record", "-o", trace, sample], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        asyncio.run(_shoot(trace, sample, out))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
