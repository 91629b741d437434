"""Unit tests of tracer.values: bounded, exception-safe reprs with a literal encoding for builtins."""

from __future__ import annotations

import ast
import collections
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.values import DEFAULT_LIMIT, ELLIPSIS, ValueEncoder, decode_text, is_immutable, same_encoding


def text_of(value: object, limit: int = DEFAULT_LIMIT) -> str:
    return decode_text(ValueEncoder(limit).encode(value))[0]


def expected_text(value: object, limit: int) -> str:
    """What the spec says the recorded text is: repr, cut to `limit` characters plus "..." when longer."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


# -- small values: the exact repr -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        0,
        -7,
        2**70,
        1.5,
        -0.0,
        True,
        None,
        "",
        "it's \"quoted\"\n",
        b"\x00\xff",
        1 + 2j,
        [],
        (),
        (1,),
        {},
        set(),
        {1, 2, 3},
        [1, [2, (3, {"a": b"x"})]],
        {"k": [None, True, 1.25], 3: ("t",)},
        list(range(200)),
    ],
)
def test_small_builtin_is_exact_literal(value: object) -> None:
    encoded = ValueEncoder().encode(value)
    text, literal, truncated = decode_text(encoded)
    assert text == repr(value)
    assert literal and not truncated
    assert ast.literal_eval(text) == value


@pytest.mark.parametrize(
    "value", [frozenset({1, 2}), frozenset(), range(3), object, len, float("inf"), float("-inf")]
)
def test_small_non_literal_keeps_repr_but_is_opaque(value: object) -> None:
    text, literal, truncated = decode_text(ValueEncoder().encode(value))
    assert text == repr(value)
    assert not literal and not truncated


def test_nan_is_not_literal() -> None:
    text, literal, _ = decode_text(ValueEncoder().encode(float("nan")))
    assert text == "nan" and not literal


# -- big values: the first `limit` characters of repr, then "..." -----------------------------------------


def _big_values() -> list[Any]:
    return [
        list(range(5000)),
        tuple(range(5000)),
        {i: str(i) for i in range(3000)},
        {str(i): [i, i * 2] for i in range(800)},
        "x" * 5000,
        "ab\ncd\t" * 1000,
        b"\x01z" * 3000,
        [[i, str(i)] for i in range(2000)],
        ["word"] * 600,
        list(range(600)),  # just above the fast path's head size
        [1.5] * 300,  # a fast-path container whose repr is longer than the limit
        set(range(5000)),
        [None, {"deep": [(1, 2)] * 400}],
        10 ** 1200,
    ]


@pytest.mark.parametrize("limit", [16, 100, DEFAULT_LIMIT])
@pytest.mark.parametrize("index", range(len(_big_values())))
def test_big_value_is_repr_prefix_plus_ellipsis(index: int, limit: int) -> None:
    value = _big_values()[index]
    encoded = ValueEncoder(limit).encode(value)
    text, literal, truncated = decode_text(encoded)
    assert len(repr(value)) > limit  # the case under test really is a cut one
    assert text == repr(value)[:limit] + ELLIPSIS
    assert truncated and not literal


def test_limit_has_a_floor() -> None:
    # A tiny limit would make every value useless; the encoder keeps at least 16 characters.
    assert text_of(list(range(100)), limit=1) == repr(list(range(100)))[:16] + ELLIPSIS


def test_text_exactly_at_limit_is_not_cut() -> None:
    value = "a" * 98  # repr is 100 characters
    assert text_of(value, limit=100) == repr(value)
    assert text_of(value, limit=99) == repr(value)[:99] + ELLIPSIS


def test_ten_million_element_list_is_bounded() -> None:
    value = list(range(10_000_000))
    encoded = ValueEncoder().encode(value)
    text, _literal, truncated = decode_text(encoded)
    assert truncated
    assert len(text) <= DEFAULT_LIMIT + 3
    assert text == repr(value[:400])[:DEFAULT_LIMIT] + ELLIPSIS


def test_ten_million_character_string_is_bounded() -> None:
    value = "q" * 10_000_000
    text = text_of(value)
    assert text == "'" + "q" * (DEFAULT_LIMIT - 1) + ELLIPSIS


def test_huge_dict_of_nested_lists_is_bounded() -> None:
    value = {i: [i] * 3 for i in range(200_000)}
    text = text_of(value)
    assert len(text) == DEFAULT_LIMIT + 3
    assert text == repr(dict(list(value.items())[:200]))[:DEFAULT_LIMIT] + ELLIPSIS


# Long strings whose repr quoting depends on characters beyond the cut: the text must still be a prefix of
# the value's own repr (a repr of the string's prefix picks different quotes).


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("'" + "a" * 2000 + '"', id="str"),
        pytest.param(b"'" + b"a" * 2000 + b'"', id="bytes"),
        pytest.param(["'" + "a" * 2000 + '"'], id="str-in-list"),
    ],
)
def test_long_string_quotes_match_full_repr(value: object) -> None:
    assert text_of(value) == repr(value)[:DEFAULT_LIMIT] + ELLIPSIS


# -- random nested builtins -------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.binary(max_size=20)
    | st.complex_numbers(allow_nan=False, allow_infinity=False)
)
_hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.binary(max_size=5),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, min_size=1, max_size=3),
    max_leaves=6,
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=8)
    | st.lists(inner, max_size=5).map(tuple)
    | st.dictionaries(_hashables, inner, max_size=5)
    | st.sets(_hashables, max_size=5)
    | st.frozensets(_hashables, min_size=1, max_size=4),
    max_leaves=40,
)


def _is_literal_tree(value: object) -> bool:
    if isinstance(value, frozenset):
        return False
    if isinstance(value, dict):
        return all(_is_literal_tree(k) and _is_literal_tree(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return all(_is_literal_tree(x) for x in value)
    return True


# derandomize: the same examples on every run (the suite must be deterministic).
@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(value=_values, limit=st.sampled_from([16, 40, 200, DEFAULT_LIMIT]))
def test_random_nested_values(value: object, limit: int) -> None:
    encoded = ValueEncoder(limit).encode(value)
    text, literal, truncated = decode_text(encoded)
    full = repr(value)
    assert text == expected_text(value, limit)
    assert truncated == (len(full) > limit)
    if literal:
        assert not truncated
        assert ast.literal_eval(text) == value
    elif not truncated:
        # Frozensets are the only builtin here without a literal syntax.
        assert not _is_literal_tree(value)
    if not truncated and _is_literal_tree(value):
        assert literal


@settings(max_examples=50, deadline=None, derandomize=True)
@given(value=_values)
def test_encoding_is_deterministic_and_repeatable(value: object) -> None:
    encoder = ValueEncoder(40)
    assert encoder.encode(value) == encoder.encode(value) == ValueEncoder(40).encode(value)




@pytest.mark.parametrize(
    "value",
    [
        pytest.param([float("inf")], id="list-inf"),
        pytest.param((float("nan"),), id="tuple-nan"),
        pytest.param({"x": float("-inf")}, id="dict-inf"),
        pytest.param(complex(float("inf"), 0), id="complex-inf"),
        pytest.param([1.0] * 300 + [math.inf], id="long-list-inf"),
    ],
)
def test_non_finite_floats_are_never_literal(value: object) -> None:
    text, literal, _ = decode_text(ValueEncoder(100_000).encode(value))
    assert text == repr(value)
    assert not literal


@pytest.mark.parametrize("value", [[frozenset()], {frozenset(): 1}, (1, frozenset())])
def test_nested_empty_frozenset_is_not_literal(value: object) -> None:
    text, literal, _ = decode_text(ValueEncoder().encode(value))
    assert text == repr(value)
    assert not literal


# -- raising and odd reprs --------------------------------------------------------------------------------


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class ReprReturnsInt:
    def __repr__(self) -> str:
        return 42  # type: ignore[return-value]


class ExitingRepr:
    def __repr__(self) -> str:
        raise SystemExit(3)


class LongRepr:
    def __repr__(self) -> str:
        return "L" * 5000


def test_raising_repr_gives_placeholder() -> None:
    text, literal, truncated = decode_text(ValueEncoder().encode(RaisingRepr()))
    assert text == "<unrepresentable RaisingRepr: RuntimeError>"
    assert not literal and not truncated


def test_repr_returning_non_string_gives_placeholder() -> None:
    assert text_of(ReprReturnsInt()) == "<unrepresentable ReprReturnsInt: TypeError>"


def test_repr_raising_base_exception_is_contained() -> None:
    assert text_of(ExitingRepr()) == "<unrepresentable ExitingRepr: SystemExit>"


def test_raising_repr_nested_in_containers() -> None:
    assert text_of([1, RaisingRepr()]) == "[1, <unrepresentable RaisingRepr: RuntimeError>]"
    assert text_of({"k": RaisingRepr()}) == "{'k': <unrepresentable RaisingRepr: RuntimeError>}"
    _text, literal, _ = decode_text(ValueEncoder().encode((RaisingRepr(),)))
    assert not literal


def test_long_custom_repr_is_cut() -> None:
    text, literal, truncated = decode_text(ValueEncoder().encode(LongRepr()))
    assert text == "L" * DEFAULT_LIMIT + ELLIPSIS
    assert truncated and not literal


def test_huge_int_never_raises() -> None:
    # int -> str conversion beyond sys.get_int_max_str_digits() raises ValueError inside repr.
    value = 10**20000
    text = text_of(value)
    assert text.startswith(("<unrepresentable int", "1000"))
    assert len(text) <= DEFAULT_LIMIT + 3


# -- self-containing containers ---------------------------------------------------------------------------


def test_self_containing_list() -> None:
    value: list[Any] = [1, 2]
    value.append(value)
    text, literal, _ = decode_text(ValueEncoder().encode(value))
    assert text == repr(value) == "[1, 2, [...]]"
    assert not literal


def test_self_containing_dict() -> None:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    assert text_of(value) == repr(value) == "{'a': 1, 'self': {...}}"


def test_mutually_containing_lists() -> None:
    a: list[Any] = [1]
    b: list[Any] = [2, a]
    a.append(b)
    assert text_of(a) == repr(a)
    assert text_of(b) == repr(b)


def test_shared_but_not_recursive_list_is_shown_twice() -> None:
    inner = [1, 2]
    value = [inner, inner]
    text, literal, _ = decode_text(ValueEncoder().encode(value))
    assert text == "[[1, 2], [1, 2]]"
    assert literal


def test_tuple_inside_recursive_structure() -> None:
    value: tuple[list[Any]] = ([],)
    value[0].append(value)
    assert text_of(value) == repr(value) == "([(...)],)"


def test_big_self_containing_list_is_bounded() -> None:
    value: list[Any] = list(range(3000))
    value.append(value)
    value.insert(0, value)
    text = text_of(value)
    assert text == repr(value)[:DEFAULT_LIMIT] + ELLIPSIS


# -- head_unchanged: the identity shortcut for big containers ---------------------------------------------


def _head(encoder: ValueEncoder, value: object) -> list[Any]:
    encoder.encode(value)
    head = encoder.last_head
    assert head is not None, "a big cut container must remember its head"
    return head


def test_head_unchanged_for_untouched_and_tail_changes() -> None:
    encoder = ValueEncoder()
    value = list(range(100_000))
    head = _head(encoder, value)
    assert encoder.head_unchanged(value, head)
    value[-1] = "changed far away"
    value.append(5)
    assert encoder.head_unchanged(value, head)  # the text cannot show the tail


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.__setitem__(0, -1),
        lambda v: v.__setitem__(3, 3.0),  # equal but not the same object
        lambda v: v.insert(0, 99),
        lambda v: v.pop(0),
        lambda v: v.reverse(),
        lambda v: v.sort(reverse=True),
        lambda v: v.__delitem__(slice(0, None)),
    ],
    ids=["set-first", "set-equal-other-object", "insert-front", "pop-front", "reverse", "sort", "clear"],
)
def test_head_unchanged_detects_head_changes_in_list(mutate: Any) -> None:
    encoder = ValueEncoder()
    value = list(range(100_000))
    head = _head(encoder, value)
    mutate(value)
    assert not encoder.head_unchanged(value, head)
    # And the re-encoded text really differs (so the change would be recorded), except for equal values.
    new_text = decode_text(encoder.encode(value))[0]
    assert new_text == expected_text(value, DEFAULT_LIMIT)


def test_head_unchanged_detects_head_changes_in_dict() -> None:
    encoder = ValueEncoder()
    value = {i: i * 2 for i in range(50_000)}
    head = _head(encoder, value)
    assert encoder.head_unchanged(value, head)
    value[1] = "new"
    assert not encoder.head_unchanged(value, head)
    head = _head(encoder, value)
    del value[0]
    assert not encoder.head_unchanged(value, head)
    head = _head(encoder, value)
    value[10**9] = 0  # appended at the end: the head is the same
    assert encoder.head_unchanged(value, head)


def test_head_unchanged_on_tuple() -> None:
    encoder = ValueEncoder()
    value = tuple(range(10_000))
    head = _head(encoder, value)
    assert encoder.head_unchanged(value, head)
    assert not encoder.head_unchanged(tuple(range(1, 10_001)), head)
    assert not encoder.head_unchanged((), head)


def test_small_container_snapshot_sees_every_change() -> None:
    """A small flat container keeps all its elements and its length: appends, pops and swaps all count."""
    encoder = ValueEncoder()
    value = list(range(10))
    encoder.encode(value)
    head = encoder.last_head
    assert head is not None and head[1] == 10
    assert encoder.head_unchanged(value, head)
    value.append(10)  # the text would show it: the snapshot must not call it unchanged
    assert not encoder.head_unchanged(value, head)
    value.pop()
    value[3], value[4] = value[4], value[3]
    assert not encoder.head_unchanged(value, head)
    encoder.encode(5)  # each encode forgets the previous head
    assert encoder.last_head is None


def test_head_of_mutable_elements_does_not_see_their_mutation_but_text_does() -> None:
    # The head is compared by identity: a mutated *element* keeps its identity, so callers must not rely
    # on head_unchanged for containers whose head holds mutable objects. The encoder only records a head
    # when the head's elements are scalars.
    encoder = ValueEncoder()
    value = [[i] for i in range(100_000)]
    encoder.encode(value)
    assert encoder.last_head is None


# -- is_immutable -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, "s", b"b", None, 1.0, (1, "a"), frozenset({1}), range(3), len])
def test_is_immutable_true(value: object) -> None:
    assert is_immutable(value)


@pytest.mark.parametrize("value", [[1], {1: 2}, {1}, ([1],), tuple(range(100)), bytearray(b"x")])
def test_is_immutable_false(value: object) -> None:
    assert not is_immutable(value)


# -- values stored as themselves (trace format 2) ----------------------------------------------------------


@pytest.mark.parametrize("value", [0, 7, -(2**63), 2**63 - 1, True, False, 2.5, -0.0, 1e300, 5e-324])
def test_numbers_are_stored_as_themselves(value: object) -> None:
    encoded = ValueEncoder().encode(value)
    assert type(encoded) is type(value) and same_encoding(encoded, value)
    assert decode_text(encoded) == (repr(value), True, False)


@pytest.mark.parametrize(
    ("value", "limit"), [(2**63, DEFAULT_LIMIT), (-(2**63) - 1, DEFAULT_LIMIT), (10**18, 19), (0.1, 23)]
)
def test_numbers_that_need_text(value: object, limit: int) -> None:
    # Outside 64 bits, or a limit the longest repr could pass: the text, cut like any other.
    encoded = ValueEncoder(limit).encode(value)
    assert type(encoded) is str
    assert decode_text(encoded)[0] in (repr(value), repr(value)[:limit] + ELLIPSIS)


def test_same_encoding_is_type_and_sign_exact() -> None:
    assert same_encoding(1, 1) and same_encoding("1", "1") and same_encoding(["x", 0], ["x", 0])
    assert not same_encoding(1, True)
    assert not same_encoding(0.0, -0.0)
    assert not same_encoding(1, 1.0)
    assert not same_encoding(1, "1")


# -- the compiled core's head of a big flat container -------------------------------------------------------
_FLAT = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from("ab'\"\\xé\n "), max_size=12),
    st.text(alphabet="abcxyz", min_size=0, max_size=400),
    st.none(),
    st.booleans(),
)


def _hashable(x: object) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


_NESTED = st.recursive(
    _FLAT,
    lambda inner: st.lists(inner, max_size=6) | st.tuples(inner) | st.tuples(inner, inner, inner)
    | st.dictionaries(st.integers(0, 20) | st.text("ab", max_size=3), inner, max_size=5)
    | st.frozensets(st.integers(0, 50), max_size=6) | st.sets(st.text("xyz", max_size=2), max_size=4),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["list", "tuple", "dict", "set", "deque"]),
    items=st.lists(_FLAT, min_size=1, max_size=300) | st.lists(_NESTED, min_size=1, max_size=60),
    limit=st.integers(min_value=16, max_value=300),
)
def test_the_compiled_head_of_a_big_flat_container_is_the_python_one(
    kind: str, items: list[Any], limit: int
) -> None:
    """Differential: tracer/_core head_text (the head of a big container's cut repr, written in C) gives the
    pure Python encoder's exact encoding, and a head that covers everything the cut text shows."""
    import tracer.values as values

    if kind == "dict":
        value: Any = {i: x for i, x in enumerate(items)}
    elif kind == "set":
        value = {x for x in items if (not isinstance(x, float) or x == x) and _hashable(x)}
    elif kind == "deque":
        value = collections.deque(items, maxlen=len(items) + 1)
    else:
        value = list(items) if kind == "list" else tuple(items)
    encoder = ValueEncoder(limit)
    compiled = encoder.encode(value)
    head = encoder.last_head
    saved, values._head_text = values._head_text, None
    try:
        python = ValueEncoder(limit).encode(value)
    finally:
        values._head_text = saved
    assert compiled == python
    assert decode_text(compiled)[0] == expected_text(value, limit)
    containers = list | tuple | dict | set | frozenset
    if decode_text(compiled)[2] and head is not None:  # an identity head holds no container (it may change)
        assert not any(isinstance(x, containers) for x in head[0])
    if head is not None and decode_text(compiled)[2] and kind != "deque":  # the first elements: all shown
        elements = head[0]
        flat = [x for kv in value.items() for x in kv] if kind == "dict" else list(value)
        assert all(a is b for a, b in zip(elements, flat)) and len(elements) <= len(flat)
        if kind == "dict":
            shown = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in zip(elements[::2], elements[1::2]))
        else:
            shown = ("[" if kind == "list" else "(") + ", ".join(map(repr, elements))
        assert len(elements) == len(flat) or len(shown) > limit


def test_the_compiled_head_of_flat_nested_and_self_holding_containers() -> None:
    from tracer.native import core

    if core is None:
        pytest.skip("the compiled core is not built")
    text, shown, flat = core.head_text(list(range(10_000)), 100)
    assert len(text) > 100 and text == repr(list(range(shown)))[:-1] and shown < 40 and flat
    tree: Any = None
    for depth in range(1, 30):  # a tree of tuples: 2**29 leaves, written only as far as the limit
        tree = (depth, tree, tree)
    text, shown, flat = core.head_text(tree, 100)
    import tracer.values as values

    saved, values._head_text = values._head_text, None
    try:
        walked = decode_text(ValueEncoder(100).encode(tree))[0]  # the pure Python walk, stopped at the limit
    finally:
        values._head_text = saved
    assert walked == text[:100] + ELLIPSIS and shown == 2 and not flat
    selfish: list[Any] = [1]
    selfish.append(selfish)
    assert core.head_text([selfish] * 100, 100) is None  # it holds itself: the Python path
    assert core.head_text(list(range(5)), 100) is None  # not cut
