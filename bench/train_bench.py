"""Training throughput: tokens per second of `retrograde train`'s model on this machine (Markdown table).

    python bench/train_bench.py                         # the shipped model's shape on random tokens
    python bench/train_bench.py --dataset DIR --sizes 2x128,4x256,6x384 --device cuda

With --dataset the batches are real examples of a built dataset (`retrograde dataset build`), cut and
padded as `retrograde train` does, and tokens/s counts real tokens (padding excluded). On CUDA the step is
the one train uses there: bf16 autocast and fused AdamW.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def shipped_shape() -> tuple[int, int, int, int]:
    """(layers, hidden, heads, vocab) of the shipped default model, or of `retrograde train`'s defaults."""
    config = Path(__file__).resolve().parent.parent / "neural" / "default_model" / "config.json"
    try:
        data = json.loads(config.read_text())
        return (int(data["num_hidden_layers"]), int(data["hidden_size"]), int(data["num_attention_heads"]),
                int(data["vocab_size"]))
    except (OSError, ValueError, KeyError):
        return 4, 256, 4, 4096


def measure(layers: int, hidden: int, heads: int, vocab: int, batch: int, block: int, steps: int,
            device: str, rows: list | None = None) -> tuple[float, float, int]:
    """(tokens per second, seconds per step, parameters) of full training steps on random tokens, or on
    batches of `rows` (real examples) when given."""
    import random

    import torch

    from neural.model import ModelSize, new_model, parameter_count
    from neural.train import _autocast, batch_rows, batch_tensors

    size = ModelSize(layers=layers, hidden=hidden, heads=heads,
                     intermediate=(hidden * 8 // 3 + 15) // 16 * 16, context=max(block, 256))
    model = new_model(size, vocab, pad_id=0, eos_id=7).to(device)
    cuda = device.startswith("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, **({"fused": True} if cuda else {}))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(9, vocab, (batch, block), generator=generator).to(device)
    mask = torch.ones_like(ids)
    labels = ids
    if rows:
        ordered = sorted((r[:block] for r in rows), key=len)
        picked = batch_rows(ordered, batch, random.Random(0))
        ids, mask, labels = batch_tensors(picked, 0, 2, False, device)

    def one() -> None:
        with _autocast(device):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    one()  # warm-up: allocation and first-call costs are not throughput
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return int(mask.sum()) * steps / elapsed, elapsed / steps, parameter_count(model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="one small row (a smoke test)")
    parser.add_argument("--dataset", help="measure on real examples of this built dataset")
    parser.add_argument("--sizes", help="comma-separated LAYERSxHIDDEN (heads: hidden / 64, at least 2)")
    parser.add_argument("--shapes", default="8x256,8x512,4x1024", help="comma-separated BATCHxBLOCK")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    # (label, layers, hidden, heads, vocab, batch, block): the default config at the batch shapes train uses.
    layers, hidden, heads, vocab = shipped_shape()
    data_rows = None
    if args.dataset:
        from neural.dataset_build import load_rows

        data_rows, _val, manifest = load_rows(args.dataset)
        vocab = int(manifest["vocab_size"])
    models = [(f"default ({layers}x{hidden}, vocab {vocab})", layers, hidden, heads)]
    if args.sizes:
        models = []
        for text in args.sizes.split(","):
            n_layers, width = (int(x) for x in text.lower().split("x"))
            models.append((f"{n_layers}x{width}, vocab {vocab}", n_layers, width, max(2, width // 64)))
    shapes = [tuple(int(x) for x in text.lower().split("x")) for text in args.shapes.split(",")]
    rows = [(label, n_layers, width, n_heads, vocab, batch, block)
            for label, n_layers, width, n_heads in models for batch, block in shapes]
    if args.quick:
        rows = [("tiny (2x32, vocab 512)", 2, 32, 2, 512, 2, 64)]
    source = f"examples of {args.dataset}" if args.dataset else "random tokens"
    print(f"Training throughput on {platform.processor() or platform.machine()}, {args.device}, {source}, "
          f"{args.threads} torch threads, torch {torch.__version__}\n")
    print("| model | params | batch x block | s / step | tokens / s |")
    print("|---|---:|---:|---:|---:|")
    for label, layers, hidden, heads, vocab, batch, block in rows:
        rate, per_step, params = measure(layers, hidden, heads, vocab, batch, block, args.steps, args.device,
                                         data_rows)
        print(f"| {label} | {params / 1e6:.2f} M | {batch} x {block} | {per_step:.2f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
