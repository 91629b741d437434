"""Recursion-heavy workload: n-queens by backtracking plus a recursive tree build and walk."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 7


def safe(cols: list[int], col: int) -> bool:
    row = len(cols)
    for r, c in enumerate(cols):  # noqa: SIM110 - a loop with an early exit is the shape measured
        if c == col or abs(c - col) == row - r:
            return False
    return True


def queens(n: int, cols: list[int]) -> int:
    if len(cols) == n:
        return 1
    count = 0
    for col in range(n):
        if safe(cols, col):
            cols.append(col)
            count += queens(n, cols)
            cols.pop()
    return count


def build(depth: int) -> tuple | None:
    if depth == 0:
        return None
    return (depth, build(depth - 1), build(depth - 1))


def walk(node: tuple | None) -> int:
    if node is None:
        return 0
    value, left, right = node
    return value + walk(left) + walk(right)


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    solutions = queens(n, [])
    total = walk(build(n + 7))
    print(f"recursion n={n} queens={solutions} tree={total}")
    return solutions + total


if __name__ == "__main__":
    main()
