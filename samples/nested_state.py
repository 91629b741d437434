"""Nested containers and objects changed in place: by builtins, through aliases, by callees.

Worth stepping through to watch a value change without its name being assigned: `grid[1].append(...)`,
a dict whose keys move when one is popped and put back, an object whose class is swapped.
"""


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y


class Labelled:
    def __repr__(self):
        return f"Labelled({self.label!r})"


class Other:
    pass


def grow(rows, value):
    rows[-1].append(value)
    return len(rows)


def main():
    grid = [[0, 1], [2, 3]]
    row = grid[1]
    row.append(4)  # grid changes through the alias
    grid[0][0] = -1
    grow(grid, 5)
    table = {"a": [1], "b": (2, [3])}
    table["b"][1].append(30)  # a list inside a tuple inside a dict
    first = table.pop("a")
    table["a"] = first  # same keys and values, new order
    seen = {1, 2, 3}
    seen.add(4)
    seen.discard(4)  # the same elements again
    point = Point(1, 2)
    point.x = 10  # default repr: the text does not change
    point.__class__ = Other  # ...until the class does
    tag = Labelled()
    tag.label = "first"
    tag.label = "second"  # a custom repr changes with the attribute
    big = 10**40
    huge = 7**2000  # longer than the value limit
    ratio = float("inf")
    ratio = -ratio
    nothing = float("nan")
    text = "x" * 5000
    del text
    total = sum(sum(r) for r in grid)
    squares = [n * n for n in range(4)]
    return grid, table, seen, point, tag, big, huge, ratio, nothing, total, squares


if __name__ == "__main__":
    result = main()
    print(len(result))
