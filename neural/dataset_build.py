"""`retrograde dataset build`: a corpus of traces into token shards, in parallel, resumably, reproducibly.

DATASET/ holds manifest.json (what was built from what, and how), tokenizer/ (the tokenizer every shard was
encoded with) and shards/NNNNN.tok (neural.shards). Traces are taken in sorted order and cut into shards of
`traces_per_shard`; a shard's content depends only on its traces, the seed and the options, so workers can
build shards in any order, a rerun skips the shards that are finished, and the same seed gives the same
bytes. A trace whose definitions (the code without its top-level calls) match an excluded program
(tracer.corpus.fingerprint) never enters a shard.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

from neural.dataset import DataError
from neural.shards import VAL, write_shard, zstd_available
from neural.textformat import END, STATE, serialize, serialize_action, serialize_code, serialize_state
from neural.trajectory import StateTree, Trajectory, sample_trajectories

MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"
SHARDS_DIR = "shards"
FORMAT_VERSION = 1  # 1: first version
HELDOUT_DEFAULT = ((777, 1000),)  # bench/heldout_cruxeval.py draws its items from synth seed 777 (-n <= 333)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What a shard's content depends on (besides its traces and the tokenizer)."""

    seed: int = 0
    per_trace: int = 4
    max_actions: int = 24
    block_size: int = 512
    val_every: int = 10
    traces_per_shard: int = 256
    compression: str = "zstd"


def all_traces(corpora: Sequence[str]) -> list[tuple[str, str]]:
    """(path, name) of every trace of the corpora, sorted by name; a name (the trace's path inside its
    corpus, which the corpus derives from the program id) seen twice is the same program: kept once."""
    found: dict[str, str] = {}
    for corpus in corpora:
        for name in trace_files(corpus):
            found.setdefault(name, corpus if os.path.isfile(corpus) else os.path.join(corpus, name))
    return [(found[name], name) for name in sorted(found)]


def trace_files(corpus: str) -> list[str]:
    """The .rtrace files of a corpus directory (or one trace file), relative to the corpus, sorted."""
    if os.path.isfile(corpus) and corpus.endswith(".rtrace"):
        return [os.path.basename(corpus)]
    if not os.path.isdir(corpus):
        raise DataError(f"no such corpus directory: {corpus}")
    found = sorted(
        os.path.relpath(os.path.join(dirpath, name), corpus)
        for dirpath, _dirs, names in os.walk(corpus) for name in names if name.endswith(".rtrace")
    )
    if not found:
        raise DataError(f"{corpus} holds no traces (.rtrace): record programs with 'retrograde corpus build'")
    return found


def corpus_hash(traces: Sequence[tuple[str, str]]) -> str:
    """A hash of the trace names and sizes (cheap; enough to notice a different corpus)."""
    digest = hashlib.sha256()
    for path, name in traces:
        digest.update(f"{name}\0{os.path.getsize(path)}\n".encode())
    return digest.hexdigest()


def is_val(name: str, val_every: int) -> bool:
    """About 1 in val_every traces, by a stable hash of the trace's file name, go to validation."""
    return int(hashlib.sha256(os.path.basename(name).encode()).hexdigest(), 16) % val_every == 0


def trace_seed(seed: int, name: str) -> int:
    return int(hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest()[:15], 16)


def piece_ids(trajectory: Trajectory, encode_many: Callable[[list[str]], list[list[int]]],
              limit: int) -> list[list[int]]:
    """neural.dataset.pieces, tokenized: the same examples as token ids, each part encoded once.

    Every part starts with a special token, so a text's ids are the concatenation of its parts' ids.
    """
    code = trajectory.code
    states, actions = trajectory.states, trajectory.actions
    texts = [serialize_code(code), END, serialize_state(code, states[0])]
    for j in range(len(actions)):
        texts += [serialize_action(actions[j]), serialize_state(code, states[j + 1], states[j], actions[j])]
    ids = encode_many(texts)
    head, end = ids[0], ids[1]
    fresh = {0: ids[2]}  # a piece's first state is written in full, not as a diff from the one before

    def full(k: int) -> list[int]:
        if k not in fresh:
            fresh[k] = encode_many([serialize_state(code, states[k])])[0]
        return fresh[k]

    out: list[list[int]] = []
    k = 0
    while k < len(states):
        row = head + full(k)
        used = len(row) + 1
        j = k
        while j + 1 < len(states):
            step = ids[3 + 2 * j] + ids[4 + 2 * j]
            if used + len(step) > limit:
                break
            row += step
            used += len(step)
            j += 1
        out.append((row + end)[:limit])
        k = j + 1
    return out


def excluded_hashes(paths: Iterable[str], heldout: Iterable[tuple[int, int]] = HELDOUT_DEFAULT,
                    ) -> set[str]:
    """Definition hashes of every program used in an evaluation: JSONL files of records with 'code'
    (CRUXEval, programs, MBPP, HumanEval), and the held-out sets made by the corpus generator's seeds."""
    from tracer.corpus.fingerprint import definitions_hash
    from tracer.corpus.sources import SourceError, load

    out: set[str] = set()
    for path in paths:
        try:
            out |= {definitions_hash(p.code) for p in load(path)}
        except SourceError as exc:
            raise DataError(f"cannot read the exclusion list: {exc}") from None
    if heldout:
        from tracer.corpus.synth import generate

        for seed, count in heldout:
            out |= {definitions_hash(p.code) for p in generate(count, seed=seed)}
    return out


# --- worker side ------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer_dir: str, excluded: frozenset[str]) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process per core already
    from tokenizers import Tokenizer

    _WORKER["tokenizer"] = Tokenizer.from_file(os.path.join(tokenizer_dir, "tokenizer.json"))
    _WORKER["excluded"] = excluded
    _WORKER["state_id"] = _WORKER["tokenizer"].token_to_id(STATE)


def _encode_many(texts: list[str]) -> list[list[int]]:
    return [e.ids for e in _WORKER["tokenizer"].encode_batch(texts, add_special_tokens=False)]


def build_shard(traces: Sequence[tuple[str, str]], path: str, opts: BuildOptions,
                vocab_size: int) -> dict[str, Any]:
    """Tokenize the trajectories of the (path, name) traces into the shard at `path`; returns its entry."""
    from tracer.corpus.fingerprint import definitions_hash

    rows: list[list[int]] = []
    splits: list[int] = []
    counts = {"traces": len(traces), "excluded": 0, "unreadable": 0, "empty": 0, "trajectories": 0,
              "code_only": 0}
    state_id = _WORKER["state_id"]
    hashes: dict[str, bool] = {}
    for full, name in traces:
        try:
            tree = StateTree.from_recorded(full)
        except Exception:  # a corpus is messy: a trace that cannot be read is counted, not fatal
            counts["unreadable"] += 1
            continue
        if len(tree) < 2 or not tree.code:
            counts["empty"] += 1
            continue
        if tree.code not in hashes:
            hashes[tree.code] = definitions_hash(tree.code) in _WORKER["excluded"]
        if hashes[tree.code]:
            counts["excluded"] += 1
            continue
        split = VAL if is_val(name, opts.val_every) else 0
        seed = trace_seed(opts.seed, name)
        for trajectory in sample_trajectories(tree, opts.per_trace, seed, opts.max_actions):
            counts["trajectories"] += 1
            for row in piece_ids(trajectory, _encode_many, opts.block_size):
                if state_id not in row:  # code longer than a block: nothing left to learn from
                    counts["code_only"] += 1
                    continue
                rows.append(row)
                splits.append(split)
    digest = write_shard(path, rows, splits, vocab_size, opts.compression)
    val_tokens = sum(len(r) for r, s in zip(rows, splits) if s == VAL)
    total = sum(map(len, rows))
    return {"file": os.path.relpath(path, os.path.dirname(os.path.dirname(path))), "sha256": digest,
            "examples": len(rows), "val_examples": sum(splits), "train_tokens": total - val_tokens,
            "val_tokens": val_tokens, "bytes": os.path.getsize(path), **counts}


def _shard_job(traces: list[tuple[str, str]], path: str, opts: BuildOptions, vocab_size: int,
               ) -> tuple[dict[str, Any], float]:
    started = time.process_time()
    entry = build_shard(traces, path, opts, vocab_size)
    return entry, time.process_time() - started


# --- driver -----------------------------------------------------------------------------------------
def _tokenizer(out: str, traces: Sequence[tuple[str, str]], opts: BuildOptions, vocab_size: int,
               given: str | None, excluded: set[str], sample_traces: int) -> tuple[Any, str]:
    """(tokenizer, sha256 of tokenizer.json): DATASET's own, a given one copied in, or one trained on a
    seeded sample of the training traces (never validation or excluded ones)."""
    import random

    from neural.tokenizer import load_tokenizer, train_tokenizer
    from tracer.corpus.fingerprint import definitions_hash

    target = os.path.join(out, TOKENIZER_DIR)
    if not os.path.isfile(os.path.join(target, "tokenizer.json")):
        if given:
            if not os.path.isfile(os.path.join(given, "tokenizer.json")):
                raise DataError(f"--tokenizer {given} has no tokenizer.json")
            tokenizer = load_tokenizer(given)
        else:
            train_traces = [t for t in traces if not is_val(t[1], opts.val_every)]
            rng = random.Random(opts.seed)
            chosen = sorted(rng.sample(train_traces, min(sample_traces, len(train_traces))))

            def texts() -> Iterable[str]:
                for path, name in chosen:
                    try:
                        tree = StateTree.from_recorded(path)
                    except Exception:
                        continue
                    if len(tree) < 2 or not tree.code or definitions_hash(tree.code) in excluded:
                        continue
                    for trajectory in sample_trajectories(tree, opts.per_trace, trace_seed(opts.seed, name),
                                                          opts.max_actions):
                        yield serialize(trajectory)

            tokenizer = train_tokenizer(texts(), vocab_size)
        tmp = target + ".tmp"
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    tokenizer = load_tokenizer(target)
    with open(os.path.join(target, "tokenizer.json"), "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    return tokenizer, digest


def read_manifest(out: str) -> dict[str, Any] | None:
    path = os.path.join(out, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise DataError(f"{path} is not a dataset manifest of version {FORMAT_VERSION}")
    return data


def _write_manifest(out: str, manifest: dict[str, Any]) -> None:
    tmp = os.path.join(out, MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    os.replace(tmp, os.path.join(out, MANIFEST))


def build(corpus: str | Sequence[str], out: str, opts: BuildOptions, *, jobs: int = 1,
          vocab_size: int = 4096,
          tokenizer_dir: str | None = None, exclude: Sequence[str] = (),
          heldout: Sequence[tuple[int, int]] = HELDOUT_DEFAULT, tokenizer_sample: int = 2000,
          limit: int | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
          ) -> dict[str, Any]:
    """Build (or finish building) DATASET `out` from one corpus or several; returns the manifest."""
    if opts.compression == "zstd" and not zstd_available():
        opts = BuildOptions(**{**asdict(opts), "compression": "none"})
    corpora = [corpus] if isinstance(corpus, str) else list(corpus)
    traces = all_traces(corpora)
    if limit is not None:
        traces = traces[:limit]
    excluded = excluded_hashes(exclude, heldout)
    exclusion_digest = hashlib.sha256("\n".join(sorted(excluded)).encode()).hexdigest()
    source_digest = corpus_hash(traces)
    config = {**asdict(opts), "exclusion_sha256": exclusion_digest, "corpus_sha256": source_digest}
    old = read_manifest(out)
    if old is not None and old.get("config") != config:
        changed = sorted(k for k in config if old.get("config", {}).get(k) != config[k])
        raise DataError(f"{out} was built with other options or another corpus ({', '.join(changed)} "
                        "differ): use a new output directory")
    os.makedirs(os.path.join(out, SHARDS_DIR), exist_ok=True)
    started = time.monotonic()
    tokenizer, tokenizer_digest = _tokenizer(out, traces, opts, vocab_size, tokenizer_dir, excluded,
                                             tokenizer_sample)
    tokenizer_s = time.monotonic() - started
    vocab = len(tokenizer)
    groups = [traces[i:i + opts.traces_per_shard] for i in range(0, len(traces), opts.traces_per_shard)]
    done: dict[str, dict[str, Any]] = {}
    if old is not None:
        for entry in old.get("shards", []):
            path = os.path.join(out, entry["file"])
            if os.path.isfile(path) and os.path.getsize(path) == entry.get("bytes"):
                done[entry["file"]] = entry
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION, "config": config, "corpus": [os.path.abspath(c) for c in corpora],
        "traces": len(traces),
        "tokenizer_sha256": tokenizer_digest, "vocab_size": vocab, "excluded_programs": len(excluded),
        "shards": [],
    }
    todo = []
    for number, group in enumerate(groups):
        rel = f"{SHARDS_DIR}/{number:05d}.tok"
        if rel in done:
            continue
        todo.append((number, group, os.path.join(out, rel)))
    cpu_s = 0.0

    def save() -> None:
        manifest["shards"] = sorted(done.values(), key=lambda e: e["file"])
        totals = {key: sum(int(e.get(key, 0)) for e in manifest["shards"])
                  for key in ("examples", "train_tokens", "val_tokens", "bytes", "excluded", "unreadable",
                              "code_only")}
        manifest["totals"] = {**totals, "shards": len(manifest["shards"]), "complete":
                              len(manifest["shards"]) == len(groups)}
        _write_manifest(out, manifest)

    save()
    build_started = time.monotonic()
    if jobs <= 1:
        _init_worker(os.path.join(out, TOKENIZER_DIR), frozenset(excluded))
        for _number, group, path in todo:
            entry, cpu = _shard_job(group, path, opts, vocab)
            cpu_s += cpu
            done[entry["file"]] = entry
            save()
            if progress:
                progress(entry)
    else:
        # forkserver: forking a process that already runs tokenizer or torch threads can deadlock.
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(os.path.join(out, TOKENIZER_DIR), frozenset(excluded))) as pool:
            pending: set[Future[tuple[dict[str, Any], float]]] = set()
            queue = list(todo)
            while queue or pending:
                while queue and len(pending) < 2 * jobs:
                    _number, group, path = queue.pop(0)
                    pending.add(pool.submit(_shard_job, group, path, opts, vocab))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    entry, cpu = future.result()
                    cpu_s += cpu
                    done[entry["file"]] = entry
                    if progress:
                        progress(entry)
                save()
    wall = time.monotonic() - build_started
    new_tokens = sum(int(done[os.path.relpath(p, out)]["train_tokens"]) +
                     int(done[os.path.relpath(p, out)]["val_tokens"]) for _n, _g, p in todo)
    manifest["last_build"] = {
        "jobs": jobs, "shards_built": len(todo), "shards_skipped": len(groups) - len(todo),
        "tokens_built": new_tokens, "wall_s": round(wall, 2), "worker_cpu_s": round(cpu_s, 2),
        "tokenizer_s": round(tokenizer_s, 2),
        "tokens_per_cpu_s": round(new_tokens / cpu_s, 1) if cpu_s else None,
    }
    save()
    return manifest


def load_rows(out: str) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """(train rows, validation rows, manifest) of a built dataset."""
    from neural.shards import ShardError, read_shard

    manifest = read_manifest(out)
    if manifest is None:
        raise DataError(f"{out} is not a dataset (no {MANIFEST}): build one with 'retrograde dataset build'")
    train: list[Any] = []
    val: list[Any] = []
    for entry in manifest["shards"]:
        try:
            shard = read_shard(os.path.join(out, entry["file"]))
        except ShardError as exc:
            raise DataError(str(exc)) from None
        for row, split in zip(shard.rows, shard.splits):
            (val if split == VAL else train).append(row)
    if not train:
        raise DataError(f"{out} holds no training examples")
    return train, val, manifest
