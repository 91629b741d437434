"""Recording benchmark: Retrograde against untraced Python, a naive recorder and other tracers."""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKLOAD_DIR = BENCH / "workloads"
RUNNER_DIR = BENCH / "runners"
PYTHON = sys.executable
# A run is stopped after TIMEOUT_S of CPU time (RLIMIT_CPU), so other load on a shared machine does not
# turn slow runs into timeouts; WALL_TIMEOUT_S catches hangs.
TIMEOUT_S = 60
WALL_TIMEOUT_S = 300.0
# Runs per round of the untraced program and of the bare interpreter (see run_matrix).
BASELINE_RUNS = 3
# Address-space cap for every child, so a runaway recorder fails instead of swapping the machine.
MEMORY_LIMIT_BYTES = 8 * 1024**3


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    file: Path
    full_size: int
    quick_size: int
    description: str


# Full sizes are tuned to ~0.05-0.1 s of untraced work on a 2020s x86 core with CPython 3.13.
WORKLOADS = [
    Workload("calls", WORKLOAD_DIR / "calls.py", 28, 20, "recursive fib + many tiny calls"),
    Workload("loops", WORKLOAD_DIR / "loops.py", 170, 40, "nested numeric loops over scalars"),
    Workload("containers", WORKLOAD_DIR / "containers.py", 50000, 3000, "list/dict/set mutation, aliases"),
    Workload("interp", WORKLOAD_DIR / "interp.py", 1700, 60, "tokenise/parse/eval a tiny language"),
    # Shapes the first four missed (issue 16): deep recursion, floats changed inside nested lists through an
    # alias, and big containers (a 20k-node adjacency dict, a 20k list sorted through a scratch list).
    Workload("recursion", WORKLOAD_DIR / "recursion.py", 9, 6, "n-queens backtracking + recursive tree"),
    Workload("nbody", WORKLOAD_DIR / "nbody.py", 15000, 300, "floats in 5 lists of 7, via aliases"),
    Workload("graph", WORKLOAD_DIR / "graph.py", 20000, 500, "BFS on a 20k adjacency dict + merge sort"),
    # Issue 16's 200,000-element program: recorded whole (format 5), so appends and dict stores must cost
    # what they change, not the size of the container.
    # The collections containers (defaultdict of lists, Counter, deque, OrderedDict LRU): their repr used to
    # be taken whole at each change; now bounded and recorded by structure like the builtins.
    # heapq (untraced C code changing a big list in scattered places) and a quicksort written as methods.
    Workload("sorting", WORKLOAD_DIR / "sorting.py", 20000, 1000, "heapq priority queue + quicksort methods"),
    Workload("collections", WORKLOAD_DIR / "collections_mix.py", 20000, 1000,
             "topological sort, LRU, Counter on collections types"),
    Workload("bigstate", WORKLOAD_DIR / "bigstate.py", 200000, 20000, "200k list and dict built, changed"),
]


def retrograde_command() -> list[str]:
    """The lead's CLI: the venv console script if installed, else `python -m tracer`."""
    script = Path(PYTHON).parent / "retrograde"
    return [str(script)] if script.exists() else [PYTHON, "-m", "tracer"]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    label: str
    build: Callable[[Path, Path, int], list[str]]  # (output file, workload file, size) -> argv
    out_suffix: str
    line_level: bool = True
    slow: bool = False  # hundreds of times slower than untraced: measured after the others


def _runner(script: str) -> Callable[[Path, Path, int], list[str]]:
    def build(out: Path, workload: Path, size: int) -> list[str]:
        return [PYTHON, str(RUNNER_DIR / script), str(out), str(workload), str(size)]

    return build


TOOLS = [
    Tool("plain", "untraced", lambda out, wl, size: [PYTHON, str(wl), str(size)], ".none"),
    Tool(
        "retrograde",
        "retrograde",
        lambda out, wl, size: [*retrograde_command(), "record", "-o", str(out), str(wl), str(size)],
        ".rtrace",
    ),
    Tool("naive", "naive sys.monitoring recorder", _runner("naive.py"), ".pickle"),
    Tool("pysnooper", "PySnooper", _runner("pysnooper_runner.py"), ".log", slow=True),
    Tool("hunter", "hunter VarsSnooper", _runner("hunter_runner.py"), ".log", slow=True),
    Tool("snoop", "snoop", _runner("snoop_runner.py"), ".log", slow=True),
    Tool("viztracer", "VizTracer (function-level only)", _runner("viztracer_runner.py"), ".json", False),
]


@dataclass(slots=True)
class RunResult:
    wall_s: float
    cpu_s: float  # user + system time of the child: far less sensitive to other load on the machine
    maxrss_kb: int
    returncode: int
    timed_out: bool
    stdout: str
    stderr: str


@dataclass(slots=True)
class Cell:
    """All runs of one tool on one workload."""

    tool: Tool
    workload: Workload
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    status: str = "ok"  # ok | timeout | failed | unavailable
    error: str = ""
    output_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == "ok"

    def median_wall(self) -> float | None:
        return self.median("wall")

    def median(self, metric: str) -> float | None:
        values = self.walls if metric == "wall" else self.cpus
        return statistics.median(values) if values and self.status == "ok" else None


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    # SIGXCPU at the soft limit ends the child; SIGKILL at the hard one if it ignored that.
    resource.setrlimit(resource.RLIMIT_CPU, (TIMEOUT_S, TIMEOUT_S + 2))


def run_child(argv: list[str], workdir: Path, timeout: float = WALL_TIMEOUT_S) -> RunResult:
    """Run argv in a fresh process; wall time from the parent, peak RSS from wait4's rusage."""
    out_path, err_path = workdir / "child.stdout", workdir / "child.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONHUNTER", "PYTHONMANHOLE"))}
    env["PYTHONHASHSEED"] = "0"
    killed = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
            start_new_session=True, preexec_fn=_limit_child,
        )

        def on_alarm(signum: int, frame: object) -> None:
            # Kill instead of raising: wait4 then returns normally with the child's rusage.
            nonlocal killed
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
        except KeyboardInterrupt:
            # The benchmark is being stopped early: take the child down with it, then report.
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen from waiting again
    cpu = usage.ru_utime + usage.ru_stime
    # SIGXCPU is the soft CPU limit; SIGKILL past the hard one. rusage can read a little under the limit.
    killed_at_hard_limit = proc.returncode == -signal.SIGKILL and cpu >= TIMEOUT_S - 1
    over_cpu = proc.returncode == -signal.SIGXCPU or killed_at_hard_limit
    return RunResult(
        wall_s=wall,
        cpu_s=cpu,
        maxrss_kb=usage.ru_maxrss,
        returncode=proc.returncode,
        timed_out=killed or over_cpu,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def retrograde_available(workdir: Path) -> tuple[bool, str]:
    result = run_child([*retrograde_command(), "record", "--help"], workdir, timeout=30)
    if result.returncode != 0:
        return False, (result.stderr.strip().splitlines() or ["no output"])[-1]
    return True, ""


def retrograde_info(trace: Path, workdir: Path) -> dict[str, Any]:
    result = run_child([*retrograde_command(), "info", str(trace), "--json"], workdir, timeout=120)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["info failed"])[-1]}
    try:
        info: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        return {"error": f"bad JSON from retrograde info: {exc}"}
    return info


def output_size(path: Path) -> int | None:
    return path.stat().st_size if path.exists() else None


def clear_outputs(out: Path) -> None:
    for path in (out, Path(str(out) + ".json")):
        path.unlink(missing_ok=True)


def run_matrix(
    tools: list[Tool], workloads: list[Workload], quick: bool, workdir: Path, log: Callable[[str], None]
) -> tuple[dict[tuple[str, str], Cell], dict[str, list[float]]]:
    """Repetition-major loops so slow drift in machine load hits every tool alike.

    The slow third-party tracers run after all repetitions of the others, so the numbers that matter most
    (untraced, retrograde, naive) are complete early and an interrupted run still reports them.
    """
    max_reps = 3 if quick else 5
    # A cell stops repeating once its runs used this much CPU time, so very slow tools get 1-2 runs.
    cell_budget_s = 1.5 if quick else 30.0
    cells = {(t.name, w.name): Cell(t, w) for w in workloads for t in tools}
    startup: dict[str, list[float]] = {"wall": [], "cpu": []}
    expected: dict[str, str] = {}

    if any(t.name == "retrograde" for t in tools):
        ok, why = retrograde_available(workdir)
        if not ok:
            for w in workloads:
                cell = cells[("retrograde", w.name)]
                cell.status, cell.error = "unavailable", f"retrograde CLI not usable: {why}"
            log(f"retrograde unavailable: {why}")

    groups = [[t for t in tools if not t.slow], [t for t in tools if t.slow]]
    try:
        for group, rep in ((g, r) for g in groups if g for r in range(max_reps)):
            # Every ratio divides by (untraced - start-up), about 0.05 s: the two cheap measurements get
            # BASELINE_RUNS runs per round, so one slow run cannot move every ratio of a workload.
            for _ in range(BASELINE_RUNS):
                bare = run_child([PYTHON, "-c", "pass"], workdir)
                startup["wall"].append(bare.wall_s)
                startup["cpu"].append(bare.cpu_s)
            for w in workloads:
                for t in group:
                    cell = cells[(t.name, w.name)]
                    if not cell.active or (rep > 0 and sum(cell.cpus) > cell_budget_s):
                        continue
                    for _ in range(BASELINE_RUNS - 1 if t.name == "plain" else 0):
                        run_once(cell, quick, workdir, expected)
                    result = run_once(cell, quick, workdir, expected)
                    rss_mb = result.maxrss_kb / 1024
                    done = f"{result.wall_s:8.3f} s, cpu {result.cpu_s:7.3f} s, {rss_mb:7.1f} MB"
                    done = done if cell.active else cell.status
                    log(f"rep {rep + 1}/{max_reps} {w.name:<10} {t.name:<10} {done}")
    except KeyboardInterrupt:
        # Ctrl-C (or SIGINT) stops the benchmark early but still reports everything measured so far.
        log("interrupted: reporting the runs completed so far")
        for cell in cells.values():
            if cell.active and not cell.walls:
                cell.status, cell.error = "not run", "benchmark interrupted"
    return cells, startup


def run_once(cell: Cell, quick: bool, workdir: Path, expected: dict[str, str]) -> RunResult:
    """One fresh-process run of cell's tool on its workload; updates the cell's measurements or status."""
    t, w = cell.tool, cell.workload
    out = workdir / f"{t.name}-{w.name}{t.out_suffix}"
    clear_outputs(out)
    result = run_child(t.build(out, w.file, w.quick_size if quick else w.full_size), workdir)
    if result.timed_out:
        cell.status, cell.error = "timeout", f"over {TIMEOUT_S} s of CPU time (or hung)"
    elif result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        cell.status, cell.error = "failed", f"exit {result.returncode}: {tail}"
    elif t.name == "plain":
        expected.setdefault(w.name, result.stdout)
    if cell.active and w.name in expected and result.stdout != expected[w.name]:
        cell.status, cell.error = "failed", "stdout differs from the untraced run"
    if cell.active:
        cell.walls.append(result.wall_s)
        cell.cpus.append(result.cpu_s)
        cell.rss_kb.append(result.maxrss_kb)
        cell.output_bytes = output_size(out)
        if not cell.extra:
            collect_extra(cell, out, workdir)
    return result


def collect_extra(cell: Cell, out: Path, workdir: Path) -> None:
    """Tool-specific numbers from the first successful run's output file."""
    if cell.tool.name == "retrograde":
        cell.extra = retrograde_info(out, workdir)
    elif cell.tool.name == "naive":
        meta = Path(str(out) + ".json")
        if meta.exists():
            cell.extra = json.loads(meta.read_text())


# ---------------------------------------------------------------- reporting


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def slowdowns(
    cells: dict[tuple[str, str], Cell],
    tools: list[Tool],
    workloads: list[Workload],
    startup_s: float,
    metric: str = "wall",
) -> dict[str, dict[str, float | str]]:
    """Per tool and workload: (tool time - bare startup) / (untraced time - bare startup), or a status."""
    table: dict[str, dict[str, float | str]] = {}
    for t in tools:
        row: dict[str, float | str] = {}
        for w in workloads:
            cell, base = cells[(t.name, w.name)], cells[("plain", w.name)].median(metric)
            wall = cell.median(metric)
            if cell.status != "ok":
                row[w.name] = cell.status
            elif wall is None or base is None or base <= startup_s:
                row[w.name] = "n/a"
            else:
                row[w.name] = max(wall - startup_s, 1e-9) / (base - startup_s)
        numbers = [v for v in row.values() if isinstance(v, float)]
        if numbers and len(numbers) == len(workloads):
            row["geomean"] = geomean(numbers)
        elif all(v == "timeout" or isinstance(v, float) for v in row.values()):
            # Lower bound: a timed-out run is at least TIMEOUT_S long.
            bounded = [v if isinstance(v, float) else timeout_ratio(cells, w.name, startup_s, metric)
                       for w, v in zip(workloads, row.values(), strict=True)]
            row["geomean"] = f">{geomean(bounded):.0f}x"
        else:
            row["geomean"] = "n/a"
        table[t.name] = row
    return table


def timeout_ratio(cells: dict[tuple[str, str], Cell], workload: str, startup_s: float, metric: str) -> float:
    # A run stopped by the CPU limit used TIMEOUT_S of CPU time, and at least that much wall time.
    base = cells[("plain", workload)].median(metric) or 1.0
    return (TIMEOUT_S - startup_s) / max(base - startup_s, 1e-9)


def fmt_ratio(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{value:.1f}x" if value < 100 else f"{value:.0f}x"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def markdown(
    cells: dict[tuple[str, str], Cell],
    tools: list[Tool],
    workloads: list[Workload],
    startup: dict[str, list[float]],
    quick: bool,
    machine: dict[str, Any],
    command: str,
) -> tuple[str, dict[str, Any]]:
    startup_s = statistics.median(startup["wall"])
    startup_cpu_s = statistics.median(startup["cpu"])
    ratios = slowdowns(cells, tools, workloads, startup_s)
    cpu_ratios = slowdowns(cells, tools, workloads, startup_cpu_s, metric="cpu")
    names = [w.name for w in workloads]
    lines = [
        f"### Recording overhead ({'quick' if quick else 'full'} mode)",
        "",
        "Slowdown = (median wall time of the tool - bare interpreter start-up) / (same for untraced python).",
        "",
    ]
    lines += ratio_table(cells, tools, names, ratios, with_rss=True)
    lines += [
        "",
        "Same, by CPU time (user + system of the child) instead of wall time: less sensitive to other load.",
        "",
    ]
    lines += ratio_table(cells, tools, names, cpu_ratios, with_rss=False)
    plain_walls = [cells[("plain", n)].median_wall() for n in names]
    lines += [
        "",
        "Untraced median wall time per run (including start-up): "
        + ", ".join(f"{n} {w:.3f} s" if w else f"{n} -" for n, w in zip(names, plain_walls, strict=True))
        + f"; bare interpreter start-up {startup_s:.3f} s ({startup_cpu_s:.3f} s CPU).",
        "† function calls only (no line events, no variables): not comparable to the line-level tools.",
    ]
    failures = [c for c in cells.values() if c.status != "ok"]
    if failures:
        lines.append("")
        lines += [f"- {c.tool.name} on {c.workload.name}: {c.status} ({c.error})" for c in failures]

    # Trace size table: retrograde vs naive.
    lines += [
        "",
        "### Trace size",
        "",
        "| workload | line steps | retrograde trace | retrograde bytes/line step | retrograde peak RSS "
        "| naive output | naive bytes/line step | naive / retrograde size |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    size_rows: dict[str, dict[str, Any]] = {}
    for n in names:
        retro = cells.get(("retrograde", n))
        naive = cells.get(("naive", n))
        info = retro.extra if retro and retro.active else {}
        line_steps = info.get("line_steps")
        size = info.get("size_bytes", retro.output_bytes if retro and retro.active else None)
        bpl = info.get("bytes_per_line_step")
        naive_size = naive.output_bytes if naive and naive.active else None
        naive_lines = naive.extra.get("line_steps") if naive and naive.active else None
        naive_bpl = naive_size / naive_lines if naive_size and naive_lines else None
        rss = max(retro.rss_kb) * 1024 if retro and retro.rss_kb else None
        size_rows[n] = {
            "line_steps": line_steps, "steps": info.get("steps"), "retrograde_bytes": size,
            "retrograde_bytes_per_line_step": bpl, "retrograde_peak_rss_bytes": rss,
            "naive_bytes": naive_size, "naive_line_steps": naive_lines,
            "naive_bytes_per_line_step": naive_bpl,
        }
        lines.append(
            f"| {n} | {line_steps if line_steps is not None else '-'} | {fmt_bytes(size)} "
            f"| {f'{bpl:.2f}' if isinstance(bpl, (int, float)) else '-'} | {fmt_bytes(rss)} "
            f"| {fmt_bytes(naive_size)} | {f'{naive_bpl:.0f}' if naive_bpl else '-'} "
            f"| {f'{naive_size / size:.0f}x' if naive_size and size else '-'} |"
        )
    if any("error" in (cells[("retrograde", n)].extra if ("retrograde", n) in cells else {}) for n in names):
        lines.append("")
        lines += [f"- retrograde info on {n}: {cells[('retrograde', n)].extra['error']}"
                  for n in names if "error" in cells[("retrograde", n)].extra]

    targets = target_checks(ratios, cpu_ratios, size_rows, names)
    if targets:
        lines += ["", "### Targets", ""]
        lines += [f"- {text}: **{'met' if ok else 'NOT met'}**" for text, ok in targets]
    lines += [
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} CPUs, {machine['platform']}, "
        f"{machine['implementation']} {machine['python']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine['loadavg'])}; {machine['date_utc']}.",
        "",
        f"Reproduce: `{command}`",
    ]
    raw = {
        "mode": "quick" if quick else "full",
        "command": command,
        "machine": machine,
        "startup_s": startup,
        "timeout_s": TIMEOUT_S,
        "slowdown": ratios,
        "slowdown_cpu": cpu_ratios,
        "trace_size": size_rows,
        "targets": [{"target": text, "met": ok} for text, ok in targets],
        "cells": [
            {
                "tool": c.tool.name, "workload": c.workload.name, "status": c.status, "error": c.error,
                "size_arg": c.workload.quick_size if quick else c.workload.full_size,
                "wall_s": c.walls, "median_wall_s": c.median_wall(), "cpu_s": c.cpus,
                "median_cpu_s": c.median("cpu"), "maxrss_kb": c.rss_kb,
                "output_bytes": c.output_bytes, "extra": c.extra,
            }
            for c in cells.values()
        ],
    }
    return "\n".join(lines), raw


def ratio_table(
    cells: dict[tuple[str, str], Cell],
    tools: list[Tool],
    names: list[str],
    ratios: dict[str, dict[str, float | str]],
    with_rss: bool,
) -> list[str]:
    rss_head = " peak RSS (max over workloads) |" if with_rss else ""
    lines = [
        "| tool | " + " | ".join(names) + " | geomean |" + rss_head,
        "|---|" + "---:|" * (len(names) + 1 + with_rss),
    ]
    for t in tools:
        row = ratios[t.name]
        label = t.label if t.line_level else f"{t.label} †"
        cols = ["1.0x (baseline)" if t.name == "plain" else fmt_ratio(row[n]) for n in names]
        geo = "1.0x" if t.name == "plain" else fmt_ratio(row["geomean"])
        line = f"| {label} | " + " | ".join(cols) + f" | {geo} |"
        if with_rss:
            rss = [max(cells[(t.name, n)].rss_kb) for n in names if cells[(t.name, n)].rss_kb]
            line += f" {fmt_bytes(max(rss) * 1024) if rss else '-'} |"
        lines.append(line)
    return lines


def target_checks(
    ratios: dict[str, dict[str, float | str]],
    cpu_ratios: dict[str, dict[str, float | str]],
    size_rows: dict[str, dict[str, Any]],
    names: list[str],
) -> list[tuple[str, bool]]:
    """The issue's targets, judged on wall time; the CPU-time figure is shown alongside."""
    checks: list[tuple[str, bool]] = []
    if "retrograde" in ratios:
        retro, retro_cpu = ratios["retrograde"]["geomean"], cpu_ratios["retrograde"]["geomean"]
        goal = "retrograde slowdown geomean ≤ 25x"
        if isinstance(retro, float):
            measured = f"measured {retro:.1f}x; by CPU time {fmt_ratio(retro_cpu)}"
            checks.append((f"{goal} ({measured})", retro <= 25))
        elif retro.startswith(">"):
            checks.append((f"{goal} (measured {retro}: some runs timed out)", False))
    if "retrograde" in ratios and "naive" in ratios:
        # Compare on the workloads both finished, so one timeout does not hide the rest.
        both = [n for n in names
                if isinstance(ratios["retrograde"][n], float) and isinstance(ratios["naive"][n], float)]
        if both:
            speedups = [float(ratios["naive"][n]) / float(ratios["retrograde"][n]) for n in both]
            where = "" if len(both) == len(names) else f" over {', '.join(both)} only"
            checks.append(
                (f"retrograde ≥ 10x faster than the naive recorder (geomean {geomean(speedups):.1f}x{where})",
                 geomean(speedups) >= 10 and len(both) == len(names))
            )
    bpls = [r["retrograde_bytes_per_line_step"] for r in size_rows.values()
            if isinstance(r["retrograde_bytes_per_line_step"], (int, float))]
    if bpls:
        worst = max(bpls)
        where = "" if len(bpls) == len(names) else f" ({len(bpls)} of {len(names)} workloads recorded)"
        checks.append((f"retrograde ≤ 8 bytes per line step (worst workload {worst:.2f}){where}", worst <= 8))
    return checks


def report_from_json(path: Path) -> str:
    """Re-render the Markdown of a run saved with --json (if you edit the JSON first, say so)."""
    raw = json.loads(path.read_text())
    tools_by_name = {t.name: t for t in TOOLS}
    workloads_by_name = {w.name: w for w in WORKLOADS}
    cells: dict[tuple[str, str], Cell] = {}
    for entry in raw["cells"]:
        cell = Cell(tools_by_name[entry["tool"]], workloads_by_name[entry["workload"]])
        cell.walls, cell.cpus, cell.rss_kb = entry["wall_s"], entry["cpu_s"], entry["maxrss_kb"]
        cell.status, cell.error = entry["status"], entry["error"]
        cell.output_bytes, cell.extra = entry["output_bytes"], entry["extra"]
        cells[(entry["tool"], entry["workload"])] = cell
    tools = [t for t in TOOLS if any(k[0] == t.name for k in cells)]
    workloads = [w for w in WORKLOADS if any(k[1] == w.name for k in cells)]
    quick = raw["mode"] == "quick"
    report, _ = markdown(cells, tools, workloads, raw["startup_s"], quick, raw["machine"], raw["command"])
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller workloads (~1 min)")
    parser.add_argument("--only", default="", help="comma-separated tool and/or workload names to run")
    parser.add_argument("--json", metavar="OUT", help="also write the raw numbers as JSON to OUT")
    parser.add_argument("--report-from", metavar="JSON", help="print the report of a run saved with --json")
    args = parser.parse_args(argv)
    if args.report_from:
        print(report_from_json(Path(args.report_from)))
        return 0

    tools, workloads = list(TOOLS), list(WORKLOADS)
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        known = {t.name for t in TOOLS} | {w.name for w in WORKLOADS}
        if wanted - known:
            parser.error(f"unknown names {sorted(wanted - known)}; choose from {sorted(known)}")
        if wanted & {t.name for t in TOOLS}:
            # The untraced run is always needed: every ratio is relative to it.
            tools = [t for t in TOOLS if t.name in wanted or t.name == "plain"]
        if wanted & {w.name for w in WORKLOADS}:
            workloads = [w for w in WORKLOADS if w.name in wanted]

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # `kill PID` stops the benchmark the way Ctrl-C does: report what was measured, then exit.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command = shlex.join([".venv/bin/python", "bench/record_bench.py", *sys.argv[1:]])
    machine = machine_info()
    # Installed packages (the other tools, in site-packages) run from .pyc files that pip wrote. Retrograde
    # is installed editable, so where PYTHONDONTWRITEBYTECODE is set (as on our CI machines) it would be
    # compiled from source on every run (~30 ms per run, a third of an untraced run): compile it once too.
    for package in ("tracer", "replay"):
        compileall.compile_dir(ROOT / package, quiet=1)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="retro-bench-") as tmp:
        cells, startup = run_matrix(tools, workloads, args.quick, Path(tmp), log)
    report, raw = markdown(cells, tools, workloads, startup, args.quick, machine, command)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
