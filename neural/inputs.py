"""Guesses at the inputs of a function that give a known output (CRUXEval's input prediction).

`input_guesses(code, output)` lists argument texts for `f`, typed by how `f`'s body uses each parameter
(string methods, list methods, dict methods, set operators, arithmetic, iteration, comparisons with
constants...). Each parameter gets values of its kind: the output and what simple functions map to it
(reversed, sorted, cased, shifted by one), empty and small values, and the code's own constants; several
parameters are combined simplest first. Nothing here runs `f`: the evaluation keeps a guess only when the
model's step-by-step forward prediction returns the output from it (`neural.evaluate.search_input`).
"""

from __future__ import annotations

import ast
import itertools
from collections import Counter
from typing import Any

from neural.constraints import CodeError, StaticCode, literal_value

KINDS = ("int", "str", "list", "dict", "set", "tuple", "bool", "float")

_STR_METHODS = frozenset({
    "split", "rsplit", "lower", "upper", "strip", "lstrip", "rstrip", "replace", "startswith", "endswith",
    "isdigit", "isalpha", "isupper", "islower", "isspace", "isalnum", "title", "capitalize", "swapcase",
    "find", "rfind", "zfill", "center", "ljust", "rjust", "partition", "rpartition", "splitlines", "casefold",
    "format", "expandtabs", "isdecimal", "isnumeric", "istitle", "removeprefix", "removesuffix", "translate",
    "encode",
})
_LIST_METHODS = frozenset({"append", "extend", "insert", "remove", "sort", "reverse"})
_DICT_METHODS = frozenset({"items", "keys", "values", "get", "setdefault", "popitem"})
_SET_METHODS = frozenset({
    "add", "discard", "union", "intersection", "difference", "symmetric_difference", "issubset", "issuperset",
    "isdisjoint", "intersection_update", "difference_update", "symmetric_difference_update",
})
_INT_CALLS = frozenset({"range", "abs", "chr", "bin", "hex", "oct"})
_SEQ_CALLS = frozenset({
    "sorted", "sum", "min", "max", "enumerate", "reversed", "zip", "list", "tuple", "set",
})


def parameter_kinds(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[str]]:
    """For each positional parameter, the kinds of value its uses point to, likeliest first (may be empty)."""
    params = [a.arg for a in (*definition.args.posonlyargs, *definition.args.args)]
    votes: dict[str, Counter[str]] = {p: Counter() for p in params}

    def name(node: ast.AST) -> str | None:
        return node.id if isinstance(node, ast.Name) and node.id in votes else None

    def constant_kind(node: ast.AST) -> str | None:
        """The kind of value an expression surely has, as far as its own shape says."""
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value is not None:
            return {int: "int", str: "str", float: "float"}.get(type(node.value))
        integral = ast.FloorDiv | ast.Pow | ast.LShift | ast.RShift
        if isinstance(node, ast.BinOp) and isinstance(node.op, integral):
            return "int"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return "str" if constant_kind(node.left) == "str" else "int"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return {"len": "int", "sum": "int", "int": "int", "abs": "int", "ord": "int", "str": "str",
                    "chr": "str", "sorted": "list", "list": "list", "dict": "dict", "set": "set"}.get(
                node.func.id)
        return {ast.List: "list", ast.ListComp: "list", ast.Dict: "dict", ast.DictComp: "dict",
                ast.Set: "set", ast.SetComp: "set", ast.Tuple: "tuple", ast.JoinedStr: "str"}.get(type(node))

    for node in ast.walk(definition):
        if isinstance(node, ast.Attribute) and (p := name(node.value)):
            method = node.attr
            for kind, methods in (("str", _STR_METHODS), ("list", _LIST_METHODS), ("dict", _DICT_METHODS),
                                  ("set", _SET_METHODS)):
                if method in methods:
                    votes[p][kind] += 3
            if method == "update":
                votes[p].update({"dict": 2, "set": 1})
            elif method in ("pop", "clear", "copy"):
                votes[p].update({"list": 1, "dict": 1, "set": 1})
            if method in ("index", "count"):
                votes[p].update({"list": 1, "str": 1})
        elif isinstance(node, ast.BinOp):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if not (p := name(side)):
                    continue
                if isinstance(node.op, ast.BitAnd | ast.BitOr | ast.BitXor):
                    votes[p]["set"] += 2
                    votes[p]["int"] += 1
                elif isinstance(node.op, ast.FloorDiv | ast.Pow | ast.RShift | ast.LShift):
                    votes[p]["int"] += 3
                elif isinstance(node.op, ast.Mod):
                    if side is node.left:  # p % k (a parameter right of a format string says nothing)
                        votes[p]["int"] += 2
                elif (seen := constant_kind(other)) is not None:
                    votes[p][seen] += 2
                elif isinstance(node.op, ast.Sub | ast.Div):
                    votes[p]["int"] += 1
        elif isinstance(node, ast.AugAssign) and (p := name(node.target)):
            if (seen := constant_kind(node.value)) is not None:
                votes[p][seen] += 2
            elif isinstance(node.op, ast.FloorDiv | ast.Mod):
                votes[p]["int"] += 2
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                left, right = operands[i], operands[i + 1]
                if isinstance(op, ast.In | ast.NotIn):
                    if p := name(right):
                        votes[p]["str" if constant_kind(left) == "str" else "list"] += 1
                    continue
                for side, other in ((left, right), (right, left)):
                    if (p := name(side)) and (seen := constant_kind(other)) is not None:
                        votes[p][seen] += 2
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _STR_METHODS - {"format", "translate", "encode"}:
                for arg in node.args:  # s.split(sep), s.replace(old, new), s.startswith(prefix)...
                    if p := name(arg):
                        votes[p]["str"] += 2
            elif node.func.attr == "join" and node.args and (p := name(node.args[0])):
                votes[p]["list"] += 2
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            for arg in node.args[:1]:
                if not (p := name(arg)):
                    continue
                if node.func.id in _INT_CALLS:
                    votes[p]["int"] += 3
                elif node.func.id == "int":
                    votes[p]["str"] += 2
                elif node.func.id in _SEQ_CALLS:
                    votes[p]["list"] += 2
                elif node.func.id == "len":
                    votes[p]["list"] += 1
                    votes[p]["str"] += 1
            for arg in node.args[1:2]:
                if node.func.id == "range" and (p := name(arg)):
                    votes[p]["int"] += 3
        elif isinstance(node, ast.For | ast.comprehension) and (p := name(node.iter)):
            votes[p]["list"] += 2
            votes[p]["str"] += 1
        elif isinstance(node, ast.Subscript) and (p := name(node.value)):
            index = node.slice
            if isinstance(index, ast.Slice):
                votes[p]["list"] += 1
                votes[p]["str"] += 1
            elif isinstance(index, ast.Constant) and isinstance(index.value, str):
                votes[p]["dict"] += 3
            else:
                votes[p]["list"] += 1
                votes[p]["dict"] += 1
    return {p: [kind for kind, _n in votes[p].most_common()] for p in params}


def _constants(definition: ast.AST) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"int": [], "str": []}
    for node in ast.walk(definition):
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            value = node.value
            if isinstance(value, int) and value not in out["int"]:
                out["int"].append(value)
            elif isinstance(value, str) and value not in out["str"] and len(value) <= 12:
                out["str"].append(value)
    return out


def _atoms(value: Any, out: list[Any] | None = None, depth: int = 0) -> list[Any]:
    """The scalars inside a value (ints, strs, floats), each once, in order."""
    out = [] if out is None else out
    if isinstance(value, dict):
        for k, v in value.items():
            _atoms(k, out, depth + 1)
            _atoms(v, out, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset) and depth < 4:
        for v in value:
            _atoms(v, out, depth + 1)
    elif isinstance(value, int | str | float) and not isinstance(value, bool) and not any(
        type(v) is type(value) and v == value for v in out
    ):
        out.append(value)
    return out


def _values(kind: str, output: Any, constants: dict[str, list[Any]]) -> list[Any]:
    """Values of one kind, likeliest first: the output and its simple images, the scalars it holds and
    what they build, then empty, small and the code's own values."""
    out: list[Any] = []
    atoms = _atoms(output) if isinstance(output, list | tuple | set | frozenset | dict) else []
    ints = [v for v in atoms if isinstance(v, int)]
    strs = [v for v in atoms if isinstance(v, str)]
    if kind == "int":
        if isinstance(output, int) and not isinstance(output, bool):
            out += [output, output - 1, output + 1, output * 2, -output]
        out += ints[:3]
        out += [0, 1, 2, 3, -1, 5, 10, *constants["int"][:4]]
        if isinstance(output, list | tuple | str):
            out.append(len(output))
    elif kind == "float":
        if isinstance(output, int | float) and not isinstance(output, bool):
            out.append(float(output))
        out += [0.0, 1.0, 0.5]
    elif kind == "bool":
        out += [True, False]
    elif kind == "str":
        if isinstance(output, str):
            out += [output, output[::-1], output.lower(), output.upper(), output.swapcase(), output.strip()]
        elif isinstance(output, list | tuple) and all(isinstance(v, str) for v in output):
            out += [" ".join(output), "".join(output), ",".join(output)]
        elif isinstance(output, int | bool):
            out.append(str(output))
        out += strs[:2]
        if len(strs) > 1:
            out += [" ".join(strs), "".join(strs)]
            out += [sep.join(strs) for sep in constants["str"][:3] if sep]
        out += ["", " ", "a", ",", "abc", "a b", *constants["str"][:4]]
    elif kind in ("list", "tuple", "set"):
        if isinstance(output, list | tuple | set | frozenset):
            items = list(output)
            out += [items, items[::-1]]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
                out += [sorted(items), sorted(items, reverse=True)]
            out += [items[1:], items[:-1]]
        elif isinstance(output, str):
            out += [list(output), output.split()]
        elif isinstance(output, dict):
            out += [list(output.values()), list(output), list(output.items())]
        elif isinstance(output, int) and not isinstance(output, bool):
            out += [[output], list(range(output)) if 0 < output <= 8 else [output, 0]]
        if isinstance(output, tuple):
            out += [[v] for v in ints[:2]] + ([strs] if strs else [])
        out += [[], [1], [1, 2, 3], [0]]
        if kind == "tuple":
            out = [tuple(v) for v in out]
        elif kind == "set":
            out = [set(v) for v in out if all(isinstance(x, int | str | float | tuple) for x in v)]
    elif kind == "dict":
        if isinstance(output, dict):
            out.append(output)
            keys = list(output)
            for k in keys:  # what a function that adds one key started from
                out.append({key: v for key, v in output.items() if key != k})
        elif isinstance(output, list | tuple) and all(isinstance(v, tuple) and len(v) == 2 for v in output):
            out.append(dict(output))
        out += [{}, {"a": 1}]
    unique: list[Any] = []
    texts: set[str] = set()
    for value in out:
        text = repr(value)
        if text not in texts and len(text) <= 400:
            texts.add(text)
            unique.append(value)
    return unique


def f_definition(code: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The definition of `f` in `code` (None: no such function, or not Python)."""
    try:
        return StaticCode.from_source(code).defs.get("f")
    except CodeError:
        return None


def input_guesses(code: str, output: str, limit: int = 24) -> list[str]:
    """Argument texts for `f(...)` (see the module docstring), simplest and likeliest first; [] when `f`
    is not a plain function of positional parameters or the output is not a literal."""
    definition = f_definition(code)
    if definition is None:
        return []
    a = definition.args
    if a.vararg or a.kwarg or a.kwonlyargs:
        return []
    ok, value = literal_value(output)
    if not ok:
        return []
    kinds = parameter_kinds(definition)
    constants = _constants(definition)
    params = [p.arg for p in (*a.posonlyargs, *a.args)]
    required = len(params) - len(a.defaults)
    if not params:
        return []
    own = _kind_of(value)
    per_param: list[list[Any]] = []
    for param in params[:max(required, 1)]:
        likely = kinds.get(param, [])[:2] or ([own] if own and len(params) == 1 else ["int", "str"])
        if len(params) == 1 and own and own not in likely:
            likely = [*likely, own]
        values: list[Any] = []
        for kind in likely:
            values += [v for v in _values(kind, value, constants) if repr(v) not in map(repr, values)]
        per_param.append(values[: {1: 12, 2: 8, 3: 5}.get(max(required, 1), 3)])
    out: list[str] = []
    seen: set[str] = set()
    ranked = sorted(
        itertools.product(*(range(len(values)) for values in per_param)), key=lambda ix: (sum(ix), max(ix))
    )
    for combo in ranked:
        text = ", ".join(repr(per_param[i][j]) for i, j in enumerate(combo))
        if text not in seen and text != output:
            seen.add(text)
            out.append(text)
        if len(out) >= limit:
            break
    return out


def _kind_of(value: Any) -> str | None:
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list),
                        ("dict", dict), ("set", set | frozenset), ("tuple", tuple)):
        if isinstance(value, types):
            return kind
    return None


__all__ = ["KINDS", "f_definition", "input_guesses", "parameter_kinds"]
