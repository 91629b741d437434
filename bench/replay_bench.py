"""Replay speed on a long trace against issue 3's and issue 4's targets: open, goto, stepping, searches, RSS.

    .venv/bin/python bench/replay_bench.py [--trace PATH] [--steps N] [--seed S] [--no-tui] [--json OUT]

Without --trace it records (or reuses) a workload of about N line steps (default 10M) at
/tmp/retro_bench_<N>.rtrace. Every measurement runs in a fresh child process, so its peak RSS is the
replay's own; the TUI's step keys are timed by `python -m tui.bench` in another child. Progress goes to
stderr, the Markdown report to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORKLOAD_DIR = Path("/tmp/retro_bench_workload")
WORKLOAD_NAME = "replay_workload.py"
LINE_STEPS_PER_TURN = 9  # line events per loop turn of WORKLOAD (13 events in all with the 2 calls/returns)
# The recorded trace points at this file by path; keep the text stable so cached traces stay valid.
WORKLOAD = '''\
"""Replay benchmark workload: N loop turns of 9 line steps, with a call into each of two helpers."""

import sys

PHASE_EVERY = 76_923  # about 1M steps (13 per turn) between changes of `phase`, for the watchpoint search


def bump(acc, i):
    v = acc + i % 7
    return v % 1_000_003


def scale(x):
    return x * 3 % 1009


def main(n):
    acc = 0
    phase = 0
    for i in range(n):
        acc = bump(acc, i)
        acc += scale(i)
        if i == 5:
            acc += 1  # BREAK_START
        if i == n - 5:
            acc += 2  # BREAK_END
        if i % PHASE_EVERY == PHASE_EVERY - 1:
            phase += 1  # WATCH
    print(f"replay workload n={n} acc={acc} phase={phase}")


main(int(sys.argv[1]))
'''
ROUNDS = 20
WATCH_ROUNDS = 3

# Issue 3 ("Performance") and issue 4 (TUI step keys), in seconds / megabytes.
TARGET_OPEN_S = 0.2
TARGET_GOTO_S = 0.020
TARGET_STEP_S = 0.005
TARGET_CONTINUE_S = 0.5
TARGET_WATCH_S = 2.0
TARGET_RSS_MB = 300
TARGET_TUI_MS = 50.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def marker_line(marker: str) -> int:
    for number, text in enumerate(WORKLOAD.splitlines(), 1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise LookupError(marker)


# -- recording ----------------------------------------------------------------------------------------------
def default_trace(steps: int) -> Path:
    label = f"{steps // 1_000_000}M" if steps % 1_000_000 == 0 else str(steps)
    return Path(f"/tmp/retro_bench_{label}.rtrace")


def ensure_workload() -> Path:
    WORKLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = WORKLOAD_DIR / WORKLOAD_NAME
    if not path.exists() or path.read_text() != WORKLOAD:
        path.write_text(WORKLOAD)
    return path


def record(trace: Path, steps: int) -> None:
    script = ensure_workload()
    turns = -(-steps // LINE_STEPS_PER_TURN)
    partial = trace.with_suffix(".rtrace.tmp")  # renamed only when complete, so a killed run is not reused
    log(f"recording {turns} loop turns (~{steps:,} line steps) to {trace}; this takes minutes")
    began = time.perf_counter()
    command = [str(ROOT / ".venv/bin/retrograde"), "record", "-o", str(partial), script.name, str(turns)]
    subprocess.run(command, cwd=WORKLOAD_DIR, check=True, stdout=subprocess.DEVNULL)
    partial.rename(trace)
    log(f"recorded in {time.perf_counter() - began:.0f} s")


# -- measurement (child process) ----------------------------------------------------------------------------
def _timed(action: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def measure(trace: str, seed: int) -> dict[str, Any]:
    """Runs in a fresh process: every replay timing, then the peak RSS."""
    sys.path.insert(0, str(ROOT))
    from replay.engine import Engine
    from replay.recorded import RecordedTimeline

    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict[str, Any] = {}
    out["open_s"], timeline = _timed(lambda: RecordedTimeline(trace))
    out["engine_s"], engine = _timed(lambda: Engine(timeline))
    out["first_stop_s"], _ = _timed(lambda: timeline.locals_at(engine.position))
    out["steps"] = len(timeline)
    out["start"], out["end"] = engine.start, engine.end
    file = timeline.step(engine.start).file
    log(f"opened: {out['steps']:,} steps, open {out['open_s'] * 1000:.1f} ms")

    rng = random.Random(seed)
    positions = [rng.randrange(engine.start, engine.end + 1) for _ in range(ROUNDS)]

    # goto: a jump to a cold position (the chunk cache holds 6 of the trace's chunks), then what a user sees.
    gotos, views = [], []
    for position in positions:
        elapsed, _ = _timed(lambda p=position: engine.goto(p))
        gotos.append(elapsed)
    for _ in range(ROUNDS):  # fresh positions: the ones above are partly still in the chunk cache
        position = rng.randrange(engine.start, engine.end + 1)
        elapsed, _ = _timed(lambda p=position: (engine.goto(p), timeline.locals_at(p), engine.stack()))
        views.append(elapsed)
    out["goto_s"], out["goto_view_s"] = gotos, views

    # s / n / rs / rn from random positions (the goto there is not timed: the user is already at it).
    commands = {"s": engine.step, "n": engine.next, "rs": engine.reverse_step, "rn": engine.reverse_next}
    for name, command in commands.items():
        times = []
        for position in positions:
            engine.goto(position)
            elapsed, _ = _timed(command)
            times.append(elapsed)
        out[f"{name}_s"] = times
    log("goto and stepping done")

    # c from the start to a breakpoint hit only near the end; rc from the end to one hit only near the start.
    engine = Engine(timeline)
    engine.add_breakpoint(f"{file}:{marker_line('BREAK_END')}")
    out["c_s"], stop = _timed(engine.continue_)
    out["c_stop"] = [stop.reason, stop.step.index, stop.step.line]
    engine = Engine(timeline)
    engine.last()
    engine.add_breakpoint(f"{file}:{marker_line('BREAK_START')}")
    out["rc_s"], stop = _timed(engine.reverse_continue)
    out["rc_stop"] = [stop.reason, stop.step.index, stop.step.line]
    log("c / rc done")

    # Watchpoint on `phase` (main's local, changed once per ~1M steps): stand just after one change, then
    # time the searches to the next changes, forward and backward.
    engine = Engine(timeline)
    point = engine.add_breakpoint(f"{file}:{marker_line('WATCH')}")
    engine.continue_()
    engine.next()  # past `phase += 1`: the watch starts from the new value
    engine.delete(point.number)
    engine.add_watchpoint("phase")
    watch, spans = [], []
    for _ in range(WATCH_ROUNDS):
        before = engine.position
        elapsed, stop = _timed(engine.continue_)
        if stop.reason != "watchpoint":
            break
        watch.append(elapsed)
        spans.append(stop.step.index - before)
    out["watch_s"], out["watch_span"] = watch, spans
    back, back_spans = [], []
    for _ in range(WATCH_ROUNDS):
        before = engine.position
        elapsed, stop = _timed(engine.reverse_continue)
        if stop.reason != "watchpoint":
            break
        back.append(elapsed)
        back_spans.append(before - stop.step.index)
    out["rwatch_s"], out["rwatch_span"] = back, back_spans
    log("watchpoint searches done")

    out["rss_before_mb"] = rss_before_kb / 1024
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    return out


# -- TUI ---------------------------------------------------------------------------------------------------
def tui_bench(trace: Path, start: int) -> dict[str, tuple[float, float]]:
    """Run issue 4's own benchmark (`python -m tui.bench`) in a fresh process and parse its medians."""
    result = subprocess.run([PYTHON, "-m", "tui.bench", str(trace), str(start)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    parsed: dict[str, tuple[float, float]] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(\S+)\s+handler\s+([\d.]+) ms\s+with repaint\s+([\d.]+) ms", line)
        if match:
            parsed[match[1]] = (float(match[2]), float(match[3]))
    return parsed


# -- report ------------------------------------------------------------------------------------------------
def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    return (f"{cpu}, {os.cpu_count()} cores, load average {load} at the start; "
            f"Python {platform.python_version()} on {platform.system()} {platform.release()}; "
            f"commit {commit}{' (uncommitted changes)' if dirty else ''}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(res: dict[str, Any], tui: dict[str, tuple[float, float]] | None, trace: Path, command: str,
           info: str, tui_start: int, host: str) -> str:
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, measured: str, target: str, ok: bool | None) -> None:
        rows.append((name, measured, target, "n/a" if ok is None else "yes" if ok else "**no**"))

    def spread(name: str, key: str, limit: float) -> None:
        values = res[key]
        med, worst = statistics.median(values), max(values)
        row(f"{name} ({len(values)} random positions)", f"median {ms(med)}, max {ms(worst)}",
            f"≤ {ms(limit)}", worst <= limit)

    opened = res["open_s"] + res["engine_s"]
    row("open: RecordedTimeline(trace)", ms(res["open_s"]), f"≤ {ms(TARGET_OPEN_S)}",
        res["open_s"] <= TARGET_OPEN_S)
    row("open + Engine (first stop found)", ms(opened), f"≤ {ms(TARGET_OPEN_S)}", opened <= TARGET_OPEN_S)
    row("first stop's locals after open", ms(res["first_stop_s"]), "—", None)
    spread("goto", "goto_s", TARGET_GOTO_S)
    spread("goto + locals + stack", "goto_view_s", TARGET_GOTO_S)
    for name in ("s", "n", "rs", "rn"):
        spread(name, f"{name}_s", TARGET_STEP_S)
    c_reason, c_index, _ = res["c_stop"]
    row(f"c: start → breakpoint at step {c_index:,} ({c_reason})", ms(res["c_s"]),
        f"≤ {ms(TARGET_CONTINUE_S)}", res["c_s"] <= TARGET_CONTINUE_S and c_reason == "breakpoint")
    rc_reason, rc_index, _ = res["rc_stop"]
    row(f"rc: end → breakpoint at step {rc_index:,} ({rc_reason})", ms(res["rc_s"]),
        f"≤ {ms(TARGET_CONTINUE_S)}", res["rc_s"] <= TARGET_CONTINUE_S and rc_reason == "breakpoint")
    for key, label in (("watch", "c"), ("rwatch", "rc")):
        values, spans = res[f"{key}_s"], res[f"{key}_span"]
        if not values:
            row(f"watchpoint search ({label})", "no watchpoint hit", f"≤ {ms(TARGET_WATCH_S)}", False)
            continue
        span = f"{min(spans):,}–{max(spans):,} steps" if min(spans) != max(spans) else f"{spans[0]:,} steps"
        row(f"watchpoint search, {label} across {span} ({len(values)}×)",
            f"median {ms(statistics.median(values))}, max {ms(max(values))}", f"≤ {ms(TARGET_WATCH_S)}",
            max(values) <= TARGET_WATCH_S)
    row("peak RSS of the replay process (ru_maxrss)",
        f"{res['rss_mb']:.0f} MB ({res['rss_before_mb']:.0f} MB before opening)",
        f"≤ {TARGET_RSS_MB} MB", res["rss_mb"] <= TARGET_RSS_MB)
    if tui is not None:
        for key, (handler, total) in tui.items():
            row(f"TUI `{key}` key at step {tui_start:,}: screen updated (handler {handler:.1f} ms)",
                f"{total:.1f} ms", f"≤ {TARGET_TUI_MS:.0f} ms", total <= TARGET_TUI_MS)

    lines = [f"Trace: `{trace}`: {res['steps']:,} steps, {info}", "",
             "| operation | measured | target | met? |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", f"Machine: {host}", "", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, help="an existing trace (default: record the workload)")
    parser.add_argument("--steps", type=int, default=10_000_000, help="line steps to record (default 10M)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random positions")
    parser.add_argument("--no-tui", action="store_true", help="skip `python -m tui.bench`")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.seed)))
        return 0

    host = machine()  # before the run, so the load average is the machine's, not ours
    trace = args.trace
    if trace is None:
        trace = default_trace(args.steps)
        if trace.exists():
            log(f"reusing {trace}")
        else:
            record(trace, args.steps)
    info_json = json.loads(subprocess.run([str(ROOT / ".venv/bin/retrograde"), "info", str(trace), "--json"],
                                          capture_output=True, text=True, check=True).stdout)
    info = (f"{info_json['line_steps']:,} line steps, {info_json['size_bytes'] / 1e6:.0f} MB on disk, "
            f"{info_json.get('chunks', '?')} chunks")

    log("measuring replay in a fresh process")
    child = subprocess.run([PYTHON, __file__, "--child", str(trace), "--seed", str(args.seed)], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True, check=True)
    res = json.loads(child.stdout)
    tui = None
    tui_start = (res["start"] + res["end"]) // 2  # mid-trace: the chunk the keys need is deep in the file
    if not args.no_tui:
        log("timing TUI step keys (python -m tui.bench)")
        tui = tui_bench(trace, tui_start)
    command = ".venv/bin/python bench/replay_bench.py" + (f" --trace {args.trace}" if args.trace else
                                                          f" --steps {args.steps}")
    if args.json:
        args.json.write_text(json.dumps({"trace": str(trace), "info": info_json, "replay": res,
                                         "tui": tui, "tui_start": tui_start}, indent=1))
    print(report(res, tui, trace, command, info, tui_start, host))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
