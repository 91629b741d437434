"""Memory-flatness check: record a long steady workload with retrograde and sample the recorder's RSS."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORKLOAD = BENCH / "workloads" / "steady.py"
PYTHON = sys.executable
SAMPLE_EVERY_S = 0.2
WARMUP_S = 1.0  # growth is measured from the first sample at or after this point
TARGET_GROWTH_MB = 100.0
TIMEOUT_S = 600.0


def retrograde_command() -> list[str]:
    script = Path(PYTHON).parent / "retrograde"
    return [str(script)] if script.exists() else [PYTHON, "-m", "tracer"]


def vm_rss_kb(pid: int) -> int | None:
    """Current resident set size of pid from /proc, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None  # a zombie has no VmRSS line


def record_and_sample(steps: int, trace: Path) -> tuple[list[tuple[float, int]], int, float, str]:
    """Run the recorder, sampling its RSS; returns (samples, returncode, wall seconds, stderr tail)."""
    argv = [*retrograde_command(), "record", "-o", str(trace), str(WORKLOAD), str(steps)]
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        while proc.poll() is None:
            rss = vm_rss_kb(proc.pid)
            elapsed = time.perf_counter() - start
            if rss:  # None once gone; 0 in the instant between fork and exec
                samples.append((elapsed, rss))
            if elapsed > TIMEOUT_S:
                proc.kill()
                proc.wait()
                break
            time.sleep(SAMPLE_EVERY_S)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
    return samples, proc.returncode, wall, tail[0] if tail else ""


def trace_info(trace: Path) -> dict[str, Any]:
    result = subprocess.run(
        [*retrograde_command(), "info", str(trace), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-300:]}
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def summarise(samples: list[tuple[float, int]]) -> dict[str, Any]:
    after = [(t, kb) for t, kb in samples if t >= WARMUP_S]
    if not after:
        return {"error": f"the run ended before {WARMUP_S} s: too short to measure growth"}
    base_t, base_kb = after[0]
    peak_kb = max(kb for _, kb in after)
    end_t, end_kb = after[-1]
    return {
        "rss_at_start_mb": base_kb / 1024,
        "rss_at_start_t_s": base_t,
        "rss_peak_mb": peak_kb / 1024,
        "rss_end_mb": end_kb / 1024,
        "rss_end_t_s": end_t,
        "growth_mb": (peak_kb - base_kb) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1M line steps instead of 10M")
    parser.add_argument("--steps", type=int, help="line steps to aim for (overrides --quick)")
    parser.add_argument("--json", metavar="OUT", help="also write the samples and summary as JSON to OUT")
    args = parser.parse_args(argv)
    steps = args.steps or (1_000_000 if args.quick else 10_000_000)

    with tempfile.TemporaryDirectory(prefix="retro-memflat-") as tmp:
        trace = Path(tmp) / "steady.rtrace"
        samples, rc, wall, err_tail = record_and_sample(steps, trace)
        info = trace_info(trace) if rc == 0 else {"error": f"record exited {rc}: {err_tail}"}
    summary = summarise(samples)

    command = shlex.join([".venv/bin/python", "bench/memory_flat.py", *sys.argv[1:]])
    print(f"### Recorder memory over a long run ({steps:,} line steps requested)\n")
    if "error" in info:
        print(f"retrograde failed: {info['error']}")
    else:
        line_steps, all_steps = info.get("line_steps", 0), info.get("steps", 0)
        size_mb, per_line = info.get("size_bytes", 0) / 1e6, info.get("bytes_per_line_step", 0.0)
        print(
            f"Recorded {line_steps:,} line steps ({all_steps:,} steps) in {wall:.1f} s; "
            f"trace {size_mb:.1f} MB, {per_line:.2f} bytes/line step"
            f"{', TRUNCATED' if info.get('truncated') else ''}."
        )
    if "error" in summary:
        print(summary["error"])
    else:
        verdict = "met" if summary["growth_mb"] < TARGET_GROWTH_MB else "NOT met"
        print(
            f"\nRSS at {summary['rss_at_start_t_s']:.1f} s: {summary['rss_at_start_mb']:.1f} MB; "
            f"peak {summary['rss_peak_mb']:.1f} MB; at end ({summary['rss_end_t_s']:.1f} s): "
            f"{summary['rss_end_mb']:.1f} MB.\n"
            f"Growth after the first second: {summary['growth_mb']:.1f} MB "
            f"(target < {TARGET_GROWTH_MB:.0f} MB: **{verdict}**)."
        )
        # A coarse profile, ten points across the run, so a slow leak is visible at a glance.
        stride = max(1, len(samples) // 10)
        profile = ", ".join(f"{t:.1f}s {kb / 1024:.1f}MB" for t, kb in samples[::stride])
        print(f"\nRSS profile: {profile}")
    print(f"\nMachine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}. Reproduce: `{command}`")

    if args.json:
        raw = {"steps_requested": steps, "wall_s": wall, "returncode": rc, "info": info,
               "summary": summary, "samples": samples, "command": command}
        Path(args.json).write_text(json.dumps(raw, indent=2) + "\n")
    return 0 if rc == 0 and "error" not in summary else 1


if __name__ == "__main__":
    sys.exit(main())
