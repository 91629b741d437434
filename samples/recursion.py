"""Recursion: factorial, naive Fibonacci and the Towers of Hanoi, so the call stack grows and shrinks.

Step into fib() to watch the same arguments being recomputed; step back out of hanoi() to see `moves`
growing in a list that every recursive call shares.
"""


def factorial(n):
    if n <= 1:
        return 1
    return n * factorial(n - 1)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def hanoi(n, source, target, spare, moves):
    if n == 0:
        return moves
    hanoi(n - 1, source, spare, target, moves)
    moves.append((source, target))
    hanoi(n - 1, spare, target, source, moves)
    return moves


print("5! =", factorial(5))
print("fib(7) =", fib(7))
moves = hanoi(3, "A", "C", "B", [])
print(len(moves), "moves:", " ".join(f"{a}->{b}" for a, b in moves))
