"""How well a model predicts execution: next-state accuracy on held-out traces, and CRUXEval-style tasks.

`eval traces`: for every held-out trace's state tree, seeded nodes per action type; the model starts from
the code and that node's full state, takes the action once (greedy, constrained), and its state is compared
with the tree's: event, line, locals, and the whole state (event, line, depth, function, locals, value).
Two baselines on the same items: `copy` (the next state is the current one) and `frequent` (the most
frequent event and line offset for that action over the items, the locals copied).

`eval cruxeval`: each item is code with `def f`, an input (the argument text) and an output (a repr).
- output via step_return: from f's call state, step_return; pass when the predicted return value equals
  the output;
- output via breakpoint: from f's call state, a breakpoint at f's last `return` line; the returned
  expression is evaluated over the predicted locals (the replay's safe evaluator, as `p EXPR` would), or,
  when it cannot be (calls, unknown names), the model's step_into from there gives the return value;
- output via steps: from f's call state, step_into again and again (each step predicted from the one
  before, as `retrograde predict` does) until f returns, within the default cap; pass when the return
  value equals the output;
- input via the inverse action: from a return state carrying only the output, back_to_call; the predicted
  call state's parameters are the input, and it passes when `f(input) == output` holds when run in the
  corpus sandbox.
All are pass@1 with greedy decoding. The `copy` baseline answers the output with the first argument and
the input with the output.
"""

from __future__ import annotations

import ast
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from neural.constraints import CodeError, StaticCode, is_literal, literal_value, quiet_literal
from neural.inputs import f_definition, input_guesses
from neural.predict import PredictError, Predictor
from neural.timeline import CallError, NeuralTimeline, driver_code, entry_state
from neural.trajectory import INVERSE, Action, State, StateTree
from replay.timeline import TimelineError

ACTION_TYPES = ("step_into", "step_over", "step_return", "breakpoint", "inverse")
FIELDS = ("event", "line", "locals", "exact")
CRUX_KEYS = ("output_step_return", "output_breakpoint", "output_steps", "input_inverse", "input_search")
SAMPLES = 3  # sampled inverse predictions tried by input_search, after the greedy one


class EvalError(Exception):
    """Evaluation data that cannot be read."""


# -- values --------------------------------------------------------------------------------------------------
def same_value(predicted: str | None, expected: str) -> bool:
    """Whether two reprs denote the same value (as Python literals when they are, else as text)."""
    if predicted is None:
        return False
    try:
        return bool(quiet_literal(predicted) == quiet_literal(expected))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return predicted.strip() == expected.strip()


# -- held-out traces -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Tally:
    """Counts of matches per field for one row of the table."""

    total: int = 0
    hits: Counter[str] = field(default_factory=Counter)

    def add(self, predicted: State, truth: State) -> None:
        self.total += 1
        self.hits["event"] += predicted.event == truth.event
        self.hits["line"] += predicted.line == truth.line
        self.hits["locals"] += dict(predicted.locals) == dict(truth.locals)
        self.hits["exact"] += predicted == truth

    def rate(self, name: str) -> float:
        return self.hits[name] / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Item:
    """One next-state question: the code, a state, an action, and the true next state."""

    code: str
    state: State
    action: Action
    truth: State

    @property
    def kind(self) -> str:
        return "inverse" if self.action.name in INVERSE else self.action.name


def trace_items(tree: StateTree, per_action: int, rng: random.Random) -> list[Item]:
    """Up to `per_action` seeded items per action type (inverse: step_back, step_back_over, back_to_call)."""
    items: list[Item] = []
    n = len(tree)
    lines = [s.line for s in tree.states if s.event == "line"]
    for kind in ACTION_TYPES:
        nodes = list(range(n))
        rng.shuffle(nodes)
        found = 0
        for node in nodes:
            if found >= per_action:
                break
            if kind == "breakpoint":
                later = [tree.states[j].line for j in range(node + 1, n) if tree.states[j].event == "line"]
                if not later or not lines:
                    continue
                action = Action("breakpoint", rng.choice(later))
            elif kind == "inverse":
                action = Action(rng.choice(INVERSE))
            else:
                action = Action(kind)
            target = tree.apply(node, action)
            if target is None:
                continue
            items.append(Item(tree.code, tree.states[node], action, tree.states[target]))
            found += 1
    return items


def load_trees(paths: Sequence[str], errors: list[str]) -> list[tuple[str, StateTree]]:
    """The state trees of .rtrace files (directories are searched); unreadable ones go to `errors`."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(
                os.path.join(d, f) for d, _s, names in os.walk(path) for f in names if f.endswith(".rtrace")
            )
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise EvalError(f"no such file or directory: {path}")
    if not files:
        raise EvalError("no traces (.rtrace files) found in " + ", ".join(paths))
    trees = []
    for path in files:
        try:
            tree = StateTree.from_recorded(path)
        except Exception as exc:  # a corrupt trace in a corpus: skip it, say so
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            name = os.path.basename(path)
            errors.append(text if text.startswith(name) else f"{name}: {text}")
            continue
        if len(tree) >= 2 and tree.code:
            trees.append((path, tree))
    if not trees:
        raise EvalError("none of the traces could be read: " + "; ".join(errors[:3]))
    return trees


def frequent_baseline(items: Sequence[Item]) -> Callable[[Item], State]:
    """The `frequent` baseline: per action type, the most frequent next event and line offset."""
    events: dict[str, Counter[str]] = {}
    offsets: dict[str, Counter[int]] = {}
    for item in items:
        events.setdefault(item.kind, Counter())[item.truth.event] += 1
        offsets.setdefault(item.kind, Counter())[item.truth.line - item.state.line] += 1

    def guess(item: Item) -> State:
        s = item.state
        if item.action.name == "breakpoint":
            return State("line", item.action.line, s.depth, s.func, s.locals, None)
        event = events[item.kind].most_common(1)[0][0]
        offset = offsets[item.kind].most_common(1)[0][0]
        return State(event, s.line + offset, s.depth, s.func, s.locals, None)

    return guess


def _reseed(predictor: Any, key: str) -> None:
    """Seed the predictor's sampling (retries after a failed check) per item, so that an item's prediction
    does not depend on the items before it: a change that moves one item's retries leaves the others."""
    rng = getattr(predictor, "rng", None)
    if isinstance(rng, random.Random):
        rng.seed(key)


def eval_traces(
    predictor: Predictor | None,
    trees: Sequence[tuple[str, StateTree]],
    per_action: int = 4,
    seed: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Scores per action type and field for the model (when given) and the baselines."""
    rng = random.Random(seed)
    items: list[Item] = []
    for _path, tree in trees:
        items += trace_items(tree, per_action, rng)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise EvalError("the traces offer no actions to evaluate")
    rows: dict[str, dict[str, Tally]] = {
        name: {kind: Tally() for kind in ACTION_TYPES} for name in ("model", "copy", "frequent")
    }
    frequent = frequent_baseline(items)
    flagged = 0
    skipped = 0
    started = time.perf_counter()
    for number, item in enumerate(items):
        rows["copy"][item.kind].add(item.state, item.truth)
        rows["frequent"][item.kind].add(frequent(item), item.truth)
        if predictor is not None:
            try:
                _reseed(predictor, f"{seed}:{number}")
                predictor.begin(item.code, item.state)
                prediction = predictor.predict(item.action)
            except PredictError:
                skipped += 1  # code too long for the model's context: counted as a miss
                rows["model"][item.kind].total += 1
            else:
                flagged += not prediction.valid
                rows["model"][item.kind].add(prediction.state, item.truth)
        if progress is not None:
            progress(number + 1, len(items))
    seconds = time.perf_counter() - started
    if predictor is None:
        del rows["model"]
    scores = {
        name: {kind: {f: round(t.rate(f), 4) for f in FIELDS} | {"n": t.total} for kind, t in by_kind.items()}
        for name, by_kind in rows.items()
    }
    return {
        "scores": scores,
        "items": len(items),
        "traces": len(trees),
        "flagged": flagged,
        "too_long": skipped,
        "seconds": round(seconds, 2),
        "items_per_s": round(len(items) / seconds, 2) if seconds and predictor is not None else None,
    }


# -- CRUXEval ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CruxItem:
    id: str
    code: str
    input: str  # argument text: f(INPUT)
    output: str  # repr of f(INPUT)


def load_cruxeval(path: str) -> list[CruxItem]:
    from tracer.corpus.sources import SourceError
    from tracer.corpus.sources import load_cruxeval as load

    if not os.path.isfile(path):
        raise EvalError(f"no such file: {path}")
    try:
        return [CruxItem(p.id, p.code, p.inputs[0], p.expected) for p in load(path)]
    except (SourceError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise EvalError(str(exc).splitlines()[0]) from None


def _returned(static: StaticCode, state: State, line: int) -> str | None:
    """The value of the `return EXPR` on `line` of f, over the state's locals (None when not computable)."""
    from replay.expressions import EvalError as ExprError
    from replay.expressions import parse_expression
    from replay.timeline import Value

    definition = static.defs.get("f")
    if definition is None:
        return None
    for node in ast.walk(definition):
        if isinstance(node, ast.Return) and node.lineno == line:
            if node.value is None:
                return "None"
            names = {k: Value(v, literal=is_literal(v)) for k, v in state.locals.items()}
            try:
                return repr(parse_expression(ast.unparse(node.value)).evaluate(names))
            except (
                ExprError,
                ValueError,
                TypeError,
                SyntaxError,
                ArithmeticError,
                RecursionError,
                MemoryError,
            ):
                return None
    return None


def call_arguments(code: str, state: State) -> str | None:
    """The argument text (`1, [2]`) that binds f's parameters to a call state's locals, or None."""
    static = StaticCode.from_source(code)
    definition = static.defs.get("f")
    if definition is None:
        return None
    a = definition.args
    parts: list[str] = []
    for arg in [*a.posonlyargs, *a.args]:
        if arg.arg not in state.locals:
            return None
        parts.append(state.locals[arg.arg])
    if a.vararg and a.vararg.arg in state.locals:
        parts.append("*" + state.locals[a.vararg.arg])
    for arg in a.kwonlyargs:
        if arg.arg in state.locals:
            parts.append(f"{arg.arg}={state.locals[arg.arg]}")
    if a.kwarg and a.kwarg.arg in state.locals:
        parts.append("**" + state.locals[a.kwarg.arg])
    return ", ".join(parts)


def check_input(code: str, arguments: str, output: str, workdir: str, number: int) -> bool:
    """Whether f(arguments) == output when run in the corpus sandbox (no network, limits, a step cap)."""
    from tracer.corpus.program import Program
    from tracer.corpus.sandbox import Limits, run_program

    try:
        ast.parse(f"f({arguments})", mode="eval")
        ast.parse(output, mode="eval")
    except SyntaxError:
        return False
    program = Program(
        id=f"input-check-{number}",
        code=code,
        tests=(f"assert f({arguments}) == {output}",),
        source="cruxeval",
        split="eval",
    )
    limits = Limits(timeout=10.0, cpu=5, max_steps=10_000, keep_over_cap=False)
    result = run_program(program, limits, os.path.join(workdir, f"check-{number}.rtrace"))
    return result.exit_code == 0 and result.status in ("ok", "step_cap")


def crux_tasks(predictor: Predictor, item: CruxItem) -> dict[str, Any]:
    """The model's three answers for one item (None where it could not answer) and how it got them."""
    call = f"f({item.input})"
    code = driver_code(item.code, call)
    start = entry_state(code, call)
    static = StaticCode.from_source(code)
    out: dict[str, Any] = {}
    predictor.begin(code, start)
    returned = predictor.predict(Action("step_return"))
    out["output_step_return"] = returned.state.value if returned.state.event == "return" else None
    lines = static.returns.get("f") or []
    if lines:
        predictor.begin(code, start)
        hit = predictor.predict(Action("breakpoint", lines[-1]))
        value = _returned(static, hit.state, lines[-1]) if hit.state.line == lines[-1] else None
        if value is None:  # not computable at the line: finish the frame (walked, as `r` in the debugger)
            after = predictor.predict(Action("step_return"))
            value = after.state.value if after.state.event == "return" else None
        out["output_breakpoint"] = value
    else:
        out["output_breakpoint"] = out["output_step_return"]
    out["output_steps"] = predicted_output(predictor, item.code, item.input)
    end = State("return", lines[-1] if lines else start.line, start.depth, "f", {}, item.output)
    blind = driver_code(item.code, "f()")  # the text the model reads must not hold the input it predicts
    predictor.begin(blind, end)
    called = predictor.predict(Action("back_to_call"))
    out["input_inverse"] = call_arguments(blind, called.state) if called.state.event == "call" else None
    out["input_search"] = search_input(predictor, item.code, item.output, end, out["input_inverse"])
    return out


def predicted_output(predictor: Predictor, code: str, arguments: str) -> str | None:
    """f(arguments)'s return value as the model predicts it step by step, step_into from the call until f
    returns within the default cap (None: no return, or not a call f can take)."""
    call = f"f({arguments})"
    try:
        full = driver_code(code, call)
        start = entry_state(full, call)
        timeline = NeuralTimeline(predictor, full, "<cruxeval>", start)
    except (CallError, CodeError, TimelineError, PredictError):
        return None
    last = timeline.run_to_end()
    finished = last.event == "return" and (last.func, last.depth) == ("f", start.depth)
    return last.value if finished and timeline.stopped is None else None


def search_input(
    predictor: Predictor, code: str, output: str, end: State, greedy: str | None, samples: int = SAMPLES
) -> str | None:
    """An input for f that gives `output`, found without running f: candidates are the model's inverse
    prediction (greedy, then `samples` sampled ones), the output itself as the argument, and inputs typed
    by how f uses its parameters (`neural.inputs.input_guesses`); the first
    whose step-by-step forward prediction returns `output` is the answer, else the output itself (the
    likeliest single guess), else the greedy one."""
    candidates: list[str] = [c for c in (greedy,) if c is not None]
    full = driver_code(code, "f()")
    predictor.sampling = True
    try:
        for _ in range(samples):
            predictor.begin(full, end)
            called = predictor.predict(Action("back_to_call"))
            if called.state.event == "call":
                guess = call_arguments(full, called.state)
                if guess is not None and guess not in candidates:
                    candidates.append(guess)
    except PredictError:
        pass
    finally:
        predictor.sampling = False
    if output not in candidates:
        candidates.append(output)
    candidates += [c for c in shaped_candidates(code, output) if c not in candidates]
    candidates += [c for c in input_guesses(code, output) if c not in candidates]
    for candidate in candidates:
        if same_value(predicted_output(predictor, code, candidate), output):
            return candidate
    return output if is_literal(output) else greedy


def shaped_candidates(code: str, output: str, limit: int = 6) -> list[str]:
    """For an f of one plain parameter, inputs of the output's own type that simple functions map to it
    (reversed, sorted, cased, shifted by one...): more guesses for the search to check by forward
    prediction, never by running f."""
    definition = f_definition(code)
    if definition is None:
        return []
    a = definition.args
    if len(a.posonlyargs) + len(a.args) != 1 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults:
        return []
    ok, value = literal_value(output)
    if not ok:
        return []
    shaped: list[Any] = []
    if isinstance(value, list | tuple) and value and all(type(v) is type(value[0]) for v in value):
        kind = type(value)
        shaped = [kind(reversed(value)), kind(sorted(value)), kind(sorted(value, reverse=True)),
                  value[1:], value[:-1]]
    elif isinstance(value, str) and value:
        shaped = [value[::-1], value.lower(), value.upper(), value.swapcase(), value + value]
    elif isinstance(value, int) and not isinstance(value, bool):
        shaped = [value - 1, value + 1, value * 2, -value] + ([value // 2] if value % 2 == 0 else [])
    out: list[str] = []
    for item in shaped:
        text = repr(item)
        if text != output and text not in out:
            out.append(text)
    return out[:limit]


def eval_cruxeval(
    predictor: Predictor,
    items: Sequence[CruxItem],
    check_inputs: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """pass@1 (greedy) of the model and the copy baseline on the three tasks."""
    passed = {name: Counter[str]() for name in ("model", "copy")}
    answered = 0
    skipped: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retrograde-eval-") as workdir:
        for number, item in enumerate(items):
            first_argument = _first_argument(item.input)
            passed["copy"]["output_step_return"] += same_value(first_argument, item.output)
            passed["copy"]["output_breakpoint"] += same_value(first_argument, item.output)
            passed["copy"]["output_steps"] += same_value(first_argument, item.output)
            if check_inputs:
                copied = check_input(item.code, item.output, item.output, workdir, 2 * number)
                passed["copy"]["input_inverse"] += copied
                passed["copy"]["input_search"] += copied
            try:
                _reseed(predictor, f"crux:{number}")
                answers = crux_tasks(predictor, item)
            except (PredictError, CallError, CodeError) as exc:  # too long, uncallable, or not Python
                skipped.append(f"{item.id}: {exc}")
                answers = {}
            else:
                answered += 1
            passed["model"]["output_step_return"] += same_value(
                answers.get("output_step_return"), item.output
            )
            passed["model"]["output_breakpoint"] += same_value(answers.get("output_breakpoint"), item.output)
            passed["model"]["output_steps"] += same_value(answers.get("output_steps"), item.output)
            checked: dict[str, bool] = {}  # the search often returns the inverse's own guess: run f once
            for key in ("input_inverse", "input_search"):
                guess = answers.get(key)
                if check_inputs and guess is not None:
                    if guess not in checked:
                        checked[guess] = check_input(item.code, guess, item.output, workdir, 2 * number + 1)
                    passed["model"][key] += checked[guess]
            if progress is not None:
                progress(number + 1, len(items))
    total = len(items)
    scores = {
        name: {key: round(counts[key] / total, 4) if total else 0.0 for key in CRUX_KEYS}
        for name, counts in passed.items()
    }
    seconds = time.perf_counter() - started
    return {
        "scores": scores,
        "items": total,
        "answered": answered,
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "items_per_s": round(total / seconds, 3) if seconds else None,
    }


def _first_argument(arguments: str) -> str | None:
    try:
        node = ast.parse(f"f({arguments})", mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.Call) and node.args:
        return ast.unparse(node.args[0])
    return None


def table(rows: Iterable[tuple[str, Sequence[str]]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    data = [list(header)] + [[name, *cells] for name, cells in rows]
    widths = [max(len(row[i]) for row in data) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in data
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = [
    "ACTION_TYPES",
    "CRUX_KEYS",
    "CruxItem",
    "EvalError",
    "Item",
    "check_input",
    "crux_tasks",
    "eval_cruxeval",
    "eval_traces",
    "load_cruxeval",
    "load_trees",
    "same_value",
    "table",
    "trace_items",
]
