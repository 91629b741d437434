"""Sorting workload: a priority queue on heapq (untraced C code changing a big list in a few places far
apart at each push and pop), then an in-place quicksort written as methods of a class (big lists passed
down method calls, items swapped through tuple targets)."""

from __future__ import annotations

import heapq
import sys

DEFAULT_SIZE = 2000


def heap_order(values: list[int]) -> list[int]:
    heap: list[int] = []
    for v in values:
        heapq.heappush(heap, v)
    out = []
    while heap:
        out.append(heapq.heappop(heap))
    return out


class Quicksort:
    def __init__(self, items: list[int]) -> None:
        self.items = items

    def partition(self, a: list[int], lo: int, hi: int) -> int:
        pivot = a[hi]
        i = lo
        for j in range(lo, hi):
            if a[j] < pivot:
                a[i], a[j] = a[j], a[i]
                i += 1
        a[i], a[hi] = a[hi], a[i]
        return i

    def sort(self, a: list[int], lo: int, hi: int) -> None:
        if lo < hi:
            q = self.partition(a, lo, hi)
            self.sort(a, lo, q - 1)
            self.sort(a, q + 1, hi)

    def run(self) -> list[int]:
        self.sort(self.items, 0, len(self.items) - 1)
        return self.items


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    values = [(i * 7919) % n for i in range(n)]
    ordered = heap_order(values)
    sorted_in_place = Quicksort(list(values)).run()
    assert ordered == sorted_in_place == sorted(values)
    print(f"sorting n={n} first={ordered[:3]} last={ordered[-1]}")
    return len(ordered)


if __name__ == "__main__":
    main()
