"""Decoding that cannot produce impossible states: frame names, call parameters, forced "same", exact values.

The static facts are checked differentially against recordings (what the recorder saw must always be
allowed, and what is forced must always be what it saw); the decoder is checked with random-weights
models, whose every state must keep to the frame's names, the parameters and the forced values.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from neural.bodies import SAME_CHAR, VALUE_CHAR, BodyGrammar, body_plan
from neural.constraints import StaticCode, changeable
from neural.exact import assigned, returned
from neural.textformat import LOCALS, SAME, VALUE, serialize, serialize_state
from neural.timeline import NeuralTimeline, default_max_steps, driver_code
from neural.trajectory import (
    ACTIONS,
    CLOSE_EVENTS,
    OPEN_EVENTS,
    Action,
    State,
    StateTree,
    sample_trajectories,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROGRAM = """\
import functools

LIMIT = 3


def most_common(words):
    counts = {}
    for w in words:
        if w in counts:
            counts[w] += 1
        else:
            counts[w] = 1
    best = max(counts, key=lambda k: counts[k])
    return best


def outer(a, *args, k=1, **kw):
    x = a + k
    def inner(b):
        nonlocal x
        x += b
        return x * 2
    total = inner(len(args))
    alias = kw
    alias["seen"] = True
    del alias
    return total, kw


def shapes(n):
    s, t = n * 2, str(n)
    items = [n, n + 1]
    items.append(s)
    pair = (s, t)
    text = t.upper() + "!"
    try:
        bad = items[10]
    except IndexError as exc:
        bad = -1
    return pair, text, bad


def gen(n):
    for i in range(n):
        yield i * i


class Box:
    size: int = 2

    def __init__(self, v):
        self.v = v

    def grow(self):
        self.v = self.v * LIMIT
        return self.v


print(most_common(["a", "b", "a"]))
print(outer(1, 2, 3, k=4, z=5))
print(shapes(7))
print(sum(gen(4)), [q * 2 for q in range(3)])
b = Box(2)
print(b.grow(), functools.reduce(lambda p, q: p + q, [1, 2, 3]))
"""


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory, run_retrograde: Any) -> Path:
    root = tmp_path_factory.mktemp("constraints")
    (root / "program.py").write_text(PROGRAM)
    result = run_retrograde(["record", "-o", "program.rtrace", "program.py"], cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "program.rtrace"


@pytest.fixture(scope="module")
def tree(trace: Path) -> StateTree:
    return StateTree.from_recorded(str(trace))


@pytest.fixture(scope="module")
def static(tree: StateTree) -> StaticCode:
    return StaticCode.from_source(tree.code)


def transitions(tree: StateTree) -> list[tuple[State, Action, State]]:
    lines = sorted({s.line for s in tree.states if s.event == "line"})
    out = []
    for node in range(len(tree)):
        for name in ACTIONS:
            action = Action(name, lines[node % len(lines)]) if name == "breakpoint" else Action(name)
            target = tree.apply(node, action)
            if target is not None:
                out.append((tree.states[node], action, tree.states[target]))
    return out


# -- static facts against the recording ----------------------------------------------------------------------
def test_recorded_names_are_always_bindable(tree: StateTree, static: StaticCode) -> None:
    for state in tree.states:
        assert set(state.locals) <= static.functions[state.func].names, state


def test_bindable_names_leave_out_what_a_frame_cannot_have(static: StaticCode) -> None:
    assert static.functions["most_common"].names == {"words", "counts", "w", "best"}
    assert "counts" not in static.functions["outer"].names
    module = static.functions["<module>"].names
    assert {"LIMIT", "most_common", "Box", "b", "q", "functools"} <= module and "counts" not in module
    assert "__name__" not in module


def test_call_states_have_exactly_the_parameters(tree: StateTree, static: StaticCode) -> None:
    calls = [s for s in tree.states if s.event == "call" and static.functions[s.func].function]
    assert len(calls) >= 8
    for state in calls:
        info = static.functions[state.func]
        names = list(state.locals)
        assert names[: len(info.params)] == list(info.params)
        assert set(names[len(info.params):]) <= set(info.free)  # closure variables, after the parameters
    assert static.functions["outer"].params == ("a", "k", "args", "kw")  # frame order, not the signature's
    assert static.functions["outer.<locals>.inner"].free == ("x",)


def test_names_a_line_cannot_change_keep_their_values(tree: StateTree, static: StaticCode) -> None:
    """Differential: every name outside `changeable` has the same repr in the next state of the frame."""
    forced = 0
    for node, state in enumerate(tree.states):
        for name in ("step_into", "step_over"):
            target = tree.apply(node, Action(name))
            if target is None:
                continue
            after = tree.states[target]
            if state.event in CLOSE_EVENTS or after.event in OPEN_EVENTS or \
                    (state.func, state.depth) != (after.func, after.depth):
                continue
            free = changeable(static, state, name)
            if free is None:
                continue
            for local in set(state.locals) | set(after.locals):
                if local not in free:
                    assert state.locals.get(local) == after.locals.get(local), (node, name, local)
                    forced += 1
    assert forced > 100


def test_changeable_is_what_the_line_can_touch(static: StaticCode) -> None:
    line = PROGRAM.splitlines().index("    items.append(s)") + 1
    state = State("line", line, 1, "shapes", {"n": "7", "s": "14", "t": "'7'", "items": "[7, 8]"})
    # list.append changes only that list; `exc` is unbound by the except clause's cleanup, which has no
    # line number and so counts for every line of the function (as the recorder counts it)
    assert changeable(static, state) == {"items", "exc"}
    line = PROGRAM.splitlines().index("    pair = (s, t)") + 1
    assert changeable(static, replace_line(state, line)) == {"pair", "exc"}
    line = PROGRAM.splitlines().index("    alias[\"seen\"] = True") + 1
    state = State("line", line, 1, "outer", {"a": "1", "kw": "{'z': 5}", "alias": "{'z': 5}", "x": "5"})
    assert changeable(static, state) == {"alias", "kw"}  # kw may be the same dict: its repr is equal


def replace_line(state: State, line: int) -> State:
    return State(state.event, line, state.depth, state.func, state.locals, state.value)


def test_the_grammar_accepts_every_true_body(tree: StateTree, static: StaticCode) -> None:
    """Differential: the body the recorder's state serializes to is always inside the decoder's grammar."""
    checked = 0
    for previous, action, truth in transitions(tree):
        body = serialize_state(tree.code, truth, previous, action).split(LOCALS, 1)[1]
        body = body.replace(SAME, SAME_CHAR).replace(VALUE, VALUE_CHAR)
        probe = State(truth.event, truth.line, truth.depth, truth.func, {})
        grammar = BodyGrammar(body_plan(static, previous, action, probe))
        states = grammar.advance(grammar.start(), body)
        assert states and grammar.complete(states), (previous, action, truth)
        checked += 1
    assert checked > 500


def test_what_the_grammar_forces_is_what_the_true_body_writes(tree: StateTree, static: StaticCode) -> None:
    """Differential: at every character of every recorded body, the text the grammar says every body
    writes next (and the predictor feeds at once) is what the true body writes there; where it says the
    body ends, the true body ends."""
    forced_chars = checked = ended = 0
    for previous, action, truth in transitions(tree):
        body = serialize_state(tree.code, truth, previous, action).split(LOCALS, 1)[1]
        body = body.replace(SAME, SAME_CHAR).replace(VALUE, VALUE_CHAR)
        probe = State(truth.event, truth.line, truth.depth, truth.func, {})
        for decided in (None, truth.locals):  # as planned, and with every value given (as flow decides)
            plan = body_plan(static, previous, action, probe, decided)
            grammar = BodyGrammar(plan)
            states = grammar.start()
            at = 0
            while at < len(body):
                text, after, ends = grammar.forced(states)
                assert body.startswith(text, at), (truth, body, at, text)
                if text:
                    forced_chars += len(text)
                    assert after == grammar.advance(states, text)
                    at += len(text)
                    states = after
                if ends:
                    assert at == len(body), (truth, body, at)
                    ended += 1
                    break
                if at < len(body):
                    states = grammar.advance(states, body[at])
                    assert states, (truth, body, at)
                    at += 1
            checked += 1
    assert checked > 1000 and ended > 100 and forced_chars > 20 * checked


def test_the_header_set_forces_the_common_prefix() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from neural.constraints import HeaderSet

    @given(st.lists(st.text("ab1 ", max_size=6), max_size=12), st.text("ab1 ", max_size=3))
    def check(items: list[str], prefix: str) -> None:
        headers = HeaderSet(items)
        matching = [h for h in set(items) if h.startswith(prefix)]
        if not matching:
            assert headers.forced(prefix) == ""
            return
        common = min(matching)
        for other in matching:  # the longest prefix they all share
            while not other.startswith(common):
                common = common[:-1]
        assert headers.forced(prefix) == common

    check()


def test_the_grammar_rejects_impossible_bodies(static: StaticCode) -> None:
    call = State("call", 6, 1, "most_common", {})
    previous = State("line", 18, 0, "<module>", {})
    grammar = BodyGrammar(body_plan(static, previous, Action("step_into"), call))
    start = grammar.start()
    assert grammar.advance(start, '{"words": "[1]"}')
    assert grammar.complete(grammar.advance(start, '{"words": "[1]"}'))
    assert not grammar.advance(start, '{"total": ')  # not a name of the frame
    assert not grammar.complete(grammar.advance(start, "{"))  # the parameter is required
    assert not grammar.advance(start, '{"words": "[1]", "counts"')  # a call state has only parameters
    line = PROGRAM.splitlines().index("    counts = {}") + 1
    first = State("line", line, 1, "most_common", {"words": "['a']"})
    after = State("line", line + 1, 1, "most_common", {})
    grammar = BodyGrammar(body_plan(static, first, Action("step_into"), after))
    body = '{"words": "' + SAME_CHAR + '", "counts": "{}"}'
    assert grammar.complete(grammar.advance(grammar.start(), body))  # computed: counts = {}
    assert not grammar.advance(grammar.start(), '{"words": "[')  # words cannot change: only <|same|>
    assert not grammar.advance(grammar.start(), '{"words": "' + SAME_CHAR + '", "counts": "[')


# -- exact values --------------------------------------------------------------------------------------------
def test_computed_values_equal_the_recording(tree: StateTree, static: StaticCode) -> None:
    """Differential: every assignment or return value computed without the model is what the program did."""
    computed = 0
    for node, state in enumerate(tree.states[:-1]):
        after = tree.states[node + 1]
        if state.event != "line" or (state.func, state.depth) != (after.func, after.depth):
            continue
        if after.event == "line":
            for name, text in assigned(static, state).items():
                assert after.locals[name] == text, (state, name)
                computed += 1
        elif after.event == "return" and after.line == state.line:
            value = returned(static, state)
            if value is not None:
                assert value == after.value, state
                computed += 1
    assert computed >= 6


@pytest.mark.parametrize(
    ("line", "locals_", "expected"),
    [
        ("x = a + 1", {"a": "2"}, {"x": "3"}),
        ("x, y = a[1:], len(a)", {"a": "'abc'"}, {"x": "'bc'", "y": "3"}),
        ("x += 'b'", {"x": "'a'"}, {"x": "'ab'"}),
        ("x += [1]", {"x": "[0]"}, {"x": "[0, 1]"}),  # in place on a list: x's own object
        ("x.append(a)", {"x": "[0]", "a": "[2]"}, {"x": "[0, [2]]"}),
        ("x[a] = x.pop()", {"x": "[5, 6]", "a": "0"}, {"x": "[6]"}),
        ("x[0] += [1]", {"x": "[[0], [0]]"}, {}),  # the inner list may be shared by both rows
        ("x = a.sort(key=len)", {"a": "['bb', 'a']"}, {"x": "None", "a": "['a', 'bb']"}),
        ("a.sort(key=lambda v: v[::-1])", {"a": "['bb', 'a']"}, {}),  # the lambda runs as traced code
        ("x = [v * 2 for v in a if v]", {"a": "[0, 1, 2]"}, {"x": "[2, 4]"}),
        ("x = list(set(a))", {"a": "[3, 1]"}, {}),  # a set's order is not in its repr
        ("x = sorted(a, reverse=True)", {"a": "[2, 3, 1]"}, {"x": "[3, 2, 1]"}),
        ("x = 1 / a", {"a": "0"}, {}),  # raises: no value
        ("x = helper(a)", {"a": "1"}, {}),  # a call of the program's own code
        ("x = set(a)", {"a": "['p', 'q']"}, {}),  # a set of strings prints in a varying order
        ("x = max(a, key=len)", {"a": "['p', 'qq']"}, {"x": "'qq'"}),  # a builtin key runs no traced code
        ("x = max(a, key=lambda v: -v)", {"a": "[1, 2]"}, {}),  # a lambda is traced code
        ("x = sorted(a, key=str.lower)", {"a": "['b', 'A']"}, {"x": "['A', 'b']"}),
        ("x = max(a, key=a.get)", {"a": "{'p': 1, 'q': 3}"}, {"x": "'q'"}),
        ("x = a.upper()", {"a": "<object at 0x?>"}, {}),
        ("a[0], a[1] = a[1], a[0]", {"a": "[1, 2]"}, {"a": "[2, 1]"}),  # a swap: the items, then each store
        ("x, a[x] = 1, 9", {"a": "[0, 0]"}, {"x": "1", "a": "[0, 9]"}),  # left to right: a[1], x just bound
        ("x, y = {1, 2}", {}, {}),  # a set's order
    ],
)
def test_assigned_computes_only_what_is_certain(
    line: str, locals_: dict[str, str], expected: dict[str, str]
) -> None:
    code = f"def helper(v):\n    return v\n\n\ndef f(a, x=None):\n    {line}\n    return x\n"
    static = StaticCode.from_source(code)
    assert assigned(static, State("line", 6, 1, "f", locals_)) == expected


def test_returned_skips_finally_and_with_blocks() -> None:
    code = "def f(a):\n    try:\n        return a + 1\n    finally:\n        a = 0\n"
    static = StaticCode.from_source(code)
    assert returned(static, State("line", 3, 1, "f", {"a": "1"})) is None
    code = "def f(a):\n    with a:\n        return 1\n"
    assert returned(StaticCode.from_source(code), State("line", 3, 1, "f", {"a": "1"})) is None
    # handlers only: a value computed exactly did not raise, and nothing runs before the return
    code = "def f(s):\n    try:\n        return int(s) * 2\n    except ValueError:\n        return -1\n"
    static = StaticCode.from_source(code)
    assert returned(static, State("line", 3, 1, "f", {"s": "'12'"})) == "24"
    assert returned(static, State("line", 3, 1, "f", {"s": "'1x'"})) is None  # raises: the handler's
    assert returned(static, State("line", 5, 1, "f", {"s": "'1x'"})) == "-1"
    static = StaticCode.from_source("def f(a):\n    return a * 2\n")
    assert returned(static, State("line", 2, 1, "f", {"a": "[1]"})) == "[1, 1]"


# -- the decoder with random models --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tree: StateTree) -> Any:
    from neural.tokenizer import train_tokenizer

    texts = [serialize(t) for t in sample_trajectories(tree, 30, seed=1, max_actions=20)]
    return train_tokenizer(texts, vocab_size=600)


def random_predictor(tokenizer: Any, seed: int) -> Any:
    from neural.model import TINY, new_model
    from neural.predict import CachedModel, Predictor

    size = dataclasses.replace(TINY, context=1024)  # the whole program fits in the window
    model = new_model(size, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed=seed)
    return Predictor(CachedModel(model, threads=1), tokenizer, retries=1, seed=seed, max_state_tokens=80)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_models_keep_to_the_frame(
    tree: StateTree, static: StaticCode, tokenizer: Any, seed: int
) -> None:
    """Property: whatever random weights say, names are the frame's, calls hold exactly the parameters,
    and names the line cannot change equal the previous state's."""
    predictor = random_predictor(tokenizer, seed)
    checked = 0
    for previous, action, _truth in transitions(tree)[seed::7][:60]:
        predictor.begin(tree.code, previous)
        state = predictor.predict(action).state
        info = static.functions[state.func]
        assert set(state.locals) <= info.names, (previous, action, state)
        if state.event == "call" and info.params:
            names = list(state.locals)
            assert names[: len(info.params)] == list(info.params)
            assert set(names[len(info.params):]) <= set(info.free)
        same_frame = (previous.func, previous.depth) == (state.func, state.depth)
        if action.name in ("step_into", "step_over") and previous.event not in CLOSE_EVENTS and \
                state.event not in OPEN_EVENTS and same_frame:
            free = changeable(static, previous, action.name)
            for name in set(previous.locals) - (free or set(previous.locals)):
                assert state.locals.get(name) == previous.locals[name], (previous, action, state, name)
        checked += 1
    assert checked >= 40


def test_a_random_model_reaches_the_cap_with_a_message(tokenizer: Any) -> None:
    code = "def spin(n):\n    while n > 0:\n        n = n + 1\n    return n\n"
    predictor = random_predictor(tokenizer, 4)
    timeline = NeuralTimeline.for_call(predictor, code, "/virtual/spin.py", "spin(1)", max_steps=4)
    while not timeline.complete:
        timeline.step(len(timeline))
    if timeline.states[-1].event in CLOSE_EVENTS and timeline.states[-1].depth <= 1:
        assert timeline.stopped is None  # it returned within the cap
    else:
        assert len(timeline) == 5
        assert timeline.stopped is not None and "cap of 4 steps before spin() returned" in timeline.stopped
    # The computed line: n = n + 1 over n = 1 is 2, whatever the weights.
    for before, after in zip(timeline.states, timeline.states[1:]):
        if before.event == "line" and before.line == 3 and after.event == "line":
            assert after.locals["n"] == str(int(before.locals["n"]) + 1)


def test_default_cap_grows_with_loops() -> None:
    flat = "def f(a):\n    b = a\n    return b\n"
    loop = "def f(a):\n    for x in a:\n        b = x\n    return b\n"
    nested = "def f(a):\n    for x in a:\n        for y in a:\n            b = y\n    return b\n"
    assert 30 <= default_max_steps(flat) < default_max_steps(loop) < default_max_steps(nested) <= 5000
    assert default_max_steps(driver_code(flat, "f(1)")) < 100
    linear = "def f(n):\n    if n < 1:\n        return 0\n    return f(n - 1) + 1\n"
    tree = "def f(n):\n    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)\n"
    assert default_max_steps(linear) < default_max_steps(tree)
    # a tree of calls: fib(6) runs 25 calls of 3-4 steps each, within the cap
    assert default_max_steps(driver_code(tree, "f(6)")) >= 110


def test_cli_predict_reports_the_cap(run_retrograde: Any, tmp_path: Path) -> None:
    (tmp_path / "spin.py").write_text("def spin(n):\n    while n > 0:\n        n = n + 1\n    return n\n")
    args = ["predict", "spin.py", "--call", "spin(1)", "--max-steps", "3", "--json"]
    result = run_retrograde(args, cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode == 0:  # the bundled model returned within 3 steps
        assert '"return"' in lines[-1]
    else:
        assert result.returncode == 1 and len(lines) == 4
        assert result.stderr.startswith("retrograde: the prediction stopped: it reached its cap of 3 steps")
        assert "Traceback" not in result.stderr




# -- what if -------------------------------------------------------------------------------------------------
def test_whatif_starts_from_the_recorded_frame_with_the_change(trace: Path, tokenizer: Any) -> None:
    from neural.whatif import WhatIfError, whatif
    from replay.recorded import RecordedTimeline

    recording = RecordedTimeline(str(trace))
    try:
        index = next(
            i for i in range(len(recording))
            if recording.step(i).func == "shapes" and recording.step(i).event == "line"
            and "items" in recording.locals_at(i)
        )
        recorded = {k: v.text for k, v in recording.locals_at(index).items()}
        predicted = whatif(random_predictor(tokenizer, 5), recording, index, {"n": "n + 1", "s": "[1, 2]"})
        first = predicted.states[0]
        assert first.func == "shapes" and first.line == recording.step(index).line
        assert first.locals["n"] == str(int(recorded["n"]) + 1) and first.locals["s"] == "[1, 2]"
        assert {k: v for k, v in first.locals.items() if k not in ("n", "s")} == \
            {k: v for k, v in recorded.items() if k not in ("n", "s")}
        predicted.step(1)  # the model predicts on from there
        assert predicted.states[1].func in ("shapes", "<module>") or predicted.states[1].event == "call"
        with pytest.raises(WhatIfError, match="no variable"):
            whatif(random_predictor(tokenizer, 5), recording, index, {"counts": "1"})
        with pytest.raises(WhatIfError, match="cannot be evaluated"):
            whatif(random_predictor(tokenizer, 5), recording, index, {"n": "open('x')"})
        with pytest.raises(WhatIfError, match="not in the recording"):
            whatif(random_predictor(tokenizer, 5), recording, len(recording) + 5, {"n": "1"})
    finally:
        recording.close()
