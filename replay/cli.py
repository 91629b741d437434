"""`retrograde replay TRACE`: debug a recording with pdb's commands, forward and backward."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from tracer.cli import PROG, fail

# Makes the timeline of a model's prediction of FILE: (file, call, model, max_steps) -> Timeline. The
# replay layer knows nothing of models: the front end passes one in (see retrograde.cli).
PredictedTimeline = Callable[[str, str | None, str | None, int], Any]


class ReplayCliError(Exception):
    """One sentence for the user: the replay cannot start."""


def register(subparsers: Any, *, predicted: PredictedTimeline | None = None) -> None:
    """Add `replay` to the command line; `predicted` makes --neural work (without it, --neural fails)."""
    rep = subparsers.add_parser(
        "replay", help="debug a trace with pdb's commands, forward and backward",
        description="Debug TRACE with pdb's commands, forward and backward. With --neural, "
                    "TRACE is a Python file that is never run: the model predicts its steps "
                    "as you navigate (from --call, or from the top of the script).")
    rep.add_argument("trace", metavar="TRACE", help="a trace file (with --neural: a Python file)")
    rep.add_argument("--neural", action="store_true", help="debug the model's prediction of FILE instead")
    rep.add_argument("--call", metavar="EXPR", help='with --neural: the entry call, like "f(1, [2, 3])"')
    rep.add_argument("--model", metavar="PATH", help="with --neural: model directory (default: bundled)")
    rep.add_argument("--max-steps", type=int, default=500, metavar="N",
                     help="with --neural: predict at most N steps (500)")
    rep.set_defaults(handler=lambda args: cmd_replay(args, predicted))


def cmd_replay(args: argparse.Namespace, predicted: PredictedTimeline | None = None) -> int:
    """Run the replay command line on the trace (or, with --neural, on the model's prediction)."""
    from replay.repl import run_replay

    if getattr(args, "neural", False):
        if predicted is None:
            return fail("--neural needs the neural part (pip install 'retrograde[neural]')")
        try:
            timeline = predicted(args.trace, args.call, args.model, args.max_steps)
        except ReplayCliError as exc:
            return fail(str(exc))
        return run_replay(timeline, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())
    if getattr(args, "call", None) is not None:
        return fail("--call goes with --neural (a recorded trace starts where the program did)", 2)
    return replay_trace(args.trace, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())


def replay_trace(path: str, stdin: TextIO, stdout: TextIO, *, interactive: bool) -> int:
    """Debug a trace file with commands read from stdin; TraceFormatError if it is not a trace."""
    from replay.recorded import RecordedTimeline
    from replay.repl import run_replay

    timeline = RecordedTimeline(path)
    if timeline.truncated_at is not None:
        print(f"{PROG}: note: {path} is truncated at step {timeline.truncated_at}", file=sys.stderr)
    if len(timeline) == 0:
        return fail(f"{path} holds no steps (nothing of the program's own code ran)")
    return run_replay(timeline, stdin, stdout, interactive=interactive)
