"""Closures: a counter with nonlocal state, a decorator with arguments that wraps calls, and a memoising
decorator whose cache lives in a closure cell.
"""
import functools


def make_counter(start):
    count = start

    def increment(step=1):
        nonlocal count
        count += step
        return count

    return increment


def repeat(times):
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args):
            results = []
            for _ in range(times):
                results.append(func(*args))
            return results

        return wrapper

    return decorate


def memoise(func):
    cache = {}

    def lookup(n):
        if n not in cache:
            cache[n] = func(n)
        return cache[n]

    return lookup


@repeat(times=2)
def greet(name):
    return f"hello {name}"


@memoise
def slow_square(n):
    return n * n


counter = make_counter(10)
counter()
counter(5)
print("counter:", counter())
print(greet("ada"))
print([slow_square(n) for n in (3, 4, 3)])
adders = [lambda x, k=k: x + k for k in range(3)]
print([add(10) for add in adders])
