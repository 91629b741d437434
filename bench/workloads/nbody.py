"""Float-heavy workload: an n-body step loop over a list of 5 lists of 7 floats, changed through aliases."""

from __future__ import annotations

import sys

DEFAULT_SIZE = 200


def make_bodies() -> list[list[float]]:
    # x, y, z, vx, vy, vz, mass
    return [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 39.47],
        [4.84, -1.16, -0.10, 0.606, 2.81, -0.025, 0.037],
        [8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.011],
        [12.89, -15.11, -0.22, 1.08, 0.868, -0.010, 0.0017],
        [15.37, -25.91, 0.17, 0.979, 0.594, -0.034, 0.002],
    ]


def advance(bodies: list[list[float]], dt: float) -> None:
    n = len(bodies)
    for i in range(n):
        a = bodies[i]
        for j in range(i + 1, n):
            b = bodies[j]
            dx = a[0] - b[0]
            dy = a[1] - b[1]
            dz = a[2] - b[2]
            d2 = dx * dx + dy * dy + dz * dz
            mag = dt / (d2 * d2 ** 0.5)
            bm = b[6] * mag
            a[3] -= dx * bm
            a[4] -= dy * bm
            a[5] -= dz * bm
            am = a[6] * mag
            b[3] += dx * am
            b[4] += dy * am
            b[5] += dz * am
    for body in bodies:
        body[0] += dt * body[3]
        body[1] += dt * body[4]
        body[2] += dt * body[5]


def energy(bodies: list[list[float]]) -> float:
    e = 0.0
    for i, a in enumerate(bodies):
        e += 0.5 * a[6] * (a[3] * a[3] + a[4] * a[4] + a[5] * a[5])
        for b in bodies[i + 1:]:
            d = ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2) ** 0.5
            e -= a[6] * b[6] / d
    return e


def main(size: int | None = None) -> float:
    steps = size if size is not None else int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    bodies = make_bodies()
    before = energy(bodies)
    for _ in range(steps):
        advance(bodies, 0.01)
    after = energy(bodies)
    print(f"nbody steps={steps} energy {before:.9f} -> {after:.9f}")
    return after


if __name__ == "__main__":
    main()
