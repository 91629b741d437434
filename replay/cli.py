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
# Makes `whatif`'s forker for --model PATH (None: the bundled model); see replay.session.Forker.
ForkerFactory = Callable[[str | None], Any]


class ReplayCliError(Exception):
    """One sentence for the user: the replay cannot start."""


def register(subparsers: Any, *, predicted: PredictedTimeline | None = None,
             forker: ForkerFactory | None = None) -> None:
    """Add `replay` to the command line; `predicted` makes --neural work (without it, --neural fails), and
    `forker` the `whatif` command (without it, whatif says what is missing)."""
    rep = subparsers.add_parser(
        "replay", help="debug a trace with pdb's commands, forward and backward",
        description="Debug TRACE with pdb's commands, forward and backward. With --neural, "
                    "TRACE is a Python file that is never run: the model predicts its steps "
                    "as you navigate (from --call, or from the top of the script).")
    rep.add_argument("trace", metavar="TRACE", help="a trace file (with --neural: a Python file)")
    rep.add_argument("--neural", action="store_true", help="debug the model's prediction of FILE instead")
    rep.add_argument("--call", metavar="EXPR", help='with --neural: the entry call, like "f(1, [2, 3])"')
    rep.add_argument("--model", metavar="PATH",
                     help="model directory for --neural and whatif (default: the bundled model)")
    rep.add_argument("--max-steps", type=int, default=500, metavar="N",
                     help="with --neural: predict at most N steps (500)")
    rep.set_defaults(handler=lambda args: cmd_replay(args, predicted, forker))


def cmd_replay(args: argparse.Namespace, predicted: PredictedTimeline | None = None,
               forker: ForkerFactory | None = None) -> int:
    """Run the replay command line on the trace (or, with --neural, on the model's prediction)."""
    from replay.repl import run_replay

    fork = forker(getattr(args, "model", None)) if forker is not None else None
    if getattr(args, "neural", False):
        if predicted is None:
            return fail("--neural needs the neural part (pip install 'retrograde[neural]')")
        try:
            timeline = predicted(args.trace, args.call, args.model, args.max_steps)
        except ReplayCliError as exc:
            return fail(str(exc))
        return run_replay(timeline, sys.stdin, sys.stdout, interactive=sys.stdin.isatty(), forker=fork)
    if getattr(args, "call", None) is not None:
        return fail("--call goes with --neural (a recorded trace starts where the program did)", 2)
    return replay_trace(args.trace, sys.stdin, sys.stdout, interactive=sys.stdin.isatty(), forker=fork)


def replay_trace(path: str, stdin: TextIO, stdout: TextIO, *, interactive: bool, forker: Any = None) -> int:
    """Debug a trace file with commands read from stdin; TraceFormatError if it is not a trace.

    A damaged trace still opens when its first step reads: the damage known on opening (header, footer)
    is noted at once, a damaged chunk met while navigating is an error for that command only, and the
    session then ends with the damage in one sentence and exit status 1."""
    from replay.recorded import RecordedTimeline
    from replay.repl import run_replay
    from replay.timeline import TimelineError

    timeline = RecordedTimeline(path)
    try:
        noted = timeline.damage
        if len(timeline) == 0:
            return fail(f"{path} holds no steps (nothing of the program's own code ran)")
        refusal = opening_refusal(timeline, "the replay")
        if refusal is not None:
            return fail(refusal)
        if noted:
            print(f"{PROG}: note: {timeline.damage_text()}", file=sys.stderr)
        elif timeline.truncated_at is not None:
            print(f"{PROG}: note: {path} is truncated at step {timeline.truncated_at}", file=sys.stderr)
        try:
            status = run_replay(timeline, stdin, stdout, interactive=interactive, forker=forker)
        except TimelineError as exc:  # outside any command (the commands report their own)
            return fail(str(exc))
        new = [d for d in timeline.damage if d not in noted]
        if new:
            return fail(f"{timeline.damage_text(new)}; those steps could not be shown")
        return max(status, 1) if noted else status
    finally:
        timeline.close()


def opening_refusal(timeline: Any, who: str) -> str | None:
    """Why `who` (the replay, the TUI) cannot open a damaged trace, or None: it starts at the first step
    and looks at the last ones (how the program ended), so the chunks holding them must read."""
    from replay.timeline import TimelineError

    try:
        timeline.step(0)
        timeline.locals_at(0)
        timeline.step(len(timeline) - 1)
    except TimelineError as exc:
        damaged = getattr(timeline.reader, "damaged_chunks", {})
        if not damaged:
            return str(exc)
        error = damaged[max(damaged)]
        return (f"{error.what}, and {who} needs the first and last steps to open; "
                "retrograde export writes the steps that still read")
    return None
