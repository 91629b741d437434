"""Breakpoints, watchpoints and exception catchpoints: what the engine checks while it searches."""

from __future__ import annotations

from dataclasses import dataclass, field

from replay.expressions import Expression


@dataclass(slots=True)
class Breakpoint:
    """A line breakpoint, or a function breakpoint (bdb's: the function's first executable line)."""

    number: int
    file: str
    line: int
    temporary: bool = False
    condition: Expression | None = None
    funcname: str | None = None  # co_name when set by function name: only that function's frames hit
    enabled: bool = True
    ignore: int = 0
    hits: int = 0
    reported: set[str] = field(default_factory=set)  # condition errors already reported once

    @property
    def kind(self) -> str:
        return "breakpoint"

    def describe(self) -> str:
        """pdb's one-line form: `breakpoint 1 at /a/b.py:3` (temporary ones too, as bdb's __str__ says)."""
        return f"breakpoint {self.number} at {self.file}:{self.line}"


@dataclass(slots=True)
class Watchpoint:
    """Stops where an expression's value, over one frame activation's locals, changes."""

    number: int
    expression: Expression
    frame_id: int
    thread: int
    func: str  # qualified name of the watched frame: chunks without it are skipped
    created_at: int = 0  # the watched frame's step when the watchpoint was set
    depth: int = 0
    first_index: int | None = None  # the frame's first step (found when first needed): before it, no names
    enabled: bool = True
    hits: int = 0
    condition: Expression | None = None
    ignore: int = 0
    temporary: bool = False
    reported: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return "watchpoint"

    def describe(self) -> str:
        return f"watchpoint {self.number} on {self.expression.text} in {self.func}"


@dataclass(slots=True)
class Catchpoint:
    """Stops at exception events, of one exception type name or of any."""

    number: int
    exception: str | None  # class name as recorded (e.g. "ValueError"); None catches every exception
    enabled: bool = True
    hits: int = 0
    condition: Expression | None = None
    ignore: int = 0
    temporary: bool = False
    reported: set[str] = field(default_factory=set)

    @property
    def kind(self) -> str:
        return "catchpoint"

    def describe(self) -> str:
        return f"catchpoint {self.number} on {self.exception or 'any exception'}"


Point = Breakpoint | Watchpoint | Catchpoint
