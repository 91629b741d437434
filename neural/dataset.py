"""Training data: programs recorded into traces, traces into sampled trajectories, trajectories into text."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence

from neural.textformat import END, serialize_action, serialize_code, serialize_state
from neural.trajectory import StateTree, Trajectory, sample_trajectories
from tracer.corpus.program import Program

_SKIPPED_SPLITS = frozenset({"eval", "test"})  # benchmark problems never go into training


class DataError(Exception):
    """The training data cannot be found, read or recorded."""


def synth_sources(count: int, seed: int) -> list[Program]:
    """`count` programs from the corpus generator (tracer.corpus.synth)."""
    try:
        from tracer.corpus.synth import generate
    except ImportError as exc:
        raise DataError(f"the corpus generator is not available ({exc})") from None
    return list(generate(count, seed=seed))


def find_data(path: str) -> tuple[list[str], list[Program]]:
    """(trace files, programs to record) named by PATH: a .rtrace file, a directory of traces or of .py
    scripts, or a program file the corpus loaders read (JSONL of programs, CRUXEval, MBPP)."""
    if not os.path.exists(path):
        raise DataError(f"no such file or directory: {path}")
    if os.path.isdir(path):
        traces = sorted(
            os.path.join(dirpath, name)
            for dirpath, _dirs, names in os.walk(path) for name in names if name.endswith(".rtrace")
        )
        if traces:
            return traces, []
    elif path.endswith(".rtrace"):
        return [path], []
    try:
        from tracer.corpus.sources import SourceError, load
    except ImportError as exc:
        raise DataError(f"cannot read programs: the corpus loaders are not available ({exc})") from None
    try:
        programs = [p for p in load(path) if p.split not in _SKIPPED_SPLITS]
    except (SourceError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(str(exc)) from None
    if not programs:
        raise DataError(f"{path} holds no traces (.rtrace) and no programs")
    return [], programs


def record(programs: Sequence[Program], outdir: str, jobs: int = 2, max_steps: int = 20_000,
           timeout: float = 30.0, progress: Callable[[int], None] | None = None) -> list[str]:
    """Record the programs as a corpus in OUTDIR (tracer.corpus: sandboxed, resumable); the traces kept.

    A program that fails still leaves its trace (an exception is worth learning); one that hangs is killed.
    """
    from tracer.corpus.batch import build, read_manifest
    from tracer.corpus.sandbox import Limits

    limits = Limits(timeout=timeout, cpu=max(1, int(timeout)), max_steps=max_steps)
    build(programs, outdir, limits, jobs=max(1, jobs), progress=False,
          on_result=None if progress is None else lambda _entry: progress(1))
    wanted = {program.id for program in programs}
    return sorted(os.path.join(outdir, entry["trace"]) for pid, entry in read_manifest(outdir).items()
                  if pid in wanted and entry.get("trace"))


def trees(traces: Iterable[str], errors: list[str] | None = None) -> list[tuple[str, StateTree]]:
    """(trace path, tree) for each readable trace with at least two nodes and its source.

    A trace that cannot be read is skipped (corpora are messy); its error is appended to `errors`.
    """
    out = []
    for path in traces:
        try:
            tree = StateTree.from_recorded(path)
        except Exception as exc:
            if errors is not None:
                errors.append(f"{os.path.basename(path)}: {exc}")
            continue
        if len(tree) >= 2 and tree.code:
            out.append((path, tree))
    return out


def pieces(trajectory: Trajectory, count_tokens: Callable[[str], int], limit: int) -> list[str]:
    """The trajectory's text, split into examples of at most `limit` tokens, each restating the code.

    Every part starts with a special token, so the token count of a text is the sum over its parts. A piece
    starts with a full state; a piece that cannot fit even one state is cut by the caller's truncation.
    """
    code = trajectory.code
    head = serialize_code(code)
    head_tokens = count_tokens(head)
    out: list[str] = []
    states, actions = trajectory.states, trajectory.actions
    k = 0
    while k < len(states):
        parts = [head, serialize_state(code, states[k])]
        used = head_tokens + count_tokens(parts[-1]) + 1
        j = k
        while j + 1 < len(states):
            action_text = serialize_action(actions[j])
            state_text = serialize_state(code, states[j + 1], states[j], actions[j])
            cost = count_tokens(action_text) + count_tokens(state_text)
            if used + cost > limit:
                break
            parts += [action_text, state_text]
            used += cost
            j += 1
        parts.append(END)
        out.append("".join(parts))
        k = j + 1
    return out


def split_names(names: Sequence[str], val_every: int = 10) -> tuple[set[str], set[str]]:
    """(train, validation) by a stable hash of the name's last path part (a trace's file name, not the
    temporary directory it was recorded into): about 1 in `val_every`, at least one when 2+."""
    if len(set(names)) < 2:  # one program: it trains; the caller holds out its last examples instead
        return set(names), set()
    def bucket(name: str) -> int:
        return int(hashlib.sha256(os.path.basename(name).encode()).hexdigest(), 16) % val_every

    val = {n for n in names if bucket(n) == 0}
    if not val and len(names) >= 2:
        val = {sorted(names)[-1]}
    if len(val) == len(names) and len(names) >= 2:
        val = {sorted(names)[-1]}
    return set(names) - val, val


def sample_all(named_trees: Sequence[tuple[str, StateTree]], per_tree: int, seed: int,
               max_actions: int) -> list[tuple[str, Trajectory]]:
    """(tree name, trajectory) for `per_tree` seeded trajectories of each tree."""
    out = []
    for number, (name, tree) in enumerate(named_trees):
        for trajectory in sample_trajectories(tree, per_tree, seed * 1_000_003 + number, max_actions):
            out.append((name, trajectory))
    return out
