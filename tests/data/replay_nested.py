import sys


class Counter:
    def __init__(self, start):
        self.value = start

    def bump(self, by=1):
        self.value += by
        return self.value


def square(x):
    return x * x


def walk(items):
    total = 0
    for item in items:
        if item % 3 == 0:
            continue
        total += square(item)
    return total


def risky(n):
    try:
        if n % 2:
            raise KeyError(n)
        return n
    except KeyError:
        return -n
    finally:
        n += 1


def countdown(n):
    while n > 0:
        yield n
        n -= 1


def deep(n):
    if n == 0:
        raise RuntimeError("bottom")
    return deep(n - 1) + 1


counter = Counter(10)
for k in range(3):
    counter.bump(k)
total = walk(range(7))
signs = [risky(i) for i in range(4)]
ticks = list(countdown(3))
try:
    deep(3)
except RuntimeError as exc:
    message = str(exc)
sys.stdout.write(f"{counter.value} {total} {signs} {ticks} {message}\n")
