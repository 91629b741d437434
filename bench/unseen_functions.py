# ruff: noqa: E501  (the functions are data, one line each)
"""Output prediction on small functions of shapes the puzzle generator does not write (helpers, recursion,
a class, try/return, setdefault chains, key lambdas with slicing): each is predicted step by step from
its call, as `retrograde predict` does, and compared with running it. Never on CI; a second held-out
check beside bench/heldout_cruxeval.py's items.

    .venv/bin/python bench/unseen_functions.py [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ITEMS: list[tuple[str, str]] = [
("def f(s):\n    words = s.split()\n    caps = []\n    for w in words:\n        if len(w) > 3:\n            caps.append(w.title())\n        else:\n            caps.append(w)\n    return ' '.join(caps)\n", "'the quick brown fox is here'"),
("def f(n):\n    a, b = 0, 1\n    while n > 0:\n        a, b = b, a + b\n        n -= 1\n    return a\n", "12"),
("def f(xs):\n    seen = set()\n    out = []\n    for x in xs:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out\n", "[3, 1, 3, 2, 1]"),
("def helper(x):\n    return x * x + 1\n\ndef f(xs):\n    total = 0\n    for x in xs:\n        total += helper(x)\n    return total\n", "[1, 2, 3]"),
("def f(d):\n    inv = {}\n    for k, v in d.items():\n        inv.setdefault(v, []).append(k)\n    return inv\n", "{'a': 1, 'b': 2, 'c': 1}"),
("def f(s):\n    stack = []\n    for ch in s:\n        if ch == '(':\n            stack.append(ch)\n        elif ch == ')':\n            if not stack:\n                return False\n            stack.pop()\n    return not stack\n", "'(()())'"),
("def f(m):\n    return [[row[i] for row in m] for i in range(len(m[0]))]\n", "[[1, 2], [3, 4], [5, 6]]"),
("def f(n):\n    if n <= 1:\n        return n\n    return f(n - 1) + f(n - 2)\n", "6"),
("def f(text):\n    counts = {}\n    for ch in text.lower():\n        if ch.isalpha():\n            counts[ch] = counts.get(ch, 0) + 1\n    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]\n", "'Hello World'"),
("def f(xs, k):\n    res = []\n    for i in range(0, len(xs), k):\n        chunk = xs[i:i + k]\n        res.append(sum(chunk) / len(chunk))\n    return res\n", "[1, 2, 3, 4, 5], 2"),
("class Acc:\n    def __init__(self):\n        self.total = 0\n    def add(self, v):\n        self.total += v\n        return self\n\ndef f(xs):\n    a = Acc()\n    for x in xs:\n        a.add(x)\n    return a.total\n", "[4, 5, 6]"),
("def f(s):\n    try:\n        return int(s) * 2\n    except ValueError:\n        return -1\n", "'12a'"),
]


def main() -> int:
    from neural.evaluate import predicted_output, same_value
    from neural.model import DEFAULT_MODEL_DIR
    from neural.predict import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    predictor = Predictor.from_path(args.model, threads=1)
    passed = 0
    for code, arguments in ITEMS:
        namespace: dict[str, object] = {}
        exec(code, namespace)  # the reference: the function itself
        want = repr(eval(f"f({arguments})", namespace))
        started = time.perf_counter()
        got = predicted_output(predictor, code, arguments)
        good = same_value(got, want)
        passed += good
        heads = ("def f", "class", "def helper")
        first = next(line for line in code.splitlines() if not line.startswith(heads))
        print(f"{'PASS' if good else 'fail'} {time.perf_counter() - started:5.1f}s {first.strip()[:40]:40} "
              f"-> {str(got)[:40]}  (want {want[:40]})")
    print(f"{passed}/{len(ITEMS)} right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
