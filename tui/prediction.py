"""The prediction pane: beside a recorded trace, what the model predicts for the next step, mismatches marked.

At each position the model starts from the code and the current step's full state, takes step_into, and its
state is compared with the step the recording actually took next (the next step of the same thread in the
same file, as the model's state tree sees the program). Rows are event, line, value and every local; a
field the model got right is marked ✓, a wrong or missing one ✗ with the recorded value beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from replay.timeline import Step, Timeline


@dataclass(frozen=True, slots=True)
class Row:
    field: str
    predicted: str
    recorded: str
    match: bool


def state_at(timeline: Timeline, step: Step) -> Any:
    """The model's view of a recorded step: a neural State with normalised reprs."""
    from neural.trajectory import State, normalize_repr

    locals_ = {name: normalize_repr(v.text) for name, v in timeline.locals_at(step.index).items()}
    value = normalize_repr(step.value.text) if step.value is not None else None
    return State(step.event, step.line, step.depth, step.func, locals_, value)


def next_in_file(timeline: Timeline, step: Step, limit: int = 10_000) -> Step | None:
    """The next step on the same thread in the same file (None at the end)."""
    stop = min(len(timeline), step.index + 1 + limit)
    for later in timeline.steps(step.index + 1, stop):
        if later.thread == step.thread and later.file == step.file:
            return later
    return None


def compare(predicted: Any, recorded: Any) -> list[Row]:
    """Field by field: event, line, value, then each local (recorded order, then names only predicted)."""
    rows = [
        Row("event", predicted.event, recorded.event, predicted.event == recorded.event),
        Row("line", str(predicted.line), str(recorded.line), predicted.line == recorded.line),
        Row("function", predicted.func, recorded.func, predicted.func == recorded.func),
    ]
    if predicted.value is not None or recorded.value is not None:
        same = predicted.value == recorded.value
        rows.append(Row("value", predicted.value or "-", recorded.value or "-", same))
    for name, text in recorded.locals.items():
        guess = predicted.locals.get(name)
        rows.append(Row(name, guess if guess is not None else "(missing)", text, guess == text))
    for name, guess in predicted.locals.items():
        if name not in recorded.locals:
            rows.append(Row(name, guess, "(none)", False))
    return rows


def render(rows: Sequence[Row], note: str = "") -> Text:
    text = Text()
    if note:
        text.append(note + "\n", style="dim")
    wrong = sum(not row.match for row in rows)
    text.append("all fields match\n" if not wrong else f"{wrong} of {len(rows)} fields differ\n",
                style="green" if not wrong else "bold red")
    for row in rows:
        if row.match:
            text.append("✓ ", style="green")
            text.append(f"{row.field} = {row.predicted}\n")
        else:
            text.append("✗ ", style="bold red")
            text.append(f"{row.field} = {row.predicted}", style="red")
            text.append(f"  (recorded {row.recorded})\n", style="dim")
    return text
