"""Per-code-object bytecode analysis: which locals each line may rebind, and whether it may mutate objects.

The recorder looks at a frame's locals only where something can have changed. Between two line steps of
one frame, only the instructions of the earlier line ran in that frame (plus any callees, which the
recorder sees and answers with a full check). So for each line we collect the names it stores or deletes,
and whether it has an instruction that can mutate an existing object without running traced code (a call
into a builtin or library, a subscript or attribute store, an in-place operator, a with statement...).
Instructions without a line number count for every line. Where a line's possible effects are all of a few
simple kinds, it also gets effect guards (below) that say at run time which objects it can have changed.
"""

from __future__ import annotations

import builtins
import collections
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import bytecode

_STORE_OPS = frozenset(
    {
        "STORE_FAST",
        "DELETE_FAST",
        "STORE_FAST_STORE_FAST",
        "STORE_FAST_LOAD_FAST",
        "STORE_FAST_MAYBE_NULL",
        "LOAD_FAST_AND_CLEAR",
        "STORE_NAME",
        "DELETE_NAME",
        "STORE_GLOBAL",
        "DELETE_GLOBAL",
        "STORE_DEREF",
        "DELETE_DEREF",
    }
)
# Instructions that can change an existing object while running only builtin or library code.
_MUTATING_OPS = frozenset(
    {
        "STORE_SUBSCR",
        "DELETE_SUBSCR",
        "STORE_SLICE",
        "STORE_ATTR",
        "DELETE_ATTR",
        "BEFORE_WITH",
        "BEFORE_ASYNC_WITH",
        "WITH_EXCEPT_START",
        "IMPORT_NAME",
        "IMPORT_FROM",
        "SEND",
        "YIELD_VALUE",
        "GET_AWAITABLE",
        "LOAD_SPECIAL",
        "STORE_GLOBAL",
        "DELETE_GLOBAL",
    }
)
_INPLACE_MIN = 13  # BinaryOp.INPLACE_ADD; every in-place operator has a value at or above it

# -- effect guards -----------------------------------------------------------------------------------------
# Most lines that "may mutate" only call a builtin function, call a method of a local, index a local or
# apply an in-place operator to one. For those the line gets guards instead of "recheck every mutable":
# at the next step the recorder looks at the types of the objects involved and learns that the line
# changed nothing, or changed only these objects (then only the names whose value is, or contains, one of
# them are looked at again), or that it cannot tell (every mutable is looked at again, as without guards).
# Like the rest of this analysis, a guard follows builtin code, not untraced Python code reached through
# dunder methods or lazy iterators. Traced callees always end in a full check.
#
# A guard is a tuple (kind, name, stored, attr_kinds, expected):
#   G_GLOBAL: a call of the builtin `name`; no effect while the frame's globals do not hide it and
#             builtins[name] is still `expected`.
#   G_METHOD: a call of method `attr` of local `name`; G_ITEM_METHOD: of an item of local `name` (no effect
#             when that local is a str or bytes: its items are too). attr_kinds: (list, dict, set, deque)
#             -> K_PURE / K_MUTATES / K_UNKNOWN for that method of an exact list, dict, set or
#             collections.deque; a method of an immutable builtin (str, int, tuple, ...) changes nothing.
#             `expected` holds attr: for settle(), a method of the program's own class that the recorder
#             traces is known (its frame's steps account for it), as for G_CALL.
#   G_SUBSCR: a subscript load from local `name`: no effect on an exact list, tuple, str, bytes, dict,
#             range, OrderedDict or Counter; a defaultdict may insert the key (only that object changes
#             when its default_factory is a builtin type or None; any other factory: "cannot tell").
#   G_STORE:  a subscript or slice store, or a delete, into local `name`: changes only that object when it
#             is an exact list or dict, defaultdict, OrderedDict or Counter. (G_METHOD treats those three
#             as dicts.)
#   G_INPLACE: an in-place operator on local `name`: nothing for an immutable builtin, only that object
#             for an exact list, dict or set.
#   G_CALL:   a call of global `name` that is not a builtin. When it is a library function of known effect
#             (LIBRARY_EFFECTS: `sqrt` after `from math import sqrt`, `heappush`), that effect; else the
#             line's own recheck cannot tell what it changed, and the object tracker's settled set
#             (tracer/_core/guards.c settle) counts it as known when `name` is a plain function the
#             recorder traces (its frame's steps account for it). attr_kinds: (None, the local passed as
#             first argument, or None).
#   G_LIBCALL: a call of attribute `attr` of global `name` (`math.sqrt(x)`, `heapq.heappush(h, x)`,
#             `helpers.f()`): the same, for `name.attr` when `name` is a module. attr_kinds: (attr, the
#             local passed as first argument, or None).
#             (Calls of local functions, closures and attributes of other objects remain "cannot tell".)
# `stored`: the line also binds `name` (once), so the object involved is its value before the line or
# after it; both are looked at.
# The C callbacks use the same numbers (tracer/_core/core.h): tracer/native.py refuses a build where one
# differs.
G_GLOBAL, G_METHOD, G_ITEM_METHOD, G_SUBSCR, G_STORE, G_INPLACE, G_CALL, G_LIBCALL = range(8)
# Library functions written in C whose effect is known, by (their module's __name__, their __name__): -1
# changes nothing (of the program's), k >= 0 changes only its argument k in place, when that is an exact
# list. Recognised by the function object called, whatever name the program imported it under. (As for
# the methods above, the dunder methods their comparisons or conversions call are not followed.)
LIBRARY_EFFECTS: dict[tuple[str, str], int] = {
    **{("_heapq", f): 0 for f in ("heappush", "heappop", "heapify", "heapreplace", "heappushpop")},
    **{("_bisect", f): -1 for f in ("bisect_left", "bisect_right")},
    **{("_bisect", f): 0 for f in ("insort_left", "insort_right")},
    **{("math", f): -1 for f in (
        "sqrt", "isqrt", "floor", "ceil", "trunc", "fabs", "fmod", "modf", "frexp", "ldexp", "copysign",
        "exp", "expm1", "log", "log1p", "log2", "log10", "pow", "sin", "cos", "tan", "asin", "acos", "atan",
        "atan2", "sinh", "cosh", "tanh", "hypot", "degrees", "radians", "gcd", "lcm", "comb", "perm",
        "factorial", "isclose", "isfinite", "isinf", "isnan", "erf", "erfc", "gamma", "lgamma",
    )},
    **{("time", f): -1 for f in ("time", "perf_counter", "monotonic", "process_time", "time_ns",
                                  "perf_counter_ns", "monotonic_ns")},
}


def library_effect(fn: object) -> int | None:
    """LIBRARY_EFFECTS for the function object fn (a builtin function of a module), or None: unknown."""
    if type(fn) is not types.BuiltinFunctionType:
        return None
    module = getattr(fn, "__self__", None)
    if type(module) is not types.ModuleType:
        return None
    return LIBRARY_EFFECTS.get((module.__name__, fn.__name__))


K_PURE, K_MUTATES, K_UNKNOWN = range(3)
# What a line did to a list under one name, for the compiled core's tracker (monitor.planned_lists).
PLAN_GROW, PLAN_ITEMS, PLAN_POP = range(3)
# Only builtins that neither iterate over an argument nor call one (those could run a bound method of a
# container, e.g. map(stack.pop, ...)); their dunder calls are treated like operators'.
PURE_BUILTINS = frozenset(
    {"len", "str", "repr", "ascii", "int", "float", "bool", "complex", "abs", "round", "divmod", "pow",
     "isinstance", "issubclass", "type", "hash", "id", "ord", "chr", "bin", "hex", "oct", "format",
     "callable", "range", "slice", "print"}
)
_METHODS: dict[type, tuple[frozenset[str], frozenset[str]]] = {  # (changes nothing, changes only self)
    list: (frozenset({"index", "count", "copy"}),
           frozenset({"append", "extend", "insert", "pop", "remove", "clear", "reverse", "sort"})),
    # The dict entry also serves its collections subclasses (defaultdict, OrderedDict, Counter: see
    # _DICT_LIKE); their own methods are listed too (an exact dict has none of them: calling one raises).
    dict: (frozenset({"get", "keys", "values", "items", "copy", "most_common", "elements", "total"}),
           frozenset({"setdefault", "pop", "popitem", "clear", "update", "move_to_end", "subtract"})),
    set: (frozenset({"copy", "union", "intersection", "difference", "symmetric_difference", "issubset",
                     "issuperset", "isdisjoint"}),
          frozenset({"add", "discard", "remove", "pop", "clear", "update", "intersection_update",
                     "difference_update", "symmetric_difference_update"})),
    collections.deque: (frozenset({"index", "count", "copy"}),
                        frozenset({"append", "appendleft", "pop", "popleft", "extend", "extendleft", "clear",
                                   "rotate", "remove", "reverse", "insert"})),
}
_METHOD_TYPES = (list, dict, set, collections.deque)  # the order of attr_kinds
_GROW_METHODS = frozenset({"append", "extend"})  # of a list: add items at its end, change nothing else
# Methods that act at one end of a list or deque only (pop: with no argument), for LinePlan.end_ops.
_END_METHODS = frozenset({"append", "appendleft", "pop", "popleft"})
IMMUTABLE_TYPES = (str, bytes, int, float, bool, complex, tuple, frozenset, type(None), range)
SUBSCR_PURE_TYPES = (list, tuple, str, bytes, dict, range)
# The guards read the instructions of CPython 3.12 and 3.13 (call and stack layout); other versions keep
# the plain rule (a call or store may change anything, a subscript load nothing). Module frames get them
# too (their names are their locals), evaluated by the Python recorder.
GUARDS_SUPPORTED = sys.version_info[:2] in ((3, 12), (3, 13))
_LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK"})
# Instructions that leave the stack alone (any other with no reported effect may replace an item on it).
_NO_STACK = frozenset(
    {"NOP", "RESUME", "EXTENDED_ARG", "CACHE", "NOT_TAKEN", "JUMP_FORWARD", "JUMP_BACKWARD",
     "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT", "KW_NAMES", "ENTER_EXECUTOR"}
)


def method_kinds(attr: str) -> tuple[int, int, int, int]:
    """What method `attr` of an exact list, dict, set and deque does (K_*)."""
    kinds = []
    for t in _METHOD_TYPES:
        pure, mutating = _METHODS[t]
        kinds.append(K_PURE if attr in pure else K_MUTATES if attr in mutating else K_UNKNOWN)
    return kinds[0], kinds[1], kinds[2], kinds[3]


@dataclass(slots=True)
class LinePlan:
    stores: tuple[str, ...]  # names to look at after this line ran (its stores + lineless ones)
    may_mutate: bool
    full: bool = False  # no analysis possible: check every local
    guards: tuple[tuple[Any, ...], ...] | None = None  # with may_mutate: what it may change (see above)
    # Names whose only effects on this line are calls of their append/extend methods (and subscript
    # loads), without a store of the name: when the guards hold at run time and the value is an exact
    # list, the line can only have added items at its end (tracer/objects.py then diffs just the tail).
    appends: frozenset[str] = frozenset()
    # Names whose only effect on this line is item stores `name[key] = ...` with keys that are locals the
    # line does not rebind: name -> those key names. With the guards holding, an exact list changed at
    # most at those indices (the object tracker then compares just them).
    item_stores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Names whose only effect on this line is one slice store `name[lo:hi] = ...` with bounds that are
    # locals the line does not rebind: name -> (lo, hi). With the guards holding, an exact list whose
    # length did not change changed only inside that slice.
    slice_stores: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Names whose only effect on this line is calls of one end method (append, appendleft, pop(),
    # popleft): name -> that method. With the guards holding, an exact list or deque changed only at that
    # end, by as many items as its length changed (tracer/objects.py end_op: no comparison of the rest).
    end_ops: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CodePlan:
    """What the recorder needs to know about one code object."""

    code_id: int
    is_module: bool
    lines: dict[int, LinePlan] = field(default_factory=dict)
    default: LinePlan = field(default_factory=lambda: LinePlan((), False))  # lines with no instructions
    offset_lines: dict[int, int] | None = None  # built on first backward jump
    fast: Any = None  # the same plan laid out for the C callbacks (monitor.fast_info), when they run

    def line_of_offset(self, code: types.CodeType, offset: int) -> int | None:
        table = self.offset_lines
        if table is None:
            table = {}
            for start, end, line in code.co_lines():
                if line is not None:
                    for off in range(start, end, 2):
                        table[off] = line
            self.offset_lines = table
        return table.get(offset)


def _arg_names(arg: object) -> list[str]:
    if isinstance(arg, str):
        return [arg]
    if isinstance(arg, tuple):
        names: list[str] = []
        for part in arg:
            names.extend(_arg_names(part))
        return names
    name = getattr(arg, "name", None)
    return [name] if isinstance(name, str) else []


_MISSING = object()


# collections' dict subclasses: item reads, stores and (dict's and their own) methods change only the
# object itself. A defaultdict's item read may insert the key: only when its default_factory is one of
# _SAFE_FACTORIES (or None) is that all it does.
_DICT_LIKE = (dict, collections.OrderedDict, collections.Counter, collections.defaultdict)
_SAFE_FACTORIES = (None, list, dict, set, int, float, str, tuple, bytes, frozenset, bool, collections.deque)


def _safe_factory(d: Any) -> bool:
    factory = getattr(d, "default_factory", list)
    return any(factory is f for f in _SAFE_FACTORIES)


def _effect(kind: int, obj: object, attr_kinds: Any) -> int:
    t = type(obj)
    if kind == G_SUBSCR:
        if t is collections.defaultdict:
            return K_MUTATES if _safe_factory(obj) else K_UNKNOWN  # may insert the key
        return K_PURE if t in SUBSCR_PURE_TYPES or t is collections.OrderedDict or t is collections.Counter \
            else K_UNKNOWN
    if kind == G_ITEM_METHOD:
        return K_PURE if t is str or t is bytes else K_UNKNOWN
    if kind != G_STORE and t in IMMUTABLE_TYPES:
        return K_PURE
    if kind == G_METHOD:
        if t in _DICT_LIKE:
            if t is collections.defaultdict and not _safe_factory(obj):
                return K_UNKNOWN
            t = dict
        return attr_kinds[_METHOD_TYPES.index(t)] if t in _METHOD_TYPES else K_UNKNOWN
    if kind == G_STORE:
        return K_MUTATES if t is list or t in _DICT_LIKE else K_UNKNOWN
    return K_MUTATES if t in (list, dict, set) else K_UNKNOWN  # G_INPLACE


def touched_objects(guards: tuple[tuple[Any, ...], ...], now: Any, before: dict[str, object],
                    globals_: dict[str, Any], builtins_: dict[str, Any]) -> list[object] | None:
    """What a guarded line may have changed: the objects (an empty list: nothing), or None: cannot tell.

    now: the frame's locals after the line (a mapping); before: the recorded values before it.
    """
    touched: list[object] = []
    for kind, name, stored, attr_kinds, expected in guards:
        if kind in (G_CALL, G_LIBCALL):
            fn = globals_.get(name, _MISSING)
            if kind == G_LIBCALL:
                fn = fn.__dict__.get(attr_kinds[0], _MISSING) if type(fn) is types.ModuleType else _MISSING
            effect = library_effect(fn)
            if effect is None:  # only settle() can tell (it knows which functions are traced)
                return None
            if effect >= 0:
                first = attr_kinds[1] if effect == 0 else None  # (the table's entries change argument 0)
                arg = now.get(first, _MISSING) if first is not None else _MISSING
                if type(arg) is not list:
                    return None
                if not any(arg is t for t in touched):
                    touched.append(arg)
            continue
        if kind == G_GLOBAL:
            if name in globals_ or builtins_.get(name) is not expected:
                return None
            continue
        candidates = [now.get(name, _MISSING)]
        if stored:
            candidates.append(before.get(name, _MISSING))
        candidates = [obj for obj in candidates if obj is not _MISSING]
        if not candidates:  # not a local now or before (a builtin read by LOAD_NAME): cannot tell
            return None
        for obj in candidates:
            effect = _effect(kind, obj, attr_kinds)
            if effect == K_UNKNOWN:
                return None
            if effect == K_MUTATES and not any(obj is t for t in touched):
                touched.append(obj)
    return touched


class _Effects:
    """The effect guards of one code object's lines, from a walk of its instructions (see G_* above).

    A small stack simulation remembers which instruction pushed each value, so a CALL knows its callable
    (a builtin loaded by LOAD_GLOBAL, or a method loaded from a local) and a subscript knows its container.
    The simulation only trusts values pushed in the same run of the same line (no other line's instructions
    and no jump target in between); at a jump target it forgets the whole stack.
    """

    def __init__(self, store_counts: dict[int, dict[str, int]], module: bool) -> None:
        self.store_counts = store_counts
        # In module code the frame's "locals" are its globals: LOAD_NAME reads one (or a builtin, which
        # the run-time check finds missing from the globals: "cannot tell").
        self.local_loads = _LOCAL_LOADS | {"LOAD_NAME"} if module else _LOCAL_LOADS
        self.module_code = module
        self.guards: dict[int, list[tuple[Any, ...]]] = {}
        self.uses: dict[int, dict[str, set[tuple[int, str]]]] = {}  # line -> name -> {(guard kind, attr)}
        self.item_keys: dict[int, dict[str, list[str | None]]] = {}  # line -> name -> STORE_SUBSCR keys
        self.slice_keys: dict[int, dict[str, list[tuple[str | None, str | None]]]] = {}  # STORE_SLICE bounds
        self.unknown: set[int] = set()
        self.stack: list[Any] = []
        self.run = 0
        self.attr = ""  # the method name of the G_METHOD guard being added

    def _pop(self, n: int) -> list[Any]:
        """The top n tags, top first (None where the stack is unknown)."""
        out = []
        for _ in range(n):
            out.append(self.stack.pop() if self.stack else None)
        return out

    def _local(self, tag: Any) -> str | None:
        return tag[1] if tag is not None and tag[0] == "local" and tag[2] == self.run else None

    def _guard(self, line: int, kind: int, name: str | None, attr_kinds: Any = None, expected: Any = None,
               inplace: bool = False) -> None:
        if name is None:
            self.unknown.add(line)
            return
        stores = self.store_counts.get(line, {}).get(name, 0)
        if stores > 1 or (inplace and stores != 1):
            self.unknown.add(line)
            return
        guard = (kind, name, stores == 1, attr_kinds, expected)
        attr = self.attr if kind == G_METHOD else ""
        self.uses.setdefault(line, {}).setdefault(name, set()).add((kind, attr))
        line_guards = self.guards.setdefault(line, [])
        if guard not in line_guards:
            line_guards.append(guard)

    def label(self) -> None:
        self.stack = []
        self.run += 1

    def step(self, instr: Any, line: int | None, risky: bool) -> None:
        """Simulate one instruction; `risky`: it may change objects (a call, a store, ...)."""
        name = instr.name
        run = self.run
        try:
            pre, post = instr.pre_and_post_stack_effect(jump=False)
        except Exception:  # an instruction bytecode cannot size: trust nothing on the stack
            self.stack = []
            if risky and line is not None:
                self.unknown.add(line)
            return
        if name in self.local_loads and isinstance(instr.arg, str):
            top = self.stack[-1] if self.stack else None
            if name == "LOAD_NAME" and top is not None and top[0] == "null" and top[1] == run:
                # 3.12's call of a module-level name: PUSH_NULL, LOAD_NAME f
                self.stack[-1:] = [("global", instr.arg, run)] * 2
            else:
                self.stack.append(("local", instr.arg, run, name == "LOAD_NAME"))
            return
        if name == "PUSH_NULL":
            top = self.stack[-1] if self.stack else None
            if top is not None and top[0] == "local" and top[2] == run and top[3]:
                # 3.13's call of a module-level name: LOAD_NAME f, PUSH_NULL
                self.stack[-1:] = [("global", top[1], run)] * 2
            elif top is not None and top[0] == "attribute" and top[3] == run:
                # 3.13's call of a global's attribute (module.f): as 3.12's LOAD_ATTR of a method
                self.stack[-1:] = [("method", top[1], top[2], run)] * 2
            else:
                self.stack.append(("null", run))
            return
        if name == "LOAD_FAST_LOAD_FAST" and isinstance(instr.arg, tuple):
            self.stack.extend(("local", part, run, False) for part in instr.arg)
            return
        if name == "STORE_FAST_LOAD_FAST" and isinstance(instr.arg, tuple):
            self._pop(1)
            self.stack.append(("local", instr.arg[1], run, False))
            return
        tag: tuple[Any, ...]
        if name == "LOAD_GLOBAL" and isinstance(instr.arg, tuple):
            tag = ("global", instr.arg[1], run)
            if instr.arg[0]:  # a call of it follows (callable and NULL)
                self.stack.extend((tag, tag))
            else:  # a value (a module whose attribute is called next, say)
                self.stack.append(("gvalue", instr.arg[1], run))
            return
        if name == "LOAD_ATTR" and isinstance(instr.arg, tuple) and instr.arg[0]:
            tag = ("method", self._pop(1)[0], instr.arg[1], run)
            self.stack.extend((tag, tag))
            return
        if name == "LOAD_ATTR" and isinstance(instr.arg, tuple):
            owner = self._pop(1)[0]
            # an attribute of a global (3.13 calls a module's function as LOAD_ATTR, PUSH_NULL)
            is_global = owner is not None and owner[0] == "gvalue" and owner[2] == run
            self.stack.append(("attribute", owner, instr.arg[1], run) if is_global else None)
            return
        if name == "SWAP" and isinstance(instr.arg, int) and len(self.stack) >= instr.arg:
            self.stack[-1], self.stack[-instr.arg] = self.stack[-instr.arg], self.stack[-1]
            return
        if name == "COPY" and isinstance(instr.arg, int) and len(self.stack) >= instr.arg:
            self.stack.append(self.stack[-instr.arg])
            return
        # bytecode's (pre, post): pre < 0 pops -pre items, pre > 0 pushes pre more items
        popped = self._pop(-pre) if pre < 0 else []
        post += max(pre, 0)
        pushed: Any = None
        if line is not None and risky:
            self._classify(instr, line, popped)
        if name in ("BINARY_SUBSCR", "BINARY_SLICE") and len(popped) >= 2:
            pushed = ("item", popped[-1], run)
            if line is not None:
                self._guard(line, G_SUBSCR, self._local(popped[-1]))
        if pre == 0 and post == 0 and name not in _NO_STACK and not name.startswith("POP_JUMP"):
            self.stack = []  # it may replace what is on the stack: trust nothing there
        self.stack.extend([pushed] * post)

    def _first_arg(self, instr: Any, line: int, popped: list[Any]) -> str | None:
        """The local passed as a plain CALL's first argument (not stored by the line), or None."""
        if instr.name != "CALL" or not isinstance(instr.arg, int) or instr.arg < 1 or len(popped) < 3:
            return None
        name = self._local(popped[-3])
        if name is None or self.store_counts.get(line, {}).get(name, 0):
            return None
        # a use the plan's list hints (appends, item stores, end operations) do not account for
        self.uses.setdefault(line, {}).setdefault(name, set()).add((G_LIBCALL, ""))
        return name

    def _classify(self, instr: Any, line: int, popped: list[Any]) -> None:
        name = instr.name
        if name in ("CALL", "CALL_KW") and len(popped) >= 2 and popped[-1] is popped[-2] is not None:
            tag = popped[-1]
            if tag[0] == "global" and tag[2] == self.run and tag[1] in PURE_BUILTINS:
                self._guard(line, G_GLOBAL, tag[1], expected=getattr(builtins, tag[1]))
                return
            if tag[0] == "global" and tag[2] == self.run and not self.module_code:
                self._guard(line, G_CALL, tag[1], attr_kinds=(None, self._first_arg(instr, line, popped)))
                return
            if tag[0] == "method" and tag[3] == self.run:
                receiver = tag[1]
                if (
                    receiver is not None and receiver[0] == "gvalue" and receiver[2] == self.run
                    and name == "CALL" and not self.module_code
                ):
                    self._guard(line, G_LIBCALL, receiver[1],
                                attr_kinds=(tag[2], self._first_arg(instr, line, popped)))
                    return
                kinds = method_kinds(tag[2])
                if self._local(receiver) is not None:
                    # pop(i) acts anywhere: only pop() is an end operation (LinePlan.end_ops)
                    self.attr = tag[2] if tag[2] != "pop" or instr.arg == 0 else "pop(i)"
                    self._guard(line, G_METHOD, receiver[1], kinds, expected=tag[2])
                    return
                if receiver is not None and receiver[0] == "item" and receiver[2] == self.run:
                    self._guard(line, G_ITEM_METHOD, self._local(receiver[1]), kinds)
                    return
        elif name in ("STORE_SUBSCR", "DELETE_SUBSCR") and len(popped) >= 2:
            target = self._local(popped[1])
            self._guard(line, G_STORE, target)
            if target is not None:  # a delete shifts the items after it: no key can say where it acted
                key = self._local(popped[0]) if name == "STORE_SUBSCR" else None
                self.item_keys.setdefault(line, {}).setdefault(target, []).append(key)
            return
        elif name == "STORE_SLICE" and len(popped) == 4:  # stop, start, container, value (top first)
            target = self._local(popped[2])
            self._guard(line, G_STORE, target)
            if target is not None:  # a slice store can shift the items after it: no key says where it acted
                self.item_keys.setdefault(line, {}).setdefault(target, []).append(None)
                bounds = (self._local(popped[1]), self._local(popped[0]))
                self.slice_keys.setdefault(line, {}).setdefault(target, []).append(bounds)
            return
        elif name == "BINARY_OP" and len(popped) == 2:
            self._guard(line, G_INPLACE, self._local(popped[1]), inplace=True)
            return
        self.unknown.add(line)


def analyse(code: types.CodeType, code_id: int) -> CodePlan:
    """Build the plan of one code object (once per code object; cheap next to running it)."""
    is_module = code.co_name == "<module>"
    plan = CodePlan(code_id=code_id, is_module=is_module)
    stores: dict[int, set[str]] = {}
    store_counts: dict[int, dict[str, int]] = {}
    mutating: set[int] = set()
    always: set[str] = set()
    names: list[str]
    lineless_mutation = False
    guarded = GUARDS_SUPPORTED
    try:
        instructions = list(bytecode.Bytecode.from_code(code))
    except Exception:  # an analysis we cannot do means every step gets a full check
        plan.lines = {}
        plan.default = LinePlan((), True, full=True)
        return plan
    for instr in instructions:
        if isinstance(instr, bytecode.Instr) and instr.name in _STORE_OPS:
            line = instr.lineno if isinstance(instr.lineno, int) and instr.lineno > 0 else None
            if line is not None:
                counts = store_counts.setdefault(line, {})
                stored = _arg_names(instr.arg)
                if instr.name == "STORE_FAST_LOAD_FAST":
                    stored = stored[:1]
                for n in stored:
                    counts[n] = counts.get(n, 0) + 1
    effects = _Effects(store_counts, is_module)
    last_line: int | None = None
    for instr in instructions:
        if isinstance(instr, bytecode.Label):
            effects.label()
            continue
        if not isinstance(instr, bytecode.Instr):
            continue
        line = instr.lineno if isinstance(instr.lineno, int) and instr.lineno > 0 else None
        if line != last_line:
            effects.label()  # another line's instructions: a new run
            last_line = line
        name = instr.name
        if name in _STORE_OPS or name == "SETUP_ANNOTATIONS":
            names = _arg_names(instr.arg) if name != "SETUP_ANNOTATIONS" else ["__annotations__"]
            if line is None:
                always.update(names)
            else:
                stores.setdefault(line, set()).update(names)
        mut = name in _MUTATING_OPS or (name.startswith("CALL") and name != "CALL_INTRINSIC_1")
        if name == "BINARY_OP":
            try:
                mut = int(instr.arg) >= _INPLACE_MIN  # type: ignore[arg-type]
            except (TypeError, ValueError):
                mut = True
        if guarded:
            effects.step(instr, line, mut)
            if name in ("BINARY_SUBSCR", "BINARY_SLICE"):
                mut = True  # a guard says whether it can change anything (a defaultdict inserts)
        if mut:
            if line is None:
                lineless_mutation = True
            else:
                mutating.add(line)
        if line is not None:
            stores.setdefault(line, set())
    for line, line_names in stores.items():
        may_mutate = line in mutating or lineless_mutation
        guards = None
        if guarded and may_mutate and not lineless_mutation and line not in effects.unknown:
            guards = tuple(effects.guards.get(line, ()))
        appends: frozenset[str] = frozenset()
        if guards is not None:
            appends = frozenset(
                name for name, uses in effects.uses.get(line, {}).items()
                if name not in line_names and all(
                    (kind == G_METHOD and attr in _GROW_METHODS) or kind == G_SUBSCR for kind, attr in uses
                ) and any(kind == G_METHOD for kind, _attr in uses)
            )
        item_stores: dict[str, tuple[str, ...]] = {}
        if guards is not None:
            for name, keys in effects.item_keys.get(line, {}).items():
                uses = effects.uses.get(line, {}).get(name, set())
                if (
                    name not in line_names
                    and all(kind in (G_STORE, G_SUBSCR) for kind, _attr in uses)
                    and all(key is not None and key not in line_names for key in keys)
                ):
                    item_stores[name] = tuple(sorted({key for key in keys if key is not None}))
        slice_stores: dict[str, tuple[str, str]] = {}
        if guards is not None:
            for name, bounds_list in effects.slice_keys.get(line, {}).items():
                uses = effects.uses.get(line, {}).get(name, set())
                if len(bounds_list) != 1 or len(effects.item_keys.get(line, {}).get(name, ())) != 1:
                    continue
                lo, hi = bounds_list[0]
                if (
                    name not in line_names and lo is not None and hi is not None
                    and lo not in line_names and hi not in line_names
                    and all(kind in (G_STORE, G_SUBSCR) for kind, _attr in uses)
                ):
                    slice_stores[name] = (lo, hi)
        end_ops: dict[str, str] = {}
        if guards is not None:
            for name, uses in effects.uses.get(line, {}).items():
                if name not in line_names and len(uses) == 1:
                    ((kind, attr),) = uses
                    if kind == G_METHOD and attr in _END_METHODS:
                        end_ops[name] = attr
        plan.lines[line] = LinePlan(tuple(sorted(line_names | always)), may_mutate, guards=guards,
                                    appends=appends, item_stores=item_stores, slice_stores=slice_stores,
                                    end_ops=end_ops)
    plan.default = LinePlan(tuple(sorted(always)), lineless_mutation)
    return plan
