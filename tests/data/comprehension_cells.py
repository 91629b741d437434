"""Inlined comprehensions (PEP 709) whose loop variable is also a cell or free variable (CPython gh-128396)."""


def cell_var(keys):
    out = [(uri, len(str(uri))) for uri in keys]
    uri = 1
    g = (uri + k for k in (1, 2))
    return out, list(g)


def free_var():
    x = 10

    def inner(items):
        got = [x * 2 for x in items]
        return got, x

    return inner([1, 2])


def nested(rows):
    cell = 0
    grid = [[cell + r for cell in row] for r, row in enumerate(rows)]
    cell = 5
    return grid, (lambda: cell)()


def dict_and_set(keys):
    k = 0
    d = {k: k * k for k in keys}
    s = {k + 1 for k in keys}
    return d, s, (lambda: k)()


def closures(keys):
    fs = [lambda: key for key in keys]
    return [f() for f in fs]


def genexpr(keys):
    v = 3
    return list(v + w for w in keys), sum(v for v in keys), (lambda: v)()


class Holder:
    name = "h"
    pairs = [(name, i) for name in ("a", "b") for i in range(2)]
    getters = [lambda: j for j in (7, 8)]


top = [top * 2 for top in (1, 2, 3)]
late = [lambda: m for m in (4, 5)]
print(cell_var([1, 2, 3]))
print(free_var())
print(nested([[1, 2], [3]]))
print(dict_and_set([1, 2]))
print(closures(["p", "q"]))
print(genexpr([1, 2]))
print(Holder.pairs, [g() for g in Holder.getters], top, [f() for f in late])
