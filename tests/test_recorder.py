"""The recorder end to end: RecordedTimeline's random access agrees with the sequential export, and the
recorder's behaviours (record() API, --max-steps, SIGKILL, fork, threads, filters, tool id, aliasing,
module frames, raising reprs)."""

from __future__ import annotations

import ast
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, RunRetrograde

from replay.recorded import RecordedTimeline
from replay.timeline import Step
from tracer.values import decode_text

SAMPLES_DIR = PROJECT_ROOT / "samples"
ENV = {**os.environ, "PYTHONHASHSEED": "0"}
STDIN = {"stdin_stderr.py": "one\n\ntwo\n   \nthree\n"}
TIMEOUT = 30

# A generator resumed from a deeper caller than the one that started it: depth and stack must follow the
# resuming caller (settrace reports the resumed frame one level deeper).
GEN_DEPTH = """\
def gen():
    yield 1
    yield 2
    yield 3


def deeper(it):
    got = next(it)
    return got


it = gen()
a = next(it)
b = deeper(it)
c = next(it)
print(a, b, c)
"""


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def python(args: list[str | Path], cwd: Path, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV if env is None else env,
        timeout=TIMEOUT,
    )


def exported(run_retrograde: RunRetrograde, trace: Path) -> list[dict[str, Any]]:
    done = run_retrograde(["export", trace], cwd=trace.parent, env=ENV)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


# -- RecordedTimeline consistency -------------------------------------------------------------------------


@dataclass
class Recording:
    trace: Path
    export: list[dict[str, Any]]
    real_output: str  # python -u SCRIPT with stderr merged into stdout: the writes in program order
    returncode: int


CONSISTENCY_SAMPLES = [
    "recursion.py",
    "generators.py",
    "exceptions.py",
    "aliasing.py",
    "threads.py",
    "comprehensions.py",
    "async_tasks.py",
    "stdin_stderr.py",
    "sys_exit.py",
    "uncaught.py",
]
CHUNKINGS = {"chunk5": ["--chunk-steps", "5"], "default": []}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Any:
    cache: dict[tuple[str, str], Recording] = {}
    root = tmp_path_factory.mktemp("recordings")

    def get(sample: str, chunking: str) -> Recording:
        key = (sample, chunking)
        if key not in cache:
            if sample == "gen_depth.py":
                script = root / sample
                if not script.exists():
                    script.write_text(GEN_DEPTH)
            else:
                script = SAMPLES_DIR / sample
            trace = root / f"{Path(sample).stem}-{chunking}.rtrace"
            stdin = STDIN.get(sample, "")
            done = run_retrograde(
                ["record", "-o", trace, *CHUNKINGS[chunking], script], cwd=root, input=stdin, env=ENV
            )
            assert trace.exists(), done.stderr
            real = subprocess.run(
                [sys.executable, "-u", str(script)],
                cwd=root,
                input=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=ENV,
                timeout=TIMEOUT,
            )
            assert done.returncode == real.returncode
            cache[key] = Recording(trace, exported(run_retrograde, trace), real.stdout, real.returncode)
        return cache[key]

    return get


def step_record(step: Step, state: dict[str, str]) -> dict[str, Any]:
    return {
        "step": step.index,
        "event": step.event,
        "file": step.file,
        "line": step.line,
        "func": step.func,
        "depth": step.depth,
        "thread": step.thread,
        "locals": state,
        "value": step.value.text if step.value is not None else None,
    }


def sample_indices(n: int, seed: str, cap: int = 600) -> list[int]:
    indices = list(range(n))
    rng = random.Random(seed)
    rng.shuffle(indices)
    return indices[:cap]


# Not long_loop (40,000 steps): too slow to export and walk in a unit test; the 5-step chunkings already
# exercise many keyframes per frame.
CASES = [(s, c) for s in [*CONSISTENCY_SAMPLES, "gen_depth.py"] for c in CHUNKINGS]
CAPS: dict[str, int] = {}


def _case_id(case: tuple[str, str]) -> str:
    return f"{case[0].removesuffix('.py')}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_random_access_matches_sequential_export(recordings: Any, case: tuple[str, str]) -> None:
    rec: Recording = recordings(*case)
    timeline = RecordedTimeline(rec.trace)
    try:
        sequential = [(step, dict(state)) for step, state in timeline.iter_states()]
        assert len(sequential) == len(timeline) == len(rec.export) > 0
        assert timeline.truncated_at is None
        for (step, state), line in zip(sequential, rec.export, strict=True):
            assert {k: decode_text(v)[0] for k, v in state.items()} == line["locals"]
            assert step_record(step, line["locals"]) == line
        # A fresh timeline (empty cache), visited in random order, chunk after chunk out of order.
        fresh = RecordedTimeline(rec.trace)
        for i in sample_indices(len(fresh), str(case), cap=CAPS.get(case[0], 600)):
            step = fresh.step(i)
            assert step == sequential[i][0], f"step({i})"
            values = fresh.locals_at(i)
            assert {k: v.text for k, v in values.items()} == rec.export[i]["locals"], f"locals_at({i})"
            for value in values.values():
                if value.literal:
                    ast.literal_eval(value.text)  # a literal must really be one
        assert list(fresh.steps(0, len(fresh))) == [s for s, _ in sequential]
        fresh.close()
    finally:
        timeline.close()


def expected_stacks(steps: list[Step]) -> Iterator[tuple[Step, list[int]]]:
    """For each step, the frame ids of its thread's call chain, from the events alone."""
    stacks: dict[int, list[int]] = {}
    for step in steps:
        stack = stacks.setdefault(step.thread, [])
        if step.event in ("call", "resume"):
            stack.append(step.frame_id)
        assert stack and stack[-1] == step.frame_id, f"step {step.index} is not in the top frame"
        yield step, list(stack)
        if step.event in ("return", "unwind", "yield"):
            stack.pop()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_stack_at_matches_call_chain(recordings: Any, case: tuple[str, str]) -> None:
    rec: Recording = recordings(*case)
    timeline = RecordedTimeline(rec.trace)
    try:
        steps = list(timeline.steps(0, len(timeline)))
        last_seen: dict[int, int] = {}
        expected: list[list[Step]] = []
        for step, chain in expected_stacks(steps):
            last_seen[step.frame_id] = step.index
            expected.append([steps[last_seen[fid]] for fid in chain])
        for i in sample_indices(len(steps), "stack" + str(case), cap=CAPS.get(case[0], 400)):
            stack = timeline.stack_at(i)
            assert stack[-1] == steps[i]
            assert len(stack) == steps[i].depth + 1, f"stack_at({i}) has {len(stack)} entries"
            assert [s.func for s in stack] == [s.func for s in expected[i]]
            assert stack == expected[i], f"stack_at({i})"
            assert [s.depth for s in stack] == list(range(len(stack)))
            assert {s.thread for s in stack} == {steps[i].thread}
    finally:
        timeline.close()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_output_until_is_a_prefix_of_the_real_output(recordings: Any, case: tuple[str, str]) -> None:
    rec: Recording = recordings(*case)
    timeline = RecordedTimeline(rec.trace)
    try:
        n = len(timeline)
        previous = ""
        for i in [*sorted(sample_indices(n, "out" + str(case), cap=CAPS.get(case[0], 300))), n - 1]:
            out = timeline.output_until(i)
            assert rec.real_output.startswith(out), f"output_until({i})"
            assert out.startswith(previous)
            previous = out
        final = timeline.output_until(n - 1)
        if case[0] == "uncaught.py":
            # Only python's traceback of the uncaught exception comes after the last step.
            assert rec.real_output[len(final) :].startswith("Traceback (most recent call last)")
            assert final
        else:
            assert final == rec.real_output
        assert timeline.output_until(0) == ""
        assert "".join(text for _, _, text in timeline.all_output()).startswith(final)
    finally:
        timeline.close()


def test_output_is_placed_at_its_step(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    script = write(
        tmp_path,
        "prog.py",
        """\
        import sys
        a = 1
        print("first")
        b = 2
        sys.stderr.write("second\\n")
        c = 3
        """,
    )
    trace = tmp_path / "p.rtrace"
    assert run_retrograde(["record", "-o", trace, script], cwd=tmp_path).returncode == 0
    timeline = RecordedTimeline(trace)
    lines = {timeline.step(i).line: i for i in range(len(timeline)) if timeline.step(i).event == "line"}
    assert timeline.output_until(lines[3]) == ""
    assert timeline.output_until(lines[4]) == "first\n"
    assert timeline.output_until(lines[5]) == "first\n"
    assert timeline.output_until(lines[6]) == "first\nsecond\n"
    streams = [stream for _, stream, _ in timeline.all_output()]
    assert streams == [1, 1, 2]  # print writes the text and the newline separately
    timeline.close()


# -- recorder behaviour -----------------------------------------------------------------------------------


def record_program(
    run_retrograde: RunRetrograde, tmp_path: Path, source: str, *options: str, name: str = "prog.py"
) -> tuple[Any, Path, list[dict[str, Any]]]:
    script = write(tmp_path, name, source)
    trace = tmp_path / "prog.rtrace"
    done = run_retrograde(["record", "-o", trace, *options, script], cwd=tmp_path, env=ENV)
    return done, trace, exported(run_retrograde, trace)


API_PROGRAM = """\
import sys

import tracer


def helper(x):
    y = x * 2
    return y


def work(path):
    before = 10
    untouched = [1, 2]
    with tracer.record(path):
        a = helper(before)
        b = a + 1
    after = b * 10
    return after


@tracer.record(sys.argv[2])
def decorated(n):
    total = 0
    for i in range(n):
        total += helper(i)
    return total


print(work(sys.argv[1]))
print(decorated(3))
"""


@pytest.fixture(scope="module")
def api_traces(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Any:
    root = tmp_path_factory.mktemp("api")
    script = write(root, "api.py", API_PROGRAM)
    env = {**ENV, "PYTHONPATH": str(PROJECT_ROOT)}
    done = python([script, root / "cm.rtrace", root / "deco.rtrace"], cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "210\n6\n"
    return exported(run_retrograde, root / "cm.rtrace"), exported(run_retrograde, root / "deco.rtrace")


def test_record_context_manager_records_the_caller(api_traces: Any) -> None:
    steps, _ = api_traces
    assert steps, "nothing recorded"
    work = [s for s in steps if s["func"] == "work"]
    helper = [s for s in steps if s["func"] == "helper"]
    # The with body's lines of the caller, then the with statement's exit: nothing after the block.
    assert [s["line"] for s in work if s["event"] == "line"][:2] == [15, 16]
    assert 18 not in {s["line"] for s in work}
    assert [s["event"] for s in helper] == ["call", "line", "line", "return"]
    assert helper[0]["locals"] == {"x": "10"}
    assert helper[-1]["value"] == "20"
    assert helper[0]["depth"] == work[0]["depth"] + 1
    at_b = next(s for s in work if s["line"] == 16)
    assert at_b["locals"]["a"] == "20"


def test_record_context_manager_has_the_callers_earlier_locals(api_traces: Any) -> None:
    steps, _ = api_traces
    first = steps[0]
    assert first["func"] == "work"
    assert first["locals"]["before"] == "10"
    assert first["locals"]["untouched"] == "[1, 2]"
    assert "path" in first["locals"]
    at_b = next(s for s in steps if s["func"] == "work" and s["line"] == 16)
    assert set(at_b["locals"]) >= {"path", "before", "untouched", "a"}


def test_record_decorator(api_traces: Any) -> None:
    _, steps = api_traces
    assert steps[0]["event"] == "call" and steps[0]["func"] == "decorated"
    assert steps[0]["locals"] == {"n": "3"}
    assert steps[-1]["event"] == "return" and steps[-1]["func"] == "decorated"
    assert steps[-1]["value"] == "6"
    calls = [s["locals"]["x"] for s in steps if s["func"] == "helper" and s["event"] == "call"]
    assert calls == ["0", "1", "2"]
    assert {s["func"] for s in steps} == {"decorated", "helper"}  # nothing of the module after the call


def test_record_api_nested_use_is_refused(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "nested.py",
        """\
        import tracer
        from tracer.monitor import RecorderError

        with tracer.record("outer.rtrace"):
            try:
                with tracer.record("inner.rtrace"):
                    pass
            except RecorderError as exc:
                print("refused:", exc)
        x = 1
        """,
    )
    env = {**ENV, "PYTHONPATH": str(PROJECT_ROOT)}
    done = python([script], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: ")
    assert "already in use" in done.stdout
    assert (tmp_path / "outer.rtrace").exists()


def test_max_steps(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    source = """\
    total = 0
    for i in range(200):
        total += i
        print(i, total)
    print("end", total)
    """
    script = write(tmp_path, "prog.py", source)
    plain = python([script], cwd=tmp_path)
    trace = tmp_path / "m.rtrace"
    done = run_retrograde(["record", "--max-steps", "25", "-o", trace, script], cwd=tmp_path, env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert done.stdout.endswith("end 19900\n")
    info = json.loads(run_retrograde(["info", "--json", trace], cwd=tmp_path).stdout)
    assert info["steps"] == 25
    assert info["truncated"] is True
    steps = exported(run_retrograde, trace)
    assert [s["step"] for s in steps] == list(range(25))
    text = run_retrograde(["info", trace], cwd=tmp_path).stdout
    assert "max-steps" in text


LOOP_PROGRAM = """\
import time

count = 0
while True:
    count += 1
    print("tick", count, flush=True)
    time.sleep(0.005)
"""


def test_sigkill_leaves_a_readable_truncated_trace(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    from conftest import retrograde_command

    script = write(tmp_path, "loop.py", LOOP_PROGRAM)
    trace = tmp_path / "loop.rtrace"
    command, extra = retrograde_command()
    proc = subprocess.Popen(
        [*command, "record", "-o", str(trace), str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**ENV, **extra},
    )
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        ticks = 0
        # Let it run past a few half-second flushes, then kill it without warning.
        while time.monotonic() - started < 1.5 or ticks < 20:
            line = proc.stdout.readline()
            assert line.startswith("tick"), line
            ticks += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    info = run_retrograde(["info", trace], cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    status = next(line for line in info.stdout.splitlines() if line.startswith("status:"))
    k = int(status.split("truncated at step ")[1].split()[0])
    assert k > 0
    as_json = json.loads(run_retrograde(["info", "--json", trace], cwd=tmp_path).stdout)
    assert as_json["truncated"] is True and as_json["steps"] == k
    done = run_retrograde(["export", trace], cwd=tmp_path)
    assert done.returncode == 0
    assert f"truncated at step {k}" in done.stderr
    steps = [json.loads(line) for line in done.stdout.splitlines()]
    assert [s["step"] for s in steps] == list(range(k))
    counts = [int(s["locals"]["count"]) for s in steps if "count" in s["locals"]]
    assert counts == sorted(counts) and counts[-1] >= 1


FORK_PROGRAM = """\
import os
import sys


def child_work(n):
    total = sum(range(n))
    print("child", total, flush=True)
    os._exit(0)


values = [1, 2, 3]
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    child_work(10)
_, status = os.waitpid(pid, 0)
values.append(os.waitstatus_to_exitcode(status))
print("parent", values)
"""


def test_fork_leaves_a_valid_trace_from_the_parent(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    done, trace, steps = record_program(run_retrograde, tmp_path, FORK_PROGRAM)
    assert done.returncode == 0, done.stderr
    assert "child 45\n" in done.stdout and "parent [1, 2, 3, 0]\n" in done.stdout
    info = json.loads(run_retrograde(["info", "--json", trace], cwd=tmp_path).stdout)
    assert info["truncated"] is False
    assert info["exit"] == {"kind": "exit", "code": 0}
    assert steps[-1]["event"] == "return" and steps[-1]["func"] == "<module>"
    assert steps[-1]["locals"]["values"] == "[1, 2, 3, 0]"
    # The child's steps belong to another process: only the parent's frames are in the trace.
    assert "child_work" not in {s["func"] for s in steps}


def test_fork_program_stderr_is_unchanged(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    done, _trace, _steps = record_program(run_retrograde, tmp_path, FORK_PROGRAM)
    plain = python([tmp_path / "prog.py"], cwd=tmp_path)
    assert (done.returncode, done.stderr) == (plain.returncode, plain.stderr)


THREADS_PROGRAM = """\
import threading

results = []


def worker(n):
    acc = 0
    for i in range(n):
        acc += i
    results.append(acc)


def main():
    for n in (3, 4):
        t = threading.Thread(target=worker, args=(n,))
        t.start()
        t.join()
    return results


print(main())
"""


def test_threads_are_numbered_in_order(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    done, _trace, steps = record_program(run_retrograde, tmp_path, THREADS_PROGRAM)
    assert done.stdout == "[3, 6]\n"
    by_func: dict[str, set[int]] = {}
    for s in steps:
        by_func.setdefault(s["func"], set()).add(s["thread"])
    assert by_func["<module>"] == {0} and by_func["main"] == {0}
    workers = [s for s in steps if s["func"] == "worker"]
    assert workers[0]["thread"] == 1  # the first thread after the main one
    assert 0 not in by_func["worker"]
    assert all(s["depth"] == 0 for s in workers)  # threading's own frames are not traced
    assert [s["locals"]["n"] for s in workers if s["event"] == "call"] == ["3", "4"]


def test_each_thread_gets_its_own_number(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    _done, _trace, steps = record_program(run_retrograde, tmp_path, THREADS_PROGRAM)
    workers = [s for s in steps if s["func"] == "worker"]
    calls = [s["thread"] for s in workers if s["event"] == "call"]
    assert calls == [1, 2]
    first_of_2 = next(i for i, s in enumerate(workers) if s["thread"] == 2)
    assert {s["thread"] for s in workers[:first_of_2]} == {1}
    assert {s["thread"] for s in workers[first_of_2:]} == {2}


def test_include_and_exclude_globs(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    project = tmp_path / "proj"
    write(project, "pkg/__init__.py", "")
    write(project, "pkg/helper.py", "def double(x):\n    y = x * 2\n    return y\n")
    write(tmp_path / "other", "outside.py", "def triple(x):\n    z = x * 3\n    return z\n")
    script = write(
        project,
        "main.py",
        """\
        import sys

        sys.path.insert(0, sys.argv[1])
        from pkg.helper import double
        from outside import triple

        result = double(2) + triple(3)
        print(result)
        """,
    )
    other = str(tmp_path / "other")

    def funcs(*options: str) -> set[tuple[str, str]]:
        trace = tmp_path / "inc.rtrace"
        done = run_retrograde(["record", "-o", trace, *options, script, other], cwd=tmp_path)
        assert (done.returncode, done.stdout) == (0, "13\n"), done.stderr
        return {(os.path.relpath(s["file"], tmp_path), s["func"]) for s in exported(run_retrograde, trace)}

    default = funcs()
    assert ("proj/pkg/helper.py", "double") in default
    assert ("proj/main.py", "<module>") in default
    assert not any(f.startswith("other/") for f, _ in default)  # outside the script's tree
    excluded = funcs("--exclude", "*/pkg/helper.py")
    assert not any(f == "proj/pkg/helper.py" for f, _ in excluded)
    assert ("proj/main.py", "<module>") in excluded
    included = funcs("--include", "*/other/*")
    assert ("other/outside.py", "triple") in included
    assert ("proj/pkg/helper.py", "double") in included
    both = funcs("--include", "*/other/*", "--exclude", "*/pkg/*")
    assert ("other/outside.py", "triple") in both
    assert not any(f.startswith("proj/pkg/") for f, _ in both)


def test_stdlib_is_not_traced(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    _done, _trace, steps = record_program(
        run_retrograde, tmp_path, "import json\nimport textwrap\nx = json.dumps(textwrap.wrap('a b c'))\n"
    )
    assert {s["file"] for s in steps} == {str(tmp_path / "prog.py")}
    assert steps[-1]["locals"]["x"] == repr(json.dumps(["a b c"]))


def test_tool_id_in_use_is_a_clear_recorder_error(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        "taken.py",
        """\
        import sys

        sys.monitoring.use_tool_id(4, "other")
        import tracer
        from tracer.monitor import RecorderError

        try:
            with tracer.record("x.rtrace"):
                pass
        except RecorderError as exc:
            print("error:", exc)
        """,
    )
    done = python([script], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(PROJECT_ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("error: ")
    assert "tool id 4 is already in use by 'other'" in done.stdout
    assert sys.monitoring.get_tool(4) is None  # (this process is untouched)


def test_tool_id_in_use_from_the_cli(tmp_path: Path) -> None:
    script = write(tmp_path, "prog.py", "print('ran')\n")
    wrapper = write(
        tmp_path,
        "wrap.py",
        f"""\
        import sys

        sys.monitoring.use_tool_id(4, "other")
        from tracer.cli import main

        sys.exit(main(["record", "-o", "x.rtrace", {str(script)!r}]))
        """,
    )
    done = python([wrapper], cwd=tmp_path, env={**ENV, "PYTHONPATH": str(PROJECT_ROOT)})
    assert done.returncode != 0
    assert done.stderr.startswith("retrograde: ") and done.stderr.count("\n") == 1
    assert "already in use" in done.stderr and "Traceback" not in done.stderr


ALIAS_PROGRAM = """\
import bisect
import heapq
import random


def shuffle_it(lst):
    alias = lst
    random.Random(0).shuffle(alias)


def main():
    data = list(range(8))
    shuffle_it(data)
    marker = 1
    ordered = [1, 5, 9]
    view = ordered
    bisect.insort(view, 4)
    marker = 2
    heap = []
    h = heap
    heapq.heappush(h, 7)
    heapq.heappush(h, 3)
    marker = 3
    big = list(range(5000))
    random.Random(1).shuffle(big)
    marker = 4
    d = {}
    d.setdefault("k", []).append(1)
    marker = 5
    nested = [[0]] * 2
    nested[0].append(1)
    marker = 6
    return data


main()
"""


def test_mutation_in_untraced_callee_shows_at_the_next_step(
    tmp_path: Path, run_retrograde: RunRetrograde
) -> None:
    import bisect
    import heapq

    _done, _trace, steps = record_program(run_retrograde, tmp_path, ALIAS_PROGRAM)
    main = [s for s in steps if s["func"] == "main" and s["event"] == "line"]
    at = {s["line"]: s["locals"] for s in main}
    shuffled = list(range(8))
    random.Random(0).shuffle(shuffled)
    assert at[13]["data"] == repr(list(range(8)))
    assert at[14]["data"] == repr(shuffled)  # shuffled inside an untraced stdlib call of a traced callee
    ordered = [1, 5, 9]
    bisect.insort(ordered, 4)
    assert at[18]["ordered"] == at[18]["view"] == repr(ordered)
    heap: list[int] = []
    heapq.heappush(heap, 7)
    assert at[22]["heap"] == at[22]["h"] == repr(heap)
    heapq.heappush(heap, 3)
    assert at[23]["heap"] == repr(heap)
    big = list(range(5000))
    random.Random(1).shuffle(big)
    assert at[26]["big"] == repr(big)[:1000] + "..."
    assert at[28]["d"] == "{}" and at[29]["d"] == "{'k': [1]}"
    assert at[31]["nested"] == "[[0], [0]]" and at[32]["nested"] == "[[0, 1], [0, 1]]"


def test_module_frame_has_no_dunders_or_modules(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    source = """\
    import os
    import sys as system
    from os import path

    __all__ = ["x"]
    x = 1
    _private = 2
    mod_alias = os
    fn = path.join
    __special_list__ = [1]
    print(x)
    """
    _done, _trace, steps = record_program(run_retrograde, tmp_path, source)
    final = steps[-1]
    assert final["func"] == "<module>" and final["event"] == "return"
    assert set(final["locals"]) == {"x", "_private", "fn"}
    for s in steps:
        assert not any(name.startswith("__") and name.endswith("__") for name in s["locals"]), s


def test_module_frame_has_no_scalar_dunders(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    source = """\
    __version__ = "1.0"
    __count__ = 3
    x = 1
    print(x)
    """
    _done, _trace, steps = record_program(run_retrograde, tmp_path, source)
    assert set(steps[-1]["locals"]) == {"x"}


def test_function_frames_keep_dunder_like_and_module_locals(
    tmp_path: Path, run_retrograde: RunRetrograde
) -> None:
    # Only module frames filter names: a function's local module or __x__ name is its real state.
    source = """\
    def f():
        import os
        __odd__ = 5
        return os.sep


    f()
    """
    _done, _trace, steps = record_program(run_retrograde, tmp_path, source)
    ret = next(s for s in steps if s["func"] == "f" and s["event"] == "return")
    assert ret["locals"]["__odd__"] == "5"
    assert ret["locals"]["os"].startswith("<module 'os'")


RAISING_REPR_PROGRAM = """\
import sys


class Bad:
    calls = 0

    def __repr__(self):
        raise RuntimeError("no repr")


class Exiting:
    def __repr__(self):
        raise SystemExit(9)


def use(obj):
    local = obj
    return local


b = Bad()
e = Exiting()
use(b)
use(e)
try:
    raise KeyError("original")
except KeyError:
    inside = Bad()
    try:
        raise ValueError("second")
    except ValueError as exc:
        print("context:", type(exc.__context__).__name__, exc.__context__)
print("exc_info after:", sys.exc_info())
print("done", type(b).__name__)
"""


def test_raising_repr_does_not_disturb_the_program(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    done, _trace, steps = record_program(run_retrograde, tmp_path, RAISING_REPR_PROGRAM)
    plain = python([tmp_path / "prog.py"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert "context: KeyError 'original'" in done.stdout
    final = steps[-1]["locals"]
    assert final["b"] == "<unrepresentable Bad: RuntimeError>"
    assert final["e"] == "<unrepresentable Exiting: SystemExit>"
    returns = [s["value"] for s in steps if s["func"] == "use" and s["event"] == "return"]
    assert returns == ["<unrepresentable Bad: RuntimeError>", "<unrepresentable Exiting: SystemExit>"]


def test_program_sees_normal_sys_state(tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    source = """\
    import sys
    import threading

    print(sys.argv[1:], __name__, sys.gettrace(), threading.active_count())
    print(type(sys.stdout).__name__ in ("TextIOWrapper", "OutputTee"))
    sys.exit(5)
    """
    script = write(tmp_path, "prog.py", source)
    done = run_retrograde(["record", "-o", tmp_path / "t.rtrace", script, "a", "b c"], cwd=tmp_path)
    plain = python([script, "a", "b c"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr) == (
        5,
        "['a', 'b c'] __main__ None 1\nTrue\n",
        "",
    )


SPIN_PROGRAM = """\
def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


def outer():
    return spin(1000)


outer()
"""


def test_stack_at_far_from_the_parents_last_step_reads_few_chunks(
    tmp_path: Path, run_retrograde: RunRetrograde
) -> None:
    """A callee that runs for hundreds of chunks: stack_at must not decode every chunk back to the caller's
    last step (it would cost O(steps) per stack view). Counted in chunk reads, not time."""
    _done, trace, steps = record_program(run_retrograde, tmp_path, SPIN_PROGRAM, "--chunk-steps", "5")
    timeline = RecordedTimeline(trace)
    reads = 0
    read_chunk = timeline.reader.read_chunk

    def counting(number: int) -> Any:
        nonlocal reads
        reads += 1
        return read_chunk(number)

    timeline.reader.read_chunk = counting  # type: ignore[method-assign]
    index = len(timeline) - 5
    stack = timeline.stack_at(index)
    assert [s.func for s in stack] == ["<module>", "outer", "spin"]
    assert [s.line for s in stack[:2]] == [12, 9]
    assert stack[1].index == max(s["step"] for s in steps[:index] if s["func"] == "outer")
    assert len(timeline.reader.chunks) > 300
    assert reads <= 10
    timeline.close()
