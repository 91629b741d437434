"""Programs that once broke the recorder: inlined comprehensions over cell variables, unprintable values.

Both must record without changing what the program does and without losing state: CPython 3.13.0's
frame.f_locals crashed the interpreter on the first (python/cpython#128396), and a repr that raised inside
the compiled encoder stopped the recording on the second. Each recording runs in a subprocess (a crash
must fail the test, not the test run), with each recorder: the compiled one, the Python one with the
compiled helpers, and the Python one without any compiled code.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracer import monitor
from tracer.native import core as built_core
from tracer.values import ValueEncoder, _int_text, decode_text

DATA = Path(__file__).resolve().parent / "data"
CELLS = DATA / "comprehension_cells.py"
HAZARDS = DATA / "repr_hazards.py"
TIMEOUT = 60
# name -> extra environment. "bare": no compiled code at all (what runs where no C compiler was found).
CORES = {
    "c": {"RETROGRADE_CORE": "c"},
    "python": {"RETROGRADE_CORE": "python"},
    "bare": {"RETROGRADE_CORE": "python", "RETROGRADE_NO_CORE": "1"},
}

Step = dict[str, Any]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONHASHSEED": "0", **env}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=full, timeout=TIMEOUT)


def record(program: Path, core: str, tmp_path: Path) -> tuple[list[Step], str]:
    """Record program with one core; assert it behaved as under plain python; (steps, `info` text)."""
    plain = run([sys.executable, str(program)], tmp_path, {})
    trace = tmp_path / f"{core}.rtrace"
    recorded = run(
        [sys.executable, "-m", "tracer", "record", "-o", str(trace), str(program)], tmp_path, CORES[core]
    )
    assert recorded.returncode == plain.returncode == 0, recorded.stderr[-2000:]
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr
    exported = run([sys.executable, "-m", "tracer", "export", str(trace)], tmp_path, {})
    assert exported.returncode == 0, exported.stderr
    info = run([sys.executable, "-m", "tracer", "info", str(trace)], tmp_path, {})
    assert info.returncode == 0, info.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()], info.stdout


def values_of(steps: list[Step], func: str, line: int, name: str) -> list[str]:
    """The successive texts of local `name` at the line steps of `line` in `func` (repeats collapsed)."""
    out: list[str] = []
    for step in steps:
        if step["event"] == "line" and step["func"] == func and step["line"] == line:
            text = step["locals"].get(name)
            if text is not None and (not out or out[-1] != text):
                out.append(text)
    return out


# -- inlined comprehensions whose variable is a cell or free variable (gh-128396) -------------------------


@pytest.mark.parametrize("core", ["c", "python"])
def test_comprehension_cells_record_their_loop_variables(core: str, tmp_path: Path) -> None:
    if core == "c" and built_core is None:
        pytest.skip("the compiled recorder is not built")
    steps, info = record(CELLS, core, tmp_path)
    assert "recorder error" not in info
    # A cell of the function, bound by the comprehension: the slot holds the plain value meanwhile.
    assert values_of(steps, "cell_var", 5, "uri") == ["1", "2", "3"]
    assert values_of(steps, "cell_var", 7, "uri") == ["1"]  # the cell again, after the comprehension
    assert values_of(steps, "nested", 23, "cell") == ["0", "1", "2", "3"]
    assert values_of(steps, "nested", 23, "r") == ["0", "1"]
    assert values_of(steps, "nested", 24, "cell") == ["0"]
    assert values_of(steps, "dict_and_set", 30, "k") == ["0", "1", "2"]
    assert values_of(steps, "dict_and_set", 31, "k") == ["0", "1", "2"]
    # A cell of the comprehension itself (the lambdas capture it).
    assert values_of(steps, "closures", 36, "key") == ["'p'", "'q'"]
    # A free variable of the function beside the comprehension's own variable of the same name: 3.13's
    # f_locals (PEP 667) shows the first bound one, the comprehension's; 3.12's dict the last, the free one.
    inner = values_of(steps, "free_var.<locals>.inner", 15, "x")
    assert inner == (["10", "1", "2"] if sys.version_info >= (3, 13) else ["10"])
    # Not inlined: a generator expression has a frame of its own.
    assert values_of(steps, "genexpr.<locals>.<genexpr>", 42, "w") == ["1", "2"]
    # A class body, and a comprehension whose variable is a cell of its own.
    assert values_of(steps, "Holder", 47, "name") == ["'h'", "'a'", "'b'"]
    assert values_of(steps, "Holder", 48, "j") == ["7", "8"]
    assert values_of(steps, "<module>", 51, "top") == ["1", "2", "3"]
    assert values_of(steps, "<module>", 52, "m") == ["4", "5"]


def test_comprehension_cells_without_compiled_code(tmp_path: Path) -> None:
    # Without the compiled helper a shadowed cell cannot be read safely from Python: it is left out while
    # its comprehension runs, and everything else is still recorded.
    steps, info = record(CELLS, "bare", tmp_path)
    assert "recorder error" not in info
    assert values_of(steps, "cell_var", 5, "keys") == ["[1, 2, 3]"]
    assert values_of(steps, "cell_var", 7, "uri") == ["1"]
    assert values_of(steps, "nested", 23, "r") == ["0", "1"]
    assert values_of(steps, "genexpr.<locals>.<genexpr>", 42, "w") == ["1", "2"]


def _capture(frame: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the compiled helper's locals, CPython's own f_locals) of a frame."""
    assert built_core is not None
    return built_core.frame_locals(frame), dict(frame.f_locals)


def _plain(a: int, *rest: int, **named: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    got = [_capture(sys._getframe())]
    total = a + sum(rest)
    got.append(_capture(sys._getframe()))
    del total
    got += [_capture(sys._getframe()) for _item in named]  # a comprehension variable that is no cell
    return got


def _with_cells(a: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    b = a + 1
    captures = [_capture(sys._getframe())]  # c: a cell, still empty

    def inner() -> int:
        return a + b + c

    c = 3
    captures.append(_capture(sys._getframe()))
    assert inner() == a + b + 3
    return captures


def _free(a: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    def inner(x: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [_capture(sys._getframe()), *[_capture(sys._getframe()) for _y in (x,)]]

    return [*inner(a), _capture(sys._getframe())]


@pytest.mark.skipif(built_core is None, reason="the compiled recorder is not built")
@pytest.mark.parametrize(
    "captures",
    [lambda: _plain(1, 2, 3, k=4, j=5), lambda: _with_cells(1), lambda: _free(7)],
    ids=["plain", "cells", "free"],
)
def test_frame_locals_is_f_locals_where_f_locals_is_safe(captures: Any) -> None:
    # Differential against CPython itself, on frames its f_locals reads correctly on every version.
    for ours, theirs in captures():
        assert ours == theirs


@pytest.mark.skipif(built_core is None, reason="the compiled recorder is not built")
def test_frame_locals_dereferences_cells() -> None:
    (before, _), (after, _) = _with_cells(1)
    assert before["a"] == 1 and before["b"] == 2 and "c" not in before
    assert after["c"] == 3 and callable(after["inner"])


@pytest.mark.skipif(built_core is None, reason="the compiled recorder is not built")
def test_frame_locals_of_a_class_body_is_its_namespace() -> None:
    namespace: dict[str, Any] = {}

    class Body:
        seen = built_core.frame_locals(sys._getframe())
        namespace.update(seen)

    assert namespace["__qualname__"].endswith("Body")
    with pytest.raises(TypeError):
        built_core.frame_locals("not a frame")


def test_shadowed_cells_span_the_comprehension() -> None:
    def crawl(keys: list[int]) -> Any:
        out = [uri for uri in keys]
        uri = 1
        return out, lambda: uri

    spans = monitor._shadowed_cells(crawl.__code__)
    assert list(spans) == ["uri"]
    ((start, end),) = spans["uri"]
    import dis

    ops = {i.offset: i.opname for i in dis.get_instructions(crawl.__code__)}
    assert ops[start] == "LOAD_FAST_AND_CLEAR"
    assert ops[end].startswith("STORE_FAST") and start < end
    assert "FOR_ITER" in [ops[o] for o in ops if start < o < end]
    assert monitor._shadowed_cells(ValueEncoder.encode.__code__) == {}


# -- values whose repr raises or misbehaves ---------------------------------------------------------------


@pytest.mark.parametrize("core", ["c", "python", "bare"])
def test_unprintable_values_are_recorded(core: str, tmp_path: Path) -> None:
    if core == "c" and built_core is None:
        pytest.skip("the compiled recorder is not built")
    steps, info = record(HAZARDS, core, tmp_path)
    assert "recorder error" not in info  # the recording went to the end
    (ret,) = [s for s in steps if s["func"] == "hazards" and s["event"] == "return"]
    shown = ret["locals"]
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        huge, negative = str(10**20000), str(-(7**9000))
    finally:
        sys.set_int_max_str_digits(old)
    # The head of the digits, cut at the limit like any long text.
    assert shown["huge"] == huge[:1000] + "..."
    assert shown["negative"] == negative[:1000] + "..."
    assert shown["mixed"].startswith("[" + huge[:500]) and shown["mixed"].endswith("...")
    assert shown["keyed"].startswith("{" + huge[:500])
    assert shown["odd"] == "<unrepresentable NonStrRepr: TypeError>"
    assert shown["deep"] == "<unrepresentable RecursiveRepr: RecursionError>"
    assert shown["changing"].startswith("<mutating ")
    assert shown["weird"] == "<unrepresentable WeirdStr: RuntimeError>"
    assert shown["sneaky"] == "sneaky"
    assert shown["classless"].startswith("<__main__.BadClass object at 0x")
    assert shown["bad_keys"] == "{BadKey(): 1, 'x': 2}"
    assert shown["nested"].startswith("[<unrepresentable NonStrRepr: TypeError>, <unrepresentable Rec")
    assert int(ret["value"][1:].split(",")[0]) == 10**20000 % 1000
    (raised,) = [s for s in steps if s["func"] == "raise_huge" and s["event"] == "exception"]
    assert raised["value"].startswith("ValueError(" + huge[:100])


def test_int_text_is_the_head_of_the_digits() -> None:
    rng = random.Random(1234)
    old = sys.get_int_max_str_digits()
    try:
        for bits in [1, 64, 1999, 2000, 2001, 2500, 14284, 14285, 30000, 70000]:
            for _ in range(5):
                value = rng.getrandbits(bits) | (1 << (bits - 1))
                for sign in (1, -1):
                    for limit in (16, 100, 1000):
                        sys.set_int_max_str_digits(0)
                        want = str(sign * value)
                        sys.set_int_max_str_digits(old)
                        text = _int_text(sign * value, limit)
                        assert want.startswith(text)
                        assert len(text) >= min(len(want), limit + 1)
        # The boundary cases of the digit estimate: 10**n and 10**n - 1.
        for n in (700, 4300, 4301, 9999):
            for value in (10**n, 10**n - 1):
                sys.set_int_max_str_digits(0)
                want = str(value)
                sys.set_int_max_str_digits(old)
                assert _int_text(value, 1000) == want[:1001]
    finally:
        sys.set_int_max_str_digits(old)


def test_long_ints_encode_without_raising() -> None:
    encoder = ValueEncoder()
    value = 10**20000
    for item in (value, -value, [value], (1, value), {value: 1}, {"k": [value]}, {value}, frozenset({value})):
        text, literal, truncated = decode_text(encoder.encode(item))
        assert "1" + "0" * 400 in text and truncated and not literal
    text, _, _ = decode_text(encoder.encode(2 ** (1 << 25)))
    assert text.startswith("<int with about 101") and text.endswith(" digits>")
    if built_core is not None:
        # The compiled encoder leaves them to the Python one rather than raising.
        for container in (value, [value, 1], {"a": value}):
            assert built_core.encode(container, 1000) is None


def test_exception_with_a_long_int_argument() -> None:
    encoder = ValueEncoder(100)
    text, _, truncated = decode_text(encoder.encode(KeyError(10**5000, "x")))
    assert text.startswith("KeyError(1000") and truncated
    assert decode_text(encoder.encode(ValueError()))[0] == "ValueError()"

    class Odd(Exception):
        def __repr__(self) -> str:
            raise RuntimeError

    text, _, _ = decode_text(encoder.encode(Odd(1)))  # its own repr failed: no stand-in for it
    assert text.startswith("<unrepresentable ") and text.endswith("Odd: RuntimeError>")
