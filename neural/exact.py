"""Values the code decides without a model: a simple assignment's new value, a `return EXPR`'s value.

Only a small, exact subset of Python is evaluated here, over locals whose reprs are Python literals: the
result must be what the program itself would compute, or nothing is computed (the model then predicts).
Evaluated: literals and names, arithmetic and comparisons, `and`/`or`/`not`, conditional expressions,
subscripts and slices, list/tuple/dict/set displays, a few pure builtins (len, abs, min, max, sum, sorted,
str, int, float, bool, list, tuple, round, ord, chr, repr) and read-only methods of str, list and dict.
A result is kept only when its repr is short (as the recorder would write it in full) and does not depend
on string hashing (a set of strings prints in an order that changes from run to run).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

from neural.constraints import StaticCode, literal_value
from neural.trajectory import State

MAX_REPR = 200  # longer results are left to the model (the recorder may cut long reprs)


class NotExact(Exception):
    """The expression is outside what is evaluated here, or its value is not certain."""


_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len, "abs": abs, "min": min, "max": max, "sum": sum, "sorted": sorted, "str": str, "int": int,
    "float": float, "bool": bool, "list": list, "tuple": tuple, "round": round, "ord": ord, "chr": chr,
    "repr": repr,
}
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"upper", "lower", "strip", "lstrip", "rstrip", "split", "join", "replace", "startswith",
                    "endswith", "find", "count", "index", "isdigit", "isalpha", "isalnum", "isspace",
                    "isupper", "islower", "title", "capitalize", "swapcase", "zfill", "rsplit"}),
    list: frozenset({"index", "count", "copy"}),
    tuple: frozenset({"index", "count"}),
    dict: frozenset({"get", "copy"}),
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_EXACT_TYPES = (int, float, str, bytes, bool, type(None), list, tuple, dict)


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 8
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 1


class _Evaluator:
    def __init__(self, names: Mapping[str, Any], builtins: frozenset[str]) -> None:
        self.names = names
        self.builtins = builtins

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise NotExact(type(node).__name__)
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, _EXACT_TYPES):
            raise NotExact("constant")
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.builtins:
            return _BUILTINS[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise NotExact(f"unknown name {node.id}")

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = _BINARY.get(type(node.op))
        if op is None or callable(left) or callable(right):
            raise NotExact("operator")
        if isinstance(node.op, ast.Pow) and (not isinstance(right, int) or abs(right) > 64):
            raise NotExact("power")
        if isinstance(node.op, ast.Mult) and (
            (isinstance(right, int) and _size(left) * abs(right) > 10_000)
            or (isinstance(left, int) and _size(right) * abs(left) > 10_000)
        ):
            raise NotExact("too large")
        return op(left, right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for value in node.values:
            result = self.visit(value)
            if isinstance(node.op, ast.And) != bool(result):
                return result
        return result

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            compare = _COMPARE.get(type(op))
            if compare is None:
                raise NotExact("comparison")
            right = self.visit(right_node)
            if not compare(left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body if self.visit(node.test) else node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        container = self.visit(node.value)
        if not isinstance(container, list | tuple | str | bytes | dict):
            raise NotExact("subscript")
        return container[self.visit(node.slice)]

    def visit_Slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if part is None else self.visit(part) for part in parts))

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(element) for element in node.elts)

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(element) for element in node.elts]

    def visit_Set(self, node: ast.Set) -> Any:
        return {self.visit(element) for element in node.elts}

    def visit_Dict(self, node: ast.Dict) -> Any:
        out = {}
        for key, value in zip(node.keys, node.values):
            if key is None:
                raise NotExact("** in a dict display")
            out[self.visit(key)] = self.visit(value)
        return out

    def visit_Call(self, node: ast.Call) -> Any:
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise NotExact("*args")
        keywords = {kw.arg: self.visit(kw.value) for kw in node.keywords if kw.arg is not None}
        if len(keywords) != len(node.keywords) or set(keywords) - {"reverse", "start"}:
            raise NotExact("keyword arguments")  # key= functions are code: not evaluated here
        args = [self.visit(arg) for arg in node.args]
        if any(isinstance(a, int) and abs(a) > 100_000 for a in [*args, *keywords.values()]):
            raise NotExact("large argument")
        if isinstance(node.func, ast.Attribute):
            owner = self.visit(node.func.value)
            if node.func.attr not in _METHODS.get(type(owner), frozenset()):
                raise NotExact("method")
            return getattr(owner, node.func.attr)(*args, **keywords)
        func = self.visit(node.func)
        if func not in _BUILTINS.values() or any(callable(a) for a in args):
            raise NotExact("call")
        return func(*args, **keywords)


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether a value's repr is certain: builtin containers of builtin scalars, no set of strings."""
    if depth > 20:
        return False
    if isinstance(value, bool | int | float | str | bytes | type(None)):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return all(isinstance(item, int | float | bool | type(None)) for item in value)
    return False


def evaluate(expression: ast.expr, locals_: Mapping[str, str], shadowed: frozenset[str]) -> str:
    """The repr of `expression` over `locals_` (reprs), or NotExact; `shadowed`: names that hide builtins."""
    names: dict[str, Any] = {}
    used = {node.id for node in ast.walk(expression) if isinstance(node, ast.Name)}
    for name in used & set(locals_):
        ok, value = literal_value(locals_[name])
        if not ok or not _plain(value):
            raise NotExact(f"{name} is not a plain literal")
        names[name] = value
    builtins = frozenset(_BUILTINS) - shadowed - set(locals_)
    try:
        result = _Evaluator(names, builtins).visit(expression)
    except NotExact:
        raise
    except Exception as exc:  # the program would raise here: not a value
        raise NotExact(type(exc).__name__) from None
    if not _plain(result):
        raise NotExact("result")
    text = repr(result)
    if len(text) > MAX_REPR:
        raise NotExact("long")
    return text


# -- the statements -----------------------------------------------------------------------------------------
def _statement(static: StaticCode, func: str, line: int) -> tuple[ast.stmt, list[ast.AST]] | None:
    """The one simple statement that starts and ends on `line` of `func`, with its enclosing nodes."""
    root: ast.AST
    if func == "<module>":
        root = static.tree
    else:
        definition = static.defs.get(func)
        if definition is None:
            return None
        root = definition
    found: list[tuple[ast.stmt, list[ast.AST]]] = []
    todo: list[tuple[ast.AST, list[ast.AST]]] = [(child, [root]) for child in ast.iter_child_nodes(root)]
    while todo:
        node, parents = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
                return None  # a definition's line (or a line inside another code object)
            continue
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            found.append((node, parents))
        todo.extend((child, [*parents, node]) for child in ast.iter_child_nodes(node))
    simple = [(node, parents) for node, parents in found if node.lineno == line == node.end_lineno]
    if len(found) != 1 or len(simple) != 1:
        return None  # a compound statement's line, or several statements on one line
    return simple[0]


def _shadowed(static: StaticCode, func: str) -> frozenset[str]:
    info = static.functions.get(func)
    return static.global_stores | (info.names if info is not None else frozenset())


def assigned(static: StaticCode, previous: State) -> dict[str, str]:
    """The names `previous`'s line binds and their new reprs, when that line is `NAME = EXPR` (or
    `A, B = X, Y`, or `NAME += EXPR` on an immutable value) and every value is certain; else {}.

    Valid for the next state of the same frame that is a "line" (the statement completed).
    """
    if previous.event != "line":
        return {}
    found = _statement(static, previous.func, previous.line)
    if found is None:
        return {}
    node = found[0]
    shadowed = _shadowed(static, previous.func)
    try:
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            expression: ast.expr = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
            ok, value = literal_value(previous.locals.get(node.target.id, ""))
            if not ok or isinstance(value, list | dict | set):  # in place on a mutable: not a rebinding
                return {}
            return {node.target.id: evaluate(expression, previous.locals, shadowed)}
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            return {}
        target = node.targets[0]
        if isinstance(target, ast.Name):
            return {target.id: evaluate(node.value, previous.locals, shadowed)}
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            names = [t.id for t in target.elts if isinstance(t, ast.Name)]
            values = node.value.elts
            if len(names) != len(target.elts) or len(values) != len(names) or len(set(names)) != len(names):
                return {}
            return {name: evaluate(value, previous.locals, shadowed) for name, value in zip(names, values)}
    except NotExact:
        return {}
    return {}


def returned(static: StaticCode, previous: State) -> str | None:
    """The value of `return EXPR` on `previous`'s line, when certain (not inside try or with)."""
    if previous.event != "line":
        return None
    found = _statement(static, previous.func, previous.line)
    if found is None or not isinstance(found[0], ast.Return):
        return None
    node, parents = found
    assert isinstance(node, ast.Return)
    if any(isinstance(p, ast.Try | ast.TryStar | ast.With | ast.AsyncWith) for p in parents):
        return None  # a finally or __exit__ runs after the value is computed
    if node.value is None:
        return "None"
    try:
        return evaluate(node.value, previous.locals, _shadowed(static, previous.func))
    except NotExact:
        return None


__all__ = ["MAX_REPR", "NotExact", "assigned", "evaluate", "returned"]
