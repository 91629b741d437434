"""Loop-heavy workload: nested numeric loops over scalars (Mandelbrot escape counts, Pythagorean triples)."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 60


def mandelbrot(size: int, max_iter: int) -> int:
    inside = 0
    for py in range(size):
        ci = py * 2.4 / size - 1.2
        for px in range(size):
            cr = px * 3.0 / size - 2.1
            zr = zi = 0.0
            n = 0
            while n < max_iter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                n += 1
            if n == max_iter:
                inside += 1
    return inside


def triples(limit: int) -> int:
    count = 0
    for a in range(1, limit):
        for b in range(a, limit):
            c2 = a * a + b * b
            c = int(c2**0.5)
            if c < limit and c * c == c2:
                count += 1
    return count


def main(size: int | None = None) -> int:
    n = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    inside = mandelbrot(n, 30)
    found = triples(n * 2)
    print(f"loops n={n} inside={inside} triples={found}")
    return inside + found


if __name__ == "__main__":
    main()
