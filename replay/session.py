"""A replay session without a UI: the engine, displays, return values pdb keeps showing, and pdb's stop text.

The REPL (replay/repl.py), the TUI and `predict` format stops through it, so every front end prints a stop
the way pdb does: `> file(line)func()`, `--Call--`, `--Return--`, `-> source`, exception lines and display
changes. With `restart=True` (the REPL) it also takes pdb's end-of-program behaviour: moving forward past
the end (or from the post-mortem stop) restarts at the first line, keeping breakpoints.

`Session.fork` is the "what if" extension point: a front end's Forker (the model, which this layer cannot
import) makes a timeline from the selected frame with names rebound, and the fork gets a session of its own.
"""

from __future__ import annotations

import ast
import reprlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

from replay.breakpoints import Breakpoint, Catchpoint
from replay.engine import RETURNS, BadArgument, Engine, EngineError, Stop, StopReason
from replay.expressions import Opaque
from replay.source import co_name
from replay.timeline import Step, Timeline, TimelineError, Value
from tracer.format import Event

RESTARTED = "The program finished and will be restarted"
POST_MORTEM = ("Uncaught exception. Entering post mortem debugging",
               "Running 'cont' or 'step' will restart the program")
NO_FORKER = "whatif needs the neural part and its model (pip install 'retrograde[neural]')"
_END_TEXTS = frozenset({
    "Reached the end of the trace.", "At the end of the trace: nothing further to replay.",
    "The program crashed here: nothing further to run forward.",
})


def short_repr(value: Value) -> str:
    """pdb shows return values through reprlib.repr: the same for literals, and a like cut for the rest."""
    if value.rebuildable:
        try:
            return reprlib.repr(value.python())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TimelineError):
            pass
    text = value.text
    if len(text) > 30:  # reprlib's maxother: keep both ends
        return text[:13] + "..." + text[len(text) - 14:]
    return text


def exception_text(value: Value | None) -> str:
    """pdb's `ExcType: message` line from a recorded exception repr like "ValueError('bad')"."""
    if value is None:
        return "Exception"
    text = value.text
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return text
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute) and not node.keywords:
        name = ast.unparse(node.func).rpartition(".")[2]
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
        except (ValueError, SyntaxError):
            return name
        if not args:
            return name
        if len(args) == 1:
            message = repr(args[0]) if name == "KeyError" else str(args[0])
        else:
            message = str(tuple(args))
        return f"{name}: {message}" if message else name
    return text


def exit_status(value: Value) -> str:
    """What pdb prints for a SystemExit (`print(e)`): its argument, or nothing."""
    text = exception_text(value)
    return text.partition(": ")[2] if ": " in text else ""


def marker_line(event: str, value: Value | None, unwinding: Value | None = None) -> str | None:
    """The line pdb prints above a stop's location for an event: --Call--, --Return--, the exception
    (`--Unwind-- ExcType: message` for a frame that exits by one), or None for a line."""
    if event in (Event.CALL, Event.RESUME):
        return "--Call--"
    if event == Event.UNWIND:
        return "--Unwind--" + ("" if unwinding is None else " " + exception_text(unwinding))
    if event in RETURNS:
        return "--Return--"
    if event == Event.EXCEPTION:
        return exception_text(value)
    return None


def location_text(file: str, line: int, func: str, event: str, value: Value | None) -> str:
    """bdb's `file(line)name()`, with `->value` at a return or yield (never at an unwind)."""
    text = f"{file}({line}){co_name(func)}()"
    if event in RETURNS and event != Event.UNWIND:
        text += "->" + (short_repr(value) if value is not None else "None")
    return text


def value_repr(value: object) -> str:
    """`p`'s text for an evaluated value (an opaque recorded value shows its recorded repr)."""
    return value.text if isinstance(value, Opaque) else repr(value)


# "What if": (timeline, step index, NAME -> EXPR in order) -> a new timeline that starts from that step's
# frame with the names rebound. The replay layer knows no model: a front end passes one in (neural.whatif
# through retrograde.cli, tui.cli, retrograde.dap); it raises ForkError with one sentence when it cannot.
Forker = Callable[[Timeline, int, Mapping[str, str]], Timeline]


class ForkError(EngineError):
    """A what-if that cannot be made (a name the frame cannot bind, a bad expression, no model)."""


class LazyForker:
    """A Forker made on first use, so that the model loads when the first `whatif` asks for it.

    A `make` that fails (ForkError: no model) is tried again at the next `whatif`."""

    def __init__(self, make: Callable[[], Forker]) -> None:
        self._make = make
        self._forker: Forker | None = None
        self._lock = threading.Lock()

    def __call__(self, timeline: Timeline, index: int, changes: Mapping[str, str]) -> Timeline:
        with self._lock:
            if self._forker is None:
                self._forker = self._make()
            forker = self._forker
        return forker(timeline, index, changes)


_WHATIF_USAGE = "whatif wants NAME = EXPR, several separated by ;, like: whatif n = 5; items = [3, 1]"


def parse_changes(text: str) -> dict[str, str]:
    """`n = 5; items = [3, 1]` (also `n += 1`, `a = b = 0`) as {NAME: EXPR} in order; BadArgument if not."""
    try:
        tree = ast.parse(text.strip())
    except SyntaxError:
        raise BadArgument(_WHATIF_USAGE) from None
    if not tree.body:
        raise BadArgument(_WHATIF_USAGE)
    changes: dict[str, str] = {}
    source = text.strip()
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
            expression = ast.get_source_segment(source, statement.value) or ast.unparse(statement.value)
            names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            name = statement.target.id
            expression = ast.unparse(ast.BinOp(ast.Name(name), statement.op, statement.value))
            names = [name]
        elif isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign):
            raise BadArgument("whatif rebinds plain names, one per assignment (a = 1; b = 2), "
                              f"not {ast.unparse(statement)!r}")
        else:
            raise BadArgument(_WHATIF_USAGE)
        for name in names:
            if name in changes:
                raise BadArgument(f"whatif sets {name} twice: give it one expression")
            changes[name] = expression.strip()
    return changes


class Session:
    """One replay: an engine over a timeline plus the state pdb keeps between stops; it never prints."""

    def __init__(self, timeline: Timeline, *, restart: bool = True) -> None:
        self.engine = Engine(timeline)
        self.restart = restart  # pdb's restart past the end (REPL) or stop at the end (TUI)
        self.displays: dict[int, dict[str, str]] = {}  # frame id -> expression -> last shown value
        # pdb leaves `__return__` in a frame's locals after a return stop, so later stops in the same
        # generator frame still show `->value`; kept so the output matches pdb's.
        self.returned: dict[int, tuple[int, str]] = {}

    # -- what if --------------------------------------------------------------------------------------------
    def fork(self, forker: Forker, changes: Mapping[str, str],
             session_for: Callable[[Timeline], Session] | None = None) -> Session:
        """A new session over `forker`'s timeline from the selected frame at this step with `changes`.

        Breakpoints and catchpoints come along as copies with the same numbers (hits, ignore counts and
        conditions too); watchpoints belong to the recording's frames and stay behind. This session is
        left untouched."""
        engine = self.engine
        frame = engine.selected()
        if frame.event in RETURNS:
            leaves = "unwinds" if frame.event == Event.UNWIND else "returns"
            raise ForkError(f"{co_name(frame.func)}() {leaves} at this step: go back to one of its "
                            "lines (rs) to change what it does")
        timeline = forker(engine.timeline, frame.index, changes)
        fork = session_for(timeline) if session_for is not None else Session(timeline, restart=False)
        points = fork.engine.points
        for number, point in engine.points.items():
            if isinstance(point, Breakpoint | Catchpoint):
                points[number] = replace(point, reported=set())
        # Numbering goes on from the recording's, so a number names the same point in both.
        fork.engine._next_number = max(fork.engine._next_number, engine._next_number)
        return fork

    # -- moving ---------------------------------------------------------------------------------------------
    def forward(self, action: Callable[[], Stop]) -> Stop:
        """Run a forward command with pdb's end of program: a command that runs off the end without
        stopping (or any from the end, or from the post-mortem stop) restarts the program at its first
        line, as pdb does; breakpoints stay, displays and return values go."""
        if self.restart and self.engine.post_mortem:
            return self._restarted(())
        stop = action()
        if not self.restart or stop.reason != StopReason.END:
            return stop
        return self._restarted(tuple(m for m in stop.messages if m not in _END_TEXTS))

    def _restarted(self, messages: tuple[str, ...]) -> Stop:
        engine = self.engine
        notes = list(messages)
        exit_value = engine.system_exit
        if exit_value is not None and not engine.post_mortem:
            notes.append(f"The program exited via sys.exit(). Exit status: {exit_status(exit_value)}")
        notes.append(RESTARTED)
        stop = engine.first()
        self.displays.clear()
        self.returned.clear()
        return replace(stop, messages=tuple(notes))

    # -- formatting ------------------------------------------------------------------------------------------
    def source_line(self, step: Step) -> str:
        return self.engine.source_index(step.file).line(step.line).strip()

    def format_entry(self, step: Step, prefix: str = "\n-> ") -> str:
        """bdb's format_stack_entry: `file(line)name()`, `->value` at returns, then the source line.

        An unwinding frame did not return: it shows no `->None`."""
        text = location_text(step.file, step.line, step.func, step.event, step.value)
        returned = self.returned.get(step.frame_id)
        if step.event not in RETURNS and returned is not None and returned[0] < step.index:
            text += "->" + returned[1]
        line = self.source_line(step)
        if line:
            text += prefix + line
        return text

    def marker(self, step: Step) -> str | None:
        """The line pdb prints above a stop's location: --Call--, --Return--, the exception, or none."""
        if step.event == Event.EXCEPTION:
            return self.internal_prefix(step) + exception_text(step.value)
        unwinding = self.engine.unwinding_exception(step) if step.event == Event.UNWIND else None
        return marker_line(step.event, step.value, unwinding)

    def internal_prefix(self, step: Step) -> str:
        """pdb calls a StopIteration without traceback (a generator run out under a for loop) internal."""
        if step.value is None or not step.value.text.startswith("StopIteration") or step.index == 0:
            return ""
        before = self.engine.timeline.step(step.index - 1)
        return "Internal " if before.event in RETURNS and before.depth > step.depth else ""

    def stop_lines(self, stop: Stop) -> list[str]:
        """Everything pdb prints for a stop: messages, the marker, the location, display changes."""
        lines = list(stop.messages)
        if stop.reason == StopReason.CRASH and stop.moved:
            crash = self.engine.crash
            if crash is not None:
                lines.append(exception_text(crash.exception))
            lines.extend(POST_MORTEM)
        if not stop.moved:
            return lines
        step = stop.step
        if stop.reason != StopReason.CRASH:
            marker = self.marker(step)
            if marker is not None:
                lines.append(marker)
            if step.event in RETURNS and step.event != Event.UNWIND:
                self.returned[step.frame_id] = (step.index, short_repr(step.value) if step.value else "None")
        lines.extend(self.location_lines())
        return lines

    def location_lines(self) -> list[str]:
        """`> file(line)func()`, `-> source` for the selected frame, then its display changes."""
        selected = self.engine.selected()
        return ["> " + self.format_entry(selected), *self.display_changes(selected)]

    def where_lines(self) -> list[str]:
        # pdb marks a frame, not an entry: a frame the traceback lists twice (`raise err`) is marked twice.
        selected = self.engine.selected().frame_id
        return [("> " if frame.frame_id == selected else "  ") + self.format_entry(frame)
                for frame in self.engine.stack()]

    def opening_lines(self) -> list[str]:
        """What to say first about the trace: how the program ended, if by an uncaught exception."""
        crash = self.engine.crash
        if crash is None:
            return []
        site = crash.site
        return [f"The program crashed at step {crash.index}: {exception_text(crash.exception)}",
                f"  raised at {site.file}:{site.line} in {co_name(site.func)}(); `crash` goes there "
                f"(so does `c` when no breakpoint is in the way)."]

    # -- displays --------------------------------------------------------------------------------------------
    def value_text(self, expression: str) -> str:
        try:
            return value_repr(self.engine.evaluate(expression))
        except EngineError as exc:
            return f"** raised {exc} **"

    def display_changes(self, frame: Step) -> list[str]:
        """pdb's `display expr: new  [old: old]` for each display of the frame whose value changed."""
        shown = self.displays.get(frame.frame_id)
        if not shown:
            return []
        lines = []
        for expression, old in list(shown.items()):
            new = self.value_text(expression)
            if new != old:
                shown[expression] = new
                lines.append(f"display {expression}: {new}  [old: {old}]")
        return lines

    def add_display(self, expression: str) -> str:
        frame = self.engine.selected()
        shown = self.displays.setdefault(frame.frame_id, {})
        self.engine.check_expression(expression)  # bad syntax is refused now
        shown[expression.strip()] = self.value_text(expression)
        return f"display {expression.strip()}: {shown[expression.strip()]}"


__all__ = ["NO_FORKER", "POST_MORTEM", "RESTARTED", "ForkError", "Forker", "LazyForker", "Session",
           "exception_text", "exit_status", "location_text", "marker_line", "parse_changes", "short_repr",
           "value_repr"]
