"""Forward commands stop where `python -m pdb` stops, command for command, on the samples.

pdb runs the live program; the replay runs its trace, recorded by `retrograde record` (RecordedTimeline)
and by the settrace reference recorder (ListTimeline). Compared per command: the `--Call--`/`--Return--`
marker, file, line, function and the `->value` at return stops. Comparison ends where pdb leaves the
program's own files (pdb steps into library code the trace does not hold) or the program finishes (pdb
restarts it; the replay reports the end of the trace).
"""

from __future__ import annotations

import functools
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from replay_fixtures import reference_timeline
from replay_pdb import Shown, run_pdb, run_replay_script

from replay.timeline import Timeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
# stdin_stderr reads stdin, where pdb's own commands arrive.
SKIP = {"stdin_stderr.py"}
SAMPLES = sorted(p.name for p in (ROOT / "samples").glob("*.py") if p.name not in SKIP)
# pdb traces only the main thread: breakpoints in other threads are a replay extension, not compared.
NO_BREAKPOINTS = {"threads.py"}
BACKENDS = ["reference", "recorded"]


def script_path(name: str) -> Path:
    return DATA / name if (DATA / name).exists() else ROOT / "samples" / name


@functools.cache
def recorded_timeline(name: str) -> Timeline:
    try:
        from replay.recorded import RecordedTimeline
    except ImportError as exc:  # the recorder is another module's work: say so rather than fail here
        pytest.skip(f"replay.recorded is not available: {exc}")
    script = script_path(name)
    out = Path(tempfile.mkdtemp(prefix="retro-diff-")) / "trace.rtrace"
    subprocess.run(
        [sys.executable, "-m", "tracer", "record", "-o", str(out), str(script)],
        capture_output=True, text=True, timeout=60, cwd=str(script.parent), check=False,
    )
    if not out.exists() or out.stat().st_size == 0:
        pytest.fail(f"retrograde record wrote no trace for {name}")
    return RecordedTimeline(out)


def timeline_for(name: str, backend: str) -> Timeline:
    if backend == "recorded":
        return recorded_timeline(name)
    if (DATA / name).exists():
        return reference_timeline(name)
    return reference_timeline_of(script_path(name))


@functools.cache
def reference_timeline_of(script: Path) -> Timeline:
    from replay_pdb import record_reference

    with tempfile.TemporaryDirectory() as tmp:
        return record_reference(script, Path(tmp) / "trace.jsonl")


@functools.cache
def pdb_stops(name: str, commands: tuple[str, ...]) -> list[Shown | None]:
    return run_pdb(script_path(name), list(commands))


def normalise(shown: Shown | None) -> str | None:
    """Object addresses differ between runs, also inside reprlib's cut (`<function rep...x7f13eb6c20c0>`)."""
    if shown is None:
        return None
    return re.sub(r"\.\.\..*", "...", re.sub(r"0x[0-9a-f]+", "0x?", str(shown)))


def compare(name: str, commands: list[str], backend: str) -> int:
    """Run both; assert equal stops command by command; the number of commands compared."""
    script = script_path(name)
    expected = pdb_stops(name, tuple(commands))
    actual, output = run_replay_script(timeline_for(name, backend), commands)
    assert "Traceback" not in output
    compared = 0
    for index, (want, got) in enumerate(zip(expected, actual)):
        if want is None and got is None:
            continue
        if want is not None and not want.file.startswith(str(script.parent)):
            break  # pdb went into library code (or its own frames after the program ended)
        if got is not None and got.marker == "--Return--" and got.func == "<module>" and want != got:
            break  # the program finished: pdb restarts it, the replay stays at the end
        command = "<start>" if index == 0 else commands[index - 1]
        assert normalise(got) == normalise(want), (
            f"{name} [{backend}] command {index} {command!r} in {commands[:index]}: "
            f"pdb stopped at {want}, the replay at {got}"
        )
        compared += 1
        if want is not None and want.marker == "--Return--" and want.func == "<module>":
            break
    return compared


def moves(seed: int, count: int = 50) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(["n", "n", "n", "s", "s", "r", "unt"]) for _ in range(count)]


def with_breakpoints(name: str, seed: int, count: int = 45) -> list[str]:
    """A random script of breakpoint commands and movements over lines that run."""
    timeline = timeline_for(name, "reference")
    main = timeline.step(0).file
    steps = list(timeline.steps(0, len(timeline)))
    lines = sorted({s.line for s in steps if s.event == "line" and s.file == main and s.thread == 0})
    funcs = sorted({s.func for s in steps if s.event == "call" and s.file == main and "." not in s.func
                    and not s.func.startswith("<")})
    rng = random.Random(seed)
    commands = []
    for _ in range(count):
        r = rng.random()
        if r < 0.15:
            commands.append(f"b {rng.choice(lines)}")
        elif r < 0.2 and funcs:
            commands.append(f"b {rng.choice(funcs)}")
        elif r < 0.23:
            commands.append(f"tbreak {rng.choice(lines)}")
        elif r < 0.4:
            commands.append("c")
        elif r < 0.6:
            commands.append("n")
        elif r < 0.7:
            commands.append("r")
        elif r < 0.75:
            commands.append(f"unt {rng.choice(lines)}")
        elif r < 0.8:
            commands.append(f"disable {rng.randint(1, 4)}")
        elif r < 0.83:
            commands.append(f"cl {rng.randint(1, 4)}")
        elif r < 0.86:
            commands.append(f"ignore {rng.randint(1, 4)} {rng.randint(0, 2)}")
        else:
            commands.append("s")
    return commands


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*SAMPLES, "replay_basic.py"])
def test_moves_agree_with_pdb(name: str, backend: str) -> None:
    assert compare(name, moves(len(name)), backend) >= 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*(n for n in SAMPLES if n not in NO_BREAKPOINTS), "replay_nested.py",
                                  "replay_basic.py"])
def test_breakpoints_agree_with_pdb(name: str, backend: str) -> None:
    assert compare(name, with_breakpoints(name, 7), backend) >= 1


HANDWRITTEN = {
    # Into callees, through loops, out with return; the generator's yields and resumes (--Return--/--Call--
    # with pdb's stale ->value), the comprehension's repeated line, and an exception unwinding three frames.
    "steps": ["s"] * 39,
    "next": ["n"] * 20,
    "until": ["b walk", "c", "unt", "unt", "unt", "unt 23", "n", "n", "b 39", "c", "n", "n", "s", "s", "s",
              "r", "n", "n"],
    "exceptions": ["b 44", "c", "c", "c", "c", "n", "n", "n", "n", "n", "n", "n", "n", "n", "n", "n", "n"],
    "conditions": ["b 22, item > 2", "b risky, n % 2 == 1", "c", "n", "n", "n", "c", "r", "n", "n", "n", "s",
                   "s", "tbreak 45", "c", "n", "n"],
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("script", sorted(HANDWRITTEN))
def test_handwritten_scripts_agree_with_pdb(script: str, backend: str) -> None:
    commands = HANDWRITTEN[script]
    compared = compare("replay_nested.py", commands, backend)
    assert compared >= 10
