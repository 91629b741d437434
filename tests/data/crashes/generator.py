"""A generator raises while a for loop consumes it."""


def numbers(limit):
    for i in range(limit):
        if i == 2:
            raise RuntimeError(f"stop at {i}")
        yield i * 10


total = 0
for n in numbers(5):
    total += n
print(total)
