"""A small, independent sys.settrace recorder: the oracle that the differential tests hold the tracer to.

Usage: python tests/reference_recorder.py OUT.jsonl SCRIPT [ARGS...]

It runs SCRIPT the way `python SCRIPT ARGS` would and writes one JSON object per step to OUT.jsonl, in the
schema of `retrograde export`. It sees the program through sys.settrace, so it knows only settrace's four
events: a generator's yield and a frame's exit by an exception both arrive as "return" (the latter with
value "None"), and a resume arrives as "call". It deliberately shares no code with tracer/.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import types
from typing import Any, TextIO

REPR_LIMIT = 1000


def bounded_repr(value: object) -> str:
    """repr(value), cut to REPR_LIMIT characters plus "...", or a placeholder when repr itself fails."""
    try:
        text = repr(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    if len(text) > REPR_LIMIT:
        return text[:REPR_LIMIT] + "..."
    return text


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class Recorder:
    """Holds the settrace callbacks and writes each step as it happens."""

    def __init__(self, out: TextIO, root: str) -> None:
        self.out = out
        self.root = os.path.join(root, "")  # trailing separator: /a/b must not match /a/bc
        self.step = 0
        self.traced: dict[types.CodeType, bool] = {}
        # Keyed by Thread object, not ident: idents are reused once a thread has ended.
        self.threads: dict[threading.Thread, int] = {threading.main_thread(): 0}
        self.lock = threading.Lock()

    def wants(self, code: types.CodeType) -> bool:
        hit = self.traced.get(code)
        if hit is None:
            name = code.co_filename
            # "<string>" (dataclass methods), "<frozen ...>": never the program's own files, even when the
            # working directory is the script's directory.
            hit = not name.startswith("<") and os.path.abspath(name).startswith(self.root)
            self.traced[code] = hit
        return hit

    def depth(self, frame: types.FrameType) -> int:
        below = 0
        back = frame.f_back
        while back is not None:
            if self.wants(back.f_code):
                below += 1
            back = back.f_back
        return below

    def frame_locals(self, frame: types.FrameType) -> dict[str, str]:
        names = dict(frame.f_locals)
        if frame.f_code.co_name == "<module>":
            return {
                name: bounded_repr(value)
                for name, value in names.items()
                if not is_dunder(name) and not isinstance(value, types.ModuleType)
            }
        return {name: bounded_repr(value) for name, value in names.items()}

    def emit(self, frame: types.FrameType, event: str, value: str | None) -> None:
        record: dict[str, Any] = {
            "step": 0,
            "event": event,
            "file": os.path.abspath(frame.f_code.co_filename),
            "line": frame.f_lineno,
            "func": frame.f_code.co_qualname,
            "depth": self.depth(frame),
            "thread": 0,
            "locals": self.frame_locals(frame),
            "value": value,
        }
        with self.lock:
            record["thread"] = self.threads.setdefault(threading.current_thread(), len(self.threads))
            record["step"] = self.step
            self.step += 1
            self.out.write(json.dumps(record) + "\n")

    def global_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        # settrace calls this for every new frame and every generator resume; returning None leaves
        # frames outside the program's directory untraced.
        if event != "call" or not self.wants(frame.f_code):
            return None
        self.emit(frame, "call", None)
        return self.local_trace

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.emit(frame, "line", None)
        elif event == "return":
            self.emit(frame, "return", bounded_repr(arg))
        elif event == "exception":
            self.emit(frame, "exception", bounded_repr(arg[1]))
        return self.local_trace


def program_traceback(exc: BaseException, script: str) -> types.TracebackType | None:
    """The traceback without this recorder's and runpy's frames, as `python SCRIPT` would print it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    return tb


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: reference_recorder.py OUT.jsonl SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    out_path, script_arg, args = argv[1], argv[2], argv[3:]
    # Python >= 3.9 makes the main script's path absolute (co_filename, __file__, tracebacks).
    script = os.path.abspath(script_arg)
    sys.argv = [script_arg, *args]
    sys.path[0] = os.path.dirname(script)
    failure: BaseException | None = None
    with open(out_path, "w", encoding="utf-8") as out:
        recorder = Recorder(out, os.path.dirname(script))
        threading.settrace(recorder.global_trace)
        sys.settrace(recorder.global_trace)
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit:
            sys.settrace(None)
            threading.settrace(None)
            raise  # the interpreter turns it into the exit code (and prints a non-int code) as usual
        except BaseException as exc:
            failure = exc
        finally:
            sys.settrace(None)
            threading.settrace(None)
    if failure is not None:
        # The hook prints the exception's own __traceback__, so trim that rather than pass a trimmed one.
        failure.__traceback__ = program_traceback(failure, script)
        sys.excepthook(type(failure), failure, failure.__traceback__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
