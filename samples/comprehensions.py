"""Comprehensions and one-line loops: list, dict and set comprehensions (inlined into their frame since
Python 3.12), a nested comprehension, a generator expression, and `for`/`while` loops whose body shares
the loop's line, so every iteration is a separate step on the same line.
"""


def tables(n):
    squares = [i * i for i in range(n)]
    parity = {i: ("even" if i % 2 == 0 else "odd") for i in range(n)}
    remainders = {i % 3 for i in range(n)}
    grid = [[row * col for col in range(3)] for row in range(3)]
    flat = [cell for row in grid for cell in row if cell]
    return squares, parity, remainders, grid, flat


def one_liners(n):
    total = 0
    for i in range(n): total += i
    while n > 0: n -= 2
    return total, n


squares, parity, remainders, grid, flat = tables(5)
print(squares, parity, sorted(remainders))
print(grid, flat)
print(one_liners(5))
print(max(len(word) for word in ["tiny", "enormous", "mid"]))
