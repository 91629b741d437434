"""A sales ledger: containers that grow, shrink and change in one place, some with non-ASCII text.

Each line changes a small part of a large value (an append, one key's list, one cell of a grid), the
case Retrograde stores as a text delta instead of the value's whole repr."""


def record_sale(ledger: list[tuple[str, int]], histories: dict[str, list[int]], user: str, amount: int) -> None:
    ledger.append((user, amount))
    history = histories.setdefault(user, [])
    history.append(amount)
    if len(history) > 6:
        history.pop(0)


def main() -> None:
    ledger: list[tuple[str, int]] = []
    histories: dict[str, list[int]] = {}
    grid = [[0] * 8 for _ in range(6)]
    names = ["ana", "bo", "chloé", "dmitri", "émile", "日本"]
    for i in range(1200):
        user = names[i % len(names)]
        record_sale(ledger, histories, user, (i * 37) % 101)
        grid[i % 6][i % 8] += 1
        if len(ledger) > 40:
            del ledger[:10]
    total = sum(amount for _, amount in ledger)
    print(len(ledger), total, sorted(histories)[:3], grid[0])


if __name__ == "__main__":
    main()
