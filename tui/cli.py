"""`retrograde tui TRACE` | `retrograde tui SCRIPT [ARGS...]`: open a trace (recorded first) in the TUI."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Any

PROG = "retrograde"
TRACE_MAGIC = b"RTGTRACE"


class TuiError(Exception):
    """A user-facing failure before the TUI starts: one sentence, printed as `retrograde: ...`."""


def register(subparsers: Any) -> None:
    """Add the `tui` subcommand to the retrograde command line."""
    parser = subparsers.add_parser(
        "tui", help="debug a trace (or record a script and debug it) in a terminal UI",
        description="Open TRACE in the time-travel debugger UI; given a Python SCRIPT instead, record it "
                    "(its output goes into the trace, its stdin is empty) and open the recording.")
    parser.add_argument("target", metavar="TRACE|SCRIPT", help="a trace file, or a script to record")
    parser.add_argument("--neural", action="store_true",
                        help="SCRIPT is never run: debug the model's prediction of it (from --call)")
    parser.add_argument("--call", metavar="EXPR", help='with --neural: the entry call, like "f(1, [2, 3])"')
    parser.add_argument("--predict", action="store_true",
                        help="beside a recording, show the model's prediction of each next step (p toggles)")
    parser.add_argument("--model", metavar="PATH",
                        help="model for --neural, --predict and :whatif (default: bundled)")
    parser.add_argument("--max-steps", type=int, default=500, metavar="N",
                        help="with --neural: predict at most N steps (500)")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="the script's arguments")
    parser.set_defaults(handler=run)


def is_trace(path: str) -> bool:
    """Whether the file is a trace (by its first bytes, not its name); raises TuiError if unreadable."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(TRACE_MAGIC)) == TRACE_MAGIC
    except FileNotFoundError:
        raise TuiError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TuiError(f"{path} is a directory, not a trace or a script") from None
    except OSError as exc:
        raise TuiError(f"cannot read {path}: {exc.strerror}") from None


def record(script: str, args: list[str], trace: str) -> None:
    """Record `script` into `trace` in a child process whose stdin and stdout stay off the terminal."""
    import tracer

    project = os.path.dirname(os.path.dirname(os.path.abspath(tracer.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    if sys.stderr.isatty():
        print(f"{PROG}: recording {script}", file=sys.stderr)
    result = subprocess.run(
        [sys.executable, "-m", "tracer", "record", "-o", trace, script, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        text=True, errors="replace", check=False,
    )
    if not os.path.exists(trace):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix(f"{PROG}: ") if lines else f"exit status {result.returncode}"
        raise TuiError(f"recording {script} failed: {reason}")


def open_timeline(path: str) -> Any:
    """The RecordedTimeline of a trace file, or TuiError with the reason it cannot be replayed."""
    from replay.recorded import RecordedTimeline
    from replay.timeline import TimelineError
    from tracer.format import TraceFormatError

    try:
        timeline = RecordedTimeline(path)
    except (TraceFormatError, TimelineError) as exc:
        raise TuiError(str(exc)) from None
    except OSError as exc:
        raise TuiError(f"cannot read {path}: {exc.strerror}") from None
    if len(timeline) == 0:
        raise TuiError(f"{path} holds no steps (nothing of the program's own code ran)")
    from replay.cli import opening_refusal

    refusal = opening_refusal(timeline, "the TUI")  # a damaged first or last chunk: a clean refusal
    if refusal is not None:
        timeline.close()
        raise TuiError(refusal)
    return timeline


def run(args: argparse.Namespace) -> int:
    """The `tui` subcommand's handler: the exit status."""
    try:
        neural = getattr(args, "neural", False) or "--neural" in args.args
        if args.args and (neural or (os.path.isfile(args.target) and is_trace(args.target))):
            _take_late_options(args)  # `tui FILE --call ...`: the options came after the file
        if getattr(args, "neural", False):
            return launch_neural(args)
        if getattr(args, "call", None) is not None:
            raise TuiError("--call goes with --neural (a recorded trace starts where the program did)")
        with tempfile.TemporaryDirectory(prefix="retrograde-tui-") as workdir:
            target = args.target
            if is_trace(target):
                if args.args:
                    raise TuiError(f"{target} is a trace: arguments go with a SCRIPT to record, not a trace")
                trace, title = target, os.path.basename(target)
            else:
                trace = os.path.join(workdir, os.path.splitext(os.path.basename(target))[0] + ".rtrace")
                record(target, list(args.args), trace)
                title = os.path.basename(target)
            if getattr(args, "predict", False):
                try:
                    from neural.cli import NeuralCliError, load_predictor
                except ImportError:
                    raise TuiError("--predict needs the neural part: the neural extra") from None
                timeline = open_timeline(trace)
                try:
                    predictor = load_predictor(args.model)
                except NeuralCliError as exc:
                    raise TuiError(str(exc)) from None
                return launch(timeline, title, predictor=predictor, model=args.model)
            return launch(open_timeline(trace), title, model=args.model)
    except TuiError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1


def _take_late_options(args: argparse.Namespace) -> None:
    """Options written after a file that takes no program arguments (a trace, or a --neural file)."""
    late = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    late.add_argument("--neural", action="store_true")
    late.add_argument("--predict", action="store_true")
    late.add_argument("--call")
    late.add_argument("--model")
    late.add_argument("--max-steps", type=int)
    try:
        found, rest = late.parse_known_args(list(args.args))
    except argparse.ArgumentError as exc:
        raise TuiError(str(exc)) from None
    for name, value in vars(found).items():
        if value not in (None, False):
            setattr(args, name, value)
    args.args = rest


def launch_neural(args: argparse.Namespace) -> int:
    """The TUI over the model's prediction of a file that is never run."""
    try:
        from neural.cli import NeuralCliError, neural_timeline
    except ImportError:
        raise TuiError("--neural needs the neural part (pip install 'retrograde[neural]')") from None
    if args.args:
        raise TuiError("--neural takes no program arguments: the file is never run")
    try:
        timeline = neural_timeline(args.target, args.call, args.model, args.max_steps)
    except NeuralCliError as exc:
        raise TuiError(str(exc)) from None
    return launch(timeline, f"{os.path.basename(args.target)} (predicted)", open_reader=lambda: timeline,
                  model=args.model)


def whatif_forker(model: str | None = None) -> Any:
    """`:whatif`'s replay.session.Forker: neural's what-if, imported and its model loaded on first use."""
    from replay.session import NO_FORKER, ForkError, LazyForker

    def make() -> Any:
        try:
            from neural.whatif import load_forker
        except ImportError:
            raise ForkError(NO_FORKER) from None
        return load_forker(model)

    return LazyForker(make)


def launch(timeline: Any, title: str, open_reader: Any = None, predictor: Any = None,
           model: str | None = None) -> int:
    """Run the app on a terminal; refuses politely without one. `model` is what `:whatif` loads."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise TuiError("the TUI needs a terminal (try `retrograde replay TRACE` for a line-based session)")
    try:
        from tui.app import make_app
    except ImportError:
        raise TuiError("the TUI needs Textual: pip install 'retrograde[tui]'") from None
    from replay.engine import EngineError

    try:
        app = make_app(timeline, title=title, open_reader=open_reader, predictor=predictor,
                       forker=whatif_forker(model))
    except EngineError as exc:
        raise TuiError(str(exc)) from None
    result = app.run()
    damage = getattr(timeline, "damage", None)
    if damage:  # a damaged part of a recording was met (the app showed it): say so once more, and fail
        print(f"{PROG}: {timeline.damage_text()}; those steps could not be shown", file=sys.stderr)
        return 1
    return int(result or 0)
