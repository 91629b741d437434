"""Run many programs through the sandbox, in parallel, resumably, into trace shards plus a manifest."""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from tracer.corpus.program import Program, file_stem, shard_of
from tracer.corpus.sandbox import FINAL_STATUSES, Limits, run_program, sweep_stale

MANIFEST = "manifest.jsonl"
TRACES = "traces"
ENGINES = ("local", "ray")


class BuildError(Exception):
    """The batch cannot run (an engine missing, an unusable output directory)."""


@dataclass(slots=True)
class Summary:
    """What a build did: counts per status, programs skipped as already done, timing."""

    total: int = 0
    skipped: int = 0
    duplicates: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    trace_bytes: int = 0
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return self.ran - self.statuses["ok"] - self.statuses["step_cap"]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def read_manifest(outdir: str) -> dict[str, dict[str, Any]]:
    """The latest entry per id; a torn last line (the batch was killed mid-write) is ignored."""
    entries: dict[str, dict[str, Any]] = {}
    path = os.path.join(outdir, MANIFEST)
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                entries[entry["id"]] = entry
    return entries


def trace_name(program_id: str) -> str:
    """Where an id's trace lives, relative to the corpus directory (256 shard directories)."""
    return f"{TRACES}/{shard_of(program_id)}/{file_stem(program_id)}.rtrace"


def _task(program: Program, limits: Limits, outdir: str) -> dict[str, Any]:
    """One program, run in a pool worker: the trace goes straight into the corpus directory."""
    name = trace_name(program.id)
    result = run_program(program, limits, os.path.join(outdir, name), name)
    return result.to_json()


def _ray_task(program: Program, limits: Limits) -> tuple[dict[str, Any], bytes | None]:
    """One program on a Ray worker, which may be another machine: the trace comes back as bytes."""
    name = trace_name(program.id)
    with tempfile.TemporaryDirectory(prefix="retrograde-ray-") as scratch:
        path = os.path.join(scratch, "trace.rtrace")
        result = run_program(program, limits, path, name).to_json()
        data = None
        if result["trace"]:
            with open(path, "rb") as handle:
                data = handle.read()
    return result, data


def build(
    programs: Iterable[Program],
    outdir: str,
    limits: Limits,
    *,
    jobs: int | None = None,
    engine: str = "local",
    address: str | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Record every program not already final in OUTDIR's manifest; returns the summary."""
    if engine not in ENGINES:
        raise BuildError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    jobs = jobs or default_jobs()
    os.makedirs(os.path.join(outdir, TRACES), exist_ok=True)
    sweep_stale()  # scratch directories of an earlier, killed batch
    done = {pid for pid, entry in read_manifest(outdir).items() if entry.get("status") in FINAL_STATUSES}
    summary = Summary()
    todo: list[Program] = []
    seen: set[str] = set()
    for program in programs:
        summary.total += 1
        if program.id in seen:
            summary.duplicates += 1  # reported in the summary, never silently merged
            continue
        seen.add(program.id)
        if program.id in done:
            summary.skipped += 1
            continue
        todo.append(program)
    by_id = {program.id: program for program in todo}
    start = time.monotonic()
    manifest_path = os.path.join(outdir, MANIFEST)
    _end_torn_line(manifest_path)
    with open(manifest_path, "a", encoding="utf-8") as manifest, _Progress(len(todo), progress) as bar:

        def record(result: dict[str, Any]) -> None:
            entry = dict(result)
            entry["program"] = by_id[result["id"]].to_json()
            manifest.write(json.dumps(entry, ensure_ascii=False) + "\n")
            manifest.flush()
            summary.statuses[result["status"]] += 1
            summary.steps += int(result["steps"])
            summary.trace_bytes += int(result["trace_bytes"])
            bar.advance(result["status"])
            if on_result is not None:
                on_result(entry)

        if todo:
            runner = _run_ray if engine == "ray" else _run_local
            for result in runner(todo, outdir, limits, jobs, address):
                record(result)
    summary.seconds = time.monotonic() - start
    return summary


def _end_torn_line(path: str) -> None:
    """Make sure appends start on a fresh line even if the last run died mid-line."""
    try:
        with open(path, "rb+") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    except FileNotFoundError:
        pass


def _run_local(
    todo: list[Program], outdir: str, limits: Limits, jobs: int, _address: str | None
) -> Iterator[dict[str, Any]]:
    # spawn: workers start clean (no copy of the progress bar's thread), and each worker is
    # single-threaded, which is what the sandbox's preexec function needs to be safe.
    context = multiprocessing.get_context("spawn")
    pending = iter(todo)
    window = jobs * 4  # bounded in-flight work: memory does not grow with the corpus size
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        running: set[Future[dict[str, Any]]] = set()
        try:
            while True:
                for program in pending:
                    running.add(pool.submit(_task, program, limits, outdir))
                    if len(running) >= window:
                        break
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        except BaseException:
            for future in running:
                future.cancel()
            raise


def _run_ray(
    todo: list[Program], _outdir: str, limits: Limits, jobs: int, address: str | None
) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise BuildError("the ray engine needs Ray: pip install 'retrograde[corpus]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=2)(_ray_task)
    total_cpus = int(ray.cluster_resources().get("CPU", jobs))
    window = max(total_cpus, 1) * 4
    pending = iter(todo)
    running: list[Any] = []
    try:
        while True:
            for program in pending:
                running.append(remote.remote(program, limits))
                if len(running) >= window:
                    break
            if not running:
                return
            finished, running = ray.wait(running, num_returns=1)
            for ref in finished:
                result, data = ray.get(ref)
                if data is not None:
                    path = os.path.join(_outdir, result["trace"])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path + ".part", "wb") as handle:
                        handle.write(data)
                    os.replace(path + ".part", path)
                yield result
    finally:
        for ref in running:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        if started_here:
            ray.shutdown()


class _Progress:
    """A rich progress bar with throughput and failure counts (on stderr; off when disabled)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.counts: Counter[str] = Counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]recording"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("build", total=self.total, rate="", ok=0, failed=0)
        self._start = time.monotonic()
        return self

    def advance(self, status: str) -> None:
        self.counts[status] += 1
        if self._progress is None:
            return
        done = sum(self.counts.values())
        elapsed = max(time.monotonic() - self._start, 1e-9)
        good = self.counts["ok"] + self.counts["step_cap"]
        self._progress.update(
            self._task, advance=1, rate=f"{done / elapsed:.1f} prog/s", ok=good, failed=done - good
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def summary_table(summary: Summary) -> Any:
    """The end-of-build summary as a rich Table."""
    from rich.table import Table

    table = Table(title="corpus build", show_footer=False)
    table.add_column("status")
    table.add_column("programs", justify="right")
    table.add_column("share", justify="right")
    ran = summary.ran
    for status, count in sorted(summary.statuses.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(status, str(count), f"{100 * count / ran:.1f}%" if ran else "-")
    return table


def summary_line(summary: Summary) -> str:
    rate = summary.ran / summary.seconds if summary.seconds > 0 else 0.0
    return (
        f"{summary.ran} recorded in {summary.seconds:.1f} s ({rate:.1f} programs/s), "
        f"{summary.failed} failed; {summary.skipped} already done; {summary.duplicates} duplicate ids "
        f"skipped; {summary.steps} steps, {summary.trace_bytes} trace bytes"
    )
