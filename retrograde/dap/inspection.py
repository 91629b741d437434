"""Inspection requests: threads, stack frames, scopes, variables, sources, evaluate and the replay's repl."""

from __future__ import annotations

import ast
import io
from typing import Any

from replay.engine import RETURNS, exception_name
from replay.expressions import EvalError, Opaque, parse_expression
from replay.repl import ReplayShell
from replay.session import exception_text
from replay.source import co_name
from replay.timeline import Step, Value
from retrograde.dap import values as dapvalues
from retrograde.dap.hits import recorded_threads
from retrograde.dap.state import RequestError, SessionState


class InspectionRequests(SessionState):
    """Answers about the stop; only the repl's motion commands move (and then report a stop)."""

    # -- threads and the stack -------------------------------------------------------------------------------
    def _thread_numbers(self) -> list[int]:
        engine = self._engine()
        if self._threads is None or not engine.timeline.complete:
            self._threads = recorded_threads(engine.timeline)
        return self._threads

    def on_threads(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        if self.engine is None:
            self.conn.respond(request, {"threads": [{"id": 1, "name": "MainThread"}]})
            return
        numbers = self._thread_numbers()
        self.conn.respond(request, {"threads": [
            {"id": n + 1, "name": "MainThread" if n == 0 else f"Thread {n}"} for n in numbers]})

    def _thread_stack(self, thread: int) -> tuple[list[Step], bool]:
        """A thread's stack at the position, innermost first, and whether it is the engine's thread."""
        engine = self._engine()
        if thread == engine.current.thread:
            return list(reversed(engine.stack())), True
        latest: Step | None = None
        index = engine.position
        while index > 0 and latest is None:
            low = max(0, index - 4096)
            for step in reversed(list(engine.timeline.steps(low, index))):
                if step.thread == thread:
                    latest = step
                    break
            index = low
        if latest is None:
            return [], False
        return list(reversed(engine.timeline.stack_at(latest.index))), False

    def on_stackTrace(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        thread = args.get("threadId", self._engine().current.thread + 1)
        if not isinstance(thread, int):
            raise RequestError("threadId must be a number")
        stack, selectable = self._thread_stack(thread - 1)
        start = args.get("startFrame") or 0
        levels = args.get("levels") or 0
        chosen = stack[start:start + levels] if levels else stack[start:]
        frames = []
        for level, step in enumerate(chosen, start):
            frames.append({
                "id": self.refs.add_frame(step, level if selectable else None),
                "name": co_name(step.func), "source": self._source(step.file),
                "line": self._client_line(step.line),
                "column": 1 if self.columns_start_at_1 else 0,
            })
        self.conn.respond(request, {"stackFrames": frames, "totalFrames": len(stack)})

    def _frame(self, args: dict[str, Any]) -> tuple[Step, int | None]:
        ident = args.get("frameId")
        if ident is None:
            return self._engine().current, 0
        frame = self.refs.frames.get(ident) if isinstance(ident, int) else None
        if frame is None:
            raise RequestError(f"frame {ident} is not valid at this stop")
        return frame

    # -- variables -------------------------------------------------------------------------------------------
    def on_scopes(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        step, _level = self._frame(args)
        engine = self._engine()
        timeline = engine.timeline
        scopes = [{"name": "Locals", "presentationHint": "locals", "expensive": False,
                   "variablesReference": self.refs.add_variables(lambda: self._locals(step))}]
        module = self._module_frame(step)
        if module is not None:
            scopes.append({"name": "Globals", "expensive": False,
                           "variablesReference": self.refs.add_variables(
                               lambda: self._names(timeline.locals_at(module.index)))})
        self.conn.respond(request, {"scopes": scopes})

    def _module_frame(self, step: Step) -> Step | None:
        """The module frame of the step's file on its stack (else the outermost module frame)."""
        stack = self._engine().timeline.stack_at(step.index)
        modules = [s for s in stack if s.func == "<module>"]
        for module in modules:
            if module.file == step.file:
                return module
        return modules[0] if modules else None

    def _locals(self, step: Step) -> list[dict[str, Any]]:
        variables = []
        if step.event in RETURNS:
            value = step.value or Value("None", True)
            variables.append(self._variable("(return value)", value.text, value.literal))
        elif step.event == "exception" and step.value is not None:
            variables.append(self._variable("(exception)", step.value.text, step.value.literal))
        return variables + self._names(self._engine().timeline.locals_at(step.index))

    def _names(self, names: dict[str, Value]) -> list[dict[str, Any]]:
        return [self._variable(name, value.text, value.literal) for name, value in names.items()]

    def _variable(self, name: str, text: str, expandable: bool) -> dict[str, Any]:
        variable: dict[str, Any] = {"name": name, "value": text, "variablesReference": 0}
        kind = dapvalues.type_name(text) if expandable else ""
        if kind:
            variable["type"] = kind
        self._expansion(variable, text if expandable else None)
        return variable

    def _expansion(self, body: dict[str, Any], text: str | None) -> None:
        """Make a literal container's variable expandable (with item counts when paging helps)."""
        items = dapvalues.children(text) if text is not None else None
        if not items:
            return
        body["variablesReference"] = self.refs.add_variables(lambda: [
            self._variable(child.name, child.text, True) for child in items])
        if len(items) > dapvalues.PAGE_HINT:
            key = "indexedVariables" if dapvalues.is_indexed(text or "") else "namedVariables"
            body[key] = len(items)

    def on_variables(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        ident = args.get("variablesReference")
        producer = self.refs.variables.get(ident) if isinstance(ident, int) else None
        if producer is None:
            raise RequestError(f"variables reference {ident} is not valid at this stop")
        start, count = args.get("start"), args.get("count")
        items = dapvalues.page(producer(), start if isinstance(start, int) else None,
                               count if isinstance(count, int) else None)
        self.conn.respond(request, {"variables": items})

    def on_source(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        reference = args.get("sourceReference")
        source = args.get("source") if isinstance(args.get("source"), dict) else {}
        assert isinstance(source, dict)
        file = next((f for f, r in self.source_refs.items() if r == reference), None) or source.get("path")
        text = self._engine().timeline.source(file) if isinstance(file, str) else None
        if text is None:
            raise RequestError(f"no source recorded for {file or reference}")
        self.conn.respond(request, {"content": text, "mimeType": "text/x-python"})

    # -- evaluate --------------------------------------------------------------------------------------------
    def on_evaluate(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        expression = args.get("expression")
        if not isinstance(expression, str):
            raise RequestError("evaluate needs an expression")
        step, level = self._frame(args)
        if args.get("context") == "repl" and not _is_expression(expression):
            self._repl(request, expression, level)
            return
        value = self._evaluate(expression, step, level)
        text = value.text if isinstance(value, Opaque) else repr(value)
        body: dict[str, Any] = {"result": text, "variablesReference": 0}
        kind = type(value).__name__ if not isinstance(value, Opaque) else ""
        if kind:
            body["type"] = kind
        if not isinstance(value, Opaque):
            self._expansion(body, text)
        self.conn.respond(request, body)

    def _evaluate(self, expression: str, step: Step, level: int | None) -> object:
        """The expression over the frame's recorded values (the engine's own evaluation in its frames)."""
        engine = self._engine()
        if level is not None:
            saved = engine.frame_index
            engine.frame_index = level
            try:
                return engine.evaluate(expression)
            finally:
                engine.frame_index = saved
        try:
            parsed = parse_expression(expression)
            extra: dict[str, object] = {}
            if step.event in RETURNS and step.value is not None:
                try:
                    extra["__return__"] = step.value.python()
                except (ValueError, SyntaxError):
                    extra["__return__"] = Opaque(step.value.text)
            return parsed.evaluate(engine.timeline.locals_at(step.index), extra)
        except EvalError as exc:
            raise RequestError(str(exc)) from None

    def _repl(self, request: dict[str, Any], line: str, level: int | None) -> None:
        """A replay command (`history x`, `rc`, `b 12`...) through the REPL's own command layer."""
        engine = self._engine()
        if self._shell is None:
            from retrograde.cli import whatif_forker

            self._shell = ReplayShell(engine.timeline, io.StringIO(), io.StringIO(), interactive=False,
                                      forker=whatif_forker())
            self._shell.session.engine = self._shell.engine = engine  # one engine: the client's
        shell = self._shell
        buffer = io.StringIO()
        shell.stdout = buffer
        before = engine.position
        if level is not None:
            engine.frame_index = level
        if line.strip() in ("q", "quit", "exit", "EOF"):
            raise RequestError("use the client's stop button to end the session")
        shell.onecmd(shell.precmd(line))
        self.conn.respond(request, {"result": buffer.getvalue().rstrip("\n"), "variablesReference": 0})
        if shell.engine is not engine:  # whatif or back: the client now sees the other timeline
            self._switch_engine(engine, shell.engine)
            self._stopped("goto")
        elif engine.position != before:
            self._stopped("goto" if line.strip().split()[0] in ("goto", "first", "last") else "step")

    def on_exceptionInfo(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        engine = self._engine()
        found = self._exception_here()
        if found is None:
            raise RequestError("not stopped at an exception")
        value, uncaught = found
        text = exception_text(value)
        name = exception_name(value.text)
        message = text.partition(": ")[2] if ": " in text else ""
        stack = "\n".join(f'  File "{frame.file}", line {frame.line}, in {co_name(frame.func)}'
                          for frame in engine.stack())
        self.conn.respond(request, {
            "exceptionId": name, "description": text, "breakMode": "unhandled" if uncaught else "always",
            "details": {"message": message, "typeName": name, "fullTypeName": name,
                        "stackTrace": stack},
        })


def _is_expression(text: str) -> bool:
    """Whether a repl line is an expression rather than a replay command (pdb's rule: a line whose
    first word is a command runs the command; `!expr` or `p expr` forces an expression)."""
    stripped = text.strip()
    if stripped.startswith("!"):
        return False  # the shell evaluates it
    word = stripped.split(" ", 1)[0] if stripped else ""
    if word and (hasattr(ReplayShell, "do_" + word) or word.startswith(("reverse-",))):
        return False
    try:
        ast.parse(stripped, mode="eval")
    except SyntaxError:
        return False
    return True
