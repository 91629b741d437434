"""Neural pipeline: state tree and actions, text format, tokenizer, training, checkpoints, CLI errors."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neural.textformat import (
    SAME,
    SPECIAL_TOKENS,
    FormatError,
    escape,
    parse,
    parse_state,
    serialize,
    unescape,
)
from neural.trajectory import (
    ACTIONS,
    INVERSE,
    POLICY_MIXES,
    Action,
    State,
    StateTree,
    Trajectory,
    sample_trajectories,
)
from replay.memory import ListTimeline
from replay.timeline import Step, Value

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CALLS = """\
def add(a, b):
    c = a + b
    return c

def main():
    x = 1
    y = add(x, 2)
    for i in range(2):
        y += i
    return y

main()
"""

GENERATORS = """\
def gen(n):
    for i in range(n):
        yield i


def check(v):
    if v > 0:
        raise ValueError(v)
    return v


def main():
    total = 0
    for v in gen(2):
        total += v
    try:
        check(1)
    except ValueError:
        total = -1
    return total


main()
"""


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory, run_retrograde: Any) -> dict[str, Path]:
    """The two small programs above, recorded with `retrograde record`."""
    root = tmp_path_factory.mktemp("neural")
    out = {}
    for name, code in (("calls", CALLS), ("generators", GENERATORS)):
        (root / f"{name}.py").write_text(code)
        result = run_retrograde(["record", "-o", f"{name}.rtrace", f"{name}.py"], cwd=root)
        assert result.returncode == 0, result.stderr
        out[name] = root / f"{name}.rtrace"
    return out


def where(tree: StateTree, node: int | None) -> tuple[str, str, int] | None:
    """(event, func, line) of a node: what a person checks against the program text."""
    if node is None:
        return None
    state = tree.states[node]
    return state.event, state.func, state.line


def find(tree: StateTree, event: str, func: str, line: int, nth: int = 0) -> int:
    hits = [i for i, s in enumerate(tree.states) if (s.event, s.func, s.line) == (event, func, line)]
    return hits[nth]


# -- state tree and actions ------------------------------------------------------------------------------
def test_tree_levels_follow_calls(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["calls"]))
    assert tree.code == CALLS
    shape = [(s.event, s.func, s.line, s.depth) for s in tree.states]
    assert shape[:5] == [("call", "<module>", 0, 0), ("line", "<module>", 1, 0), ("line", "<module>", 5, 0),
                         ("line", "<module>", 12, 0), ("call", "main", 5, 1)]
    assert ("call", "add", 1, 2) in shape and ("return", "add", 3, 2) in shape
    assert shape[-1] == ("return", "<module>", 12, 0)
    add_call = find(tree, "call", "add", 1)
    assert tree.states[add_call].locals == {"a": "1", "b": "2"}
    assert tree.states[find(tree, "return", "add", 3)].value == "3"
    # Module locals have their heap addresses replaced: a model cannot predict them.
    assert tree.states[find(tree, "line", "<module>", 12)].locals["add"] == "<function add at 0x?>"


def test_forward_actions_on_calls(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["calls"]))
    call_line = find(tree, "line", "main", 7)  # y = add(x, 2)
    assert where(tree, tree.apply(call_line, Action("step_into"))) == ("call", "add", 1)
    assert where(tree, tree.apply(call_line, Action("step_over"))) == ("line", "main", 8)
    assert where(tree, tree.apply(call_line, Action("step_return"))) == ("return", "main", 10)
    in_add = find(tree, "line", "add", 2)
    assert where(tree, tree.apply(in_add, Action("step_return"))) == ("return", "add", 3)
    add_return = find(tree, "return", "add", 3)
    # At the end of a level, step_over goes up; step_return goes to the caller's return.
    assert where(tree, tree.apply(add_return, Action("step_over"))) == ("line", "main", 8)
    assert where(tree, tree.apply(add_return, Action("step_return"))) == ("return", "main", 10)
    # Breakpoint: the first future line node with that line, at any depth; a miss runs to the end.
    start = 0
    assert where(tree, tree.apply(start, Action("breakpoint", 9))) == ("line", "main", 9)
    assert tree.apply(start, Action("breakpoint", 9)) == find(tree, "line", "main", 9, 0)
    assert where(tree, tree.apply(find(tree, "line", "main", 9, 1), Action("breakpoint", 9))) == \
        ("return", "<module>", 12)
    assert where(tree, tree.apply(start, Action("breakpoint", 3))) == ("line", "add", 3)
    assert where(tree, tree.apply(in_add, Action("continue"))) == ("return", "<module>", 12)
    last = len(tree) - 1
    for name in ("step_into", "step_over", "step_return", "continue"):
        assert tree.apply(last, Action(name)) is None


def test_inverse_actions_on_calls(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["calls"]))
    after_call = find(tree, "line", "main", 8)
    assert where(tree, tree.apply(after_call, Action("step_back"))) == ("return", "add", 3)
    assert where(tree, tree.apply(after_call, Action("step_back_over"))) == ("line", "main", 7)
    # back_to_call lands on the call node, whose locals are the inputs.
    back = tree.apply(after_call, Action("back_to_call"))
    assert where(tree, back) == ("call", "main", 5)
    in_add = find(tree, "line", "add", 3)
    call_add = tree.apply(in_add, Action("back_to_call"))
    assert where(tree, call_add) == ("call", "add", 1)
    assert call_add is not None and tree.states[call_add].locals == {"a": "1", "b": "2"}
    # From a call node: back to the caller's call; step_back_over goes to the caller's line.
    assert where(tree, tree.apply(call_add, Action("back_to_call"))) == ("call", "main", 5)
    assert where(tree, tree.apply(call_add, Action("step_back_over"))) == ("line", "main", 7)
    assert where(tree, tree.apply(len(tree) - 1, Action("step_back_over"))) == ("line", "<module>", 12)
    for name in INVERSE:
        assert tree.apply(0, Action(name)) is None


def test_inverse_undoes_forward(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["generators"]))
    for node in range(len(tree) - 1):
        assert tree.apply(tree.apply(node, Action("step_into")) or 0, Action("step_back")) == node
        over = tree.apply(node, Action("step_over"))
        assert over is not None
        # step_back_over undoes step_over whenever step_over stayed on the same level.
        if tree.level[over] == tree.level[node] and tree.opener[over] == tree.opener[node]:
            assert tree.apply(over, Action("step_back_over")) == node


def test_generators_and_exceptions(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["generators"]))
    events = [s.event for s in tree.states]
    assert events.count("resume") == 2 and events.count("yield") == 2 and "unwind" in events
    for_line = find(tree, "line", "main", 14)
    # The for line resumes the generator: step_into enters it, step_over skips its activation.
    assert where(tree, tree.apply(for_line, Action("step_into"))) == ("call", "gen", 1)
    assert where(tree, tree.apply(for_line, Action("step_over"))) == ("line", "main", 15)
    second = find(tree, "line", "main", 14, 1)
    resume = tree.apply(second, Action("step_into"))
    assert where(tree, resume) == ("resume", "gen", 3)
    assert resume is not None and tree.states[resume].depth == 2
    in_gen = find(tree, "line", "gen", 2, 1)
    assert where(tree, tree.apply(in_gen, Action("step_return"))) == ("yield", "gen", 3)
    assert tree.states[tree.apply(in_gen, Action("step_return")) or 0].value == "1"
    assert where(tree, tree.apply(in_gen, Action("back_to_call"))) == ("resume", "gen", 3)
    # An exception leaving check(): its level closes with unwind; main's handler continues at its level.
    raise_line = find(tree, "line", "check", 8)
    assert where(tree, tree.apply(raise_line, Action("step_return"))) == ("unwind", "check", 8)
    call_check = find(tree, "line", "main", 17)
    assert where(tree, tree.apply(call_check, Action("step_over"))) == ("exception", "main", 17)
    assert where(tree, tree.apply(find(tree, "exception", "main", 17), Action("step_back_over"))) == \
        ("line", "main", 17)
    assert where(tree, tree.apply(raise_line, Action("breakpoint", 19))) == ("line", "main", 19)


def test_tree_from_list_timeline_keeps_main_thread_and_file() -> None:
    def step(i: int, event: str, line: int, depth: int, frame: int, func: str = "f", thread: int = 0,
             file: str = "/p/a.py") -> Step:
        value = Value("7") if event == "return" else None
        return Step(i, event, file, line, func, depth, thread, frame, value)

    steps = [
        step(0, "call", 0, 0, 0, "<module>"), step(1, "line", 3, 0, 0, "<module>"),
        step(2, "call", 1, 1, 1), step(3, "line", 9, 0, 5, "worker", thread=1),
        step(4, "call", 1, 2, 2, "lib", file="/p/b.py"), step(5, "return", 2, 2, 2, "lib", file="/p/b.py"),
        step(6, "line", 2, 1, 1), step(7, "return", 2, 1, 1), step(8, "return", 3, 0, 0, "<module>"),
    ]
    locals_ = [{"n": Value(str(i))} for i in range(len(steps))]
    timeline = ListTimeline(steps, locals_, sources={"/p/a.py": "def f():\n    return 7\nf()\n"})
    tree = StateTree.from_timeline(timeline)
    assert [(s.event, s.func, s.depth) for s in tree.states] == [
        ("call", "<module>", 0), ("line", "<module>", 0), ("call", "f", 1), ("line", "f", 1),
        ("return", "f", 1), ("return", "<module>", 0)]
    assert tree.states[4].value == "7" and tree.states[3].locals == {"n": "6"}
    assert tree.code.startswith("def f")


def test_policy_sampler_is_seeded_and_legal(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["generators"]))
    first = sample_trajectories(tree, 20, seed=3, max_actions=10)
    assert first == sample_trajectories(tree, 20, seed=3, max_actions=10)
    assert first != sample_trajectories(tree, 20, seed=4, max_actions=10)
    for trajectory in first:
        assert len(trajectory.actions) <= 10
        assert trajectory.states[-1] == tree.states[-1] or len(trajectory.actions) == 10
    # Without inverse actions each trajectory follows one of the paper's two mixes, and replays exactly.
    rng = random.Random(0)
    seen: set[str] = set()
    for _ in range(40):
        trajectory = tree.sample(rng, max_actions=12, inverse_rate=0.0)
        names = {a.name for a in trajectory.actions}
        assert any(names <= set(mix) | {"step_into"} for mix in POLICY_MIXES)
        seen |= names
        replayed = tree.trajectory(tree.states.index(trajectory.states[0]), trajectory.actions)
        assert replayed == trajectory
    assert {"step_into", "step_over", "step_return"} <= seen
    with_inverse = [tree.sample(rng, max_actions=20, inverse_rate=0.5) for _ in range(20)]
    assert any(a.inverse for t in with_inverse for a in t.actions)


# -- text format ------------------------------------------------------------------------------------------
def test_serialize_layout_and_diffs(traces: dict[str, Path]) -> None:
    tree = StateTree.from_recorded(str(traces["calls"]))
    start = find(tree, "line", "main", 8)
    trajectory = tree.trajectory(start, [Action("step_into"), Action("step_into"), Action("back_to_call")])
    text = serialize(trajectory)
    assert text.startswith("<|code|>def add(a, b):\n")
    assert text.endswith("<|end|>")
    states = text.split("<|state|>")[1:]
    assert states[0].startswith('line 8 1 main<|src|>for i in range(2):<|locals|>{"x": "1", "y": "3"}')
    # The next state continues main's frame: unchanged locals become the marker, the new one is shown.
    assert states[1].startswith(
        'line 9 1 main<|src|>y += i<|locals|>{"x": "<|same|>", "y": "<|same|>", "i": "0"}')
    assert states[2].endswith("<|action|>back_to_call")
    assert states[3] == 'call 5 1 main<|src|>def main():<|locals|>{}<|end|>'
    assert parse(text) == trajectory


def test_round_trip_of_sampled_trajectories(traces: dict[str, Path]) -> None:
    for name in ("calls", "generators"):
        tree = StateTree.from_recorded(str(traces[name]))
        for trajectory in sample_trajectories(tree, 15, seed=1, max_actions=30, inverse_rate=0.3):
            assert parse(serialize(trajectory)) == trajectory


# Pieces of text that stress the format: special tokens, the escape character, JSON and unicode.
_PIECES = [*"ab <|>\u200b\n\"\\{}", SAME, "<|state|>", "é"]
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)
_NAMES = st.lists(st.sampled_from([*"xyz_<|", SAME]), min_size=1, max_size=4).map("".join)
_EVENTS = st.sampled_from(["call", "line", "return", "exception", "unwind", "yield", "resume", "handled"])


@st.composite
def _states(draw: st.DrawFn, previous: State | None = None) -> State:
    names = draw(st.lists(_NAMES, max_size=4, unique=True))
    locals_ = {}
    for name in names:
        if previous is not None and name in previous.locals and draw(st.booleans()):
            locals_[name] = previous.locals[name]  # unchanged: written as the marker in a diff
        else:
            locals_[name] = draw(_TEXT)
    return State(draw(_EVENTS), draw(st.integers(0, 30)), draw(st.integers(0, 3)),
                 draw(st.sampled_from(["f", "<module>", "A.m", "g.<locals>.h"])), locals_,
                 draw(st.none() | _TEXT))


@st.composite
def _trajectories(draw: st.DrawFn) -> Trajectory:
    code = draw(_TEXT)
    states = [draw(_states())]
    actions = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(ACTIONS))
        actions.append(Action(name, draw(st.integers(1, 40)) if name == "breakpoint" else 0))
        previous = states[-1]
        state = draw(_states(previous))
        if draw(st.booleans()):  # often continue the same frame, so diffs are exercised
            state = State(draw(st.sampled_from(["line", "exception", "handled"])), state.line, previous.depth,
                          previous.func, state.locals, state.value)
        states.append(state)
    return Trajectory(code, tuple(states), tuple(actions))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trajectories())
def test_serialize_parse_round_trip(trajectory: Trajectory) -> None:
    text = serialize(trajectory)
    assert parse(text) == trajectory
    # Special tokens appear only as separators: never inside code, names or reprs.
    assert text.count("<|state|>") == len(trajectory.states)
    assert text.count("<|action|>") == len(trajectory.actions)


@given(st.text(alphabet=st.sampled_from(list("<|\u200bab")), max_size=20))
def test_escape_round_trip(text: str) -> None:
    escaped = escape(text)
    assert unescape(escaped) == text
    assert "<|" not in escaped


def test_parse_rejects_malformed_text() -> None:
    with pytest.raises(FormatError):
        parse("no tokens at all")
    with pytest.raises(FormatError):
        parse("<|code|>x<|end|>")
    with pytest.raises(FormatError):
        parse_state('line 3 0 f<|src|>x<|locals|>{"a": ')
    with pytest.raises(FormatError):
        parse_state('line 3 0 f<|src|>x<|locals|>{"a": "<|same|>"}')  # a marker needs a previous state
    with pytest.raises(FormatError):
        parse("<|code|>x<|state|>line 1 0 f<|src|><|locals|>{}<|action|>jump<|state|>line 1 0 f<|src|>"
              "<|locals|>{}<|end|>")
    with pytest.raises(ValueError):
        Action("breakpoint")


# -- tokenizer, model, training ---------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from neural.model import DEFAULT_MODEL_DIR, TINY, load_model, new_model  # noqa: E402
from neural.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from neural.train import TrainOptions, train  # noqa: E402


@pytest.fixture(scope="module")
def texts(traces: dict[str, Path]) -> list[str]:
    out = []
    for name in ("calls", "generators"):
        tree = StateTree.from_recorded(str(traces[name]))
        out += [serialize(t) for t in sample_trajectories(tree, 10, seed=0, max_actions=20)]
    return out


def test_tokenizer_special_tokens_and_round_trip(texts: list[str], tmp_path: Path) -> None:
    tokenizer = train_tokenizer(texts, vocab_size=600)
    for token in SPECIAL_TOKENS:
        assert tokenizer.tokenize(token) == [token]
        assert tokenizer.convert_tokens_to_ids(token) == SPECIAL_TOKENS.index(token)
    assert tokenizer.tokenize('{"x": "<|same|>"}').count(SAME) == 1
    for text in texts[:5]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file()
    from transformers import PreTrainedTokenizerFast

    again = PreTrainedTokenizerFast.from_pretrained(str(tmp_path), local_files_only=True)
    assert again(texts[0], add_special_tokens=False)["input_ids"] == \
        tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    assert again.pad_token == "<|pad|>" and again.eos_token == "<|end|>"


def test_few_steps_lower_the_loss(texts: list[str]) -> None:
    torch.manual_seed(0)
    tokenizer = train_tokenizer(texts, vocab_size=400)
    model = new_model(TINY, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed=0)
    batch = tokenizer(texts[:4], add_special_tokens=False, return_tensors="pt", padding=True,
                      truncation=True, max_length=128)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def _options(out: Path, data: Path | None, **overrides: Any) -> TrainOptions:
    # A constant learning rate after warm-up, so runs of different lengths share their first steps.
    base: dict[str, Any] = dict(
        out=str(out), data=str(data) if data else None, steps=4, batch_size=2, block_size=128, lr=5e-3,
        warmup=1, min_lr_ratio=1.0, eval_every=2, eval_examples=4, save_every=2, per_trace=6, max_actions=12,
        vocab_size=400, size=TINY, threads=1, quiet=True)
    base.update(overrides)
    return TrainOptions(**base)


def test_train_checkpoint_resume_and_base(traces: dict[str, Path], tmp_path: Path) -> None:
    data = traces["generators"]
    full = train(_options(tmp_path / "full", data, steps=6))
    assert full["steps"] == 6 and full["tokens_seen"] > 0
    out = tmp_path / "full"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training_info.json", "loss.csv",
                 "loss.png"):
        assert (out / name).is_file(), name
    assert (out / "checkpoint" / "trainer_state.pt").is_file()
    rows = (out / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,train_loss,val_loss") and len(rows) == 7
    info = json.loads((out / "training_info.json").read_text())
    assert info["final_val_loss"] is not None and info["hardware"]["device"] == "cpu"

    # Interrupted after 4 steps, then resumed to 6: the same weights as the uninterrupted run.
    train(_options(tmp_path / "split", data, steps=4))
    resumed = train(_options(tmp_path / "split", None, steps=6, resume=True))
    assert resumed["steps"] == 6
    split_rows = (tmp_path / "split" / "loss.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in split_rows] == [r.split(",")[1] for r in rows]
    a = load_model(str(out))
    b = load_model(str(tmp_path / "split"))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(pa, pb, atol=1e-6), name

    # --base fine-tunes a local checkpoint: same architecture and vocabulary, new weights.
    tuned = train(_options(tmp_path / "tuned", data, steps=2, base=str(out), lr=1e-3))
    assert tuned["data"]["base"] == str(out)
    c = load_model(str(tmp_path / "tuned"))
    assert c.config.vocab_size == a.config.vocab_size
    assert load_tokenizer(str(tmp_path / "tuned")).get_vocab() == load_tokenizer(str(out)).get_vocab()
    assert not torch.equal(c.state_dict()["model.norm.weight"], a.state_dict()["model.norm.weight"])


def test_resume_without_checkpoint_fails(tmp_path: Path) -> None:
    from neural.train import TrainError

    with pytest.raises(TrainError):
        train(_options(tmp_path / "none", None, resume=True))


def test_default_checkpoint_loads_and_generates() -> None:
    path = Path(DEFAULT_MODEL_DIR)
    files = {p.name: p.stat().st_size for p in path.iterdir()}
    for name in ("config.json", "model.safetensors", "tokenizer.json", "training_info.json"):
        assert name in files
    assert sum(files.values()) <= 25 * 1024 * 1024
    info = json.loads((path / "training_info.json").read_text())
    assert info["wall_time_s"] > 0 and info["tokens_seen"] > 0 and info["final_val_loss"] is not None
    assert info["hardware"]["device"] and info["data"]["programs"] > 0  # the README's account of training
    model = load_model(str(path))
    tokenizer = load_tokenizer(str(path))
    prompt = "<|code|>def f(x):\n    return x + 1\n\nf(2)\n<|state|>call 0 0 <module><|src|><|locals|>{}" \
             "<|action|>step_into"
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > ids.shape[1]
    assert isinstance(tokenizer.decode(out[0, ids.shape[1]:]), str)


# -- command line -----------------------------------------------------------------------------------------
def test_cli_imports_without_torch(project_root: Path) -> None:
    code = "import sys, neural.cli, retrograde.cli; retrograde.cli.parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=project_root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(project_root)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("args, code", [
    (["train", "--out", "o"], 2),
    (["train", "--data", "missing.jsonl", "--out", "o"], 1),
    (["train", "--synth", "2", "--out", "o", "--steps", "0"], 2),
    (["train", "--data", "empty", "--out", "o"], 1),
    (["trajectories", "missing.rtrace"], 1),
    (["trajectories", "bad.rtrace"], 1),
])
def test_cli_bad_input_is_one_line(run_retrograde: Any, tmp_path: Path, args: list[str], code: int) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.rtrace").write_bytes(b"not a trace")
    result = run_retrograde(args, cwd=tmp_path)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrograde: "), result.stderr
    assert not (tmp_path / "o").exists()


def test_cli_trajectories_prints_parseable_text(run_retrograde: Any, traces: dict[str, Path]) -> None:
    result = run_retrograde(["trajectories", str(traces["calls"]), "-n", "3", "--seed", "2"],
                            cwd=traces["calls"].parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("<|end|>")
    assert len(lines) == 4 and lines[-1].strip() == ""
    for chunk in lines[:-1]:
        trajectory = parse(chunk.lstrip("\n") + "<|end|>")
        assert trajectory.code == CALLS


def test_split_names_is_stable_and_never_empties_training() -> None:
    from neural.dataset import split_names

    for name in ("a", "b", "c", "/tmp/x/calls.rtrace", "z" * 40):  # one program, whatever its hash
        assert split_names([name]) == ({name}, set())
    names = [f"p{i}" for i in range(100)]
    train, val = split_names(names)
    assert train | val == set(names) and not train & val and 3 <= len(val) <= 25
    assert split_names(list(reversed(names))) == (train, val)
    moved = [f"/tmp/elsewhere/{n}" for n in names]  # where a corpus was recorded does not change the split
    assert {os.path.basename(n) for n in split_names(moved)[1]} == val


def test_data_from_scripts_and_jsonl(tmp_path: Path) -> None:
    from neural.dataset import DataError, find_data, record, trees

    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "a.py").write_text("x = 1\ny = x + 1\n")
    (scripts / "b.py").write_text("def f(n):\n    return n * 2\n\nf(4)\n")
    programs = tmp_path / "programs.jsonl"
    programs.write_text(json.dumps({"id": "p1", "code": "def g(s):\n    return s[::-1]\n", "entry": "g",
                                    "inputs": ["'ab'"]}) + "\n")
    found_traces, sources = find_data(str(scripts))
    assert found_traces == [] and sorted(s.id for s in sources) == ["a.py", "b.py"]
    _, more = find_data(str(programs))
    assert [s.driver() for s in more] == ["def g(s):\n    return s[::-1]\n\ng('ab')\n"]
    recorded = record(sources + more, str(tmp_path / "traces"), jobs=2)
    assert len(recorded) == 3
    assert find_data(str(tmp_path / "traces"))[0] == sorted(recorded)
    named = trees(recorded)
    returns = {tree.states[-2].value for _, tree in named if tree.states[-2].event == "return"}
    assert "8" in returns and "'ba'" in returns
    with pytest.raises(DataError):
        find_data(str(tmp_path / "missing"))
