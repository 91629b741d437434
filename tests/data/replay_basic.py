def add(a, b):
    total = a + b
    return total


def loop(n):
    acc = []
    for i in range(n):
        acc.append(add(i, i))
    return acc


def gen(n):
    for i in range(n):
        yield i * 2
    return "done"


def fails(x):
    if x > 1:
        raise ValueError(x)
    return x


def catcher():
    try:
        fails(2)
    except ValueError as exc:
        return str(exc)


values = loop(3)
doubled = [v for v in gen(3)]
caught = catcher()
result = add(1, 2)
print(values, doubled, caught, result)
