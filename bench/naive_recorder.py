"""A deliberately straightforward sys.monitoring recorder: what Retrograde does, without its optimisations.

On every PY_START, LINE and PY_RETURN event in the target file it snapshots every local as
{name: repr(value)}, appends a tuple to one big list, and pickles the list at exit. Used by the
benchmark as the "naive" baseline; it is honest (same repr truncation, same module-frame filtering as
Retrograde's export format) but makes no attempt to be clever.
"""

from __future__ import annotations

import json
import pickle
import sys
import types
from typing import Any

TOOL_ID = sys.monitoring.DEBUGGER_ID
MAX_REPR = 1000
EVENTS = sys.monitoring.events


def safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


class NaiveRecorder:
    """Records full local snapshots for every event in one file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.records: list[tuple[Any, ...]] = []
        self.line_steps = 0

    def snapshot(self, frame: types.FrameType) -> dict[str, str]:
        if frame.f_code.co_name == "<module>":
            return {
                name: safe_repr(value)
                for name, value in frame.f_globals.items()
                if not (name.startswith("__") and name.endswith("__"))
                and not isinstance(value, types.ModuleType)
            }
        return {name: safe_repr(value) for name, value in frame.f_locals.items()}

    def on_start(self, code: types.CodeType, offset: int) -> object:
        if code.co_filename != self.filename:
            return sys.monitoring.DISABLE
        frame = sys._getframe(1)
        record = ("call", code.co_filename, frame.f_lineno, code.co_qualname, self.snapshot(frame))
        self.records.append(record)
        return None

    def on_line(self, code: types.CodeType, line: int) -> object:
        if code.co_filename != self.filename:
            return sys.monitoring.DISABLE
        frame = sys._getframe(1)
        self.line_steps += 1
        self.records.append(("line", code.co_filename, line, code.co_qualname, self.snapshot(frame)))
        return None

    def on_return(self, code: types.CodeType, offset: int, retval: object) -> object:
        if code.co_filename != self.filename:
            return sys.monitoring.DISABLE
        frame = sys._getframe(1)
        snapshot = self.snapshot(frame)
        self.records.append(
            ("return", code.co_filename, frame.f_lineno, code.co_qualname, snapshot, safe_repr(retval))
        )
        return None

    def start(self) -> None:
        sys.monitoring.use_tool_id(TOOL_ID, "naive-recorder")
        sys.monitoring.register_callback(TOOL_ID, EVENTS.PY_START, self.on_start)
        sys.monitoring.register_callback(TOOL_ID, EVENTS.LINE, self.on_line)
        sys.monitoring.register_callback(TOOL_ID, EVENTS.PY_RETURN, self.on_return)
        sys.monitoring.set_events(TOOL_ID, EVENTS.PY_START | EVENTS.LINE | EVENTS.PY_RETURN)

    def stop(self) -> None:
        sys.monitoring.set_events(TOOL_ID, 0)
        sys.monitoring.free_tool_id(TOOL_ID)

    def dump(self, out_path: str) -> None:
        with open(out_path, "wb") as out:
            pickle.dump(self.records, out, protocol=pickle.HIGHEST_PROTOCOL)
        # Sidecar with the counts, so the benchmark need not unpickle a huge file.
        with open(out_path + ".json", "w") as meta:
            json.dump({"events": len(self.records), "line_steps": self.line_steps}, meta)
