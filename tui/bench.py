"""Times the TUI's response to step keys on a trace: `python -m tui.bench TRACE [START_STEP]`.

Per key it reports the handler (engine move and pane updates) and the handler plus the repaint that follows
(a Pilot pause, less the pause's own cost measured with nothing to repaint).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from replay.recorded import RecordedTimeline
from tui.app import make_app

_KEYS = ("step", "reverse-step", "next", "reverse-next")
_ROUNDS = 20


async def _bench(path: str, start: int | None) -> dict[str, tuple[float, float]]:
    app = make_app(RecordedTimeline(path), title="bench")
    results: dict[str, tuple[float, float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        if start is not None:
            app.engine.goto(start)
            app.refresh_view()
        await app.settle()
        await pilot.pause()
        idle = []
        for _ in range(_ROUNDS):
            began = time.perf_counter()
            await pilot.pause()
            idle.append(time.perf_counter() - began)
        baseline = statistics.median(idle)
        for name in _KEYS:
            handler, total = [], []
            for _ in range(_ROUNDS):
                began = time.perf_counter()
                app.action_motion(name)
                await app.settle()
                handled = time.perf_counter()
                await pilot.pause()
                handler.append(handled - began)
                total.append(time.perf_counter() - began - baseline)
            results[name] = (statistics.median(handler) * 1000, statistics.median(total) * 1000)
    return results


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tui.bench TRACE [START_STEP]", file=sys.stderr)
        return 2
    start = int(argv[1]) if len(argv) > 1 else None
    for name, (handler, total) in asyncio.run(_bench(argv[0], start)).items():
        print(f"{name:<14} handler {handler:7.1f} ms   with repaint {total:7.1f} ms  (medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
