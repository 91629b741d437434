"""Recorded reprs as DAP variables: literal containers expand into their items (in recorded order)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

# Containers whose items the client should page through rather than take all at once.
PAGE_HINT = 100


@dataclass(frozen=True, slots=True)
class Child:
    """One item of an expanded container: its name in the client, its repr, and the repr's type."""

    name: str
    text: str
    type: str


def _literal_node(text: str) -> ast.expr | None:
    """The parsed repr if it is a literal (what ast.literal_eval accepts), else None."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        ast.literal_eval(node)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return node


def type_name(text: str) -> str:
    """The type of a literal repr (`list`, `int`...), or "" when only the text is known."""
    node = _literal_node(text)
    if node is None:
        return ""
    try:
        return type(ast.literal_eval(node)).__name__
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ""


def _item_text(node: ast.expr) -> str:
    return repr(ast.literal_eval(node))


def children(text: str) -> list[Child] | None:
    """The items of a literal list, tuple, set, frozenset or dict repr, in the order recorded; None if the
    repr is not an expandable container (a scalar, an empty container, or a non-literal repr)."""
    node = _literal_node(text)
    if node is None:
        return None
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        if not node.elts:
            return None
        return [Child(f"[{i}]" if not isinstance(node, ast.Set) else str(i), _item_text(e),
                      type_name(_item_text(e))) for i, e in enumerate(node.elts)]
    if isinstance(node, ast.Dict):
        if not node.keys:
            return None
        items = []
        for key, value in zip(node.keys, node.values):
            if key is None:
                return None
            items.append(Child(_item_text(key), _item_text(value), type_name(_item_text(value))))
        return items
    return None


def is_indexed(text: str) -> bool:
    """Whether the container's items are positional (list, tuple, set) rather than named (dict)."""
    node = _literal_node(text)
    return node is not None and not isinstance(node, ast.Dict)


def page[T](items: list[T], start: int | None, count: int | None) -> list[T]:
    """The slice a variables request asks for (`count` 0 or missing: all from `start`)."""
    first = max(0, start or 0)
    if not count:
        return items[first:]
    return items[first:first + max(0, count)]
