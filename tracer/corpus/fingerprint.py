"""Fingerprints of source code that ignore layout, comments and identifiers (for dedup and exclusion)."""

from __future__ import annotations

import ast
import builtins
import hashlib
import warnings

_BUILTINS = frozenset(dir(builtins))


class _Renamer(ast.NodeTransformer):
    """Renames every identifier the code binds or reads (not builtins, not attributes) to v0, v1, ..."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _new(self, name: str) -> str:
        if name in _BUILTINS and name not in self.names:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._new(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self._new(node.name)
        node.returns = None
        if (node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                and isinstance(node.body[0].value.value, str) and len(node.body) > 1):
            node.body = node.body[1:]  # a docstring says nothing about what the code does
        self.generic_visit(node)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            node.name = self._new(node.name)
        self.generic_visit(node)
        return node


def _parse(code: str) -> ast.Module:
    with warnings.catch_warnings():  # old code's invalid escapes are not our business
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(code.replace("\r\n", "\n"))


def normalised_ast(code: str) -> str:
    """ast.dump of the code with identifiers renamed in order of appearance; the text itself if it does not
    parse (so that two unparsable texts still compare by content)."""
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError):
        return code
    return ast.dump(_Renamer().visit(tree), annotate_fields=False, include_attributes=False)


def source_hash(code: str) -> str:
    """A short stable hash of the normalised code: the same for sources that differ only in names/layout."""
    return hashlib.sha256(normalised_ast(code).encode()).hexdigest()[:32]


def definitions_hash(code: str) -> str:
    """source_hash of the code without its top-level expression statements, asserts and try statements: a
    recorded driver (definitions, then `f(...)` calls, tests, guarded calls) hashes like the definitions."""
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError):
        return source_hash(code)
    tree.body = [node for node in tree.body if not isinstance(node, (ast.Expr, ast.Assert, ast.Try))]
    return source_hash(ast.unparse(tree))
