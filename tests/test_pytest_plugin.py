"""`pytest --retrograde`: in a small project run by a real pytest in a subprocess, the failing test's trace is
kept, named in the summary and replays to the failing assert; results are exactly pytest's own."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, retrograde_command

from retrograde.pytest_plugin import trace_name

CALC = '''\
def average(values):
    total = 0
    for value in values:
        total += value
    return total / len(values)
'''

TESTS = '''\
from app.calc import average


def test_passes():
    assert average([2, 4]) == 3


def test_fails():
    data = [1, 2, 4]
    result = average(data)
    expected = 2
    assert result == expected
'''
FAILING_ASSERT_LINE = TESTS.splitlines().index("    assert result == expected") + 1
FAILING_TRACE = "tests__test_calc.py__test_fails.rtrace"
PASSING_TRACE = "tests__test_calc.py__test_passes.rtrace"
COUNTS = re.compile(r"=* ?(\d+ \w+(?:, \d+ \w+)*) in [\d.]+s")


def make_project(root: Path, tests: str = TESTS, extra: dict[str, str] | None = None) -> Path:
    """A project: app/calc.py (the code under test) and tests/test_calc.py, plus extra files by path."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "calc.py").write_text(CALC)
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(tests)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    for name, text in (extra or {}).items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def plugin_entry_point() -> bool:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    return any(ep.value == "retrograde.pytest_plugin" for ep in entry_points)


def run_pytest(root: Path, *args: str, autoload: bool = False) -> subprocess.CompletedProcess[str]:
    """Run pytest on the project in a fresh interpreter; other installed plugins stay out unless autoload."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_", "XDIST_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    plugin: list[str] = []
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugin = ["-p", "retrograde.pytest_plugin"]
    elif not plugin_entry_point():
        plugin = ["-p", "retrograde.pytest_plugin"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin, *args],
        cwd=root, capture_output=True, text=True, env=env, timeout=300,
    )


def traces(root: Path, directory: str = ".retrograde") -> list[str]:
    folder = root / directory
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def counts(done: subprocess.CompletedProcess[str]) -> str:
    """pytest's final line without the time: "1 failed, 1 passed"."""
    found = COUNTS.findall(done.stdout)
    assert found, done.stdout
    return found[-1]


def replay(trace: Path, commands: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command, extra_env = retrograde_command()
    return subprocess.run(
        [*command, "replay", str(trace)], input=commands, cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **extra_env}, timeout=120,
    )


def info(trace: Path, cwd: Path) -> dict[str, object]:
    command, extra_env = retrograde_command()
    done = subprocess.run([*command, "info", "--json", str(trace)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **extra_env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = make_project(tmp_path_factory.mktemp("proj"))
    return root, run_pytest(root, "--retrograde")


def test_exit_code_and_outcomes_are_pytests(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    _, done = failing_run
    plain = run_pytest(make_project(tmp_path / "plain"))
    assert plain.returncode == 1, plain.stdout
    assert done.returncode == plain.returncode, done.stdout + done.stderr
    assert counts(done) == counts(plain) == "1 failed, 1 passed"
    assert not (tmp_path / "plain" / ".retrograde").exists()  # without --retrograde nothing is written


def test_only_the_failing_test_is_kept_and_named_in_the_summary(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, done = failing_run
    assert traces(root) == [FAILING_TRACE]
    summary = done.stdout.split("retrograde traces", 1)[1]
    assert "tests/test_calc.py::test_fails" in summary
    assert "test_passes" not in summary
    assert f"retrograde replay .retrograde/{FAILING_TRACE}" in summary
    assert f"retrograde tui .retrograde/{FAILING_TRACE}" in summary
    assert not [p for p in (root / ".retrograde").iterdir() if p.name.endswith(".part")]


def test_trace_starts_at_the_test_and_records_the_code_under_test(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, _ = failing_run
    summary = info(root / ".retrograde" / FAILING_TRACE, root)
    assert summary["functions"] == ["average", "test_fails"]  # app/calc.py, no pytest or library frames
    assert summary["files"] == [str(root / "app" / "calc.py"), str(root / "tests" / "test_calc.py")]
    assert summary["exit"] == {"kind": "exception", "type": "AssertionError",
                               "message": "assert 2.3333333333333335 == 2"}


def test_replay_reaches_the_failing_assert_with_the_tests_locals(
    failing_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, _ = failing_run
    location = f"{root / 'tests' / 'test_calc.py'}({FAILING_ASSERT_LINE})test_fails()"
    for how in ("c", "last"):  # to the end (or the crash), or straight to the last step
        done = replay(root / ".retrograde" / FAILING_TRACE, f"{how}\nw\np data\np result\np expected\n", root)
        assert done.returncode == 0, done.stderr
        after = done.stdout.split(location, 1)
        assert len(after) == 2, done.stdout
        values = [line.removeprefix("(retro) ") for line in after[1].splitlines()]
        assert "[1, 2, 4]" in values and "2.3333333333333335" in values and "2" in values, done.stdout
    # Backwards from the assert into the code under test (another module of the project).
    calc = root / "app" / "calc.py"
    done = replay(root / ".retrograde" / FAILING_TRACE, f"last\nb {calc}:5\nrc\np total\np values\n", root)
    after = done.stdout.split(f"{calc}(5)average()", 1)
    assert len(after) == 2, done.stdout
    lines = after[1].splitlines()  # the rest of the location line, the source line, then the values
    assert lines[1] == "-> return total / len(values)", done.stdout
    assert [line.removeprefix("(retro) ") for line in lines[2:4]] == ["7", "[1, 2, 4]"], done.stdout


def test_all_keeps_every_trace(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    done = run_pytest(root, "--retrograde=all", "tests")
    assert done.returncode == 1
    assert traces(root) == [FAILING_TRACE, PASSING_TRACE]
    assert info(root / ".retrograde" / PASSING_TRACE, root)["exit"] == {"kind": "exit", "code": 0}
    summary = done.stdout.split("retrograde traces", 1)[1]
    assert "1 trace of passing tests in .retrograde" in summary
    # A later run where the test passes removes its stale trace; other tests' traces are left alone.
    (root / "tests" / "test_calc.py").write_text(TESTS.replace("expected = 2", "expected = 7 / 3"))
    again = run_pytest(root, "--retrograde", "tests/test_calc.py::test_fails")
    assert again.returncode == 0, again.stdout
    assert traces(root) == [PASSING_TRACE]


def test_results_are_unchanged_by_recording(tmp_path: Path) -> None:
    suite = '''\
        import sys
        import pytest
        from app.calc import average

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture fails")

        def test_prints(capsys):
            print("hello", average([1, 2]))
            assert capsys.readouterr().out == "hello 1.5\\n"

        def test_prints_and_fails():
            print("shown on failure")
            sys.stderr.write("err text\\n")
            assert average([1]) == 2

        def test_raises():
            with pytest.raises(ZeroDivisionError):
                average([])

        def test_setup_error(broken):
            pass

        @pytest.mark.xfail(strict=True)
        def test_xfail():
            assert average([1]) == 5

        @pytest.mark.skip(reason="never")
        def test_skip():
            pass

        def test_unexpected_exception():
            {}["missing"]
    '''
    outcomes = []
    for flag in ((), ("--retrograde",)):
        root = make_project(tmp_path / ("on" if flag else "off"), tests=textwrap.dedent(suite))
        done = run_pytest(root, *flag, "-rA", "--tb=short", f"--junitxml={root / 'out.xml'}")
        report = re.sub(r" in [\d.]+s", "", done.stdout.split("short test summary info", 1)[1])
        outcomes.append((done.returncode, report, _junit_cases(root / "out.xml")))
        assert "Captured stdout call" in done.stdout and "shown on failure" in done.stdout
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1
    # Kept: the failures and errors; xfail and skip are not failures.
    assert traces(tmp_path / "on") == [
        "tests__test_calc.py__test_prints_and_fails.rtrace",
        "tests__test_calc.py__test_unexpected_exception.rtrace",
    ]


def _junit_cases(path: Path) -> list[tuple[str, str]]:
    """(test name, outcome element) per test case of a junit XML report."""
    import xml.etree.ElementTree as ET

    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = sorted(child.tag for child in case if child.tag in ("failure", "error", "skipped"))
        cases.append((case.get("name", ""), ",".join(kinds) or "passed"))
    return cases


def test_fixtures_are_recorded_only_on_request(tmp_path: Path) -> None:
    conftest = '''\
        import pytest

        @pytest.fixture
        def numbers():
            base = [5, 6]
            yield base + [7]
            base.clear()
    '''
    tests = "from app.calc import average\n\ndef test_fix(numbers):\n    assert average(numbers) == 7\n"
    name = "tests__test_calc.py__test_fix.rtrace"
    root = make_project(tmp_path, tests=tests, extra={"tests/conftest.py": conftest})
    assert run_pytest(root, "--retrograde").returncode == 1
    assert info(root / ".retrograde" / name, root)["functions"] == ["average", "test_fix"]
    assert run_pytest(root, "--retrograde", "--retrograde-fixtures").returncode == 1
    summary = info(root / ".retrograde" / name, root)
    assert summary["functions"] == ["average", "numbers", "test_fix"]
    exit_status = summary["exit"]
    assert isinstance(exit_status, dict)  # the test's failure, not the teardown's clean exit
    assert (exit_status["kind"], exit_status["type"]) == ("exception", "AssertionError")
    assert exit_status["message"].startswith("assert 6.0 == 7")


def test_recorder_failure_never_fails_the_test(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    (root / "blocker").write_text("a file where the trace directory should go")
    done = run_pytest(root, "--retrograde", "--retrograde-dir", "blocker/traces")
    assert done.returncode == 1 and counts(done) == "1 failed, 1 passed", done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("retrograde: ")]
    assert len(errors) == 1, done.stdout  # the same problem for both tests: one line
    assert "could not start recording" in errors[0] and "and 1 more test:" in errors[0], done.stdout
    assert not (root / ".retrograde").exists()


def test_directory_option_is_relative_to_the_invocation_dir(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    done = run_pytest(root / "tests", "--retrograde", "--retrograde-dir", "out", ".")
    assert done.returncode == 1
    assert traces(root / "tests", "out") == [FAILING_TRACE]
    assert f"retrograde replay out/{FAILING_TRACE}" in done.stdout


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_xdist_workers_record_their_own_tests(tmp_path: Path) -> None:
    more = "from app.calc import average\n\n" + "".join(
        f"def test_{i}():\n    assert average([{i}, {i}]) == {i if i % 2 else -1}\n\n" for i in range(1, 7)
    )
    serial = make_project(tmp_path / "serial", extra={"tests/test_more.py": more})
    parallel = make_project(tmp_path / "parallel", extra={"tests/test_more.py": more})
    one = run_pytest(serial, "--retrograde", "tests")
    two = run_pytest(parallel, "-p", "xdist", "-n", "2", "--retrograde", "tests")
    assert re.search(r"created: 2/2 workers|2 workers \[", two.stdout), two.stdout
    assert one.returncode == two.returncode == 1
    assert traces(serial) == traces(parallel) == sorted(
        [FAILING_TRACE, *(f"tests__test_more.py__test_{i}.rtrace" for i in (2, 4, 6))]
    )
    summary = two.stdout.split("retrograde traces", 1)[1]
    for name in traces(parallel):
        assert f"retrograde replay .retrograde/{name}" in summary
    assert info(parallel / ".retrograde" / "tests__test_more.py__test_4.rtrace", parallel)["functions"] == [
        "average", "test_4"
    ]


def test_registered_by_entry_point_and_light_without_the_option(tmp_path: Path) -> None:
    if not plugin_entry_point():
        pytest.skip("Retrograde is not installed (no pytest11 entry point)")
    root = make_project(tmp_path)
    help_text = run_pytest(root, "--help", autoload=True).stdout
    assert "--retrograde=all" in help_text and "--retrograde-fixtures" in help_text
    # Loading the plugin imports none of the recorder: it costs nothing when --retrograde is not given.
    probe = ("import sys, retrograde.pytest_plugin; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tracer', 'replay', 'msgpack')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_x.py::test_name", "tests__test_x.py__test_name.rtrace"),
        ("tests/test_x.py::TestA::test_b[1-a]", "tests__test_x.py__TestA__test_b[1-a].rtrace"),
        ("test_x.py::test_y[x y]", None),
        ("test_x.py::test_y[a/b]", None),
        ("test_x.py::test__y", None),
    ],
)
def test_trace_names(nodeid: str, expected: str | None) -> None:
    name = trace_name(nodeid)
    if expected is not None:
        assert name == expected
    else:  # lossy: a hash of the node id keeps it apart from the ids that read the same
        assert re.fullmatch(r"[A-Za-z0-9._\-\[\]]+-[0-9a-f]{10}\.rtrace", name), name


def test_trace_names_are_unique_and_bounded() -> None:
    ids = ["t.py::f[a/b]", "t.py::f[a_b]", "t.py::f[a b]", "t/py::f[a_b]", "t.py/f[a_b]", "t.py::f[a__b]",
           "t.py::f[é]", "t.py::f[e]", "t.py::f[" + "x" * 300 + "]", "t.py::f[" + "x" * 301 + "]", ".t.py::f"]
    names = [trace_name(i) for i in ids]
    assert len(set(names)) == len(ids), names
    assert all(len(n.encode()) <= 200 and "/" not in n and not n.startswith(".") for n in names)


def test_an_interrupted_test_keeps_its_trace(tmp_path: Path) -> None:
    tests = TESTS + "\n\ndef test_interrupted():\n    count = 41\n    raise KeyboardInterrupt\n"
    root = make_project(tmp_path, tests=tests)
    done = run_pytest(root, "--retrograde")
    assert done.returncode == run_pytest(make_project(tmp_path / "plain", tests=tests)).returncode == 2
    name = "tests__test_calc.py__test_interrupted.rtrace"
    assert traces(root) == [FAILING_TRACE, name]
    listed = f"INTERRUPTED tests/test_calc.py::test_interrupted\n    retrograde replay .retrograde/{name}"
    assert listed in done.stdout, done.stdout
    replayed = replay(root / ".retrograde" / name, "last\np count\n", root)
    assert replayed.stdout.rstrip().endswith("(retro) 41\n(retro)"), replayed.stdout
