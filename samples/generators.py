"""Generators: a countdown, send() into a running average, throw() and close() into suspended generators
(close runs the finally block), yield from delegation (with the delegate's return value) and a generator
expression.

Each time a generator suspends the debugger shows it as a return, and each resume as a call.
"""


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    return "liftoff"


def averager():
    total = 0
    count = 0
    average = None
    while True:
        value = yield average
        total += value
        count += 1
        average = total / count


def resilient():
    handled = 0
    try:
        while True:
            try:
                yield handled
            except ValueError as err:
                handled += 1
                print("generator handled", repr(err))
    finally:
        print("resilient closed after", handled, "errors")


def chain(*iterables):
    for iterable in iterables:
        yield from iterable


def delegate():
    result = yield from countdown(2)
    yield result


print(list(countdown(3)))
avg = averager()
next(avg)
for x in (10, 20, 60):
    print("average so far:", avg.send(x))
avg.close()
robust = resilient()
next(robust)
print("throw returned", robust.throw(ValueError("bad input")))
robust.close()
print(list(chain([1, 2], "ab", range(3))))
print(list(delegate()))
squares = (n * n for n in range(6) if n % 2 == 0)
print("sum of even squares:", sum(squares))
