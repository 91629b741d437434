"""The per-line effect guards (tracer/plan.py): what the analysis finds, what the guards conclude at run time,
and a randomised differential test: programs of container operations recorded by both recorders must match
the settrace reference step for step."""

from __future__ import annotations

import bisect
import heapq
import math
import subprocess
import tempfile
import types
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable
from heapq import heappush
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import ENV, REFERENCE, comparable, first_difference, read_jsonl, run_python

from tracer.plan import (
    G_CALL,
    G_GLOBAL,
    G_INPLACE,
    G_ITEM_METHOD,
    G_LIBCALL,
    G_METHOD,
    G_STORE,
    G_SUBSCR,
    GUARDS_SUPPORTED,
    K_MUTATES,
    K_PURE,
    K_UNKNOWN,
    LIBRARY_EFFECTS,
    analyse,
    library_effect,
    method_kinds,
    touched_objects,
)

needs_guards = pytest.mark.skipif(not GUARDS_SUPPORTED, reason="guards read CPython 3.12/3.13 bytecode")


def guards_by_line(func: Callable[..., Any]) -> dict[int, Any]:
    code = func.__code__
    plan = analyse(code, 1)
    return {line - code.co_firstlineno: (lp.may_mutate, lp.guards) for line, lp in plan.lines.items()}


def kinds(guards: Any) -> list[tuple[int, str]]:
    return [(g[0], g[1]) for g in guards]


def helper(x: Any) -> Any:
    return x


def sample(stack: list[int], d: dict[str, int], src: str, i: int, n: int, obj: Any) -> Any:
    size = len(stack)
    stack.append(i)
    ch = src[i]
    ok = src[i].isdigit()
    d["k"] = d.get("k", 0) + 1
    n += 1
    helper(stack)
    obj.items.append(1)
    stack = [1]; stack.append(2)  # noqa: E702
    return size, ch, ok, n


@needs_guards
def test_guards_name_what_each_line_touches() -> None:
    lines = guards_by_line(sample)
    assert lines[1] == (True, ((G_GLOBAL, "len", False, None, len),))
    assert kinds(lines[2][1]) == [(G_METHOD, "stack")]
    assert lines[2][1][0][3] == (K_MUTATES, K_UNKNOWN, K_UNKNOWN, K_MUTATES)  # list and deque append
    assert kinds(lines[3][1]) == [(G_SUBSCR, "src")]  # a subscript load is guarded (defaultdict)
    assert kinds(lines[4][1]) == [(G_SUBSCR, "src"), (G_ITEM_METHOD, "src")]
    assert kinds(lines[5][1]) == [(G_METHOD, "d"), (G_STORE, "d")]
    assert lines[6] == (True, ((G_INPLACE, "n", True, None, None),))  # n is stored once: old and new
    # a call of a global Python function: only settle() knows whether it is traced; the line's own
    # recheck cannot tell
    assert lines[7] == (True, ((G_CALL, "helper", False, (None, "stack"), None),))
    assert touched_objects(lines[7][1], {"stack": []}, {}, {"helper": len}, {}) is None
    assert lines[8] == (True, None)  # a method of an attribute: cannot tell
    stored = lines[9][1]
    assert kinds(stored) == [(G_METHOD, "stack")] and stored[0][2] is True  # receiver rebound on the line


def library_calls(h: list[Any], xs: list[Any], x: float) -> float:
    heapq.heappush(h, x)
    y = math.sqrt(x)
    bisect.insort(xs, y)
    heappush(h, y)
    heapq.heappush(xs[0], 1)
    h.append(1); heapq.heapify(h)  # noqa: E702 (one line)
    return y


@needs_guards
def test_library_functions_have_known_effects() -> None:
    """A call of a library function of known effect is guarded by the function it reaches at run time,
    under whatever name: the effect is the table's only when the global (or the module's attribute) is
    that very function."""
    lines = guards_by_line(library_calls)
    assert lines[1] == (True, ((G_LIBCALL, "heapq", False, ("heappush", "h"), None),))
    assert kinds(lines[2][1]) == [(G_LIBCALL, "math")]
    assert kinds(lines[4][1]) == [(G_CALL, "heappush")] and lines[4][1][0][3] == (None, "h")
    assert lines[5][1][-1][3] == ("heappush", None)  # its first argument is not a local
    plan = analyse(library_calls.__code__, 1)
    first = library_calls.__code__.co_firstlineno
    assert not plan.lines[first + 6].appends  # h.append then heapify: not an append only
    h: list[Any] = [3]
    xs: list[Any] = [[1.0]]
    now = {"h": h, "xs": xs, "x": 2.0, "y": 1.5}
    g = {"heapq": heapq, "math": math, "bisect": bisect, "heappush": heapq.heappush}
    assert touched_objects(lines[1][1], now, {}, g, {}) == [h]
    assert touched_objects(lines[2][1], now, {}, g, {}) == []
    assert touched_objects(lines[3][1], now, {}, g, {}) == [xs]
    assert touched_objects(lines[4][1], now, {}, g, {}) == [h]
    assert touched_objects(lines[5][1], now, {}, g, {}) is None
    # the same names, other functions: the program's own, a replaced module attribute, a non-list
    assert touched_objects(lines[4][1], now, {}, {**g, "heappush": lambda a, b: None}, {}) is None
    fake = types.ModuleType("heapq")
    fake.heappush = print  # type: ignore[attr-defined]
    assert touched_objects(lines[1][1], now, {}, {**g, "heapq": fake}, {}) is None
    assert touched_objects(lines[1][1], {**now, "h": (1,)}, {}, g, {}) is None
    assert library_effect(heapq.heappush) == 0 and library_effect(math.sqrt) == -1
    assert library_effect(bisect.insort) == 0 and library_effect(len) is None
    assert library_effect(lambda: None) is None
    # every entry names a real function of its module
    import importlib

    for (module, name), effect in LIBRARY_EFFECTS.items():
        assert library_effect(getattr(importlib.import_module(module), name)) == effect, (module, name)


@needs_guards
def test_a_line_without_effects_has_no_guards() -> None:
    def plain(a: int, b: int) -> int:
        c = a + b * 2
        return c

    lines = guards_by_line(plain)
    assert lines[1] == (False, None)


@needs_guards
def test_module_code_is_guarded_by_name() -> None:
    """At module level the names are the frame's locals (LOAD_NAME), and a call of a builtin is
    LOAD_NAME + PUSH_NULL (in either order: 3.12 pushes the NULL first)."""
    source = "\n".join(
        ["d = {}", "x = d['a'] if d else 0", "items = []", "items.append(len(d))", "print(items[0])",
         "main(items)"]
    )
    plan = analyse(compile(source, "<m>", "exec"), 1)
    assert plan.is_module
    assert kinds(plan.lines[2].guards) == [(G_SUBSCR, "d")]
    assert kinds(plan.lines[4].guards) == [(G_GLOBAL, "len"), (G_METHOD, "items")]
    assert kinds(plan.lines[5].guards) == [(G_SUBSCR, "items"), (G_GLOBAL, "print")]
    assert plan.lines[6].guards is None  # a call of a module-level function: cannot tell
    # At run time a name that is no global (a builtin read by LOAD_NAME) means "cannot tell".
    import builtins

    assert touched_objects(((G_METHOD, "list", False, method_kinds("append"), None),), {}, {}, {},
                           vars(builtins)) is None


def test_method_kinds() -> None:
    # (list, dict, set, collections.deque)
    assert method_kinds("append") == (K_MUTATES, K_UNKNOWN, K_UNKNOWN, K_MUTATES)
    assert method_kinds("get") == (K_UNKNOWN, K_PURE, K_UNKNOWN, K_UNKNOWN)
    assert method_kinds("pop") == (K_MUTATES, K_MUTATES, K_MUTATES, K_MUTATES)
    assert method_kinds("popleft") == (K_UNKNOWN, K_UNKNOWN, K_UNKNOWN, K_MUTATES)
    assert method_kinds("frobnicate") == (K_UNKNOWN, K_UNKNOWN, K_UNKNOWN, K_UNKNOWN)


def test_appends_are_names_a_line_only_appends_to() -> None:
    def f(big: list[int], x: int, d: dict[int, Any]) -> None:
        big.append(x)
        big.extend([x]); y = big[0]  # noqa: E702, F841
        big[0] = 1
        big.append(big.pop())
        d[x] = big.append(2)  # type: ignore[func-returns-value]
        big = big + [1]  # noqa: RUF005 (a rebinding, on purpose)
        big.append(len(big))

    first = f.__code__.co_firstlineno
    plan = analyse(f.__code__, 0)
    appends = {line - first: plan.lines[line].appends for line in plan.lines}
    assert appends[1] == appends[2] == appends[5] == {"big"}
    assert appends[3] == appends[4] == frozenset()  # a store into it; a pop
    assert appends[6] == frozenset()  # rebinds the name
    assert appends[7] == {"big"}  # len() is a pure builtin


def touched(guards: list[tuple[Any, ...]], now: dict[str, Any], before: dict[str, Any] | None = None,
            globals_: dict[str, Any] | None = None) -> list[object] | None:
    import builtins

    return touched_objects(tuple(guards), now, before or now, globals_ or {}, vars(builtins))


def test_touched_objects_follow_the_runtime_types() -> None:
    items, table, dd = [1], {"a": 1}, defaultdict(list)
    append = method_kinds("append")
    assert touched([(G_METHOD, "x", False, append, None)], {"x": items}) == [items]
    assert touched([(G_METHOD, "x", False, append, None)], {"x": "text"}) == []  # str methods change nothing
    assert touched([(G_METHOD, "x", False, append, None)], {"x": dd}) is None  # a subclass: cannot tell
    assert touched([(G_SUBSCR, "x", False, None, None)], {"x": table}) == []
    # A defaultdict's read can insert the key: with a builtin factory that changes only the dict itself;
    # any other factory is code that could do anything.
    assert touched([(G_SUBSCR, "x", False, None, None)], {"x": dd}) == [dd]
    assert touched([(G_SUBSCR, "x", False, None, None)], {"x": defaultdict(lambda: 0)}) is None
    assert touched([(G_METHOD, "x", False, method_kinds("setdefault"), None)],
                   {"x": defaultdict(lambda: 0)}) is None
    counter, ordered = Counter(), OrderedDict()
    assert touched([(G_SUBSCR, "x", False, None, None)], {"x": counter}) == []  # a Counter's miss is 0
    assert touched([(G_SUBSCR, "x", False, None, None)], {"x": ordered}) == []
    assert touched([(G_STORE, "x", False, None, None)], {"x": counter}) == [counter]
    assert touched([(G_METHOD, "x", False, method_kinds("move_to_end"), None)], {"x": ordered}) == [ordered]
    assert touched([(G_METHOD, "x", False, method_kinds("most_common"), None)], {"x": counter}) == []
    assert touched([(G_STORE, "x", False, None, None)], {"x": table}) == [table]
    assert touched([(G_STORE, "x", False, None, None)], {"x": (1, 2)}) is None
    assert touched([(G_ITEM_METHOD, "x", False, append, None)], {"x": "abc"}) == []
    assert touched([(G_ITEM_METHOD, "x", False, append, None)], {"x": [items]}) is None
    assert touched([(G_INPLACE, "x", True, None, None)], {"x": 3}, {"x": 2}) == []
    assert touched([(G_INPLACE, "x", True, None, None)], {"x": items}, {"x": items}) == [items]
    # A rebound receiver: both the value before the line and the one after count.
    other = [2]
    assert touched([(G_METHOD, "x", True, append, None)], {"x": other}, {"x": items}) == [other, items]
    assert touched([(G_METHOD, "x", True, append, None)], {"x": other}, {"x": dd}) is None


def test_a_shadowed_builtin_is_not_trusted() -> None:
    guard = (G_GLOBAL, "len", False, None, len)
    assert touched([guard], {}) == []
    assert touched([guard], {}, globals_={"len": lambda x: 0}) is None
    assert touched([(G_GLOBAL, "len", False, None, print)], {}) is None  # builtins.len replaced


# -- randomised differential test ------------------------------------------------------------------------
# Statements over a few locals that alias each other and nest; each is one line. The recorded steps of
# the program (both recorders) must equal the settrace reference's.
STATEMENTS = [
    "a.append(i)",
    "b.append(len(a))",
    "if a: a.pop()",
    "a += [i]",
    "n += len(b)",
    "grid[0].append(i)",
    "grid[1].sort()",
    "row = grid[i % 2]",
    "row.append(n)",
    "d['k'] = d.get('k', 0) + i",
    "d.setdefault(str(i), []).append(i)",
    "x = dd[i % 3]",
    "x.append(i)",
    "c = counts[i % 2]",
    "s.add(i % 4)",
    "s |= {n % 5}",
    "del a[:1]",
    "alias = a",
    "a = list(b)",
    "t = text[i % 3].upper()",
    "bump(a)",
    "u = str(n) + text[1:]",
    "m = max(a) if a else 0",
    "q = [v for v in b if v]",
    "a.extend(b[:2])",
]
PROLOGUE = """\
from collections import Counter, defaultdict


def bump(items):
    items.append(-1)


def body():
    a = [1, 2]
    b = a
    alias = a
    grid = [a, [3, 1]]
    row = grid[1]
    d = {}
    dd = defaultdict(list)
    counts = Counter("aab")
    s = {0}
    text = "xyz"
    n = 0
    x = []
    c = t = u = m = q = None
    for i in range(3):
"""


def program(statements: list[str], at_module: bool = False) -> str:
    """The statements in a loop inside body(), or (at_module) in the same loop at module level, where the
    names are globals and the module frame's guards are the Python recorder's."""
    lines = [f"        {statement}\n" for statement in statements]
    text = PROLOGUE + "".join(lines) + "\n\nbody()\n"
    if not at_module:
        return text
    head, body = text.split("def body():\n")
    body = body.removesuffix("\n\nbody()\n")
    return head + "".join(line[4:] + "\n" for line in body.splitlines())


@needs_guards
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statements=st.lists(st.sampled_from(STATEMENTS), min_size=3, max_size=10), at_module=st.booleans())
def test_random_programs_match_the_reference(
    statements: list[str],
    at_module: bool,
    tmp_path: Path,
    run_retrograde: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    script = work / "prog.py"
    script.write_text(program(statements, at_module), encoding="utf-8")
    output = work / "reference.jsonl"
    reference = run_python([REFERENCE, output, script], work, "")
    assert reference.returncode == 0, reference.stderr
    want = comparable(read_jsonl(output.read_text(encoding="utf-8")))
    for recorder in ("compiled", "python"):
        env = {**ENV, "RETROGRADE_RECORDER": recorder}
        trace = work / f"{recorder}.rtrace"
        done = run_retrograde(["record", "-o", trace, script], work, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        exported = run_retrograde(["export", trace], work, env=env, timeout=60)
        assert exported.returncode == 0, exported.stderr
        got = comparable(read_jsonl(exported.stdout))
        difference = first_difference(got, want)
        assert difference is None, f"{recorder} recorder on\n{script.read_text()}\n{difference}"



BENCH = Path(__file__).resolve().parent.parent / "bench" / "workloads"


WORKLOADS = [("interp", 12), ("containers", 300), ("calls", 12), ("loops", 12), ("recursion", 5),
             ("nbody", 30), ("graph", 300), ("collections_mix", 300), ("sorting", 400)]


@pytest.mark.parametrize(("workload", "size"), WORKLOADS)
def test_benchmark_workloads_match_the_reference(
    workload: str, size: int, tmp_path: Path, run_retrograde: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """The benchmark's workloads (small sizes) are recorded exactly: the speed measured is that of a
    recorder that gets every step right."""
    script = BENCH / f"{workload}.py"
    output = tmp_path / "reference.jsonl"
    reference = run_python([REFERENCE, output, script, str(size)], tmp_path, "")
    assert reference.returncode == 0, reference.stderr
    want = comparable(read_jsonl(output.read_text(encoding="utf-8")))
    trace = tmp_path / "trace.rtrace"
    done = run_retrograde(["record", "-o", trace, script, str(size)], tmp_path, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    exported = run_retrograde(["export", trace], tmp_path, env=ENV, timeout=120)
    got = comparable(read_jsonl(exported.stdout))
    assert len(got) > 1000
    difference = first_difference(got, want)
    assert difference is None, difference
