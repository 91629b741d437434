"""The replay engine: pdb's stepping semantics, forward and backward, over any Timeline. It never prints."""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from replay.breakpoints import Breakpoint, Catchpoint, Point, Watchpoint
from replay.expressions import EvalError, Expression, Opaque, parse_expression, truthy
from replay.source import SourceIndex, co_name
from replay.timeline import ChunkSummary, Step, Timeline, Value
from tracer.format import Event

# How settrace (and so bdb) sees each recorded event; "handled" has no settrace event and never stops.
PDB_EVENT = {
    "call": "call", "resume": "call", "line": "line", "exception": "exception",
    "return": "return", "yield": "return", "unwind": "return",
}
RETURNS = frozenset({"return", "yield", "unwind"})
ENTRIES = frozenset({"call", "resume"})
_BOTTOM = -2  # bdb's botframe: the frame below the program, never in the trace (what continue waits on)
# How far back (in steps) the search for an uncaught exception's origin looks inside one frame: a frame
# that raised after running this long is taken as the origin (the re-raise of an earlier catch is missed).
_CRASH_SCAN_LIMIT = 200_000
# How many of a frame's steps before a raise are searched for the catch that would make it a re-raise
# (`except E as err: ...; raise err`): a handler longer than this is taken for a fresh raise.
_HANDLER_SCAN_LIMIT = 10_000


class StopReason(StrEnum):
    """Why a command stopped where it did (equal to its plain string, as Stop.reason always was)."""

    STEP = "step"  # an ordinary stop
    EXCEPTION = "exception"  # stopped at an exception event
    BREAKPOINT = "breakpoint"
    WATCHPOINT = "watchpoint"
    CATCHPOINT = "catchpoint"
    END = "end"  # the search ran into the end of the trace
    START = "start"  # the search ran into the start of the trace
    CRASH = "crash"  # the uncaught exception that ended the program: pdb's post-mortem stop


class EngineError(Exception):
    """A command cannot run as asked; the message is one sentence for the user."""


class BadArgument(EngineError):
    """A command's argument is malformed or out of range."""


class NoSuchPoint(EngineError):
    """No breakpoint, watchpoint or catchpoint has that number."""


class BadExpression(EngineError):
    """An expression cannot be parsed or evaluated over the recorded values."""


class FrameError(EngineError):
    """up/down past the ends of the stack."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Where a command left the position, and why."""

    step: Step
    reason: str  # a StopReason
    number: int | None = None  # the breakpoint, watchpoint or catchpoint that caused the stop
    messages: tuple[str, ...] = ()
    moved: bool = True


@dataclass(frozen=True, slots=True)
class Crash:
    """The uncaught exception that ended the main thread, located as pdb's post-mortem sees it."""

    exception: Value  # the exception as recorded (its repr)
    index: int  # the post-mortem position: the innermost traceback frame's last step (its unwind)
    # The traceback's frames, outermost first, as post-mortem shows them: each one's line is where the
    # exception passed it (the raise site innermost) and its index is the frame's last step, so its locals
    # are its final ones.
    frames: tuple[Step, ...]

    @property
    def name(self) -> str:
        return exception_name(self.exception.text)

    @property
    def site(self) -> Step:
        """The innermost frame at its raise line."""
        return self.frames[-1]


@dataclass(frozen=True, slots=True)
class Change:
    """One step where a variable took a new value (history)."""

    step: Step
    old: Value | None
    new: Value | None


@dataclass(frozen=True, slots=True)
class _Mode:
    """bdb's stop information (stopframe, returnframe, stoplineno) as frame ids, plus the thread."""

    thread: int
    stopframe: int | None  # None: stop at every event (step); _BOTTOM: stop nowhere (continue)
    returnframe: int | None = None
    stoplineno: int = 0  # -1: never stop in stopframe
    stopframe_suspends: bool = False
    depth: int | None = None  # events of this thread deeper than this cannot stop (chunk skipping)
    # Frames bdb traces although they cannot stop (the stack when the command ran): only they report the
    # StopIteration/GeneratorExit that ends a `return` out of a generator. Frames entered later are traced
    # only in files with breakpoints.
    traced: frozenset[int] = frozenset()

    outer_depth: int | None = None  # return: the caller (any shallower frame) is bdb's stopframe

    def stop_here(self, step: Step) -> bool:
        if step.frame_id == self.stopframe:
            return self.stoplineno != -1 and step.line >= self.stoplineno
        if self.outer_depth is not None and step.depth < self.outer_depth:
            return True
        return self.stopframe is None


@dataclass(slots=True)
class _Hit:
    step: Step
    reason: StopReason
    number: int | None = None
    message: str | None = None
    keep: bool = False  # a temporary point whose condition failed to evaluate stays (bdb)


@dataclass(slots=True)
class _WatchState:
    """A watchpoint's last seen key and value during one search."""

    point: Watchpoint
    index: int = -1
    key: tuple[str | None, ...] | None = None
    pending: _Hit | None = field(default=None)  # backward: a later step whose change awaits its predecessor


class Engine:
    """Position, frame selection, breakpoints and watchpoints over a Timeline; commands return Stops."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.points: dict[int, Point] = {}
        self._next_number = 1
        self._pending: list[str] = []
        self._sources: dict[str, SourceIndex] = {}
        self._summary_cache: tuple[int, Sequence[ChunkSummary], list[int]] | None = None
        self._stack_cache: tuple[int, list[Step]] | None = None
        self.start = self._find_start()
        self.position = self.start
        self.frame_index = 0  # selected frame, counted from the innermost (0) outwards
        # At the crash as its post-mortem stop (not merely at the same step): the stack is the traceback's.
        self.post_mortem = False
        self._crash: tuple[int, Crash | None, Value | None] | None = None  # (length, crash, SystemExit)

    # -- position and frames ------------------------------------------------------------------------------
    def _find_start(self) -> int:
        """pdb's first stop: the main script's first line event (it skips everything before it)."""
        if len(self.timeline) == 0:
            raise EngineError("the trace has no steps")
        main_file = self.timeline.step(0).file
        for chunk in self._chunks():
            if "line" not in chunk.events:
                continue
            for step in self.timeline.steps(chunk.start, chunk.stop):
                if step.event == "line" and step.file == main_file:
                    return step.index
        return 0

    @property
    def end(self) -> int:
        return len(self.timeline) - 1

    @property
    def current(self) -> Step:
        return self.timeline.step(self.position)

    def stack(self) -> list[Step]:
        """The call stack at the position, outermost first (at the post-mortem stop: the traceback)."""
        if self.post_mortem and (crash := self.crash) is not None:
            return list(crash.frames)
        if self._stack_cache is None or self._stack_cache[0] != self.position:
            self._stack_cache = (self.position, self.timeline.stack_at(self.position))
        return list(self._stack_cache[1])

    def selected(self) -> Step:
        """The selected frame's current step (the innermost frame unless up/down moved the selection)."""
        if self.frame_index == 0 and not self.post_mortem:
            return self.current  # no stack needed: outer frames can be costly to find
        stack = self.stack()
        return stack[max(0, len(stack) - 1 - self.frame_index)]

    def up(self, count: int = 1) -> Step:
        stack = self.stack()
        if self.frame_index >= len(stack) - 1:
            raise FrameError("Oldest frame")
        self.frame_index = min(len(stack) - 1, self.frame_index + count) if count >= 0 else len(stack) - 1
        return self.selected()

    def down(self, count: int = 1) -> Step:
        if self.frame_index == 0:
            raise FrameError("Newest frame")
        self.frame_index = max(0, self.frame_index - count) if count >= 0 else 0
        return self.selected()

    def source_index(self, file: str) -> SourceIndex:
        index = self._sources.get(file)
        if index is None:
            index = self._sources[file] = SourceIndex(self.timeline.source(file))
        return index

    def suspends(self, step: Step) -> bool:
        """Whether the step's frame is a generator or coroutine (bdb skips their call/return unless
        stepping)."""
        span = self.source_index(step.file).function_at(step.line, co_name(step.func))
        return span is not None and span.suspends

    # -- summaries ------------------------------------------------------------------------------------------
    def _chunks(self) -> Sequence[ChunkSummary]:
        length = len(self.timeline)
        if self._summary_cache is None or self._summary_cache[0] != length:
            summaries = self.timeline.summaries()
            self._summary_cache = (length, summaries, [chunk.start for chunk in summaries])
        return self._summary_cache[1]

    def _chunk_at(self, index: int) -> int:
        self._chunks()
        assert self._summary_cache is not None
        return max(0, bisect.bisect_right(self._summary_cache[2], index) - 1)

    def _forward_steps(self, start: int, may_hit: Callable[[ChunkSummary], bool]) -> Iterator[Step]:
        """Steps from `start` on, skipping chunks that cannot hold a hit."""
        chunks = self._chunks()
        for chunk in chunks[self._chunk_at(start):]:
            if chunk.stop <= start or not may_hit(chunk):
                continue
            yield from self.timeline.steps(max(start, chunk.start), chunk.stop)

    def _backward_steps(self, stop: int, may_hit: Callable[[ChunkSummary], bool],
                        skipping: Callable[[ChunkSummary, int], bool] | None = None) -> Iterator[Step]:
        """Steps before `stop`, latest first, skipping chunks that cannot hold a hit.

        `skipping(chunk, last)` is told of each skipped chunk (with its last index before `stop`) and may
        answer True to have it read after all.
        """
        if stop <= 0:
            return
        chunks = self._chunks()
        for chunk in reversed(chunks[:self._chunk_at(stop - 1) + 1]):
            if chunk.start >= stop:
                continue
            if not may_hit(chunk) and (skipping is None or not skipping(chunk, min(stop, chunk.stop) - 1)):
                continue
            high = min(stop, chunk.stop)
            window = 32  # grows: a near stop reads little, a far one reads whole chunks
            while high > chunk.start:
                low = max(chunk.start, high - window)
                yield from reversed(list(self.timeline.steps(low, high)))
                high = low
                window *= 4

    # -- the end of the program ------------------------------------------------------------------------------
    @property
    def crash(self) -> Crash | None:
        """The uncaught exception that ended the program (not SystemExit, which pdb treats as an exit)."""
        return self._ending()[1]

    @property
    def system_exit(self) -> Value | None:
        """The SystemExit the program ended with (sys.exit), if it did."""
        return self._ending()[2]

    def _ending(self) -> tuple[int, Crash | None, Value | None]:
        length = len(self.timeline)
        if self._crash is None or self._crash[0] != length:
            crash: Crash | None = None
            exit_value: Value | None = None
            if self.timeline.complete:
                exception = self._uncaught()
                if exception is not None and exception_name(exception[0].text) == "SystemExit":
                    exit_value = exception[0]
                elif exception is not None:
                    crash = self._locate_crash(*exception)
            self._crash = (length, crash, exit_value)
        return self._crash

    def _uncaught(self) -> tuple[Value, Step] | None:
        """The exception the main thread's outermost frame unwound with at the end, and that unwind step."""
        last: Step | None = None
        for step in self._backward_steps(len(self.timeline), lambda chunk: True):
            if step.thread == 0:
                last = step
                break
        if last is None or last.event != Event.UNWIND or last.depth != 0:
            return None
        value = self.unwinding_exception(last)
        return None if value is None else (value, last)

    def unwinding_exception(self, step: Step) -> Value | None:
        """The exception an unwind step's frame exits with (its latest exception event), if recorded."""
        for seen, earlier in enumerate(self._backward_steps(step.index, lambda chunk: True)):
            if earlier.frame_id == step.frame_id and earlier.event in (Event.EXCEPTION, Event.HANDLED):
                return earlier.value
            if earlier.frame_id == step.frame_id or seen > _CRASH_SCAN_LIMIT:
                return None
        return None

    def _frame_steps_back(self, step: Step) -> Iterator[Step]:
        """The steps of step's frame before it, latest first, bounded by _CRASH_SCAN_LIMIT steps read."""
        def deep_enough(chunk: ChunkSummary) -> bool:
            return chunk.min_depth <= step.depth

        for seen, earlier in enumerate(self._backward_steps(step.index, deep_enough)):
            if seen > _CRASH_SCAN_LIMIT:
                return
            if earlier.frame_id == step.frame_id:
                yield earlier
                if earlier.event == Event.CALL:
                    return

    def _previous_on_thread(self, step: Step) -> Step | None:
        for earlier in self._backward_steps(step.index, lambda chunk: True):
            if earlier.thread == step.thread:
                return earlier
        return None

    def _origins_in_frame(self, unwind: Step, text: str) -> list[Step]:
        """The exception events in unwind's frame that its traceback shows, latest first: the one the
        exception entered the frame by (propagated from a callee, or raised there), preceded by any
        `raise err` of it after it was caught there (pdb lists the frame once for each). A bare `raise`
        records no exception event, so it adds none."""
        found: list[Step] = []
        handled = False
        since = 0  # steps of the frame read since the latest found raise, looking for its catch
        for step in self._frame_steps_back(unwind):
            since += 1
            if found and not handled and since > _HANDLER_SCAN_LIMIT:
                break  # no catch of it this close before: raised afresh
            if step.event == Event.EXCEPTION and step.value is not None and step.value.text == text:
                since = 0
                if found and not handled:
                    break
                found.append(step)
                handled = False
                previous = self._previous_on_thread(step)
                if previous is not None and previous.event == Event.UNWIND and previous.depth > step.depth:
                    break  # propagated from a callee
            elif step.event == Event.HANDLED and found and step.value is not None and step.value.text == text:
                handled = True  # caught here before; the found raise may be a re-raise of it
            elif step.event == Event.EXCEPTION and found:
                break  # another exception: the found one was raised afresh
        return found

    def _locate_crash(self, exception: Value, unwind: Step) -> Crash:
        """Follow the uncaught exception from the outermost frame inward to where it was raised."""
        chain: dict[int, tuple[int, list[int]]] = {}  # frame id -> (its last step, the traceback's lines)
        innermost = unwind
        while True:
            entries = self._origins_in_frame(unwind, exception.text)
            lines = [entry.line for entry in entries] or [unwind.line]
            chain[unwind.frame_id] = (unwind.index, lines)
            innermost = unwind
            if not entries:
                break
            previous = self._previous_on_thread(entries[-1])
            if previous is None or previous.event != Event.UNWIND or previous.depth <= entries[-1].depth:
                break
            unwind = previous
        frames = []
        for frame in self.timeline.stack_at(innermost.index):
            last = chain.get(frame.frame_id)
            if last is None:
                frames.append(frame)
                continue
            for line in last[1]:  # the latest raise is the outer traceback entry
                frames.append(dataclasses.replace(frame, index=last[0], line=line, event=Event.LINE,
                                                  value=None))
        return Crash(exception, innermost.index, tuple(frames))

    def crash_stop(self) -> Stop:
        """crash, pm: the post-mortem stop at the uncaught exception's raise site, from anywhere."""
        crash = self.crash
        if crash is None:
            raise EngineError("The program did not end with an uncaught exception.")
        return self._crash_stop(crash, [])

    def _crash_stop(self, crash: Crash, messages: list[str]) -> Stop:
        self._move(crash.index)
        self.post_mortem = True
        return Stop(crash.site, StopReason.CRASH, None, tuple(messages))

    # -- points ---------------------------------------------------------------------------------------------
    def _new_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    def point(self, number: int) -> Point:
        point = self.points.get(number)
        if point is None:
            raise NoSuchPoint(f"Breakpoint number {number} out of range")
        return point

    def _parse(self, text: str) -> Expression:
        try:
            return parse_expression(text)
        except EvalError as exc:
            raise BadExpression(str(exc)) from None

    def resolve_location(self, spec: str) -> tuple[str, int, str | None]:
        """(file, line, funcname or None) for `[file:]line` or a function name, as pdb's break parses it."""
        spec = spec.strip()
        if not spec:
            raise BadArgument("a location is required")
        file = self.selected().file
        if ":" in spec:
            name, _, line_text = spec.rpartition(":")
            file = self._find_file(name.strip())
            try:
                line = int(line_text)
            except ValueError:
                raise BadArgument(f"Bad lineno: {line_text.strip()}") from None
            return file, self._check_line(file, line), None
        try:
            line = int(spec)
        except ValueError:
            return self._find_function(spec)
        return file, self._check_line(file, line), None

    def _known_files(self) -> list[str]:
        files: dict[str, None] = {}
        for chunk in self._chunks():
            for file, _ in chunk.lines:
                files[file] = None
        return list(files)

    def _find_file(self, name: str) -> str:
        files = self._known_files()
        if name in files:
            return name
        for suffix in (name, name + ".py"):
            for file in files:
                if file.endswith("/" + suffix.lstrip("/")):
                    return file
        raise BadArgument(f"{name!r} not found in the trace")

    def _check_line(self, file: str, line: int) -> int:
        source = self.source_index(file)
        if source.lines:
            text = source.line(line).strip()
            if line < 1 or line > len(source.lines):
                raise BadArgument("End of file")
            if not text or text.startswith("#") or text[:3] in ('"""', "'''"):
                raise BadArgument("Blank or comment")
        return line

    def _find_function(self, name: str) -> tuple[str, int, str | None]:
        """A function breakpoint, found as pdb finds it: a function the selected frame can name, or a
        top-level
        `def name(` in the current file; it sits on the function's first executable line."""
        wanted = name.strip()
        head = wanted.split(".")[0]
        frame = self.selected()
        names = self._names_at(frame)
        # pdb evaluates the name and wants a function: a class names its methods (`Shelf.add`), not itself.
        kinds: tuple[str, ...] = ("<function ", "<bound method ")
        if "." in wanted:
            kinds += ("<class ",)
        known = head in names and names[head].text.startswith(kinds)
        source = self.source_index(frame.file)
        if not known and not (wanted.isidentifier() and any(
                re.match(rf"def\s+{re.escape(wanted)}\s*\(", line) for line in source.lines)):
            raise BadArgument(
                f"The specified object {wanted!r} is not a function or was not found along sys.path.")

        def matches(func: str) -> bool:
            return func == wanted or (func.endswith("." + wanted) and "." in wanted) or \
                (known and co_name(func) == wanted) or (not known and func == wanted)

        for chunk in self._chunks():
            if not any(matches(func) for func in chunk.funcs):
                continue
            previous: Step | None = None
            for step in self.timeline.steps(chunk.start, chunk.stop):
                if matches(step.func) and step.event == "line" and previous is not None and \
                        previous.event == "call" and previous.frame_id == step.frame_id:
                    return step.file, step.line, co_name(step.func)
                previous = step
        # Never runs in this trace: its first statement, from the source, so the breakpoint still lists.
        short = wanted.rpartition(".")[2]
        for span in source.spans:
            if span.name == short and span.body_line:
                return frame.file, span.body_line, short
        raise BadArgument(
            f"The specified object {wanted!r} is not a function or was not found along sys.path.")

    def add_breakpoint(self, spec: str, condition: str | None = None, temporary: bool = False) -> Breakpoint:
        cond = self._parse(condition) if condition and condition.strip() else None
        file, line, funcname = self.resolve_location(spec)
        point = Breakpoint(self._new_number(), file, line, temporary, cond, funcname)
        self.points[point.number] = point
        return point

    def add_watchpoint(self, expression: str) -> Watchpoint:
        parsed = self._parse(expression)
        frame = self.selected()
        point = Watchpoint(self._new_number(), parsed, frame.frame_id, frame.thread, frame.func,
                           created_at=frame.index, depth=frame.depth)
        self.points[point.number] = point
        return point

    def _frame_start(self, point: Watchpoint) -> int:
        """Index of the watched frame's first step (its call), found backward through deep enough chunks."""
        if point.first_index is None:
            first = point.created_at

            def deep_enough(chunk: ChunkSummary) -> bool:
                return chunk.min_depth <= point.depth

            for step in self._backward_steps(point.created_at + 1, deep_enough):
                if step.frame_id == point.frame_id:
                    first = step.index
                    if step.event == "call":
                        break
            point.first_index = first
        return point.first_index

    def add_catchpoint(self, exception: str | None = None) -> Catchpoint:
        point = Catchpoint(self._new_number(), exception.strip() if exception and exception.strip() else None)
        self.points[point.number] = point
        return point

    def delete(self, number: int) -> Point:
        point = self.point(number)
        del self.points[number]
        return point

    def delete_at(self, file: str, line: int) -> list[Breakpoint]:
        doomed = [p for p in self.points.values()
                  if isinstance(p, Breakpoint) and (p.file, p.line) == (file, line)]
        if not doomed:
            raise NoSuchPoint(f"There is no breakpoint at {file}:{line}")
        for point in doomed:
            del self.points[point.number]
        return doomed

    def set_enabled(self, number: int, enabled: bool) -> Point:
        point = self.point(number)
        point.enabled = enabled
        return point

    def set_condition(self, number: int, condition: str | None) -> Point:
        point = self.point(number)
        point.condition = self._parse(condition) if condition and condition.strip() else None
        point.reported.clear()
        return point

    def set_ignore(self, number: int, count: int) -> Point:
        point = self.point(number)
        point.ignore = max(0, count)
        return point

    def _by_location(self) -> dict[tuple[str, int], list[Breakpoint]]:
        table: dict[tuple[str, int], list[Breakpoint]] = {}
        for point in self.points.values():
            if isinstance(point, Breakpoint) and point.enabled:
                table.setdefault((point.file, point.line), []).append(point)
        return table

    # -- evaluation -----------------------------------------------------------------------------------------
    def _names_at(self, step: Step) -> dict[str, Value]:
        return self.timeline.locals_at(step.index)

    @staticmethod
    def _extra(step: Step) -> dict[str, object]:
        if step.event in RETURNS and step.value is not None:
            try:
                return {"__return__": step.value.python()}
            except (ValueError, SyntaxError):
                return {"__return__": Opaque(step.value.text)}
        return {}

    def check_expression(self, text: str) -> None:
        """Raise BadExpression if the text is no expression the engine can evaluate."""
        self._parse(text)

    def evaluate(self, text: str) -> object:
        """An expression's value in the selected frame; raises BadExpression when it cannot be evaluated."""
        expression = self._parse(text)
        frame = self.selected()
        try:
            return expression.evaluate(self._names_at(frame), self._extra(frame))
        except EvalError as exc:
            raise BadExpression(str(exc)) from None

    def locals(self) -> dict[str, Value]:
        return self._names_at(self.selected())

    def _condition_holds(self, point: Point, step: Step) -> bool | None:
        """Whether the point's condition holds at the step; None when it cannot be evaluated there."""
        if point.condition is None:
            return True
        try:
            return truthy(point.condition, self._names_at(step), self._extra(step))
        except EvalError as exc:
            message = str(exc)
            if message not in point.reported:
                point.reported.add(message)
                consequence = "treated as false" if isinstance(point, Watchpoint) else "stopping, as pdb does"
                self._pending.append(
                    f"*** Error in condition of {point.kind} {point.number} ({point.condition.text}): "
                    f"{message}; {consequence}"
                )
            return None

    def _effective(self, point: Point, step: Step) -> bool | None:
        """bdb's effective(): count the hit, then the condition, then the ignore count.

        None: the condition could not be evaluated, so (as bdb does) the point stops regardless of its
        ignore count and, if temporary, is not deleted. A watchpoint (no bdb counterpart) does not stop."""
        point.hits += 1
        holds = self._condition_holds(point, step)
        if holds is None:
            return None if not isinstance(point, Watchpoint) else False
        if not holds:
            return False
        if point.ignore > 0:
            point.ignore -= 1
            return False
        return True

    # -- searching ------------------------------------------------------------------------------------------
    def _hit_checker(self, mode: _Mode | None, forward: bool) -> tuple[
            Callable[[Step], _Hit | None], Callable[[ChunkSummary], bool], list[_WatchState]]:
        """The per-step test and the per-chunk filter for one search."""
        locations = self._by_location()
        bp_lines = frozenset(locations)
        catches = [p for p in self.points.values() if isinstance(p, Catchpoint) and p.enabled]
        watches = [_WatchState(p) for p in self.points.values() if isinstance(p, Watchpoint) and p.enabled]
        if forward:
            self._watch_baselines(watches)
        watched_names = frozenset().union(*(w.point.expression.names for w in watches))
        watched_funcs = frozenset(w.point.func for w in watches)

        def may_hit(chunk: ChunkSummary) -> bool:
            if mode is not None:
                if mode.stopframe is None:
                    return True
                if mode.depth is not None and chunk.min_depth <= mode.depth:
                    return True
                if mode.stopframe_suspends and "exception" in chunk.events:
                    return True
            if bp_lines and not bp_lines.isdisjoint(chunk.lines):
                return True
            if catches and "exception" in chunk.events:
                return True
            return bool(watches) and not watched_funcs.isdisjoint(chunk.funcs) and \
                not watched_names.isdisjoint(chunk.changed)

        def hit(step: Step) -> _Hit | None:
            found: _Hit | None = None
            kind = PDB_EVENT.get(step.event)
            if mode is not None and kind is not None and step.thread == mode.thread and \
                    step.index >= self.start:
                found = self._mode_hit(mode, kind, step)
            if found is None and kind == "line" and bp_lines and (step.file, step.line) in bp_lines:
                for point in locations[(step.file, step.line)]:
                    if point.funcname is not None and co_name(step.func) != point.funcname:
                        continue
                    effective = self._effective(point, step)
                    if effective is not False:
                        found = _Hit(step, StopReason.BREAKPOINT, point.number, keep=effective is None)
                        break
            if found is None and kind == "exception" and catches:
                name = exception_name(step.value.text if step.value else "")
                for catch in catches:
                    if catch.exception is not None and catch.exception != name:
                        continue
                    effective = self._effective(catch, step)
                    if effective is not False:
                        found = _Hit(step, StopReason.CATCHPOINT, catch.number, keep=effective is None)
                        break
            for watch in watches:
                if step.frame_id == watch.point.frame_id:
                    watch_hit = self._watch_step(watch, step, forward)
                    # Backward, a watch hit is a later step than this one, so it comes first; forward, at
                    # the same step it says more than a plain stop.
                    if watch_hit is not None and (found is None or watch_hit.step.index > found.step.index
                                                  or found.reason in (StopReason.STEP, StopReason.EXCEPTION)):
                        found = watch_hit
            return found

        return hit, may_hit, watches

    def _mode_hit(self, mode: _Mode, kind: str, step: Step) -> _Hit | None:
        """bdb's dispatch_line/call/return/exception decision for one event of the debugged thread."""
        if kind == "line":
            return _Hit(step, StopReason.STEP) if mode.stop_here(step) else None
        if kind == "call":
            if mode.stop_here(step) and not (mode.stopframe is not None and self.suspends(step)):
                return _Hit(step, StopReason.STEP)
            return None
        if kind == "return":
            if mode.stop_here(step) or step.frame_id == mode.returnframe:
                if mode.stopframe is not None and self.suspends(step):
                    return None
                return _Hit(step, StopReason.STEP)
            return None
        # exception
        name = exception_name(step.value.text if step.value else "")
        if mode.stop_here(step):
            if name == "StopIteration" and self.suspends(step):
                return None  # the internal StopIteration of a `yield from` subiterator
            return _Hit(step, StopReason.EXCEPTION)
        if mode.stopframe not in (None, _BOTTOM) and step.frame_id != mode.stopframe and \
                mode.stopframe_suspends and name in ("StopIteration", "GeneratorExit") and \
                (step.frame_id in mode.traced or any(p.file == step.file for p in self._by_location_files())):
            return _Hit(step, StopReason.EXCEPTION)
        return None

    def _by_location_files(self) -> list[Breakpoint]:
        return [p for p in self.points.values() if isinstance(p, Breakpoint)]

    def _watch_key(self, watch: _WatchState, step: Step) -> tuple[str | None, ...]:
        names = self._names_at(step)
        return tuple(names[n].text if n in names else None for n in sorted(watch.point.expression.names))

    def _watch_value(self, watch: _WatchState, index: int) -> str:
        step = self.timeline.step(index)
        try:
            value = watch.point.expression.evaluate(self._names_at(step), self._extra(step))
        except EvalError as exc:
            return f"<{exc}>"
        return repr(value)

    def _watch_baselines(self, watches: list[_WatchState]) -> None:
        for watch in watches:
            frame = self._frame_at(watch.point, self.position)
            if isinstance(frame, Step):
                watch.index, watch.key = frame.index, self._watch_key(watch, frame)
            elif frame is not None:  # the frame has not started: every name is still undefined
                watch.index, watch.key = -1, (None,) * len(watch.point.expression.names)

    def _frame_at(self, point: Watchpoint, index: int) -> Step | bool | None:
        """The watched frame's latest step at or before index; True if it starts later; None if unknown."""
        step = self.timeline.step(index)
        if step.frame_id == point.frame_id:
            return step
        stack = self.stack() if index == self.position else self.timeline.stack_at(index)
        for frame in stack:
            if frame.frame_id == point.frame_id:
                return frame
        if index < self._frame_start(point):
            return True
        return None

    def _watch_first(self, watch: _WatchState, before: int) -> _Hit | None:
        """Backward, reaching the time before the watched frame started: its first step changed if any name
        was defined there."""
        later_index, later_key = watch.index, watch.key
        watch.pending = None
        if later_key is None or all(text is None for text in later_key):
            return None
        old, new = "<undefined>", self._watch_value(watch, later_index)
        point = watch.point
        later = self.timeline.step(later_index)
        if not self._effective(point, later):
            return None
        return _Hit(later, StopReason.WATCHPOINT, point.number,
                    f"watchpoint {point.number}: {point.expression.text}: {old} -> {new}")

    def _watch_step(self, watch: _WatchState, step: Step, forward: bool) -> _Hit | None:
        key = self._watch_key(watch, step)
        if forward:
            previous_index, previous_key = watch.index, watch.key
            watch.index, watch.key = step.index, key
            if previous_key is None or previous_key == key:
                return None
            old, new = self._watch_value(watch, previous_index), self._watch_value(watch, step.index)
            if old == new:
                return None
            point = watch.point
            if not self._effective(point, step):
                return None
            return _Hit(step, StopReason.WATCHPOINT, point.number,
                        f"watchpoint {point.number}: {point.expression.text}: {old} -> {new}")
        # Backward: the later step (visited first) changed if its key differs from this, its predecessor;
        # whether this step changed stays undecided until the frame's step before it is seen.
        later_index, later_key = watch.index, watch.key
        watch.index, watch.key = step.index, key
        watch.pending = _Hit(step, StopReason.WATCHPOINT, watch.point.number)
        if later_key is None or later_key == key:
            return None
        old, new = self._watch_value(watch, step.index), self._watch_value(watch, later_index)
        if old == new:
            return None
        point = watch.point
        later = self.timeline.step(later_index)
        if not self._effective(point, later):
            return None
        return _Hit(later, StopReason.WATCHPOINT, point.number,
                    f"watchpoint {point.number}: {point.expression.text}: {old} -> {new}")

    def _search(self, mode: _Mode | None, forward: bool) -> _Hit | None:
        if not forward:
            return self._reverse_search(None, None)
        hit, may_hit, _ = self._hit_checker(mode, True)
        start = self.position + 1
        while True:
            known = len(self.timeline)
            for step in self._forward_steps(start, may_hit):
                found = hit(step)
                if found is not None:
                    return found
            # A predicted timeline grows when asked for the step after its end.
            if self.timeline.complete or not self._grow(known):
                return None
            start = known

    def _grow(self, known: int) -> bool:
        try:
            self.timeline.step(known)
        except IndexError:
            return False
        return len(self.timeline) > known

    # -- stops ----------------------------------------------------------------------------------------------
    def _finish(self, hit: _Hit | None, forward: bool) -> Stop:
        messages: list[str] = []
        if hit is None:
            target = self.end if forward else self.start
            reason = StopReason.END if forward else StopReason.START
            messages = self._take_pending()
            if forward and not self.post_mortem and (crash := self.crash) is not None:
                return self._crash_stop(crash, messages)  # the program's end, as pdb sees a crash
            if target == self.position:
                text = "At the end of the trace: nothing further to replay." if forward else \
                    "At the start of the trace: nothing earlier to replay."
                return Stop(self.current, reason, None, (*messages, text), moved=False)
            self._move(target)
            text = "Reached the end of the trace." if forward else "Reached the start of the trace."
            return Stop(self.current, reason, None, (*messages, text))
        self._move(hit.step.index)
        point = self.points.get(hit.number) if hit.number is not None else None
        if point is not None and point.temporary and not hit.keep:
            del self.points[point.number]
            messages.append(f"Deleted {point.describe()}")
        if hit.message:
            messages.append(hit.message)
        return Stop(hit.step, hit.reason, hit.number, (*self._take_pending(), *messages))

    def _take_pending(self) -> list[str]:
        pending, self._pending = self._pending, []
        return pending

    def _move(self, index: int) -> None:
        self.position = index
        self.frame_index = 0
        self.post_mortem = False

    def _at_boundary(self, forward: bool) -> Stop | None:
        if forward and self.post_mortem:
            # The program ended here (pdb restarts it on any forward command; the REPL does so).
            return Stop(self.current if self.crash is None else self.crash.site, StopReason.END, None,
                        ("The program crashed here: nothing further to run forward.",), moved=False)
        if forward and self.position >= self.end and not self.timeline.complete:
            self._grow(self.position + 1)
        if forward and self.position >= self.end:
            return self._finish(None, True)
        if not forward and self.position <= self.start:
            return self._finish(None, False)
        return None

    def _mode_for(self, frame: Step, stopframe: int | None, returnframe: int | None = None,
                  stoplineno: int = 0, depth: int | None = None, suspends: bool = False) -> _Mode:
        current = self.current
        # bdb: a next/until issued at a frame's return stop continues as a step (dispatch_return resets it).
        if current.event in RETURNS and stopframe == current.frame_id and stoplineno != -1:
            return _Mode(current.thread, None)
        traced = frozenset(s.frame_id for s in self.stack()) if suspends else frozenset()
        return _Mode(frame.thread, stopframe, returnframe, stoplineno, suspends, depth, traced)

    # -- forward commands -----------------------------------------------------------------------------------
    def step(self) -> Stop:
        """s(tep): the next event at any depth."""
        if stop := self._at_boundary(True):
            return stop
        return self._finish(self._search(_Mode(self.current.thread, None), True), True)

    def next(self) -> Stop:
        """n(ext): the next event in the selected frame (or its return); callees run through."""
        if stop := self._at_boundary(True):
            return stop
        frame = self.selected()
        mode = self._mode_for(frame, frame.frame_id, depth=frame.depth, suspends=self.suspends(frame))
        return self._finish(self._search(mode, True), True)

    def return_(self) -> Stop:
        """r(eturn): to the selected frame's return."""
        if stop := self._at_boundary(True):
            return stop
        frame = self.selected()
        if self.suspends(frame):
            traced = frozenset(s.frame_id for s in self.stack())
            mode = _Mode(frame.thread, frame.frame_id, None, -1, True, frame.depth, traced)
        else:
            # bdb stops in the caller (stopframe = f_back); its events are this thread's first ones above
            # the frame's depth, which needs no stack lookup.
            mode = _Mode(frame.thread, _BOTTOM, frame.frame_id, 0, False, frame.depth,
                         outer_depth=frame.depth)
        return self._finish(self._search(mode, True), True)

    def check_until(self, line: int | None) -> None:
        """Refuse an until line at or before the selected frame's line (pdb's check, before it moves)."""
        if line is not None and line <= self.selected().line:
            raise BadArgument('"until" line number is smaller than current line number')

    def until(self, line: int | None = None) -> Stop:
        """unt(il) [line]: to a line past the current one (or >= line) in this frame, or its return."""
        self.check_until(line)
        frame = self.selected()
        if stop := self._at_boundary(True):
            return stop
        mode = self._mode_for(frame, frame.frame_id, frame.frame_id, frame.line + 1 if line is None else line,
                              depth=frame.depth, suspends=self.suspends(frame))
        return self._finish(self._search(mode, True), True)

    def continue_(self) -> Stop:
        """c(ontinue): to the next breakpoint, watchpoint or catchpoint hit, else the end."""
        if stop := self._at_boundary(True):
            return stop
        mode = _Mode(self.current.thread, _BOTTOM, None, -1, False, -1)
        return self._finish(self._search(mode, True), True)

    # -- backward commands ----------------------------------------------------------------------------------
    def _previous_event(self, thread: int, low: int) -> Step | None:
        for step in self._backward_steps(self.position, lambda chunk: True):
            if step.index < low:
                return None
            if step.thread == thread and step.event in PDB_EVENT and not self._internal_stop_iteration(step):
                return step
        return None

    def _internal_stop_iteration(self, step: Step) -> bool:
        return step.event == "exception" and self.suspends(step) and \
            exception_name(step.value.text if step.value else "") == "StopIteration"

    def _reverse_search(self, accept: Callable[[Step], _Hit | None] | None, depth: int | None) -> _Hit | None:
        """The latest step before the position that `accept` takes or that hits a point, going backward.

        A watchpoint's change at a step is only known once its frame's previous step is seen, so a hit found
        while a later watched step is still undecided waits for that decision.
        """
        checker, may_hit_points, watches = self._hit_checker(None, False)

        def may_hit(chunk: ChunkSummary) -> bool:
            return (depth is not None and chunk.min_depth <= depth) or may_hit_points(chunk)

        def undecided_after(index: int) -> bool:
            return any(w.pending is not None and w.pending.step.index > index for w in watches)

        best: _Hit | None = None

        def skipping(chunk: ChunkSummary, last: int) -> bool:
            # A skipped chunk holds no change of the watched names, so its watched steps are no change points
            # and share the key of the undecided later step's predecessor: one of them decides that step.
            nonlocal best
            for watch in watches:
                if watch.pending is None or watch.pending.step.index <= last or \
                        watch.point.func not in chunk.funcs:
                    continue
                latest = None
                for step in reversed(list(self.timeline.steps(chunk.start, last + 1))):
                    if step.frame_id == watch.point.frame_id:
                        latest = step
                        break
                if latest is None:
                    continue
                hit = self._watch_step(watch, latest, False)
                watch.pending = None
                if hit is not None and (best is None or hit.step.index > best.step.index):
                    best = hit
            return False

        for step in self._backward_steps(self.position, may_hit, skipping):
            if best is not None and not undecided_after(best.step.index):
                return best
            if step.index < self.start:
                break
            found = checker(step)
            accepted = accept(step) if accept is not None else None
            for candidate in (accepted, found):
                if candidate is not None and (best is None or candidate.step.index > best.step.index):
                    best = candidate
            if best is not None and not undecided_after(best.step.index):
                return best
        for watch in watches:
            # Backed out past the watched frame's first step: it changed if it defined a watched name.
            pending = watch.pending
            if pending is not None and (pending.step.event == "call" or
                                        pending.step.index == self._frame_start(watch.point)):
                hit = self._watch_first(watch, pending.step.index)
                if hit is not None and hit.step.index >= self.start and \
                        (best is None or hit.step.index > best.step.index):
                    best = hit
        return best

    def reverse_step(self) -> Stop:
        """rs, reverse-step: the previous event at any depth (retraces step exactly)."""
        if stop := self._at_boundary(False):
            return stop
        previous = self._previous_event(self.current.thread, self.start)
        return self._finish(None if previous is None else _Hit(previous, _kind_reason(previous)), False)

    def reverse_next(self) -> Stop:
        """rn, reverse-next: the previous event of the selected frame; callees are un-run without stopping."""
        if stop := self._at_boundary(False):
            return stop
        frame = self.selected()
        current = self.current
        if frame.index == current.index and current.event in ENTRIES:
            return self.reverse_step()  # the mirror of next at a return: it steps
        suspends = self.suspends(frame)

        def accept(step: Step) -> _Hit | None:
            if step.frame_id != frame.frame_id or step.thread != frame.thread or step.event not in PDB_EVENT:
                return None
            if suspends and step.event != "call" and PDB_EVENT[step.event] in ("call", "return"):
                return None  # bdb ignores a generator's resume and yield (and final return) unless stepping
            if self._internal_stop_iteration(step):
                return None
            return _Hit(step, _kind_reason(step))

        return self._finish(self._reverse_search(accept, frame.depth), False)

    def reverse_return(self) -> Stop:
        """rr, reverse-return: back to the selected frame's call (from its call: to the caller's line)."""
        if stop := self._at_boundary(False):
            return stop
        frame = self.selected()
        current = self.current
        if frame.index == current.index and current.event in ENTRIES:
            # At the call: back to the caller's line, the thread's previous event above this depth.
            def accept_caller(step: Step) -> _Hit | None:
                if step.thread == frame.thread and step.depth < frame.depth and step.event in PDB_EVENT:
                    return _Hit(step, _kind_reason(step))
                return None

            return self._finish(self._reverse_search(accept_caller, frame.depth - 1), False)

        def accept(step: Step) -> _Hit | None:
            if step.frame_id == frame.frame_id and step.event == "call":
                return _Hit(step, StopReason.STEP)
            return None

        return self._finish(self._reverse_search(accept, frame.depth), False)

    def reverse_continue(self) -> Stop:
        """rc, reverse-continue: back to the previous breakpoint, watchpoint or catchpoint hit, else the
        start."""
        if stop := self._at_boundary(False):
            return stop
        return self._finish(self._search(None, False), False)

    # -- jumps ----------------------------------------------------------------------------------------------
    def goto(self, index: int) -> Stop:
        """goto N: step N exactly."""
        if not 0 <= index < len(self.timeline):
            raise BadArgument(f"step {index} is outside 0..{self.end}")
        self.timeline.step(index)  # a step that cannot be read (a damaged chunk) raises before the move
        self._move(index)
        return Stop(self.current, _kind_reason(self.current))

    def goto_percent(self, percent: float) -> Stop:
        if not 0 <= percent <= 100:
            raise BadArgument(f"{percent:g}% is outside 0..100%")
        return self.goto(round(self.end * percent / 100))

    def goto_text(self, text: str) -> Stop:
        """`N` (a step) or `P%` (a fraction of the trace), as the goto command takes it."""
        text = text.strip()
        try:
            percent = float(text[:-1]) if text.endswith("%") else None
            index = int(text) if percent is None else 0
        except ValueError:
            raise BadArgument(f"Bad step: {text}") from None
        return self.goto_percent(percent) if percent is not None else self.goto(index)

    def first(self) -> Stop:
        """The first stop pdb makes (the main script's first line)."""
        self._move(self.start)
        return Stop(self.current, StopReason.STEP)

    def last(self) -> Stop:
        self._move(self.end)
        return Stop(self.current, _kind_reason(self.current))

    # -- queries --------------------------------------------------------------------------------------------
    def history(self, name: str, func: str | None = None) -> list[Change]:
        """Every step where `name` took a new value in frames of `func` (default: the selected frame's)."""
        wanted = self.selected().func if func is None else func
        last: dict[int, Value | None] = {}
        changes: list[Change] = []

        def may_hit(chunk: ChunkSummary) -> bool:
            return wanted in chunk.funcs and name in chunk.changed

        for step in self._forward_steps(0, may_hit):
            if step.func != wanted:
                continue
            value = self._names_at(step).get(name)
            before = last.get(step.frame_id)
            if value is not None and (before is None or before.text != value.text):
                changes.append(Change(step, before, value))
            elif value is None and before is not None:
                changes.append(Change(step, before, None))
            last[step.frame_id] = value
        return changes


def _kind_reason(step: Step) -> StopReason:
    return StopReason.EXCEPTION if step.event == Event.EXCEPTION else StopReason.STEP


def exception_name(text: str) -> str:
    """The class name from an exception's repr ("ValueError('x')" -> "ValueError")."""
    head = text.split("(", 1)[0].strip()
    return head.rpartition(".")[2]
