"""The compiled recorder's building blocks (tracer/_core/*.c) against their Python references.

The whole-program check (compiled and Python recorders export the same steps on every sample) is in
test_differential.py; these tests pin the pieces on many generated values: the C encoder must give the
Python encoder's exact result, and a fingerprint must change whenever the repr it stands for changes."""

from __future__ import annotations

import copy
import math
import sys
import threading
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer import monitor
from tracer.values import ValueEncoder

_core = monitor._core
pytestmark = pytest.mark.skipif(_core is None, reason="tracer/_core/ is not built")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.sampled_from(["inf", "nan", "info", "-inf", "x" * 70]),
    st.binary(max_size=40),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
)
hashables = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4), max_leaves=6
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=12),
        st.lists(inner, max_size=12).map(tuple),
        st.dictionaries(hashables, inner, max_size=8),
        st.sets(hashables, max_size=8),
        st.frozensets(hashables, max_size=8),
    ),
    max_leaves=60,
)
LIMITS = st.sampled_from([16, 40, 120, 1000])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, limit=LIMITS)
def test_c_encoding_is_the_python_encoding(value: object, limit: int) -> None:
    ours = _core.encode(value, limit)
    if ours is not None:  # None: the C side leaves this value to the Python encoder
        assert ours == ValueEncoder(limit).encode(value)


def test_float_texts_are_repr_through_the_cache() -> None:
    """The C encoder keeps recent float texts in a small cache keyed by the float's bits: thousands of
    distinct floats (far more than its slots, so entries collide and are replaced), each seen many times,
    -0.0 beside 0.0, and inf/nan (never cached, never literal) must all give repr's exact text."""
    import random

    rng = random.Random(7)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(6000)] + [0.0, -0.0, 1e-310, 2.0**60, 0.1 + 0.2]
    floats += [rng.choice(floats[:50]) for _ in range(3000)]  # repeats: cache hits
    for start in range(0, len(floats), 7):
        row = floats[start : start + 7]
        assert _core.encode(row, 1000) == repr(row)
        nested = [row, [x * 2 for x in row]]
        assert _core.encode(nested, 1000) == repr(nested)
    for bad in (math.inf, -math.inf, math.nan):
        for _ in range(2):  # the second time would be a cache hit if it were cached
            assert _core.encode([1.5, bad], 1000) == [repr([1.5, bad]), 0]
    assert _core.encode([1.5, "inf", "nan"], 1000) == repr([1.5, "inf", "nan"])  # a str is no float


ascii_heavy = st.one_of(
    st.integers(-(2**70), 2**70),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=12),
    st.sampled_from(["'", '"', "\\", "it's", "\x7f", "\t", "a'b\"c"]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(values, st.lists(st.one_of(scalars, ascii_heavy), max_size=30)))
def test_c_repr_is_repr(value: object) -> None:
    """The encoder's own repr writer (ints, ASCII strs, floats written without a str each) is repr()."""
    assert _core.repr(value) == repr(value)


def test_c_repr_of_edge_containers() -> None:
    for value in ([], (), {}, set(), frozenset(), (1,), ((),), [set()], {frozenset(): ()}, [-(2**62), 2**63]):
        assert _core.repr(value) == repr(value)
    # Past the plain-ASCII writer's first buffer, and a value that sends it back to the general writer
    # only at the end (after it grew).
    for value in (list(range(3000)), [*map(str, range(500)), "é"], {i: [i, "x" * 40] for i in range(60)}):
        assert _core.repr(value) == repr(value)
    deep: list[object] = []
    for _ in range(40):  # deeper than the writer goes itself: the rest is PyObject_Repr's
        deep = [deep, 1]
    assert _core.repr(deep) == repr(deep)


@given(
    value=st.builds(range, st.integers(-(10**30), 10**30), st.integers(-(10**30), 10**30), st.integers(1, 9)),
    limit=LIMITS,
)
def test_c_encoding_of_ranges(value: range, limit: int) -> None:
    ours = _core.encode(value, limit)
    assert ours is None or ours == ValueEncoder(limit).encode(value)
    if len(repr(value)) <= limit:
        assert ours == [repr(value), 0]


def test_c_encoder_takes_the_common_values() -> None:
    assert _core.encode(3, 1000) == 3 and type(_core.encode(True, 1000)) is bool  # stored as themselves
    assert _core.encode(2.5, 1000) == 2.5 and str(_core.encode(-0.0, 1000)) == "-0.0"
    assert _core.encode(2**70, 1000) == repr(2**70)  # beyond 64 bits: the text
    assert _core.encode(123, 16) == "123"  # a limit the longest int64 could pass: the text
    assert _core.encode("hi", 1000) == "'hi'"
    assert _core.encode([1, "a", None], 1000) == "[1, 'a', None]"
    assert _core.encode({"k": [1, 2]}, 1000) == "{'k': [1, 2]}"
    assert _core.encode([1.0, math.inf], 1000) == ["[1.0, inf]", 0]  # no literal for inf
    assert _core.encode(frozenset({1}), 1000) == ["frozenset({1})", 0]
    assert _core.encode(list(range(100)), 40) is None  # a big container: the encoder's head path
    assert _core.encode([Plain()], 1000) is None  # an object inside a container: the Python encoder
    plain = Plain()
    assert _core.encode(plain, 1000) == [repr(plain), 0]
    assert _core.encode([[[["deep", 1.5]]], (2, (3, "inf"))], 1000) == "[[[['deep', 1.5]]], (2, (3, 'inf'))]"
    assert _core.encode(math.nan, 1000) is None


class Plain:
    pass


class Shown:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Shown({self.text})"


@settings(max_examples=100)
@given(value=st.one_of(st.builds(Plain), st.lists(st.builds(Plain), max_size=3)), limit=LIMITS)
def test_c_encoding_of_default_repr_objects(value: object, limit: int) -> None:
    ours = _core.encode(value, limit)
    if ours is not None:
        assert ours == ValueEncoder(limit).encode(value)


MUTATIONS = st.sampled_from(["append", "pop", "set", "clear", "swap_class", "attr", "dict_move", "set_churn"])


def mutate(value: object, how: str, path: list[int]) -> None:
    """Change one mutable part of value in place (the part chosen by path, where one exists)."""
    parts: list[object] = []

    def walk(x: object) -> None:
        if isinstance(x, list | dict | set | Plain | Shown):
            parts.append(x)
        if isinstance(x, list | tuple | set | frozenset):
            for y in list(x):
                walk(y)
        elif isinstance(x, dict):
            for k, v in list(x.items()):
                walk(k)
                walk(v)

    walk(value)
    if not parts:
        return
    target = parts[path[0] % len(parts)]
    if isinstance(target, list):
        if how == "append":
            target.append(path[1])
        elif how == "pop" and target:
            target.pop(0)
        elif how == "set" and target:
            target[-1] = path[1]
        elif how == "clear":
            target.clear()
        else:
            target.reverse()
    elif isinstance(target, dict):
        if how == "dict_move" and target:
            key = next(iter(target))
            target[key] = target.pop(key)
        elif how == "clear":
            target.clear()
        else:
            target[path[1]] = path[1]
    elif isinstance(target, set):
        if how == "set_churn":
            target.add(path[1])
            target.discard(path[1])
        else:
            target.add(path[1])
    elif isinstance(target, Plain):
        if how == "swap_class":
            target.__class__ = Shown
            target.text = "swapped"  # type: ignore[attr-defined]
        else:
            target.anything = path[1]  # type: ignore[attr-defined]  # default repr: text unchanged
    elif isinstance(target, Shown):
        target.text = str(path[1])


objects = st.recursive(
    st.one_of(scalars, st.builds(Plain), st.builds(Shown, st.text(max_size=5))),
    lambda inner: st.one_of(
        st.lists(inner, max_size=8),
        st.lists(inner, max_size=8).map(tuple),
        st.dictionaries(hashables, inner, max_size=6),
        st.sets(hashables, max_size=6),
    ),
    max_leaves=40,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=objects, how=MUTATIONS, path=st.lists(st.integers(0, 50), min_size=2, max_size=2))
def test_fingerprint_changes_whenever_the_repr_does(value: object, how: str, path: list[int]) -> None:
    fingerprint = _core.fingerprint(value)
    if fingerprint is None:  # no fingerprint (a custom repr inside): the recorder re-encodes every time
        return
    assert _core.fingerprint_matches(value, fingerprint)
    before = repr(value)
    mutate(value, how, path)
    if repr(value) != before:
        assert not _core.fingerprint_matches(value, fingerprint)


def test_fingerprint_needs_same_objects_not_equal_ones() -> None:
    value = {"a": [1, 2], "b": Plain()}
    fingerprint = _core.fingerprint(value)
    assert _core.fingerprint_matches(value, fingerprint)
    assert not _core.fingerprint_matches(copy.deepcopy(value), fingerprint)
    assert _core.fingerprint([Shown("x")]) is None  # its repr can change with no identity changing
    looped: list[object] = []
    looped.append(looped)
    assert _core.fingerprint(looped) is None  # too deep: no fingerprint, never a wrong one


def test_step_buffers_agree() -> None:
    compiled, python = _core.StepBuffer(), monitor.StepBuffer()
    steps = [
        (0, 7, 1, ["x", "1"], None, 3, 2),
        (1, 7, 2, None, None, 3, 2),
        (2, 7, 2, ["x", "2", "y", None], "'r'", 3, 1),
        (1, 9, 5, [], None, 4, 4),
    ]
    for step in steps:
        compiled.add(*[list(x) if isinstance(x, list) else x for x in step])
        python.add(*[list(x) if isinstance(x, list) else x for x in step])
    for column in ("fids", "lines", "changes", "values", "names", "min_depth", "max_depth"):
        assert getattr(compiled, column) == getattr(python, column), column
    assert compiled.pairs() == python.pairs() == {(3, 1), (3, 2), (4, 5)}
    assert compiled.names == {"x", "y"}
    assert bytes(compiled.events) == bytes(python.events) == bytes([0, 1, 2, 1])
    assert len(compiled) == len(python) == 4
    assert compiled.changes == [[0, "x", "1"], [2, "x", "2", "y", None]]
    assert compiled.pack_columns() == _packed_columns(python)
    for steps in (compiled, python):
        steps.add_frame(5, 1, -1, 0, 0)
        assert steps.frames == {5: [1, -1, 0, 0]}
        steps.clear_frames()
        assert steps.frames == {}


def _packed_columns(steps: monitor.StepBuffer) -> bytes:
    columns = (steps.fids, steps.lines, steps.changes, steps.values, steps.frames)
    return b"".join(msgpack.packb(column, use_bin_type=True) for column in columns)


def test_step_buffer_columns_pack_like_msgpack() -> None:
    """Many steps (offsets past one byte), big frame ids, every kind of encoding: the C buffer's packed
    columns are msgpack's bytes for the Python buffer's lists."""
    compiled, python = _core.StepBuffer(), monitor.StepBuffer()
    encodings: list[object] = ["'s'", 7, -3, 2**40, 1.5, True, None, ["[1, ...]", 1], [10, 2, ", 3"], "é日本"]
    for i in range(700):
        changes = None if i % 3 else ["v", encodings[i % len(encodings)], "w", str(i)]
        value = encodings[(i * 7) % len(encodings)] if i % 5 == 0 else None
        step = (i % 8, 2**33 + i // 4, 1 + i % 300, changes, value, i % 5, i % 9)
        compiled.add(*[list(x) if isinstance(x, list) else x for x in step])
        python.add(*[list(x) if isinstance(x, list) else x for x in step])
        if i % 4 == 0:  # a frame starts: fid, code id, parent (-1: none), thread, depth
            frame = (2**33 + i // 4, i % 5, 2**33 + i // 4 - 1 if i else -1, i % 3, i % 9)
            compiled.add_frame(*frame)
            python.add_frame(*frame)
    assert compiled.frames == python.frames and len(python.frames) == 175
    assert compiled.pack_columns() == _packed_columns(python)
    delta_steps = [i for i in range(0, 700, 3) if i % len(encodings) == encodings.index([10, 2, ", 3"])]
    assert compiled.deltas == len(delta_steps) > 0
    assert compiled.changes == python.changes and compiled.values == python.values


def test_lock_behaves_like_a_thread_lock() -> None:
    lock = _core.Lock()
    assert not lock.locked()
    with lock:
        assert lock.locked()
        assert lock.acquire(blocking=False) is False
        got: list[bool] = []
        thread = threading.Thread(target=lambda: got.append(lock.acquire(blocking=False)))
        thread.start()
        thread.join()
        assert got == [False]
    assert not lock.locked()
    assert lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    # A waiting thread gets it once released (the C side waits without holding the GIL).
    lock.acquire()
    waited: list[bool] = []
    thread = threading.Thread(target=lambda: waited.append(lock.acquire()))
    thread.start()
    lock.release()
    thread.join(5)
    assert waited == [True]


def _workload(n: int) -> list[int]:
    rows = [[0]]
    for i in range(n):
        rows[-1].append(i * i)
        if len(rows[-1]) > 3:
            rows.append([i])
    return [sum(r) for r in rows]


def _steps_of(trace: str) -> list[tuple[object, ...]]:
    from replay.recorded import RecordedTimeline

    timeline = RecordedTimeline(trace)
    steps = []
    for step in timeline.steps(0, len(timeline)):
        state = {name: value.text for name, value in timeline.locals_at(step.index).items()}
        steps.append((step.event, step.line, step.func, step.depth, state, step.value and step.value.text))
    return steps


@pytest.mark.skipif(monitor.Recorder is not monitor.CompiledRecorder,
                    reason="tracer.record() makes the pure Python recorder here (RETROGRADE_RECORDER=python)")
def test_callbacks_fall_back_to_python_when_the_lock_is_not_theirs(tmp_path: Path) -> None:
    import _thread

    from tracer.api import record

    fast, slow = str(tmp_path / "fast.rtrace"), str(tmp_path / "slow.rtrace")
    with record(fast) as session:
        assert isinstance(session.recorder, monitor.CompiledRecorder)
        _workload(12)
    with record(slow) as session:
        assert session.recorder is not None
        session.recorder._lock = _thread.allocate_lock()  # the C callbacks cannot take it: Python runs them
        _workload(12)
    fast_steps, slow_steps = _steps_of(fast), _steps_of(slow)
    assert any(step[2] == "_workload" for step in fast_steps)
    assert [s for s in fast_steps if s[2] == "_workload"] == [s for s in slow_steps if s[2] == "_workload"]


# -- the chunk packer -------------------------------------------------------------------------------------

packable = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -32, -33, -128, -129]),
        st.floats(allow_nan=False),
        st.text(max_size=40),
        st.sampled_from(["x" * 31, "y" * 32, "z" * 255, "w" * 256, "v" * 70000]),
        st.binary(max_size=300),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=20),
        st.lists(inner, max_size=20).map(tuple),
        st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=5)), inner, max_size=18),
    ),
    max_leaves=80,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=packable)
def test_packer_gives_msgpacks_bytes(value: object) -> None:
    import msgpack

    assert _core.packb(value) == msgpack.packb(value, use_bin_type=True)


def test_packer_leaves_other_values_to_msgpack() -> None:
    assert _core.packb([1, 2**64]) is None  # beyond 64 bits
    assert _core.packb({"a": object()}) is None
    assert _core.packb("\udc80") is None  # not UTF-8: msgpack decides what to do with it
    assert _core.packb([float("nan")]) is not None


def _grow(items: list[int]) -> None:
    items.append(1)
    items.append(2)


def test_stop_releases_the_recent_renderings(tmp_path: Path) -> None:
    """The recorder keeps a container it just rendered for a few steps (a caller may reuse the rendering):
    stopping releases it, even while the recorder object lives on."""
    items = list(range(20))
    before = sys.getrefcount(items)
    # The compiled recorder whatever the default (RETROGRADE_RECORDER): its render cache is what is tested.
    recorder = monitor.CompiledRecorder(str(tmp_path / "t.rtrace"), root=str(Path(__file__).parent))
    recorder.start()
    _grow(items)
    recorder.stop()
    assert sys.getrefcount(items) == before
    assert items[-2:] == [1, 2]
