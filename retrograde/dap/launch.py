"""What a DAP `launch` request debugs: an existing trace, a program recorded first, or a neural timeline."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from replay.timeline import Timeline, TimelineError

# The launch attributes the adapter reads (editors/vscode/package.json declares the same set).
LAUNCH_ATTRIBUTES = frozenset({"trace", "program", "args", "cwd", "stopOnEntry", "stopAtEnd", "neural"})


class LaunchError(Exception):
    """The launch request cannot be served; one sentence for the user."""


@dataclass(slots=True)
class Launched:
    """The timeline to debug, what to call it, and how the program ended."""

    timeline: Timeline
    name: str
    exit_code: int
    workdir: tempfile.TemporaryDirectory[str] | None = None  # holds a recording made for this session

    def close(self) -> None:
        close = getattr(self.timeline, "close", None)
        if callable(close):
            close()
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None


def launch(arguments: Mapping[str, Any]) -> Launched:
    """Open, record or predict what the launch arguments name; LaunchError for anything wrong with them."""
    trace, program, neural = arguments.get("trace"), arguments.get("program"), arguments.get("neural")
    chosen = [name for name, value in (("trace", trace), ("program", program), ("neural", neural)) if value]
    if len(chosen) != 1:
        raise LaunchError("launch needs exactly one of `trace`, `program` or `neural`"
                          + (f" (got {', '.join(chosen)})" if chosen else ""))
    cwd = arguments.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not os.path.isdir(cwd)):
        raise LaunchError(f"cwd {cwd!r} is not a directory")
    if trace:
        if not isinstance(trace, str):
            raise LaunchError("`trace` must be a path")
        path = os.path.join(cwd, trace) if cwd else trace
        timeline = open_trace(path)
        return Launched(timeline, os.path.basename(path), _exit_code(timeline))
    if program:
        return record_program(program, arguments.get("args", []), cwd)
    return neural_launch(neural, cwd)


def _exit_code(timeline: Timeline) -> int:
    """The exit status the recorded program ended with (its trace's footer), as python would report it."""
    footer = getattr(timeline, "footer", None)
    status = footer.get("exit") if isinstance(footer, dict) else None
    if not isinstance(status, dict):
        return 0
    kind = status.get("kind")
    if kind == "exception":
        return 1
    if kind == "interrupt":
        return 130
    if kind == "exit":
        code = status.get("code", 0)
        if isinstance(code, int):
            return code
        return 1 if code else 0  # sys.exit("message") prints it and exits 1
    return 0


def open_trace(path: str) -> Timeline:
    """The RecordedTimeline of a trace file, or LaunchError with the reason it cannot be debugged."""
    from replay.recorded import RecordedTimeline
    from tracer.format import TraceFormatError

    if not os.path.exists(path):
        raise LaunchError(f"{path}: no such trace file")
    if os.path.isdir(path):
        raise LaunchError(f"{path} is a directory, not a trace")
    try:
        timeline = RecordedTimeline(path)
    except (TraceFormatError, TimelineError) as exc:
        raise LaunchError(str(exc)) from None
    except OSError as exc:
        raise LaunchError(f"cannot read {path}: {exc.strerror}") from None
    if len(timeline) == 0:
        raise LaunchError(f"{path} holds no steps (nothing of the program's own code ran)")
    return timeline


def record_program(program: Any, args: Any, cwd: str | None) -> Launched:
    """Record `python PROGRAM ARGS` (in cwd) into a temporary trace and open it.

    The program runs in a child process with its stdin empty and its stdout and stderr captured, so
    nothing it writes can reach the DAP stream; what it wrote is in the trace, and reaches the client as
    output events in timeline order.
    """
    if not isinstance(program, str) or not program:
        raise LaunchError("`program` must be the path of a Python script")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise LaunchError("`args` must be a list of strings")
    script = os.path.join(cwd, program) if cwd and not os.path.isabs(program) else program
    if not os.path.isfile(script):
        raise LaunchError(f"{script}: no such program")
    import tracer

    project = os.path.dirname(os.path.dirname(os.path.abspath(tracer.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    workdir = tempfile.TemporaryDirectory(prefix="retrograde-dap-")
    trace = os.path.join(workdir.name, os.path.splitext(os.path.basename(script))[0] + ".rtrace")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tracer", "record", "-o", trace, os.path.abspath(script), *args],
            cwd=cwd or None, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, text=True, errors="replace", check=False,
        )
        if not os.path.exists(trace):
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            reason = lines[-1].removeprefix("retrograde: ") if lines else f"exit status {result.returncode}"
            raise LaunchError(f"recording {script} failed: {reason}")
        timeline = open_trace(trace)
    except BaseException:
        workdir.cleanup()
        raise
    return Launched(timeline, os.path.basename(script), _exit_code(timeline), workdir)


def neural_launch(neural: Any, cwd: str | None) -> Launched:
    """The model's predicted timeline of `neural.file` from `neural.call` (the file is never run)."""
    if not isinstance(neural, Mapping) or not isinstance(neural.get("file"), str):
        raise LaunchError('`neural` must be an object like {"file": "prog.py", "call": "f(1, 2)"}')
    call = neural.get("call")
    if call is not None and not isinstance(call, str):
        raise LaunchError("`neural.call` must be a string like \"f(1, 2)\"")
    model = neural.get("model")
    max_steps = neural.get("maxSteps", 500)
    if not isinstance(max_steps, int) or isinstance(max_steps, bool):
        raise LaunchError("`neural.maxSteps` must be an integer")
    path = neural["file"]
    if cwd and not os.path.isabs(path):
        path = os.path.join(cwd, path)
    try:
        from neural.cli import NeuralCliError, neural_timeline
    except ImportError:
        raise LaunchError("a neural timeline needs the neural extra (pip install 'retrograde[neural]')") \
            from None
    try:
        timeline = neural_timeline(path, call, model, max_steps)
    except NeuralCliError as exc:
        raise LaunchError(str(exc)) from None
    except ImportError as exc:
        raise LaunchError(f"a neural timeline needs the neural extra ({exc.name or exc} is missing)") \
            from None
    return Launched(timeline, os.path.basename(path) + " (predicted)", 0)
