""""What if" from a recorded state: a predicted timeline that starts from a recorded frame with names changed.

`whatif(predictor, timeline, index, {"n": "n + 1"})` takes step `index` of any Timeline (a recording),
its frame's locals as recorded, and rebinds each NAME to EXPR, in order, each evaluated over the locals
with the changes before it made (a literal, or an expression neural.exact can evaluate exactly: `n + 1`,
`xs[1:]`, `len(s)`). The model then predicts what follows from that state, as a NeuralTimeline that ends
when the recorded frame returns (or at the cap). Only names the frame can bind may be changed.

`forker_for(predictor)` and `load_forker(model)` make the replay layer's Forker (what `whatif` in the
REPL, the TUI and DAP calls): the same function, with its errors as replay's ForkError.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from neural.constraints import CodeError, StaticCode
from neural.exact import NotExact, evaluate
from neural.predict import Predictor
from neural.timeline import NeuralTimeline
from neural.trajectory import State, normalize_repr
from replay.session import Forker, ForkError
from replay.timeline import Timeline, TimelineError


class WhatIfError(ValueError):
    """A change that cannot be made (one sentence for the user)."""


def start_state(timeline: Timeline, index: int, changes: Mapping[str, str]) -> tuple[str, str, State]:
    """(code, file, the recorded state at `index` with `changes` applied: NAME -> EXPR)."""
    if not 0 <= index < len(timeline):
        raise WhatIfError(f"step {index} is not in the recording (0..{len(timeline) - 1})")
    step = timeline.step(index)
    code = timeline.source(step.file)
    if code is None:
        raise WhatIfError(f"the recording holds no source for {step.file}")
    try:
        static = StaticCode.from_source(code, step.file)
    except CodeError as exc:
        raise WhatIfError(str(exc)) from None
    info = static.functions.get(step.func)
    if info is None:
        raise WhatIfError(f"{step.func} is not a function of {step.file}")
    locals_ = {name: normalize_repr(value.text) for name, value in timeline.locals_at(index).items()}
    new = dict(locals_)
    for name, expression in changes.items():
        if name not in info.names:
            raise WhatIfError(f"{step.func}() has no variable {name!r}")
        try:
            tree = ast.parse(expression.strip(), mode="eval")
            new[name] = evaluate(tree.body, new, static.global_stores)  # sees the changes before it
        except SyntaxError:
            raise WhatIfError(f"{expression!r} is not a Python expression") from None
        except NotExact:
            raise WhatIfError(
                f"{expression!r} cannot be evaluated here: use literals, the frame's variables, operators "
                "and pure builtins"
            ) from None
    value = step.value.text if step.value is not None else None
    return code, step.file, State(step.event, step.line, step.depth, step.func, new, value)


def whatif(
    predictor: Predictor,
    timeline: Timeline,
    index: int,
    changes: Mapping[str, str],
    max_steps: int | None = None,
) -> NeuralTimeline:
    """A NeuralTimeline from step `index` of `timeline` with `changes` (NAME -> EXPR) made to its frame."""
    if not changes:
        raise WhatIfError("what if needs at least one change, like n = 3")
    code, file, state = start_state(timeline, index, changes)
    return NeuralTimeline(predictor, code, file, state, max_steps)


def forker_for(predictor: Predictor, max_steps: int | None = None) -> Forker:
    """replay's Forker over `predictor`: whatif(), its one-sentence errors raised as ForkError."""

    def fork(timeline: Timeline, index: int, changes: Mapping[str, str]) -> Timeline:
        try:
            return whatif(predictor, timeline, index, changes, max_steps)
        except WhatIfError as exc:
            raise ForkError(str(exc)) from None
        except TimelineError as exc:
            raise ForkError(f"the model cannot predict from this step: {exc}") from None

    return fork


def load_forker(model: str | None = None, max_steps: int | None = None) -> Forker:
    """A Forker over the model directory (default: the bundled model), loaded now; ForkError if it cannot."""
    from neural.cli import NeuralCliError, load_predictor

    try:
        predictor = load_predictor(model)
    except NeuralCliError as exc:
        raise ForkError(f"whatif needs a model: {exc}") from None
    return forker_for(predictor, max_steps)


__all__ = ["WhatIfError", "forker_for", "load_forker", "start_state", "whatif"]
