"""`retrograde train`: traces to trajectories to tokens, then a causal LM trained on them, resumably.

OUT receives the model (config.json, model.safetensors, tokenizer files), training_info.json, loss.csv
and loss.png. OUT/checkpoint/ holds what --resume needs (the latest weights, optimizer state, step, the
examples and the tokenizer); OUT without checkpoint/ is a complete model directory.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from neural.dataset import (
    DataError,
    find_data,
    pieces,
    record,
    sample_all,
    split_names,
    synth_sources,
    trees,
)
from neural.model import ModelSize, load_model, new_model, parameter_count, pick_device
from neural.textformat import STATE, serialize
from neural.tokenizer import ensure_special_tokens, load_tokenizer, train_tokenizer
from tracer.corpus.program import Program

CHECKPOINT = "checkpoint"
STATE_FILE = "trainer_state.pt"
EXAMPLES_FILE = "examples.jsonl"
MAX_SHARD = "16MB"  # weights files small enough to carry back from an accelerator machine


class TrainError(Exception):
    """Training cannot start or go on (bad data, missing checkpoint...)."""


@dataclass(slots=True)
class TrainOptions:
    out: str
    data: str | None = None
    dataset: str | None = None  # a directory built by `retrograde dataset build` (token shards)
    synth: int = 0  # programs from the corpus generator, instead of (or besides) --data
    synth_seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    block_size: int = 512
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    eval_every: int = 100
    eval_examples: int = 64
    save_every: int = 200
    seed: int = 0
    per_trace: int = 4
    max_actions: int = 24
    vocab_size: int = 4096
    size: ModelSize = field(default_factory=ModelSize)
    base: str | None = None
    resume: bool = False
    device: str = "auto"
    threads: int | None = None
    max_minutes: float | None = None
    jobs: int = 2
    record_max_steps: int = 20_000
    code_loss: bool = False  # also learn to predict the code context (off: only trajectories are learned)
    quiet: bool = False
    command: str = ""
    clock_start: float | None = None  # time.monotonic() at the command's start (wall_time_s counts from it)


@dataclass(slots=True)
class Examples:
    train: list[list[int]]
    val: list[list[int]]
    description: dict[str, Any]


def lr_at(opts: TrainOptions, step: int, fraction: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr over `fraction` (0..1) of the run."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))
    return opts.lr * (opts.min_lr_ratio + (1 - opts.min_lr_ratio) * cosine)


def _log(opts: TrainOptions, message: str) -> None:
    if not opts.quiet:
        print(message, file=sys.stderr, flush=True)


def _collect(opts: TrainOptions, workdir: str) -> tuple[list[str], dict[str, Any]]:
    traces: list[str] = []
    sources: list[Program] = []
    about: dict[str, Any] = {}
    if opts.data:
        found_traces, found_sources = find_data(opts.data)
        traces += found_traces
        sources += found_sources
        about["data"] = opts.data
    if opts.synth > 0:
        sources += synth_sources(opts.synth, opts.synth_seed)
        about["synth"] = {"programs": opts.synth, "seed": opts.synth_seed, "generator": "tracer.corpus.synth"}
    if not traces and not sources:
        raise DataError("no training data: give --data PATH or --synth N")
    if sources:
        _log(opts, f"recording {len(sources)} programs ({opts.jobs} at a time)...")
        started = time.monotonic()
        recorded = record(sources, os.path.join(workdir, "traces"), jobs=opts.jobs,
                          max_steps=opts.record_max_steps)
        about["programs"] = len(sources)
        about["recorded"] = len(recorded)
        about["record_s"] = round(time.monotonic() - started, 1)
        traces += recorded
    about["traces"] = len(traces)
    return traces, about


def prepare(opts: TrainOptions, tokenizer: Any | None) -> tuple[Any, list[tuple[str, str]], dict[str, Any]]:
    """(tokenizer, [(split, example text)], description): record, sample, train a tokenizer, cut examples."""
    with tempfile.TemporaryDirectory(prefix="retrograde-data-") as workdir:
        traces, about = _collect(opts, workdir)
        errors: list[str] = []
        named = trees(traces, errors)
    if not named:
        detail = f" (first error: {errors[0]})" if errors else ""
        raise DataError(f"none of the {len(traces)} traces could be read, or all are empty{detail}")
    about["unreadable"] = len(errors)
    names = [name for name, _ in named]
    train_names, val_names = split_names(names)
    trajectories = sample_all(named, opts.per_trace, opts.seed, opts.max_actions)
    about["trees"] = len(named)
    about["trajectories"] = len(trajectories)
    _log(opts, f"sampled {len(trajectories)} trajectories from {len(named)} traces")
    if tokenizer is None:
        started = time.monotonic()
        tokenizer = train_tokenizer(
            (serialize(t) for name, t in trajectories if name in train_names or not val_names),
            opts.vocab_size,
        )
        about["tokenizer_s"] = round(time.monotonic() - started, 1)

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    examples: list[tuple[str, str]] = []
    for name, trajectory in trajectories:
        split = "val" if name in val_names else "train"
        examples += [(split, text) for text in pieces(trajectory, count, opts.block_size)]
    if not any(split == "val" for split, _ in examples):  # one program only: hold out its last examples
        cut = max(1, len(examples) // 10)
        examples = [("train", t) for _, t in examples[:-cut]] + [("val", t) for _, t in examples[-cut:]]
    if not any(split == "train" for split, _ in examples):
        raise DataError("too little data: every example went to validation")
    return tokenizer, examples, about


def encode(tokenizer: Any, texts: Sequence[str], block_size: int) -> list[list[int]]:
    return [ids[:block_size] for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def batch_rows(rows_by_length: Sequence[list[int]], size: int, rng: random.Random) -> list[list[int]]:
    """A random batch of neighbours in length order: examples of similar length, so little padding."""
    start = rng.randrange(max(1, len(rows_by_length) - size + 1))
    batch = list(rows_by_length[start:start + size])
    while len(batch) < size:  # fewer examples than a batch: repeat some
        batch.append(rows_by_length[rng.randrange(len(rows_by_length))])
    return batch


def batch_tensors(rows: Sequence[Sequence[int]], pad_id: int, state_id: int, code_loss: bool,
                  device: str) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, labels), right-padded; labels skip padding and, unless code_loss, code."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row)
        ids[i, :n] = torch.tensor(list(row), dtype=torch.long)
        mask[i, :n] = 1
        first = 0
        if not code_loss:
            first = row.index(state_id) if state_id in row else n
        labels[i, first:n] = ids[i, first:n]
    return ids.to(device), mask.to(device), labels.to(device)


def evaluate(model: Any, rows: Sequence[Sequence[int]], opts: TrainOptions, pad_id: int, state_id: int,
             device: str) -> float:
    """Mean loss per predicted token over the validation rows."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), opts.batch_size):
            ids, mask, labels = batch_tensors(rows[start:start + opts.batch_size], pad_id, state_id,
                                              opts.code_loss, device)
            count = int((labels[:, 1:] != -100).sum())
            if count == 0:
                continue
            with _autocast(device):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            total += float(loss) * count
            tokens += count
    model.train()
    return total / tokens if tokens else float("nan")


def hardware(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "device": device, "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_curves(out: str, history: Sequence[dict[str, Any]]) -> None:
    """loss.csv (one row per step) and loss.png (train and validation loss against steps)."""
    keys = ["step", "train_loss", "val_loss", "lr", "tokens", "elapsed_s"]
    with open(os.path.join(out, "loss.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in keys})
    import matplotlib

    matplotlib.use("Agg")  # no display, ever
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([r["step"] for r in history], [r["train_loss"] for r in history], label="train", linewidth=0.8)
    val = [r for r in history if r.get("val_loss") not in (None, "")]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "loss.png"))
    plt.close(fig)


def _save_checkpoint(ckpt: str, model: Any, tokenizer: Any, optimizer: Any, state: dict[str, Any]) -> None:
    import torch

    tmp = ckpt + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save_pretrained(tmp, max_shard_size=MAX_SHARD)
    tokenizer.save_pretrained(tmp)
    torch.save({**state, "optimizer": optimizer.state_dict()}, os.path.join(tmp, STATE_FILE))
    examples = os.path.join(ckpt, EXAMPLES_FILE)
    if os.path.exists(examples):
        shutil.copyfile(examples, os.path.join(tmp, EXAMPLES_FILE))
    # Swap whole directories so an interrupted save never leaves a half-written checkpoint behind.
    old = ckpt + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(ckpt):
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _autocast(device: str) -> Any:
    """bf16 autocast on CUDA (the weights and the optimizer stay fp32); nothing elsewhere."""
    import contextlib

    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _dataset_rows(path: str, tokenizer: Any, about: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(train rows, validation rows) of a built dataset, checked against the tokenizer they need."""
    import hashlib

    from neural.dataset_build import load_rows

    train_rows, val_rows, manifest = load_rows(path)
    tokenizer_file = os.path.join(path, "tokenizer", "tokenizer.json")
    with open(tokenizer_file, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != manifest.get("tokenizer_sha256"):
        raise DataError(f"{tokenizer_file} is not the tokenizer the shards of {path} were built with")
    if len(tokenizer) < int(manifest.get("vocab_size", 0)):
        raise DataError(f"the tokenizer has fewer tokens than the dataset {path} uses")
    if load_tokenizer(os.path.join(path, "tokenizer")).get_vocab() != tokenizer.get_vocab():
        raise DataError(f"{path} was tokenized with another tokenizer than the model's: build it with "
                        "'retrograde dataset build --tokenizer MODEL_DIR'")
    about.update({"manifest_tokens": manifest.get("totals"), "tokenizer_sha256": digest,
                  "corpus": manifest.get("corpus"), "config": manifest.get("config")})
    return train_rows, val_rows


def _new_or_base(opts: TrainOptions, tokenizer: Any, device: str, about: dict[str, Any]) -> Any:
    if opts.base:
        model = load_model(opts.base, "cpu")
        if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        about["base"] = os.path.abspath(opts.base)
        return model.to(device)
    return new_model(opts.size, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id,
                     seed=opts.seed).to(device)


def _read_examples(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return [(r["split"], r["text"]) for r in map(json.loads, handle) if r]


def train(opts: TrainOptions) -> dict[str, Any]:
    """Run training; returns the training_info written to OUT."""
    import torch

    started = opts.clock_start if opts.clock_start is not None else time.monotonic()
    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model and tokenizer here is a local directory
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bar is enough
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    ckpt = os.path.join(opts.out, CHECKPOINT)
    state: dict[str, Any] = {}
    shard_rows: tuple[list[Any], list[Any]] | None = None
    examples: list[tuple[str, str]] = []
    if opts.resume:
        if not os.path.isfile(os.path.join(ckpt, STATE_FILE)):
            raise TrainError(f"nothing to resume: {ckpt} has no {STATE_FILE}")
        state = torch.load(os.path.join(ckpt, STATE_FILE), map_location="cpu", weights_only=False)
        tokenizer = load_tokenizer(ckpt)
        about = state["data"]
        if about.get("dataset"):  # --dataset names it when the run moved to another machine
            if opts.dataset:
                about["dataset"] = os.path.abspath(opts.dataset)
            shard_rows = _dataset_rows(about["dataset"], tokenizer, about)
        else:
            examples = _read_examples(os.path.join(ckpt, EXAMPLES_FILE))
        model = load_model(ckpt, device)
        _log(opts, f"resuming from step {state['step']}")
    elif opts.dataset:
        tokenizer = load_tokenizer(os.path.join(opts.dataset, "tokenizer"))
        about = {"dataset": os.path.abspath(opts.dataset)}
        shard_rows = _dataset_rows(opts.dataset, tokenizer, about)
        model = _new_or_base(opts, tokenizer, device, about)
        os.makedirs(ckpt, exist_ok=True)
    else:
        base_tokenizer = None
        if opts.base:
            if not os.path.isfile(os.path.join(opts.base, "config.json")):
                raise TrainError(f"--base {opts.base} is not a model directory (no config.json)")
            base_tokenizer = load_tokenizer(opts.base)
            ensure_special_tokens(base_tokenizer)
        tokenizer, examples, about = prepare(opts, base_tokenizer)
        model = _new_or_base(opts, tokenizer, device, about)
        os.makedirs(ckpt, exist_ok=True)
        with open(os.path.join(ckpt, EXAMPLES_FILE), "w", encoding="utf-8") as handle:
            for split, text in examples:
                handle.write(json.dumps({"split": split, "text": text}, ensure_ascii=False) + "\n")
    if shard_rows is not None:
        train_rows = sorted((row[:opts.block_size] for row in shard_rows[0]), key=len)
        spread = shard_rows[1][::max(1, len(shard_rows[1]) // max(1, opts.eval_examples))]
        val_rows = sorted((row[:opts.block_size] for row in spread[:opts.eval_examples]), key=len)
    else:
        train_rows = sorted(encode(tokenizer, [t for s, t in examples if s == "train"], opts.block_size),
                            key=len)
        val_rows = encode(tokenizer, [t for s, t in examples if s == "val"], opts.block_size)
        val_rows = sorted(val_rows[:opts.eval_examples], key=len)  # similar lengths batch with little padding
    about["examples"] = {"train": len(train_rows), "val": len(val_rows)}
    about["train_tokens"] = sum(map(len, train_rows))
    _log(opts, f"{len(train_rows)} training examples ({about['train_tokens']} tokens), {len(val_rows)} for "
               f"validation; vocabulary {len(tokenizer)}; {parameter_count(model):,} parameters on {device}")
    pad_id = int(tokenizer.pad_token_id)
    state_id = int(tokenizer.convert_tokens_to_ids(STATE))

    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    # Fused AdamW (one kernel for all parameters) on CUDA; the default implementation elsewhere.
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, betas=(0.9, 0.95),
                                  weight_decay=opts.weight_decay, **({"fused": True} if cuda else {}))
    if state:
        optimizer.load_state_dict(state["optimizer"])
    step = int(state.get("step", 0))
    history: list[dict[str, Any]] = list(state.get("history", []))
    tokens_seen = int(state.get("tokens_seen", 0))
    train_time = float(state.get("train_time_s", 0.0))
    rng = random.Random(opts.seed)
    if "rng" in state:
        rng.setstate(state["rng"])
    budget = opts.max_minutes * 60 if opts.max_minutes else None
    # --max-minutes counts optimization only (recording, sampling and tokenizing came before this point),
    # summed over resumed runs, so the learning-rate schedule goes on where the last session left it.
    loop_start = time.monotonic()
    optimized_before = float(state.get("optimized_s", 0.0))

    def optimized() -> float:
        return optimized_before + time.monotonic() - loop_start

    def snapshot() -> dict[str, Any]:
        return {"step": step, "history": history, "tokens_seen": tokens_seen, "train_time_s": train_time,
                "optimized_s": optimized(),
                "rng": rng.getstate(), "data": about, "options": _options_dict(opts)}

    step_s = eval_s = 0.0
    skipped = 0  # batches left out: no token to predict, or a loss that is not finite

    def out_of_time() -> bool:
        # Stop early enough for one more step, the final validation and the saves (about 10 s on a CPU).
        return budget is not None and optimized() + step_s + eval_s + 15 > budget

    model.train()
    last_val: float | None = None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(), disable=opts.quiet, transient=False,
    )
    # Without a terminal the bar only draws at the end: print a plain line now and then instead.
    plain = not opts.quiet and not progress.console.is_terminal
    with progress:
        task = progress.add_task("train", total=opts.steps, completed=step, status="")
        while step < opts.steps and not out_of_time():
            t0 = time.monotonic()
            rows = batch_rows(train_rows, opts.batch_size, rng)
            ids, mask, labels = batch_tensors(rows, pad_id, state_id, opts.code_loss, device)
            fraction = step / max(1, opts.steps)
            if budget is not None:
                fraction = max(fraction, optimized() / budget)
            lr = lr_at(opts, step, fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if not bool((labels[:, 1:] != -100).any()):  # nothing to predict in this batch (all code)
                skipped += 1
                if skipped > 100 + 10 * step:
                    raise TrainError("almost no example reaches a state within --block-size tokens: raise "
                                     "--block-size (or train with --code-loss)")
                continue
            with _autocast(device):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):  # one bad batch must not poison the weights
                skipped += 1
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            tokens_seen += int(mask.sum())
            train_time += time.monotonic() - t0
            step_s = max(step_s, time.monotonic() - t0) if step > 1 else 0.0  # slowest step, warm-up aside
            loss_value = loss.item()
            row: dict[str, Any] = {"step": step, "train_loss": round(loss_value, 5), "lr": lr,
                                   "tokens": tokens_seen, "elapsed_s": round(time.monotonic() - started, 1)}
            if val_rows and (step % opts.eval_every == 0 or step == opts.steps):
                t1 = time.monotonic()
                last_val = evaluate(model, val_rows, opts, pad_id, state_id, device)
                eval_s = time.monotonic() - t1
                row["val_loss"] = round(last_val, 5)
                if not opts.quiet:
                    progress.console.print(f"step {step}: train loss {loss_value:.4f}, validation loss "
                                           f"{last_val:.4f}, {tokens_seen / max(train_time, 1e-9):.0f} tok/s")
            history.append(row)
            status = f"loss {loss_value:.3f}" + (f" val {last_val:.3f}" if last_val is not None else "")
            progress.update(task, completed=step, status=status)
            if plain and step % max(1, opts.eval_every // 5) == 0:
                print(f"step {step}/{opts.steps}: {status}, {tokens_seen / max(train_time, 1e-9):.0f} tok/s",
                      file=sys.stderr, flush=True)
            if opts.save_every and step % opts.save_every == 0 and step < opts.steps:
                _save_checkpoint(ckpt, model, tokenizer, optimizer, snapshot())
                write_curves(opts.out, history)  # the curve so far, to look at while a long run goes on
    if val_rows and (not history or "val_loss" not in history[-1]):
        last_val = evaluate(model, val_rows, opts, pad_id, state_id, device)
        if history:
            history[-1]["val_loss"] = round(last_val, 5)
    _save_checkpoint(ckpt, model, tokenizer, optimizer, snapshot())
    model.save_pretrained(opts.out, max_shard_size=MAX_SHARD)
    tokenizer.save_pretrained(opts.out)
    recent = [r["train_loss"] for r in history[-20:]]
    info = {
        "command": opts.command,
        "started_utc": started_utc,
        "data": about,
        "steps": step,
        "tokens_seen": tokens_seen,
        "train_time_s": round(train_time, 1),
        "wall_time_s": round(time.monotonic() - started, 1),  # this run only (resumed runs add up)
        "tokens_per_s": round(tokens_seen / train_time, 1) if train_time else None,
        "final_train_loss": round(sum(recent) / len(recent), 4) if recent else None,
        "final_val_loss": round(last_val, 4) if last_val is not None else None,
        "parameters": parameter_count(model),
        "attention": getattr(model.config, "_attn_implementation", None),
        "skipped_batches": skipped,
        "prepare_s": round(loop_start - started, 1),
        "hardware": hardware(device),
        "options": _options_dict(opts),
    }
    if history:
        write_curves(opts.out, history)
    with open(os.path.join(opts.out, "training_info.json"), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")
    return info


def _options_dict(opts: TrainOptions) -> dict[str, Any]:
    return {k: v for k, v in asdict(opts).items() if k not in ("quiet", "command", "clock_start")}
