"""Benchmark-style puzzles: short self-contained functions built from typed blocks, with literal inputs.

A puzzle is `def f(PARAM):` followed by a chain of one to three blocks, each turning the value of one type
(str, int, list of ints, list of words, dict) into a new variable of another type, and a final return. The
blocks are string methods, slicing, list/dict/set work, comprehensions, loops with early exits, calls of a
helper (sometimes recursive, sometimes raising) and exceptions caught. Every loop is bounded by the size of
the input or by a small constant, so every puzzle terminates quickly. Choices come from explicit option
tuples, so the number of distinct puzzles is a product that `reachable_count` computes exactly (names are
drawn too, but those are normalised away by the dedup, `tracer.corpus.fingerprint`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from tracer.corpus.fingerprint import normalised_ast
from tracer.corpus.program import Program

_CH = ("'a'", "'b'", "'x'", "' '", "'1'", "'e'", "'Z'")
_K9 = tuple(str(k) for k in range(1, 10))
_K5 = tuple(str(k) for k in range(0, 6))
_CMP = ("<", ">", "<=", ">=", "==", "!=")
_JOIN = ("'-'", "''", "' '", "'+'")
_SLICE = ("::-1", "1:", ":-1", "::2", "1::2", "2:", ":3", "-3:")
_STR_METHODS = ("upper", "lower", "strip", "title", "swapcase", "capitalize", "lstrip", "rstrip")
_PREDICATES = ("isdigit", "isupper", "islower", "isalpha", "isspace")


@dataclass(frozen=True, slots=True)
class Block:
    """A template from one type to another; `$name` placeholders are options (`domains`) or variables."""

    takes: str
    gives: str
    template: str
    domains: tuple[tuple[str, tuple[str, ...]], ...] = ()
    helper: str = ""  # the kind of helper function the block calls as $h ("" for none)

    @property
    def variants(self) -> int:
        count = 1
        for _name, options in self.domains:
            count *= len(options)
        return count * (_helper_variants(self.helper) if self.helper else 1)


def _b(takes: str, gives: str, template: str, helper: str = "", **domains: tuple[str, ...]) -> Block:
    return Block(takes, gives, template, tuple(domains.items()), helper)


# Variables: $x (the block's input), $y (its output), $t $u $v $i (temporaries).
BLOCKS: tuple[Block, ...] = (
    # str -> str
    _b("str", "str", "$y = $x.replace($a, $r)", a=_CH, r=("''", "'z'", "'--'", "'1'", "' '")),
    _b("str", "str", "$y = $x[$s]", s=_SLICE),
    _b("str", "str", "$y = $x.$m()", m=_STR_METHODS),
    _b("str", "str", "$y = ''\nfor $t in $x:\n    if $t.$p():\n        $y += $then\n    else:\n"
                     "        $y += $other",
       p=_PREDICATES, then=("$t.upper()", "$t * 2", "'#'", "$t.lower()"),
       other=("$t", "''", "$t.swapcase()")),
    _b("str", "str", "$y = ''\nfor $t in $x:\n    if $t == $a:\n        break\n    $body",
       a=_CH, body=("$y = $t + $y", "$y += $t", "$y += $t * 2")),
    _b("str", "str", "$y = $j.join($x.split($a))", j=_JOIN, a=_CH),
    _b("str", "str", "$y = $x if $x.$m($a) else $x + $a", m=("startswith", "endswith"), a=_CH),
    _b("str", "str", "$t, $u, $v = $x.partition($a)\n$y = $order", a=_CH,
       order=("$v + $u + $t", "$t.upper() + $v", "$v[::-1] + $t", "$u.join([$v, $t])")),
    _b("str", "str", "$y = ''.join(sorted($x, reverse=$r))", r=("True", "False")),
    _b("str", "str", "$y = ''.join($t for $t in $x if $t not in $a)",
       a=("'aeiou'", "'xyz '", "'0123456789'")),
    _b("str", "str", "$y = $x\nwhile $y and $y$end", a=_CH,
       end=("[0] == $a:\n    $y = $y[1:]", "[-1] == $a:\n    $y = $y[:-1]")),
    _b("str", "str", "$y = ''.join($h($t) for $t in $x)", helper="str"),
    _b("str", "str", "$y = $x * $k if len($x) $c $n else $x[:$n]", k=("2", "3"), c=_CMP, n=_K5),
    # str -> int
    _b("str", "int", "$y = $x.count($a)", a=_CH),
    _b("str", "int", "try:\n    $y = $x.index($a)\nexcept ValueError:\n    $y = $d", a=_CH,
       d=("-1", "0", "99", "len($x)")),
    _b("str", "int", "$y = sum(1 for $t in $x if $t.$p())", p=_PREDICATES),
    _b("str", "int", "$y = 0\nfor $t in $x:\n    if $t.isdigit():\n        $y = $y * 10 + int($t)\n"
                     "    elif $t == $a:\n        break", a=_CH),
    _b("str", "int", "try:\n    $y = int($x)\nexcept ValueError:\n    $y = len($x) * $k",
       k=("1", "2", "3", "-1")),
    _b("str", "int", "$y = $x.find($a) + $x.rfind($b)", a=_CH, b=_CH),
    # str -> words
    _b("str", "words", "$y = $x.split($a)", a=("", "' '", "'a'", "'x'", "'1'")),
    _b("str", "words", "$y = [$t for $t in $x.split() if len($t) $c $k]", c=_CMP, k=_K5),
    _b("str", "words", "$y = [$x[$i:$i + $k] for $i in range(0, len($x), $k)]", k=("2", "3", "4")),
    # str -> map
    _b("str", "map", "$y = {}\nfor $t in $x:\n    $y[$t] = $y.get($t, 0) + $k", k=("1", "2")),
    _b("str", "map", "$y = {}\nfor $t in $x:\n    if not $t.$p():\n        continue\n"
                     "    $y[$t] = $y.get($t, 0) + 1",
       p=_PREDICATES),
    _b("str", "map", "$y = {$t: $i for $i, $t in enumerate($x)}"),
    # int -> int
    _b("int", "int", "$y = $x $o $k", o=("+", "-", "*", "//", "%"), k=_K9),
    _b("int", "int", "$y = 0\n$t = abs($x)\nwhile $t > 0:\n    $upd\n    $t //= $k",
       k=("2", "3", "5", "7", "10"),
       upd=("$y += $t % $k", "$y = $y * 10 + $t % $k", "$y = max($y, $t % $k)")),
    _b("int", "int", "$y = $h($x)", helper="int"),
    _b("int", "int", "$y = $x if $x $c $k else -$x", c=_CMP, k=_K5),
    _b("int", "int", "$y = 0\nfor $t in range(min(abs($x), $n)):\n    if $t % $k == 0:\n        continue\n"
                     "    $y += $t", n=("5", "8", "12", "20"), k=("2", "3", "4")),
    _b("int", "int", "try:\n    $y = $h($x)\nexcept (ValueError, ZeroDivisionError):\n    $y = $d",
       helper="raising", d=_K5),
    # int -> other
    _b("int", "ints", "$y = [$t * $k for $t in range(abs($x) % $m)]", k=("1", "2", "3"), m=("5", "7", "9")),
    _b("int", "ints", "$y = [int($t) for $t in str(abs($x))]"),
    _b("int", "str", "$y = str($x) * $k", k=("1", "2")),
    _b("int", "str", "$y = str($x)[::-1]"),
    _b("int", "str", "$y = bin($x)[$s]", s=("2:", "3:")),
    # ints -> ints
    _b("ints", "ints", "$y = sorted($x, reverse=$r)", r=("True", "False")),
    _b("ints", "ints", "$y = sorted($x, key=lambda $t: ($t % $k, -$t))", k=("2", "3", "4")),
    _b("ints", "ints", "$y = [$t $o $k for $t in $x if $t $c $n]", o=("+", "-", "*", "%"), k=_K5[1:], c=_CMP,
       n=_K5),
    _b("ints", "ints", "$y = $x[$s]", s=_SLICE),
    _b("ints", "ints", "$y = list($x)\n$y.$m",
       m=("append($k)", "insert(0, $k)", "extend([$k, $k])", "reverse()", "sort()"), k=_K5),
    _b("ints", "ints", "$y = []\nfor $t in $x:\n    if $t in $y:\n        continue\n    $y.append($t)"),
    _b("ints", "ints", "$y = []\nfor $t in $x:\n    if $t $c $k:\n        break\n    $y.append($t $o 1)",
       c=_CMP, k=_K9, o=("+", "-", "*")),
    _b("ints", "ints", "$y = [$h($t) for $t in $x]", helper="int"),
    _b("ints", "ints", "$y = []\nfor $t in $x:\n    try:\n        $y.append($h($t))\n"
                       "    except (ValueError, ZeroDivisionError):\n        $y.append($d)",
       helper="raising", d=_K5),
    _b("ints", "ints", "$y = list($x)\nfor $i in range(len($y) - 1):\n    if $y[$i] > $y[$i + 1]:\n"
                       "        $y[$i], $y[$i + 1] = $y[$i + 1], $y[$i]"),
    _b("ints", "ints", "$y = list($x)\nif $k in $y:\n    $y.remove($k)\nelse:\n    $y.append($k)", k=_K9),
    _b("ints", "ints", "try:\n    $y = $x[$k:] + [$x[$k]]\nexcept IndexError:\n    $y = []", k=_K5),
    _b("ints", "ints", "$y = sorted(set($x) $o {$a, $b})", o=("|", "&", "-", "^"), a=_K5, b=_K9),
    _b("ints", "ints", "$y = []\n$i = 0\nwhile $i < len($x):\n    $y.append($x[$i])\n    $i += $k",
       k=("1", "2", "3")),
    # ints -> other
    _b("ints", "int", "$y = $agg", agg=("sum($x)", "max($x, default=0)", "min($x, default=-1)", "len($x)")),
    _b("ints", "int", "$y = 0\nfor $i, $t in enumerate($x):\n    if $t $c $i:\n        $y += $t", c=_CMP),
    _b("ints", "int", "$y = $x.count($k)", k=_K9),
    _b("ints", "int", "try:\n    $y = $x.index($k)\nexcept ValueError:\n    $y = -1", k=_K9),
    _b("ints", "map", "$y = {}\nfor $t in $x:\n    $u = $key\n    $y[$u] = $y.get($u, 0) + $t",
       key=("str($t % 2)", "str($t % 3)", "'neg' if $t < 0 else 'pos'", "'big' if $t > $k else 'small'"),
       k=_K5),
    _b("ints", "map", "$y = {str($t): $x.count($t) for $t in $x}"),
    _b("ints", "str", "$y = $j.join(str($t) for $t in $x)", j=_JOIN),
    # words -> ...
    _b("words", "words", "$y = [$t.$m() for $t in $x]", m=_STR_METHODS),
    _b("words", "words", "$y = [$t for $t in $x if $t]"),
    _b("words", "words", "$y = sorted($x, key=$key)", key=("len", "str.lower", "lambda $t: $t[::-1]")),
    _b("words", "words", "$y = $x[$s]", s=_SLICE),
    _b("words", "words", "$y = [$t[::-1] for $t in $x if len($t) $c $k]", c=_CMP, k=_K5),
    _b("words", "words", "$y = [$h($t) for $t in $x]", helper="str"),
    _b("words", "str", "$y = $j.join($x)", j=_JOIN),
    _b("words", "str", "$y = ''\nfor $t in $x:\n    if $t.$p():\n        break\n    $y += $t[:$k]",
       p=_PREDICATES, k=("1", "2")),
    _b("words", "map", "$y = {}\nfor $t in $x:\n    $y[$t] = $y.get($t, 0) + 1"),
    _b("words", "map", "$y = {$t: len($t) for $t in $x}"),
    _b("words", "int", "$y = $agg", agg=("len($x)", "sum(len($t) for $t in $x)", "len(set($x))")),
    # map -> ...
    _b("map", "map", "$y = {$t: $u for $t, $u in $x.items() if $u $c $k}", c=_CMP, k=_K5),
    _b("map", "map", "$y = dict($x)\n$y[$a] = $y.get($a, 0) + $k", a=_CH, k=_K5),
    _b("map", "map", "$y = dict(sorted($x.items(), key=lambda $t: $t[1]))"),
    _b("map", "map", "$y = dict($x)\nfor $t in list($y):\n    if $y[$t] $c $k:\n        del $y[$t]",
       c=_CMP, k=_K5),
    _b("map", "ints", "$y = sorted($x.values(), reverse=$r)", r=("True", "False")),
    _b("map", "ints", "$y = [$u * $k for $u in $x.values()]", k=("2", "3", "-1")),
    _b("map", "int", "$y = $agg", agg=("sum($x.values())", "len($x)", "max($x.values(), default=0)")),
    _b("map", "int", "try:\n    $y = $x[$a]\nexcept KeyError:\n    $y = $d", a=_CH, d=("0", "-1", "len($x)")),
)

# The return statement, by the type of the last variable.
RETURNS: dict[str, tuple[str, ...]] = {
    "str": ("return $x", "return $x, len($x)", "return $x.count($a)"),
    "int": ("return $x", "return $x, $x % $k", "return $x $c $k"),
    "ints": ("return $x", "return $x, len($x)", "return sorted(set($x))", "return $x[$s]"),
    "words": ("return $x", "return len($x), $x", "return sorted($x)"),
    "map": ("return $x", "return sorted($x.items())", "return max($x, key=$x.get) if $x else None",
            "return list($x.items())"),
}
_RETURN_DOMAINS = (("a", _CH), ("k", ("2", "3")), ("c", _CMP), ("s", _SLICE))

HELPERS: dict[str, tuple[Block, ...]] = {
    "int": (
        _b("int", "int", "def $h($p):\n    return $p * $k + $j", k=("2", "3", "-1"), j=_K5),
        _b("int", "int", "def $h($p):\n    if $p % $k == 0:\n        return $p // $k\n    return $p + $j",
           k=("2", "3"), j=("1", "2")),
        _b("int", "int", "def $h($p):\n    if $p <= 1:\n        return $p\n    return $h($p // 2) + $p % 2"),
        _b("int", "int", "def $h($p):\n    $t = $p\n    for _ in range($k):\n        $t = $t * 2 - 1\n"
                         "    return $t", k=("1", "2", "3")),
    ),
    "raising": (
        _b("int", "int", "def $h($p):\n    if $p $c $k:\n        raise ValueError($p)\n    return $p * $j",
           c=("<", ">", "=="), k=_K5, j=("2", "3")),
        _b("int", "int", "def $h($p):\n    return $r // ($p - $k)", r=("100", "12"), k=_K5),
    ),
    "str": (
        _b("str", "str", "def $h($p):\n    return $p[::-1] if len($p) > $k else $p.upper()", k=_K5),
        _b("str", "str", "def $h($p):\n    if $p.$q():\n        return $p * 2\n    return $p.$m()",
           q=_PREDICATES, m=("lower", "upper", "strip")),
        _b("str", "str", "def $h($p):\n    return $p.replace($a, '') or '?'", a=_CH),
    ),
}

PARAM_TYPES = ("str", "int", "ints", "words", "map")
_PARAM_NAMES = {"str": ("s", "text", "word", "line"), "int": ("n", "x", "num", "value"),
                "ints": ("nums", "xs", "arr", "values"), "words": ("words", "items", "tokens", "names"),
                "map": ("d", "counts", "table", "mapping")}
_VAR_NAMES = ("res", "out", "acc", "total", "buf", "seen", "parts", "result", "tmp", "r", "cur", "new")
_TEMP_NAMES = ("c", "ch", "e", "k", "v", "w", "item", "a", "b", "z")
_INDEX_NAMES = ("i", "j", "idx", "pos")
_HELPER_NAMES = ("g", "h", "helper", "step", "conv")
_MAX_BLOCKS = 3
_PLACEHOLDER = re.compile(r"\$(\w+)")


@cache
def _helper_variants(kind: str) -> int:
    return sum(b.variants for b in HELPERS[kind])


@cache
def _chains(kind: str, blocks_left: int) -> int:
    """Distinct (blocks, return) tails starting from a value of `kind` with at most blocks_left blocks."""
    ret = 0
    for template in RETURNS[kind]:
        count = 1
        for name, options in _RETURN_DOMAINS:
            if f"${name}" in template:
                count *= len(options)
        ret += count
    if blocks_left == 0:
        return ret
    return ret + sum(b.variants * _chains(b.gives, blocks_left - 1) for b in BLOCKS if b.takes == kind)


def reachable_count() -> int:
    """How many structurally distinct puzzles the generator can make (1..3 blocks, every option)."""
    return sum(
        sum(b.variants * _chains(b.gives, _MAX_BLOCKS - 1) for b in BLOCKS if b.takes == kind)
        for kind in PARAM_TYPES
    )


def _fill(template: str, names: dict[str, str], domains: tuple[tuple[str, tuple[str, ...]], ...],
          rng: random.Random) -> str:
    chosen = {name: rng.choice(options) for name, options in domains}
    for _ in range(3):  # an option may hold placeholders of its own ($t.upper())
        template = _PLACEHOLDER.sub(lambda m: chosen.get(m.group(1), names.get(m.group(1), m.group(0))),
                                    template)
    if "$" in template:
        raise AssertionError(f"unfilled placeholder in {template!r}")
    return template


def _indent(text: str) -> str:
    return "".join("    " + line + "\n" for line in text.splitlines())


def _literal(kind: str, rng: random.Random) -> str:
    if kind == "str":
        if rng.random() < 0.15:
            return repr(str(rng.randint(-99, 9999)))
        letters = "abexyzAEZ019  "
        return repr("".join(rng.choice(letters) for _ in range(rng.randint(0, 12))))
    if kind == "int":
        return str(rng.randint(-60, 400))
    if kind == "ints":
        return repr([rng.randint(-5, 12) for _ in range(rng.randint(0, 8))])
    if kind == "words":
        pool = ("ab", "x", "Hello", "bee", "", "zz", "a1", "Ax", "eye", "123", "yes")
        return repr([rng.choice(pool) for _ in range(rng.randint(0, 6))])
    keys = rng.sample(("a", "b", "x", "e", "Z", "k", "id"), rng.randint(0, 5))
    return repr({k: rng.randint(-5, 9) for k in keys})


def puzzle(seed: int) -> Program:
    """The puzzle of one seed: code defining f (and perhaps a helper) and three to five literal inputs."""
    rng = random.Random(seed)
    kind = rng.choice(PARAM_TYPES)
    param = rng.choice(_PARAM_NAMES[kind])
    variables = rng.sample(_VAR_NAMES, _MAX_BLOCKS)
    temps = rng.sample(_TEMP_NAMES, 3)
    names = {"t": temps[0], "u": temps[1], "v": temps[2], "i": rng.choice(_INDEX_NAMES),
             "h": rng.choice(_HELPER_NAMES), "p": rng.choice(("p", "q", "val"))}
    body: list[str] = []
    helper = ""
    current, var = kind, param
    # One-block puzzles are a small space (a few thousand): most seeds get two or three blocks.
    for number in range(rng.choices((1, 2, 3), weights=(1, 3, 4))[0]):
        options = [b for b in BLOCKS if b.takes == current and (not b.helper or not helper)]
        block = rng.choice(options)
        out = variables[number]
        if block.helper:
            spec = rng.choice(HELPERS[block.helper])
            helper = _fill(spec.template, names, spec.domains, rng) + "\n\n"
        body.append(_fill(block.template, {**names, "x": var, "y": out}, block.domains, rng))
        current, var = block.gives, out
    body.append(_fill(rng.choice(RETURNS[current]), {**names, "x": var}, _RETURN_DOMAINS, rng))
    code = f"{helper}def f({param}):\n" + "".join(_indent(part) for part in body)
    wanted, drawn = rng.randint(3, 5), 0
    found: dict[str, None] = {}
    while len(found) < wanted and drawn < 30:  # distinct inputs (small domains repeat)
        found[_literal(kind, rng)] = None
        drawn += 1
    inputs = tuple(found)
    return Program(id=f"puzzle/{seed}", code=code, entry="f", inputs=inputs, source="puzzles", split="train")


def generate(n: int, seed: int = 0) -> Iterator[Program]:
    """n puzzles with distinct normalised ASTs, from the seeds after `seed * 10**9` (deterministic)."""
    seen: set[str] = set()
    base = seed * 1_000_000_000
    made = tried = 0
    while made < n and tried < 20 * n + 100:
        program = puzzle(base + tried)
        tried += 1
        key = normalised_ast(program.code)
        if key in seen:
            continue
        seen.add(key)
        made += 1
        yield program
