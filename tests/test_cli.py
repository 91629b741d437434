"""The `retrograde` command line: bad input gives one clear line and a non-zero exit, never a traceback;
`record -m` behaves like `python -m`; `info --json` and `export` have the documented shape."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_ROOT, RunRetrograde, retrograde_command

ENV = {**os.environ, "PYTHONHASHSEED": "0"}
SAMPLE = PROJECT_ROOT / "samples" / "recursion.py"
EXPORT_KEYS = {"step", "event", "file", "line", "func", "depth", "thread", "locals", "value"}
EVENTS = {"call", "line", "return", "exception", "unwind", "yield", "resume", "handled"}


def assert_one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("retrograde: ")
    assert len(lines[0]) > len("retrograde: ") + 5


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Path:
    root = tmp_path_factory.mktemp("cli")
    path = root / "recursion.rtrace"
    done = run_retrograde(["record", "-o", path, SAMPLE], cwd=root, env=ENV)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    empty = root / "empty.rtrace"
    empty.write_bytes(b"")
    corrupt = root / "corrupt.rtrace"
    corrupt.write_bytes(b'{"steps": [1, 2, 3]}\n')
    magic_only = root / "magic.rtrace"
    magic_only.write_bytes(b"RTGTRACE\xdd\x80\x00\x00\x00")
    missing = root / "nope.rtrace"
    return {"empty": empty, "corrupt": corrupt, "hostile": magic_only, "missing": missing, "dir": root}


# -- bad input --------------------------------------------------------------------------------------------


def run_main(args: list[Any], cwd: Path, capsys: Any, monkeypatch: Any) -> subprocess.CompletedProcess[str]:
    """retrograde.cli.main in this process (no interpreter start-up), as a CompletedProcess."""
    from retrograde import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.mark.parametrize("command", ["info", "export", "replay", "info --json"])
@pytest.mark.parametrize("kind", ["empty", "corrupt", "hostile", "missing", "dir"])
def test_bad_trace_files(
    capsys: Any, monkeypatch: Any, bad_files: dict[str, Path], command: str, kind: str
) -> None:
    done = run_main([*command.split(), bad_files[kind]], bad_files["dir"], capsys, monkeypatch)
    assert_one_line_error(done)
    assert done.stdout == ""
    if kind == "missing":
        assert "no such" in done.stderr
    if kind == "empty":
        assert "empty" in done.stderr


@pytest.mark.parametrize("kind", ["empty", "corrupt"])
def test_bad_trace_file_from_the_real_command(
    run_retrograde: RunRetrograde, bad_files: dict[str, Path], kind: str
) -> None:
    done = run_retrograde(["info", bad_files[kind]], cwd=bad_files["dir"])
    assert_one_line_error(done)
    assert done.returncode == 1


def test_missing_script(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    done = run_retrograde(["record", "nope.py"], cwd=tmp_path)
    assert_one_line_error(done)
    assert "nope.py" in done.stderr
    assert done.returncode == 2  # like `python nope.py`
    assert not (tmp_path / "nope.rtrace").exists()


def test_directory_as_script(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    (tmp_path / "pkgdir").mkdir()
    done = run_retrograde(["record", "pkgdir"], cwd=tmp_path)
    assert_one_line_error(done)
    assert done.returncode == 1  # like `python pkgdir`
    assert "can't find '__main__' module in" in done.stderr


# -- a script that cannot load fails as under python ----------------------------------------------------

# What python must refuse (or accept) before running a line: compared with python itself, not with
# remembered messages, so the test holds for every Python version the project supports.
LOAD_CASES: dict[str, bytes | None] = {
    "non_utf8.py": b'x = "\xff"\nprint(x)\n',
    "non_utf8_late.py": b"print(1)\nprint(2)\n# caf\xe9\nprint(3)\n",
    "null_byte.py": b"print(1)\nx = 2\x00\nprint(x)\n",
    "binary.py": bytes(range(256)) * 4,
    "bom.py": b"\xef\xbb\xbfprint('bom', 1 + 1)\n",
    "latin1.py": b"# coding: latin-1\nprint('caf\xe9', len('caf\xe9'))\n",
    "latin1_second_line.py": b"#!/usr/bin/env python\n# -*- coding: iso-8859-1 -*-\nprint('\xe9')\n",
    "unknown_coding.py": b"# coding: no-such-codec\nprint(1)\n",
    "undecodable_for_its_coding.py": b"# coding: ascii\nprint('\xe9')\n",
    "bom_and_latin1.py": b"\xef\xbb\xbf# coding: latin-1\nprint(1)\n",
    "syntax_error.py": b"def f(:\n    pass\n",
    "declared_utf8_bad_literal.py": b"# coding: utf-8\nx = '\xff'\n",
    "declared_utf8_bad_comment.py": b"# coding: utf-8\n# caf\xe9\nprint(1)\n",
    "utf16_declared.py": b"# coding: utf-16\nprint(1)\n",
    "cookie_after_code.py": b"x = 1\n# coding: latin-1\nprint('\xe9')\n",
    "cp1252.py": b"# -*- coding: cp1252 -*-\nprint('\x80')\n",
    "a_directory": None,
    "missing.py": None,
}


def _tail(stderr: str) -> str:
    """The last line of stderr without the program's name (python: its path; Retrograde: retrograde)."""
    lines = stderr.splitlines()
    last = lines[-1] if lines else ""
    for prefix in (f"{sys.executable}: ", "retrograde: "):
        last = last.removeprefix(prefix)
    return last


@pytest.mark.parametrize("name", sorted(LOAD_CASES))
def test_a_script_that_cannot_load_fails_as_under_python(
    run_retrograde: RunRetrograde, tmp_path: Path, name: str
) -> None:
    content = LOAD_CASES[name]
    if content is not None:
        (tmp_path / name).write_bytes(content)
    elif name == "a_directory":
        (tmp_path / name).mkdir()
    plain = subprocess.run(
        [sys.executable, name], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=30
    )
    done = run_retrograde(["record", "-o", tmp_path / "out.rtrace", name], cwd=tmp_path, env=ENV)
    assert "tracer/" not in done.stderr and "Retrograde" not in done.stderr  # none of our frames
    assert (done.returncode, done.stdout, _tail(done.stderr)) == (
        plain.returncode, plain.stdout, _tail(plain.stderr)
    )
    if plain.returncode == 0:
        assert done.stderr == plain.stderr
        assert (tmp_path / "out.rtrace").exists()
    else:
        assert plain.stderr.strip() and done.stderr.strip()


def test_a_directory_with_main_runs_as_under_python(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text(
        "import sys\nfrom helper import twice\nprint(sys.argv, twice(21), __name__)\n"
    )
    (app / "helper.py").write_text("def twice(n):\n    return n * 2\n")
    plain = run_python(["app", "-x", "y"], cwd=tmp_path)
    done = run_retrograde(["record", "-o", tmp_path / "app.rtrace", "app", "-x", "y"], cwd=tmp_path, env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (0, plain.stdout, plain.stderr)
    assert plain.stdout == "['app', '-x', 'y'] 42 __main__\n"
    export = run_retrograde(["export", tmp_path / "app.rtrace"], cwd=tmp_path)
    funcs = {json.loads(line)["func"] for line in export.stdout.splitlines()}
    assert "twice" in funcs


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["record", "--max-steps", "0", "prog.py"],
        ["record", "--max-steps", "-3", "prog.py"],
        ["record", "--max-steps", "x", "prog.py"],
        ["record"],
        ["record", "-m"],
        ["info"],
        ["export"],
        ["export", "--format", "csv", "x.rtrace"],
        ["info", "--bogus", "x.rtrace"],
        ["record", "-m", "no_such_module_here"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_arguments(capsys: Any, monkeypatch: Any, tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    done = run_main(args, tmp_path, capsys, monkeypatch)
    assert_one_line_error(done)
    assert "ran" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["record", "--max-steps", "x", "prog.py"],
        ["record", "-o", "/nonexistent-dir/sub/x.rtrace", "prog.py"],
        ["record", "-m", "no_such_module_here"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_arguments_from_the_real_command(
    run_retrograde: RunRetrograde, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    done = run_retrograde(args, cwd=tmp_path)
    assert_one_line_error(done)
    assert "ran" not in done.stdout


def test_max_steps_error_names_the_option(capsys: Any, monkeypatch: Any, tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    for value in ("0", "x"):
        done = run_main(["record", "--max-steps", value, "prog.py"], tmp_path, capsys, monkeypatch)
        assert "--max-steps" in done.stderr
        assert done.returncode == 2


def test_no_command_prints_usage(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    done = run_retrograde([], cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "usage" in done.stderr.lower()
    for command in ("record", "info", "export", "replay"):
        assert command in done.stderr


def test_help(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    done = run_retrograde(["--help"], cwd=tmp_path)
    assert done.returncode == 0
    assert "record" in done.stdout and "export" in done.stdout


def test_syntax_error_in_script_is_reported_like_python(
    run_retrograde: RunRetrograde, tmp_path: Path
) -> None:
    script = tmp_path / "broken.py"
    script.write_text("x = (1,\n")
    done = run_retrograde(["record", "-o", tmp_path / "b.rtrace", script], cwd=tmp_path)
    plain = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == plain.returncode == 1
    assert "SyntaxError" in done.stderr
    assert done.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_export_to_a_closed_pipe_is_quiet(trace: Path) -> None:
    command, extra = retrograde_command()
    proc = subprocess.Popen(
        [*command, "export", str(trace)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**ENV, **extra},
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=30)
    assert json.loads(first)["step"] == 0
    assert "Traceback" not in err
    assert "Exception ignored" not in err


# -- record -m behaves like python -m ---------------------------------------------------------------------


MODULE_SOURCE = """\
import os
import sys


def main(args):
    total = sum(len(a) for a in args)
    print("argv", [os.path.basename(sys.argv[0])] + sys.argv[1:])
    print("name", __name__, "path0", sys.path[0] == os.getcwd())
    print("total", total)
    sys.stderr.write("to stderr\\n")
    return total


raise SystemExit(main(sys.argv[1:]) % 7)
"""


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    (tmp_path / "mymod.py").write_text(MODULE_SOURCE)
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        textwrap.dedent(
            """\
            import sys
            from mypkg import util

            print("pkg main", util.double(len(sys.argv)), sys.argv[1:])
            """
        )
    )
    (pkg / "util.py").write_text("def double(x):\n    y = x * 2\n    return y\n")
    return tmp_path


def run_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=30
    )


@pytest.mark.parametrize(
    "args", [["mymod", "abc", "de"], ["mymod"], ["mypkg", "x", "--flag"]], ids=["args", "no-args", "package"]
)
def test_record_module_matches_python_m(
    run_retrograde: RunRetrograde, module_dir: Path, args: list[str]
) -> None:
    plain = run_python(["-m", *args], cwd=module_dir)
    trace = module_dir / "m.rtrace"
    done = run_retrograde(["record", "-o", trace, "-m", *args], cwd=module_dir, env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.stdout  # the module really ran
    out = run_retrograde(["export", trace], cwd=module_dir).stdout
    steps = [json.loads(line) for line in out.splitlines()]
    assert steps and steps[0]["depth"] == 0
    files = {os.path.basename(s["file"]) for s in steps}
    if args[0] == "mymod":
        assert files == {"mymod.py"}
        assert "main" in {s["func"] for s in steps}
    else:
        assert files == {"__main__.py", "util.py", "__init__.py"}
        assert "double" in {s["func"] for s in steps}


@pytest.mark.parametrize(
    "program_args",
    [["-q", "-p", "no:cacheprovider"], ["-o", "x", "--max-steps", "3", "--", "-m", "y"], ["--help"]],
    ids=["pytest-like", "record-options", "help"],
)
def test_everything_after_m_module_is_the_programs(
    run_retrograde: RunRetrograde, module_dir: Path, program_args: list[str]
) -> None:
    (module_dir / "showargv.py").write_text("import sys\nprint(sys.argv[1:])\n")
    plain = run_python(["-m", "showargv", *program_args], cwd=module_dir)
    done = run_retrograde(
        ["record", "-o", module_dir / "s.rtrace", "--max-steps", "1000", "-m", "showargv", *program_args],
        cwd=module_dir, env=ENV,
    )
    assert done.returncode == plain.returncode == 0, done.stderr
    assert done.stdout == plain.stdout == f"{program_args!r}\n"
    assert not (module_dir / "x").exists()  # `-o x` was the program's, not record's
    info = json.loads(run_retrograde(["info", "--json", module_dir / "s.rtrace"], cwd=module_dir).stdout)
    assert info["argv"] == ["showargv", *program_args] and not info["max_steps_reached"]


def test_record_module_default_output_name(run_retrograde: RunRetrograde, module_dir: Path) -> None:
    done = run_retrograde(["record", "-m", "mymod", "ab"], cwd=module_dir)
    assert done.returncode == 2  # len("ab") % 7
    assert (module_dir / "mymod.rtrace").exists()


def test_record_script_default_output_name(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "hello.py").write_text("print('hi')\n")
    done = run_retrograde(["record", "sub/hello.py"], cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "hi\n")
    assert (tmp_path / "hello.rtrace").exists()  # in the cwd, named after the script's stem


def test_record_script_args_and_exit_code_like_python(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        "import os, sys\n"
        "print(sys.argv, __name__, __file__ == os.path.abspath(sys.argv[0]), sys.path[0] == os.getcwd())\n"
        "print(input())\n"
        "sys.exit(len(sys.argv))\n"
    )
    args = ["prog.py", "-m", "--max-steps", "3", "x y"]
    plain = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, env=ENV, input="typed\n"
    )
    done = run_retrograde(["record", "-o", "p.rtrace", *args], cwd=tmp_path, input="typed\n", env=ENV)
    assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert done.returncode == 5 and "typed" in done.stdout


# -- info --json and export -------------------------------------------------------------------------------


def test_info_json(run_retrograde: RunRetrograde, trace: Path) -> None:
    done = run_retrograde(["info", "--json", trace], cwd=trace.parent)
    assert done.returncode == 0, done.stderr
    info: dict[str, Any] = json.loads(done.stdout)
    for key in ("steps", "line_steps", "size_bytes", "bytes_per_line_step", "duration_s", "truncated"):
        assert key in info, key
    assert isinstance(info["steps"], int) and info["steps"] > 0
    assert isinstance(info["line_steps"], int) and 0 < info["line_steps"] <= info["steps"]
    assert info["size_bytes"] == trace.stat().st_size
    assert info["bytes_per_line_step"] == pytest.approx(info["size_bytes"] / info["line_steps"], rel=1e-3)
    assert isinstance(info["duration_s"], float) and info["duration_s"] >= 0
    assert info["truncated"] is False
    exported = run_retrograde(["export", trace], cwd=trace.parent).stdout.splitlines()
    assert info["steps"] == len(exported)
    assert info["line_steps"] == sum(json.loads(line)["event"] == "line" for line in exported)


def test_info_text(run_retrograde: RunRetrograde, trace: Path) -> None:
    done = run_retrograde(["info", trace], cwd=trace.parent)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for word in ("steps", "duration", "size", "complete", str(SAMPLE), "fib", "hanoi"):
        assert word in text, word
    assert done.stderr == ""


def test_export_schema(run_retrograde: RunRetrograde, trace: Path) -> None:
    done = run_retrograde(["export", trace], cwd=trace.parent)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines and done.stdout.endswith("\n")
    seen_events = set()
    for index, line in enumerate(lines):
        record = json.loads(line)
        assert set(record) == EXPORT_KEYS
        assert record["step"] == index
        assert record["event"] in EVENTS
        seen_events.add(record["event"])
        assert os.path.isabs(record["file"]) and record["file"] == str(SAMPLE)
        assert type(record["line"]) is int and record["line"] >= 0
        assert type(record["depth"]) is int and record["depth"] >= 0
        assert record["thread"] == 0
        assert isinstance(record["func"], str) and record["func"]
        assert isinstance(record["locals"], dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in record["locals"].items())
        if record["event"] in ("return", "exception", "yield"):
            assert isinstance(record["value"], str)
        elif record["event"] in ("line", "call", "unwind", "resume"):
            assert record["value"] is None
    assert {"call", "line", "return"} <= seen_events
    first = json.loads(lines[0])
    assert (first["event"], first["func"], first["depth"]) == ("call", "<module>", 0)


def test_export_qualnames_and_values(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    script = tmp_path / "q.py"
    script.write_text(
        textwrap.dedent(
            """\
            class Box:
                def method(self, n):
                    def inner(k):
                        return [k] * 3
                    return inner(n)


            def boom():
                raise ValueError("bad")


            out = Box().method(2)
            try:
                boom()
            except ValueError:
                pass
            """
        )
    )
    run_retrograde(["record", "-o", "q.rtrace", script], cwd=tmp_path)
    steps = [json.loads(x) for x in run_retrograde(["export", "q.rtrace"], cwd=tmp_path).stdout.splitlines()]
    funcs = {s["func"] for s in steps}
    assert {"<module>", "Box", "Box.method", "Box.method.<locals>.inner", "boom"} <= funcs
    inner_return = next(s for s in steps if s["func"].endswith("inner") and s["event"] == "return")
    assert inner_return["value"] == "[2, 2, 2]"
    assert inner_return["depth"] == 2
    exc = next(s for s in steps if s["func"] == "boom" and s["event"] == "exception")
    assert exc["value"] == "ValueError('bad')"
    unwind = next(s for s in steps if s["func"] == "boom" and s["event"] == "unwind")
    assert unwind["value"] is None
    assert any(s["event"] == "handled" and s["func"] == "<module>" for s in steps)
    assert steps[-1]["locals"]["out"] == "[2, 2, 2]"


def test_export_of_a_truncated_trace(run_retrograde: RunRetrograde, trace: Path, tmp_path: Path) -> None:
    data = trace.read_bytes()
    cut = tmp_path / "cut.rtrace"
    cut.write_bytes(data[: len(data) - 40])  # footer and trailer gone
    done = run_retrograde(["export", cut], cwd=tmp_path)
    assert done.returncode == 0
    assert done.stderr.startswith("retrograde: note:") and "truncated at step" in done.stderr
    full = run_retrograde(["export", trace], cwd=tmp_path).stdout.splitlines()
    got = done.stdout.splitlines()
    assert got == full[: len(got)]
    info = json.loads(run_retrograde(["info", "--json", cut], cwd=tmp_path).stdout)
    assert info["truncated"] is True and info["steps"] == len(got)


def test_python_m_tracer_entry_point(tmp_path: Path, trace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracer", "info", "--json", str(trace)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**ENV, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] > 0


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ")
def test_a_full_disk_is_one_sentence_and_the_program_runs_on(tmp_path: Path) -> None:
    """The trace file may stop growing (disk full, here the file size limit): the program's output and exit
    code stay its own, Retrograde says so in one line at the end, and the trace reads up to its last
    complete chunk."""
    import resource
    import signal

    script = tmp_path / "busy.py"
    script.write_text(
        "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n\n"
        "print(sum(f(300) for _ in range(300)))\nraise SystemExit(3)\n",
        encoding="utf-8",
    )
    trace = tmp_path / "busy.rtrace"
    limit = 120_000  # bytes: several chunks fit, the whole recording does not

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command, extra_env = retrograde_command()
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    done = subprocess.run(
        [*command, "record", "-o", str(trace), str(script)], capture_output=True, text=True, timeout=120,
        preexec_fn=small_files, cwd=tmp_path, env={**os.environ, **extra_env},
    )
    assert (done.stdout, done.returncode) == (plain.stdout, 3)
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"retrograde: the trace {trace} could not be finished (File too large); "
        "it reads up to its last complete chunk."
    ]
    assert trace.stat().st_size <= limit
    from tracer.format import TraceReader

    with TraceReader(trace) as reader:
        assert reader.truncated and reader.step_count > 1000
        assert list(reader.read_chunk(len(reader.chunks) - 1).events)


def test_python_m_retrograde_entry_point(tmp_path: Path, trace: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "retrograde", "info", "--json", str(trace)],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env={**ENV, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] > 0


# What each command may import: `record` starts fast (no replay, TUI or model code), and the layers
# below the front end run their commands without it.
IMPORT_PROBE = """\
import json, sys
from retrograde.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
upper = {"replay", "neural", "tui", "textual", "torch"}
loaded = sorted({name.split(".")[0] for name in sys.modules} & upper)
print(json.dumps(loaded), file=sys.__stderr__)
"""


@pytest.mark.parametrize(
    "args, allowed",
    [
        (["record", "-o", "t.rtrace", "prog.py"], set()),
        (["info", "t.rtrace"], set()),
        (["export", "t.rtrace"], set()),
        (["replay", "t.rtrace"], {"replay"}),
    ],
    ids=["record", "info", "export", "replay"],
)
def test_commands_import_only_their_layers(tmp_path: Path, args: list[str], allowed: set[str]) -> None:
    (tmp_path / "prog.py").write_text("x = 1\nprint(x)\n")
    (tmp_path / "probe.py").write_text(IMPORT_PROBE)
    env = {**ENV, "PYTHONPATH": str(PROJECT_ROOT)}
    run = [sys.executable, str(tmp_path / "probe.py")]
    subprocess.run([*run, "record", "-o", "t.rtrace", "prog.py"], cwd=tmp_path, env=env, timeout=60,
                   check=True, capture_output=True)
    done = subprocess.run([*run, *args], cwd=tmp_path, env=env, input="q\n", capture_output=True, text=True,
                          timeout=60)
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    assert loaded == allowed, done.stderr


def test_help_lists_every_layers_commands(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    from retrograde.cli import parser

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = set(commands.choices)
    assert {"record", "info", "export", "replay", "demo", "tui", "corpus"} <= names
    done = run_retrograde(["--help"], cwd=tmp_path)
    assert done.returncode == 0
    for name in names:
        assert name in done.stdout


def test_python_m_tracer_has_only_the_recorders_commands(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracer", "replay", "x.rtrace"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env={**ENV, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert_one_line_error(done)
    assert "invalid choice: 'replay'" in done.stderr and "'record'" in done.stderr


def test_demo_records_summarises_and_replays_a_sample(run_retrograde: RunRetrograde, tmp_path: Path) -> None:
    done = run_retrograde(["demo", "--sample", "recursion.py"], cwd=tmp_path, input="b factorial\nc\np n\n")
    assert done.returncode == 0, done.stderr
    plain = subprocess.run([sys.executable, str(SAMPLE)], capture_output=True, text=True, timeout=30)
    assert done.stdout.startswith(plain.stdout)  # the recorded program ran first, its output untouched
    assert f"program:      {SAMPLE}" in done.stdout and "status:       complete" in done.stdout
    assert ")factorial()" in done.stdout  # the replay stopped at the breakpoint
    assert "trace saved as" in done.stderr
    missing = run_retrograde(["demo", "--sample", "nope.py"], cwd=tmp_path)
    assert_one_line_error(missing)
    assert missing.returncode == 2
