"""What a predicted state may say: static facts about the code, and the checks constrained decoding applies.

The model writes a state header `EVENT LINE DEPTH FUNC`. Constrained decoding lets it write only a header
from `allowed_headers`: FUNC must be a code object of the program (its qualified name, as the recorder
names frames), LINE a line where that code object has instructions (the `def` line for a call), DEPTH one
the action can reach from the previous state, and, where the state continues the same frame by one step
(step_into or step_over from a line), LINE a successor of the previous line in the bytecode's control flow
graph (jumps, fall-through and exception handlers). The rest of a state (locals, value) is checked after
decoding by `check_state`: every value must read as a Python repr.
"""

from __future__ import annotations

import ast
import bisect
import dis
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from neural.textformat import escape
from neural.trajectory import CLOSE_EVENTS, OPEN_EVENTS, Action, State

_STOP_OPS = frozenset(
    {
        "RETURN_VALUE",
        "RETURN_CONST",
        "RAISE_VARARGS",
        "RERAISE",
        "JUMP_FORWARD",
        "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT",
        "JUMP",
        "JUMP_NO_INTERRUPT",
    }
)
_JUMP_OPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs) | frozenset(getattr(dis, "hasjump", ()))
_FRAME_EVENTS = ("line", "exception", "handled", "return", "yield", "unwind")
_OBJECT_REPR = re.compile(r"<[^<>]*(<[^<>]*>[^<>]*)*>", re.S)  # <Foo object at 0x?>, <function f at ...>
MAX_DEPTH = 64
VALUE_EVENTS = frozenset({"return", "yield", "exception", "handled"})  # an unwind may carry one or not


class CodeError(ValueError):
    """Source text that does not compile."""


@dataclass(slots=True)
class CodeInfo:
    """One code object of the program: its name, first line, lines and line-to-line control flow."""

    qualname: str
    calls: frozenset[int]  # the lines a "call" event reports (co_firstlineno; 0 for the module)
    lines: frozenset[int]
    successors: dict[int, frozenset[int]] = field(default_factory=dict)
    generator: bool = False
    function: bool = True  # False for a module or class body (whose first line event is its own first line)
    exits: frozenset[int] = frozenset()  # lines with a return instruction: where a "return" event can be
    params: tuple[str, ...] = ()  # a call state's names, in frame order (positional, keyword-only, *, **)
    free: tuple[str, ...] = ()  # closure variables: shown after the parameters once bound
    names: frozenset[str] = frozenset()  # every name a frame of this code can show
    cells: frozenset[str] = frozenset()  # names an inner function may rebind (nonlocal)
    codes: list[CodeType] = field(default_factory=list)


@dataclass(slots=True)
class StaticCode:
    """Static facts about one file's code, for constraining predicted states."""

    code: str
    functions: dict[str, CodeInfo]
    returns: dict[str, list[int]]  # qualified name -> lines of its return statements
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    global_stores: frozenset[str] = frozenset()  # module names any code of the program may rebind
    global_rebinds: frozenset[str] = frozenset()  # module names functions rebind (`global`): calls may
    has_classes: bool = False  # a class can give operators traced code (dunder methods)
    tree: ast.Module = field(default_factory=lambda: ast.Module([], []))
    _effects: dict[str, dict[int, LineEffect] | None] = field(default_factory=dict)
    # Pure standard modules (neural.exact can compute their functions) that the module imports once, plainly
    # (`import math`), and that no code rebinds: `math.sqrt(n)` is then the real one.
    imported: frozenset[str] = frozenset()

    @classmethod
    def from_source(cls, code: str, filename: str = "<predicted>") -> StaticCode:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the program's own SyntaxWarnings are not ours to show
                module = compile(code, filename, "exec", dont_inherit=True)
                tree = ast.parse(code)
        except (SyntaxError, ValueError) as exc:
            raise CodeError(f"the code does not compile: {exc}") from None
        functions: dict[str, CodeInfo] = {}
        global_stores: frozenset[str] = frozenset()
        rebinds: frozenset[str] = frozenset()
        for obj in _code_objects(module):
            name = "<module>" if obj is module else obj.co_qualname
            lines = frozenset(line for _s, _e, line in obj.co_lines() if line is not None and line > 0)
            stored = _stored_names(obj)
            global_stores |= stored["global"]
            if obj is not module:
                rebinds |= stored["global"]
            function = bool(obj.co_flags & 0x1)  # CO_OPTIMIZED: a function, not a module or class body
            count = obj.co_argcount + obj.co_kwonlyargcount
            count += bool(obj.co_flags & 0x4) + bool(obj.co_flags & 0x8)  # *args, **kwargs
            info = CodeInfo(
                name,
                frozenset({0 if obj is module else obj.co_firstlineno}),
                lines,
                _line_successors(obj),
                bool(obj.co_flags & (0x20 | 0x200 | 0x80)),
                function,
                _return_lines(obj),
                obj.co_varnames[:count] if function else (),
                obj.co_freevars if function else (),
                frozenset(obj.co_varnames) | frozenset(obj.co_cellvars) | frozenset(obj.co_freevars)
                | stored["local"],
                frozenset(obj.co_cellvars),
                [obj],
            )
            if name in functions:  # two code objects with one name (redefinition): merge what they allow
                old = functions[name]
                merged = dict(old.successors)
                for line, succ in info.successors.items():
                    merged[line] = merged.get(line, frozenset()) | succ
                info = CodeInfo(
                    name,
                    old.calls | info.calls,
                    old.lines | info.lines,
                    merged,
                    old.generator or info.generator,
                    old.function and info.function,
                    old.exits | info.exits,
                    old.params if old.params == info.params else (),
                    old.free if old.free == info.free else (),
                    old.names | info.names,
                    old.cells | info.cells,
                    old.codes + info.codes,
                )
            functions[name] = info
        returns: dict[str, list[int]] = {}
        defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for qualname, node in _function_defs(tree):
            defs.setdefault(qualname, node)
            returns[qualname] = sorted(sub.lineno for sub in _own_nodes(node) if isinstance(sub, ast.Return))
        top = functions["<module>"]
        # A module frame shows its globals without dunder names (and without modules, known only at run time).
        top.names = frozenset(
            n for n in top.names | global_stores if not (n.startswith("__") and n.endswith("__"))
        )
        classes = any(isinstance(node, ast.ClassDef) for node in ast.walk(tree))
        static = cls(code, functions, returns, defs, global_stores, rebinds, classes, tree)
        static.imported = _plain_imports(tree)
        return static

    def function_of_line(self, line: int) -> list[str]:
        """The code objects with instructions on `line`, innermost (latest starting) first."""
        found = [info for info in self.functions.values() if line in info.lines]
        found.sort(key=lambda info: -max(info.calls))
        return [info.qualname for info in found]

    def call_names(self, func: str, line: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(parameters, free variables) of a call state of func on `line`: the code object that starts
        there when several share the name (the generator expressions of one function)."""
        info = self.functions[func]
        if len(info.codes) > 1:
            here = [code for code in info.codes if code.co_firstlineno == line]
            if len(here) == 1 and here[0].co_flags & 0x1:
                code = here[0]
                count = code.co_argcount + code.co_kwonlyargcount
                count += bool(code.co_flags & 0x4) + bool(code.co_flags & 0x8)
                return code.co_varnames[:count], code.co_freevars
        return info.params, info.free

    def effects(self, func: str) -> dict[int, LineEffect] | None:
        """What each line of `func` may change, from the recorder's own analysis (None: cannot tell)."""
        if func not in self._effects:
            self._effects[func] = _effects(self.functions[func].codes) if func in self.functions else None
        return self._effects[func]

    def predecessors(self, func: str, line: int) -> frozenset[int] | None:
        """The lines of `func` whose control flow can lead to `line` (the function's first line, `calls`,
        for its entry), or None when the flow graph cannot say (a generator resumes at any yield; code that
        catches or cleans up can reach a line from an exception event)."""
        info = self.functions.get(func)
        if info is None or info.generator or line not in info.lines or self.catches(func):
            return None
        return frozenset(before for before, after in info.successors.items() if line in after)

    def _own(self, func: str) -> Iterable[ast.AST] | None:
        """The nodes of `func`'s own code (not of code nested in it); None for code without a def."""
        if func == "<module>":
            return _own_nodes(self.tree)
        return _own_nodes(self.defs[func]) if func in self.defs else None

    def may_call(self, func: str, line: int) -> bool:
        """Whether running `line` of `func` may start another frame of this code: a call, a `for` (a
        generator), a decorator, a class body; with classes in the program, any line (dunder methods)."""
        nodes = self._own(func)
        if self.has_classes or nodes is None:
            return True
        for node in nodes:
            if isinstance(node, ast.Call | ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.Await):
                if node.lineno <= line <= (node.end_lineno or node.lineno):
                    return True
            elif (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.decorator_list
                and node.lineno - len(node.decorator_list) <= line <= node.lineno
            ):
                return True
        return False

    def catches(self, func: str) -> bool:
        """Whether `func`'s own code has a try or with statement (exceptions can jump inside it)."""
        nodes = self._own(func)
        if nodes is None:
            return True
        return any(isinstance(node, ast.Try | ast.TryStar | ast.With | ast.AsyncWith) for node in nodes)

    def successors(self, func: str, line: int) -> frozenset[int]:
        info = self.functions.get(func)
        if info is None:
            return frozenset()
        # A line the graph knows that leads nowhere (a return, a raise, the module's end) has no next line.
        return info.successors.get(line, info.lines)


@dataclass(frozen=True, slots=True)
class LineEffect:
    """What running one line can change in its frame (tracer.plan's analysis, merged over code objects)."""

    stores: frozenset[str]  # names it may bind or delete
    mutates: bool  # it may change an existing object
    guards: tuple[tuple[Any, ...], ...] | None  # with mutates: the only objects it can change (tracer.plan)
    iterates: bool = False  # it advances an iterator (a generator's code may run: step_over skips it)


_ANYTHING = LineEffect(frozenset(), True, None, True)  # marks a line on which any name may change


PURE_MODULES = frozenset({"math"})


def _plain_imports(tree: ast.Module) -> frozenset[str]:
    """The PURE_MODULES the module binds exactly once, by a top-level `import NAME`, and nothing rebinds."""
    out = set()
    for name in PURE_MODULES:
        bindings = 0
        plain = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
                bindings += 1
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound == name:
                        bindings += 1
                        plain = plain or (isinstance(node, ast.Import) and node in tree.body
                                          and alias.name == name and alias.asname is None)
            else:
                named = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name
                named = named or (isinstance(node, ast.arg) and node.arg)
                declared = isinstance(node, ast.Global | ast.Nonlocal) and name in node.names
                bindings += named == name or declared
        if bindings == 1 and plain:
            out.add(name)
    return frozenset(out)


def _effects(codes: list[CodeType]) -> dict[int, LineEffect] | None:
    from tracer.plan import analyse

    out: dict[int, LineEffect] = {}
    for code in codes:
        plan = analyse(code, id(code))
        if plan.default.full:
            return None
        instructions = [inst for inst in dis.get_instructions(code) if inst.positions is not None]
        iterating = {
            inst.positions.lineno  # type: ignore[union-attr]
            for inst in instructions
            if inst.opname in ("FOR_ITER", "SEND", "GET_ANEXT", "END_ASYNC_FOR")
        }
        if not code.co_flags & 0x1:
            # A comprehension inlined in module or class code shows its own variables while it runs (the
            # frame's locals are not its globals then): on such a line any name may come or go.
            hidden = {
                inst.positions.lineno  # type: ignore[union-attr]
                for inst in instructions
                if inst.opname == "LOAD_FAST_AND_CLEAR"
            }
            if hidden:
                out.update({line: _ANYTHING for line in hidden if line})
        for line, lp in plan.lines.items():
            effect = LineEffect(
                frozenset(lp.stores), lp.may_mutate, lp.guards if lp.may_mutate else (), line in iterating
            )
            old = out.get(line)
            if old is _ANYTHING:
                continue
            if old is not None:  # two code objects on one line (a redefinition): either may run
                guards = None if old.guards is None or effect.guards is None else old.guards + effect.guards
                effect = LineEffect(
                    old.stores | effect.stores,
                    old.mutates or effect.mutates,
                    guards,
                    old.iterates or effect.iterates,
                )
            out[line] = effect
        default = LineEffect(frozenset(plan.default.stores), plan.default.may_mutate, None)
        out[0] = default if 0 not in out else LineEffect(
            out[0].stores | default.stores, out[0].mutates or default.mutates, None
        )
    return out


def _stored_names(code: CodeType) -> dict[str, frozenset[str]]:
    """The names a code object's own instructions bind or delete: as locals, and as module globals."""
    local: set[str] = set()
    global_: set[str] = set()
    for inst in dis.get_instructions(code):
        if inst.opname == "SETUP_ANNOTATIONS":
            local.add("__annotations__")
        elif inst.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            global_.add(str(inst.argval))
        elif inst.opname.startswith(("STORE_", "DELETE_")) and isinstance(inst.argval, str) and \
                inst.opname not in ("STORE_ATTR", "DELETE_ATTR", "STORE_SUBSCR", "DELETE_SUBSCR"):
            local.add(inst.argval)
    if code.co_name == "<module>":
        global_ |= local
    return {"local": frozenset(local), "global": frozenset(global_)}


def _code_objects(code: CodeType) -> Iterable[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_objects(const)


def _return_lines(code: CodeType) -> frozenset[int]:
    found = set()
    for inst in dis.get_instructions(code):
        if inst.opname in ("RETURN_VALUE", "RETURN_CONST") and inst.positions is not None:
            found.add(inst.positions.lineno or 0)
    return frozenset(found - {0})


def _line_successors(code: CodeType) -> dict[int, frozenset[int]]:
    """For each line, the lines execution can reach next in this code object (a line may follow itself)."""
    instructions = list(dis.get_instructions(code))
    if not instructions:
        return {}
    index = {inst.offset: i for i, inst in enumerate(instructions)}
    # An instruction without a line (an exception handler's prologue, cleanup) is passed through.
    lines: list[int | None] = [
        inst.positions.lineno if inst.positions is not None and inst.positions.lineno else None
        for inst in instructions
    ]
    handlers: list[tuple[int, int, int]] = []
    for entry in getattr(dis.Bytecode(code), "exception_entries", ()):
        if entry.target in index:
            handlers.append((entry.start, entry.end, index[entry.target]))

    def edges(i: int) -> list[tuple[int, bool]]:
        inst = instructions[i]
        out: list[tuple[int, bool]] = []
        if inst.opname not in _STOP_OPS and i + 1 < len(instructions):
            out.append((i + 1, False))
        if inst.opcode in _JUMP_OPS and isinstance(inst.argval, int) and inst.argval in index:
            out.append((index[inst.argval], True))
        for start, end, target in handlers:
            if start <= inst.offset < end:
                out.append((target, True))
        return out

    result: dict[int, set[int]] = {}
    starts: dict[int, list[int]] = {}
    for i, line in enumerate(lines):
        if line is not None:
            starts.setdefault(line, []).append(i)
    for line, first in starts.items():
        found: set[int] = set()
        seen = set(first)
        todo = list(first)
        while todo:
            i = todo.pop()
            for j, jumped in edges(i):
                target_line = lines[j]
                if target_line is not None and target_line != line:
                    found.add(target_line)
                    continue
                if jumped and target_line == line and instructions[j].offset <= instructions[i].offset:
                    found.add(line)  # a backward jump into the same line: a one-line loop's next round
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        result[line] = found
    return {line: frozenset(found) for line, found in result.items()}


def _function_defs(
    tree: ast.AST, prefix: str = ""
) -> Iterable[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            yield name, node
            yield from _function_defs(node, name + ".<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _function_defs(node, prefix + node.name + ".")
        else:
            yield from _function_defs(node, prefix)


def _own_nodes(func: ast.AST) -> Iterable[ast.AST]:
    """The nodes of a function's body, not those of functions or classes nested in it."""
    todo = list(ast.iter_child_nodes(func))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))


def compact_code(code: str, func: str, callers: bool = True) -> tuple[str, list[int]]:
    """`code` without the lines that cannot matter to `func`, and the original number of each line kept.

    Kept: the top-level definitions `func`'s top-level function names, transitively, and (with `callers`)
    those that name it or a function that does (where its returns go), with what they name in turn; and
    module-level statements other than docstrings and the `if __name__ == "__main__":` block.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code, list(range(1, len(code.splitlines()) + 1))
    definitions = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    top = {n.name: n for n in tree.body if isinstance(n, definitions)}
    names = {name: {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id in top}
             for name, node in top.items()}
    wanted = {func.split(".")[0]} & set(top)
    if callers:  # the callers of func, transitively
        todo = list(wanted)
        while todo:
            called = todo.pop()
            for name, named in names.items():
                if called in named and name not in wanted:
                    wanted.add(name)
                    todo.append(name)
    todo = list(wanted)
    while todo:  # and everything they name, transitively
        for name in names[todo.pop()]:
            if name not in wanted:
                wanted.add(name)
                todo.append(name)
    blank: set[int] = set()
    for node in tree.body:
        end = node.end_lineno or node.lineno
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
            isinstance(node.value.value, str)
        unused = bool(wanted) and isinstance(node, definitions) and node.name not in wanted
        main_block = bool(wanted) and isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
        if docstring or unused or main_block:
            blank.update(range(first, end + 1))
    out: list[str] = []
    kept: list[int] = []
    for number, line in enumerate(code.splitlines(), 1):
        third_blank = not line.strip() and len(out) >= 2 and not out[-1].strip() and not out[-2].strip()
        if number in blank or third_blank:
            continue  # a removed statement, or a third blank line in a row
        out.append(line)
        kept.append(number)
    while out and not out[0].strip():
        out.pop(0)
        kept.pop(0)
    return "\n".join(out) + "\n", kept


# -- headers -------------------------------------------------------------------------------------------------
def header(event: str, line: int, depth: int, func: str) -> str:
    return f"{event} {line} {depth} {escape(func)}"


class HeaderSet:
    """A sorted set of header strings with prefix queries (for token-by-token constrained decoding)."""

    def __init__(self, headers: Iterable[str]) -> None:
        self.items = sorted(set(headers))

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        i = bisect.bisect_left(self.items, text)
        return i < len(self.items) and self.items[i] == text

    def has_prefix(self, prefix: str) -> bool:
        i = bisect.bisect_left(self.items, prefix)
        return i < len(self.items) and self.items[i].startswith(prefix)

    def forced(self, prefix: str) -> str:
        """The longest text every header starting with `prefix` starts with (`prefix` itself when the
        headers part there, or when `prefix` is a header another one extends; '' when none starts so)."""
        i = bisect.bisect_left(self.items, prefix)
        if i >= len(self.items) or not self.items[i].startswith(prefix):
            return ""
        j = bisect.bisect_left(self.items, prefix + "\U0010ffff") - 1  # the last one with the prefix
        first, last = self.items[i], self.items[j]
        n = len(prefix)
        while n < len(first) and n < len(last) and first[n] == last[n]:
            n += 1
        return first[:n]

    def completions(self, prefix: str) -> list[str]:
        i = bisect.bisect_left(self.items, prefix)
        out = []
        while i < len(self.items) and self.items[i].startswith(prefix):
            out.append(self.items[i])
            i += 1
        return out


def allowed_headers(static: StaticCode, previous: State, action: Action) -> HeaderSet:
    """The headers the state after `action` from `previous` may have (never empty)."""
    d = previous.depth
    out: set[str] = set()
    funcs = static.functions
    same = funcs.get(previous.func)
    closed = previous.event in CLOSE_EVENTS

    def frame(
        depth: int, info: CodeInfo | None, events: Iterable[str], lines: Iterable[int] | None = None
    ) -> None:
        if depth < 0 or depth > MAX_DEPTH:
            return
        infos = [info] if info is not None else list(funcs.values())
        for one in infos:
            for event in events:
                chosen = lines if lines is not None else (one.calls if event == "call" else one.lines)
                if event == "return" and one.exits:
                    chosen = [line for line in chosen if line in one.exits]
                for line in chosen:
                    if line in one.lines or (event == "call" and line in one.calls):
                        out.add(header(event, line, depth, one.qualname))

    def calls(depth: int) -> None:
        for info in funcs.values():
            if info.qualname != "<module>":
                frame(depth, info, ("call",))
            if info.generator:
                frame(depth, info, ("resume",))

    def next_in_frame(events: Iterable[str]) -> None:
        # The same frame one step on: a line follows the previous line in the control flow graph.
        if same is None:
            return
        successors = None
        if previous.line in same.lines and previous.event not in ("exception", "handled"):
            successors = static.successors(same.qualname, previous.line)  # (exceptions can go anywhere)
        if successors is not None and previous.event in OPEN_EVENTS and (not same.function or not successors):
            # A class body's first line is its `class` line; a one-line function's (a lambda's) is its own.
            successors = successors | {previous.line}
        for event in events:
            lines = successors if event == "line" and successors is not None else None
            frame(d, same, (event,), lines)

    name = action.name
    if name in ("step_into", "step_over"):
        if not closed:
            next_in_frame(("line",))
            frame(d, same, ("exception", "handled", "return", "yield", "unwind"))
            if name == "step_into":
                calls(d + 1)
        else:  # back in the caller (any traced function), or the caller calls again at this depth
            frame(d - 1, None, _FRAME_EVENTS)
            calls(d)
    elif name == "step_return":
        if not closed:
            frame(d, same, ("return", "yield", "unwind"))
        else:
            frame(d - 1, None, ("return", "yield", "unwind"))
    elif name == "breakpoint":
        for func in static.function_of_line(action.line) or list(funcs):
            for depth in range(0, min(MAX_DEPTH, d + 16) + 1):
                frame(depth, funcs.get(func), ("line",), (action.line,))
        for depth in range(0, d + 1):  # the line is never reached: the program runs to its end
            frame(depth, None, ("return", "unwind"))
    elif name == "continue":
        for depth in range(0, d + 1):
            frame(depth, None, ("return", "unwind"))
    elif name == "back_to_call" and previous.event not in OPEN_EVENTS and same is not None:
        # The open node of this very frame, where its inputs are: a call, or a generator's resume.
        frame(d, same, ("call", "resume") if same.generator else ("call",))
    elif name in ("step_back", "step_back_over") and same is not None and (
        earlier := _earlier_in_frame(static, previous)
    ) is not None:
        # The frame's own previous node: the flow graph's predecessors of the line (or the call, at its
        # first line); a close event follows its line. step_back may instead land on a callee's close.
        for event, line in earlier:
            frame(d, same, (event,), (line,))
        if name == "step_back" and any(
            event != "call" and static.may_call(same.qualname, line) for event, line in earlier
        ):
            frame(d + 1, None, CLOSE_EVENTS)
    else:  # other inverse actions: history is less structured (async tasks, sibling calls): any frame nearby
        events = ("call", "resume") if name == "back_to_call" else ("call", "resume", *_FRAME_EVENTS)
        for depth in range(d - 1, d + (2 if name == "step_back" else 1)):
            frame(depth, None, events)
    if not out:  # nothing fits the rules (a state outside the code): allow any frame at a nearby depth
        for depth in range(max(0, d - 1), d + 2):
            frame(depth, None, ("line", "call", "return"))
    return HeaderSet(out)


def may_be_bound(static: StaticCode, func: str, line: int) -> frozenset[str] | None:
    """The names a frame of `func` may have bound once `line` has run (None: cannot tell): the stores of
    every line that can run before it, itself included, with the parameters, cells and free variables, and
    in module code the globals other code may bind."""
    info = static.functions.get(func)
    table = static.effects(func)
    if info is None or table is None or info.generator:
        return None
    before: dict[int, set[int]] = {}
    for earlier, later in info.successors.items():
        for one in later:
            before.setdefault(one, set()).add(earlier)
    seen = {line}
    todo = [line]
    while todo:
        for earlier in before.get(todo.pop(), ()):
            if earlier not in seen:
                seen.add(earlier)
                todo.append(earlier)
    names = set(info.params) | set(info.free) | set(info.cells)
    if not info.function:
        names |= static.global_stores
    for one in seen | {0}:
        effect = table.get(one)
        if effect is _ANYTHING:
            return None
        if effect is not None:
            names |= effect.stores
    return frozenset(names)


def _earlier_in_frame(static: StaticCode, current: State) -> list[tuple[str, int]] | None:
    """(event, line) of each node the frame of `current` can have had just before it (None: cannot say)."""
    info = static.functions.get(current.func)
    if info is None or current.line not in info.lines:
        return None
    if current.event == "return":
        return [("line", current.line)]  # the return statement's own line event
    if current.event != "line":
        return None
    before = static.predecessors(current.func, current.line)
    if before is None or (not before and info.function):
        return None
    out = []
    for line in sorted(before):
        if line in info.calls and info.function:
            out.append(("call", line))  # the function's first line follows its call
        else:
            out.append(("line", line))
    if not info.function and min(info.lines) == current.line:
        out.append(("call", min(info.calls)))  # a module or class body starts with its first line
    # A node after which the frame cannot yet have bound every name `current` shows is not the one.
    possible = []
    for event, line in out:
        bound = (
            frozenset().union(*static.call_names(current.func, line)) if event == "call" and info.function
            else frozenset() if event == "call" else may_be_bound(static, current.func, line)
        )
        if bound is None or set(current.locals) <= bound or (not info.function and event != "call"):
            possible.append((event, line))
    return possible or out or None


# -- what a step can change ---------------------------------------------------------------------------------
_IMMUTABLE = (str, bytes, int, float, complex, bool, type(None))


def quiet_literal(text: str) -> Any:
    """ast.literal_eval without the SyntaxWarnings a model's text can raise ("invalid decimal literal")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.literal_eval(text)


def literal_value(text: str) -> tuple[bool, Any]:
    """(True, the value) when a repr reads as a Python literal, else (False, None)."""
    if len(text) > 10_000 or text.endswith("..."):
        return False, None
    try:
        return True, quiet_literal(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def is_immutable(value: Any) -> bool:
    """Whether a value (from a literal) holds no object that can change in place."""
    if isinstance(value, _IMMUTABLE):
        return True
    if isinstance(value, tuple | frozenset):
        return all(is_immutable(item) for item in value)
    return False


# Reprs no change in place can alter: functions, builtins, classes, modules (addresses normalised or not).
_OPAQUE_FIXED = re.compile(
    r"<(?:function [\w.<>]+ at 0x[0-9a-f?]+|built-in function \w+|class '[\w.]+'|module '[\w.]+'[^<>]*)>"
)


def fixed_text(text: str) -> bool:
    """Whether a repr shows a value that only rebinding can change (an int, a str, a tuple of those, a
    function or a class...)."""
    if text.startswith("<") and _OPAQUE_FIXED.fullmatch(text):
        return True
    ok, value = literal_value(text)
    return ok and is_immutable(value)


def changeable(static: StaticCode, previous: State, action: str = "step_into") -> frozenset[str] | None:
    """The names whose value the next state of `previous`'s own frame may show changed (None: any).

    Between a state and the next one of the same frame (no state in between at that depth), only the
    instructions of the state's line ran there, and callees. A name can change when that line may rebind
    it (tracer.plan's store analysis, the recorder's own), or when the line may change an object and the
    name's value is mutable: only the objects the line's effect guards name (and values equal to or
    containing them: aliases) when all its effects are guarded, every mutable value otherwise. Calls into
    other code can also rebind a module's globals (`global`) and a function's cells (`nonlocal`).

    After step_into the next state of the frame means no traced code ran in between. After step_over it
    may have (a callee, a generator advanced by `for`, a class's dunder method behind an operator): such a
    line is taken to change anything mutable, unless the program defines no class (no dunder to reach).
    """
    info = static.functions.get(previous.func)
    table = static.effects(previous.func)
    if info is None or table is None:
        return None
    if previous.event == "call":  # nothing of the frame has run yet (only lineless set-up, in "0")
        effect: LineEffect | None = LineEffect(table[0].stores if 0 in table else frozenset(), False, ())
    else:
        effect = table.get(previous.line) or table.get(0)
    if effect is None or effect is _ANYTHING:
        return None
    free = set(effect.stores)
    skipped_code = action != "step_into" and (effect.iterates or static.has_classes)
    if not effect.mutates and not skipped_code:
        return frozenset(free)
    from neural.exact import pure_line  # (exact builds on this module)

    if previous.event == "line" and pure_line(static, previous):
        return frozenset(free)  # builtin operations on plain values only: nothing else ran
    locals_ = previous.locals
    mutable = [name for name, text in locals_.items() if not fixed_text(text)]
    touched = None if skipped_code else _touched(static, effect.guards, locals_)
    if touched is None:  # any object may have changed, and callees may rebind globals and cells
        free.update(mutable)
        free |= static.global_rebinds if not info.function else info.cells
        return frozenset(free)
    for name in touched:
        free.add(name)
        text = locals_.get(name)
        for other in mutable:
            if text is None or text.endswith("...") or locals_[other].endswith("...") or \
                    text in locals_[other]:
                free.add(other)  # it may be (or hold) the same object
    return frozenset(free)


def line_stores(static: StaticCode, previous: State) -> frozenset[str]:
    """The names the code run after `previous` in its frame (its line) may bind or delete."""
    table = static.effects(previous.func) or {}
    effect = table.get(0) if previous.event == "call" else table.get(previous.line) or table.get(0)
    return effect.stores if effect is not None else frozenset()


def _touched(
    static: StaticCode, guards: tuple[tuple[Any, ...], ...] | None, locals_: Mapping[str, str]
) -> set[str] | None:
    """The names whose objects a guarded line may change (None: cannot tell), as the recorder decides."""
    from tracer.plan import G_GLOBAL, G_INPLACE, G_ITEM_METHOD, G_METHOD, G_STORE, G_SUBSCR, K_MUTATES, K_PURE

    if guards is None:
        return None
    out: set[str] = set()
    for kind, name, _stored, attr_kinds, _expected in guards:
        if kind == G_GLOBAL:
            if name in static.global_stores:  # the program may hide the builtin
                return None
            continue
        ok, value = literal_value(locals_.get(name, ""))
        if not ok:
            return None
        t = type(value)
        if kind == G_SUBSCR:
            effect = K_PURE if t in (list, tuple, str, bytes, dict) else None
        elif kind == G_ITEM_METHOD:
            effect = K_PURE if t in (str, bytes) else None
        elif kind != G_STORE and is_immutable(value):
            effect = K_PURE
        elif kind == G_METHOD:
            effect = attr_kinds[(list, dict, set).index(t)] if t in (list, dict, set) else None
        elif kind == G_STORE:
            effect = K_MUTATES if t in (list, dict) else None
        elif kind == G_INPLACE:
            effect = K_MUTATES if t in (list, dict, set) else None
        else:
            effect = None
        if effect is None or effect not in (K_PURE, K_MUTATES):
            return None
        if effect == K_MUTATES:
            out.add(name)
    return out


# -- values --------------------------------------------------------------------------------------------------
def is_repr(text: str) -> bool:
    """Whether `text` reads as a Python repr: an expression, an object repr in <...>, or a cut one."""
    if text.endswith("...") and len(text) > 3:
        return True
    if _OBJECT_REPR.fullmatch(text):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def is_literal(text: str) -> bool:
    try:
        quiet_literal(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def check_state(state: State, allowed: HeaderSet) -> str | None:
    """Why a decoded state is not acceptable (None when it is)."""
    if header(state.event, state.line, state.depth, state.func) not in allowed:
        return f"header {state.event} {state.line} {state.depth} {state.func} is not allowed here"
    for name, text in state.locals.items():
        if not name.isidentifier() and not name.startswith("."):
            return f"{name!r} is not a variable name"
        if not is_repr(text):
            return f"the value of {name} is not a repr: {text[:40]!r}"
    if state.value is not None and not is_repr(state.value):
        return f"the value is not a repr: {state.value[:40]!r}"
    if state.event in VALUE_EVENTS and state.value is None:
        return f"a {state.event} state needs a value"
    if state.event in ("line", "call", "resume") and state.value is not None:
        return f"a {state.event} state has no value"
    return None


def fallback_locals(locals_: Mapping[str, str]) -> dict[str, str]:
    return {name: text for name, text in locals_.items() if is_repr(text)}
