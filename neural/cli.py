"""Subcommands of the neural part: `retrograde train` and `retrograde trajectories` (imports no torch)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

PROG = "retrograde"


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train", help="train a model on debugger trajectories of recorded programs",
        description="Record programs (or read traces), sample debugger trajectories, train a tokenizer and "
                    "a causal LM from scratch (or fine-tune --base). Writes the model to OUT; OUT/checkpoint "
                    "holds what --resume needs.")
    train.add_argument("--data", metavar="PATH",
                       help="traces (.rtrace file or directory), a directory of .py scripts, "
                            "or a JSONL of programs")
    train.add_argument("--synth", type=int, default=0, metavar="N",
                       help="also generate N programs with the corpus generator")
    train.add_argument("--synth-seed", type=int, default=0, metavar="SEED")
    train.add_argument("--out", required=True, metavar="DIR", help="where the model is written")
    train.add_argument("--steps", type=int, default=1000, metavar="N", help="optimizer steps (default 1000)")
    train.add_argument("--base", metavar="PATH", help="fine-tune this local causal-LM checkpoint")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--block-size", type=int, default=512, help="longest example, in tokens")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (1e-3; 1e-4 with --base)")
    train.add_argument("--warmup", type=int, default=50)
    train.add_argument("--eval-every", type=int, default=100, metavar="N")
    train.add_argument("--save-every", type=int, default=200, metavar="N")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--per-trace", type=int, default=4, help="trajectories sampled per trace")
    train.add_argument("--max-actions", type=int, default=24, help="actions per sampled trajectory")
    train.add_argument("--vocab-size", type=int, default=4096)
    train.add_argument("--layers", type=int, default=4)
    train.add_argument("--hidden", type=int, default=256)
    train.add_argument("--heads", type=int, default=4)
    train.add_argument("--intermediate", type=int, default=None, help="MLP width (default 8/3 of hidden)")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    train.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    train.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this long")
    train.add_argument("--jobs", type=int, default=2, help="programs recorded at a time")
    train.add_argument("--code-loss", action="store_true", help="also train on the code context tokens")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(handler=cmd_train)

    traj = subparsers.add_parser(
        "trajectories", help="print sampled debugger trajectories of a trace, in the model's text format")
    traj.add_argument("trace", metavar="TRACE")
    traj.add_argument("-n", type=int, default=1, help="how many (default 1)")
    traj.add_argument("--seed", type=int, default=0)
    traj.add_argument("--max-actions", type=int, default=24)
    traj.set_defaults(handler=cmd_trajectories)


def _check_positive(args: argparse.Namespace, *names: str) -> str | None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    return None


def cmd_train(args: argparse.Namespace) -> int:
    import time

    clock_start = time.monotonic()
    if not args.data and not args.synth and not args.resume:
        return _fail("train needs --data PATH or --synth N (or --resume)", 2)
    problem = _check_positive(args, "steps", "batch_size", "block_size", "eval_every", "vocab_size", "layers",
                              "hidden", "heads", "per_trace", "max_actions", "jobs", "max_minutes", "lr")
    if problem:
        return _fail(problem, 2)
    if args.synth < 0:
        return _fail("--synth must not be negative", 2)
    if args.hidden % args.heads:
        return _fail("--hidden must be a multiple of --heads", 2)
    if args.data and not args.resume:
        from neural.dataset import DataError, find_data

        try:  # before torch's slow import: bad data should fail fast
            find_data(args.data)
        except DataError as exc:
            return _fail(str(exc))
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        return _fail(f"training needs torch and transformers ({exc.name} is missing)")
    from neural.dataset import DataError
    from neural.model import ModelSize
    from neural.train import TrainError, TrainOptions, train

    intermediate = args.intermediate or (args.hidden * 8 // 3 + 15) // 16 * 16
    options = TrainOptions(
        out=args.out, data=args.data, synth=args.synth, synth_seed=args.synth_seed, steps=args.steps,
        batch_size=args.batch_size, block_size=args.block_size,
        lr=args.lr if args.lr is not None else (1e-4 if args.base else 1e-3),
        warmup=args.warmup, eval_every=args.eval_every, save_every=args.save_every, seed=args.seed,
        per_trace=args.per_trace, max_actions=args.max_actions, vocab_size=args.vocab_size,
        size=ModelSize(layers=args.layers, hidden=args.hidden, heads=args.heads, intermediate=intermediate,
                       context=max(args.block_size, 256)),
        base=args.base, resume=args.resume, device=args.device, threads=args.threads,
        max_minutes=args.max_minutes, jobs=args.jobs, code_loss=args.code_loss, quiet=args.quiet,
        command=shlex.join([PROG, *sys.argv[1:]]), clock_start=clock_start,
    )
    try:
        info = train(options)
    except (DataError, TrainError, FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(f"trained {info['steps']} steps on {info['tokens_seen']} tokens in {info['wall_time_s']} s: "
          f"train loss {info['final_train_loss']}, validation loss {info['final_val_loss']} -> {args.out}")
    return 0


def cmd_trajectories(args: argparse.Namespace) -> int:
    from neural.textformat import serialize
    from neural.trajectory import StateTree, sample_trajectories

    if args.n <= 0 or args.max_actions <= 0:
        return _fail("-n and --max-actions must be positive", 2)
    if not os.path.isfile(args.trace):
        return _fail(f"no such trace: {args.trace}")
    try:
        tree = StateTree.from_recorded(args.trace)
    except Exception as exc:  # the trace reader's own errors, or a file that is no trace at all
        return _fail(f"cannot read {args.trace}: {exc}")
    if not len(tree):
        return _fail(f"{args.trace} has no steps")
    for trajectory in sample_trajectories(tree, args.n, args.seed, args.max_actions):
        print(serialize(trajectory))
    return 0
