"""Real functions on many inputs: the calls in a problem's tests, and type-preserving mutations of them.

From the asserts of an MBPP problem (or the check() of a HumanEval one) the literal arguments of each call
of the solution are taken; each input is then mutated a few times (ints moved a little, strings edited,
lists shuffled or trimmed, one item of a tuple or dict changed), seeded by the problem's id. The original
calls run plainly; a mutated call may raise (the solution was not written for it), so each runs inside
`try: ... except Exception: pass`, and the next one still runs. The calls are spread over programs of
at most four calls each (ids ID/0, ID/1, ...): the driver's source is the context of every example the
model sees, and a long one would leave no room for the states within a block.
"""

from __future__ import annotations

import ast
import hashlib
import random
import string
import warnings
from collections import Counter
from typing import Any

from tracer.corpus.program import Program

MUTATIONS = 3  # mutated variants per original input
CALLS_PER_PROGRAM = 4  # a recorded driver stays short: its whole source is the model's context


def mutate_value(value: Any, rng: random.Random) -> Any:
    """A value of the same type, a little different (containers keep their element types)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        moved = value + rng.choice((-3, -2, -1, 1, 2, 3))
        return max(0, moved) if value >= 0 else moved  # a count stays a count
    if isinstance(value, float):
        return round(value * rng.choice((0.5, 1.5)) + rng.choice((-1.0, 1.0)), 3)
    if isinstance(value, str):
        return _mutate_text(value, rng)
    if isinstance(value, list) and value:
        kind = rng.randrange(4)
        out = list(value)
        if kind == 0:
            rng.shuffle(out)
        elif kind == 1:
            del out[rng.choice((0, -1))]
        elif kind == 2:
            i = rng.randrange(len(out))
            out[i] = mutate_value(out[i], rng)
        else:
            out.insert(rng.randrange(len(out) + 1), rng.choice(out))
        return out
    if isinstance(value, tuple) and value:
        i = rng.randrange(len(value))
        return (*value[:i], mutate_value(value[i], rng), *value[i + 1:])
    if isinstance(value, dict) and value:
        out_dict = dict(value)
        key = rng.choice(list(out_dict))
        if len(out_dict) > 1 and rng.random() < 0.3:
            del out_dict[key]
        else:
            out_dict[key] = mutate_value(out_dict[key], rng)
        return out_dict
    if isinstance(value, (set, frozenset)) and value:
        items = sorted(value, key=repr)
        items.pop(rng.randrange(len(items)))
        return type(value)(items)
    return value


def _mutate_text(text: str, rng: random.Random) -> str:
    if not text:
        return rng.choice(string.ascii_lowercase)
    i = rng.randrange(len(text))
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + rng.choice(text + string.ascii_lowercase) + text[i:]
    if kind == 2 and len(text) > 1:
        j = min(i + 1, len(text) - 1)
        i = j - 1
        return text[:i] + text[j] + text[i] + text[j + 1:]
    return text[:i] + text[i].swapcase() + text[i + 1:]


def _parse(text: str) -> ast.Module:
    with warnings.catch_warnings():  # old code's invalid escapes ('\\d') are not our business
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(text)


def _defined_functions(code: str) -> set[str]:
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError):
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _check_target(tests: tuple[str, ...]) -> str | None:
    """X in a top-level `check(X)` (HumanEval's way of naming the solution)."""
    for test in tests:
        try:
            tree = _parse(test)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id == "check"
                    and node.value.args and isinstance(node.value.args[0], ast.Name)):
                return node.value.args[0].id
    return None


def test_calls(tests: tuple[str, ...], names: set[str]) -> list[tuple[str, ast.Call]]:
    """(function name, call) for every call of one of `names` in the tests, in order."""
    out: list[tuple[str, ast.Call]] = []
    for test in tests:
        try:
            tree = _parse(test)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                out.append((node.func.id, node))
    return out


def _arguments(call: ast.Call) -> str:
    parts = [ast.unparse(arg) for arg in call.args]
    parts += [f"{kw.arg}={ast.unparse(kw.value)}" if kw.arg else f"**{ast.unparse(kw.value)}"
              for kw in call.keywords]
    return ", ".join(parts)


def _mutated_arguments(call: ast.Call, rng: random.Random) -> str | None:
    """The call's arguments with one literal argument mutated; None when no argument is a literal."""
    literal = []
    for number, arg in enumerate(call.args):
        try:
            literal.append((number, ast.literal_eval(arg)))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    if not literal or (call.keywords and any(kw.arg is None for kw in call.keywords)):
        return None
    number, value = rng.choice(literal)
    parts = [ast.unparse(arg) for arg in call.args]
    parts[number] = repr(mutate_value(value, rng))
    parts += [f"{kw.arg}={ast.unparse(kw.value)}" for kw in call.keywords]
    return ", ".join(parts)


def calls_programs(pid: str, code: str, tests: tuple[str, ...], setup: str, source: str, split: str,
                   callee: str | None = None, mutations: int = MUTATIONS,
                   per_program: int = CALLS_PER_PROGRAM) -> list[Program]:
    """The solution called on its tests' inputs, then on `mutations` mutations of each, `per_program`
    calls a program (none when the tests call nothing of the code)."""
    defined = _defined_functions(code)
    if callee is not None:
        entry = _check_target(tests)
        calls = test_calls(tests, {callee})
    else:
        calls = test_calls(tests, defined)
        entry = Counter(name for name, _ in calls).most_common(1)[0][0] if calls else None
        calls = [(name, call) for name, call in calls if name == entry]
    if not calls or entry is None or entry not in defined:
        return []
    originals = list(dict.fromkeys(_arguments(call) for _, call in calls))
    rng = random.Random(int(hashlib.sha256(pid.encode()).hexdigest()[:16], 16))
    mutated: list[str] = []
    for _, call in calls:
        for _ in range(mutations):
            args = _mutated_arguments(call, rng)
            if args is not None and args not in originals and args not in mutated:
                mutated.append(args)
    plain = [(args, False) for args in originals] + [(args, True) for args in mutated]
    out = []
    for number, start in enumerate(range(0, len(plain), per_program)):
        chunk = plain[start:start + per_program]
        wrapped = tuple(f"try:\n    {entry}({args})\nexcept Exception:\n    pass\n" for args, guarded in chunk
                        if guarded)
        out.append(Program(id=f"{pid}/{number}", code=code, entry=entry,
                           inputs=tuple(args for args, guarded in chunk if not guarded), tests=wrapped,
                           setup=setup, source=source, split=split))
    return out
