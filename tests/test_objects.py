"""Full-fidelity builtin containers (trace format 5, tracer/objects.py): recorded whole, rebuilt exactly.

- A model test drives the object tracker with random mutations (hypothesis) and rebuilds every object at
  every step from the chunk columns alone, through msgpack as the file holds them.
- A differential test runs programs with big, nested and aliased containers under an independent
  sys.settrace reference that hashes the *whole* value of every local at every line, and holds each
  recorder core's trace (rebuilt by replay) to it: no truncation anywhere.
- `p big[199997]` at late steps of a 200,000-element program, through the replay command line.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer.objects
from replay.recorded import RecordedTimeline
from tracer.objects import ObjectResolver, ObjectTracker, OpaqueValue
from tracer.values import FLAG_OBJECT, ValueEncoder, decode_text, object_id

ROOT = Path(__file__).resolve().parent.parent


# -- the tracker against a model -----------------------------------------------------------------------
def _roundtrip(column: Any) -> Any:
    """What the reader gets back: msgpack as the chunk stores it (arrays as tuples)."""
    return msgpack.unpackb(msgpack.packb(column, use_bin_type=True), use_list=False, strict_map_key=False)


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque thing>"


_scalars = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=5), st.booleans(), st.none(),
    st.binary(max_size=3),
)
_list_ops = st.one_of(
    st.tuples(st.just("append"), _scalars),
    st.tuples(st.just("set"), st.integers(0, 10_000), _scalars),
    st.tuples(st.just("insert"), st.integers(0, 10_000), _scalars),
    st.tuples(st.just("pop"), st.integers(0, 10_000)),
    st.tuples(st.just("extend"), st.lists(_scalars, max_size=4)),
    st.tuples(st.just("slice"), st.integers(0, 50), st.integers(0, 50), st.lists(_scalars, max_size=3)),
    st.tuples(st.just("nested_append"), st.integers(0, 10_000), st.integers()),
    st.tuples(st.just("nested_new"), st.integers(0, 10_000)),
    st.tuples(st.just("sort")), st.tuples(st.just("reverse")), st.tuples(st.just("clear")),
    st.tuples(st.just("opaque"), st.integers(0, 10_000)),
    st.tuples(st.just("flush")),
)
_dict_ops = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 30), _scalars),
    st.tuples(st.just("del"), st.integers(0, 30)),
    st.tuples(st.just("nested"), st.integers(0, 30), st.integers()),
    st.tuples(st.just("readd"), st.integers(0, 30)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("flush")),
)
_set_ops = st.one_of(
    st.tuples(st.just("add"), st.integers(-50, 50)),
    st.tuples(st.just("discard"), st.integers(-50, 50)),
    st.tuples(st.just("add_str"), st.text(max_size=3)),
    st.tuples(st.just("flush")),
)


def _apply_list(big: list[Any], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "append":
        big.append(op[1])
    elif kind == "set" and big:
        big[op[1] % len(big)] = op[2]
    elif kind == "insert":
        big.insert(op[1] % (len(big) + 1), op[2])
    elif kind == "pop" and big:
        big.pop(op[1] % len(big))
    elif kind == "extend":
        big.extend(op[1])
    elif kind == "slice":
        big[op[1]:op[2]] = op[3]
    elif kind == "nested_append":
        inner = [x for x in big if type(x) is list]
        if inner:
            inner[op[1] % len(inner)].append(op[2])  # changed in place: same identity
    elif kind == "nested_new" and big:
        big[op[1] % len(big)] = [1, (2, [3])]
    elif kind == "sort":
        big.sort(key=repr)
    elif kind == "reverse":
        big.reverse()
    elif kind == "clear":
        big.clear()
    elif kind == "opaque" and big:
        big[op[1] % len(big)] = _Opaque()


def _apply_dict(d: dict[Any, Any], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "set":
        d[op[1]] = op[2]
    elif kind == "del":
        d.pop(op[1], None)
    elif kind == "nested":
        d.setdefault(("k", op[1]), []).append(op[2])
    elif kind == "readd" and op[1] in d:
        d[op[1]] = d.pop(op[1])  # the key moves to the end
    elif kind == "clear":
        d.clear()


def _apply_set(s: set[Any], op: tuple[Any, ...]) -> None:
    if op[0] == "add":
        s.add(op[1])
    elif op[0] == "discard":
        s.discard(op[1])
    elif op[0] == "add_str":
        s.add(op[1])


_deque_ops = st.one_of(
    st.tuples(st.sampled_from(["append", "appendleft"]), _scalars),
    st.tuples(st.sampled_from(["pop", "popleft", "clear", "reverse", "flush"])),
    st.tuples(st.just("rotate"), st.integers(-7, 7)),
    st.tuples(st.sampled_from(["extend", "extendleft"]), st.lists(_scalars, max_size=4)),
    st.tuples(st.sampled_from(["set", "insert", "del"]), st.integers(0, 10_000), _scalars),
    st.tuples(st.just("nested_append"), st.integers()),
)


def _apply_deque(d: collections.deque[Any], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind in ("append", "appendleft"):
        getattr(d, kind)(op[1])
    elif kind in ("pop", "popleft") and d:
        getattr(d, kind)()
    elif kind in ("clear", "reverse", "rotate", "extend", "extendleft"):
        getattr(d, kind)(*op[1:])
    elif kind == "set" and d:
        d[op[1] % len(d)] = op[2]
    elif kind == "insert" and (d.maxlen is None or len(d) < d.maxlen):
        d.insert(op[1] % (len(d) + 1), op[2])
    elif kind == "del" and d:
        del d[op[1] % len(d)]
    elif kind == "nested_append":
        inner = [x for x in d if type(x) is list]
        if inner:
            inner[0].append(op[1])


_mapping_ops = st.one_of(
    _dict_ops,
    st.tuples(st.just("missing"), st.integers(0, 30)),  # a defaultdict makes the key; a Counter reads 0
    st.tuples(st.just("move"), st.integers(0, 30), st.booleans()),  # OrderedDict.move_to_end
    st.tuples(st.just("count"), st.lists(st.integers(0, 30), max_size=5)),  # Counter.update
)


def _apply_mapping(d: dict[Any, Any], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "missing":
        if type(d) in (collections.defaultdict, collections.Counter):
            d[op[1]]
    elif kind == "move":
        if type(d) is collections.OrderedDict and op[1] in d:
            d.move_to_end(op[1], last=op[2])
    elif kind == "count":
        # Counter.update adds to the counts: only where every count it touches is a number
        if type(d) is collections.Counter and all(type(d[k]) is int for k in op[1]):
            d.update(op[1])
    else:
        _apply_dict(d, op)


def _expected(value: Any) -> Any:
    """What a rebuilt value must equal: the value with non-builtin objects as their repr text."""
    t = type(value)
    if t is collections.deque:
        return collections.deque((_expected(x) for x in value), value.maxlen)
    if t in (collections.defaultdict, collections.OrderedDict, collections.Counter):
        return value.copy()
    if t is list:
        return [_expected(x) for x in value]
    if t is tuple:
        return tuple(_expected(x) for x in value)
    if t is dict:
        return {k: _expected(v) for k, v in value.items()}
    if isinstance(value, _Opaque):
        return OpaqueValue(repr(value))
    return value


def _same(a: Any, b: Any) -> bool:
    """Type-exact deep equality (1 is not True, 0.0 is not -0.0), with dict order."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple, collections.deque):
        same_maxlen = getattr(a, "maxlen", 0) == getattr(b, "maxlen", 0)
        return len(a) == len(b) and all(map(_same, a, b)) and same_maxlen
    if isinstance(a, dict):
        if type(a) is collections.defaultdict and repr(a.default_factory) != repr(b.default_factory):
            return False
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) is float:
        return repr(a) == repr(b)
    return bool(a == b)


def _run_model(start: Any, ops: list[tuple[Any, ...]], apply: Any, native: bool = True) -> None:
    if not native:  # the pure Python comparisons (no compiled core: no dict watcher, no C affixes)
        with mock.patch.multiple(tracer.objects, _dict_watch=None, _core_affixes=None, _fingerprint=None):
            _run_model(start, ops, apply)
        return
    step = [0]
    tracker = ObjectTracker(text=repr, step=lambda: step[0])
    value = start
    seen: list[tuple[int, int, Any]] = []  # (chunk, offset, expected value) per step
    columns: list[Any] = []
    bases: dict[int, list[int]] = {}
    chunk_start = 0
    oid = tracker.observe(value)
    for op in [("noop",), *ops, ("flush",)]:
        if op[0] == "flush":
            column = tracker.take_chunk(step[0], chunk_start)
            assert column is not None
            column[0] = bases
            bases = tracker.bases()
            columns.append(_roundtrip(column))
            chunk_start = step[0]
            continue
        apply(value, op)
        tracker.settled.clear()  # what the recorder does when code of unknown effect ran (apply)
        assert tracker.observe(value) == oid  # one object, one id, however it changed
        seen.append((len(columns), step[0] - chunk_start, copy.deepcopy(_expected(value))))
        step[0] += 1
    resolver = ObjectResolver(lambda n: columns[n])
    for chunk, offset, want in seen:
        got = resolver.value(oid, chunk, offset)
        if type(value) is set:
            assert got == want
        else:
            assert _same(got, want), (chunk, offset)


@pytest.mark.parametrize("native", [True, False])
@settings(max_examples=40, deadline=None)
@given(st.lists(_scalars, min_size=0, max_size=40), st.lists(_list_ops, max_size=60))
def test_list_rebuilds_at_every_step(native: bool, start: list[Any], ops: list[tuple[Any, ...]]) -> None:
    start = [*start, [0, 1]]  # a nested mutable element from the start
    _run_model(start, ops, _apply_list, native)


@pytest.mark.parametrize("native", [True, False])
@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.integers(0, 30), _scalars, max_size=20), st.lists(_dict_ops, max_size=60))
def test_dict_rebuilds_at_every_step(native: bool, start: dict[Any, Any], ops: list[tuple[Any, ...]]) -> None:
    _run_model(start, ops, _apply_dict, native)


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(-50, 50), max_size=20), st.lists(_set_ops, max_size=60))
def test_set_rebuilds_at_every_step(start: set[Any], ops: list[tuple[Any, ...]]) -> None:
    _run_model(start, ops, _apply_set)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("maxlen", [None, 30])
@settings(max_examples=40, deadline=None)
@given(st.lists(_scalars, min_size=0, max_size=40), st.lists(_deque_ops, max_size=60))
def test_deque_rebuilds_at_every_step(
    native: bool, maxlen: int | None, start: list[Any], ops: list[tuple[Any, ...]]
) -> None:
    _run_model(collections.deque([*start, [0, 1]], maxlen), ops, _apply_deque, native)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("kind", ["defaultdict", "OrderedDict", "Counter"])
@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.integers(0, 30), st.integers(-5, 5), max_size=20),
       st.lists(_mapping_ops, max_size=60))
def test_collections_mappings_rebuild_at_every_step(
    native: bool, kind: str, start: dict[Any, Any], ops: list[tuple[Any, ...]]
) -> None:
    value: dict[Any, Any] = (
        collections.defaultdict(list, start) if kind == "defaultdict" else getattr(collections, kind)(start)
    )
    _run_model(value, ops, _apply_mapping, native)


def test_collections_containers_have_bounded_texts() -> None:
    """Their repr costs the whole container: a short one is its exact repr, a big one the cut head of it
    (a Counter's in insertion order), and with a tracker it is recorded whole."""
    encoder = ValueEncoder(60)
    small = [collections.deque([1, "a"], maxlen=4), collections.defaultdict(set, {1: {2}}),
             collections.OrderedDict(b=1, a=2), collections.Counter("abracadabra"), collections.deque()]
    for value in small:
        assert encoder.encode(value) == [repr(value), 0]
    big = collections.deque(range(10**6))
    text, literal, cut = decode_text(encoder.encode(big))
    assert cut and not literal and text == repr(big)[:60] + "..."
    dd = collections.defaultdict(list, {i: [i] for i in range(10**5)})
    assert decode_text(encoder.encode(dd))[0] == repr(dd)[:60] + "..."
    tracked = ValueEncoder(60, tracker=ObjectTracker(text=repr, step=lambda: 0))
    assert object_id(tracked.encode(big)) == 0 and object_id(tracked.encode(dd)) == 1


def test_grown_list_records_only_its_tail() -> None:
    """The recorder's append hint: the new tail becomes one splice, and a list that shrank is compared."""
    step = [0]
    tracker = ObjectTracker(text=repr, step=lambda: step[0])
    big = list(range(100))
    assert not tracker.grow(big)  # not tracked yet
    oid = tracker.observe(big, ("text", None))
    big.extend([7, 8])
    assert tracker.grow(big)
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 100, 100, [7, 8]]
    big.pop()
    assert not tracker.grow(big)  # shorter: not an append; observe() must compare it


def test_settled_containers_are_not_compared_until_unknown_code_runs() -> None:
    """A container in `settled` is taken as unchanged (the recorder vouches for it); emptying the set
    makes the next look compare it, and the change is recorded then."""
    step = [0]
    tracker = ObjectTracker(text=repr, step=lambda: step[0])
    big = list(range(3000))
    oid = tracker.observe(big, ("text", None))
    assert id(big) in tracker.settled
    big[1500] = -1
    ops = len(tracker.ops)
    tracker.observe(big, ("text", None))
    assert len(tracker.ops) == ops  # vouched for: not compared
    tracker.settled.clear()
    tracker.observe(big, ("text", None))
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 1500, 1501, [-1]]


def _tracked(value: Any, head: Any = ([0], -1)) -> tuple[ObjectTracker, int]:
    tracker = ObjectTracker(text=repr, step=lambda: 0)
    oid = tracker.observe(value, ("text", head))  # by default a head of one shown item
    tracker.confirm_text(value)
    return tracker, oid


def test_end_operations_record_only_the_end() -> None:
    """LinePlan.end_ops: pops and appends at one end are found from the length alone; a case the hint
    cannot explain exactly (a full deque(maxlen), a shrunk list said to be appended to) is compared."""
    q = collections.deque(range(1000))
    tracker, oid = _tracked(q)
    q.popleft()
    q.popleft()
    assert tracker.end_op(q, "popleft") is None  # its text shows the head: made again
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 0, 2, []]
    assert tracker.entries[id(q)].shadow == list(q)
    xs = list(range(1000))
    tracker, oid = _tracked(xs)
    xs.pop()
    assert tracker.end_op(xs, "pop") is True  # past the shown head: the text stands
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 999, 1000, []]
    q = collections.deque(range(1000))
    tracker, oid = _tracked(q, head=None)  # as the recorder shows a deque: no head
    q.append(5000)
    q.append(5001)
    assert tracker.end_op(q, "append") is None  # a deque's text has no head: made again
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 1000, 1000, [5000, 5001]]
    full = collections.deque(range(1000), maxlen=1000)
    tracker, _ = _tracked(full)
    full.append(-1)
    assert tracker.end_op(full, "append") is False
    xs = list(range(1000))
    tracker, _ = _tracked(xs)
    xs.pop()
    assert tracker.end_op(xs, "append") is False


@pytest.mark.parametrize("native", [True, False])
def test_scattered_changes_are_recorded_item_by_item(native: bool) -> None:
    """A big flat list changed in a few places far apart (and grown at its end) becomes SET ops and one
    splice, not a splice of everything between the first and the last change; replay rebuilds it."""
    positions = tracer.objects._core_positions if native else None  # the C helper, or the Python twin
    with mock.patch.object(tracer.objects, "_core_positions", positions):
        tracker = ObjectTracker(text=repr, step=lambda: 0)
        xs = list(range(5000))
        oid = tracker.observe(xs)
        xs[10], xs[2500], xs[4990] = -1, -2, -3
        xs.append(-4)
        tracker.settled.clear()
        tracker.observe(xs)
        ops = [op[2:] for op in tracker.ops[1:]]
        set_, splice = tracer.objects.OP_SET, tracer.objects.OP_SPLICE
        assert ops == [[set_, 10, -1], [set_, 2500, -2], [set_, 4990, -3], [splice, 5000, 5000, [-4]]]
        xs.insert(100, 7)  # every later item moved: one splice
        tracker.settled.clear()
        tracker.observe(xs)
        assert tracker.ops[-1][2] == splice and len(tracker.ops) == 6
        column = tracker.take_chunk(1, 0)
        assert column is not None
        column[0] = {}
        resolver = ObjectResolver(lambda n: _roundtrip(column))
        assert resolver.value(oid, 0, 0) == xs


def test_slice_store_compares_only_the_slice() -> None:
    """LinePlan.slice_stores: `xs[lo:hi] = ...` of the same length records the changed run inside it."""
    xs = list(range(5000))
    tracker, oid = _tracked(xs)
    xs[3000:3010] = [0] * 5 + xs[3005:3010]
    assert tracker.store_slice(xs, 3000, 3010) is True
    assert tracker.ops[-1][1:] == [oid, tracer.objects.OP_SPLICE, 3000, 3005, [0] * 5]
    assert tracker.entries[id(xs)].shadow == xs
    xs[0:3] = [7, 8]  # shorter: the rest moved
    assert tracker.store_slice(xs, 0, 3) is False


def test_many_chunks_need_few_chunks_to_read() -> None:
    """Snapshots keep a rebuild within SNAP_EVERY + 1 chunks however long the history."""
    step = [0]
    tracker = ObjectTracker(text=repr, step=lambda: step[0])
    big = list(range(5000))
    oid = tracker.observe(big)
    columns: list[Any] = []
    bases: dict[int, list[int]] = {}
    for n in range(40):
        big[n] = -n
        tracker.settled.clear()  # the recorder's part: code of unknown effect ran
        tracker.observe(big)
        step[0] += 1
        column = tracker.take_chunk(step[0], step[0] - 1)
        assert column is not None
        column[0], bases = bases, tracker.bases()
        columns.append(_roundtrip(column))
    touched: list[int] = []
    resolver = ObjectResolver(lambda n: touched.append(n) or columns[n])
    assert resolver.value(oid, 39, 0) == [-n for n in range(40)] + list(range(40, 5000))
    assert len(set(touched)) <= 9
    # An op costs what changed, not the list's size: 40 one-element changes of a 5,000-element list.
    ops_bytes = sum(len(msgpack.packb(c[2])) for c in columns[1:])
    assert ops_bytes < 40 * 64


def test_encoder_marks_cut_containers_as_objects() -> None:
    step = [0]
    tracker = ObjectTracker(text=repr, step=lambda: step[0])
    encoder = ValueEncoder(100, tracker=tracker)
    big = list(range(1000))
    enc = encoder.encode(big)
    assert decode_text(enc)[2] and enc[1] & FLAG_OBJECT and object_id(enc) == 0
    assert encoder.last_head is None  # only the tracker can tell whether the part past the cut changed
    assert object_id(encoder.encode(big)) == 0 and object_id(encoder.encode([1, 2])) is None
    assert object_id(encoder.encode("x" * 500)) is None  # a long string is text, cut as before
    assert object_id(ValueEncoder(100).encode(big)) is None  # no tracker: text only


# -- differential: whole values against a settrace reference -----------------------------------------------
_REFERENCE = r'''
import hashlib, json, os, sys

def canon(v):
    t = type(v)
    if t is list: return ["L", [canon(x) for x in v]]
    if t is tuple: return ["T", [canon(x) for x in v]]
    if t is dict: return ["D", [[canon(k), canon(x)] for k, x in v.items()]]
    if t is set or t is frozenset:
        return ["S" if t is set else "F", sorted((canon(x) for x in v), key=repr)]
    if t in (int, float, bool, str, bytes, type(None)):
        return [t.__name__, repr(v)]
    return ["object", repr(v)]  # anything else is recorded as its repr

def digest(v):
    return hashlib.sha1(json.dumps(canon(v)).encode()).hexdigest()[:16]

script = os.path.abspath(sys.argv[2])
result = sys.argv[1]
out = []
def tracer(frame, event, arg):
    if frame.f_code.co_filename != script:
        return None
    name = frame.f_code.co_name
    if event == "line" and name != "<module>" and not name.startswith("__"):  # no dunder methods
        here = frame.f_locals
        if "__qualname__" not in here:  # not a class body
            out.append([frame.f_lineno, {k: digest(v) for k, v in here.items()}])
    return tracer
sys.argv = sys.argv[2:]
code = compile(open(script).read(), script, "exec")
sys.settrace(tracer)
try:
    exec(code, {"__name__": "__main__", "__file__": script})
finally:
    sys.settrace(None)
json.dump(out, open(result, "w"))
'''

_PROGRAMS = {
    "aliases": """
def main():
    big = list(range(3000))
    other = big
    grid = [big, [0.5] * 400, (1, big)]
    table = {i: [i] * 3 for i in range(500)}
    for i in range(0, 3000, 97):
        other[i] = -i
        grid[1][i % 400] += 0.25
        table[i % 500].append(i)
    big.append(3.5)
    del big[10:20]
    grid[2][1].insert(0, "head")
    table[7] = table.pop(3)
    s = set(range(2000))
    s -= {5, 6, 7}
    s.add(-1)
    f = frozenset(s)
    t = tuple(big)
    big.sort(key=lambda x: -x if type(x) is int else 0)
    return len(big)

main()
""",
    "grow": """
def main():
    out = []
    seen = {}
    for i in range(1500):
        out.append(i * 3)
        seen[i % 700] = i
        if i % 300 == 0:
            out.extend([i, -i])
            del seen[i % 700]
    out[5] = "five"
    seen.clear()
    seen.update({1: 2})
    seen[2] = out
    out.append(1.5)
    return len(out)

main()
""",
    "merge": """
def merge_sort(items, scratch, lo, hi):
    if hi - lo < 2:
        return
    mid = (lo + hi) // 2
    merge_sort(items, scratch, lo, mid)
    merge_sort(items, scratch, mid, hi)
    i, j, k = lo, mid, lo
    while i < mid and j < hi:
        if items[i] <= items[j]:
            scratch[k] = items[i]
            i += 1
        else:
            scratch[k] = items[j]
            j += 1
        k += 1
    while i < mid:
        scratch[k] = items[i]
        i += 1
        k += 1
    while j < hi:
        scratch[k] = items[j]
        j += 1
        k += 1
    items[lo:hi] = scratch[lo:hi]

def main():
    values = [(i * 7919) % 600 for i in range(600)]
    merge_sort(values, [0] * 600, 0, 600)
    values[-1] = values[-2] = "end"
    return values[:3]

main()
""",
    "points": """
class Point:
    def __init__(self, x):
        self.x = x
    def __repr__(self):
        return f"P({self.x})"

def main():
    pts = [Point(i) for i in range(300)]
    table = {i: pts[i] for i in range(0, 300, 3)}
    for p in pts[::37]:
        p.x += 1000
    pts[250].x = -1
    last = pts.pop()
    return last

main()
""",
    "tree": """
def build(depth):
    if depth == 0:
        return None
    return (depth, build(depth - 1), build(depth - 1))

def walk(node):
    if node is None:
        return 0
    value, left, right = node
    return value + walk(left) + walk(right)

def main():
    tree = build(9)
    pair = (tree, [tree])
    pair[1].append(tree[1])
    return walk(tree)

main()
""",
    "rows": """
def build(n):
    rows = []
    for i in range(n):
        rows.append({"id": i, "name": "row%d" % i, "tags": ["a"] * (i % 3)})
    return rows

def main():
    rows = build(60)
    index = {r["name"]: r for r in rows}
    for r in rows[::7]:
        r["tags"].append("seen")
        index[r["name"]]["id"] = -r["id"]
    rows.reverse()
    rows.pop(0)
    names = [r["name"] for r in rows]
    return len(names)

main()
""",
}


_PROGRAMS["collections"] = """
from collections import Counter, OrderedDict, defaultdict, deque

def bfs(n):
    adj = defaultdict(list)
    for i in range(n):
        adj[i].append((i * 7 + 1) % n)
        adj[i].append((i + 1) % n)
    seen = {0: 0}
    queue = deque([0])
    pad = deque(range(300))
    while queue:
        node = queue.popleft()
        pad.append(pad.popleft())
        for nxt in adj[node]:
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    return seen

def main():
    seen = bfs(400)
    counts = Counter([d % 17 for d in seen.values()])
    counts.update(range(200))
    window = deque(range(300), maxlen=300)
    order = OrderedDict({i: str(i) for i in range(300)})
    for i in range(40):
        window.append(-i)
        window.rotate(3)
        counts[i % 5] += 2
        order.move_to_end(i * 3)
        order[i + 1000] = i
    return len(window)

main()
"""


# Big containers passed down traced calls: the recorder vouches that a container is unchanged (the
# object tracker's `settled` set) across calls of traced functions, so each way code can change one
# unseen is here: a callee's item, slice and end operations, the caller's own argument expressions, an
# alias reached through another name or a global, untraced library code, a traced callback called by a
# builtin, methods (one the instance shadows with untraced code), and one-end operations on lists and
# deques (a full deque(maxlen) too).
_PROGRAMS["calls"] = """
import heapq
from collections import deque

SHARED = list(range(700))

def touch(xs, i):
    xs[i] = -i

def shift(xs, lo, hi):
    xs[lo:hi] = xs[lo + 1:hi] + xs[lo:lo + 1]

def walk(xs, ys, depth):
    if depth <= 0:
        return 0
    touch(xs, depth)
    walk(xs, ys, depth - 1)
    shift(ys, depth, depth + 5)
    walk(ys, xs, depth - 1)
    grab(SHARED, depth)
    return walk(xs, ys, depth - 2) + 1

def grab(xs, k):
    SHARED.append(k)
    other = xs
    other[k] = k * 3

def key(x):
    SHARED.append(x)
    return -x

class Walker:
    def __repr__(self):
        return "Walker()"

    def step(self, xs, i):
        xs[i] = i * 5
        return self.again(xs, i + 1)

    def again(self, xs, i):
        xs.append(i)

def methods(xs):
    w = Walker()
    w.step(xs, 3)
    w.again = list.append  # the instance shadows the method with untraced code
    w.step(xs, 4)
    w.again(xs, 7)
    return len(xs)

def ends(q, xs):
    for i in range(30):
        q.append(q.popleft())
        xs.pop()
        q.appendleft(xs.pop())
        if i % 4 == 0:
            q.pop()
            xs.pop(0)
        xs.append(i)
    return len(q)

def main():
    xs = list(range(600))
    ys = list(range(600, 1300))
    walk(xs, ys, 6)
    touch(xs, xs.pop() - 100)
    walk(ys[:650], xs, 3)
    heapq.heappush(ys, -5)
    walk(xs, ys, 2)
    sorted(range(5), key=key)
    walk(SHARED, xs, 2)
    methods(xs)
    methods(SHARED)
    q = deque(range(400))
    ends(q, xs)
    window = deque(range(400), maxlen=400)
    ends(window, ys)
    return len(xs) + len(ys)

main()
"""


# A heap: each push or pop changes a few items far apart (the path from a leaf to the root) and one end,
# all by untraced C code; recorded item by item, rebuilt exactly.
_PROGRAMS["heap"] = """
import heapq

def main():
    h = []
    for i in range(700):
        heapq.heappush(h, (i * 7919) % 700)
    pairs = [(i % 13, str(i)) for i in range(300)]
    heapq.heapify(pairs)
    out = []
    while len(h) > 650:
        out.append(heapq.heappop(h))
        heapq.heapreplace(pairs, (len(out), "x"))
    h.sort()
    return out

main()
"""

# Big flat containers the compiled core skips without a look after lines whose guards name other objects
# (HEAD_TRACKED_FLAT), changed in between through an alias, an element of another list, a deque's end, a
# dict store and an untraced builtin.
_PROGRAMS["untouched"] = """
import collections

def touch(big, other, q, d):
    alias = big
    other.append(1)
    alias[3] = -1
    other.append(2)
    q.append(7)
    other.append(q.popleft())
    d[5] = 'five'
    other.append(len(big))
    holder = [big, q]
    holder[0].append(99)
    other.append(3)
    holder[1].appendleft(-5)
    other.append(4)
    big.sort(reverse=True)
    other.append(5)
    list(map(big.append, (8, 9)))
    other.append(6)
    return other

def main():
    big = list(range(600))
    q = collections.deque(range(500))
    d = {i: i for i in range(400)}
    other = []
    for _ in range(3):
        touch(big, other, q, d)
        del big[:2]
    return len(other)

main()
"""


# The changes the compiled core records without the Python tracker (tracer/_core/tracker.c): appends,
# item stores at indexes locals hold, pops at the end, watched dicts' key sets and deletes; each next to
# what it must hand to Python (a change in the head its text shows, a big int, a tuple or nested element,
# an alias seen from another frame, a Counter and a defaultdict).
_PROGRAMS["c_tracker"] = """
import collections

def grow(out, n):
    for i in range(n):
        out.append(i * 3)
    out.append(2**70)
    out.append((1, 2))
    out.append([9])
    out[-1].append(10)
    return len(out)

def stores(xs, other):
    for i in range(len(xs) - 1, 1, -37):
        j = i - 1
        xs[i], xs[j] = xs[j], xs[i]
        other[i] = 'text' if i % 2 else None
    k = 1
    xs[k] = 'head'
    m = -1
    xs[m] = 1.5
    xs[m] = xs[m]
    n = 10**30
    try:
        xs[n] = 0
    except IndexError:
        pass
    xs[k] = frozenset({1})
    return xs[k]

def pops(xs):
    while len(xs) > 500:
        xs.pop()
    while len(xs) > 3:
        xs.pop()
    return xs

def table(d, keys):
    for k in keys:
        d[k] = k * 0.5
    for k in keys[::3]:
        del d[k]
    d['s'] = b'bytes'
    d[None] = True
    d[2**80] = 1
    d[(1, 2)] = 'tuple key'
    d[keys[1]] = [1]
    d[keys[1]].append(2)
    return len(d)

def shared(d):
    d[0] = 'changed in the head'
    return d

def main():
    out = list(range(400))
    grow(out, 300)
    xs = list(range(1000))
    other = xs
    stores(xs, other)
    ys = list(range(800))
    pops(ys)
    d = {i: i for i in range(600)}
    table(d, list(range(600, 900)))
    e = dict.fromkeys(range(500), 0)
    alias = e
    shared(alias)
    e[499] = 'tail'
    c = collections.Counter(range(400))
    for i in range(100):
        c[i] += 2
    dd = collections.defaultdict(int, {i: i for i in range(400)})
    for i in range(500, 560):
        dd[i] += 1
    return len(out) + len(d)

main()
"""


# Library functions of known effect (tracer/plan.py LIBRARY_EFFECTS: the guards then name only the list a
# heapq or bisect function changes, and nothing for math), reached under several names, next to the same
# names bound to other functions: the program's own, a module attribute replaced, a first argument that is
# not a local.
_PROGRAMS["library"] = """
import bisect
import heapq
import heapq as hq
import math
from heapq import heappop, heappush

def own(h, x):
    h.append(x)
    h.reverse()

def main():
    global heappush
    h = []
    big = list(range(0, 3000, 2))
    other = [0.5] * 600
    for i in range(400):
        heapq.heappush(h, (i * 37) % 401)
        r = math.sqrt(i) + math.floor(i / 3)
        other[i % 600] = r
        bisect.insort(big, i * 3 + 1)
        heappush(h, -i)
        if i % 7 == 0:
            hq.heappop(h)
            heappop(h)
    lists = [h, big]
    heapq.heapify(lists[1])
    heapq.heappush(lists[0], 5)
    heappush = own
    heappush(h, 99)
    heapq.heappush = own
    heapq.heappush(big, 7)
    return len(h) + len(big)

main()
"""


def _state_digests(trace: Path, script: Path) -> list[list[Any]]:
    """Our (line, {name: digest}) at every line step of the program's functions, rebuilt by replay."""
    namespace: dict[str, Any] = {}
    exec(compile(_REFERENCE.split("script = ")[0], "canon", "exec"), namespace)  # the same canon
    digest = namespace["digest"]
    timeline = RecordedTimeline(trace)
    out: list[list[Any]] = []
    for step in timeline.steps(0, len(timeline)):
        name = step.func.rpartition(".")[2]
        if step.event != "line" or name == "<module>" or name.startswith("__") or step.file != str(script):
            continue
        state: dict[str, str] = {}
        here = timeline.locals_at(step.index)
        if "__qualname__" in here:  # a class body
            continue
        for name, value in here.items():
            assert not value.truncated or value.full is not None, f"{name} was cut at step {step.index}"
            state[name] = digest(value.python() if value.rebuildable else OpaqueValue(value.text))
        out.append([step.line, state])
    return out


@pytest.mark.parametrize("program", sorted(_PROGRAMS))
def test_whole_values_match_settrace_reference(tmp_path: Path, program: str) -> None:
    script = tmp_path / f"{program}.py"
    script.write_text(_PROGRAMS[program])
    reference = tmp_path / "reference.py"
    reference.write_text(_REFERENCE)
    out = tmp_path / "reference.json"
    subprocess.run([sys.executable, str(reference), str(out), str(script)], check=True, cwd=tmp_path)
    theirs = json.loads(out.read_text())
    trace = tmp_path / "t.rtrace"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "retrograde", "record", "-o", str(trace), str(script)], check=True,
                   cwd=tmp_path, env=env, capture_output=True)
    ours = _state_digests(trace, script)
    # Every local the reference saw is rebuilt whole (a cut text without its object fails above).
    assert len(ours) == len(theirs)
    for n, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == ref, f"line step {n} (line {ref[0]}) differs"


def test_p_deep_element_of_200k_list_at_late_steps(tmp_path: Path) -> None:
    script = tmp_path / "big.py"
    script.write_text(
        "def main():\n"
        "    big = list(range(200000))\n"
        "    d = dict.fromkeys(range(200000), 0)\n"
        "    for i in range(199990, 200000):\n"
        "        big[i] = -i\n"
        "        d[i] = i\n"
        "    big.append('end')\n"
        "    return len(big)\n"
        "main()\n"
    )
    trace = tmp_path / "big.rtrace"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "retrograde", "record", "-o", str(trace), str(script)], check=True,
                   cwd=tmp_path, env=env, capture_output=True)
    commands = "b 8\nc\np big[199997], big[-1], len(big), d[199997], d[5]\nrs\np big[199997], big[-1]\nq\n"
    done = subprocess.run([sys.executable, "-m", "retrograde", "replay", str(trace)], input=commands,
                          capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert "(-199997, 'end', 200001, 199997, 0)" in done.stdout, done.stdout + done.stderr
    assert "(-199997, -199999)" in done.stdout, done.stdout  # a step back: before the append
    assert "recorded only as text" not in done.stdout


_COUNT_RECHECKS = """
import sys
from tracer import monitor
calls = [0]
python_recheck = monitor.PythonRecorder._recheck

def counted(self, *args):
    calls[0] += 1
    return python_recheck(self, *args)

monitor.PythonRecorder._recheck = counted
from tracer.cli import main
try:
    main(["record", "-o", sys.argv[1], sys.argv[2]])
finally:
    print(calls[0], file=sys.stderr)
"""


@pytest.mark.skipif(tracer.objects._native_core is None, reason="tracer/_core/ is not built")
def test_c_tracker_records_exactly_what_the_python_tracker_records(tmp_path: Path) -> None:
    """The changes recorded in C (tracker.c) are op for op the Python tracker's, chunk by chunk, and most of
    the looks at tracked containers no longer reach Python."""
    from tracer.format import TraceReader

    script = tmp_path / "c_tracker.py"
    script.write_text(_PROGRAMS["c_tracker"] + _PROGRAMS["grow"] + "\nmain()\n")
    runner = tmp_path / "count.py"
    runner.write_text(_COUNT_RECHECKS)
    columns, rechecks = {}, {}
    for flag in ("0", "1"):
        trace = tmp_path / f"t{flag}.rtrace"
        env = dict(os.environ, PYTHONPATH=str(ROOT), RETROGRADE_RECORDER="c", RETROGRADE_C_TRACKER=flag,
                   PYTHONHASHSEED="0")  # the order locals are looked at (a set of names) is then fixed
        done = subprocess.run([sys.executable, str(runner), str(trace), str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, check=True)
        rechecks[flag] = int(done.stderr.split()[-1])
        with TraceReader(trace) as reader:
            chunks = [(chunk.start, chunk.changes, chunk.objects) for chunk in reader.iter_chunks()]
        columns[flag] = re.sub(r"0x[0-9a-f]+", "0x", repr(chunks)), chunks  # (function reprs)
    assert columns["1"][0] == columns["0"][0]
    ops = sum(len(objects[2]) for _, _, objects in columns["0"][1] if objects is not None)
    assert ops > 1500  # the program changes its big containers at every line of its loops
    assert rechecks["1"] * 2 < rechecks["0"], rechecks  # most looks handled in C (10,807 -> 3,224)
