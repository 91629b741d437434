"""A DAP session's state over one timeline: handles, client numbering, sources, and the stopped event."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from replay.engine import Engine
from replay.session import exception_text
from replay.timeline import Step, Value
from retrograde.dap.launch import Launched
from retrograde.dap.protocol import Connection

if TYPE_CHECKING:
    from replay.repl import ReplayShell
    from retrograde.dap.breakpoints import ClientBreakpoint


class RequestError(Exception):
    """A request cannot be answered; the message is one sentence for the user."""


@dataclass(slots=True)
class Handles:
    """Handles valid while the session stays at one stop: frames and expandable variables."""

    frames: dict[int, tuple[Step, int | None]] = field(default_factory=dict)  # id -> (step, engine level)
    variables: dict[int, Callable[[], list[dict[str, Any]]]] = field(default_factory=dict)
    next_id: int = 1

    def add_frame(self, step: Step, level: int | None) -> int:
        ident = self.next_id
        self.next_id += 1
        self.frames[ident] = (step, level)
        return ident

    def add_variables(self, producer: Callable[[], list[dict[str, Any]]]) -> int:
        ident = self.next_id
        self.next_id += 1
        self.variables[ident] = producer
        return ident


class SessionState:
    """What every group of request handlers shares: the timeline's engine and the client's view of it."""

    def __init__(self, connection: Connection) -> None:
        self.conn = connection
        self.lines_start_at_1 = True
        self.columns_start_at_1 = True
        self.launched: Launched | None = None
        self.launch_failed = False
        self.engine: Engine | None = None
        self.deferred: list[dict[str, Any]] = []
        self.stop_on_entry = False
        self.stop_at_end = False
        self.configured = False
        self.finished = False  # terminated was sent
        self.closed = False  # disconnect: stop serving
        self.breakpoints: dict[str, list[ClientBreakpoint]] = {}  # trace file -> line breakpoints
        self.function_breakpoints: list[ClientBreakpoint] = []
        self.by_number: dict[int, int] = {}  # engine breakpoint number -> DAP id
        self.filters: set[str] = set()
        self.catchpoint: int | None = None
        self.next_bp_id = 1
        self.refs = Handles()
        self.source_refs: dict[str, int] = {}
        self.output_sent = 0
        self._threads: list[int] | None = None
        self._shell: ReplayShell | None = None
        self._client_points: set[int] = set()  # the engine numbers the client's breakpoints had at a switch

    # -- helpers ---------------------------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if self.engine is None:
            raise RequestError("nothing is launched yet")
        return self.engine

    def _client_line(self, line: int) -> int:
        return line if self.lines_start_at_1 else line - 1

    def _our_line(self, line: Any) -> int:
        if not isinstance(line, int) or isinstance(line, bool):
            raise RequestError(f"line {line!r} is not a number")
        return line if self.lines_start_at_1 else line + 1

    def _trace_files(self) -> list[str]:
        engine = self._engine()
        files: dict[str, None] = {}
        for chunk in engine.timeline.summaries():
            for file, _ in chunk.lines:
                files[file] = None
        return list(files)

    def _trace_file(self, path: str) -> str | None:
        """The timeline's name for a client's path (symlinks resolved), or None if it never runs."""
        files = self._trace_files()
        if path in files:
            return path
        real = os.path.realpath(path)
        for file in files:
            if os.path.realpath(file) == real:
                return file
        if not self._engine().timeline.complete and self._engine().timeline.source(path) is not None:
            return path  # a predicted timeline may reach this file later
        return None

    def _recorded_lines(self, file: str) -> set[int]:
        return {line for chunk in self._engine().timeline.summaries() for f, line in chunk.lines if f == file}

    def _source(self, file: str) -> dict[str, Any]:
        source: dict[str, Any] = {"name": os.path.basename(file), "path": file}
        if not os.path.isfile(file):
            reference = self.source_refs.setdefault(file, len(self.source_refs) + 1)
            source["sourceReference"] = reference
            source["origin"] = "recorded in the trace"
        return source

    # -- what if ---------------------------------------------------------------------------------------------
    def _forked(self) -> bool:
        """Whether the Debug Console's `whatif` has the session on a predicted timeline."""
        return self._shell is not None and self._shell.forked

    def _switch_engine(self, old: Engine, new: Engine) -> None:
        """Show `new` (a what-if, or the recording again): the client's breakpoints, as they are now, follow
        into it with the same numbers; the rest of each engine's points stay its own."""
        client = set(self.by_number) | ({self.catchpoint} if self.catchpoint is not None else set())
        for number in self._client_points - client:
            new.points.pop(number, None)  # the client removed it while the other timeline was shown
        for number in client:
            point = old.points.get(number)
            if point is not None and number not in new.points:  # set while the other timeline was shown
                new.points[number] = replace(point, reported=set())
        new._next_number = max(new._next_number, old._next_number)  # one numbering for both
        self._client_points = client
        self.engine = new
        self._threads = None

    # -- stops -----------------------------------------------------------------------------------------------
    def _stopped(self, reason: str, breakpoint_ids: list[int] | None = None) -> None:
        engine = self._engine()
        self.refs = Handles(next_id=self.refs.next_id)  # handles from the last stop are stale now
        self._send_output(engine.position)
        step = engine.current
        body: dict[str, Any] = {"reason": reason, "threadId": step.thread + 1, "allThreadsStopped": True,
                                "preserveFocusHint": False}
        if breakpoint_ids:
            body["hitBreakpointIds"] = breakpoint_ids
        exception = self._exception_here()
        if exception is not None:
            body["text"] = exception_text(exception[0])
            if reason == "exception":
                body["description"] = ("Paused on uncaught exception: " if exception[1] else
                                       "Paused on exception: ") + body["text"]
        elif self._forked():
            body["description"] = ("Paused in a what-if: every step is the model's prediction (`back` in "
                                   "the Debug Console returns to the recording)")
        elif engine.position == engine.end and engine.timeline.complete:
            body["description"] = "Paused at the end of the recording"
        elif engine.position == engine.start and reason == "step":
            body["description"] = "Paused at the start of the recording"
        self.conn.event("stopped", body)

    def _send_output(self, index: int, everything: bool = False) -> None:
        """The program's output up to the step, in timeline order (only what was not sent before: going
        back does not take output back)."""
        timeline = self._engine().timeline
        writes = getattr(timeline, "all_output", None)
        if callable(writes):
            records = [(p, s, t) for p, s, t in writes() if everything or p <= index]
            pending: list[tuple[str, str]] = []  # consecutive writes to one stream go out as one event
            for _position, stream, text in records[self.output_sent:]:
                category = "stderr" if stream == 2 else "stdout"
                if pending and pending[-1][0] == category:
                    pending[-1] = (category, pending[-1][1] + text)
                else:
                    pending.append((category, text))
            for category, text in pending:
                self.conn.event("output", {"category": category, "output": text})
            self.output_sent = max(self.output_sent, len(records))
            return
        text = timeline.output_until(len(timeline) - 1 if everything else index)
        if len(text) > self.output_sent:
            self.conn.event("output", {"category": "stdout", "output": text[self.output_sent:]})
            self.output_sent = len(text)

    def _exception_here(self) -> tuple[Value, bool] | None:
        """The exception at the stop, and whether it is the uncaught one (the post-mortem stop)."""
        engine = self._engine()
        if engine.post_mortem and engine.crash is not None:
            return engine.crash.exception, True
        step = engine.current
        if step.event == "exception" and step.value is not None:
            return step.value, False
        return None
