"""The issue-16 shape: a 200,000-element list and dict built item by item, then changed in place.

A time-travel debugger exists to show such state at any step: `p big[199997]` late in the run must give
the exact element, so the recorder keeps the whole containers (trace format 5), not just their heads.
"""

from __future__ import annotations

import sys

DEFAULT_SIZE = 20000


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    big = []
    for i in range(n):
        big.append(i * 2)
    index = {}
    for i in range(0, n, 4):
        index[i] = big[i]
    for i in range(0, n, 97):
        big[i] = -big[i]
        index[i - i % 4] += 1
    big.append(len(index))
    last = big.pop(0)
    print(f"bigstate n={n} len={len(big)} keys={len(index)} last={last} tail={big[-3:]}")
    return len(big)


if __name__ == "__main__":
    main()
