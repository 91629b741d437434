"""A seeded generator of small CRUXEval-like functions with inputs, deduplicated by normalised source."""

from __future__ import annotations

import ast
import hashlib
import random
import string
from collections.abc import Callable, Iterator

from tracer.corpus.program import Program

_NAMES = ("res", "out", "acc", "total", "buf", "seen", "parts", "result", "items", "count")
_LETTERS = string.ascii_lowercase[:8] + "AEXYZ019 "
_KEYS = ("a", "b", "c", "x", "y", "k1", "k2", "id", "n")


class _Gen:
    """One program's random choices."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def name(self, *avoid: str) -> str:
        return self.r.choice([n for n in _NAMES if n not in avoid])

    def small(self, low: int = 1, high: int = 9) -> int:
        return self.r.randint(low, high)

    def ints(self, low: int = 0, high: int = 9, size: tuple[int, int] = (0, 8)) -> str:
        return repr([self.r.randint(low, high) for _ in range(self.r.randint(*size))])

    def text(self, size: tuple[int, int] = (0, 12)) -> str:
        return repr("".join(self.r.choice(_LETTERS) for _ in range(self.r.randint(*size))))

    def mapping(self) -> str:
        keys = self.r.sample(_KEYS, self.r.randint(0, 5))
        return repr({k: self.r.randint(-5, 9) for k in keys})

    def intset(self) -> str:
        values = sorted({self.r.randint(0, 12) for _ in range(self.r.randint(0, 7))})
        return "{" + ", ".join(map(str, values)) + "}" if values else "set()"

    def cmp(self, var: str) -> str:
        op = self.r.choice(("<", ">", "<=", ">=", "==", "!="))
        return f"{var} {op} {self.small(0, 6)}"

    def helper(self) -> tuple[str, str]:
        """A small helper function and its name (nested calls)."""
        kind = self.r.randrange(4)
        if kind == 0:
            return f"def g(x):\n    return x * {self.small(2, 4)} + {self.small(0, 3)}\n", "g"
        if kind == 1:
            k = self.small(2, 3)
            return f"def g(x):\n    if x % {k} == 0:\n        return x // 2\n    return x + 1\n", "g"
        if kind == 2:
            return f"def h(x):\n    return -x if x {self.r.choice('<>')} {self.small(0, 5)} else x\n", "h"
        times = self.small(1, 3)
        body = f"    y = x\n    for _ in range({times}):\n        y = y * 2 - 1\n    return y\n"
        return "def h(x):\n" + body, "h"


# Each template gives (code, entry, argument source); the entry is always f, like CRUXEval.
def _str_loop(g: _Gen) -> tuple[str, str]:
    acc = g.name()
    test = g.r.choice(("c.isdigit()", "c.isupper()", "c in 'aeiou'", "c == ' '", "c.isalpha()"))
    then = g.r.choice((f"{acc} += c.upper()", f"{acc} += c * 2", f"{acc} = c + {acc}", "continue"))
    other = g.r.choice((f"{acc} += c", f"{acc} += c.lower()", f"{acc} += str(len({acc}))"))
    code = (
        f"def f(s):\n    {acc} = ''\n    for c in s:\n        if {test}:\n            {then}\n"
        f"        else:\n            {other}\n    return {acc}\n"
    )
    return code, g.text()


def _list_accumulate(g: _Gen) -> tuple[str, str]:
    acc = g.name()
    k = g.small(2, 4)
    r = g.r.randrange(k)
    helper, hname = g.helper() if g.r.random() < 0.5 else ("", "")
    value = f"{hname}(x)" if hname else g.r.choice(("x", "x * x", "x + 1", "-x"))
    code = (
        f"{helper}def f(nums):\n    {acc} = []\n    for i, x in enumerate(nums):\n"
        f"        if x % {k} == {r}:\n            {acc}.append({value})\n"
        f"        elif i > {g.small(1, 4)}:\n            {acc}.insert(0, x)\n    return {acc}\n"
    )
    return code, g.ints()


def _dict_count(g: _Gen) -> tuple[str, str]:
    seen = g.name()
    tail = g.r.choice((
        f"return sorted({seen}.items())",
        f"return max({seen}, key={seen}.get) if {seen} else None",
        f"return [k for k, v in {seen}.items() if v > 1]",
        f"return {{v: k for k, v in {seen}.items()}}",
    ))
    sep = g.r.choice(("", repr(" "), repr("a")))
    code = (
        f"def f(text):\n    {seen} = {{}}\n    for w in text.split({sep}):\n"
        f"        {seen}[w] = {seen}.get(w, 0) + 1\n    {tail}\n"
    )
    return code, g.text((0, 20))


def _int_while(g: _Gen) -> tuple[str, str]:
    base = g.small(2, 10)
    acc = g.name()
    update = g.r.choice(
        (f"{acc} += d", f"{acc} = {acc} * 10 + d", f"{acc} = max({acc}, d)", f"{acc} += d * d")
    )
    code = (
        f"def f(n):\n    {acc} = 0\n    n = abs(n)\n    while n > 0:\n        d = n % {base}\n"
        f"        if d == {g.small(0, base - 1)}:\n            n //= {base}\n            continue\n"
        f"        {update}\n        n //= {base}\n    return {acc}\n"
    )
    return code, str(g.r.randint(-999, 99999))


def _set_ops(g: _Gen) -> tuple[str, str]:
    op = g.r.choice(("|", "&", "-", "^"))
    tail = g.r.choice(("return sorted(c)", "return len(c), min(c, default=-1)", "return {x % 3 for x in c}"))
    test, extra = g.cmp("len(c)"), g.small()
    code = f"def f(a, b):\n    c = a {op} b\n    if {test}:\n        c.add({extra})\n    {tail}\n"
    return code, f"{g.intset()}, {g.intset()}"


def _comprehension(g: _Gen) -> tuple[str, str]:
    m = g.small(2, 5)
    body = g.r.choice((
        f"return [x * {m} for x in nums if {g.cmp('x')}]",
        f"return {{i: x for i, x in enumerate(nums) if x % {m}}}",
        f"return sorted({{x % {m} for x in nums}}, reverse={g.r.choice(('True', 'False'))})",
        f"return [[x] * (i % {m}) for i, x in enumerate(nums)]",
        f"return sum(x for x in nums if {g.cmp('x')}), any(x > {m} for x in nums)",
    ))
    return f"def f(nums):\n    {body}\n", g.ints()


def _recursion(g: _Gen) -> tuple[str, str]:
    kind = g.r.randrange(4)
    if kind == 0:
        code = f"def f(n):\n    if n <= {g.small(0, 1)}:\n        return 1\n    return n * f(n - 1)\n"
        return code, str(g.r.randint(0, 12))
    if kind == 1:
        code = "def f(s):\n    if len(s) <= 1:\n        return s\n    return f(s[1:]) + s[0]\n"
        return code, g.text((0, 10))
    if kind == 2:
        code = (
            "def f(xs, depth=0):\n    out = []\n    for x in xs:\n        if isinstance(x, list):\n"
            "            out.extend(f(x, depth + 1))\n        else:\n            out.append((x, depth))\n"
            "    return out\n"
        )
        inner = [g.r.randint(0, 9), [g.r.randint(0, 9), [g.r.randint(0, 9)]], g.r.randint(0, 9)]
        return code, repr(inner)
    code = f"def f(n, k={g.small(2, 3)}):\n    if n < k:\n        return n\n    return f(n // k, k) + n % k\n"
    return code, str(g.r.randint(0, 500))


def _exceptions(g: _Gen) -> tuple[str, str]:
    kind = g.r.randrange(3)
    if kind == 0:
        code = (
            f"def f(items):\n    total = 0\n    for s in items:\n        try:\n            total += int(s)\n"
            f"        except ValueError:\n            total -= {g.small()}\n    return total\n"
        )
        values = [
            g.r.choice((str(g.r.randint(-9, 99)), g.r.choice(("x", "1.5", "", "7a")))) for _ in range(5)
        ]
        return code, repr(values)
    if kind == 1:
        code = (
            "def f(d, keys):\n    out = []\n    for k in keys:\n        try:\n            out.append(d[k])\n"
            "        except KeyError as e:\n            out.append(str(e))\n    return out\n"
        )
        keys = repr(g.r.sample(_KEYS, g.small(1, 4)))
        return code, f"{g.mapping()}, {keys}"
    code = (
        "def check(x):\n    if x == 0:\n        raise ZeroDivisionError('zero')\n    return 100 // x\n\n"
        "def f(nums):\n    res = []\n    for x in nums:\n        try:\n            res.append(check(x))\n"
        "        except ZeroDivisionError:\n            res.append(None)\n        finally:\n"
        f"            res = res[-{g.small(2, 5)}:]\n    return res\n"
    )
    return code, g.ints(-3, 6)


def _string_methods(g: _Gen) -> tuple[str, str]:
    sep = g.r.choice((" ", "a", "X", "1"))
    body = g.r.choice((
        f"parts = s.split({sep!r})\n    parts.reverse()\n    return {g.r.choice(('-', '', '+'))!r}"
        ".join(parts)",
        f"head, mid, tail = s.partition({sep!r})\n    return tail + mid + head.upper()",
        f"s = s.replace({sep!r}, {g.r.choice(('', '__', 'z'))!r})\n    return s.strip(), s.find('b')",
        f"return [w.capitalize() for w in s.split() if len(w) > {g.small(0, 3)}]",
        f"return s.count({sep!r}), s.startswith({g.r.choice(_LETTERS)!r}), s[::{g.small(1, 3)}]",
    ))
    return f"def f(s):\n    {body}\n", g.text((0, 16))


def _list_mutation(g: _Gen) -> tuple[str, str]:
    v = g.small()
    ops = [
        "xs.sort()",
        "xs.reverse()",
        f"xs.append(len(xs) * {g.small()})",
        "if xs:\n        xs.pop()",
        f"if {v} in xs:\n        xs.remove({v})",
        f"xs = xs[{g.small(0, 2)}:] + xs[:{g.small(0, 2)}]",
        "xs.sort(key=lambda v: (v % 3, -v))",
    ]
    chosen = g.r.sample(ops, g.small(2, 4))
    body = "\n    ".join(chosen)
    return f"def f(xs):\n    {body}\n    return xs\n", g.ints()


def _while_break(g: _Gen) -> tuple[str, str]:
    code = (
        f"def f(nums, target):\n    i = 0\n    best = None\n    while i < len(nums):\n"
        f"        if nums[i] == target:\n            best = i\n            break\n"
        f"        if nums[i] < 0:\n            i += {g.small(1, 2)}\n            continue\n"
        f"        i += 1\n    return best, i\n"
    )
    return code, f"{g.ints(-3, 9)}, {g.small(0, 9)}"


def _dict_update(g: _Gen) -> tuple[str, str]:
    body = g.r.choice((
        f"for k in list(d):\n        if d[k] {g.r.choice('<>')} {g.small(0, 5)}:\n            del d[k]",
        f"for k, v in sorted(d.items()):\n        d[k + k] = v * {g.small(2, 3)}",
        f"d.update({{k: 0 for k in {list(g.r.sample(_KEYS, 2))!r}}})",
        "d = dict(sorted(d.items(), key=lambda kv: kv[1]))",
    ))
    tail = g.r.choice(("return d", "return list(d.items())", "return sum(d.values()), len(d)"))
    return f"def f(d):\n    {body}\n    {tail}\n", g.mapping()


_TEMPLATES: tuple[Callable[[_Gen], tuple[str, str]], ...] = (
    _str_loop, _list_accumulate, _dict_count, _int_while, _set_ops, _comprehension, _recursion,
    _exceptions, _string_methods, _list_mutation, _while_break, _dict_update,
)


def normalised_key(code: str, inputs: tuple[str, ...]) -> str:
    """A hash that is the same for programs differing only in layout or comments."""
    try:
        text = ast.unparse(ast.parse(code))
    except SyntaxError:
        text = code
    canon_inputs = []
    for item in inputs:
        try:
            canon_inputs.append(ast.unparse(ast.parse(item.strip(), mode="eval")))
        except SyntaxError:
            canon_inputs.append(item)
    return hashlib.sha256("\0".join([text, *canon_inputs]).encode()).hexdigest()


def generate(n: int, seed: int = 0) -> Iterator[Program]:
    """n distinct programs; the same seed always gives the same programs in the same order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    made = 0
    attempts = 0
    while made < n and attempts < 50 * n + 100:
        attempts += 1
        template = rng.choice(_TEMPLATES)
        code, args = template(_Gen(rng))
        key = normalised_key(code, (args,))
        if key in seen:
            continue
        seen.add(key)
        made += 1
        yield Program(
            id=f"synth/{key[:16]}", code=code, entry="f", inputs=(args,), source="synth", split="train"
        )
