"""Shared timelines for the replay tests: hand-built ones and reference recordings of tests/data scripts."""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from replay.memory import ListTimeline
from replay.timeline import Step, Value

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_RECORDER = Path(__file__).resolve().parent / "reference_recorder.py"


@functools.cache
def reference_timeline(name: str, chunk_size: int = 16) -> ListTimeline:
    """tests/data/NAME recorded by the settrace reference recorder (cached for the session)."""
    script = DATA / name
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.jsonl"
        subprocess.run(
            [sys.executable, str(REFERENCE_RECORDER), str(out), str(script)],
            capture_output=True, text=True, timeout=60, cwd=str(DATA), check=False,
        )
        with open(out, encoding="utf-8") as handle:
            return ListTimeline.from_export(handle, chunk_size=chunk_size)


FILE = "/virtual/prog.py"
SOURCE = """\
def f(a):
    b = a + 1
    return b


x = 1
y = f(x)
x = y * 2
"""


def record(index: int, event: str, line: int, func: str, depth: int, frame: int,
           value: str | None = None, thread: int = 0) -> Step:
    return Step(index, event, FILE, line, func, depth, thread, frame,
                None if value is None else Value(value, literal=True))


def build(rows: Iterable[tuple[str, int, str, int, int, str | None, dict[str, object]]],
          source: str = SOURCE, chunk_size: int = 4) -> ListTimeline:
    """A ListTimeline from (event, line, func, depth, frame, value, locals) rows."""
    steps: list[Step] = []
    states: list[dict[str, Value]] = []
    for i, (event, line, func, depth, frame, value, names) in enumerate(rows):
        steps.append(record(i, event, line, func, depth, frame, value))
        states.append({k: Value(repr(v), literal=True) for k, v in names.items()})
    return ListTimeline(steps, states, {FILE: source}, chunk_size=chunk_size)


def small_program() -> ListTimeline:
    """SOURCE as settrace would see it."""
    return build([
        ("call", 0, "<module>", 0, 0, None, {}),
        ("line", 1, "<module>", 0, 0, None, {}),
        ("line", 6, "<module>", 0, 0, None, {"f": 0}),
        ("line", 7, "<module>", 0, 0, None, {"f": 0, "x": 1}),
        ("call", 1, "f", 1, 1, None, {"a": 1}),
        ("line", 2, "f", 1, 1, None, {"a": 1}),
        ("line", 3, "f", 1, 1, None, {"a": 1, "b": 2}),
        ("return", 3, "f", 1, 1, "2", {"a": 1, "b": 2}),
        ("line", 8, "<module>", 0, 0, None, {"f": 0, "x": 1, "y": 2}),
        ("return", 8, "<module>", 0, 0, "None", {"f": 0, "x": 4, "y": 2}),
    ])
