"""The recorder's commands (record, info, export) and the command-line machinery every package shares.

Each package adds its commands through a `register(subparsers)` function in its own `cli.py`: the
parsers it adds set a `handler` default, a callable taking the parsed arguments and returning the exit
code. `run` builds the command line from such registrars; the front end (`retrograde.cli`) passes them
all, `python -m tracer` only the recorder's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tracer.format import (
    TraceFormatError,
    TraceReader,
    damage_sentence,
    describe_bytes,
    export_records,
)

PROG = "retrograde"

# Adds subcommands to the parser's subparsers action.
Registrar = Callable[[Any], None]
# Returns a registrar, or None when that part of Retrograde is not installed (its extra is missing).
RegistrarLoader = Callable[[], Registrar | None]


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    # Set on a command that runs a program (record): its options end at SCRIPT or at -m MODULE, and
    # every later argument is the program's, even one that looks like an option (as with python).
    ends_at_program = False

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self.ends_at_program or args is None:
            return super().parse_known_args(args, namespace)
        own, program, rest = self._split_program(list(args))
        parsed, extras = super().parse_known_args(own + program, namespace)
        parsed.args = rest
        return parsed, extras

    def _split_program(self, args: list[str]) -> tuple[list[str], list[str], list[str]]:
        """(this command's options, [SCRIPT] or ["-m", MODULE], the program's arguments)."""
        index = 0
        while index < len(args):
            token = args[index]
            if token == "--":
                return args[:index], args[index + 1 : index + 2], args[index + 2 :]
            if token == "-m" or (token.startswith("-m") and not token.startswith("--")):
                module = token[2:] or (args[index + 1] if index + 1 < len(args) else None)
                after = index + (1 if token[2:] else 2)
                return args[:index], (["-m", module] if module is not None else ["-m"]), args[after:]
            if not token.startswith("-") or token == "-":
                return args[:index], [token], args[index + 1 :]
            index += 2 if self._takes_separate_value(token) else 1
        return args, [], []

    def _takes_separate_value(self, token: str) -> bool:
        """Whether an option token is followed by its value as the next argument."""
        if "=" in token:
            return False
        actions = self._option_string_actions
        action = actions.get(token)
        if action is None and token.startswith("--"):
            matches = [a for name, a in actions.items() if name.startswith(token)]
            action = matches[0] if len(matches) == 1 else None
        if action is None and not token.startswith("--") and len(token) > 2:
            return False  # -oFILE: the value is attached
        return action is not None and action.nargs != 0


def fail(message: str, code: int = 1) -> int:
    """Print `retrograde: MESSAGE` on stderr and return the exit code."""
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def build_parser(
    loaders: Sequence[RegistrarLoader], command: str | None = None
) -> argparse.ArgumentParser:
    """The command line of the registrars the loaders give, in order.

    With `command`, loading stops at the first registrar that adds it: `retrograde record` then imports
    nothing beyond the recorder (the TUI's and the model's modules cost tens of milliseconds to import).
    """
    parser = _Parser(prog=PROG, description="Record Python programs and debug them forward and backward.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for load in loaders:
        register = load()
        if register is None:
            continue
        register(sub)
        if command is not None and command in sub.choices:
            break
    return parser


def run(argv: Sequence[str] | None, loaders: Sequence[RegistrarLoader]) -> int:
    """Parse argv (default: sys.argv[1:]) and run the command's handler; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and not args_list[0].startswith("-") else None
    try:
        args = build_parser(loaders, command).parse_args(args_list)
    except UsageError as exc:
        return fail(str(exc), 2)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args))
        build_parser(loaders).print_help(sys.stderr)
        return 2
    except TraceFormatError as exc:
        return fail(str(exc))
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        return fail("interrupted", 130)


def _corpus_registrar() -> Registrar | None:
    try:
        from tracer.corpus import cli
    except ImportError:
        return None
    return cli.register


# `python -m tracer`: the recorder's commands and the corpus builder, nothing from the layers above.
TRACER_LOADERS: tuple[RegistrarLoader, ...] = (lambda: register, _corpus_registrar)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tracer`: record, info, export and corpus (the full command line is `retrograde`)."""
    return run(argv, TRACER_LOADERS)


def register(subparsers: Any) -> None:
    """Add record, info and export to the command line."""
    rec = subparsers.add_parser(
        "record", help="run a program and record every line step into a trace file",
        usage=f"{PROG} record [options] (SCRIPT | -m MODULE) [ARGS ...]",
        description="Run SCRIPT (or MODULE, as `python -m` does) and record every step into a trace. "
                    "Everything after SCRIPT or -m MODULE is the program's own arguments: "
                    "options of record go before.")
    rec.add_argument("-o", "--output", metavar="TRACE", help="trace file (default: SCRIPT_STEM.rtrace)")
    if isinstance(rec, _Parser):
        rec.ends_at_program = True  # like python, SCRIPT or -m MODULE ends the options (pytest -q -x)
    rec.add_argument("-m", dest="module", metavar="MODULE",
                     help="run a library module as a script (the rest of the line is its arguments)")
    rec.add_argument("--include", action="append", default=[], metavar="GLOB", help="also trace these files")
    rec.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="never trace these files")
    rec.add_argument("--max-steps", type=int, metavar="N", help="stop recording after N steps")
    rec.add_argument("--value-limit", type=int, default=1000, metavar="CHARS", help="repr length limit")
    rec.add_argument("--root", metavar="DIR", help="trace files under DIR (default: the script's directory)")
    rec.add_argument("--chunk-steps", type=int, default=8192, help=argparse.SUPPRESS)
    rec.add_argument("script", nargs="?", metavar="SCRIPT", help="the program to run")
    rec.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the program's arguments")
    rec.set_defaults(handler=cmd_record)

    info = subparsers.add_parser("info", help="summarise a trace file")
    info.add_argument("trace", metavar="TRACE")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=cmd_info)

    exp = subparsers.add_parser("export", help="print every step as JSON lines")
    exp.add_argument("trace", metavar="TRACE")
    exp.add_argument("--format", choices=["jsonl"], default="jsonl")
    exp.set_defaults(handler=cmd_export)


def cmd_record(args: argparse.Namespace) -> int:
    """Run the program under the recorder: its output, exit code and exceptions are python's."""
    from tracer.monitor import Recorder, RecorderError
    from tracer.run import ProgramNotFound, ScriptLoadError, find_main, run_under_recorder

    module: str | None = args.module
    program_args = list(args.args)
    if not module and not args.script:
        return fail("record needs a SCRIPT or -m MODULE (see 'retrograde record --help')", 2)
    if args.max_steps is not None and args.max_steps <= 0:
        return fail("--max-steps must be a positive number", 2)
    main_path: str | None = None
    if args.script:
        try:
            main_path = find_main(args.script)
        except ProgramNotFound as exc:
            return fail(str(exc), 2)
        except ScriptLoadError as exc:
            return fail(str(exc), 1)
        stem = os.path.splitext(os.path.basename(os.path.normpath(args.script)))[0]
        root = args.root or (
            os.path.abspath(args.script) if main_path else os.path.dirname(os.path.abspath(args.script))
        )
    else:
        assert module is not None
        import importlib.util

        sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return fail(f"no module named {module!r}", 1)
        stem = module.rsplit(".", 1)[-1]
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
        argv=[str(args.script or module), *program_args],
    )
    if sys.stderr.isatty():
        import atexit

        def _report() -> None:
            try:
                with TraceReader(output) as reader:
                    steps = reader.step_count
                print(f"{PROG}: recorded {steps} steps into {output}", file=sys.stderr)
            except Exception:
                pass

        atexit.register(_report)  # runs after the recorder's own atexit handler (LIFO order)
    try:
        return run_under_recorder(
            recorder, script=args.script, module=module, args=program_args, main_path=main_path
        )
    except RecorderError as exc:
        return fail(str(exc))


def trace_info(path: str) -> dict[str, Any]:
    """A trace's summary: program, python, steps, size, files, functions, how the recording ended, and
    the damage found by reading every chunk (`damage`: [] for a whole file)."""
    with TraceReader(path) as reader:
        damage = reader.verify()
        unreadable = sum((d.stop or 0) - (d.start or 0) for d in damage if d.part == "chunk")
        footer = reader.footer or {}
        header = reader.header
        line_steps = sum(entry.summary.line_steps for entry in reader.chunks)
        size = reader.size
        argv = header.get("argv") or []
        return {
            "trace": os.path.abspath(path),
            "program": argv[0] if argv else None,
            "argv": header.get("argv", []),
            "python": header.get("python"),
            "format_version": header.get("format_version"),
            "cwd": header.get("cwd"),
            "start_time": header.get("start_time"),
            "steps": reader.step_count,
            "line_steps": line_steps,
            "chunks": len(reader.chunks),
            "duration_s": footer.get("duration"),
            "files": sorted({file for file, _offset in reader.files.values()}),
            "functions": sorted({info.qualname for info in reader.codes.values()}),
            "size_bytes": size,
            "bytes_per_line_step": round(size / line_steps, 3) if line_steps else None,
            "exit": footer.get("exit"),
            "truncated": reader.truncated,
            "truncated_at": reader.truncated_at,
            "max_steps_reached": bool(footer.get("max_steps_reached")),
            "recorder_error": footer.get("error"),
            "damaged": bool(damage),
            "damage": [d.as_json() for d in damage],
            "readable_steps": reader.step_count - unreadable,
            "damage_text": damage_sentence(path, damage, len(reader.chunks)) if damage else None,
        }


def cmd_info(args: argparse.Namespace) -> int:
    """Print the summary of a trace (as one JSON object with --json); exit status 1 if it is damaged."""
    info = trace_info(args.trace)
    status = _info_status(info)
    if args.json:
        print(json.dumps(dict(info, status=status)))
        return _damage_exit(info)
    if info["damaged"]:
        status = "damaged: " + "; ".join(info["damage_text"].split(" is damaged: ", 1)[1:])
    elif info["truncated_at"] is not None:
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
    return _damage_exit(info)


def _info_status(info: dict[str, Any]) -> str:
    """One word for --json: damaged, truncated, max_steps or complete."""
    if info["damaged"]:
        return "damaged"
    if info["truncated_at"] is not None:
        return "truncated"
    return "max_steps" if info["max_steps_reached"] else "complete"


def _damage_exit(info: dict[str, Any]) -> int:
    """0 for an undamaged trace; else the damage sentence on stderr and 1."""
    if not info["damaged"]:
        return 0
    return fail(
        f"{info['damage_text']}; {info['readable_steps']} of {info['steps']} steps still read "
        "(retrograde export writes them)"
    )


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
    """Print every step of the trace as one JSON object per line (tracer.format.EXPORT_FIELDS)."""
    with TraceReader(args.trace) as reader:
        if reader.truncated_at is not None and not reader.damage:
            print(f"{PROG}: note: {args.trace} is truncated at step {reader.truncated_at}", file=sys.stderr)
        write = sys.stdout.write
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        exported = 0
        # A damaged chunk's steps are left out and the export goes on: nothing that reads is lost.
        for record in export_records(reader, skip_damaged=True):
            write(dumps(record))
            write("\n")
            exported += 1
        reader.verify_files()  # a few records: the paths and sources the steps refer to
        damage = reader.damage
        if damage:
            sys.stdout.flush()
            return fail(
                f"{damage_sentence(args.trace, damage, len(reader.chunks))}; exported the "
                f"{exported} of {reader.step_count} steps that still read, so the output has gaps "
                "(record the program again for a whole trace)"
            )
    return 0
