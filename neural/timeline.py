"""NeuralTimeline: a Timeline whose steps a model predicts, lazily, as the debugger navigates.

Each new step is the model's prediction for `step_into` from the step before it, so the timeline is the
program's full step-by-step history as the model imagines it, and every replay command (s, n, r, c, until,
breakpoints, watchpoints, and the reverse motions over what was predicted) works on it unchanged: the
engine asks for the step after the end, and the timeline grows by one prediction. The KV cache carries
over from one step to the next, so a step costs only its own tokens.

Starts: an entry call (`f(1, [2, 3])`: the call state of `f`, its parameters bound like Python binds them,
literal arguments only) or a whole script (the module's call state). The timeline is complete when the
starting frame returns or unwinds, or after `max_steps` predictions; then `stopped` says so in one
sentence. The default cap is sized for the code (`default_max_steps`): a few steps per line, more for
each loop and for recursion, so a model that circles a loop stops in seconds, not after 500 steps.
"""

from __future__ import annotations

import ast
import inspect
import os
import threading
from collections.abc import Iterator, Sequence

from neural.constraints import StaticCode, is_literal
from neural.predict import PredictError, Prediction, Predictor
from neural.trajectory import CLOSE_EVENTS, OPEN_EVENTS, Action, State
from replay.timeline import ChunkSummary, Step, TimelineError, Value

STEP_INTO = Action("step_into")


class CallError(ValueError):
    """An entry call that cannot be bound to the code."""


def driver_code(code: str, call: str) -> str:
    """The code as training saw it: the program, a blank line, then the entry call at module level."""
    stripped = code.rstrip("\n")
    if stripped.splitlines() and stripped.splitlines()[-1].strip() == call.strip():
        return stripped + "\n"
    return stripped + "\n\n" + call.strip() + "\n"


def entry_state(code: str, call: str, depth: int = 1) -> State:
    """The call state of `call` (like `f(1, x=[2])`) in `code`: the function's parameters bound to the
    arguments, defaults filled in, as reprs."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        raise CallError(f"{call!r} is not a call expression") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise CallError(f"{call!r} is not a call of a function by name, like f(1, 2)")
    static = StaticCode.from_source(code)
    name = node.func.id
    definition = static.defs.get(name)
    if definition is None or name not in static.functions:
        raise CallError(f"the code defines no top-level function {name}()")
    try:
        args = [_literal(arg) for arg in node.args]
        kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
    except ValueError:
        raise CallError(
            "the call's arguments must be Python literals (numbers, strings, lists, dicts...)"
        ) from None
    if any(kw.arg is None for kw in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
        raise CallError("the call cannot use *args or **kwargs unpacking")
    signature = _signature(definition)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise CallError(f"{call.strip()}: {exc}") from None
    bound.apply_defaults()
    locals_ = {key: _default_text(value) for key, value in bound.arguments.items()}
    order = static.functions[name].params  # the frame's order: positional, keyword-only, *args, **kwargs
    if set(order) == set(locals_):
        locals_ = {key: locals_[key] for key in order}
    line = min(static.functions[name].calls)
    return State("call", line, depth, name, locals_)


class _Default:
    """A default value known only by its source text (not a literal)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _literal(node: ast.expr) -> object:
    if isinstance(node, ast.Starred):
        raise ValueError("starred")
    return ast.literal_eval(node)


def _default_text(value: object) -> str:
    return value.text if isinstance(value, _Default) else repr(value)


def _signature(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> inspect.Signature:
    a = definition.args
    P = inspect.Parameter
    params: list[inspect.Parameter] = []

    def default(node: ast.expr | None) -> object:
        if node is None:
            return P.empty
        try:
            return ast.literal_eval(node)
        except (ValueError, SyntaxError):
            return _Default(ast.unparse(node))

    positional = [*a.posonlyargs, *a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for i, (arg, node) in enumerate(zip(positional, defaults)):
        kind = P.POSITIONAL_ONLY if i < len(a.posonlyargs) else P.POSITIONAL_OR_KEYWORD
        params.append(P(arg.arg, kind, default=default(node)))
    if a.vararg:
        params.append(P(a.vararg.arg, P.VAR_POSITIONAL))
    for arg, node in zip(a.kwonlyargs, a.kw_defaults):
        params.append(P(arg.arg, P.KEYWORD_ONLY, default=default(node)))
    if a.kwarg:
        params.append(P(a.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)


def default_max_steps(code: str) -> int:
    """A step cap sized for the code: its lines, times a factor per loop nesting level (bounded).

    Each line of the program may run once per round of every loop around it; a round is counted as 16
    iterations, recursion as four times as many (16 times when a function calls itself from two places or
    more, as `fib(n - 1) + fib(n - 2)`). Never below 30 or above 5000.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return 500
    total = 0
    self_calls = [
        sum(isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == node.name
            for sub in ast.walk(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    # recursion: 4 rounds; a function calling itself from two places or more (a tree of calls): 16
    recursive = 4 if max(self_calls, default=0) == 1 else 16 if self_calls and max(self_calls) > 1 else 1

    def visit(node: ast.AST, loops: int) -> None:
        nonlocal total
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                total += 16 ** min(loops, 2) * recursive
            inner = loops + isinstance(child, ast.For | ast.While | ast.AsyncFor | ast.comprehension)
            visit(child, inner)

    visit(tree, 0)
    return max(30, min(5000, 2 * total + 10))


class NeuralTimeline:
    """A Timeline predicted by a model (see the module docstring)."""

    def __init__(
        self, predictor: Predictor, code: str, path: str, start: State, max_steps: int | None = None
    ) -> None:
        self.predictor = predictor
        self.code = code
        self.file = os.path.abspath(path)
        self.max_steps = max_steps if max_steps is not None else default_max_steps(code)
        self.states: list[State] = []
        self.predictions: list[Prediction | None] = []  # None for the given start state
        self._steps: list[Step] = []
        self._stacks: list[tuple[int, ...]] = []  # indexes of the outer frames' latest steps
        self._frames: list[tuple[int, int, int]] = []  # (depth, frame id, latest step index)
        self._next_frame = 0
        self._done = False
        self.stopped: str | None = None  # why the prediction ended early, when it did
        self._start_depth = start.depth
        self._lock = threading.RLock()
        try:
            predictor.begin(code, start)
        except PredictError as exc:
            raise TimelineError(str(exc)) from None
        self._append(start, None)

    @classmethod
    def for_call(
        cls, predictor: Predictor, code: str, path: str, call: str, max_steps: int | None = None
    ) -> NeuralTimeline:
        full = driver_code(code, call)
        return cls(predictor, full, path, entry_state(full, call), max_steps)

    @classmethod
    def for_script(
        cls, predictor: Predictor, code: str, path: str, max_steps: int | None = None
    ) -> NeuralTimeline:
        return cls(predictor, code, path, State("call", 0, 0, "<module>", {}), max_steps)

    # -- growth ----------------------------------------------------------------------------------------------
    def _append(self, state: State, prediction: Prediction | None) -> None:
        index = len(self._steps)
        frames = self._frames
        if state.event in OPEN_EVENTS:
            while frames and frames[-1][0] >= state.depth:
                frames.pop()
            frame_id = self._new_frame()
        else:
            while frames and frames[-1][0] > state.depth:
                frames.pop()
            if frames and frames[-1][0] == state.depth:
                frame_id = frames.pop()[1]
            else:
                frame_id = self._new_frame()
        self._stacks.append(tuple(entry[2] for entry in frames))
        if state.event not in CLOSE_EVENTS:
            frames.append((state.depth, frame_id, index))
        value = Value(state.value, literal=is_literal(state.value)) if state.value is not None else None
        self._steps.append(
            Step(index, state.event, self.file, state.line, state.func, state.depth, 0, frame_id, value)
        )
        self.states.append(state)
        self.predictions.append(prediction)
        if state.event in CLOSE_EVENTS and state.depth <= self._start_depth:
            self._done = True
        if len(self._steps) > self.max_steps and not self._done:
            self._done = True
            self.stopped = (
                f"it reached its cap of {self.max_steps} steps before {self.states[0].func}() "
                "returned (the model may be circling a loop); --max-steps N allows more"
            )

    def _new_frame(self) -> int:
        self._next_frame += 1
        return self._next_frame

    def _grow_to(self, index: int) -> None:
        with self._lock:
            while len(self._steps) <= index and not self._done:
                try:
                    prediction = self.predictor.predict(STEP_INTO, self.states[-1])
                except PredictError as exc:  # cannot go on (the code alone outgrew the context): end here
                    self.stopped = str(exc)
                    self._done = True
                    break
                self._append(prediction.state, prediction)

    def run_to_end(self) -> State:
        """Predict until the starting frame returns (or the cap); the last state."""
        self._grow_to(self.max_steps + 1)
        return self.states[-1]

    # -- the Timeline protocol -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._steps)

    @property
    def complete(self) -> bool:
        return self._done

    def step(self, index: int) -> Step:
        if index < 0:
            raise IndexError(f"step {index} does not exist")
        self._grow_to(index)
        if index >= len(self._steps):
            raise IndexError(f"step {index} does not exist (the prediction ends at {len(self._steps) - 1})")
        return self._steps[index]

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        for index in range(max(0, start), stop):
            if index >= len(self._steps):
                return
            yield self._steps[index]

    def locals_at(self, index: int) -> dict[str, Value]:
        state = self.states[self.step(index).index]
        return {name: Value(text, literal=is_literal(text)) for name, text in state.locals.items()}

    def stack_at(self, index: int) -> list[Step]:
        step = self.step(index)
        return [self._steps[i] for i in self._stacks[index]] + [step]

    def source(self, file: str) -> str | None:
        return self.code if os.path.abspath(file) == self.file else None

    def output_until(self, index: int) -> str:
        return ""  # the model predicts states, not output

    def summaries(self) -> Sequence[ChunkSummary]:
        steps = self._steps
        return [
            ChunkSummary(
                0,
                len(steps),
                frozenset((s.file, s.line) for s in steps),
                frozenset(s.func for s in steps),
                min(s.depth for s in steps),
                max(s.depth for s in steps),
                frozenset(s.event for s in steps),
                frozenset(name for state in self.states for name in state.locals),
            )
        ]

    # -- what the model did ----------------------------------------------------------------------------------
    def flagged(self) -> list[int]:
        """Steps whose prediction failed every check and was patched up."""
        return [i for i, p in enumerate(self.predictions) if p is not None and not p.valid]


__all__ = ["CallError", "NeuralTimeline", "driver_code", "entry_state"]
