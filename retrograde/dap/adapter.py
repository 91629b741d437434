"""The DAP request handlers: a debugging session over one timeline, every stop decided by replay's Engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from replay.engine import Engine, EngineError, Stop
from replay.source import co_name
from replay.timeline import Step, TimelineError
from retrograde.dap.breakpoints import BreakpointRequests
from retrograde.dap.inspection import InspectionRequests
from retrograde.dap.launch import LaunchError, launch
from retrograde.dap.state import RequestError

CAPABILITIES: dict[str, Any] = {
    "supportsConfigurationDoneRequest": True,
    "supportsStepBack": True,
    "supportsConditionalBreakpoints": True,
    "supportsHitConditionalBreakpoints": True,
    "supportsFunctionBreakpoints": True,
    "supportsGotoTargetsRequest": True,
    "supportsEvaluateForHovers": True,
    "supportsExceptionInfoRequest": True,
    "supportsTerminateRequest": True,
    "supportsDelayedStackTraceLoading": True,
    "exceptionBreakpointFilters": [
        {"filter": "raised", "label": "Raised Exceptions", "default": False,
         "description": "Stop wherever an exception is raised or propagates into a frame."},
        {"filter": "uncaught", "label": "Uncaught Exceptions", "default": True,
         "description": "Stop where the exception that ended the program (or a thread) was raised."},
    ],
}

# Requests that need the launched timeline: sent before launch, they wait for it (clients may configure
# breakpoints as soon as the `initialized` event arrives, before the launch response).
_NEEDS_LAUNCH = frozenset({
    "setBreakpoints", "setFunctionBreakpoints", "setExceptionBreakpoints", "configurationDone",
    "stackTrace", "scopes", "variables", "evaluate", "continue", "next", "stepIn", "stepOut", "stepBack",
    "reverseContinue", "goto", "gotoTargets", "exceptionInfo", "source",
})
_GOTO_TARGETS_MAX = 1000  # a line run a million times offers its nearest executions, not all of them


class Adapter(BreakpointRequests, InspectionRequests):
    """One DAP session: answers requests from a Connection and sends its events."""

    # -- dispatch --------------------------------------------------------------------------------------------
    def handle(self, message: dict[str, Any]) -> None:
        """Answer one message (requests only; a client's events and responses are ignored)."""
        if message.get("type") != "request":
            return
        command = message.get("command")
        if not isinstance(command, str):
            self.conn.respond(message, error="a request without a command")
            return
        if command in _NEEDS_LAUNCH and self.engine is None:
            if self.launch_failed:
                self.conn.respond(message, error="nothing to debug: the launch request failed")
            else:
                self.deferred.append(message)
            return
        self._run_handler(command, message)

    def _run_handler(self, command: str, message: dict[str, Any]) -> None:
        handler = getattr(self, "on_" + command, None)
        if handler is None:
            self.conn.respond(message, error=f"retrograde dap does not support the {command!r} request")
            return
        arguments = message.get("arguments")
        if not isinstance(arguments, dict):
            arguments = {}
        try:
            handler(message, arguments)
        except (RequestError, EngineError, LaunchError) as exc:
            self._refuse(message, str(exc))
        except TimelineError as exc:
            self._refuse(message, f"the trace cannot be read here: {exc}")
        except Exception as exc:  # a bug must not end the session: the client gets one sentence
            self._refuse(message, f"internal error: {type(exc).__name__}: {exc}")

    def _refuse(self, message: dict[str, Any], error: str) -> None:
        """An error response; for a request already answered (a step that failed after its response), an
        output event and a stop where the engine still is, so the client is not left running."""
        if self.conn.last_answered != message.get("seq", 0):
            self.conn.respond(message, error=error)
            return
        self.conn.event("output", {"category": "stderr", "output": f"retrograde: {error}\n"})
        try:
            self._stopped("step")
        except Exception:  # nothing more to say than the output above
            pass

    def close(self) -> None:
        if self.launched is not None:
            self.launched.close()
            self.launched = None

    # -- session start ---------------------------------------------------------------------------------------
    def on_initialize(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.lines_start_at_1 = args.get("linesStartAt1", True) is not False
        self.columns_start_at_1 = args.get("columnsStartAt1", True) is not False
        self.conn.respond(request, CAPABILITIES)
        self.conn.event("initialized")

    def on_launch(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        if self.launched is not None:
            raise RequestError("this session has already launched")
        try:
            self.launched = launch(args)
            self.engine = Engine(self.launched.timeline)
        except (LaunchError, EngineError, TimelineError) as exc:
            self.launch_failed = True
            if self.launched is not None:
                self.launched.close()
                self.launched = None
            self.conn.respond(request, error=str(exc))
            self._flush_deferred()
            return
        self.stop_on_entry = bool(args.get("stopOnEntry", False))
        self.stop_at_end = bool(args.get("stopAtEnd", False))
        self.conn.respond(request)
        self.conn.event("process", {"name": self.launched.name, "startMethod": "launch",
                                    "isLocalProcess": False})
        self._flush_deferred()

    def on_attach(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        raise RequestError("retrograde debugs recordings: use launch with `trace` or `program`")

    def _flush_deferred(self) -> None:
        waiting, self.deferred = self.deferred, []
        for message in waiting:
            self.handle(message)

    def on_configurationDone(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        engine = self._engine()
        self.conn.respond(request)
        if self.configured:
            return
        self.configured = True
        if self.stop_on_entry:
            engine.first()
            self._stopped("entry")
            return
        if engine.start > 0:
            engine.goto(engine.start - 1)  # so that a breakpoint on the first line stops there
        self._motion(engine.continue_, True)

    # -- motion ----------------------------------------------------------------------------------------------
    def on_continue(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request, {"allThreadsContinued": True})
        self._motion(self._engine().continue_, True)

    def on_next(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        self._motion(self._engine().next, True)

    def on_stepIn(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        self._motion(self._engine().step, True)

    def on_stepOut(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        self._motion(self._engine().return_, True)

    def on_stepBack(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        engine = self._engine()
        granularity = args.get("granularity")
        self._motion(engine.reverse_step if granularity == "instruction" else engine.reverse_next, False)

    def on_reverseContinue(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        self._motion(self._engine().reverse_continue, False)

    def on_pause(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)  # a replay is always stopped: nothing runs between requests

    def on_goto(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        target = args.get("targetId")
        if not isinstance(target, int) or isinstance(target, bool):
            raise RequestError("goto needs a targetId from gotoTargets")
        engine = self._engine()
        engine.goto(target - 1)
        self.conn.respond(request)
        self._stopped("goto")

    def on_gotoTargets(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        """One target per recorded execution of the line: later ones first (nearest first), then earlier
        ones (nearest first), so a client that takes the first target jumps forward to the next time."""
        engine = self._engine()
        source = args.get("source") if isinstance(args.get("source"), dict) else {}
        assert isinstance(source, dict)
        path = source.get("path")
        file = self._trace_file(path) if isinstance(path, str) else None
        if file is None:
            raise RequestError(f"{path} never runs in this recording")
        line = self._our_line(args.get("line"))
        executions: list[Step] = []
        for chunk in engine.timeline.summaries():
            if (file, line) not in chunk.lines:
                continue
            executions.extend(s for s in engine.timeline.steps(chunk.start, chunk.stop)
                              if s.event == "line" and s.file == file and s.line == line)
        if not executions:
            raise RequestError(f"line {line} of {os.path.basename(file)} never runs in this recording")
        ordinals = {step.index: n for n, step in enumerate(executions, 1)}
        position = engine.position
        later = [s for s in executions if s.index > position]
        earlier = [s for s in reversed(executions) if s.index <= position]
        chosen = (later + earlier)[:_GOTO_TARGETS_MAX]
        targets = [{
            "id": step.index + 1, "line": self._client_line(line),
            "label": f"step {step.index}: time {ordinals[step.index]} of {len(executions)} in "
                     f"{co_name(step.func)}{' (thread ' + str(step.thread) + ')' if step.thread else ''}",
        } for step in chosen]
        self.conn.respond(request, {"targets": targets})

    def _motion(self, action: Callable[[], Stop], forward: bool) -> None:
        """Run one engine command, then stop where it (or an adapter-only stop before it) says."""
        engine = self._engine()
        engine.frame_index = 0  # DAP steps the stopped thread's top frame
        before = engine.position
        stop = action()
        for text in stop.messages:
            if not text.startswith(("Reached the", "At the", "The program crashed here")):
                self.conn.event("output", {"category": "console", "output": text + "\n"})
        extra = self._extra_stop(before, stop.step.index, forward) if before != stop.step.index else None
        if extra is not None:
            index, extra_reason, extra_ids = extra
            if index == stop.step.index and stop.reason in ("breakpoint", "catchpoint", "watchpoint"):
                reason, ids = self._reason(stop)
                self._stopped(reason, ids + extra_ids)  # the same step: one stop, every breakpoint named
                return
            engine.goto(index)
            self._stopped(extra_reason, extra_ids)
            return
        if self._forked() and stop.reason in ("end", "crash"):
            shell = self._shell
            assert shell is not None
            self.conn.event("output", {"category": "console", "output": shell.fork_end_text() + "\n"})
            self._stopped("step")  # a what-if's end is not the program's: the session goes on
            return
        if stop.reason == "crash" and "uncaught" not in self.filters:
            self._terminate()  # the program ended by an exception nobody asked to stop at
            return
        if stop.reason == "end" and (not self.stop_at_end or not stop.moved):
            self._terminate()  # with stopAtEnd, a second forward command at the end ends the session
            return
        reason, ids = self._reason(stop)
        self._stopped(reason, ids)

    def _reason(self, stop: Stop) -> tuple[str, list[int]]:
        if stop.reason == "breakpoint":
            ident = self.by_number.get(stop.number or 0)
            return "breakpoint", [ident] if ident is not None else []
        if stop.reason in ("catchpoint", "crash"):
            return "exception", []
        if stop.reason == "watchpoint":
            return "data breakpoint", []
        return "step", []

    # -- the end ---------------------------------------------------------------------------------------------
    def _terminate(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._send_output(0, everything=True)
        exit_code = self.launched.exit_code if self.launched is not None else 0
        self.conn.event("exited", {"exitCode": exit_code})
        self.conn.event("terminated")

    def on_disconnect(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        self.closed = True

    def on_terminate(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self.conn.respond(request)
        if not self.finished:
            self.finished = True
            exit_code = self.launched.exit_code if self.launched is not None else 0
            self.conn.event("exited", {"exitCode": exit_code})
            self.conn.event("terminated")


__all__ = ["CAPABILITIES", "Adapter"]
