"""Per-code-object bytecode analysis: which locals each line may rebind, and whether it may mutate objects.

The recorder looks at a frame's locals only where something can have changed. Between two line steps of
one frame, only the instructions of the earlier line ran in that frame (plus any callees, which the
recorder sees and answers with a full check). So for each line we collect the names it stores or deletes,
and whether it has an instruction that can mutate an existing object without running traced code (a call
into a builtin or library, a subscript or attribute store, an in-place operator, a with statement...).
Instructions without a line number count for every line.
"""

from __future__ import annotations

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


@dataclass(slots=True)
class LinePlan:
    stores: tuple[str, ...]  # names to look at after this line ran (its stores + lineless ones)
    may_mutate: bool
    full: bool = False  # no analysis possible: check every local


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


def analyse(code: types.CodeType, code_id: int) -> CodePlan:
    """Build the plan of one code object (once per code object; cheap next to running it)."""
    is_module = code.co_name == "<module>"
    plan = CodePlan(code_id=code_id, is_module=is_module)
    stores: dict[int, set[str]] = {}
    mutating: set[int] = set()
    always: set[str] = set()
    names: list[str]
    lineless_mutation = False
    try:
        instructions = bytecode.Bytecode.from_code(code)
    except Exception:  # an analysis we cannot do means every step gets a full check
        plan.lines = {}
        plan.default = LinePlan((), True, full=True)
        return plan
    for instr in instructions:
        if not isinstance(instr, bytecode.Instr):
            continue
        line = instr.lineno if isinstance(instr.lineno, int) and instr.lineno > 0 else None
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
        if mut:
            if line is None:
                lineless_mutation = True
            else:
                mutating.add(line)
        if line is not None:
            stores.setdefault(line, set())
    for line, line_names in stores.items():
        plan.lines[line] = LinePlan(
            tuple(sorted(line_names | always)), line in mutating or lineless_mutation
        )
    plan.default = LinePlan(tuple(sorted(always)), lineless_mutation)
    return plan
