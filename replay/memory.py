"""ListTimeline: an in-memory Timeline from steps or `retrograde export` JSONL, for tests and tools."""

from __future__ import annotations

import ast
import bisect
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from replay.source import SourceIndex, co_name
from replay.timeline import ChunkSummary, Step, TimelineError, Value

# Events that open and close a frame activation (a generator's resume/yield included).
_ENTER = frozenset({"call", "resume"})
_LEAVE = frozenset({"return", "yield", "unwind"})


def value_from_repr(text: str, literal: bool | None = None) -> Value:
    """A Value from a recorded repr; `literal` is guessed with ast.literal_eval when the record lacks it."""
    truncated = text.endswith("...") and len(text) > 1000
    if literal is None:
        literal = False
        if not truncated:
            try:
                ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
            else:
                literal = True
    return Value(text, literal=literal, truncated=truncated)


@dataclass(slots=True)
class _Frame:
    frame_id: int
    func: str
    file: str
    last: int  # index of this frame's most recent step


@dataclass(slots=True)
class _Builder:
    """Assigns frame ids and caller links while steps are appended in order."""

    stacks: dict[int, list[_Frame]] = field(default_factory=dict)
    suspended: list[_Frame] = field(default_factory=list)  # generator frames between a yield and a resume
    next_id: int = 0

    def frame_for(self, index: int, event: str, file: str, func: str, depth: int, thread: int,
                  line: int, resume_lines: dict[int, int], suspends: bool) -> tuple[int, int, str]:
        """(frame_id, caller's current step index or -1, event) for a step, keeping per-thread stacks in sync.

        settrace's vocabulary (the reference recorder's) has no resume/yield: a "call" of a generator function
        at the line where one of its frames suspended is taken as that frame's resume.
        """
        stack = self.stacks.setdefault(thread, [])
        if event == "call" and suspends and any(
                (c.func, c.file) == (func, file) and resume_lines.get(c.frame_id) == line
                for c in self.suspended):
            event = "resume"
        if event in _ENTER:
            del stack[depth:]
            frame = None
            if event == "resume":
                # The export has no frame ids: a resume continues the suspended generator of the same
                # function that yielded at this line (ambiguous only for twin generators at the same yield).
                for candidate in reversed(self.suspended):
                    if (candidate.func, candidate.file) == (func, file) and \
                            resume_lines.get(candidate.frame_id) == line:
                        frame = candidate
                        break
                if frame is None:
                    for candidate in reversed(self.suspended):
                        if (candidate.func, candidate.file) == (func, file):
                            frame = candidate
                            break
                if frame is not None:
                    self.suspended.remove(frame)
            if frame is None:
                frame = _Frame(self.next_id, func, file, index)
                self.next_id += 1
            stack.append(frame)
        else:
            del stack[depth + 1:]
            if len(stack) <= depth or stack[depth].func != func or stack[depth].file != file:
                # A record that does not continue a known frame (a trace cut mid-run): start a new one.
                del stack[depth:]
                while len(stack) < depth:
                    stack.append(_Frame(self.next_id, "?", "?", -1))
                    self.next_id += 1
                stack.append(_Frame(self.next_id, func, file, index))
                self.next_id += 1
        frame = stack[depth]
        frame.last = index
        caller = stack[depth - 1].last if depth >= 1 and len(stack) >= depth else -1
        if event in _LEAVE:
            stack.pop()
            if event == "yield" or (event == "return" and suspends):
                resume_lines[frame.frame_id] = line
                self.suspended.append(frame)
        return frame.frame_id, caller, event


class ListTimeline:
    """A complete Timeline held in lists: steps, the locals of each step, sources and program output."""

    def __init__(
        self,
        steps: Sequence[Step],
        locals_: Sequence[Mapping[str, Value]],
        sources: Mapping[str, str] | None = None,
        output: Sequence[tuple[int, str]] = (),
        callers: Sequence[int] | None = None,
        chunk_size: int = 256,
    ) -> None:
        """`output` holds (step index from which the text is visible, text); `callers` holds, per step, the
        index of the caller frame's current step (-1 at the bottom), derived from depth when omitted."""
        if len(locals_) != len(steps):
            raise TimelineError(f"{len(steps)} steps but {len(locals_)} local states")
        for i, step in enumerate(steps):
            if step.index != i:
                raise TimelineError(f"step {i} has index {step.index}")
        self._steps = list(steps)
        self._locals = [dict(names) for names in locals_]
        self._sources = dict(sources or {})
        self._output_at = [at for at, _ in output]
        self._output_text = [text for _, text in output]
        self._callers = list(callers) if callers is not None else self._callers_from_depth()
        self._summaries = self._summarize(max(1, chunk_size))

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_export(
        cls,
        lines: Iterable[str | Mapping[str, object]],
        sources: Mapping[str, str] | None = None,
        output: Sequence[tuple[int, str]] = (),
        chunk_size: int = 256,
        read_sources: bool = True,
    ) -> ListTimeline:
        """Build from `retrograde export` JSONL lines (or already decoded records).

        Frame ids come from an optional "frame" key, else from call/return nesting. Sources default to
        reading the recorded files from disk when `read_sources` is set.
        """
        records: list[dict[str, object]] = []
        for raw in lines:
            if isinstance(raw, str):
                if raw.strip():
                    records.append(json.loads(raw))
            else:
                records.append(dict(raw))
        all_sources = dict(sources or {})
        if read_sources:
            for file in {str(record["file"]) for record in records} - set(all_sources):
                try:
                    with open(file, encoding="utf-8") as handle:
                        all_sources[file] = handle.read()
                except (OSError, UnicodeDecodeError):
                    pass
        indexes = {file: SourceIndex(text) for file, text in all_sources.items()}
        steps: list[Step] = []
        local_states: list[dict[str, Value]] = []
        callers: list[int] = []
        builder = _Builder()
        resume_lines: dict[int, int] = {}
        resumed_from: dict[int, int] = {}  # frame id -> index of its last return, to relabel it a yield
        for record in records:
            index = len(steps)
            event = str(record["event"])
            file = str(record["file"])
            line = int(record["line"])  # type: ignore[call-overload]
            func = str(record["func"])
            depth = int(record["depth"])  # type: ignore[call-overload]
            thread = int(record.get("thread", 0))  # type: ignore[call-overload]
            span = indexes[file].function_at(line, co_name(func)) if file in indexes else None
            suspends = span is not None and span.suspends
            frame_id, caller, event = builder.frame_for(
                index, event, file, func, depth, thread, line, resume_lines, suspends)
            if event == "resume" and frame_id in resumed_from:
                # The return before a resume was a yield.
                previous = steps[resumed_from[frame_id]]
                if previous.event == "return":
                    steps[previous.index] = replace(previous, event="yield")
            if event in _LEAVE:
                resumed_from[frame_id] = index
            if "frame" in record:
                frame_id = int(record["frame"])  # type: ignore[call-overload]
            raw_value = record.get("value")
            value = None if raw_value is None else value_from_repr(str(raw_value))
            steps.append(Step(index, event, file, line, func, depth, thread, frame_id, value))
            names = record.get("locals") or {}
            assert isinstance(names, Mapping)
            local_states.append({str(k): value_from_repr(str(v)) for k, v in names.items()})
            callers.append(caller)
        return cls(steps, local_states, all_sources, output, callers, chunk_size)

    def _callers_from_depth(self) -> list[int]:
        callers: list[int] = []
        last_at_depth: dict[tuple[int, int], int] = {}
        for step in self._steps:
            callers.append(last_at_depth.get((step.thread, step.depth - 1), -1) if step.depth else -1)
            last_at_depth[(step.thread, step.depth)] = step.index
        return callers

    def _summarize(self, size: int) -> list[ChunkSummary]:
        summaries: list[ChunkSummary] = []
        previous: dict[int, dict[str, Value]] = {}
        for start in range(0, len(self._steps), size):
            stop = min(start + size, len(self._steps))
            chunk = self._steps[start:stop]
            changed: set[str] = set()
            for step in chunk:
                names = self._locals[step.index]
                before = previous.get(step.frame_id, {})
                changed.update(name for name, value in names.items() if before.get(name) != value)
                changed.update(name for name in before if name not in names)
                previous[step.frame_id] = names
            summaries.append(ChunkSummary(
                start=start,
                stop=stop,
                lines=frozenset((s.file, s.line) for s in chunk),
                funcs=frozenset(s.func for s in chunk),
                min_depth=min(s.depth for s in chunk),
                max_depth=max(s.depth for s in chunk),
                events=frozenset(s.event for s in chunk),
                changed=frozenset(changed),
            ))
        return summaries

    # -- Timeline protocol -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._steps)

    @property
    def complete(self) -> bool:
        return True

    def step(self, index: int) -> Step:
        if not 0 <= index < len(self._steps):
            raise IndexError(f"step {index} is outside 0..{len(self._steps) - 1}")
        return self._steps[index]

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        return iter(self._steps[max(0, start):max(0, min(stop, len(self._steps)))])

    def locals_at(self, index: int) -> dict[str, Value]:
        self.step(index)
        return dict(self._locals[index])

    def stack_at(self, index: int) -> list[Step]:
        chain = [self.step(index)]
        caller = self._callers[index]
        while caller >= 0:
            chain.append(self._steps[caller])
            caller = self._callers[caller]
        chain.reverse()
        return chain

    def source(self, file: str) -> str | None:
        return self._sources.get(file)

    def output_until(self, index: int) -> str:
        return "".join(self._output_text[:bisect.bisect_right(self._output_at, index)])

    def summaries(self) -> Sequence[ChunkSummary]:
        return self._summaries
