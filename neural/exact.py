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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from neural.constraints import StaticCode, is_immutable, literal_value
from neural.trajectory import State

MAX_REPR = 200  # longer results are left to the model (the recorder may cut long reprs)


class NotExact(Exception):
    """The expression is outside what is evaluated here, or its value is not certain."""


class Raised(NotExact):
    """The statement certainly raises `error` (a builtin operation on plain values failed, before the
    statement changed anything)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(type(error).__name__)
        self.error = error


# Exceptions whose type and message are the program's own when a builtin operation raises them here.
CERTAIN_ERRORS = (KeyError, IndexError, ZeroDivisionError, ValueError)


class _Module:
    """A pure standard module's functions and constants, as the program's plain `import` gives them."""

    def __init__(self, name: str, names: list[str]) -> None:
        self.name = name
        module = __import__(name)
        self.members = {n: getattr(module, n) for n in names}


_MODULES = {
    "math": _Module("math", [
        "sqrt", "isqrt", "floor", "ceil", "trunc", "gcd", "lcm", "factorial", "comb", "perm", "prod", "fsum",
        "log", "log2", "log10", "exp", "pow", "fabs", "hypot", "isclose", "isfinite", "isinf", "isnan",
        "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "degrees", "radians", "copysign", "fmod",
        "pi", "e", "tau", "inf", "nan",
    ]),
}
_GROWING = frozenset({"factorial", "comb", "perm"})  # results that outgrow any repr limit
IMPORTED = "import:"  # marks, in a shadowed set, a module name that is the plainly imported module


def _known(shadowed: frozenset[str], locals_: Mapping[str, str]) -> frozenset[str]:
    """The builtins and plainly imported pure modules a name may refer to."""
    names = frozenset(_BUILTINS) - shadowed - set(locals_)
    return names | {m for m in _MODULES if IMPORTED + m in shadowed and m not in locals_}


def _next(it: Any, *default: Any) -> Any:
    """next() of a generator expression's items (any other value here is no iterator: it raises)."""
    if not isinstance(it, _Gen):
        raise NotExact("next() of a value that may be an iterator")
    return next(iter(it), *default)


_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len, "abs": abs, "min": min, "max": max, "sum": sum, "sorted": sorted, "str": str, "int": int,
    "float": float, "bool": bool, "list": list, "tuple": tuple, "round": round, "ord": ord, "chr": chr,
    "repr": repr, "any": any, "all": all, "divmod": divmod, "range": range, "enumerate": enumerate,
    "zip": zip, "reversed": reversed, "set": set, "dict": dict, "type": type, "isinstance": isinstance,
    "next": _next,
}
# Builtins whose result depends on the order they iterate an argument in: never given a set, whose
# parsed order may differ from the program's.
_ORDERED = frozenset({list, tuple, enumerate, zip, reversed, dict})
_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"upper", "lower", "strip", "lstrip", "rstrip", "split", "join", "replace", "startswith",
                    "endswith", "find", "count", "index", "isdigit", "isalpha", "isalnum", "isspace",
                    "isupper", "islower", "title", "capitalize", "swapcase", "zfill", "rsplit", "center",
                    "ljust", "rjust", "partition", "rpartition", "splitlines", "casefold", "removeprefix",
                    "removesuffix", "isnumeric", "isdecimal", "rfind", "rindex"}),
    list: frozenset({"index", "count", "copy"}),
    tuple: frozenset({"index", "count"}),
    dict: frozenset({"get", "copy", "keys", "values", "items"}),
    set: frozenset({"copy", "union", "intersection", "difference", "symmetric_difference", "issubset",
                    "issuperset", "isdisjoint"}),
}
# Methods that change their object: evaluated only by a statement (`execute`), on a local's own value.
_MUTATORS: dict[type, frozenset[str]] = {
    list: frozenset({"append", "extend", "insert", "pop", "remove", "clear", "reverse", "sort"}),
    dict: frozenset({"setdefault", "pop", "popitem", "clear", "update"}),
    set: frozenset({"add", "discard", "remove", "clear", "update", "difference_update",
                    "intersection_update"}),
}
_SCOPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)
_TAKES_ITERABLES = frozenset({sum, min, max, sorted, list, tuple, set, dict, any, all, enumerate, zip, _next})
MAX_ITEMS = 10_000  # longest sequence a comprehension or loop is evaluated over
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
    ast.Is: lambda a, b: _identity(a, b), ast.IsNot: lambda a, b: not _identity(a, b),
}


def _identity(a: Any, b: Any) -> bool:
    """`a is b` where the answer does not depend on object identity the repr cannot show: one side is
    None, a bool or a class (`x is None`, `type(x) is int`)."""
    if any(v is None or isinstance(v, bool | type) for v in (a, b)):
        return a is b
    raise NotExact("identity")


_INPLACE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.iadd, ast.Sub: operator.isub, ast.Mult: operator.imul, ast.Div: operator.itruediv,
    ast.FloorDiv: operator.ifloordiv, ast.Mod: operator.imod, ast.BitOr: operator.ior,
    ast.BitXor: operator.ixor, ast.BitAnd: operator.iand,
}
_EXACT_TYPES = (int, float, str, bytes, bool, type(None), list, tuple, dict)


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 8
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 1


class _Gen(list[Any]):
    """A generator expression's items (only a call's argument may be one: never a value)."""


class _Evaluator:
    def __init__(self, names: Mapping[str, Any], builtins: frozenset[str], mutate: bool = False) -> None:
        self.names = names
        self.builtins = builtins
        self.mutate = mutate  # a statement: methods that change a local's own value are allowed
        self.mutated: set[str] = set()
        self.key_values: Callable[[Any], Any] | None = None  # a key lambda's values, already computed

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
        if not isinstance(node.ctx, ast.Load):
            raise NotExact("store")
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.builtins:
            return _BUILTINS[node.id] if node.id in _BUILTINS else _MODULES[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise NotExact(f"unknown name {node.id}")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        owner = self.visit(node.value)
        member = owner.members.get(node.attr) if isinstance(owner, _Module) else None
        if member is not None and not callable(member):
            return member  # math.pi
        raise NotExact("attribute")

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
        if isinstance(container, _Gen) or not isinstance(container, list | tuple | str | bytes | dict):
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
        owner: Any = None
        if isinstance(node.func, ast.Attribute):  # the object first, as Python evaluates it
            owner = self.visit(node.func.value)
        keywords = {
            kw.arg: self._key(kw.value) if kw.arg == "key" else self.visit(kw.value)
            for kw in node.keywords if kw.arg is not None
        }
        if len(keywords) != len(node.keywords) or set(keywords) - {"reverse", "start", "default", "key"}:
            raise NotExact("keyword arguments")
        args = [self.visit(arg) for arg in node.args]
        if any(isinstance(a, int) and abs(a) > 100_000 for a in [*args, *keywords.values()]):
            raise NotExact("large argument")
        if isinstance(owner, _Module):
            member = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            function = owner.members.get(member)
            if not callable(function) or keywords or any(isinstance(a, _Gen) or callable(a) for a in args):
                raise NotExact("a module function")
            if member in _GROWING and any(isinstance(a, int) and abs(a) > 1000 for a in args):
                raise NotExact("a huge result")  # (factorial(99999) would take seconds to compute and print)
            return function(*args)
        if isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in _MUTATORS.get(type(owner), frozenset()):
                receiver = node.func.value
                if not self.mutate or not isinstance(receiver, ast.Name) or receiver.id not in self.names:
                    raise NotExact("a method that changes its object")
                if attr == "sort" and any(isinstance(a, _Gen) for a in args):
                    raise NotExact("sort")
                self.mutated.add(receiver.id)
            elif attr not in _METHODS.get(type(owner), frozenset()):
                raise NotExact("method")
            if attr == "join" and any(isinstance(a, set | frozenset) for a in args):
                raise NotExact("a set's order")
            if any(isinstance(a, _Gen) for a in args) and attr not in ("join", "extend", "update"):
                raise NotExact("a generator where Python would not take one")
            return getattr(owner, attr)(*args, **keywords)
        func = self.visit(node.func)
        if func not in _BUILTINS.values() or any(callable(a) for a in args):
            raise NotExact("call")
        if any(isinstance(a, _Gen) for a in args) and func not in _TAKES_ITERABLES:
            raise NotExact("a generator where Python would not take one")
        if func in _ORDERED and any(isinstance(a, set | frozenset) for a in args):
            raise NotExact("a set's order")
        if "key" in keywords and func not in (min, max, sorted):
            raise NotExact("key=")
        if func is range and (len(range(*args)) > MAX_ITEMS):
            raise NotExact("long range")
        return func(*args, **keywords)

    def _key(self, node: ast.expr) -> Any:
        """A key= function that runs no traced code: a pure builtin (`len`, `abs`, `str`...), a read-only
        method of a local (`counts.get`) or of a builtin type (`str.lower`). A lambda is traced code."""
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Lambda) and self.key_values is not None:
            return self.key_values  # the lambda's values, computed one per item in its own frame
        if isinstance(node, ast.Name):
            found = self.visit(node)
            if found in _BUILTINS.values() and found not in (range, enumerate, zip, reversed):
                return found
            raise NotExact("key function")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = node.value.id
            if name in self.names:
                owner = self.names[name]
                if node.attr in _METHODS.get(type(owner), frozenset()):
                    return getattr(owner, node.attr)
            elif name in ("str", "list", "tuple", "dict") and name in self.builtins:
                kind = {"str": str, "list": list, "tuple": tuple, "dict": dict}[name]
                if node.attr in _METHODS[kind]:
                    return getattr(kind, node.attr)
        raise NotExact("key function")

    # -- comprehensions: their own scope over the names, each generator's items in order -------------------
    def _items(self, iterable: Any) -> list[Any]:
        if isinstance(iterable, set | frozenset):
            raise NotExact("a set's order")
        if not isinstance(iterable, list | tuple | str | bytes | dict | range | enumerate | zip | reversed) \
                and type(iterable).__name__ not in ("dict_keys", "dict_values", "dict_items"):
            raise NotExact("iteration")
        items = list(iterable)
        if len(items) > MAX_ITEMS:
            raise NotExact("too many items")
        return items

    def _comprehension(self, generators: list[ast.comprehension], emit: Callable[[], None]) -> None:
        outer = self.names

        def loop(index: int, names: dict[str, Any]) -> None:
            if index == len(generators):
                self.names = names
                emit()
                return
            generator = generators[index]
            if generator.is_async:
                raise NotExact("async")
            self.names = names
            for item in self._items(self.visit(generator.iter)):
                inner = dict(names)
                bind(generator.target, item, inner)
                self.names = inner
                if all(self.visit(condition) for condition in generator.ifs):
                    loop(index + 1, inner)

        try:
            loop(0, dict(outer))
        finally:
            self.names = outer

    def visit_ListComp(self, node: ast.ListComp) -> Any:
        out: list[Any] = []
        self._comprehension(node.generators, lambda: out.append(self.visit(node.elt)))
        return out

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        out = _Gen()
        self._comprehension(node.generators, lambda: out.append(self.visit(node.elt)))
        return out

    def visit_SetComp(self, node: ast.SetComp) -> Any:
        out: set[Any] = set()
        self._comprehension(node.generators, lambda: out.add(self.visit(node.elt)))
        return out

    def visit_DictComp(self, node: ast.DictComp) -> Any:
        out: dict[Any, Any] = {}

        def emit() -> None:
            key = self.visit(node.key)
            out[key] = self.visit(node.value)

        self._comprehension(node.generators, emit)
        return out

    def visit_JoinedStr(self, node: ast.JoinedStr) -> Any:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                if value.format_spec is not None:
                    raise NotExact("format spec")
                item = self.visit(value.value)
                if value.conversion == ord("r"):
                    parts.append(repr(item))
                elif value.conversion in (-1, ord("s")) and isinstance(item, int | float | str | bool):
                    parts.append(str(item))
                else:
                    raise NotExact("conversion")
            else:
                raise NotExact("f-string")
        return "".join(parts)


def bind(target: ast.expr, value: Any, names: dict[str, Any]) -> None:
    """Bind a loop's or comprehension's target (a name or nested tuples of names), as Python unpacks."""
    if isinstance(target, ast.Name):
        names[target.id] = value
        return
    if isinstance(target, ast.Tuple | ast.List) and not any(isinstance(t, ast.Starred) for t in target.elts):
        if isinstance(value, set | frozenset | dict):
            raise NotExact("unpacking order")
        items = list(value)  # a TypeError (not iterable) means the program raises: not exact
        if len(items) != len(target.elts):
            raise NotExact("unpacking")
        for sub, item in zip(target.elts, items):
            bind(sub, item, names)
        return
    raise NotExact("target")


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether a value's repr is certain: builtin containers of builtin scalars, no set of strings."""
    if depth > 20:
        return False
    if isinstance(value, bool | int | float | str | bytes | type(None)):
        return True
    if type(value) is list or type(value) is tuple:
        return all(_plain(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if type(value) is set or type(value) is frozenset:
        return all(isinstance(item, int | float | bool | type(None)) for item in value)
    return False


def _parsed(nodes: Iterable[ast.AST], locals_: Mapping[str, str]) -> dict[str, Any]:
    """The plain values of the locals `nodes` name (NotExact when one is not a plain literal)."""
    names: dict[str, Any] = {}
    used = {node.id for root in nodes for node in ast.walk(root) if isinstance(node, ast.Name)}
    for name in used & set(locals_):
        ok, value = literal_value(locals_[name])
        if not ok or not _plain(value):
            raise NotExact(f"{name} is not a plain literal")
        names[name] = value
    return names


def _canonical(value: Any, depth: int = 0) -> bool:
    """Whether `value`'s repr is the program's: a set prints in its hash table's order, which depends on
    how it was built; certain only for ints 0..7 (each in its own slot of any table: sorted order)."""
    if depth > 20:
        return False
    if type(value) is set or type(value) is frozenset:
        return all(type(item) is int and 0 <= item < 8 for item in value)
    if type(value) is list or type(value) is tuple:
        return all(_canonical(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(_canonical(k, depth + 1) and _canonical(v, depth + 1) for k, v in value.items())
    return True


def _text(result: Any) -> str:
    if not _plain(result) or not _canonical(result):
        raise NotExact("result")
    text = repr(result)
    if len(text) > MAX_REPR:
        raise NotExact("long")
    return text


def value_of(
    expression: ast.expr,
    locals_: Mapping[str, str],
    shadowed: frozenset[str],
    key_values: Callable[[Any], Any] | None = None,
) -> Any:
    """The value of `expression` over `locals_` (reprs), or NotExact; `shadowed`: names that hide builtins;
    `key_values`: a key lambda's values, already computed (see execute)."""
    names = _parsed([expression], locals_)
    builtins = _known(shadowed, locals_)
    try:
        evaluator = _Evaluator(names, builtins)
        evaluator.key_values = key_values
        return evaluator.visit(expression)
    except NotExact:
        raise
    except Exception as exc:  # the program would raise here: not a value
        if type(exc) in CERTAIN_ERRORS:
            raise Raised(exc) from None
        raise NotExact(type(exc).__name__) from None


def certain_repr(value: Any) -> str:
    """The repr the program would show for `value` (NotExact when not certain, or too long)."""
    return _text(value)


def evaluate(
    expression: ast.expr,
    locals_: Mapping[str, str],
    shadowed: frozenset[str],
    key_values: Callable[[Any], Any] | None = None,
) -> str:
    """The repr of `expression` over `locals_` (reprs), or NotExact; `shadowed`: names that hide builtins."""
    return _text(value_of(expression, locals_, shadowed, key_values))


def execute(
    node: ast.stmt,
    locals_: Mapping[str, str],
    shadowed: frozenset[str],
    mutated: set[str] | None = None,
    key_values: Callable[[Any], Any] | None = None,
) -> dict[str, str]:
    """Run one simple statement over `locals_`: the new reprs of the names it binds or changes directly.

    Assignments (to names, tuples of names, a local's item), augmented assignments (in place on a list,
    dict or set), `del` of a local's item, and calls of a local's own methods (`xs.append(v)`,
    `d.setdefault(k, [])`, `x = xs.pop()`). Only a local's own items change, never an object inside it
    (the repr does not show which inner objects are shared). Other names that may share the changed
    object are not in the result: the model decides them. `mutated` receives the names whose object
    changed in place (not rebound).
    """
    names = _parsed([node], locals_)
    inplace: set[str] = set()
    builtins = _known(shadowed, locals_)
    ev = _Evaluator(names, builtins, mutate=True)
    ev.key_values = key_values
    changed: set[str] = set()

    def store(target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            names[target.id] = value
            changed.add(target.id)
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            container = names.get(target.value.id)
            if type(container) is not list and type(container) is not dict:
                raise NotExact("item store")
            container[ev.visit(target.slice)] = value
            changed.add(target.value.id)
            inplace.add(target.value.id)
        elif isinstance(target, ast.Tuple | ast.List):
            unordered = isinstance(value, set | frozenset | dict)  # its order is not certain
            if unordered or any(isinstance(t, ast.Starred) for t in target.elts):
                raise NotExact("unpacking")
            items = list(value)  # the whole value first, then each target in turn, as Python assigns
            if len(items) != len(target.elts):
                raise NotExact("unpacking")
            for sub, item in zip(target.elts, items):
                store(sub, item)
        else:
            raise NotExact("target")

    try:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            ev.visit(node.value)
        elif isinstance(node, ast.Assign):
            value = ev.visit(node.value)
            if isinstance(value, _Gen):
                raise NotExact("generator")
            for target in node.targets:
                store(target, value)
        elif isinstance(node, ast.AugAssign):
            op = _INPLACE.get(type(node.op))
            if op is None:
                raise NotExact("operator")
            if isinstance(node.target, ast.Name):
                name = node.target.id
                if name not in names:
                    raise NotExact("unbound")
                if not is_immutable(names[name]):
                    inplace.add(name)  # `xs += [v]` extends xs's own object
                names[name] = op(names[name], ev.visit(node.value))
                changed.add(name)
            elif isinstance(node.target, ast.Subscript) and isinstance(node.target.value, ast.Name):
                container = names.get(node.target.value.id)
                if type(container) is not list and type(container) is not dict:
                    raise NotExact("item store")
                key = ev.visit(node.target.slice)
                if not is_immutable(container[key]):
                    raise NotExact("in place on an inner object")  # it may be shared
                container[key] = op(container[key], ev.visit(node.value))
                changed.add(node.target.value.id)
                inplace.add(node.target.value.id)
            else:
                raise NotExact("target")
        elif isinstance(node, ast.Assert):
            if not ev.visit(node.test):
                raise NotExact("the assertion fails")  # (AssertionError, with a message to evaluate)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)):
                    raise NotExact("del")
                container = names.get(target.value.id)
                if type(container) is not list and type(container) is not dict:
                    raise NotExact("item delete")
                del container[ev.visit(target.slice)]
                changed.add(target.value.id)
                inplace.add(target.value.id)
        else:
            raise NotExact(type(node).__name__)
    except NotExact:
        raise
    except Exception as exc:  # the program raises here: no new state to compute
        if type(exc) in CERTAIN_ERRORS and not changed and not ev.mutated and not inplace:
            raise Raised(exc) from None
        raise NotExact(type(exc).__name__) from None
    changed |= ev.mutated
    result = {name: _text(names[name]) for name in changed}
    if mutated is not None:
        mutated |= inplace | ev.mutated
    return result


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
    compound = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.TryStar, ast.With, ast.AsyncWith,
                ast.Match)
    if any(isinstance(node, compound) and node.lineno == line for node, _ in found):
        return None  # a compound statement's header line
    inner = [(node, parents) for node, parents in found if not isinstance(node, compound)]
    if len(inner) != 1 or not inner[0][0].lineno == line == inner[0][0].end_lineno:
        return None  # several statements on one line, or one over several lines
    return inner[0]


def _shadowed(static: StaticCode, func: str) -> frozenset[str]:
    """The names that hide builtins in func; a pure module the program imports plainly (StaticCode.imported)
    and func does not hide is marked known instead (IMPORTED + name)."""
    info = static.functions.get(func)
    own = info.names if info is not None else frozenset()
    known = static.imported - own
    return (static.global_stores | own) - known | {IMPORTED + name for name in known}


@dataclass(frozen=True, slots=True)
class _Run:
    """One run of a line's simple statement by `execute` (see `_run`)."""

    node: ast.stmt | None  # the statement (None: not one simple statement)
    scoped: bool = False  # it holds a comprehension, generator or lambda (steps of their own)
    computed: dict[str, str] | None = None  # execute's result (None: not certain, or it raises)
    mutated: frozenset[str] = frozenset()
    error: BaseException | None = None  # what it certainly raises, before changing anything


_RUNS: dict[tuple[str, str, str, int, tuple[tuple[str, str], ...]], _Run] = {}


def _run(static: StaticCode, previous: State) -> _Run:
    """`previous`'s line run once by `execute` (or its `return` value evaluated), shared by assigned,
    effects, completes and raises: a predicted step asks all of them about the same line."""
    key = (static.code, str(previous.event), previous.func, previous.line, tuple(previous.locals.items()))
    if key in _RUNS:
        return _RUNS[key]
    found = _statement(static, previous.func, previous.line) if previous.event == "line" else None
    if found is None:
        run = _Run(None)
    else:
        node = found[0]
        scoped = any(isinstance(sub, _SCOPES) for sub in ast.walk(node))
        shadowed = _shadowed(static, previous.func)
        mutated: set[str] = set()
        computed: dict[str, str] | None = None
        error: BaseException | None = None
        try:
            if isinstance(node, ast.Return):
                if node.value is not None:
                    value_of(node.value, previous.locals, shadowed)
            else:
                computed = execute(node, previous.locals, shadowed, mutated)
        except Raised as raised:
            error = raised.error
        except NotExact:
            pass
        run = _Run(node, scoped, computed, frozenset(mutated), error)
    if len(_RUNS) >= 256:
        _RUNS.clear()
    _RUNS[key] = run
    return run


def assigned(static: StaticCode, previous: State) -> dict[str, str]:
    """The names `previous`'s line binds or changes and their new reprs, when that line is one simple
    statement `execute` runs (`NAME = EXPR`, `A, B = X, Y`, `NAME += EXPR`, `xs.append(v)`, `d[k] = v`,
    `del d[k]`, ...) and every value is certain; else {}.

    Valid for the next state of the same frame that is a "line" (the statement completed).
    """
    computed = _run(static, previous).computed
    return dict(computed) if computed is not None else {}


def effects(static: StaticCode, previous: State) -> tuple[dict[str, str], frozenset[str]] | None:
    """When `previous`'s line is one simple statement `execute` runs: the names it binds or changes with
    their new reprs, and the names whose object it changed in place; None when it is not certain."""
    run = _run(static, previous)
    if run.scoped or run.computed is None:
        return None
    return dict(run.computed), run.mutated


def completes(static: StaticCode, previous: State) -> bool:
    """Whether `previous`'s line is one simple statement that certainly runs to its end without calling
    any traced code or raising: one `execute` evaluates, or `pass`/`break`/`continue`."""
    run = _run(static, previous)
    if run.node is None or run.scoped:
        return False  # (a comprehension or generator has steps of its own)
    return isinstance(run.node, ast.Pass | ast.Break | ast.Continue) or run.computed is not None


def raises(static: StaticCode, previous: State) -> BaseException | None:
    """The exception `previous`'s line certainly raises before changing anything (a simple statement or a
    `return`, evaluated exactly), or None."""
    run = _run(static, previous)
    return None if run.scoped else run.error


def value_before(static: StaticCode, after: State, line: int) -> tuple[str, str] | None:
    """(NAME, its repr before `line` ran) when `line` of `after`'s frame is one statement that rebinds only
    NAME from its own old value by arithmetic (`n += 1`, `p *= 10`, `num = num * 10 + d`, `s = s + c`) and
    running it from that value gives NAME's value in `after`, which holds the state just after the line.

    The old value is found by undoing the operations from the outside in (each other operand evaluated
    over `after`'s locals, which the line did not change), then checked by running the line forward."""
    found = _statement(static, after.func, line)
    if found is None:
        return None
    node = found[0]
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        name = node.target.id
        expression: ast.expr = ast.BinOp(ast.Name(name, ast.Load()), node.op, node.value)
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name, expression = node.targets[0].id, node.value
    else:
        return None
    if name not in after.locals or any(isinstance(n, (ast.Call, *_SCOPES)) for n in ast.walk(expression)):
        return None
    shadowed = _shadowed(static, after.func)
    others = {n: t for n, t in after.locals.items() if n != name}
    ok, wanted = literal_value(after.locals[name])
    if not ok or not isinstance(wanted, int | str) or isinstance(wanted, bool):
        return None  # (floats do not undo exactly)
    try:
        old = _undo(expression, name, wanted, others, shadowed)
        text = certain_repr(old)
        computed = execute(node, {**others, name: text}, shadowed)
    except (NotExact, ArithmeticError, TypeError, ValueError):
        return None
    return (name, text) if computed.get(name) == after.locals[name] else None


def _undo(
    expression: ast.expr, name: str, wanted: Any, others: Mapping[str, str], shadowed: frozenset[str]
) -> Any:
    """The value of `name` that makes `expression` (which reads `name` once) evaluate to `wanted`."""
    if isinstance(expression, ast.Name) and expression.id == name:
        return wanted
    if not isinstance(expression, ast.BinOp):
        raise NotExact("not arithmetic")
    in_left = any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(expression.left))
    in_right = any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(expression.right))
    if in_left == in_right:
        raise NotExact("the name on both sides, or neither")
    other = value_of(expression.right if in_left else expression.left, others, shadowed)
    op = type(expression.op)
    if op is ast.Add:
        if isinstance(wanted, str):
            if not isinstance(other, str):
                raise NotExact("str")
            if in_left and wanted.endswith(other):
                part = wanted[: len(wanted) - len(other)]
            elif in_right and wanted.startswith(other):
                part = wanted[len(other):]
            else:
                raise NotExact("str")
        else:
            part = wanted - other
    elif op is ast.Sub:
        part = wanted + other if in_left else other - wanted
    elif op is ast.Mult and isinstance(other, int) and not isinstance(wanted, str) and other != 0:
        if wanted % other:
            raise NotExact("not a multiple")
        part = wanted // other
    else:
        raise NotExact("operator")
    return _undo(expression.left if in_left else expression.right, name, part, others, shadowed)


def pure_line(static: StaticCode, state: State) -> bool:
    """Whether `state`'s line certainly runs no code and changes no object in place: a simple statement
    `execute` runs without an in-place change, a `return` whose value is evaluated, or an `if`/`elif`/
    `while` header whose test is (the exact evaluator handles only builtin operations on plain values)."""
    if state.event != "line":
        return False
    run = _run(static, state)
    if run.node is not None:
        if run.scoped or run.error is not None:
            return False
        if isinstance(run.node, ast.Return):
            return returned(static, state) is not None
        return run.computed is not None and not run.mutated
    test = _header_test(static, state.func, state.line)
    if test is None:
        return False
    try:
        value_of(test, state.locals, _shadowed(static, state.func))
    except NotExact:
        return False
    return True


def plain_stores(root: ast.AST) -> frozenset[str]:
    """The names code binds other than as a comprehension's (or generator expression's) loop target."""
    kinds = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    targets = {
        id(n) for comp in ast.walk(root) if isinstance(comp, kinds)
        for gen in comp.generators for n in ast.walk(gen.target)
    }
    return frozenset(
        n.id for n in ast.walk(root)
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load) and id(n) not in targets
    )


def _header_test(static: StaticCode, func: str, line: int) -> ast.expr | None:
    """The test of the `if`/`elif`/`while` whose header is `line` of `func` (all of it on that line)."""
    node = compound(static, func, line)
    return node.test if isinstance(node, ast.If | ast.While) else None


def _root(static: StaticCode, func: str) -> ast.AST | None:
    return static.tree if func == "<module>" else static.defs.get(func)


def compound(
    static: StaticCode, func: str, line: int, scoped: bool = False
) -> ast.If | ast.While | ast.For | None:
    """The `if`/`elif`/`while`/`for` statement of `func` whose header is on `line` (one-line headers only,
    and a body that starts on a later line); one whose header holds a comprehension, lambda or generator
    expression only when `scoped`."""
    root = _root(static, func)
    if root is None:
        return None
    todo = list(ast.iter_child_nodes(root))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.If | ast.While | ast.For) and node.lineno == line:
            head = node.iter if isinstance(node, ast.For) else node.test
            if head.end_lineno != line or node.body[0].lineno <= line:
                return None
            if isinstance(node, ast.For) and node.target.end_lineno != line:
                return None
            if not scoped and any(isinstance(sub, _SCOPES) for sub in ast.walk(head)):
                return None  # a comprehension's own steps (line events, a generator's frame) come first
            return node
        if isinstance(node, ast.stmt) and not (node.lineno <= line <= (node.end_lineno or node.lineno)):
            continue
        todo.extend(ast.iter_child_nodes(node))
    return None


def runs_after_return(parents: list[ast.AST]) -> bool:
    """Whether code may run between a `return` inside these statements and the frame's return: a `finally`
    of an enclosing try, or a with statement's __exit__ (a try with handlers only adds nothing: a return
    whose value is computed exactly did not raise)."""
    return any(
        isinstance(p, ast.With | ast.AsyncWith) or (isinstance(p, ast.Try | ast.TryStar) and p.finalbody)
        for p in parents
    )


def returned(static: StaticCode, previous: State) -> str | None:
    """The value of `return EXPR` on `previous`'s line, when certain (not under a finally or a with)."""
    if previous.event != "line":
        return None
    found = _statement(static, previous.func, previous.line)
    if found is None or not isinstance(found[0], ast.Return):
        return None
    node, parents = found
    assert isinstance(node, ast.Return)
    if runs_after_return(parents):
        return None  # a finally or __exit__ runs after the value is computed
    if node.value is None:
        return "None"
    try:
        return evaluate(node.value, previous.locals, _shadowed(static, previous.func))
    except NotExact:
        return None


__all__ = [
    "CERTAIN_ERRORS",
    "MAX_REPR",
    "NotExact",
    "Raised",
    "assigned",
    "bind",
    "certain_repr",
    "completes",
    "effects",
    "evaluate",
    "execute",
    "raises",
    "returned",
    "runs_after_return",
    "value_of",
]
