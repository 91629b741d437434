"""`retrograde corpus build | synth | export`: record programs at scale into training data."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

PROG = "retrograde"


def register(subparsers: Any) -> None:
    corpus = subparsers.add_parser("corpus", help="record many programs in sandboxes as training data")
    corpus.set_defaults(handler=_no_action)
    actions = corpus.add_subparsers(dest="corpus_command", metavar="ACTION")

    build = actions.add_parser("build", help="record every program of SOURCE into OUTDIR")
    build.add_argument("source", metavar="SOURCE",
                       help="directory of scripts, JSONL file, 'humaneval', or puzzles:N[:SEED] / "
                            "synth:N[:SEED] (generated programs)")
    build.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="corpus directory")
    build.add_argument("--format", default="auto",
                       help="auto, dir, jsonl, mbpp, humaneval, cruxeval, or mbpp-calls / humaneval-calls "
                            "(the solution called on its tests' inputs and on mutations of them)")
    build.add_argument("-j", "--jobs", type=int, metavar="N", help="parallel programs (default: all cores)")
    build.add_argument("--engine", default="local", help="local (process pool) or ray")
    build.add_argument("--address", metavar="ADDR", help="Ray cluster address (with --engine ray)")
    build.add_argument("--timeout", type=float, default=10.0, metavar="S", help="wall-clock limit (10)")
    build.add_argument("--cpu", type=int, default=10, metavar="S", help="CPU seconds limit (10)")
    build.add_argument("--memory-mb", type=int, default=1024, metavar="MB", help="address space (1024)")
    build.add_argument("--max-steps", type=int, default=100_000, metavar="N", help="step cap (100000)")
    build.add_argument(
        "--drop-over-cap", action="store_true", help="drop traces cut at the step cap (default: keep them)"
    )
    build.add_argument("--output-cap", type=int, default=64 * 1024, metavar="BYTES", help="stdout/err kept")
    build.add_argument("--limit", type=int, metavar="N", help="only the first N programs of SOURCE")
    build.add_argument("--split", action="append", default=[], help="only programs of this split")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    build.set_defaults(handler=cmd_build)

    synth = actions.add_parser("synth", help="generate small programs with inputs (JSONL)")
    synth.add_argument("-n", type=int, default=1000, metavar="N", help="how many programs (1000)")
    synth.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (0)")
    synth.add_argument("-o", "--output", metavar="FILE", help="JSONL file (default: stdout)")
    synth.add_argument("--generator", default="synth", choices=("synth", "puzzles"),
                       help="synth (twelve CRUXEval-like templates) or puzzles (typed blocks, billions of "
                            "distinct functions)")
    synth.set_defaults(handler=cmd_synth)

    export = actions.add_parser("export", help="write the corpus as JSON lines, one record per trace")
    export.add_argument("outdir", metavar="OUTDIR")
    export.add_argument("--format", default="jsonl", help="jsonl (the only format)")
    export.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    export.add_argument("--status", action="append", default=[], help="only traces with this status")
    export.add_argument("--split", action="append", default=[], help="only traces of this split")
    export.add_argument("--locals", default="map", dest="locals_mode", help="map ({name: repr}) or pairs")
    export.set_defaults(handler=cmd_export)


def _fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _no_action(_args: argparse.Namespace) -> int:
    return _fail("corpus needs an action: build, synth or export (see 'retrograde corpus --help')")


def cmd_build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tracer.corpus.batch import ENGINES, BuildError, build, summary_line, summary_table
    from tracer.corpus.sandbox import Limits
    from tracer.corpus.sources import SourceError, load

    if args.engine not in ENGINES:
        return _fail(f"unknown engine {args.engine!r} (choose from {', '.join(ENGINES)})")
    if args.address and args.engine != "ray":
        return _fail("--address needs --engine ray")
    for name in ("jobs", "timeout", "cpu", "memory_mb", "max_steps", "output_cap", "limit"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            return _fail(f"--{name.replace('_', '-')} must be positive")
    try:
        programs = list(load(args.source, args.format))
    except SourceError as exc:
        return _fail(str(exc))
    if args.split:
        programs = [p for p in programs if p.split in args.split]
    if args.limit is not None:
        programs = programs[: args.limit]
    limits = Limits(
        timeout=args.timeout,
        cpu=args.cpu,
        memory_mb=args.memory_mb,
        max_steps=args.max_steps,
        keep_over_cap=not args.drop_over_cap,
        output_bytes=args.output_cap,
    )
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        summary = build(
            programs, args.output, limits, jobs=args.jobs, engine=args.engine, address=args.address,
            progress=progress,
        )
    except (BuildError, OSError) as exc:
        return _fail(str(exc), 1)
    console = Console()
    console.print(summary_table(summary))
    console.print(summary_line(summary), highlight=False)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from tracer.corpus import puzzles, synth
    from tracer.corpus.program import dumps

    if args.n <= 0:
        return _fail("-n must be positive")
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}", 1)
    count = 0
    try:
        generate = puzzles.generate if args.generator == "puzzles" else synth.generate
        for program in generate(args.n, args.seed):
            out.write(dumps(program) + "\n")
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    if count < args.n:
        print(f"{PROG}: only {count} distinct programs could be made", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tracer.corpus.batch import MANIFEST
    from tracer.corpus.export import LOCALS_MODES, write_jsonl

    if args.format != "jsonl":
        return _fail(f"unknown export format {args.format!r} (only jsonl)")
    if args.locals_mode not in LOCALS_MODES:
        return _fail(f"unknown --locals {args.locals_mode!r} (choose from {', '.join(LOCALS_MODES)})")
    if not os.path.isfile(os.path.join(args.outdir, MANIFEST)):
        return _fail(f"{args.outdir} is not a corpus directory (no {MANIFEST})")
    try:
        out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}", 1)
    try:
        count = write_jsonl(
            args.outdir, out, statuses=args.status, splits=args.split, locals_mode=args.locals_mode
        )
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output:
        print(f"{PROG}: exported {count} traces to {args.output}", file=sys.stderr)
    return 0
