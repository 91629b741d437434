"""What the engine learns from recorded source text: function extents and which functions are generators."""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FunctionSpan:
    """A function definition's lines (decorators included) and whether its frames can suspend."""

    name: str
    first: int  # first line (the first decorator, like code.co_firstlineno)
    last: int
    suspends: bool  # generator, coroutine or async generator: bdb treats their frames specially
    body_line: int = 0  # first line of the body after any docstring (pdb's first executable line)


class _Suspends(ast.NodeVisitor):
    """Finds yield/await in a function body without descending into nested scopes."""

    def __init__(self) -> None:
        self.found = False

    def visit_Yield(self, node: ast.Yield) -> None:
        self.found = True

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.found = True

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        pass

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        pass

    def visit_Lambda(self, node: ast.Lambda) -> None:
        pass

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        pass


class SourceIndex:
    """Function spans of one file's source, parsed once."""

    def __init__(self, text: str | None) -> None:
        self.lines = text.splitlines() if text else []
        self.spans: list[FunctionSpan] = []
        if not text:
            return
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                finder = _Suspends()
                for statement in node.body:
                    finder.visit(statement)
                suspends = isinstance(node, ast.AsyncFunctionDef) or finder.found
                body = node.body
                first_statement = body[0]
                if len(body) > 1 and isinstance(first_statement, ast.Expr) and \
                        isinstance(first_statement.value, ast.Constant) and \
                        isinstance(first_statement.value.value, str):
                    body = body[1:]
                last = node.end_lineno or node.lineno
                self.spans.append(FunctionSpan(node.name, first, last, suspends, body[0].lineno))
            elif isinstance(node, ast.GeneratorExp):
                last = node.end_lineno or node.lineno
                self.spans.append(FunctionSpan("<genexpr>", node.lineno, last, True, node.lineno))

    def function_at(self, line: int, name: str) -> FunctionSpan | None:
        """The innermost definition named `name` (a co_name) that contains `line`."""
        best: FunctionSpan | None = None
        for span in self.spans:
            inside = span.name == name and span.first <= line <= span.last
            if inside and (best is None or span.first >= best.first):
                best = span
        return best

    def line(self, number: int) -> str:
        """Source line `number` (1-based) without its newline, or "" outside the file."""
        if 1 <= number <= len(self.lines):
            return self.lines[number - 1]
        return ""


def co_name(qualname: str) -> str:
    """The code object's own name from its qualified name ("C.m.<locals>.f" -> "f")."""
    if qualname.endswith(">") and "<" in qualname:
        # "<module>", "<genexpr>", "f.<locals>.<lambda>": the name is the last bracketed part.
        head, _, tail = qualname.rpartition(".<")
        return "<" + tail if head else qualname
    return qualname.rpartition(".")[2]
