"""A safe evaluator for conditions, watch and print expressions over recorded values (never eval)."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from replay.timeline import TimelineError, Value
from tracer.objects import OpaqueValue


class EvalError(Exception):
    """An expression cannot be evaluated over the recorded values (one sentence for the user)."""


@dataclass(frozen=True, slots=True)
class Opaque:
    """A recorded value that is not a Python literal: only its repr text is known."""

    text: str

    def __repr__(self) -> str:
        return self.text


# Pure builtins whose result depends only on their (literal) arguments.
_BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs, "all": all, "any": any, "bool": bool, "chr": chr, "dict": dict, "divmod": divmod,
    "float": float, "frozenset": frozenset, "hex": hex, "int": int, "len": len, "list": list, "max": max,
    "min": min, "oct": oct, "ord": ord, "range": range, "reversed": reversed, "round": round, "set": set,
    "sorted": sorted, "str": str, "sum": sum, "tuple": tuple, "repr": repr, "bin": bin,
    "enumerate": enumerate, "zip": zip, "isinstance": isinstance,
}
_CONSTANT_NAMES: dict[str, object] = {
    "True": True, "False": False, "None": None, "int": int, "str": str, "float": float, "list": list,
    "dict": dict, "tuple": tuple, "set": set, "bool": bool, "bytes": bytes, "frozenset": frozenset,
}
# Methods of builtin values that only read.
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"startswith", "endswith", "upper", "lower", "strip", "lstrip", "rstrip", "split",
                    "count", "find", "index", "isdigit", "isalpha", "isspace", "join", "replace", "title"}),
    bytes: frozenset({"startswith", "endswith", "count", "find", "decode", "hex"}),
    list: frozenset({"count", "index", "copy"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "keys", "values", "items", "copy"}),
    set: frozenset({"issubset", "issuperset", "union", "intersection", "difference", "copy"}),
    frozenset: frozenset({"issubset", "issuperset", "union", "intersection", "difference"}),
    int: frozenset({"bit_length", "real", "imag"}),
    float: frozenset({"is_integer", "real", "imag"}),
    complex: frozenset({"real", "imag", "conjugate"}),
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
    ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_, ast.Invert: operator.invert,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_MAX_SIZE = 100_000  # results of * and ** beyond this are refused: a condition must not hang replay


def _size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 8
    if isinstance(value, str | bytes | list | tuple):
        return len(value)
    return 0


class Expression:
    """A parsed, checked expression; evaluate() it against a frame's recorded locals."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as exc:
            raise EvalError(f"invalid syntax in {self.text!r}: {exc.msg}") from None
        self._tree = tree.body
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Lambda | ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom |
                            ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp | ast.Starred):
                raise EvalError(f"{type(node).__name__} is not supported in replay expressions")
        self.names = frozenset(names)

    def evaluate(self, names: Mapping[str, Value], extra: Mapping[str, object] | None = None) -> object:
        """The expression's value; raises EvalError for anything the recorded values cannot answer."""
        try:
            return _Evaluator(names, extra or {}).visit(self._tree)
        except EvalError:
            raise
        except RecursionError:
            raise EvalError(f"{self.text!r} is too deeply nested") from None
        except Exception as exc:  # the expression's own error, e.g. ZeroDivisionError or KeyError
            raise EvalError(f"{type(exc).__name__}: {exc}") from None


class _Evaluator:
    def __init__(self, names: Mapping[str, Value], extra: Mapping[str, object]) -> None:
        self.names = names
        self.extra = extra

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise EvalError(f"{type(node).__name__} is not supported in replay expressions")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.extra:
            return self.extra[node.id]
        value = self.names.get(node.id)
        if value is None:
            if node.id in _CONSTANT_NAMES:
                return _CONSTANT_NAMES[node.id]
            if node.id in _BUILTINS:
                return _BUILTINS[node.id]
            raise EvalError(f"name {node.id!r} is not defined")
        if value.literal:
            return value.python()
        if value.full is not None:  # a container too long for its text, recorded whole: rebuilt
            try:
                return value.full()
            except TimelineError as exc:
                raise EvalError(str(exc)) from None
        return Opaque(value.text)

    def _plain(self, value: Any, node: ast.AST) -> Any:
        if isinstance(value, Opaque | OpaqueValue):
            raise EvalError(f"{ast.unparse(node)} is {value.text}, which was recorded only as text")
        return value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left = self._plain(self.visit(node.left), node.left)
        right = self._plain(self.visit(node.right), node.right)
        op = type(node.op)
        if op not in _BINARY:
            raise EvalError(f"operator {type(node.op).__name__} is not supported")
        if op is ast.Pow and isinstance(right, int) and abs(right) > 10_000:
            raise EvalError("exponent too large")
        if op is ast.Mult and (_size(left) * (right if isinstance(right, int) else 1) > _MAX_SIZE or
                               _size(right) * (left if isinstance(left, int) else 1) > _MAX_SIZE):
            raise EvalError("result too large")
        if op is ast.LShift and isinstance(right, int) and right > 100_000:
            raise EvalError("shift too large")
        return _BINARY[op](left, right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not self._truth(operand, node.operand)
        return _UNARY[type(node.op)](self._plain(operand, node.operand))

    def _truth(self, value: Any, node: ast.AST) -> bool:
        return bool(self._plain(value, node))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        result: Any = None
        for value_node in node.values:
            result = self.visit(value_node)
            truth = self._truth(result, value_node)
            if isinstance(node.op, ast.And) and not truth:
                return result
            if isinstance(node.op, ast.Or) and truth:
                return result
        return result

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        left_node: ast.AST = node.left
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            if isinstance(op, ast.Eq | ast.NotEq) and (isinstance(left, Opaque) or isinstance(right, Opaque)):
                # Opaque values compare by their repr text, and only with each other.
                same = isinstance(left, Opaque) and isinstance(right, Opaque) and left.text == right.text
                ok = same if isinstance(op, ast.Eq) else not same
            else:
                ok = _COMPARE[type(op)](self._plain(left, left_node), self._plain(right, right_node))
            if not ok:
                return False
            left, left_node = right, right_node
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        chosen = node.body if self._truth(self.visit(node.test), node.test) else node.orelse
        return self.visit(chosen)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        container = self._plain(self.visit(node.value), node.value)
        key = self.visit(node.slice)
        return container[self._plain(key, node.slice)]

    def visit_Slice(self, node: ast.Slice) -> Any:
        parts = [None if part is None else self._plain(self.visit(part), part)
                 for part in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(element) for element in node.elts)

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(element) for element in node.elts]

    def visit_Set(self, node: ast.Set) -> Any:
        return {self._plain(self.visit(element), element) for element in node.elts}

    def visit_Dict(self, node: ast.Dict) -> Any:
        result = {}
        for key_node, value_node in zip(node.keys, node.values):
            if key_node is None:
                raise EvalError("** in a dict display is not supported")
            result[self._plain(self.visit(key_node), key_node)] = self.visit(value_node)
        return result

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        return "".join(str(self.visit(part)) for part in node.values)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        value = self.visit(node.value)
        if isinstance(value, Opaque):
            return value.text
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = "" if node.format_spec is None else self.visit(node.format_spec)
        if any(len(digits) > 4 for digits in re.findall(r"[0-9]+", spec)):
            raise EvalError("format width too large")
        return format(value, spec)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        owner = self.visit(node.value)
        if isinstance(owner, Opaque):
            raise EvalError(f"cannot read .{node.attr} of {owner.text}: only its repr was recorded")
        allowed = _METHODS.get(type(owner), frozenset())
        if node.attr not in allowed:
            raise EvalError(f"attribute {node.attr!r} of {type(owner).__name__} is not available in replay")
        return getattr(owner, node.attr)

    def visit_Call(self, node: ast.Call) -> Any:
        func = self.visit(node.func)
        args = [self.visit(arg) for arg in node.args]
        kwargs = {kw.arg: self.visit(kw.value) for kw in node.keywords if kw.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise EvalError("** arguments are not supported")
        if (func is repr or func is str) and len(args) == 1 and isinstance(args[0], Opaque):
            return args[0].text  # an opaque value's repr is exactly what was recorded
        if not callable(func) or not (func in _BUILTINS.values() or func in _CONSTANT_NAMES.values() or
                                      getattr(func, "__self__", None) is not None):
            raise EvalError(f"{ast.unparse(node.func)} cannot be called in replay")
        plain = [self._plain(arg, arg_node) for arg, arg_node in zip(args, node.args)]
        plain_kwargs = {key: self._plain(value, node) for key, value in kwargs.items()}
        if func is range and any(isinstance(a, int) and abs(a) > 10**6 for a in plain):
            raise EvalError("range too large")
        result = func(*plain, **plain_kwargs)
        if isinstance(result, range | reversed | enumerate | zip):
            result = list(result)
        return result


def parse_expression(text: str) -> Expression:
    """Parse and check an expression; raises EvalError for syntax errors and unsupported constructs."""
    if not text.strip():
        raise EvalError("an expression is required")
    return Expression(text)


def truthy(expression: Expression, names: Mapping[str, Value],
           extra: Mapping[str, object] | None = None) -> bool:
    """The truth of a condition; raises EvalError when it cannot be decided from recorded values."""
    result = expression.evaluate(names, extra)
    if isinstance(result, Opaque):
        raise EvalError(f"the truth of {result.text} was not recorded")
    try:
        return bool(result)
    except Exception as exc:
        raise EvalError(f"{type(exc).__name__}: {exc}") from None
