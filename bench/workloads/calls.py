"""Call-heavy workload: recursive fib plus many tiny helper calls."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 24


def fib(n: int) -> int:
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def square(x: int) -> int:
    return x * x


def clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(x, hi))


def combine(a: int, b: int) -> int:
    return clamp(square(a) - b, -1000, 1000)


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    total = fib(n)
    acc = 0
    for i in range(fib(n - 6)):
        acc += combine(i % 37, i % 11)
    print(f"calls n={n} fib={total} acc={acc}")
    return total + acc


if __name__ == "__main__":
    main()
