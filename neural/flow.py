"""Control flow the code decides, along a predicted run (`FlowMemory`, see docs/prediction.md).

A predicted step has one possible next state when the code leaves no choice: an `if`, `elif` or `while`
test `neural.exact` can evaluate (over literal locals, without calling traced code) picks the body or the
other successor line; a `for` line binds its target to the next item, when the items are known
(`FlowMemory` follows each frame's loops, evaluates the iterable where the loop starts, and counts the
items taken since); a call goes to its first line; a statement the evaluator runs goes to its one
successor, a computed `return` returns; a callee's known value finishes the caller's line; `key=lambda`
in `max`/`min`/`sorted`/`sort` calls the lambda once per item; an exception the line certainly raises
goes through this frame's handlers.

Items are read the way CPython's iterators read them:
- a fresh sequence (`range(n)`, `sorted(xs)`, `s.split()`, `xs[1:]`, a string or tuple) is fixed when
  the loop starts;
- a list local (`for x in xs`) is read live, item i of its value at each step (the loop body may append
  to it or change it), as long as the name is not rebound inside the loop;
- a dict local or its `keys()`/`values()`/`items()` view is read live too, only while its keys are the
  ones it had when the loop started (else the program would raise, or the order is not certain);
- `enumerate` and `zip` over any of these.
A set's order cannot be read from its repr: a loop over a set is left to the model, as is everything else
this module cannot be certain of (then it says nothing, and the step is predicted as before).
"""

from __future__ import annotations

import ast
import builtins
import copy as copy_module
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from types import BuiltinFunctionType
from typing import Any

from neural.constraints import (
    _ANYTHING,
    StaticCode,
    _touched,
    fixed_text,
    is_immutable,
    is_literal,
    literal_value,
)
from neural.exact import (
    _BUILTINS,
    _METHODS,
    _SCOPES,
    MAX_ITEMS,
    NotExact,
    _plain,
    _root,
    _shadowed,
    _statement,
    bind,
    certain_repr,
    completes,
    compound,
    evaluate,
    execute,
    plain_stores,
    raises,
    returned,
    runs_after_return,
    value_of,
)
from neural.trajectory import CLOSE_EVENTS, OPEN_EVENTS, State
from tracer.plan import G_CALL


@dataclass(frozen=True, slots=True)
class Decision:
    """What the code decides about the next state: of the same frame after a line, or of the caller after
    a return (`depth`, `func` and `frame` are then set)."""

    only: int | None = None  # the next state is an `event` event on this line, and nothing else
    event: str = "line"
    never: int | None = None  # the next state is not a "line" event on this line
    values: Mapping[str, str] = field(default_factory=dict)  # names it binds, with their reprs
    depth: int | None = None  # the caller's frame, after a return
    func: str | None = None
    frame: tuple[tuple[str, str | None], ...] | None = None  # its locals: a text, or None (the model's)
    value: str | None = None  # the caller's own return value, when it returns at once
    keep_rest: bool = False  # every other name keeps its value (nothing but the bound names can change)
    carry: Mapping[str, str] | None = None  # the frame's locals before (for a caller: before its call)


def _carried(
    before: Mapping[str, str], computed: Mapping[str, str], pure: bool = False
) -> tuple[tuple[str, str | None], ...]:
    """The caller's locals after the callee returned: computed ones; immutable ones kept; others (which
    the callee might reach through a global) left to the model, unless the callee was `pure` (a key
    lambda whose body was evaluated exactly, or a closed function given immutable arguments: then every
    other name is kept)."""
    out: list[tuple[str, str | None]] = []
    for name, text in before.items():
        if name in computed:
            out.append((name, computed[name]))
            continue
        ok, parsed = literal_value(text)
        out.append((name, text if pure or (ok and is_immutable(parsed)) else None))
    out += [(name, text) for name, text in computed.items() if name not in before]
    return tuple(out)


# Builtins that iterate an argument at once (`next` takes one item): a generator expression given to them runs
# on the caller's line.
_CONSUMERS = frozenset(
    {"next", "min", "max", "sum", "all", "any", "list", "tuple", "set", "frozenset", "sorted", "dict"}
)


def _consumer_name(func: ast.expr, shadowed: frozenset[str], bound: Collection[str]) -> str | None:
    """The builtin consumer a call names (`sum`, `all`... or "join" for `'sep'.join`), unless a name the
    frame binds or shadows hides it; else None."""
    if isinstance(func, ast.Name):
        return func.id if func.id in _CONSUMERS and func.id not in shadowed and func.id not in bound else None
    if (isinstance(func, ast.Attribute) and func.attr == "join"
            and isinstance(func.value, ast.Constant) and isinstance(func.value.value, str)):
        return "join"
    return None


def _genexps(node: ast.AST | None) -> list[ast.GeneratorExp]:
    """The generator expressions of a line's simple statement, or of a compound line's `if`/`while` test."""
    if isinstance(node, ast.If | ast.While):
        node = node.test
    elif node is None or isinstance(node, ast.For | ast.AsyncFor):
        return []
    return [n for n in ast.walk(node) if isinstance(n, ast.GeneratorExp)]


_REFLECTIVE = frozenset({"exec", "eval", "setattr", "delattr", "__import__", "vars", "globals", "locals"})


def _kept_objects(static: StaticCode, func: str, shown: Mapping[str, str]) -> frozenset[str]:
    """The names of `shown` (a state of func) holding a mutable object no line of func can change: every
    line that may change an object names what it changes (its effect guards) and never one of these, nor
    a value that may hold one of them. Empty when a line can change anything."""
    table = static.effects(func)
    if table is None:
        return frozenset()
    mutable = {name for name, text in shown.items() if not fixed_text(text) and not text.endswith("...")}
    for effect in table.values():
        if not effect.mutates:
            continue
        if effect is _ANYTHING:
            return frozenset()
        guards = effect.guards
        if guards is not None:  # a builtin function changes none of its arguments (no class: no dunder)
            guards = tuple(g for g in guards if not (
                g[0] == G_CALL and not static.has_classes and g[1] not in static.global_stores
                and g[1] not in _REFLECTIVE and isinstance(getattr(builtins, g[1], None), BuiltinFunctionType)
            ))
        touched = _touched(static, guards, shown)
        if touched is None:
            return frozenset()
        for name in touched:
            text = shown.get(name)
            if text is None:
                return frozenset()
            mutable = {m for m in mutable if m != name and shown[m] not in text and text not in shown[m]}
    return frozenset(mutable)


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))


def _program_call(static: StaticCode, node: ast.Call) -> bool:
    """A call of one of the program's own top-level functions (traced code)."""
    func = node.func
    return isinstance(func, ast.Name) and func.id in static.defs and func.id in static.functions


def _frame_order(static: StaticCode, func: str) -> list[str]:
    """The order a frame of `func` lists its locals in (variables, cells, free variables)."""
    return [n for code in static.functions[func].codes[:1]
            for n in (*code.co_varnames, *code.co_cellvars, *code.co_freevars)]


def _comprehension_events(
    chain: list[Any], outer: Mapping[str, str], shadowed: frozenset[str]
) -> list[dict[str, str]]:
    """The targets bound (reprs) at each line event an inlined comprehension makes: one per backward
    jump of each of its loops, in order. `chain`: the comprehension, then the one that is its element..."""
    events: list[dict[str, str]] = []

    def run(depth: int, env: dict[str, str]) -> None:
        comp = chain[depth]

        def loop(level: int, env: dict[str, str]) -> dict[str, str]:
            generator = comp.generators[level]
            iterable = value_of(generator.iter, {**outer, **env}, shadowed)
            if not isinstance(iterable, list | tuple | str | range | dict):
                raise NotExact("iteration order")  # (a set's order is not the repr's)
            current = env
            for item in list(iterable):
                bound: dict[str, Any] = {}
                bind(generator.target, item, bound)
                here = {**current, **{n: certain_repr(v) for n, v in bound.items()}}
                if all(value_of(test, {**outer, **here}, shadowed) for test in generator.ifs):
                    if level + 1 < len(comp.generators):
                        here = loop(level + 1, here)  # the inner clause's targets stay bound
                    elif depth + 1 < len(chain):
                        run(depth + 1, here)  # the element: a comprehension, whose targets end cleared
                events.append(dict(here))  # this loop jumps back: a line event
                if len(events) > MAX_ITEMS:
                    raise NotExact("too many steps")
                current = here
            return current

        loop(0, env)

    run(0, {})
    return events


def _plain_call(node: ast.Call, shadowed: frozenset[str]) -> bool:
    """A call of a builtin function or of a method that changes nothing (no traced code can run)."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in _BUILTINS and func.id not in shadowed
    return isinstance(func, ast.Attribute) and any(func.attr in names for names in _METHODS.values())


def _conditional(statement: ast.AST, target: ast.AST) -> bool:
    """Whether `target` sits where Python may skip it (after `and`/`or`, in a branch of `if else`)."""
    for node in ast.walk(statement):
        skippable: list[ast.expr] = []
        if isinstance(node, ast.BoolOp):
            skippable = node.values[1:]
        elif isinstance(node, ast.IfExp):
            skippable = [node.body, node.orelse]
        if any(target is sub for part in skippable for sub in ast.walk(part)):
            return True
    return False


def _builtin_calls_only(
    statement: ast.AST,
    previous: State,
    shadowed: frozenset[str],
    static: StaticCode,
    allow: ast.AST | list[ast.Call] | None = None,
) -> bool:
    """Whether every call in `statement` but `allow` (one call or several) is a builtin's or a plain
    local's (or constant's) method: no traced code can run there."""
    allowed = allow if isinstance(allow, list) else [allow]
    for node in ast.walk(statement):
        if not isinstance(node, ast.Call) or any(node is a for a in allowed):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in shadowed or func.id in previous.locals or func.id in static.defs:
                return False
        elif isinstance(func, ast.Attribute):
            owner = func.value
            named = owner.id if isinstance(owner, ast.Name) else None
            plain = isinstance(owner, ast.Constant) or (
                named is not None and literal_value(previous.locals.get(named, "<?>"))[0]
            ) or (named in static.imported and named not in previous.locals)  # math.sqrt
            if not plain:
                return False
        else:
            return False
    return True


class _Swap(ast.NodeTransformer):
    """Replaces call nodes by names bound to their values."""

    def __init__(self, names: Mapping[int, str]) -> None:
        self.names = names  # id(call node) -> name

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = self.names.get(id(node))
        if name is not None:
            return ast.copy_location(ast.Name(name, ast.Load()), node)
        self.generic_visit(node)
        return node


def _swapped(statement: ast.stmt, call: ast.Call | list[ast.Call], name: str | list[str]) -> ast.stmt:
    """A copy of `statement` with `call` replaced by `name` (or each of several calls by its name); the
    program's own tree is left as it is."""
    calls = call if isinstance(call, list) else [call]
    names = name if isinstance(name, list) else [name]
    where = {i: names[j] for i, node in enumerate(ast.walk(statement))
             for j, c in enumerate(calls) if node is c}
    copy = copy_module.deepcopy(statement)
    targets = {id(node): where[i] for i, node in enumerate(ast.walk(copy)) if i in where}
    result = _Swap(targets).visit(copy)
    assert isinstance(result, ast.stmt)
    return result


def _in_order(node: ast.AST) -> list[ast.AST]:
    """The nodes of an expression or simple statement in the order Python evaluates them (each after
    its operands): an assignment's value before its targets, a dict's keys and values interleaved."""
    out: list[ast.AST] = []

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.Assign | ast.AnnAssign):
            children: list[ast.AST] = [c for c in (n.value,) if c is not None]
            children += n.targets if isinstance(n, ast.Assign) else [n.target]
        elif isinstance(n, ast.Dict):
            children = [c for pair in zip(n.keys, n.values) for c in pair if c is not None]
        else:
            children = list(ast.iter_child_nodes(n))
        for child in children:
            visit(child)
        out.append(n)

    visit(node)
    return out


def _ordered_calls(static: StaticCode, statement: ast.stmt) -> list[ast.Call] | None:
    """The program's own calls in `statement`, in the order they run, when each surely runs once and
    none sits in another's arguments (so each one's arguments are known before it runs); else None."""
    calls = [n for n in _in_order(statement) if isinstance(n, ast.Call) and _program_call(static, n)]
    for call in calls:
        if _conditional(statement, call):
            return None
        inside = [n for arg in [*call.args, *call.keywords] for n in ast.walk(arg)]
        if any(isinstance(n, ast.Call) and _program_call(static, n) for n in inside):
            return None
    return calls


# -- the compound statement on a line ---------------------------------------------------------------------
def _body_end(node: ast.For | ast.While) -> int:
    return max(stmt.end_lineno or stmt.lineno for stmt in node.body)


def _stores(node: ast.For, name: str) -> bool:
    """Whether the loop (its target or body) may rebind `name`."""
    for sub in [node.target, *node.body]:
        for inner in ast.walk(sub):
            if isinstance(inner, ast.Name) and inner.id == name and not isinstance(inner.ctx, ast.Load):
                return True
            if isinstance(inner, ast.Global | ast.Nonlocal) and name in inner.names:
                return True
    return False


# -- where a loop's items come from -----------------------------------------------------------------------
class _Source:
    def item(self, index: int, locals_: Mapping[str, str]) -> tuple[bool, Any]:
        """(True, item) or (False, None) when the items are exhausted; NotExact when not certain."""
        raise NotImplementedError


class _Fresh(_Source):
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def item(self, index: int, locals_: Mapping[str, str]) -> tuple[bool, Any]:
        return (True, self.items[index]) if index < len(self.items) else (False, None)


class _Live(_Source):
    """A list or dict local read at each step (view: "list", "keys", "values" or "items")."""

    def __init__(self, name: str, view: str, keys: list[Any] | None) -> None:
        self.name, self.view, self.keys = name, view, keys

    def item(self, index: int, locals_: Mapping[str, str]) -> tuple[bool, Any]:
        ok, value = literal_value(locals_.get(self.name, "<unbound>"))
        if not ok or not _plain(value):
            raise NotExact("the iterated value")
        if self.view == "list":
            if type(value) is not list:
                raise NotExact("rebound")
            return (True, value[index]) if index < len(value) else (False, None)
        if type(value) is not dict or list(value) != self.keys:
            raise NotExact("the dict changed size or order")
        if index >= len(self.keys):
            return False, None
        key = self.keys[index]
        return True, {"keys": key, "values": value[key], "items": (key, value[key])}[self.view]


class _Enumerate(_Source):
    def __init__(self, inner: _Source, start: int) -> None:
        self.inner, self.start = inner, start

    def item(self, index: int, locals_: Mapping[str, str]) -> tuple[bool, Any]:
        ok, value = self.inner.item(index, locals_)
        return (True, (self.start + index, value)) if ok else (False, None)


class _Zip(_Source):
    def __init__(self, inners: list[_Source]) -> None:
        self.inners = inners

    def item(self, index: int, locals_: Mapping[str, str]) -> tuple[bool, Any]:
        values = []
        for inner in self.inners:
            ok, value = inner.item(index, locals_)
            if not ok:
                return False, None
            values.append(value)
        return True, tuple(values)


def _source(node: ast.expr, loop: ast.For, locals_: Mapping[str, str], shadowed: frozenset[str]) -> _Source:
    """Where the loop's items come from, as evaluated when the loop starts (NotExact when not certain)."""
    if isinstance(node, ast.Name):
        ok, value = literal_value(locals_.get(node.id, "<unbound>"))
        if not ok or not _plain(value):
            raise NotExact("the iterable")
        if isinstance(value, str | bytes | tuple):
            return _Fresh(list(value))  # immutable: rebinding the name later does not change the items
        if _stores(loop, node.id):
            raise NotExact("the iterated name is rebound in the loop")
        if type(value) is list:
            return _Live(node.id, "list", None)
        if type(value) is dict:
            return _Live(node.id, "keys", list(value))
        raise NotExact("a set's order")
    starred = any(isinstance(a, ast.Starred) for a in getattr(node, "args", ()))
    if isinstance(node, ast.Call) and not node.keywords and not starred:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in ("keys", "values", "items") and not node.args
                and isinstance(func.value, ast.Name)):
            ok, value = literal_value(locals_.get(func.value.id, "<unbound>"))
            if ok and type(value) is dict and _plain(value) and not _stores(loop, func.value.id):
                return _Live(func.value.id, func.attr, list(value))
            raise NotExact("the dict view")
        if isinstance(func, ast.Name) and func.id not in shadowed and func.id not in locals_:
            if func.id == "enumerate" and 1 <= len(node.args) <= 2:
                start = value_of(node.args[1], locals_, shadowed) if len(node.args) == 2 else 0
                if type(start) is not int:
                    raise NotExact("enumerate's start")
                return _Enumerate(_source(node.args[0], loop, locals_, shadowed), start)
            if func.id == "zip" and node.args:
                return _Zip([_source(arg, loop, locals_, shadowed) for arg in node.args])
    if isinstance(node, ast.Attribute | ast.Subscript) and not (
        isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)
    ):
        raise NotExact("an object inside another")  # it may be changed through the container
    if isinstance(node, ast.BoolOp | ast.IfExp | ast.NamedExpr):
        raise NotExact("may be a local's own object")
    value = value_of(node, locals_, shadowed)  # a new object: fixed when the loop starts
    if isinstance(value, set | frozenset):
        raise NotExact("a set's order")
    if isinstance(value, str | bytes | list | tuple | dict | range | enumerate | zip | reversed):
        items = list(value)
        if len(items) > MAX_ITEMS or not all(_plain(item) for item in items):
            raise NotExact("items")
        return _Fresh(items)
    raise NotExact("not iterable here")


# -- the memory of a predicted run ------------------------------------------------------------------------
@dataclass(slots=True)
class _Loop:
    node: ast.For
    source: _Source | None  # None: the items are not known
    taken: int = 0


@dataclass(slots=True)
class _Keyed:
    """`max(xs, key=lambda x: ...)` (or min, sorted, `xs.sort(key=...)`) on a frame's line: the builtin
    calls the lambda once per item, in order; each call's value is computed in the lambda's frame."""

    line: int
    items: list[Any]
    lam: ast.Lambda
    qualname: str
    free: tuple[tuple[str, str], ...]  # the lambda's closure variables, with the caller's texts
    values: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class _Genexp:
    """A generator expression a builtin consumes at once on its frame's line (`sum(x * x for x in xs)`,
    `next((e for e in xs if e), -1)`, `if any(...)`): its frame's states computed ahead, item by item (call,
    line, then per item yield, resume, line, or a line again when a condition drops it; a return when the
    items run out), and whether the consumer stops at the last yield (next; all at a false value; any at a
    true one)."""

    line: int
    qualname: str
    depth: int
    script: list[tuple[str, tuple[tuple[str, str], ...], str | None]]  # (event, its locals, its value)
    stops: bool
    taken: int = 1  # the states of the script decided so far


@dataclass(slots=True)
class _Caught:
    """An exception a line certainly raised, and the handler of this frame that catches it (if known)."""

    line: int
    error: BaseException
    handler: ast.ExceptHandler | None = None
    handlers: list[ast.ExceptHandler] = field(default_factory=list)  # its try's, tested in order


@dataclass(slots=True)
class _Frame:
    func: str
    last_line: int | None  # the frame's latest line event seen (None: not seen, or history unknown)
    fresh: bool  # the frame's call was seen: no line ran in it before
    loops: dict[int, _Loop] = field(default_factory=dict)
    state: State | None = None  # the frame's latest line state (the caller's, while a callee runs)
    keyed: _Keyed | None = None  # a max/min/sorted/sort with key=lambda running on this frame's line
    genexp: _Genexp | None = None  # a generator expression a builtin consumes on this frame's line
    error: _Caught | None = None  # an exception the code raised on this frame's line, and its handler
    returns: list[str] = field(default_factory=list)  # the values calls made on this frame's line returned


class FlowMemory:
    """Follows one predicted run, state by state, to know each `for` loop's next item; decides branches.

    `observe` every state as it becomes the latest (the start, then each prediction); `forget` when the run
    jumps (a restart from another state, a step_return, a breakpoint): loops then seen mid-way stay
    unknown until they start again.
    """

    def __init__(self, static: StaticCode) -> None:
        self.static = static
        self.frames: dict[int, _Frame] = {}
        self._compound: dict[tuple[str, int], Any] = {}

    def forget(self) -> None:
        self.frames.clear()

    def _node(self, func: str, line: int) -> ast.If | ast.While | ast.For | None:
        key = (func, line)
        if key not in self._compound:
            self._compound[key] = compound(self.static, func, line)
        found: ast.If | ast.While | ast.For | None = self._compound[key]
        return found

    def observe(self, state: State) -> None:
        depth = state.depth
        for d in [d for d in self.frames if d > depth]:
            del self.frames[d]
        if state.event in OPEN_EVENTS:
            self.frames[depth] = _Frame(state.func, None, state.event == "call")
            return
        if state.event in CLOSE_EVENTS:
            self.frames.pop(depth, None)
            caller = self.frames.get(depth - 1)
            if caller is not None and caller.state is not None and state.event == "return":
                caller.returns.append(state.value if state.value is not None else "<?>")
            return
        frame = self.frames.get(depth)
        if frame is None or frame.func != state.func:
            frame = self.frames[depth] = _Frame(state.func, None, False)
        if state.event != "line":
            # An exception event: loops stay (the next line tells whether it left them).
            frame.state = None
            return
        frame.state = state
        frame.returns = []
        line = state.line
        if frame.keyed is not None and frame.keyed.line != line:
            frame.keyed = None
        if frame.genexp is not None and frame.genexp.line != line:
            frame.genexp = None
        for start in [s for s, loop in frame.loops.items() if not (s <= line <= _body_end(loop.node))]:
            del frame.loops[start]  # the run left that loop (exhausted, break, return to an outer line)
        node = self._node(state.func, line)
        if isinstance(node, ast.For) and line not in frame.loops:
            started = frame.fresh or (
                frame.last_line is not None and not (node.lineno <= frame.last_line <= _body_end(node))
            )
            source: _Source | None = None
            taken = 0
            try:
                if started:
                    source = _source(node.iter, node, state.locals, _shadowed(self.static, state.func))
                else:
                    source, taken = self._resume(node, state)
            except Exception:  # not certain (NotExact), or the program raises at the loop's start
                source, taken = None, 0
            frame.loops[line] = _Loop(node, source, taken)
        frame.last_line = line
        frame.fresh = False

    def _resume(self, node: ast.For, state: State) -> tuple[_Source | None, int]:
        """A loop first seen mid-way (no history: a restart, an eval item, a what-if fork): where it is,
        when the state alone says so. The target must be one name that only this loop binds in the
        function (so a bound target means this loop has taken items; an unbound one, that it has not),
        the loop must not sit inside another loop (which would start it again), and the items must read
        the same now as when it started: a live list or dict local not rebound in the loop, or a fresh
        sequence over immutable locals the loop does not rebind. The position is the target's value,
        when it occurs once among the items."""
        target = node.target
        root = _root(self.static, state.func)
        if not isinstance(target, ast.Name) or root is None:
            return None, 0
        name = target.id
        for sub in ast.walk(root):
            if isinstance(sub, ast.For | ast.While | ast.AsyncFor) and sub is not node and any(
                inner is node for inner in ast.walk(sub)
            ):
                return None, 0  # nested in a loop: this one may be on its second run
            stored = isinstance(sub, ast.Name) and sub.id == name and not isinstance(sub.ctx, ast.Load)
            if stored and sub is not target:
                return None, 0
            if isinstance(sub, ast.arg) and sub.arg == name:
                return None, 0
            if isinstance(sub, ast.Global | ast.Nonlocal) and name in sub.names:
                return None, 0
        shadowed = _shadowed(self.static, state.func)
        if name not in state.locals:  # it has not started: its items are made now, from the names as they are
            return _source(node.iter, node, state.locals, shadowed), 0
        used = {n.id for n in ast.walk(node.iter) if isinstance(n, ast.Name)}
        if any(_stores(node, n) for n in used):
            return None, 0
        source = _source(node.iter, node, state.locals, shadowed)
        if not isinstance(source, _Fresh):
            # A live list or dict: its position could have moved if the loop changed it; only when the
            # loop never names it and calls none of the program's functions (which could reach it).
            body = [sub for stmt in node.body for sub in ast.walk(stmt)]
            if any(isinstance(sub, ast.Name) and sub.id in used for sub in body) or any(
                isinstance(sub, ast.Call) and _program_call(self.static, sub) for sub in body
            ):
                return None, 0
        else:
            for n in used & set(state.locals):  # a fresh sequence is the same now only over immutables
                ok, value = literal_value(state.locals[n])
                if not ok or not is_immutable(value):
                    return None, 0
        items: list[Any] = []
        while len(items) <= MAX_ITEMS:
            ok, item = source.item(len(items), state.locals)
            if not ok:
                break
            items.append(item)
        ok, current = literal_value(state.locals[name])
        if not ok or sum(1 for item in items if item == current and type(item) is type(current)) != 1:
            return None, 0
        return source, next(i for i, item in enumerate(items) if item == current) + 1

    def safe_decide(self, previous: State) -> Decision | None:
        """decide(), where a failure of this module's own reasoning means only "not decided" (the tests
        call decide itself, so such a failure still shows there)."""
        try:
            return self.decide(previous)
        except Exception:
            self.forget()
            return None

    def safe_observe(self, state: State) -> None:
        try:
            self.observe(state)
        except Exception:
            self.forget()

    def decide(self, previous: State) -> Decision | None:
        """What the code decides about the state after `previous` (step_into/step_over), or None.

        Call it once per prediction from `previous`: a `for` line takes its item, a key lambda records
        its value, an exception moves through its handlers.
        """
        info = self.static.functions.get(previous.func)
        if info is None:
            return None
        if previous.event == "return":
            return self._after_return(previous)
        if previous.func.endswith("<lambda>"):
            return self._in_lambda(previous)
        if previous.func.endswith("<genexpr>"):
            return self._in_genexp(previous)
        if previous.event == "call":
            return self._first_line(previous)
        if previous.event in ("exception", "handled"):
            return self._caught(previous)
        if previous.event != "line":
            return None
        frame = self.frames.get(previous.depth)
        if frame is not None and frame.error is not None:
            caught = frame.error
            if caught.handler is not None and previous.line in [h.lineno for h in caught.handlers]:
                if previous.line == caught.handler.lineno:
                    frame.error = None
                return self._into_handler(previous, caught)
            frame.error = None  # the run went elsewhere
        error = raises(self.static, previous)
        if error is not None and frame is not None and frame.func == previous.func:
            frame.error = _Caught(previous.line, error)
            return Decision(only=previous.line, event="exception", value=repr(error), depth=previous.depth,
                            func=previous.func, frame=tuple(previous.locals.items()))
        node = self._node(previous.func, previous.line)
        simple = _statement(self.static, previous.func, previous.line) if node is None else None
        header = compound(self.static, previous.func, previous.line, scoped=True) if node is simple is None \
            else node
        if _genexps(header if header is not None else simple[0] if simple is not None else None):
            return self._genexp_start(previous, header)  # its items are steps of their own frame first
        if node is None:
            return self._keyed_start(previous) or self._comprehension(previous) or self._simple(previous)
        body = node.body[0].lineno
        if body not in self.static.successors(previous.func, previous.line):
            return None
        if isinstance(node, ast.For):
            mine = frame is not None and frame.func == previous.func
            loop = frame.loops.get(previous.line) if frame is not None and mine else None
            if loop is None or loop.source is None:
                return None
            try:
                ok, item = loop.source.item(loop.taken, previous.locals)
                if not ok:
                    loop.source = None  # exhausted: a later step from here is the model's
                    targets = [n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)]
                    kept = {n: previous.locals[n] for n in targets if n in previous.locals}
                    return self._leave(previous, body, kept, keep_rest=True)  # the target keeps its item
                values: dict[str, Any] = {}
                bind(node.target, item, values)
                texts = {name: certain_repr(value) for name, value in values.items()}
            except Exception:  # not certain (NotExact), or the item does not unpack: the model's
                loop.source = None
                return None
            loop.taken += 1
            return Decision(only=body, values=texts, keep_rest=True)  # a builtin iterator runs no code
        try:
            truth = bool(value_of(node.test, previous.locals, _shadowed(self.static, previous.func)))
        except Exception:  # not certain (NotExact), or the program raises in the test
            return None
        if truth:
            return Decision(only=body, keep_rest=True)  # the test ran no code: nothing changed
        return self._leave(previous, body, keep_rest=True)

    def _first_line(self, previous: State) -> Decision | None:
        """A plain function's call is followed by its first statement's line."""
        info = self.static.functions[previous.func]
        definition = self.static.defs.get(previous.func)
        if not info.function or info.generator or definition is None:
            return None
        body = definition.body
        if (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str) and len(body) > 1):
            body = body[1:]  # a docstring runs no instruction
        first = body[0].lineno
        return Decision(only=first) if first in info.lines and first != previous.line else None

    # -- key=lambda: the builtin calls the lambda per item ----------------------------------------------
    def _keyed_start(self, previous: State) -> Decision | None:
        found = _statement(self.static, previous.func, previous.line)
        frame = self.frames.get(previous.depth)
        if found is None or frame is None or frame.func != previous.func:
            return None
        statement = found[0]
        lambdas = [n for n in ast.walk(statement) if isinstance(n, ast.Lambda)]
        others = [n for n in ast.walk(statement) if isinstance(n, _SCOPES) and not isinstance(n, ast.Lambda)]
        if len(lambdas) != 1 or others:
            return None
        lam = lambdas[0]
        args = lam.args
        if (len(args.args) != 1 or args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg
                or args.defaults):
            return None
        keyed = [n for n in ast.walk(statement) if isinstance(n, ast.Call)
                 and any(kw.arg == "key" and kw.value is lam for kw in n.keywords)]
        if len(keyed) != 1:
            return None
        call = keyed[0]
        shadowed = _shadowed(self.static, previous.func)
        # Every other call is a builtin's or a plain value's method: no traced code runs before the key's.
        if not _builtin_calls_only(statement, previous, shadowed, self.static):
            return None
        try:
            if isinstance(call.func, ast.Name) and call.func.id in ("max", "min", "sorted") \
                    and call.func.id not in shadowed and call.func.id not in previous.locals:
                if len(call.args) != 1:
                    return None
                iterable = value_of(call.args[0], previous.locals, shadowed)
            elif isinstance(call.func, ast.Attribute) and call.func.attr == "sort" \
                    and isinstance(call.func.value, ast.Name) and not call.args:
                iterable = value_of(call.func.value, previous.locals, shadowed)
                if type(iterable) is not list:
                    return None
            else:
                return None
        except NotExact:
            return None
        if not isinstance(iterable, (list, tuple, str, dict, range, *_DICT_VIEWS)):
            return None  # (a set's order is not certain; a dict's and its views' is)
        items = list(iterable)  # type: ignore[call-overload]
        if not items or len(items) > MAX_ITEMS or not all(_plain(item) for item in items):
            return None
        candidates = [info for info in self.static.functions.values()
                      if info.qualname.endswith("<lambda>") and lam.lineno in info.calls]
        if len(candidates) != 1:
            return None
        codes = [code for code in candidates[0].codes if code.co_firstlineno == lam.lineno]
        if len(codes) != 1:
            return None  # two lambdas on one line
        free = []
        for name in codes[0].co_freevars:
            if name not in previous.locals:
                return None
            free.append((name, previous.locals[name]))
        frame.keyed = _Keyed(previous.line, items, lam, candidates[0].qualname, tuple(free))
        return self._keyed_call(previous.depth, frame.keyed)

    def _keyed_call(self, depth: int, keyed: _Keyed) -> Decision | None:
        try:
            item = certain_repr(keyed.items[len(keyed.values)])
        except NotExact:
            return None
        param = keyed.lam.args.args[0].arg
        line = keyed.lam.lineno
        return Decision(only=line, event="call", depth=depth + 1, func=keyed.qualname,
                        frame=((param, item), *keyed.free))

    def _in_lambda(self, previous: State) -> Decision | None:
        """The steps of a key lambda the code called (see _Keyed): its line, then its computed return."""
        caller = self.frames.get(previous.depth - 1)
        keyed = caller.keyed if caller is not None else None
        if keyed is None or previous.func != keyed.qualname:
            return self._plain_lambda(previous)
        frame = tuple(previous.locals.items())
        if previous.event == "call":
            return Decision(only=keyed.lam.lineno, depth=previous.depth, func=previous.func, frame=frame)
        if previous.event == "line":
            try:
                value = value_of(keyed.lam.body, previous.locals, _shadowed(self.static, previous.func))
                text = certain_repr(value)
            except NotExact:
                return None
            keyed.values.append(value)
            return Decision(only=previous.line, event="return", depth=previous.depth, func=previous.func,
                            frame=frame, value=text)
        return None

    def _plain_lambda(self, previous: State) -> Decision | None:
        """Any other one-line lambda: its call is followed by its line; its line, when the body calls
        nothing (and no class can lend an operator a method), by its return, with the value when exact."""
        info = self.static.functions.get(previous.func)
        if info is None or len(info.lines) != 1 or previous.line not in info.lines:
            return None
        frame = tuple(previous.locals.items())
        if previous.event == "call":
            return Decision(only=previous.line, depth=previous.depth, func=previous.func, frame=frame)
        if previous.event != "line" or self.static.has_classes:
            return None
        outer = previous.func.rsplit(".<locals>.", 1)[0] if ".<locals>." in previous.func else "<module>"
        root = _root(self.static, outer)
        if root is None:
            return None
        lambdas = [n for n in ast.walk(root) if isinstance(n, ast.Lambda) and n.lineno == previous.line]
        if len(lambdas) != 1 or any(isinstance(n, (ast.Call, *_SCOPES)) for n in ast.walk(lambdas[0].body)):
            return None
        try:
            shadowed = _shadowed(self.static, previous.func)
            text = certain_repr(value_of(lambdas[0].body, previous.locals, shadowed))
        except NotExact:
            return None  # (it may raise instead of returning)
        return Decision(only=previous.line, event="return", depth=previous.depth, func=previous.func,
                        frame=frame, value=text)

    # -- generator expressions a builtin consumes --------------------------------------------------------
    def _genexp_start(self, previous: State, node: ast.AST | None) -> Decision | None:
        """A line whose one generator expression a builtin consumes, with nothing else of the program's
        to run: the next state is the generator's call; its later states are computed here (_Genexp)."""
        frame = self.frames.get(previous.depth)
        static = self.static
        found = _statement(static, previous.func, previous.line) if node is None else None
        statement: ast.AST | None = found[0] if found is not None else node
        if frame is None or frame.func != previous.func or statement is None or static.has_classes:
            return None
        if isinstance(statement, ast.If | ast.While):
            statement = statement.test
        if not isinstance(statement, ast.stmt | ast.expr) or statement.lineno != statement.end_lineno:
            return None  # a later line of the statement would be a step of its own
        gens = _genexps(statement)
        scopes = [n for n in ast.walk(statement) if isinstance(n, _SCOPES)]
        if len(gens) != 1 or len(scopes) != 1:
            return None
        gen = gens[0]
        shadowed = _shadowed(static, previous.func)
        consumers = [n for n in ast.walk(statement) if isinstance(n, ast.Call) and n.args[:1] == [gen]]
        targets = {n.id for c in gen.generators for n in ast.walk(c.target) if isinstance(n, ast.Name)}
        plain = replace(previous, locals={**previous.locals, **dict.fromkeys(targets, "0")})  # (plain items)
        if len(consumers) != 1 or not _builtin_calls_only(statement, plain, shadowed, static):
            return None
        consumer = consumers[0]
        name = _consumer_name(consumer.func, shadowed, previous.locals)
        if name is None:
            return None
        if consumer.keywords or len(consumer.args) > (2 if name == "next" else 1):
            return None
        if _conditional(statement, consumer):
            return None
        if len(gen.generators) != 1 or gen.generators[0].is_async:
            return None
        clause = gen.generators[0]
        codes = [(info.qualname, code) for info in static.functions.values()
                 if info.qualname.endswith("<genexpr>")
                 for code in info.codes if code.co_firstlineno == gen.lineno]
        if len(codes) != 1:
            return None  # two on one line
        qualname, code = codes[0]
        try:
            source = value_of(clause.iter, previous.locals, shadowed)
            if type(source) not in (list, tuple, str, range, dict, bytes):
                return None  # (a set's order is not certain; an iterator may be shared)
            items = list(source)
            if len(items) > MAX_ITEMS or not all(_plain(item) for item in items):
                return None
            opening = [(".0", f"<{type(iter(source)).__name__} object at 0x?>")]
            for free in code.co_freevars:
                if free not in previous.locals:
                    return None
                opening.append((free, previous.locals[free]))
            script: list[tuple[str, tuple[tuple[str, str], ...], str | None]] = [
                ("call", tuple(opening), None), ("line", tuple(opening), None)]
            stops = False
            yielded = 0
            texts = dict(previous.locals)
            for item in items:
                values: dict[str, Any] = {}
                bind(clause.target, item, values)
                bound = {n: certain_repr(v) for n, v in values.items()}
                shown = tuple(opening) + tuple(bound.items())
                texts.update(bound)
                if not all(value_of(test, texts, shadowed) for test in clause.ifs):
                    script.append(("line", shown, None))  # dropped: the loop goes round on this line
                    continue
                value = value_of(gen.elt, texts, shadowed)
                script.append(("yield", shown, certain_repr(value)))
                yielded += 1
                if name == "next" or (name == "all" and not value) or (name == "any" and value):
                    stops = True
                    break
                script += [("resume", shown, None), ("line", shown, None)]
            if not stops:
                if (name == "next" and len(consumer.args) == 1) or (name in ("min", "max") and not yielded):
                    return None  # it raises
                script.append(("return", script[-1][1], "None"))
        except Exception:  # not certain (NotExact), or the program raises on the way
            return None
        frame.genexp = _Genexp(previous.line, qualname, previous.depth + 1, script, stops)
        return self._genexp_state(frame.genexp)

    def decide_over(self, previous: State, decided: Decision | None) -> Decision | None:
        """step_over from `previous`, given what decide() said for step_into: when that was a generator
        expression's call (_genexp_start), the line runs to its end with the consumer's value; any other
        call into the program is the model's (the callee's effects are not known here)."""
        if decided is None or decided.event != "call" or decided.depth != previous.depth + 1:
            return decided
        frame = self.frames.get(previous.depth)
        if frame is None or frame.genexp is None or frame.genexp.qualname != decided.func:
            return None
        frame.genexp = None
        return self._genexp_done(previous)

    def _genexp_state(self, genexp: _Genexp) -> Decision:
        event, shown, value = genexp.script[genexp.taken - 1]
        return Decision(only=genexp.line, event=event, depth=genexp.depth, func=genexp.qualname, frame=shown,
                        value=value)

    def _in_genexp(self, previous: State) -> Decision | None:
        """A generator expression's frame: its computed next state (_Genexp), the caller's line finished
        once a consumer that stops early has its value, or else what its shape alone decides."""
        caller = self.frames.get(previous.depth - 1)
        genexp = caller.genexp if caller is not None else None
        if genexp is None or genexp.qualname != previous.func or genexp.depth != previous.depth:
            return self._bare_genexp(previous)
        assert caller is not None
        event, shown, _value = genexp.script[genexp.taken - 1]
        if event != previous.event or dict(shown) != dict(previous.locals):
            caller.genexp = None  # the run went its own way
            return None
        if genexp.taken < len(genexp.script):
            genexp.taken += 1
            return self._genexp_state(genexp)
        caller.genexp = None
        if not genexp.stops or caller.state is None:
            return None
        return self._genexp_done(caller.state)

    def _genexp_done(self, before: State) -> Decision | None:
        """The consumer has its value: the caller's line runs to its end (only builtins ran in it)."""
        static = self.static
        node = compound(static, before.func, before.line, scoped=True)
        shadowed = _shadowed(static, before.func)
        frame = tuple(before.locals.items())
        try:
            if isinstance(node, ast.If | ast.While):
                body = node.body[0].lineno
                if bool(value_of(node.test, before.locals, shadowed)):
                    decided = Decision(only=body)
                else:
                    decided = self._leave(before, body)
                return replace(decided, depth=before.depth, func=before.func, frame=frame,
                               carry=before.locals)
            found = _statement(static, before.func, before.line)
            if found is None or node is not None:
                return None
            statement = found[0]
            if isinstance(statement, ast.Return):
                if any(isinstance(p, ast.Try | ast.TryStar | ast.With | ast.AsyncWith) for p in found[1]):
                    return None
                result = evaluate(statement.value, before.locals, shadowed) if statement.value else "None"
                return Decision(only=before.line, event="return", depth=before.depth, func=before.func,
                                frame=frame, value=result, carry=before.locals)
            computed = execute(statement, before.locals, shadowed)
        except Exception:  # not certain (NotExact), or the program raises
            return None
        info = static.functions.get(before.func)
        others = static.successors(before.func, before.line) - {before.line}
        if not others and info is not None and not info.function and before.func == "<module>":
            return Decision(only=before.line, event="return", depth=before.depth, func=before.func,
                            frame=_carried(before.locals, computed, pure=True), value="None",
                            carry=before.locals)
        if len(others) != 1:
            return None
        return Decision(only=next(iter(others)), depth=before.depth, func=before.func,
                        frame=_carried(before.locals, computed, pure=True), carry=before.locals)

    def _bare_genexp(self, previous: State) -> Decision | None:
        """A generator expression's frame seen without its caller's line: a one-line one goes from its call
        and each resume to its line; from its line with one `for` and no condition, to a yield or its
        return (never the line again)."""
        outer = previous.func.rsplit(".<locals>.", 1)[0] if ".<locals>." in previous.func else "<module>"
        root = _root(self.static, outer)
        gens = [n for n in ast.walk(root) if isinstance(n, ast.GeneratorExp) and n.lineno == previous.line] \
            if root is not None else []
        if len(gens) != 1 or gens[0].end_lineno != previous.line:
            return None
        if previous.event in ("call", "resume"):
            return Decision(only=previous.line, keep_rest=True)
        if previous.event == "yield" and root is not None:
            return self._consumed_on(previous, root, gens[0], outer)
        if previous.event != "line" or len(gens[0].generators) != 1 or gens[0].generators[0].ifs:
            return None
        return Decision(never=previous.line)

    def _consumed_on(
        self, previous: State, root: ast.AST, genexp: ast.GeneratorExp, outer: str
    ) -> Decision | None:
        """After a generator expression's yield, seen without its caller: when a builtin consumes it that
        asks for the next item (sum, min, sorted...; all after a true item, any after a false one), the
        next state is its resume on the same line, nothing else having run."""
        consumers = [n for n in ast.walk(root)
                     if isinstance(n, ast.Call) and any(a is genexp for a in n.args)]
        if len(consumers) != 1:
            return None
        info = self.static.functions.get(outer)
        name = _consumer_name(consumers[0].func, _shadowed(self.static, outer), info.names if info else ())
        if name is None or name == "next":
            return None
        if name in ("all", "any"):
            ok, value = literal_value(previous.value or "")
            if not ok or bool(value) != (name == "all"):
                return None  # it may stop here: the caller's line goes on
        return Decision(only=previous.line, event="resume", depth=previous.depth, func=previous.func,
                        frame=tuple(previous.locals.items()))

    def _keyed_next(self, returned_state: State, caller: _Frame, keyed: _Keyed) -> Decision | None:
        """After a key lambda returned: the next item's call, or the caller's line finished."""
        if len(keyed.values) < len(keyed.items):
            return self._keyed_call(returned_state.depth - 1, keyed)
        before = caller.state
        caller.keyed = None
        if before is None or before.line != keyed.line:
            return None
        found = _statement(self.static, before.func, before.line)
        if found is None:
            return None
        values = iter(keyed.values)
        statement = found[0]
        if isinstance(statement, ast.Return):  # return sorted(..., key=lambda ...)[:3]
            if statement.value is None or runs_after_return(found[1]):
                return None
            try:
                result = evaluate(statement.value, before.locals, _shadowed(self.static, before.func),
                                  key_values=lambda _item: next(values))
            except NotExact:
                return None
            return Decision(only=before.line, event="return", depth=before.depth, func=before.func,
                            frame=_carried(before.locals, {}, pure=True), value=result, carry=before.locals)
        try:
            computed = execute(statement, before.locals, _shadowed(self.static, before.func),
                               key_values=lambda _item: next(values))
        except NotExact:
            return None
        others = self.static.successors(before.func, before.line) - {before.line}
        if len(others) != 1:
            return None
        return Decision(only=next(iter(others)), depth=before.depth, func=before.func,
                        frame=_carried(before.locals, computed, pure=True), carry=before.locals)

    def _after_return(self, returned_state: State) -> Decision | None:
        """The caller's next state after a call returned a known value, when the caller's line is one
        simple statement around that one call, over immutable values only (so the callee, given only
        immutable arguments, cannot have changed anything the statement reads)."""
        caller = self.frames.get(returned_state.depth - 1)
        value = returned_state.value
        if caller is not None and caller.keyed is not None:
            return self._keyed_next(returned_state, caller, caller.keyed)
        if caller is not None and caller.genexp is not None:
            genexp, caller.genexp = caller.genexp, None
            if returned_state.func != genexp.qualname or caller.state is None:
                return None
            return self._genexp_done(caller.state)
        if value is None or not is_literal(value):
            return None
        unknown: frozenset[str] = frozenset()
        if (caller is None or caller.state is None) and returned_state.depth >= 2:
            return self._unseen_function_caller(returned_state, value)
        if caller is None or caller.state is None:
            unseen = self._unseen_caller(returned_state)
            if unseen is None:
                return None
            before, unknown = unseen
        else:
            before = caller.state
        returns = caller.returns if caller is not None and caller.state is before else None
        decision = self._finish_caller(returned_state, before, value, returns)
        if decision is None or not unknown or decision.frame is None:
            return decision
        frame = tuple((name, None if name in unknown else text) for name, text in decision.frame)
        return replace(decision, frame=frame, carry=None)

    def _finish_caller(
        self, returned_state: State, before: State, value: str, returns: list[str] | None = None
    ) -> Decision | None:
        found = _statement(self.static, before.func, before.line)
        if found is None or any(isinstance(sub, _SCOPES) for sub in ast.walk(found[0])):
            return None
        statement = found[0]
        calls = [n for n in ast.walk(statement) if isinstance(n, ast.Call) and _program_call(self.static, n)]
        if len(calls) > 1 and returns is not None:
            return self._next_call(returned_state, before, found, returns)
        if len(calls) != 1:
            return None
        call = calls[0]
        assert isinstance(call.func, ast.Name)
        if call.func.id != returned_state.func or _conditional(statement, call):
            return None
        arguments = [*call.args, *call.keywords]
        if any(isinstance(n, ast.Call | ast.NamedExpr) for arg in arguments for n in ast.walk(arg)):
            return None  # an argument with effects of its own
        slot = "__returned__"
        swapped = _swapped(statement, call, slot)
        # What the statement reads once the call has returned (not the function's own name).
        read = {n.id for n in ast.walk(swapped) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for name in read & set(before.locals):
            ok, parsed = literal_value(before.locals[name])
            if not ok or not is_immutable(parsed):
                return None
        locals_ = {**before.locals, slot: value}
        return self._complete(before, found, swapped, locals_, [slot], self._closed(call.func.id))

    def _next_call(
        self, returned_state: State, before: State, found: tuple[ast.stmt, list[ast.AST]], returns: list[str]
    ) -> Decision | None:
        """A line with several calls of the program's own functions (`f(n - 1) + f(n - 2)`), each sure to
        run, none in another's arguments, over immutable values: after the k-th returned, the (k+1)-th is
        called with its arguments bound; after the last, the line runs to its end with their values."""
        statement = found[0]
        calls = _ordered_calls(self.static, statement)
        done = len(returns)
        if not calls or len(calls) < 2 or not 0 < done <= len(calls) or self.static.has_classes:
            return None
        finished = calls[done - 1].func
        if not isinstance(finished, ast.Name) or finished.id != returned_state.func:
            return None
        if not all(is_literal(v) for v in returns):
            return None
        names = [c.func.id for c in calls if isinstance(c.func, ast.Name)]
        if any(c.keywords or any(isinstance(a, ast.Starred) for a in c.args) for c in calls):
            return None
        if any(name in before.locals for name in names):
            return None  # a local's name
        shadowed = _shadowed(self.static, before.func)
        if not _builtin_calls_only(statement, before, shadowed, self.static, allow=calls):
            return None
        read = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        for name in (read - set(names)) & set(before.locals):
            ok, parsed = literal_value(before.locals[name])
            if not ok or not is_immutable(parsed):
                return None  # a callee may have changed what it reads
        slots = [f"__returned{i}__" for i in range(len(calls))]
        locals_ = {**before.locals, **dict(zip(slots, returns))}
        if done < len(calls):
            return self._enter(calls[done], locals_, shadowed, before.depth + 1)
        swapped = _swapped(statement, calls, slots)
        return self._complete(before, found, swapped, locals_, slots, all(self._closed(n) for n in names))

    def _complete(
        self,
        before: State,
        found: tuple[ast.stmt, list[ast.AST]],
        swapped: ast.stmt,
        locals_: dict[str, str],
        slots: list[str],
        closed: bool,
    ) -> Decision | None:
        """The caller's next state once the calls on its line returned (their values bound to `slots`
        in `locals_`, `swapped` reading them): the statement's return, or its next line."""
        statement = found[0]
        info = self.static.functions.get(before.func)
        if info is None:
            return None
        if isinstance(statement, ast.Return):
            assert isinstance(swapped, ast.Return)
            if runs_after_return(found[1]):
                return None
            shadowed = _shadowed(self.static, before.func)
            try:
                result = evaluate(swapped.value, locals_, shadowed) if swapped.value is not None else "None"
            except NotExact:
                return None
            return Decision(only=before.line, event="return", depth=before.depth, func=before.func,
                            frame=_carried(before.locals, {}, closed), value=result,
                            carry=before.locals)
        try:
            computed = execute(swapped, locals_, _shadowed(self.static, before.func))
        except NotExact:
            return None
        for slot in slots:
            computed.pop(slot, None)
        others = self.static.successors(before.func, before.line) - {before.line}
        if not others and not info.function and before.func == "<module>":
            # The module's last statement: the module returns.
            return Decision(only=before.line, event="return", depth=before.depth, func=before.func,
                            frame=_carried(before.locals, computed, closed), value="None",
                            carry=before.locals)
        if len(others) != 1:
            return None
        return Decision(only=next(iter(others)), depth=before.depth, func=before.func,
                        frame=_carried(before.locals, computed, closed),
                        carry=before.locals)

    def _unseen_function_caller(self, returned_state: State, value: str) -> Decision | None:
        """A function returns to a calling function the run has not seen (an eval item, a restart): when
        the program calls it from one line of one function only, and only by name, that line finishes
        with the returned value: an `if`/`while` whose test is the call (or `not` it) goes where the value
        sends it; a one-line simple statement around the one call goes to its one next line. The caller's
        locals are the model's (nothing says what they were)."""
        static = self.static
        callee = returned_state.func
        if callee not in static.defs or "." in callee or static.has_classes:
            return None
        inside: set[tuple[str, int]] = set()  # (function, line) of every use of the callee's name
        for name, definition in static.defs.items():
            for node in ast.walk(definition):
                if isinstance(node, ast.Name) and node.id == callee and isinstance(node.ctx, ast.Load):
                    inside.add((name, node.lineno))
        calls = [c for c in ast.walk(static.tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                 and c.func.id == callee]
        loads = [n for n in ast.walk(static.tree) if isinstance(n, ast.Name) and n.id == callee
                 and isinstance(n.ctx, ast.Load)]
        if len(loads) != len(calls):
            return None  # passed as a value somewhere: something else may call it
        if len(inside) != 1:
            return None
        func, line = next(iter(inside))
        if ".<locals>." in func or "." in func or func not in static.functions:
            return None
        mine = [c for c in calls if c.lineno == line and c.end_lineno == line]
        if len(mine) != 1:
            return None
        call = mine[0]
        ok, returned_value = literal_value(value)
        if not ok:
            return None
        header = compound(static, func, line, scoped=True)
        if isinstance(header, ast.If | ast.While):
            test = header.test
            negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
            if (test.operand if negated else test) is not call:  # type: ignore[attr-defined]
                return None
            body = header.body[0].lineno
            taken = bool(returned_value) != negated
            if taken:
                return Decision(only=body, depth=returned_state.depth - 1, func=func)
            decided = self._leave(State("line", line, returned_state.depth - 1, func, {}), body)
            return replace(decided, depth=returned_state.depth - 1, func=func) if decided.only else None
        found = _statement(static, func, line)
        if found is None or header is not None or any(isinstance(n, _SCOPES) for n in ast.walk(found[0])):
            return None
        statement = found[0]
        if isinstance(statement, ast.Return | ast.Raise) or _conditional(statement, call):
            return None
        others = [c for c in ast.walk(statement) if isinstance(c, ast.Call) and c is not call]
        if others:
            return None  # another call may raise or run code after this one
        following = static.successors(func, line) - {line}
        if len(following) != 1:
            return None
        return Decision(only=next(iter(following)), depth=returned_state.depth - 1, func=func)

    def _unseen_caller(self, returned_state: State) -> tuple[State, frozenset[str]] | None:
        """The module's line and state when a function returns to module code the run has not seen (an
        eval item, a restart): the one module statement that calls it with arguments equal to the
        parameters it still holds, and the module's names then, from its straight-line statements before
        that one (a `def`'s function, a computed constant; imported names are the model's: the second
        item holds those names)."""
        static = self.static
        callee = returned_state.func
        if returned_state.depth != 1 or callee not in static.defs or "." in callee or static.global_rebinds:
            return None
        info = static.functions.get(callee)
        if info is None or not info.params:
            return None
        table = static.effects(callee)
        if table is None:
            return None
        stores: set[str] = set()
        for effect in table.values():
            stores |= effect.stores
        shown = returned_state.locals
        kept = _kept_objects(static, callee, shown)
        held = {
            i: shown[name] for i, name in enumerate(info.params)
            if name in shown and name not in stores and (fixed_text(shown[name]) or name in kept)
        }
        sites: list[int] = []
        for line in sorted(static.functions["<module>"].lines):
            found = _statement(static, "<module>", line)
            if found is None:
                continue
            calls = [n for n in ast.walk(found[0]) if isinstance(n, ast.Call) and _program_call(static, n)]
            mine = [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == callee]
            if not mine:
                continue
            if len(calls) != 1 or mine[0].keywords or any(isinstance(a, ast.Starred) for a in mine[0].args):
                return None  # a site this cannot tell apart
            try:
                given = [certain_repr(value_of(arg, {}, static.global_stores)) for arg in mine[0].args]
            except NotExact:
                return None
            if all(i < len(given) and given[i] == text for i, text in held.items()):
                sites.append(line)
        if len(sites) != 1:
            return None
        line = sites[0]
        names: dict[str, str] = {}
        unknown: set[str] = set()
        for statement in static.tree.body:
            if statement.lineno >= line:
                break
            if isinstance(statement, ast.FunctionDef) and not statement.decorator_list:
                names[statement.name] = f"<function {statement.name} at 0x?>"
                unknown.discard(statement.name)
            elif isinstance(statement, ast.ImportFrom):
                for alias in statement.names:
                    if alias.name == "*":
                        return None
                    names[alias.asname or alias.name] = "<?>"
                    unknown.add(alias.asname or alias.name)
            elif isinstance(statement, ast.Assign) and all(
                isinstance(t, ast.Name) for t in statement.targets
            ):
                try:
                    text = evaluate(statement.value, {n: t for n, t in names.items() if n not in unknown},
                                    static.global_stores - set(names))
                except NotExact:
                    return None
                for target in statement.targets:
                    assert isinstance(target, ast.Name)
                    names[target.id] = text
                    unknown.discard(target.id)
            elif not isinstance(statement, ast.Import | ast.Assert | ast.Expr | ast.Pass):
                return None  # a branch, a loop, a class, a decorated function...: not straight-line
        names = {n: t for n, t in names.items() if not (n.startswith("__") and n.endswith("__"))}
        return State("line", line, 0, "<module>", names), frozenset(unknown)

    # -- exceptions the code raises and this frame catches ------------------------------------------------
    def _caught(self, previous: State) -> Decision | None:
        frame = self.frames.get(previous.depth)
        caught = frame.error if frame is not None and frame.func == previous.func else None
        if caught is None or caught.line != previous.line:
            return None
        if previous.event == "handled":
            if caught.handler is None or not caught.handlers:
                return None
            return Decision(only=caught.handlers[0].lineno, keep_rest=True)  # each handler's test in turn
        found = self._handler(previous, caught.error)
        if found is None:
            return None  # not caught here, or by a handler that cannot be resolved: the model's
        caught.handler, caught.handlers = found
        return Decision(only=previous.line, event="handled", value=repr(caught.error), depth=previous.depth,
                        func=previous.func, frame=tuple(previous.locals.items()))

    def _handler(
        self, previous: State, error: BaseException
    ) -> tuple[ast.ExceptHandler, list[ast.ExceptHandler]] | None:
        """The handler of the innermost `try` around the line that catches `error` (builtin types only),
        with the handlers tested before it (and it)."""
        found = _statement(self.static, previous.func, previous.line)
        if found is None:
            return None
        statement, parents = found
        chain = [*parents, statement]
        for i in range(len(chain) - 1, 0, -1):
            node = chain[i - 1]
            if not isinstance(node, ast.Try) or not any(chain[i] is stmt for stmt in node.body):
                continue
            shadowed = _shadowed(self.static, previous.func)
            for number, handler in enumerate(node.handlers):
                if handler.type is None:
                    return handler, node.handlers[: number + 1]
                kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                classes = []
                for kind in kinds:
                    if not isinstance(kind, ast.Name) or kind.id in shadowed or kind.id in previous.locals:
                        return None
                    cls = getattr(builtins, kind.id, None)
                    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                        return None
                    classes.append(cls)
                if isinstance(error, tuple(classes)):
                    return handler, node.handlers[: number + 1]
            return None  # this try does not catch it (an outer one, or a finally, is the model's)
        return None

    def _into_handler(self, previous: State, caught: _Caught) -> Decision | None:
        """From the `except` line: the handler's body, with its name bound to the exception."""
        handler = caught.handler
        lines = [h.lineno for h in caught.handlers]
        if handler is None or previous.line not in lines or not handler.body:
            return None
        if previous.line != handler.lineno:  # an earlier handler's test failed: the next one's
            return Decision(only=lines[lines.index(previous.line) + 1], keep_rest=True)
        body = handler.body[0].lineno
        if body <= previous.line:
            return None
        values = {handler.name: repr(caught.error)} if handler.name else {}
        return Decision(only=body, values=values, keep_rest=True)

    def _comprehension(self, previous: State) -> Decision | None:
        """A simple statement around one inlined list, set or dict comprehension (over values the
        evaluator computes, calling no traced code; several `for` clauses, or a comprehension as its
        element, allowed): its line comes back at each loop's backward jump, the targets bound as they
        are then (an inner comprehension's cleared when it ends); after the last, the statement
        completes, the targets gone. Without history the step is found by the targets' values (left to
        the model when they repeat with different next steps)."""
        static = self.static
        info = static.functions.get(previous.func)
        found = _statement(static, previous.func, previous.line)
        if info is None or not info.function or found is None or static.has_classes:
            return None
        statement = found[0]
        kinds = ast.ListComp | ast.SetComp | ast.DictComp
        comps = [n for n in ast.walk(statement) if isinstance(n, kinds)]
        top = comps[0] if comps else None
        if top is None or any(gen.is_async for comp in comps for gen in comp.generators):
            return None
        chain: list[Any] = [top]  # the comprehensions, each the element of the one before
        while isinstance(getattr(chain[-1], "elt", None), kinds):
            chain.append(chain[-1].elt)
        if len(chain) != len(comps):
            return None  # a comprehension elsewhere (in a test, an iterable, a second one)
        if any(isinstance(n, ast.GeneratorExp | ast.Lambda | ast.NamedExpr) for n in ast.walk(statement)):
            return None
        shadowed = _shadowed(static, previous.func)
        if any(isinstance(n, ast.Call) and not _plain_call(n, shadowed) for n in ast.walk(statement)):
            return None  # traced code, or a method that could change the items while they are read
        targets = [n.id for comp in chain for gen in comp.generators for n in ast.walk(gen.target)
                   if isinstance(n, ast.Name)]
        root = _root(static, previous.func)
        if root is None or not targets:
            return None
        elsewhere = plain_stores(root)  # (another comprehension's target is its own, cleared after it)
        if set(targets) & (elsewhere | set(info.params) | info.cells):
            return None  # a name the frame also has outside the comprehension
        outer = {n: t for n, t in previous.locals.items() if n not in targets}
        try:
            value_of(top, outer, shadowed)  # every element and test computes (nothing raises)
            events = _comprehension_events(chain, outer, shadowed)
        except Exception:  # not certain, or the program raises there
            return None
        now = {n: previous.locals[n] for n in targets if n in previous.locals}
        at = [-1] if not now else [k for k, event in enumerate(events) if event == now]
        if not at:
            return None
        if all(k + 1 < len(events) for k in at):
            following = {tuple(events[k + 1].items()) for k in at}
            if len(following) != 1:
                return Decision(only=previous.line)  # the line again; which step it is, the model's
            after = {**outer, **events[at[0] + 1]}
            new = [n for n in after if n not in previous.locals]
            if len(new) > 1:
                return Decision(only=previous.line)  # the order the recorder lists new names in is its own
            names = [n for n in previous.locals if n in after] + new  # kept in place, a new one last
            return Decision(only=previous.line, depth=previous.depth, func=previous.func,
                            frame=tuple((n, after[n]) for n in names))
        if any(k + 1 < len(events) for k in at):
            return None  # the last step or not: the model's
        return self._completed(previous, statement, outer, targets)

    def _completed(
        self, previous: State, statement: ast.stmt, outer: Mapping[str, str], targets: list[str]
    ) -> Decision | None:
        """After a comprehension's last item: the statement's effects, its target names gone."""
        shadowed = _shadowed(self.static, previous.func)
        order = _frame_order(self.static, previous.func)
        if isinstance(statement, ast.Return):
            try:
                value = evaluate(statement.value, outer, shadowed) if statement.value is not None else "None"
            except NotExact:
                return None
            return Decision(only=previous.line, event="return", depth=previous.depth, func=previous.func,
                            frame=tuple(outer.items()), value=value)
        mutated: set[str] = set()
        try:
            computed = execute(statement, outer, shadowed, mutated)
        except NotExact:
            return None
        if mutated:
            return None  # an object changed in place: its aliases are the model's
        others = self.static.successors(previous.func, previous.line) - {previous.line}
        if len(others) != 1:
            return None
        after = {**outer, **computed}
        names = sorted(after, key=lambda n: order.index(n) if n in order else len(order))
        return Decision(only=next(iter(others)), depth=previous.depth, func=previous.func,
                        frame=tuple((n, after[n]) for n in names))

    def _simple(self, previous: State) -> Decision | None:
        """A simple statement that runs to its end: its one next line, or a computed `return`'s return."""
        found = _statement(self.static, previous.func, previous.line)
        scoped = found is not None and any(isinstance(sub, _SCOPES) for sub in ast.walk(found[0]))
        if not scoped and returned(self.static, previous) is not None:
            # (a comprehension's items come first, each a step of this line; a lambda or generator is a call)
            return Decision(only=previous.line, event="return")
        if not completes(self.static, previous):
            return self._call_into(previous)
        others = self.static.successors(previous.func, previous.line) - {previous.line}
        return Decision(only=next(iter(others))) if len(others) == 1 else None

    def _closed(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """Whether the program's function `name` can reach no object but its arguments (given immutable
        arguments, it then changed nothing of its caller's): no `global`/`nonlocal`, no class in the
        program, and every name it reads is its own, a builtin, or a function of the program that is
        closed too."""
        definition = self.static.defs.get(name)
        if definition is None or self.static.has_classes:
            return False
        info = self.static.functions.get(name)
        own = info.names if info is not None else frozenset()
        for node in ast.walk(definition):
            if isinstance(node, ast.Global | ast.Nonlocal):
                return False
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in own:
                if node.id in self.static.defs:
                    if node.id not in seen | {name} and not self._closed(node.id, seen | {name}):
                        return False
                elif node.id in self.static.global_stores or not hasattr(builtins, node.id):
                    return False
        return True

    def _call_into(self, previous: State) -> Decision | None:
        """A simple statement whose one call of the program's own code comes with exact arguments, after
        nothing else that runs traced code: the next state is that function's call, its parameters bound."""
        found = _statement(self.static, previous.func, previous.line)
        if found is None or any(isinstance(sub, _SCOPES) for sub in ast.walk(found[0])):
            return None
        statement = found[0]
        calls = [n for n in ast.walk(statement) if isinstance(n, ast.Call) and _program_call(self.static, n)]
        if len(calls) > 1:  # several: the first to run, when each surely runs with known arguments
            calls = _ordered_calls(self.static, statement) or []
        if not calls or _conditional(statement, calls[0]):
            return None
        call = calls[0]
        assert isinstance(call.func, ast.Name)
        if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
            return None
        shadowed = _shadowed(self.static, previous.func)
        if call.func.id in previous.locals or self.static.has_classes:
            return None  # a local's name; or an operator could run a class's dunder method before the call
        if not _builtin_calls_only(statement, previous, shadowed, self.static, allow=calls):
            return None
        return self._enter(call, previous.locals, shadowed, previous.depth + 1)

    def _enter(
        self, call: ast.Call, locals_: Mapping[str, str], shadowed: frozenset[str], depth: int
    ) -> Decision | None:
        """The call state of the program's function `call` names, its positional arguments computed over
        `locals_` and bound as Python binds them (None when one is not certain)."""
        assert isinstance(call.func, ast.Name)
        try:
            arguments = [certain_repr(value_of(arg, locals_, shadowed)) for arg in call.args]
        except NotExact:
            return None
        from neural.timeline import CallError, entry_state  # (timeline sits above this module)

        try:
            state = entry_state(self.static.code, f"{call.func.id}({', '.join(arguments)})", depth)
        except CallError:
            return None
        return Decision(only=state.line, event="call", depth=state.depth, func=state.func,
                        frame=tuple(state.locals.items()))

    def _leave(
        self, previous: State, body: int, values: Mapping[str, str] | None = None, keep_rest: bool = False
    ) -> Decision:
        """Not into the body: the one other line the control flow graph allows next, when there is one."""
        others = self.static.successors(previous.func, previous.line) - {body, previous.line}
        if len(others) == 1:
            return Decision(only=next(iter(others)), values=values or {}, keep_rest=keep_rest)
        return Decision(never=body, values=values or {}, keep_rest=keep_rest)


def target_before(static: StaticCode, current: State, header: int) -> tuple[str, str | None] | None:
    """Stepping back from `current` to the `for` line `header` of the same frame: (target, its repr when
    that line's event came, None when unbound then), when certain. From the body's first line the loop
    had just taken an item, so the target held the item before it (nothing before the first one); from
    the line after the loop the items had run out, which binds nothing."""
    node = compound(static, current.func, header)
    if not isinstance(node, ast.For) or not isinstance(node.target, ast.Name) or current.event != "line":
        return None
    name = node.target.id
    if current.line != node.body[0].lineno:
        if node.lineno <= current.line <= _body_end(node) or name not in current.locals:
            return None
        return name, current.locals[name]  # left the loop: the exhausted loop bound nothing
    at_header = State("line", header, current.depth, current.func, current.locals)
    memory = FlowMemory(static)
    try:
        source, taken = memory._resume(node, at_header)
        if source is None or taken < 1:
            return None
        if taken == 1:
            return name, None  # the first item: the loop's target was unbound (only this loop binds it)
        ok, item = source.item(taken - 2, current.locals)
        return (name, certain_repr(item)) if ok else None
    except Exception:  # not certain (NotExact), or the items cannot be read
        return None


__all__ = ["Decision", "FlowMemory", "compound", "target_before"]
