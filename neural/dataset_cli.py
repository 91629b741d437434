"""`retrograde dataset build | info`: token shards of a recorded corpus, for `retrograde train --dataset`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

PROG = "retrograde"


def register(subparsers: Any) -> None:
    dataset = subparsers.add_parser(
        "dataset", help="turn a recorded corpus into token shards for training",
        description="Sample debugger trajectories of every trace of a corpus ('retrograde corpus build'), "
                    "tokenize them in parallel into shards with a manifest. Resumable (finished shards are "
                    "kept) and deterministic (the same seed gives the same shards).")
    dataset.set_defaults(handler=_no_action)
    actions = dataset.add_subparsers(dest="dataset_command", metavar="ACTION")

    build = actions.add_parser("build", help="build (or finish building) DATASET from CORPUS...")
    build.add_argument("corpus", metavar="CORPUS", nargs="+",
                       help="corpus directories of traces (or .rtrace files)")
    build.add_argument("-o", "--output", required=True, metavar="DATASET", help="dataset directory")
    build.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                       help="worker processes (default: all cores)")
    build.add_argument("--seed", type=int, default=0, help="trajectory sampling seed (0)")
    build.add_argument("--per-trace", type=int, default=4, metavar="N", help="trajectories per trace (4)")
    build.add_argument("--max-actions", type=int, default=24, metavar="N", help="actions per trajectory (24)")
    build.add_argument("--block-size", type=int, default=512, metavar="N", help="longest example (512)")
    build.add_argument("--val-every", type=int, default=10, metavar="N",
                       help="about 1 trace in N goes to validation (10)")
    build.add_argument("--traces-per-shard", type=int, default=256, metavar="N",
                       help="traces per shard (256)")
    build.add_argument("--vocab-size", type=int, default=4096, metavar="N",
                       help="tokenizer vocabulary (4096)")
    build.add_argument("--tokenizer", metavar="DIR",
                       help="use this tokenizer (a model directory) instead of training one")
    build.add_argument("--tokenizer-sample", type=int, default=2000, metavar="N",
                       help="traces the tokenizer is trained on (2000)")
    build.add_argument("--exclude", action="append", default=[], metavar="FILE",
                       help="JSONL of evaluation programs (CRUXEval, MBPP, ...) kept out of the data")
    build.add_argument("--no-heldout", action="store_true",
                       help="do not exclude bench/heldout_cruxeval.py's default held-out items")
    build.add_argument("--no-compress", action="store_true", help="plain shards instead of zstd")
    build.add_argument("--limit", type=int, metavar="N", help="only the first N traces")
    build.add_argument("--quiet", action="store_true", help="no progress lines")
    build.set_defaults(handler=cmd_build)

    info = actions.add_parser("info", help="print a dataset's manifest summary")
    info.add_argument("dataset", metavar="DATASET")
    info.set_defaults(handler=cmd_info)


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _no_action(_args: argparse.Namespace) -> int:
    return _fail("dataset needs an action: build or info (see 'retrograde dataset --help')", 2)


def _real_cruxeval() -> list[str]:
    """The real CRUXEval, when it lies next to the project: always excluded from training."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                        "datasets")
    return [os.path.normpath(os.path.join(root, name)) for name in ("cruxeval.jsonl", "cruxeval.jsonl.gz")
            if os.path.isfile(os.path.join(root, name))]


def cmd_build(args: argparse.Namespace) -> int:
    for name in ("jobs", "per_trace", "max_actions", "block_size", "val_every", "traces_per_shard",
                 "vocab_size", "tokenizer_sample", "limit"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            return _fail(f"--{name.replace('_', '-')} must be positive", 2)
    if args.block_size < 16:
        return _fail("--block-size must be at least 16", 2)
    for path in args.exclude:
        if not os.path.isfile(path):
            return _fail(f"no such exclusion file: {path}", 2)
    for corpus in args.corpus:
        if not os.path.exists(corpus):
            return _fail(f"no such corpus: {corpus}", 2)
    from neural.dataset import DataError
    from neural.dataset_build import HELDOUT_DEFAULT, BuildOptions, build
    from tracer.corpus.batch import default_jobs

    opts = BuildOptions(seed=args.seed, per_trace=args.per_trace, max_actions=args.max_actions,
                        block_size=args.block_size, val_every=args.val_every,
                        traces_per_shard=args.traces_per_shard,
                        compression="none" if args.no_compress else "zstd")
    started = time.monotonic()

    def progress(entry: dict[str, Any]) -> None:
        if not args.quiet:
            tokens = entry["train_tokens"] + entry["val_tokens"]
            print(f"{entry['file']}: {entry['examples']} examples, {tokens} tokens, "
                  f"{entry['excluded']} excluded ({time.monotonic() - started:.0f} s)", file=sys.stderr,
                  flush=True)

    try:
        manifest = build(args.corpus, args.output, opts, jobs=args.jobs or default_jobs(),
                         vocab_size=args.vocab_size, tokenizer_dir=args.tokenizer,
                         exclude=[*args.exclude, *_real_cruxeval()],
                         heldout=() if args.no_heldout else HELDOUT_DEFAULT, limit=args.limit,
                         progress=progress)
    except DataError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    _print_summary(args.output, manifest)
    unreadable = manifest.get("totals", {}).get("unreadable", 0)
    if unreadable:  # damaged traces are left out, not fatal: a corpus is messy (documented in docs/format.md)
        print(f"{PROG}: warning: {unreadable} trace(s) could not be read (damaged, or not traces) and were "
              "left out of the dataset; 'retrograde info TRACE' says what is wrong", file=sys.stderr)
    return 0


def _print_summary(path: str, manifest: dict[str, Any]) -> None:
    totals = manifest.get("totals", {})
    last = manifest.get("last_build", {})
    line = (f"{path}: {totals.get('shards', 0)} shards, {totals.get('examples', 0):,} examples, "
            f"{totals.get('train_tokens', 0):,} training + {totals.get('val_tokens', 0):,} validation "
            "tokens, "
            f"{totals.get('excluded', 0)} traces excluded, {totals.get('bytes', 0) / 2**20:.1f} MiB")
    if last:
        line += (f"; this run built {last['shards_built']} shards ({last['shards_skipped']} kept) in "
                 f"{last['wall_s']} s with {last['jobs']} jobs")
        if last.get("tokens_per_cpu_s"):
            line += f", {last['tokens_per_cpu_s']:,.0f} tokens per CPU-second"
    print(line)


def cmd_info(args: argparse.Namespace) -> int:
    from neural.dataset import DataError
    from neural.dataset_build import read_manifest

    try:
        manifest = read_manifest(args.dataset)
    except DataError as exc:
        return _fail(str(exc))
    if manifest is None:
        return _fail(f"{args.dataset} is not a dataset (no manifest.json)")
    _print_summary(args.dataset, manifest)
    return 0
