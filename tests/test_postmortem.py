"""A crashed program's trace stops where live pdb's post-mortem stops: same frame, locals, `w`, `u`/`d`.

Each program in tests/data/crashes runs under live `python -m pdb` and is recorded by `retrograde record`;
the same command script (continue to the crash, print every local of every frame, walk the stack, continue
twice more: pdb restarts, then crashes again) goes to both, and their outputs are compared block by block
(pdb's own frames in `w` and the traceback it prints on stderr are left out).
"""

from __future__ import annotations

import functools
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from replay.engine import Engine, StopReason
from replay.recorded import RecordedTimeline
from replay.repl import run_replay

CRASHES = Path(__file__).resolve().parent / "data" / "crashes"
PROGRAMS = sorted(p.name for p in CRASHES.glob("*.py"))


@functools.cache
def recorded(name: str) -> RecordedTimeline:
    out = Path(tempfile.mkdtemp(prefix="retro-pm-")) / "trace.rtrace"
    subprocess.run([sys.executable, "-m", "tracer", "record", "-o", str(out), str(CRASHES / name)],
                   capture_output=True, text=True, timeout=60, cwd=str(CRASHES), check=False)
    assert out.exists(), f"retrograde record wrote no trace for {name}"
    return RecordedTimeline(out)


def pdb_output(name: str, commands: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "pdb", str(CRASHES / name)],
                          input="\n".join([*commands, "q"]) + "\n", capture_output=True, text=True,
                          timeout=60, cwd=str(CRASHES))
    return proc.stdout


def replay_output(name: str, commands: list[str]) -> str:
    out = io.StringIO()
    run_replay(recorded(name), io.StringIO("\n".join([*commands, "q"]) + "\n"), out, interactive=False)
    return out.getvalue()


_PROGRAM_OUTPUT = re.compile(r"^(?:\w+ -?[\d.]+|\[.*\]|\d+)$")  # what the programs themselves print


def blocks(output: str, prompt: str) -> list[list[str]]:
    """Prompt-delimited blocks with what only one side prints left out: pdb's own frames, the replay's
    opening note and exception line, the programs' prints, object addresses."""
    result = []
    for block in output.split(prompt):
        lines = []
        skip_source = False
        for line in block.splitlines():
            if skip_source and line.startswith("-> "):
                skip_source = False
                continue
            skip_source = False
            if re.match(r"^  (/.*/lib/python3\.\d+/(pdb|bdb)\.py|<string>)\(", line):
                skip_source = True
                continue
            if _PROGRAM_OUTPUT.match(line) or line.startswith(("The program crashed at step", "  raised at")):
                continue
            lines.append(re.sub(r"0x[0-9a-f]+", "0x?", line))
        if lines and lines[0] != "Uncaught exception. Entering post mortem debugging" and \
                len(lines) > 1 and lines[1] == "Uncaught exception. Entering post mortem debugging":
            lines = lines[1:]  # the replay's `ExcType: message` line (pdb prints the traceback on stderr)
        result.append(lines)
    return result


def post_mortem_script(name: str) -> list[str]:
    """c, then at every traceback frame (innermost first) `p` of each local; w; back down; c; c."""
    engine = Engine(recorded(name))
    if engine.crash is None:  # sys.exit: pdb reports the status and restarts
        return ["c", "w", "n", "c", "s"]
    engine.continue_()
    commands = ["c", "w"]
    depth = len(engine.stack())
    for level in range(depth):
        commands += [f"p {local}" for local in sorted(engine.locals()) if not local.startswith("__")]
        if level < depth - 1:
            commands.append("u")
            engine.up()
    commands += ["w", "d", "d", "w", "c", "c"]
    return commands


@pytest.mark.parametrize("name", PROGRAMS)
def test_post_mortem_matches_live_pdb(name: str) -> None:
    commands = post_mortem_script(name)
    want = blocks(pdb_output(name, commands), "(Pdb) ")[: len(commands) + 1]
    got = blocks(replay_output(name, commands), "(retro) ")[: len(commands) + 1]
    assert len(want) == len(got) == len(commands) + 1
    for index, (expected, actual) in enumerate(zip(want, got)):
        command = "<start>" if index == 0 else commands[index - 1]
        assert actual == expected, f"{name}: after {command!r} (#{index}): pdb {expected}, replay {actual}"


def test_crashing_programs_cover_every_kind() -> None:
    """The set of programs names what it tests: a crash at each depth and kind, and the two exits."""
    kinds = {name: (recorded(name), Engine(recorded(name))) for name in PROGRAMS}
    crashes = {name: engine.crash for name, (_, engine) in kinds.items()}
    assert crashes["exit_code.py"] is None and kinds["exit_code.py"][1].system_exit is not None
    assert {name for name, crash in crashes.items() if crash is None} == {"exit_code.py"}
    depths = {name: len(crash.frames) for name, crash in crashes.items() if crash is not None}
    assert depths == {"chained.py": 2, "finally_block.py": 3, "generator.py": 2, "interrupt.py": 2,
                      "loop.py": 2, "module_level.py": 1, "nested.py": 4, "raise_again.py": 4,
                      "reraise.py": 3}


@pytest.mark.parametrize("name", ["nested.py", "reraise.py", "generator.py"])
def test_reverse_commands_work_from_the_crash(name: str) -> None:
    engine = Engine(recorded(name))
    crash = engine.crash
    assert crash is not None
    stop = engine.continue_()
    assert (stop.reason, engine.position, engine.post_mortem) == (StopReason.CRASH, crash.index, True)
    # The previous event is the raise itself (the exception event at the raise line).
    back = engine.reverse_step()
    assert back.step.event == "exception" and back.step.line == crash.site.line and not engine.post_mortem
    assert back.step.index < crash.index and back.step.frame_id == crash.site.frame_id
    engine.crash_stop()
    assert engine.reverse_continue().reason == StopReason.START  # no breakpoints: back to the first line
    assert engine.position == engine.start
    engine.crash_stop()
    call = engine.reverse_return()
    assert call.step.event in ("call", "resume") and call.step.frame_id == crash.site.frame_id
    # Forward from the crash: the engine stays (the program ended there); the REPL restarts as pdb does.
    engine.crash_stop()
    assert engine.step().moved is False and engine.position == crash.index


def test_opening_a_crashed_trace_says_where() -> None:
    output = replay_output("chained.py", [])
    lines = output.splitlines()
    crash = Engine(recorded("chained.py")).crash
    assert crash is not None
    assert lines[0] == (f"The program crashed at step {crash.index}: LookupError: no setting for 'port' "
                        f"(host was localhost)")
    assert lines[1].startswith(f"  raised at {CRASHES / 'chained.py'}:15 in connect(); `crash` goes there")


def test_unwind_is_never_a_return_of_none() -> None:
    """Stepping onto a frame that exits by the exception shows --Unwind-- and the exception, no ->None."""
    commands = ["s"] * 40
    output = replay_output("nested.py", commands)
    assert "--Unwind-- ZeroDivisionError: division by zero\n> " + str(CRASHES / "nested.py") + \
        "(5)divide()\n" in output
    assert "->None" not in output


def test_tui_says_so_on_opening_and_continue_stops_at_the_crash() -> None:
    """The TUI's `c` goes to the post-mortem stop (same engine); the stack pane lists the traceback."""
    import asyncio

    from textual.widgets import Log

    from tui.app import make_app
    from tui.panes import StackList
    from tui.source_view import SourceView

    timeline = recorded("nested.py")
    crash = Engine(timeline).crash
    assert crash is not None
    app = make_app(timeline, title="nested.py")

    async def main() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            console = "\n".join(app.query_one("#console", Log).lines)
            opening = f"The program crashed at step {crash.index}: ZeroDivisionError: division by zero"
            assert opening in console
            assert app.note.startswith("The program crashed at step")
            await pilot.press("c")
            await app.settle()
            await pilot.pause()
            assert app.engine.post_mortem and app.engine.position == crash.index
            note = "uncaught ZeroDivisionError: division by zero: where it crashed (rs, rc go back)"
            assert app.note == note
            assert app.query_one("#source", SourceView).current_line == 5
            stack = app.query_one("#stack", StackList)
            assert stack.option_count == len(crash.frames) == 4
            await pilot.press("S")  # reverse-step: back to the raise
            await app.settle()
            await pilot.pause()
            assert app.engine.current.event == "exception" and not app.engine.post_mortem

    asyncio.run(main())
