"""The Timeline protocol: what every navigable execution (recorded or predicted) offers the engine."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tracer.format import Event

# Step events. "line" steps are where sys.settrace would report 'line'; "call"/"return" bracket a frame's
# activation; "exception" is an exception raised in (or propagating into) the frame; "unwind" is the frame
# exiting by an exception (live pdb shows it as --Return-- with None; the replay as --Unwind-- with the
# exception); "yield"/"resume" suspend and resume a generator or coroutine frame (pdb shows them as
# --Return-- and --Call--). Event is a StrEnum: it compares equal to these strings.
EVENTS: tuple[str, ...] = tuple(Event)


class TimelineError(Exception):
    """A timeline cannot be read or a step does not exist."""


@dataclass(frozen=True, slots=True)
class Value:
    """A recorded value: its bounded repr, and whether that repr is a Python literal of the real value."""

    text: str
    literal: bool = False  # ast.literal_eval(text) rebuilds the value (builtins only, never truncated)
    truncated: bool = False  # text was cut at the recorder's limit and ends with "..."
    # A builtin container whose text was cut but which the trace holds whole (format 5): builds it. Its
    # elements are the recorded values; one that was not a builtin value is a tracer.objects.OpaqueValue.
    full: Callable[[], object] | None = field(default=None, compare=False, repr=False)

    @property
    def rebuildable(self) -> bool:
        """True when python() gives the value (a literal, or a container recorded whole)."""
        return self.literal or self.full is not None

    def python(self) -> object:
        """The value itself for builtins (via ast.literal_eval, or rebuilt from the trace's objects);
        raises ValueError for opaque values."""
        if self.full is not None:
            return self.full()
        if not self.literal:
            raise ValueError(f"{self.text} is not a recorded literal")
        return ast.literal_eval(self.text)


@dataclass(frozen=True, slots=True)
class Step:
    """One position on the timeline."""

    index: int
    event: str  # one of EVENTS (an Event when read from a trace file)
    file: str  # absolute path
    line: int
    func: str  # qualified name; "<module>" for module code
    depth: int  # traced frames below this one on its thread (module code of the main script: 0)
    thread: int  # 0 for the first thread seen (the main thread), then 1, 2, ... in order of appearance
    frame_id: int  # unique per frame activation within the timeline (a generator keeps its id across resumes)
    value: Value | None = None  # return value, yielded value or exception at return/yield/exception/unwind


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """What a range of steps contains, so searches can skip ranges that cannot match."""

    start: int  # first step index
    stop: int  # one past the last step index
    lines: frozenset[tuple[str, int]]  # (file, line) pairs that occur
    funcs: frozenset[str]  # qualified names that occur
    min_depth: int
    max_depth: int
    events: frozenset[str]
    changed: frozenset[str]  # local names assigned a new value somewhere in the range


@runtime_checkable
class Timeline(Protocol):
    """A sequence of steps with their full local state.

    Implemented by replay.recorded.RecordedTimeline (a trace file) and neural.NeuralTimeline (a model).
    """

    def __len__(self) -> int:
        """Steps known so far (a predicted timeline may grow as it is navigated)."""
        ...

    @property
    def complete(self) -> bool:
        """True when len() is final (no more steps will appear)."""
        ...

    def step(self, index: int) -> Step:
        """The step at index; raises IndexError outside 0 <= index < len(self) (after trying to grow)."""
        ...

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        """Steps start..stop-1 in order (stop clipped to the end), cheaper than repeated step()."""
        ...

    def locals_at(self, index: int) -> dict[str, Value]:
        """The complete locals of the step's frame just before the step runs (what pdb would show)."""
        ...

    def stack_at(self, index: int) -> list[Step]:
        """The call stack at index, outermost first, ending with step(index) itself.

        Each outer entry is that frame's most recent step at or before index (its current line).
        """
        ...

    def source(self, file: str) -> str | None:
        """Source text of a file as recorded (None when unknown)."""
        ...

    def output_until(self, index: int) -> str:
        """Everything the program wrote to stdout and stderr before step index ran."""
        ...

    def summaries(self) -> Sequence[ChunkSummary]:
        """Summaries covering [0, len(self)) in order; a backend without them returns one broad summary."""
        ...
