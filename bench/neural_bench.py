"""Latency of one predicted step, with the KV cache and without it, and eval throughput.

    python bench/neural_bench.py [--model DIR] [--steps 40] [--threads N] [--crux FILE] [--traces DIR]

Latency: a NeuralTimeline over a bundled sample function is grown step by step (step_into, greedy,
constrained); each step's wall time is measured. The same steps are then predicted with a model wrapper
that keeps no cache (every token re-reads the whole text, as a plain `model(ids)` loop would), so the
ratio shows what the cache buys; and once more with what the constraints decide generated token by
token (`Predictor.ahead = False`) instead of fed at once. Throughput: `eval cruxeval` and `eval traces`
items per second on the given files (skipped when absent).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CODE = """\
def f(xs, k):
    out = []
    for x in xs:
        if x % k == 0:
            out.append(x * 2)
        else:
            out.insert(0, x)
    total = sum(out)
    return out, total
"""
CALL = "f([3, 4, 6, 7, 9], 3)"


class NoCache:
    """The LanguageModel protocol without a KV cache: every feed re-reads the whole token history."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.context = inner.context
        self.ids: list[int] = []

    @property
    def length(self) -> int:
        return len(self.ids)

    def reset(self) -> None:
        self.ids = []

    def crop(self, length: int) -> None:
        del self.ids[length:]

    def feed(self, ids: Sequence[int]) -> Any:
        self.ids += list(ids)
        self.inner.reset()
        logits = self.inner.feed(self.ids)
        self.inner.reset()
        return logits


def step_times(predictor: Any, steps: int) -> tuple[list[float], list[int]]:
    from neural.timeline import NeuralTimeline

    timeline = NeuralTimeline.for_call(predictor, CODE, "/bench/f.py", CALL, max_steps=steps)
    times, tokens = [], []
    index = 1
    while index <= steps and not (timeline.complete and index >= len(timeline)):
        start = time.perf_counter()
        try:
            timeline.step(index)
        except IndexError:
            break
        times.append(time.perf_counter() - start)
        prediction = timeline.predictions[index]
        tokens.append(prediction.tokens if prediction is not None else 0)
        index += 1
    return times, tokens


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--crux", default=None, help="a CRUXEval-format file for eval throughput")
    parser.add_argument("--traces", default=None, help="held-out traces for eval throughput")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()

    from neural.model import DEFAULT_MODEL_DIR
    from neural.predict import Predictor

    model_dir = args.model or DEFAULT_MODEL_DIR
    cached = Predictor.from_path(model_dir, threads=args.threads, retries=0)
    step_times(cached, 3)  # warm up
    times, tokens = step_times(cached, args.steps)
    one_by_one = Predictor.from_path(model_dir, threads=args.threads, retries=0)
    one_by_one.ahead = False  # what the constraints decide is generated token by token, as before session 13
    slow_times, slow_tokens = step_times(one_by_one, args.steps)
    uncached = Predictor(NoCache(cached.lm), cached.tokenizer, retries=0)
    plain_times, plain_tokens = step_times(uncached, args.steps)

    def row(name: str, values: list[float], counts: list[int]) -> str:
        ms = sorted(v * 1000 for v in values)
        p90 = ms[int(0.9 * (len(ms) - 1))]
        per_token = sum(values) * 1000 / max(1, sum(counts))
        return (
            f"{name:<22} {len(ms):>5} {statistics.median(ms):>9.1f} {p90:>8.1f} {ms[-1]:>8.1f} "
            f"{statistics.mean(counts):>8.1f} {per_token:>8.2f}"
        )

    import torch

    print(
        f"model {model_dir}; torch threads {torch.get_num_threads()}; {CALL} (greedy, constrained)"
    )
    print(f"{'':<22} {'steps':>5} {'median ms':>9} {'p90 ms':>8} {'max ms':>8} {'tok/step':>8} {'ms/tok':>8}")
    print(row("with KV cache", times, tokens))
    print(row("token by token", slow_times, slow_tokens))
    print(row("without cache", plain_times, plain_tokens))
    print(f"cache speed-up (median step): {statistics.median(plain_times) / statistics.median(times):.1f}x")
    print(
        "decided text fed at once (median step): "
        f"{statistics.median(slow_times) / statistics.median(times):.1f}x faster than token by token"
    )

    from neural.evaluate import eval_cruxeval, eval_traces, load_cruxeval, load_trees

    if args.crux and os.path.isfile(args.crux):
        items = load_cruxeval(args.crux)[: args.limit]
        result = eval_cruxeval(Predictor.from_path(model_dir, threads=args.threads), items)
        print(
            f"eval cruxeval: {result['items']} items in {result['seconds']} s, {result['items_per_s']}/s "
            "(three tasks each, inputs checked in the sandbox)"
        )
    if args.traces and os.path.exists(args.traces):
        trees = load_trees([args.traces], [])
        result = eval_traces(
            Predictor.from_path(model_dir, threads=args.threads), trees, per_action=2, limit=args.limit * 5
        )
        print(
            f"eval traces: {result['items']} items in {result['seconds']} s = {result['items_per_s']} items/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
