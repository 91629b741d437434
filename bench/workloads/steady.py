"""Long steady workload for bench/memory_flat.py: bounded program state, about SIZE line steps in total."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 1_000_000
LINES_PER_ITERATION = 6  # two lines in the main loop + four in step()


def step(state: list[int], i: int) -> int:
    x = state[i % 64]
    y = (x * 31 + i) % 1009
    state[i % 64] = y
    return y


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    state = [0] * 64
    acc = 0
    for i in range(n // LINES_PER_ITERATION):
        acc = (acc + step(state, i)) % 1_000_003
    print(f"steady n={n} acc={acc} state_sum={sum(state)}")
    return acc


if __name__ == "__main__":
    main()
