"""Corpus benchmark: programs per second for synth and MBPP, and the sandbox's cost per program."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracer.corpus.batch import build, default_jobs  # noqa: E402
from tracer.corpus.program import Program  # noqa: E402
from tracer.corpus.sandbox import Limits, netns_mode, readonly_fs, run_program  # noqa: E402
from tracer.corpus.sources import load_mbpp  # noqa: E402
from tracer.corpus.synth import generate  # noqa: E402

MBPP = ROOT.parent / "shared" / "datasets" / "mbpp.jsonl"
TRIVIAL = "x = 1\n"


def _throughput(programs: list[Program], jobs: int, limits: Limits) -> tuple[float, int, int]:
    """(programs per second, ok count, total) for one fresh build."""
    with tempfile.TemporaryDirectory(prefix="corpus-bench-") as outdir:
        summary = build(programs, outdir, limits, jobs=jobs, progress=False)
    rate = summary.ran / summary.seconds if summary.seconds else 0.0
    return rate, summary.statuses["ok"], summary.ran


def _per_run(command: list[str], cwd: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _overhead(repeat: int, limits: Limits) -> list[tuple[str, float]]:
    """Median seconds per trivial program: plain python, recorded, recorded in the sandbox."""
    with tempfile.TemporaryDirectory(prefix="corpus-bench-") as work:
        script = os.path.join(work, "trivial.py")
        Path(script).write_text(TRIVIAL)
        env_python = [sys.executable]
        plain = _per_run([*env_python, script], work, repeat)
        trace = os.path.join(work, "t.rtrace")
        recorded = _per_run([*env_python, "-m", "tracer", "record", "-o", trace, script], work, repeat)
        sandboxed = []
        for i in range(repeat):
            start = time.perf_counter()
            trace = os.path.join(work, f"s{i}.rtrace")
            result = run_program(Program(id=f"t{i}", code=TRIVIAL), limits, trace)
            sandboxed.append(time.perf_counter() - start)
            assert result.status == "ok", result
    return [
        ("python trivial.py (no recording)", plain),
        ("retrograde record trivial.py", recorded),
        ("sandbox: run_program (record + limits + guards)", statistics.median(sandboxed)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=60, help="programs per throughput run (60)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="parallel programs (all cores)")
    parser.add_argument("--repeat", type=int, default=10, help="runs per overhead measurement (10)")
    args = parser.parse_args()
    limits = Limits(timeout=10.0, cpu=10, memory_mb=1024, max_steps=100_000)

    start = time.perf_counter()
    made = sum(1 for _ in generate(2000, seed=1))
    gen_rate = made / (time.perf_counter() - start)

    rows: list[tuple[str, str]] = [("synth generation (no recording)", f"{gen_rate:,.0f} programs/s")]
    rate, ok, total = _throughput(list(generate(args.n, seed=1)), args.jobs, limits)
    rows.append((f"synth: build {total} programs, {args.jobs} jobs", f"{rate:.2f} programs/s ({ok} ok)"))
    if MBPP.is_file():
        mbpp = [p for p in load_mbpp(str(MBPP)) if p.split == "train"][: args.n]
        rate, ok, total = _throughput(mbpp, args.jobs, limits)
        label = f"MBPP train: build {total} programs, {args.jobs} jobs"
        rows.append((label, f"{rate:.2f} programs/s ({ok} ok)"))
    else:
        rows.append(("MBPP", "skipped (../shared/datasets/mbpp.jsonl not found)"))
    overhead = _overhead(args.repeat, limits)
    for label, seconds in overhead:
        rows.append((f"{label}, sequential, median", f"{seconds * 1000:.0f} ms"))
    rows.append(("sandbox cost over plain recording", f"{(overhead[2][1] - overhead[1][1]) * 1000:.0f} ms"))

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"netns: {netns_mode() or 'unavailable'}, read-only file system: {readonly_fs()}; "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| measurement | result |")
    print("| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
