"""collections workload: Kahn's topological sort (defaultdict of lists + deque), word counts (Counter), an
LRU cache (OrderedDict.move_to_end) and a sliding-window deque(maxlen) over the same big inputs."""

from __future__ import annotations

import sys
from collections import Counter, OrderedDict, defaultdict, deque

DEFAULT_SIZE = 2000


def topo_order(n: int) -> list[int]:
    succ: defaultdict[int, list[int]] = defaultdict(list)
    indegree: Counter[int] = Counter()
    for i in range(n):
        for j in (i * 3 + 1, i * 5 + 2):
            if j < n:
                succ[i].append(j)
                indegree[j] += 1
    ready = deque(i for i in range(n) if indegree[i] == 0)
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for nxt in succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return order


def lru_hits(keys: list[int], capacity: int) -> int:
    cache: OrderedDict[int, int] = OrderedDict()
    hits = 0
    for k in keys:
        if k in cache:
            cache.move_to_end(k)
            hits += 1
        else:
            cache[k] = k * k
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


def window_max(values: list[int], width: int) -> int:
    window: deque[int] = deque(maxlen=width)
    best = 0
    for v in values:
        window.append(v)
        if v > best:
            best = v
    return best + len(window)


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    order = topo_order(n)
    keys = [(i * 7919) % (n // 3 + 1) if i % 3 else i % 50 for i in range(n)]  # some hot keys
    hits = lru_hits(keys, n // 4 + 1)
    words = Counter(k % 97 for k in keys)
    top = window_max(keys, 500)
    print(f"collections n={n} ordered={len(order)} hits={hits} words={len(words)} top={top}")
    return len(order)


if __name__ == "__main__":
    main()
