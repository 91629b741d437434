"""Neural emulation: constraints, the predictor (against an oracle model), NeuralTimeline, eval, the CLI."""

from __future__ import annotations

import ast
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from neural.constraints import StaticCode, allowed_headers, check_state, header, is_repr
from neural.evaluate import (
    CruxItem,
    call_arguments,
    check_input,
    eval_cruxeval,
    eval_traces,
    same_value,
)
from neural.textformat import serialize
from neural.timeline import CallError, NeuralTimeline, driver_code, entry_state
from neural.trajectory import ACTIONS, Action, State, StateTree, sample_trajectories
from replay.engine import Engine
from replay.memory import ListTimeline
from tests.neural_oracle import OracleModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROGRAM = """\
def total(xs, scale=2):
    acc = 0
    for x in xs:
        acc = acc + x * scale
    return acc


def pick(words, n):
    out = []
    for w in words:
        if len(w) > n:
            out.append(w.upper())
    try:
        first = out[0]
    except IndexError:
        first = None
    return first, total([len(w) for w in out])


def gen(n):
    for i in range(n):
        yield i * i


print(pick(["ab", "abcd", "xyz"], 2))
print(pick([], 1))
print(sum(gen(3)))
"""

CRUX = [
    {"id": "c0", "code": "def f(x):\n    return x\n", "input": "[3, 1]", "output": "[3, 1]"},
    {"id": "c1", "code": "def f(a, b):\n    c = a * b\n    return c + 1\n", "input": "3, 4", "output": "13"},
    {
        "id": "c2",
        "code": "def f(s):\n    out = ''\n    for ch in s:\n        out = ch + out\n    return out\n",
        "input": "'abc'",
        "output": "'cba'",
    },
]


@pytest.fixture(scope="module")
def program_trace(tmp_path_factory: pytest.TempPathFactory, run_retrograde: Any) -> Path:
    root = tmp_path_factory.mktemp("predict")
    (root / "program.py").write_text(PROGRAM)
    result = run_retrograde(["record", "-o", "program.rtrace", "program.py"], cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "program.rtrace"


@pytest.fixture(scope="module")
def tree(program_trace: Path) -> StateTree:
    return StateTree.from_recorded(str(program_trace))


@pytest.fixture(scope="module")
def tokenizer(tree: StateTree) -> Any:
    from neural.tokenizer import train_tokenizer

    texts = [serialize(t) for t in sample_trajectories(tree, 30, seed=1, max_actions=20)]
    return train_tokenizer(texts, vocab_size=600)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A randomly initialised tiny model saved like a trained one (tokenizer beside it)."""
    from neural.model import TINY, new_model

    out = tmp_path_factory.mktemp("tiny_model")
    model = new_model(TINY, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed=3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def oracle_predictor(tree: StateTree, tokenizer: Any, node: int, context: int = 512) -> Any:
    from neural.predict import Predictor

    oracle = OracleModel(tree, tokenizer, context)
    oracle.node = node
    return Predictor(oracle, tokenizer, retries=0, max_state_tokens=160)


# -- static constraints --------------------------------------------------------------------------------------
def test_true_next_states_are_always_allowed(tree: StateTree) -> None:
    """Differential: every transition the recorder saw passes the header constraint for its action."""
    static = StaticCode.from_source(tree.code)
    lines = sorted({s.line for s in tree.states if s.event == "line"})
    checked = 0
    for node in range(len(tree)):
        actions = [Action(a) for a in ACTIONS if a != "breakpoint"] + [Action("breakpoint", n) for n in lines]
        for action in actions:
            target = tree.apply(node, action)
            if target is None:
                continue
            truth = tree.states[target]
            allowed = allowed_headers(static, tree.states[node], action)
            assert header(truth.event, truth.line, truth.depth, truth.func) in allowed, (node, action)
            assert check_state(truth, allowed) is None, (node, action)
            checked += 1
    assert checked > 500


def test_constraints_exclude_impossible_headers(tree: StateTree) -> None:
    static = StaticCode.from_source(tree.code)
    start = next(s for s in tree.states if s.event == "line" and s.func == "total" and s.line == 2)
    allowed = allowed_headers(static, start, Action("step_over"))
    assert header("line", 3, start.depth, "total") in allowed  # `acc = 0` is followed by the for line
    assert header("line", 5, start.depth, "total") not in allowed  # not a successor of line 2
    assert header("line", 11, start.depth, "total") not in allowed  # a line of another function
    assert header("line", 99, start.depth, "total") not in allowed  # no such line
    assert header("call", 1, start.depth + 1, "total") not in allowed  # step_over never enters a call
    assert not allowed.has_prefix("line 2 7 ")  # no jump of several levels
    into = allowed_headers(static, tree.states[0], Action("step_into"))
    assert header("call", 1, 1, "total") in into


def test_compact_code_drops_what_cannot_matter_and_maps_line_numbers() -> None:
    from neural.constraints import compact_code

    code = '"""Doc\nstring."""\nimport os\n\n\ndef helper(x):\n    return x + 1\n\n\n' \
        'def other():\n    return 2\n\n\ndef f(a):\n    return helper(a)\n\n\n' \
        'if __name__ == "__main__":\n    f(1)\n'
    out, kept = compact_code(code, "f")
    assert [line for line in out.splitlines() if line] == [
        "import os", "def helper(x):", "    return x + 1", "def f(a):", "    return helper(a)"]
    assert len(kept) == len(out.splitlines())
    original = code.splitlines()
    for new, old in enumerate(kept, 1):  # each kept line is the original line it says it is
        assert out.splitlines()[new - 1] == original[old - 1]
    assert original[kept[out.splitlines().index("def f(a):")] - 1] == "def f(a):"
    assert "\n\n\n\n" not in out and not out.startswith("\n")


def test_compact_code_keeps_the_callers_a_return_goes_to() -> None:
    from neural.constraints import compact_code

    code = ("def leaf(x):\n    return x > 1\n\n\ndef mid(xs):\n    return [v for v in xs if leaf(v)]\n\n\n"
            "def top(xs):\n    return len(mid(xs))\n\n\ndef other():\n    return 3\n\n\nprint(top([1, 2]))\n")

    def defs(text: str) -> set[str]:
        return {line.split("(")[0] for line in text.splitlines() if line.startswith("def")}

    assert defs(compact_code(code, "leaf")[0]) == {"def leaf", "def mid", "def top"}  # where its return goes
    assert defs(compact_code(code, "leaf", callers=False)[0]) == {"def leaf"}


def test_is_repr_accepts_reprs_and_rejects_text() -> None:
    for good in ("1", "'a'", "[1, {'k': (2, 3)}]", "<Foo object at 0x?>", "Point(x=1, y=2)", "'abc..."):
        assert is_repr(good), good
    for bad in ("", "[1, 2", "x = 1", "'unterminated"):
        assert not is_repr(bad), bad


# -- entry calls ---------------------------------------------------------------------------------------------
def test_entry_state_binds_like_python() -> None:
    code = "def f(a, b=2, *rest, key=None, **more):\n    return a\n"
    state = entry_state(code, "f(1, 5, 6, key='k', z=3)")
    assert (state.event, state.line, state.depth, state.func) == ("call", 1, 1, "f")
    assert dict(state.locals) == {"a": "1", "b": "5", "rest": "(6,)", "key": "'k'", "more": "{'z': 3}"}
    assert dict(entry_state(code, "f([1])").locals) == {
        "a": "[1]",
        "b": "2",
        "rest": "()",
        "key": "None",
        "more": "{}",
    }
    decorated = "import functools\n\n@functools.cache\ndef g(n=len('ab')):\n    return n\n"
    state = entry_state(decorated, "g()")
    assert state.line == 3 and dict(state.locals) == {"n": "len('ab')"}  # the recorder's line: the decorator
    for call, reason in (
        ("h(1)", "no top-level function"),
        ("f()", "missing a required argument"),
        ("f(x)", "literals"),
        ("f(*a)", "literals"),
        ("1 +", "not a call"),
    ):
        with pytest.raises(CallError, match=reason):
            entry_state(code, call)


def test_driver_code_appends_the_call_once() -> None:
    assert driver_code("def f(x):\n    return x\n", "f(2)") == "def f(x):\n    return x\n\nf(2)\n"
    assert driver_code("def f(x):\n    return x\n\nf(2)\n", "f(2)") == "def f(x):\n    return x\n\nf(2)\n"


# -- the predictor, against the oracle -----------------------------------------------------------------------
def test_oracle_predictions_equal_the_tree_for_every_action(tree: StateTree, tokenizer: Any) -> None:
    """Each action from many nodes: the decoded state is exactly the true one (header, locals, value)."""
    predictor = oracle_predictor(tree, tokenizer, 0)
    lines = sorted({s.line for s in tree.states if s.event == "line"})
    checked = 0
    for node in range(0, len(tree), 3):
        for name in ACTIONS:
            action = Action(name, lines[node % len(lines)]) if name == "breakpoint" else Action(name)
            target = tree.apply(node, action)
            if target is None:
                continue
            predictor.lm.node = node
            predictor.begin(tree.code, tree.states[node])
            prediction = predictor.predict(action)
            assert prediction.valid and prediction.tries == 1
            assert prediction.state == tree.states[target], (node, action)
            checked += 1
    assert checked > 100


def test_long_code_is_shortened_and_lines_translated(tree: StateTree, tokenizer: Any) -> None:
    """Code too long for the context: the model reads a shorter code; states come back in true lines."""
    from neural.predict import Predictor

    node = next(i for i, s in enumerate(tree.states) if (s.event, s.func, s.line) == ("line", "pick", 9))
    padding = "".join(f"def unused_{i}(a, b, c):\n    return [a, b, c] * {i}\n\n\n" for i in range(40))
    code = '"""' + "A long module docstring. " * 40 + '"""\n' + padding
    shift = len(code.splitlines())
    shifted_code = code + tree.code
    frames = list(tree.opener)  # a level's opening node identifies its frame activation
    shifted = StateTree(shifted_code, [replace(s, line=s.line + shift if s.line else 0) for s in tree.states],
                        frames)
    from neural.constraints import compact_code

    short, kept = compact_code(shifted_code, "pick")
    to_short = {old: new for new, old in enumerate(kept, 1)}
    in_short = StateTree(short, [replace(s, line=to_short.get(s.line, 0)) for s in shifted.states], frames)
    oracle = OracleModel(in_short, tokenizer, 512)  # the oracle speaks the short code's numbering
    oracle.node = node
    predictor = Predictor(oracle, tokenizer, retries=0, max_state_tokens=160)
    start = shifted.states[node]
    predictor.begin(shifted_code, start)
    assert predictor.code == short and len(short) < len(shifted_code) / 3
    prediction = predictor.predict(Action("step_into"))
    target = tree.apply(node, Action("step_into"))
    assert target is not None and prediction.valid
    assert prediction.state == shifted.states[target]  # the true line of the long file


def test_a_state_too_big_for_the_usual_room_is_predicted_not_refused(
    tokenizer: Any, tmp_path: Path, run_retrograde: Any
) -> None:
    """A first state that leaves less than the usual room for a prediction (a long local): the room shrinks
    to the state's size, then the state is shown with its reprs cut; the prediction still starts, and the
    names it keeps have their full values (read from the state, not from the cut text)."""
    from neural.predict import Predictor
    from neural.textformat import serialize_state

    program = (
        "def grow(n):\n    text = 'word ' * 150\n    count = 0\n    for i in range(n):\n"
        "        count += len(text) + i\n    return count\n\nprint(grow(3))\n"
    )
    (tmp_path / "grow.py").write_text(program)
    done = run_retrograde(["record", "-o", "grow.rtrace", "grow.py"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    big = StateTree.from_recorded(str(tmp_path / "grow.rtrace"))
    over = 0
    for node, state in enumerate(big.states):
        target = big.apply(node, Action("step_into"))
        if "text" not in state.locals or target is None:
            continue
        oracle = OracleModel(big, tokenizer, 512)
        predictor = Predictor(oracle, tokenizer, retries=0, max_state_tokens=160)  # a first state, each time
        size = len(predictor.encode(serialize_code_text(big.code))) + len(
            predictor.encode(serialize_state(big.code, state))
        )
        over += size > 512 - 160 - 16  # the usual room: these were refused before
        oracle.node = node
        predictor.begin(big.code, state)
        prediction = predictor.predict(Action("step_into"))
        assert prediction.state == big.states[target], node
    assert over >= 5


def serialize_code_text(code: str) -> str:
    from neural.textformat import serialize_code

    return serialize_code(code)


def test_an_unknown_unchanged_marker_is_dropped_not_fatal(tree: StateTree, tokenizer: Any) -> None:
    """A model that marks a name `<|same|>` which the previous state lacks gets that entry repaired away."""
    from neural.textformat import LOCALS, STATE, serialize_state

    node = next(i for i, s in enumerate(tree.states) if (s.event, s.func, s.line) == ("line", "total", 3))
    target = tree.apply(node, Action("step_into"))
    assert target is not None
    predictor = oracle_predictor(tree, tokenizer, node)
    oracle = predictor.lm
    advance = oracle._advance

    def sloppy_advance() -> None:
        advance()
        body = serialize_state(tree.code, tree.states[target], tree.states[node], Action("step_into"))
        body = body[len(STATE):].replace(LOCALS + "{", LOCALS + '{"zz": "<|same|>", ', 1)
        oracle.expected = [*tokenizer(body, add_special_tokens=False)["input_ids"], oracle.action_id]

    oracle._advance = sloppy_advance  # type: ignore[method-assign]
    predictor.begin(tree.code, tree.states[node])
    prediction = predictor.predict(Action("step_into"))
    assert prediction.valid and prediction.tries == 1
    assert prediction.state == tree.states[target] and "zz" not in prediction.state.locals


def test_neural_timeline_reproduces_the_recording(tree: StateTree, tokenizer: Any) -> None:
    """Step by step from the first call of pick(): window restarts and cache reuse included."""
    node = next(i for i, s in enumerate(tree.states) if s.event == "call" and s.func == "pick")
    close = tree.apply(node, Action("step_return"))
    assert close is not None
    predictor = oracle_predictor(tree, tokenizer, node, context=400)  # small: forces window restarts
    timeline = NeuralTimeline(predictor, tree.code, "/virtual/program.py", tree.states[node])
    assert len(timeline) == 1 and not timeline.complete
    last = timeline.step(close - node)
    assert timeline.complete and len(timeline) == close - node + 1
    assert last.event == "return" and last.value is not None and last.value.text == "('ABCD', 14)"
    for i in range(len(timeline)):
        assert timeline.states[i] == tree.states[node + i], i
    with pytest.raises(IndexError):
        timeline.step(len(timeline))
    assert timeline.flagged() == []
    # The cache was reused: far fewer model calls than a re-read of the whole text per token would need.
    tokens = sum(p.tokens for p in timeline.predictions if p is not None)
    assert predictor.lm.feeds < tokens * 2


def test_engine_commands_on_a_neural_timeline(tree: StateTree, tokenizer: Any) -> None:
    """s, n, r, c, breakpoints and reverse motions give the same stops as on the same steps held in lists."""
    node = next(i for i, s in enumerate(tree.states) if s.event == "call" and s.func == "pick")
    predictor = oracle_predictor(tree, tokenizer, node)
    neural = NeuralTimeline(predictor, tree.code, "/virtual/program.py", tree.states[node])
    close = tree.apply(node, Action("step_return"))
    assert close is not None
    reference = neural_copy(tree, node, close)
    script = ["s", "s", "n", "n", "b 12", "c", "rs", "rn", "n", "r", "rc", "c"]
    stops = []
    for timeline in (neural, reference):
        engine = Engine(timeline)
        # A predicted timeline starts at its call (the first line is not predicted yet); a complete one
        # skips to its first line like pdb: start both at the call.
        engine.start = engine.position = 0
        seen = []
        for command in script:
            if command.startswith("b "):
                engine.add_breakpoint(f"/virtual/program.py:{command[2:]}")
                continue
            stop = {
                "s": engine.step,
                "n": engine.next,
                "r": engine.return_,
                "c": engine.continue_,
                "rs": engine.reverse_step,
                "rn": engine.reverse_next,
                "rc": engine.reverse_continue,
            }[command]()
            seen.append((stop.step.index, stop.step.event, stop.step.line, stop.reason))
        stops.append(seen)
    assert stops[0] == stops[1]
    assert any(reason == "breakpoint" for *_, reason in stops[0])


def neural_copy(tree: StateTree, start: int, stop: int) -> ListTimeline:
    """The tree's states start..stop as a ListTimeline, with the frame ids NeuralTimeline would give them."""
    from neural.constraints import is_literal
    from replay.timeline import Step, Value

    steps = []
    locals_ = []
    frames: list[tuple[int, int]] = []
    next_id = 0
    for index, state in enumerate(tree.states[start : stop + 1]):
        while frames and (
            frames[-1][0] > state.depth
            or (state.event in ("call", "resume") and frames[-1][0] >= state.depth)
        ):
            frames.pop()
        if state.event not in ("call", "resume") and frames and frames[-1][0] == state.depth:
            frame_id = frames[-1][1]
        else:
            next_id += 1
            frame_id = next_id
            frames.append((state.depth, frame_id))
        if state.event in ("return", "yield", "unwind"):
            frames.pop()
        value = Value(state.value, literal=is_literal(state.value)) if state.value is not None else None
        steps.append(
            Step(
                index,
                state.event,
                "/virtual/program.py",
                state.line,
                state.func,
                state.depth,
                0,
                frame_id,
                value,
            )
        )
        locals_.append({k: Value(v, literal=is_literal(v)) for k, v in state.locals.items()})
    return ListTimeline(steps, locals_, sources={"/virtual/program.py": tree.code})


# -- a random tiny model: constrained decoding never yields an invalid state ---------------------------------
def test_random_model_states_are_always_valid_or_flagged(tiny_model_dir: Path) -> None:
    from neural.predict import Predictor

    predictor = Predictor.from_path(str(tiny_model_dir), retries=1, seed=5)
    code = CRUX[2]["code"]
    static = StaticCode.from_source(driver_code(code, "f('abc')"))
    timeline = NeuralTimeline.for_call(predictor, code, "/virtual/f.py", "f('abc')", max_steps=6)
    count = 0
    while not timeline.complete:
        timeline.step(len(timeline))
    for index in range(1, len(timeline)):
        previous, state = timeline.states[index - 1], timeline.states[index]
        prediction = timeline.predictions[index]
        assert prediction is not None
        allowed = allowed_headers(static, previous, Action("step_into"))
        assert header(state.event, state.line, state.depth, state.func) in allowed
        if prediction.valid:
            assert check_state(state, allowed) is None
        else:
            assert prediction.problem and all(is_repr(v) for v in state.locals.values())
            assert state.value is None or is_repr(state.value)
        count += 1
    assert count >= 1
    # Every action, from the call state and from a later one.
    for action in ("step_over", "step_return", "continue", "step_back", "back_to_call"):
        prediction = predictor.predict(Action(action), timeline.states[0])
        allowed = allowed_headers(static, timeline.states[0], Action(action))
        assert (
            header(
                prediction.state.event, prediction.state.line, prediction.state.depth, prediction.state.func
            )
            in allowed
        )


def test_replay_navigation_on_a_random_model(tiny_model_dir: Path) -> None:
    """Whatever a random model predicts, the engine's motions stay consistent on the growing timeline."""
    from neural.predict import Predictor

    predictor = Predictor.from_path(str(tiny_model_dir), retries=0, seed=2)
    timeline = NeuralTimeline.for_call(predictor, CRUX[2]["code"], "/virtual/f.py", "f('ab')", max_steps=12)
    engine = Engine(timeline)
    assert engine.position == 0 and engine.current.event == "call"
    first = engine.step()
    assert first.step.index == 1 and len(timeline) >= 2
    assert engine.reverse_step().step.index == 0
    end = engine.continue_()
    assert timeline.complete and end.step.index == len(timeline) - 1  # grew to the end (return or the cap)
    assert engine.reverse_continue().step.index == 0
    for _ in range(3):
        before = engine.position
        stop = engine.next()
        if not stop.moved:  # only at the end
            assert before == engine.end
            break
        assert stop.step.index > before
        assert engine.reverse_step().step.index == stop.step.index - 1
        engine.step()
    stack = timeline.stack_at(engine.position)
    assert stack[-1].index == engine.position and all(s.depth < stack[-1].depth for s in stack[:-1])


# -- evaluation ----------------------------------------------------------------------------------------------
def test_same_value_and_call_arguments() -> None:
    assert same_value("[1, 2]", "[1,2]") and same_value("(1,)", "(1, )") and not same_value("1", "2")
    assert not same_value(None, "1") and same_value("<X object>", "<X object>")
    code = "def f(a, b=1, *c, d, **e):\n    return a\n"
    state = State("call", 1, 1, "f", {"a": "1", "b": "'x'", "c": "(2,)", "d": "3", "e": "{}"})
    assert call_arguments(code, state) == "1, 'x', *(2,), d=3, **{}"
    assert call_arguments(code, State("call", 1, 1, "f", {"b": "1"})) is None


def test_check_input_runs_f_in_the_sandbox(tmp_path: Path) -> None:
    code = "def f(a, b):\n    return a * b + 1\n"
    assert check_input(code, "3, 4", "13", str(tmp_path), 0)
    assert not check_input(code, "3, 5", "13", str(tmp_path), 1)
    assert not check_input(code, "3, ", "13)", str(tmp_path), 2)  # not even an expression


def test_eval_traces_oracle_scores_one_and_baselines_less(tree: StateTree, tokenizer: Any) -> None:
    predictor = oracle_predictor(tree, tokenizer, 0)
    oracle = predictor.lm

    class Tracking:  # the oracle must know which node each item starts from
        def __init__(self) -> None:
            self.inner = predictor

        def begin(self, code: str, state: State) -> None:
            oracle.node = tree.states.index(state)
            predictor.begin(code, state)

        def predict(self, action: Action) -> Any:
            return predictor.predict(action)

    result = eval_traces(Tracking(), [("program", tree)], per_action=6, seed=2)  # type: ignore[arg-type]
    scores = result["scores"]
    for kind, cell in scores["model"].items():
        assert cell["n"] > 0, kind
        # The oracle finds each item's node by its state (the first equal one); these items have no twins.
        assert [cell[f] for f in ("event", "line", "locals", "exact")] == [1.0] * 4, (kind, cell)
    assert scores["copy"]["step_into"]["exact"] < scores["model"]["step_into"]["exact"]
    assert scores["copy"]["step_into"]["line"] < 0.5
    assert result["items"] == sum(cell["n"] for cell in scores["copy"].values())


def test_eval_cruxeval_with_a_random_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    from neural.predict import Predictor

    predictor = Predictor.from_path(str(tiny_model_dir), retries=0)
    items = [CruxItem(d["id"], d["code"], d["input"], d["output"]) for d in CRUX]
    items.append(CruxItem("broken", "def f(:\n", "1", "2"))  # not Python: skipped and counted as a miss
    result = eval_cruxeval(predictor, items)
    assert result["items"] == 4 and result["answered"] == 3
    assert len(result["skipped"]) == 1 and result["skipped"][0].startswith("broken: ")
    for name in ("model", "copy"):
        assert set(result["scores"][name]) == {
            "output_step_return", "output_breakpoint", "output_steps", "input_inverse", "input_search"}
        assert all(0.0 <= v <= 1.0 for v in result["scores"][name].values())
    # Copy baseline: item 0 is the identity, so output = first argument and input = output both pass.
    # (The broken item's copy answers are wrong too: 1 of 4.)
    assert result["scores"]["copy"]["output_step_return"] == pytest.approx(1 / 4, abs=1e-3)
    assert result["scores"]["copy"]["input_inverse"] == pytest.approx(1 / 4, abs=1e-3)
    # Step by step, the code decides every step of the three small functions (neural.flow, neural.exact):
    # even random weights return the right value.
    assert result["scores"]["model"]["output_steps"] == pytest.approx(3 / 4, abs=1e-3)
    # The search tries the output itself as the input, verified by predicting f step by step: item 0 (the
    # identity) passes that way; the copy baseline's 1 of 4 is the floor.
    assert result["scores"]["model"]["input_search"] >= 1 / 4 - 1e-3


# -- command line --------------------------------------------------------------------------------------------
def test_cli_predict_and_eval(
    run_retrograde: Any, tiny_model_dir: Path, tmp_path: Path, tree: StateTree
) -> None:
    (tmp_path / "f.py").write_text("def f(a, b):\n    c = a * b\n    return c + 1\n")
    result = run_retrograde(
        [
            "predict",
            "f.py",
            "--call",
            "f(3, 4)",
            "--model",
            tiny_model_dir,
            "--actions",
            "s,n,r,rr",
            "--json",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["action"] for r in rows] == [None, "step_into", "step_over", "step_return", "back_to_call"]
    assert rows[0] == {**rows[0], "event": "call", "line": 1, "func": "f", "locals": {"a": "3", "b": "4"}}
    result = run_retrograde(
        ["predict", "f.py", "--call", "f(3, 4)", "--model", tiny_model_dir, "--max-steps", "3"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"--Call--\n> {tmp_path / 'f.py'}(1)f()\n-> def f(a, b):\n   a = 3\n")
    crux = tmp_path / "crux.jsonl"
    crux.write_text("".join(json.dumps(d) + "\n" for d in CRUX))
    result = run_retrograde(
        ["eval", "cruxeval", crux, "--limit", "2", "--model", tiny_model_dir], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"output_step_return", "output_breakpoint", "output_steps", "input_inverse"} <= set(last)
    assert last["items"] == 2
    assert "output via step_return" in result.stdout
    result = run_retrograde(
        ["replay", "--neural", "f.py", "--call", "f(3, 4)", "--model", tiny_model_dir, "--max-steps", "4"],
        cwd=tmp_path,
        input="where\ns\nrs\nq\n",
    )
    assert result.returncode == 0, result.stderr
    assert "(1)f()" in result.stdout and result.stdout.count("(retro)") >= 3


def test_cli_eval_traces_baselines(run_retrograde: Any, tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text(PROGRAM)
    assert run_retrograde(["record", "-o", "p.rtrace", "p.py"], cwd=tmp_path).returncode == 0
    result = run_retrograde(["eval", "traces", tmp_path, "--baselines-only"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last["scores"]) == {"copy", "frequent"}
    assert last["scores"]["copy"]["step_into"]["n"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "missing.py", "--call", "f(1)"], "no such file: missing.py"),
        (["predict", "f.py", "--call", "g(1)"], "defines no top-level function g()"),
        (["predict", "f.py", "--call", "f(x)"], "must be Python literals"),
        (["predict", "f.py", "--call", "f(1)", "--actions", "s,zz"], "unknown action 'zz'"),
        (["predict", "f.py", "--call", "f(1)", "--actions", "b x"], "needs a line number"),
        (["predict", "f.py", "--call", "f(1)", "--model", "nowhere"], "no such model directory: nowhere"),
        (["predict", "bad.py"], "does not compile"),
        (["replay", "--neural", "missing.py"], "no such file: missing.py"),
        (["replay", "f.py", "--call", "f(1)"], "--call goes with --neural"),
        (["eval", "cruxeval", "missing.jsonl"], "no such file: missing.jsonl"),
        (["eval", "cruxeval", "f.py"], "f.py:1: not JSON"),
        (["eval", "cruxeval", "other.jsonl"], "not a CRUXEval record"),
        (["eval", "traces", "missing_dir"], "no such file or directory: missing_dir"),
        (["eval", "traces", "."], "no traces"),
        (["eval"], "eval needs a task"),
        (["tui", "--neural", "missing.py"], "no such file: missing.py"),
        (["tui", "f.py", "--neural", "--call", "g(1)"], "defines no top-level function g()"),
        (["tui", "--neural", "f.py", "--call", "f(1)", "--bogus"], "takes no program arguments"),
    ],
)
def test_cli_bad_input_is_one_sentence(
    run_retrograde: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "f.py").write_text("def f(a):\n    return a\n")
    (tmp_path / "bad.py").write_text("def f(:\n")
    (tmp_path / "other.jsonl").write_text('{"code": "x = 1"}\n')
    result = run_retrograde(args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrograde: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# -- the TUI's prediction pane -------------------------------------------------------------------------------
def test_compare_marks_each_wrong_field() -> None:
    from tui.prediction import compare, render

    recorded = State("line", 4, 1, "f", {"a": "1", "b": "[2]"})
    predicted = State("line", 5, 1, "f", {"a": "1", "c": "3"})
    rows = {row.field: row for row in compare(predicted, recorded)}
    assert rows["event"].match and rows["a"].match and rows["function"].match
    assert not rows["line"].match and (rows["line"].predicted, rows["line"].recorded) == ("5", "4")
    assert not rows["b"].match and rows["b"].predicted == "(missing)"
    assert not rows["c"].match and rows["c"].recorded == "(none)"
    text = render(compare(predicted, recorded)).plain
    assert "3 of 6 fields differ" in text and "✗ line = 5  (recorded 4)" in text and "✓ a = 1" in text
    assert "all fields match" in render(compare(recorded, recorded)).plain


def test_tui_shows_the_models_next_step_beside_the_recording(
    program_trace: Path, tree: StateTree, tokenizer: Any
) -> None:
    pytest.importorskip("textual")
    import asyncio

    from textual.widgets import Static

    from replay.recorded import RecordedTimeline
    from tui.app import make_app

    predictor = oracle_predictor(tree, tokenizer, 0)
    begin = predictor.begin

    def tracking_begin(code: str, state: State) -> None:  # the oracle learns which node the TUI is at
        predictor.lm.node = tree.states.index(state)
        begin(code, state)

    predictor.begin = tracking_begin  # type: ignore[method-assign]
    timeline = RecordedTimeline(str(program_trace))
    app = make_app(timeline, title="program.py", predictor=predictor)
    seen: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(4):
                await pilot.press("s")
                await app.workers.wait_for_complete()
                await pilot.pause()
                pane = app.query_one("#prediction", Static)
                seen.append(str(pane.render()))
            await pilot.press("p")
            await pilot.pause()
            assert not app.query_one("#prediction", Static).display

    asyncio.run(main())
    timeline.close()
    assert len(seen) == 4
    for text in seen:
        assert "all fields match" in text, text
        assert "✓ line = " in text


def test_shaped_candidates_keep_the_outputs_type_and_cover_simple_inverses() -> None:
    """The search's extra guesses: of the output's type, for a one-parameter f only, and they include the
    input of simple functions (reverse, sort, case, +1), which forward prediction then has to confirm."""
    from neural.evaluate import shaped_candidates

    cases = [
        ("def f(xs):\n    return xs[::-1]\n", [3, 1, 2]),
        ("def f(xs):\n    return sorted(xs)\n", [2, 3, 1]),
        ("def f(s):\n    return s.upper()\n", "abc"),
        ("def f(n):\n    return n + 1\n", 4),
        ("def f(n):\n    return n // 2\n", 6),
    ]
    for code, given in cases:
        namespace: dict[str, Any] = {}
        exec(code, namespace)  # the test may run f: it checks the guesses, the search never runs it
        output = repr(namespace["f"](given))
        found = shaped_candidates(code, output)
        assert found and output not in found and len(found) <= 6
        assert all(type(ast.literal_eval(text)) is type(given) for text in found)
        if code.endswith("sorted(xs)\n"):
            continue  # sorting loses the order: no guess can be sure, the search just tries orders
        assert repr(given) in found, (code, found)
    assert shaped_candidates("def f(a, b):\n    return a\n", "3") == []
    assert shaped_candidates("def f(x):\n    return str(x)\n", "<object>") == []


def test_what_the_code_decides_is_fed_at_once_and_changes_nothing(tiny_model_dir: Path) -> None:
    """Differential: a run the code decides step by step (a loop over literals) gives the same states
    whether the decided text is fed to the model at once or token by token, in far fewer model calls."""
    from neural.predict import Predictor

    code = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x * 2\n    return total\n"
    runs = {}
    for ahead in (True, False):
        predictor = Predictor.from_path(str(tiny_model_dir), retries=1, seed=5)
        predictor.ahead = ahead
        feeds: list[int] = []
        feed = predictor.lm.feed

        def counted(ids: Any, feed: Any = feed, feeds: list[int] = feeds) -> Any:
            feeds.append(len(ids))
            return feed(ids)

        predictor.lm.feed = counted  # type: ignore[method-assign]
        timeline = NeuralTimeline.for_call(predictor, code, "/virtual/f.py", "f([1, 2, 3])", max_steps=40)
        last = timeline.run_to_end()
        runs[ahead] = (list(timeline.states), last, feeds)
    states, last, feeds = runs[True]
    assert states == runs[False][0]
    assert last.event == "return" and last.value == "12"
    assert len(feeds) * 3 < len(runs[False][2]), (len(feeds), len(runs[False][2]))


def test_parameters_are_typed_by_their_use() -> None:
    from neural.inputs import parameter_kinds

    code = (
        "def f(s, xs, d, a, n, b):\n"
        "    words = s.split()\n"
        "    xs.append(len(words))\n"
        "    for k, v in d.items():\n"
        "        n += v // 2\n"
        "    return a & b, xs, n\n"
    )
    kinds = parameter_kinds(ast.parse(code).body[0])  # type: ignore[arg-type]
    assert kinds["s"][0] == "str" and kinds["xs"][0] == "list" and kinds["d"][0] == "dict"
    assert kinds["a"][0] == "set" and kinds["b"][0] == "set" and kinds["n"][0] == "int"
    assert parameter_kinds(ast.parse("def f(x):\n    return x\n").body[0])["x"] == []  # type: ignore[arg-type]


def bounded(run: Any, steps: int = 10_000) -> Any:
    """run() stopped with an exception after `steps` line events (a wrong guess may never end)."""
    import sys

    left = [steps]

    def trace(frame: Any, event: str, arg: Any) -> Any:
        left[0] -= 1
        if left[0] < 0:
            raise TimeoutError("too many steps")
        return trace

    sys.settrace(trace)
    try:
        return run()
    finally:
        sys.settrace(None)


def test_input_guesses_hold_inputs_of_simple_functions() -> None:
    """Differential against running f (the test may; the search never does): the typed guesses are
    argument lists of f's arity, and for most small functions one of them gives the output."""
    from neural.inputs import input_guesses

    cases = [
        ("def f(text):\n    return sorted(set(text.split()))\n", "'b a b'"),
        ("def f(nums, k):\n    return [x for x in nums if x > k]\n", "[1, 5, 7], 4"),
        ("def f(d):\n    d['z'] = 0\n    return d\n", "{'a': 1}"),
        ("def f(a, b):\n    return sorted(a | b)\n", "{1, 2}, {3}"),
        ("def f(n):\n    total = 0\n    while n:\n        total += n % 10\n        n //= 10\n"
         "    return total\n", "0"),
        ("def f(s):\n    return s.strip().upper()\n", "' ab '"),
        ("def f(xs):\n    xs.reverse()\n    return xs\n", "[1, 2, 3]"),
        ("def f(s, sep):\n    return s.split(sep)\n", "'a-b', '-'"),
        ("def f(xs):\n    return {i: x for i, x in enumerate(xs)}\n", "[4, 6]"),
        ("def f(words):\n    return [(w, words.count(w)) for w in sorted(set(words))]\n", "['x', 'y']"),
        ("def f(text):\n    return text.count('a'), text.isupper(), text\n", "'Abc'"),
        ("def f(nums, target):\n    for i, x in enumerate(nums):\n        if x == target:\n"
         "            return i\n    return -1\n", "[3, 4], 9"),
    ]
    found = 0
    for code, arguments in cases:
        namespace: dict[str, Any] = {}
        exec(code, namespace)
        output = repr(eval(f"f({arguments})", namespace))
        guesses = input_guesses(code, output)
        assert guesses and output not in guesses and len(guesses) <= 24
        arity = len(ast.parse(f"f({arguments})", mode="eval").body.args)  # type: ignore[attr-defined]
        hit = False
        for text in guesses:
            call = ast.parse(f"f({text})", mode="eval").body
            assert len(call.args) == arity, (code, text)  # type: ignore[attr-defined]
        for text in [output, *guesses]:  # the search tries the output itself first
            try:
                run = eval(f"lambda: f({text})", dict(namespace))
                hit = hit or repr(bounded(run)) == output
            except Exception:  # a wrong guess may raise or loop: the forward prediction weeds it out
                pass
        found += hit
    assert found >= 10, found
    assert input_guesses("def f(*args):\n    return args\n", "(1,)") == []
    assert input_guesses("def f(x):\n    return x\n", "<object at 0x1>") == []


def test_eval_items_do_not_shift_each_others_retries(tree: StateTree, tiny_model_dir: Path) -> None:
    """Retries after a failed check sample from the predictor's random generator: each item starts from
    its own seed, so an item's samples do not depend on the items before it (a change that moves one
    item's retries leaves the others' scores alone)."""
    from neural.predict import Predictor

    runs = []
    for burn in (0, 37):  # the generator as earlier items may have left it
        predictor = Predictor.from_path(str(tiny_model_dir), retries=2, seed=5)
        for _ in range(burn):
            predictor.rng.random()
        seen: list[Any] = []
        begin = predictor.begin

        def spy(code: str, state: State, begin: Any = begin, seen: list[Any] = seen,
                predictor: Any = predictor) -> None:
            seen.append(predictor.rng.getstate())
            begin(code, state)

        predictor.begin = spy  # type: ignore[method-assign]
        result = eval_traces(predictor, [("program", tree)], per_action=2, limit=10)
        runs.append((seen, result["scores"]["model"]))
    assert len(runs[0][0]) == 10 and runs[0] == runs[1]
    assert len({repr(state) for state in runs[0][0]}) == 10  # and each item has a seed of its own


def test_a_models_malformed_numbers_raise_no_syntax_warnings() -> None:
    """A model can write `1abc` or `1if 2`: every check of its text stays silent (no SyntaxWarning on the
    user's terminal), and the text is not a value."""
    import warnings

    from neural.constraints import is_literal, literal_value

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for text in ("1abc", "1if 2", "[0x1g]", "0b12"):
            assert not is_literal(text) and not literal_value(text)[0] and not is_repr(text)
            assert not same_value(text, "1")
    assert [w for w in caught if issubclass(w.category, SyntaxWarning)] == []
