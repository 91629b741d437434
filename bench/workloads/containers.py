"""Container-mutation workload: lists, dicts and sets mutated in loops, through aliases and callees."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 20000


def push_all(stack: list[int], items: range) -> None:
    for x in items:
        stack.append(x)


def bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    stack: list[int] = []
    alias = stack  # every mutation of stack is visible through alias
    counts: dict[str, int] = {}
    seen: set[int] = set()
    groups: dict[int, list[int]] = {}
    popped = 0
    for i in range(n):
        push_all(stack, range(i % 5))
        if len(alias) > 8:
            popped += alias.pop()
            alias.pop(0)
        bump(counts, "k" + str(i % 13))
        seen.add(i % 97)
        if i % 3 == 0:
            seen.discard((i // 3) % 97)
        bucket = groups.setdefault(i % 17, [])
        bucket.append(i)
        if len(bucket) > 4:
            del bucket[:2]
    total = popped + sum(counts.values()) + len(seen) + sum(len(v) for v in groups.values())
    print(f"containers n={n} stack={len(stack)} popped={popped} total={total}")
    return total


if __name__ == "__main__":
    main()
