"""Training throughput: tokens per second of `retrograde train`'s model on this machine (Markdown table)."""

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
            device: str) -> tuple[float, float, int]:
    """(tokens per second, seconds per step, parameters) of full training steps on random tokens."""
    import torch

    from neural.model import ModelSize, new_model, parameter_count

    size = ModelSize(layers=layers, hidden=hidden, heads=heads,
                     intermediate=(hidden * 8 // 3 + 15) // 16 * 16, context=max(block, 256))
    model = new_model(size, vocab, pad_id=0, eos_id=7).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(9, vocab, (batch, block), generator=generator).to(device)

    def one() -> None:
        loss = model(input_ids=ids, labels=ids).loss
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
    return batch * block * steps / elapsed, elapsed / steps, parameter_count(model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="one small row (a smoke test)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    # (label, layers, hidden, heads, vocab, batch, block): the default config at the batch shapes train uses.
    layers, hidden, heads, vocab = shipped_shape()
    label = f"default ({layers}x{hidden}, vocab {vocab})"
    shapes = ((8, 256), (8, 512), (4, 1024))  # batch x block, as `retrograde train` feeds them
    rows = [(label, layers, hidden, heads, vocab, batch, block) for batch, block in shapes]
    if args.quick:
        rows = [("tiny (2x32, vocab 512)", 2, 32, 2, 512, 2, 64)]
    print(f"Training throughput on {platform.processor() or platform.machine()}, {args.device}, "
          f"{args.threads} torch threads, torch {torch.__version__}\n")
    print("| model | params | batch x block | s / step | tokens / s |")
    print("|---|---:|---:|---:|---:|")
    for label, layers, hidden, heads, vocab, batch, block in rows:
        rate, per_step, params = measure(layers, hidden, heads, vocab, batch, block, args.steps, args.device)
        print(f"| {label} | {params / 1e6:.2f} M | {batch} x {block} | {per_step:.2f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
