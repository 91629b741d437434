"""What `pytest --retrograde` costs on real test suites: each suite with and without recording, as ratios.

    .venv/bin/python bench/pytest_bench.py [--suite NAME ...] [--rounds N] [--json [FILE]]

Suites (all by default):
- `values`: Retrograde's own tests/test_values.py. The code under test is Retrograde's recorder, which is
  never recorded, so this measures the per-test cost: a recorder started and stopped around each test.
- `jsonschema`: the test suite that ships inside the installed jsonschema package, run on a copy of the
  package in a temporary project, so that jsonschema's own code is "the project's files" and is recorded
  with the tests, as in a real project (less two files that need what is not installed: jsonpath_ng and
  the JSON-Schema-Test-Suite checkout).

Each suite runs in three modes: plain pytest, `--retrograde` (record every test, keep the failing ones'
traces) and `--retrograde=all` (keep every trace). Rounds are mode-major within a round (plain, failed,
all, then the next round) so a change in machine load hits every mode alike; the table shows the median
wall time and the median CPU time (user + system of the pytest process) and their ratios to plain. Every
run must report the same outcome counts as the plain run, else it is marked. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODES = {"plain": [], "failed": ["--retrograde"], "all": ["--retrograde=all"]}
COUNTS = re.compile(r"(\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected)"
                    r"(?:, \d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected))*) in [\d.]+s")


@dataclass
class Suite:
    """A test suite to run: where, which pytest arguments."""

    name: str
    cwd: Path
    args: list[str]
    note: str


@dataclass
class Runs:
    """The measurements of one suite in one mode."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    traces: int = 0
    trace_bytes: int = 0


def prepare_suites(names: list[str], work: Path) -> list[Suite]:
    suites = []
    for name in names:
        if name == "values":
            suites.append(Suite("values", ROOT, ["tests/test_values.py"],
                                "Retrograde's own tests/test_values.py (test functions recorded)"))
        elif name == "jsonschema":
            spec = importlib.util.find_spec("jsonschema")
            if spec is None or spec.origin is None:
                print("jsonschema is not installed: suite skipped", file=sys.stderr)
                continue
            project = work / "jsonschema_project"
            shutil.copytree(Path(spec.origin).parent, project / "jsonschema",
                            ignore=shutil.ignore_patterns("__pycache__"))
            (project / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
            suites.append(Suite(
                "jsonschema", project,
                ["jsonschema/tests", "--ignore=jsonschema/tests/test_exceptions.py",
                 "--ignore=jsonschema/tests/test_jsonschema_test_suite.py"],
                "jsonschema's shipped tests on a copy of the package (its code recorded too)",
            ))
        else:
            raise SystemExit(f"pytest_bench: unknown suite {name!r} (values, jsonschema)")
    return suites


def run_once(suite: Suite, mode: str, trace_dir: Path) -> tuple[float, float, str, int, int]:
    """One pytest run: wall seconds, CPU seconds, outcome counts, traces kept and their bytes."""
    shutil.rmtree(trace_dir, ignore_errors=True)
    extra = [*MODES[mode], f"--retrograde-dir={trace_dir}"] if MODES[mode] else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *suite.args, *extra],
        cwd=suite.cwd, env=env, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = COUNTS.findall(done.stdout)
    counts = found[-1] if found else f"exit {done.returncode}, no summary"
    kept = [p for p in trace_dir.glob("*.rtrace")] if trace_dir.exists() else []
    return wall, cpu, counts, len(kept), sum(p.stat().st_size for p in kept)


def measure(suites: list[Suite], rounds: int, work: Path) -> dict[str, dict[str, Runs]]:
    results: dict[str, dict[str, Runs]] = {s.name: {m: Runs() for m in MODES} for s in suites}
    for number in range(rounds):
        for suite in suites:
            for mode in MODES:
                wall, cpu, counts, traces, size = run_once(suite, mode, work / "traces")
                runs = results[suite.name][mode]
                runs.wall.append(wall)
                runs.cpu.append(cpu)
                runs.counts.append(counts)
                runs.traces, runs.trace_bytes = traces, size
                print(f"round {number + 1}/{rounds} {suite.name:<10} {mode:<6} {wall:7.2f} s wall "
                      f"{cpu:7.2f} s cpu  {counts}", file=sys.stderr)
    return results


def summarise(suites: list[Suite], results: dict[str, dict[str, Runs]], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "python": sys.version.split()[0], "cpus": os.cpu_count(),
                           "load_average": os.getloadavg(), "suites": {}}
    for suite in suites:
        modes = results[suite.name]
        plain_wall = statistics.median(modes["plain"].wall)
        plain_cpu = statistics.median(modes["plain"].cpu)
        reference = modes["plain"].counts[0]
        entry: dict[str, Any] = {"note": suite.note, "outcomes": reference, "modes": {}}
        for mode, runs in modes.items():
            wall, cpu = statistics.median(runs.wall), statistics.median(runs.cpu)
            entry["modes"][mode] = {
                "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                "wall_ratio": round(wall / plain_wall, 2), "cpu_ratio": round(cpu / plain_cpu, 2),
                "same_outcomes": all(c == reference for c in runs.counts),
                "outcomes": sorted(set(runs.counts)),
                "traces_kept": runs.traces, "trace_bytes": runs.trace_bytes,
                "all_wall_s": [round(w, 3) for w in runs.wall], "all_cpu_s": [round(c, 3) for c in runs.cpu],
            }
        out["suites"][suite.name] = entry
    return out


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"pytest --retrograde overhead: median of {summary['rounds']} round(s), Python {summary['python']}, "
        f"{summary['cpus']} CPUs, load average {summary['load_average'][0]:.1f} at the end",
        "",
        "| suite | outcomes | mode | wall s | wall × | CPU s | CPU × | traces kept | trace MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in summary["suites"].items():
        for mode, m in entry["modes"].items():
            flag = "" if m["same_outcomes"] else " (DIFFERENT OUTCOMES: " + "; ".join(m["outcomes"]) + ")"
            shown = {"plain": "plain pytest", "failed": "--retrograde", "all": "--retrograde=all"}[mode]
            lines.append(
                f"| {name} | {entry['outcomes']}{flag} | {shown} | {m['wall_s']:.2f} | "
                f"{m['wall_ratio']:.2f} | {m['cpu_s']:.2f} | {m['cpu_ratio']:.2f} | {m['traces_kept']} | "
                f"{m['trace_bytes'] / 1e6:.1f} |"
            )
    lines.append("")
    lines.extend(f"- {name}: {entry['note']}" for name, entry in summary["suites"].items())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--suite", action="append", choices=["values", "jsonschema"],
                        help="a suite to run (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each suite in each mode (median)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="write the measurements as JSON to FILE (without FILE: print JSON, no table)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="retro_pytest_bench_") as tmp:
        work = Path(tmp)
        suites = prepare_suites(args.suite or ["values", "jsonschema"], work)
        results = measure(suites, max(1, args.rounds), work)
        summary = summarise(suites, results, max(1, args.rounds))
    if args.json == "-":
        print(json.dumps(summary))
        return 0
    print(table(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
