"""Big-container workload: BFS over an adjacency dict, then a merge sort of a list with a scratch list."""

from __future__ import annotations

import sys
from collections import deque

DEFAULT_SIZE = 2000


def make_graph(n: int) -> dict[int, list[int]]:
    graph: dict[int, list[int]] = {}
    for i in range(n):
        graph[i] = [(i * 7 + 1) % n, (i * 13 + 5) % n, (i + 1) % n]
    return graph


def bfs(graph: dict[int, list[int]], start: int) -> dict[int, int]:
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph[node]:
            if nxt not in dist:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    return dist


def merge_sort(items: list[int], scratch: list[int], lo: int, hi: int) -> None:
    if hi - lo < 2:
        return
    mid = (lo + hi) // 2
    merge_sort(items, scratch, lo, mid)
    merge_sort(items, scratch, mid, hi)
    i, j, k = lo, mid, lo
    while i < mid and j < hi:
        if items[i] <= items[j]:
            scratch[k] = items[i]
            i += 1
        else:
            scratch[k] = items[j]
            j += 1
        k += 1
    while i < mid:
        scratch[k] = items[i]
        i += 1
        k += 1
    while j < hi:
        scratch[k] = items[j]
        j += 1
        k += 1
    items[lo:hi] = scratch[lo:hi]


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    graph = make_graph(n)
    dist = bfs(graph, 0)
    values = [(i * 7919) % n for i in range(n)]
    merge_sort(values, [0] * n, 0, n)
    assert values == sorted(values)
    print(f"graph n={n} reached={len(dist)} far={max(dist.values())} sorted={values[:3]}")
    return len(dist)


if __name__ == "__main__":
    main()
