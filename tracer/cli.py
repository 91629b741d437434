"""The `retrograde` command line: record, info, export, replay, demo."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from tracer.format import TraceFormatError, describe_bytes

PROG = "retrograde"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


_BUILTIN_COMMANDS = ("record", "info", "export", "replay", "demo")


def _parser(extensions: bool = True) -> argparse.ArgumentParser:
    """The command line; extensions=False leaves out the subcommands other packages add (importing them
    costs tens of milliseconds at every `retrograde record`)."""
    parser = _Parser(prog=PROG, description="Record Python programs and debug them forward and backward.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    rec = sub.add_parser("record", help="run a program and record every line step into a trace file")
    rec.add_argument("-o", "--output", metavar="TRACE", help="trace file (default: SCRIPT_STEM.rtrace)")
    rec.add_argument("-m", dest="module", metavar="MODULE", help="run a library module as a script")
    rec.add_argument("--include", action="append", default=[], metavar="GLOB", help="also trace these files")
    rec.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="never trace these files")
    rec.add_argument("--max-steps", type=int, metavar="N", help="stop recording after N steps")
    rec.add_argument("--value-limit", type=int, default=1000, metavar="CHARS", help="repr length limit")
    rec.add_argument("--root", metavar="DIR", help="trace files under DIR (default: the script's directory)")
    rec.add_argument("--chunk-steps", type=int, default=8192, help=argparse.SUPPRESS)
    rec.add_argument("script", nargs="?", metavar="SCRIPT", help="the program to run")
    rec.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the program's arguments")

    info = sub.add_parser("info", help="summarise a trace file")
    info.add_argument("trace", metavar="TRACE")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    exp = sub.add_parser("export", help="print every step as JSON lines")
    exp.add_argument("trace", metavar="TRACE")
    exp.add_argument("--format", choices=["jsonl"], default="jsonl")

    rep = sub.add_parser("replay", help="debug a trace with pdb's commands, forward and backward",
                         description="Debug TRACE with pdb's commands, forward and backward. With --neural, "
                                     "TRACE is a Python file that is never run: the model predicts its steps "
                                     "as you navigate (from --call, or from the top of the script).")
    rep.add_argument("trace", metavar="TRACE", help="a trace file (with --neural: a Python file)")
    rep.add_argument("--neural", action="store_true", help="debug the model's prediction of FILE instead")
    rep.add_argument("--call", metavar="EXPR", help='with --neural: the entry call, like "f(1, [2, 3])"')
    rep.add_argument("--model", metavar="PATH", help="with --neural: model directory (default: bundled)")
    rep.add_argument("--max-steps", type=int, default=500, metavar="N",
                     help="with --neural: predict at most N steps (500)")

    demo = sub.add_parser("demo", help="record a bundled sample program and replay it")
    demo.add_argument("--sample", default="bubble_sort.py", help="sample file name in samples/")
    for module_name in _SUBCOMMAND_MODULES if extensions else ():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an optional part (its extra not installed) simply has no subcommand
        module.register(sub)  # adds its parser(s) with set_defaults(handler=callable(args) -> int)
    return parser


# Parts of Retrograde that add subcommands: each module has register(subparsers); the parsers it adds
# set a `handler` default, a callable taking the parsed arguments and returning the exit code.
_SUBCOMMAND_MODULES = ("tui.cli", "tracer.corpus.cli", "neural.cli")


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        builtin = bool(args_list) and args_list[0] in _BUILTIN_COMMANDS
        args = _parser(extensions=not builtin).parse_args(args_list)
    except UsageError as exc:
        return _fail(str(exc), 2)
    try:
        if args.command == "record":
            return cmd_record(args)
        if args.command == "info":
            return cmd_info(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "demo":
            return cmd_demo(args)
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args))
        _parser().print_help(sys.stderr)
        return 2
    except TraceFormatError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def cmd_record(args: argparse.Namespace) -> int:
    from tracer.monitor import Recorder, RecorderError
    from tracer.run import ProgramNotFound, load_script, run_under_recorder

    if args.module and args.script:
        args.args = [args.script, *args.args]
        args.script = None
    if not args.module and not args.script:
        return _fail("record needs a SCRIPT or -m MODULE (see 'retrograde record --help')", 2)
    if args.max_steps is not None and args.max_steps <= 0:
        return _fail("--max-steps must be a positive number", 2)
    if args.script:
        try:
            load_script(args.script)
        except ProgramNotFound as exc:
            return _fail(str(exc), 2)
        except SyntaxError:
            pass  # reported by the run, exactly as python reports it
        stem = os.path.splitext(os.path.basename(args.script))[0]
        root = args.root or os.path.dirname(os.path.abspath(args.script))
    else:
        import importlib.util

        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(args.module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return _fail(f"no module named {args.module!r}", 1)
        stem = args.module.rsplit(".", 1)[-1]
        root = args.root or os.getcwd()
    output = args.output or f"{stem}.rtrace"
    recorder = Recorder(
        output,
        root=root,
        include=args.include,
        exclude=args.exclude,
        max_steps=args.max_steps,
        value_limit=args.value_limit,
        chunk_steps=max(args.chunk_steps, 1),
        argv=[args.script or args.module, *args.args],
    )
    if sys.stderr.isatty():
        import atexit

        def _report() -> None:
            try:
                from replay.recorded import RecordedTimeline

                timeline = RecordedTimeline(output)
                print(f"{PROG}: recorded {len(timeline)} steps into {output}", file=sys.stderr)
            except Exception:
                pass

        atexit.register(_report)  # runs after the recorder's own atexit handler (LIFO order)
    try:
        return run_under_recorder(recorder, script=args.script, module=args.module, args=args.args)
    except RecorderError as exc:
        return _fail(str(exc))


def trace_info(path: str) -> dict[str, Any]:
    from replay.recorded import RecordedTimeline

    timeline = RecordedTimeline(path)
    reader = timeline.reader
    footer = reader.footer or {}
    header = reader.header
    line_steps = sum(entry.summary.line_steps for entry in reader.chunks)
    size = reader.size
    duration = footer.get("duration")
    funcs = sorted({info.qualname for info in reader.codes.values()})
    info = {
        "trace": os.path.abspath(path),
        "program": header.get("argv", [None])[0] if header.get("argv") else None,
        "argv": header.get("argv", []),
        "python": header.get("python"),
        "format_version": header.get("format_version"),
        "cwd": header.get("cwd"),
        "start_time": header.get("start_time"),
        "steps": len(timeline),
        "line_steps": line_steps,
        "chunks": len(reader.chunks),
        "duration_s": duration,
        "files": timeline.files,
        "functions": funcs,
        "size_bytes": size,
        "bytes_per_line_step": round(size / line_steps, 3) if line_steps else None,
        "exit": footer.get("exit"),
        "truncated": reader.truncated,
        "truncated_at": reader.truncated_at,
        "max_steps_reached": bool(footer.get("max_steps_reached")),
        "recorder_error": footer.get("error"),
    }
    timeline.close()
    return info


def cmd_info(args: argparse.Namespace) -> int:
    info = trace_info(args.trace)
    if args.json:
        print(json.dumps(info))
        return 0
    if info["truncated_at"] is not None:
        status = f"truncated at step {info['truncated_at']} (the recording did not finish)"
    elif info["max_steps_reached"]:
        status = f"stopped at --max-steps after {info['steps']} steps"
    else:
        status = "complete"
    exit_info = info["exit"] or {}
    lines = [
        f"trace:        {info['trace']}",
        f"program:      {' '.join(str(a) for a in info['argv'])}",
        f"python:       {info['python']} (trace format {info['format_version']})",
        f"steps:        {info['steps']} ({info['line_steps']} line steps, {info['chunks']} chunks)",
        f"duration:     {info['duration_s']:.3f} s"
        if info["duration_s"] is not None
        else "duration:     unknown",
        f"size:         {describe_bytes(info['size_bytes'])}"
        + (f" ({info['bytes_per_line_step']} bytes per line step)" if info["bytes_per_line_step"] else ""),
        f"status:       {status}",
        f"exit:         {_describe_exit(exit_info)}",
        f"files ({len(info['files'])}):",
        *(f"  {f}" for f in info["files"]),
        f"functions ({len(info['functions'])}): {', '.join(info['functions'][:30])}"
        + (" ..." if len(info["functions"]) > 30 else ""),
    ]
    if info["recorder_error"]:
        lines.append(f"warning:      {info['recorder_error']}")
    print("\n".join(lines))
    return 0


def _describe_exit(exit_info: dict[str, Any]) -> str:
    kind = exit_info.get("kind")
    if kind == "exit":
        return f"exit code {exit_info.get('code')}"
    if kind == "exception":
        return f"uncaught {exit_info.get('type')}: {exit_info.get('message', '')}".rstrip(": ")
    if kind == "interrupt":
        return "interrupted (KeyboardInterrupt)"
    return str(kind or "unknown")


def cmd_export(args: argparse.Namespace) -> int:
    from replay.recorded import RecordedTimeline
    from tracer.values import decode_text

    timeline = RecordedTimeline(args.trace)
    if timeline.truncated_at is not None:
        print(f"{PROG}: note: {args.trace} is truncated at step {timeline.truncated_at}", file=sys.stderr)
    write = sys.stdout.write
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    for step, state in timeline.iter_states():
        record = {
            "step": step.index,
            "event": step.event,
            "file": step.file,
            "line": step.line,
            "func": step.func,
            "depth": step.depth,
            "thread": step.thread,
            "locals": {name: decode_text(enc)[0] for name, enc in state.items()},
            "value": step.value.text if step.value is not None else None,
        }
        write(dumps(record))
        write("\n")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from replay.recorded import RecordedTimeline

    try:
        from replay.repl import run_replay
    except ImportError:
        return _fail("the replay command line is not available in this build")
    if getattr(args, "neural", False):
        try:
            from neural.cli import NeuralCliError, neural_timeline
        except ImportError:
            return _fail("--neural needs the neural part (pip install 'retrograde[neural]')")
        try:
            predicted = neural_timeline(args.trace, args.call, args.model, args.max_steps)
        except NeuralCliError as exc:
            return _fail(str(exc))
        return run_replay(predicted, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())
    if getattr(args, "call", None) is not None:
        return _fail("--call goes with --neural (a recorded trace starts where the program did)", 2)
    timeline = RecordedTimeline(args.trace)
    if timeline.truncated_at is not None:
        print(f"{PROG}: note: {args.trace} is truncated at step {timeline.truncated_at}", file=sys.stderr)
    if len(timeline) == 0:
        return _fail(f"{args.trace} holds no steps (nothing of the program's own code ran)")
    return run_replay(timeline, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())


def samples_dir() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")


def cmd_demo(args: argparse.Namespace) -> int:
    import subprocess
    import tempfile

    sample = os.path.join(samples_dir(), args.sample)
    if not os.path.isfile(sample):
        return _fail(f"no bundled sample named {args.sample!r} in {samples_dir()}", 2)
    out_dir = tempfile.mkdtemp(prefix="retrograde-demo-")
    trace = os.path.join(out_dir, os.path.splitext(args.sample)[0] + ".rtrace")
    print(f"{PROG}: recording {sample}", file=sys.stderr)
    result = subprocess.run(
        [sys.executable, "-m", "tracer", "record", "-o", trace, sample], stdin=subprocess.DEVNULL
    )
    if not os.path.exists(trace):
        return _fail("the recording failed")
    print(f"{PROG}: program exited with {result.returncode}; trace saved as {trace}\n", file=sys.stderr)
    cmd_info(argparse.Namespace(trace=trace, json=False))
    print()
    if sys.stdin.isatty() or args.sample != "bubble_sort.py":
        return cmd_replay(argparse.Namespace(trace=trace))
    # No terminal to type into: take a short scripted tour, forward and backward.
    import io

    from replay.recorded import RecordedTimeline
    from replay.repl import run_replay

    tour = ["b 14", "c", "c", "p items", "rc", "p items", "rs", "p items", "history swapped", "w", "q"]
    print(f"{PROG}: no terminal, so a scripted tour: {'; '.join(tour)}\n")
    script = io.StringIO("\n".join(tour) + "\n")
    status = run_replay(RecordedTimeline(trace), script, sys.stdout, interactive=False)
    try:
        from neural.cli import cmd_predict
    except ImportError:
        return status
    call, actions = "bubble_sort([3, 1, 2])", "s,s,n,n,r"
    print(f"\n{PROG}: and the bundled model predicts {call} without running it "
          f"(retrograde predict {args.sample} --call '{call}' --actions {actions}):\n")
    sys.stdout.flush()
    return status or cmd_predict(argparse.Namespace(file=sample, call=call, model=None, max_steps=500,
                                                    actions=actions, json=False))
