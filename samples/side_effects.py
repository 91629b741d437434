"""Side effects the recorder must not miss: reads that write, methods through aliases, shadowed builtins.

Every change below happens on a line that calls a builtin or a method, indexes something or applies an
in-place operator; the recorder's per-line guards decide which locals to look at again, and the settrace
differential test checks that it never skips one that changed.
"""

from collections import Counter, OrderedDict, defaultdict, deque

audit: list[str] = []


def len(items):  # noqa: A001 - shadows the builtin on purpose: this "len" has a side effect
    audit.append(f"len of {type(items).__name__}")
    return items.__len__()


class Shelf:
    """Not a list, but with list-like method names."""

    def __init__(self, store: list[int]) -> None:
        self.store = store

    def append(self, item: int) -> None:
        self.store.append(item * 10)


class Stack(list):
    def push(self, item: int) -> None:
        self.append(item)


def word_index(text: str) -> dict[str, list[int]]:
    index = defaultdict(list)
    words = text.split()
    for position, word in enumerate(words):
        bucket = index[word]  # a defaultdict inserts the key on a read
        bucket.append(position)
    first = index["missing"]  # and again, with nothing appended
    return {word: spots for word, spots in index.items() if spots or first == spots}


def counters(text: str) -> int:
    counts = Counter(text)
    vowels = counts["a"] + counts["e"]  # a Counter does not insert on a read
    letters = OrderedDict()
    letters["z"] = 1
    letters.move_to_end("z", last=False)
    return vowels + letters["z"]


def aliases() -> list[int]:
    numbers = [3, 1, 2]
    same = numbers
    grid = [numbers, [9, 8]]
    row = grid[1]
    same.append(4)  # changes numbers and grid too
    row.pop()  # changes grid only
    grid[0].sort()  # through an item: changes numbers, same and grid
    same += [5]  # an in-place operator on a list is a mutation
    total = 0
    total += same[0]  # on an int it is not
    del numbers[:1]
    other = [7]; other.append(len(other))  # noqa: E702 - rebound and changed on one line
    shelf = Shelf(numbers)
    shelf.append(6)  # not list.append: runs traced code that changes numbers
    letters = "abc"
    upper = letters[0].upper() + letters[1:]
    return numbers + other + [total, upper.count("A")]


def dicts() -> dict[str, int]:
    stock = {"apple": 3}
    view = {"stock": stock}
    stock["pear"] = stock.get("pear", 0) + 2
    stock.setdefault("fig", 1)
    stock.pop("apple")
    seen = {1, 2}
    seen.add(3)
    seen |= {4}
    frozen = frozenset(seen)
    return {"items": sum(stock.values()), "seen": len(frozen), "view": len(view["stock"])}


def stacks() -> list[int]:
    stack = Stack()
    stack.push(1)  # a method of a list subclass: traced, changes stack
    stack.append(2)  # list.append on a subclass
    stack.extend([3, 4])
    top = stack[-1]
    return stack + [top]


def odd_routes() -> list[object]:
    data = [1, 2]
    alias = data
    data.copy().append(9)  # on a temporary: changes nothing with a name
    list.append(alias, 4)  # through the type
    getattr(data, "append")(5)  # through getattr
    queue = deque([1])
    queue.append(2)  # not a list: the recorder cannot tell, so it looks
    nested = {"k": [1]}
    inner = nested["k"]
    nested["k"].append(2)  # through an item: changes inner too
    grown = []
    for step in producer(grown):  # a generator that changes the list it was given
        grown.append(-step)
    return [data, queue, nested, inner, grown]


def producer(out: list[int]):
    for value in range(1, 3):
        out.append(value)
        yield value


def main() -> None:
    print(word_index("the cat saw the other cat"))
    print(counters("banana bread"))
    print(aliases())
    print(dicts())
    print(stacks())
    print(odd_routes())
    print(audit)


if __name__ == "__main__":
    registry = defaultdict(int)
    hits = registry["boot"]  # at module level too: a read that inserts
    names = sorted(registry)
    main()
