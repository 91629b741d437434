"""`whatif NAME = EXPR` in `retrograde replay`, the TUI and DAP: a predicted fork from a recorded frame, and
`back` to the recording exactly where it was left.

The fork's first state is the recorded frame with the change made (no model decides it), so it is checked
against the recording itself: every other local equal, the changed ones as asked. What the bundled model
predicts after it is not asserted, only where the commands go and what the prompt and banner say.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import RunRetrograde

from replay.engine import BadArgument
from replay.recorded import RecordedTimeline
from replay.repl import PROMPT, WHATIF_PROMPT, run_replay
from replay.session import NO_FORKER, parse_changes

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROGRAM = textwrap.dedent("""\
    def grow(x, items):
        y = x * 2
        z = y + len(items)
        return z


    print(grow(3, [1, 2]))
""")
BODY = 3  # `z = y + len(items)`: x and items cannot change there, so the model must keep them


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Path:
    root = tmp_path_factory.mktemp("whatif")
    (root / "grow.py").write_text(PROGRAM)
    result = run_retrograde(["record", "-o", "grow.rtrace", "grow.py"], cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "grow.rtrace"


def blocks(output: str) -> list[str]:
    """The replay's output per command (index 0: the start), split at either prompt."""
    return [b.rstrip("\n") for b in re.split(re.escape(PROMPT) + "|" + re.escape(WHATIF_PROMPT), output)]


def replay(run_retrograde: RunRetrograde, trace: Path, commands: list[str], *extra: str) -> str:
    result = run_retrograde(["replay", trace, *extra], cwd=trace.parent, input="\n".join(commands) + "\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def step_of(info: str) -> int:
    match = re.match(r"Step (\d+) of", info)
    assert match, info
    return int(match.group(1))


# -- the command line ----------------------------------------------------------------------------------------
def test_changes_parse_like_python_assignments() -> None:
    assert parse_changes("x = 5; items = [3, 1]") == {"x": "5", "items": "[3, 1]"}
    assert parse_changes("x += 1") == {"x": "x + 1"}
    assert parse_changes("a = b = 0") == {"a": "0", "b": "0"}
    assert parse_changes("s = 'a;b'") == {"s": "'a;b'"}  # a ; inside a string is not a separator
    for bad in ("x == 5", "a, b = 1, 2", "x = 1; x = 2", "", "x ="):
        with pytest.raises(BadArgument):
            parse_changes(bad)


def test_whatif_forks_from_the_recorded_frame_and_back_returns(run_retrograde: RunRetrograde,
                                                               trace: Path) -> None:
    commands = [f"b {BODY}", "c", "info", "a", "p x, y", "whatif x = 5; y = x * 10", "p x, y", "a", "b 4",
                "info", "s", "p x, items", "w", "back", "info", "p x, y", "a", "b"]
    out = replay(run_retrograde, trace, commands)
    parts = blocks(out)
    at, recorded_args, before = step_of(parts[3]), parts[4], parts[5]
    assert before == "(3, 6)"
    forked = parts[6]
    assert forked.startswith(f"What if x = 5; y = x * 10: predicted by the model from step {at} in grow()")
    assert forked.endswith("grow()\n-> z = y + len(items)")  # the fork starts at the recorded line
    assert parts[7] == "(5, 50)"  # in order: y sees the new x
    changed = {"x": "5", "y": "50"}
    recorded = dict(line.split(" = ", 1) for line in recorded_args.splitlines())
    assert dict(line.split(" = ", 1) for line in parts[8].splitlines()) == {**recorded, **changed}
    assert parts[9].startswith("Breakpoint 2 at")  # numbering goes on from the recording's
    assert step_of(parts[10]) == 0  # a timeline of its own, from the forked state
    assert "grow()" in parts[11]  # the model's next step, shown as a stop
    assert parts[12] == "(5, [1, 2])"  # names line 3 cannot change stay as the fork set them
    assert out.count(WHATIF_PROMPT) == 8  # the prompt says so from whatif until back
    assert parts[14].startswith(f"Back to the recording at step {at}.\n> ")
    assert parts[14].endswith("grow()\n-> z = y + len(items)")
    assert step_of(parts[15]) == at and parts[16] == before
    assert parts[17] == recorded_args
    listed = parts[18]  # the recording's breakpoints, not the one set in the what-if
    assert f"at {trace.parent / 'grow.py'}:{BODY}" in listed and ":4" not in listed


def test_errors_are_one_line_and_leave_the_recording(run_retrograde: RunRetrograde, trace: Path) -> None:
    attempts = ["whatif q = 1", "whatif x = open('f')", "whatif x == 1", "whatif", "back", "whatif x = nope"]
    out = replay(run_retrograde, trace, [f"b {BODY}", "c", "info", *attempts, "info", "p x", "r",
                                         "whatif x = 1"])
    parts = blocks(out)
    errors = parts[4:4 + len(attempts)]
    for text in errors:
        assert len(text.splitlines()) == 1 and text.startswith("*** "), text
    assert "no variable 'q'" in errors[0] and "cannot be evaluated" in errors[1]
    assert "whatif wants NAME = EXPR" in errors[2] and "not in a what-if" in errors[4]
    assert step_of(parts[4 + len(attempts)]) == step_of(parts[3]) and parts[5 + len(attempts)] == "3"
    assert parts[-2].startswith("*** grow() returns at this step")  # nothing to predict from a return
    assert WHATIF_PROMPT not in out


def test_a_missing_model_is_one_sentence(run_retrograde: RunRetrograde, trace: Path, tmp_path: Path) -> None:
    out = replay(run_retrograde, trace, [f"b {BODY}", "c", "whatif x = 5", "p x", "whatif x = 6"],
                 "--model", str(tmp_path / "no-model"))
    parts = blocks(out)
    assert parts[3] == f"*** whatif needs a model: no such model directory: {tmp_path / 'no-model'}"
    assert parts[4] == "3" and parts[5] == parts[3]  # the recording untouched; asking again says it again


def test_without_a_forker_whatif_says_what_is_missing(trace: Path) -> None:
    timeline = RecordedTimeline(str(trace))
    try:
        out = io.StringIO()
        run_replay(timeline, io.StringIO(f"b {BODY}\nc\nwhatif x = 5\np x\n"), out, interactive=False)
    finally:
        timeline.close()
    parts = blocks(out.getvalue())
    assert parts[3] == "*** " + NO_FORKER and parts[4] == "3"


def test_front_end_forker_loads_nothing_until_used_and_names_a_missing_part(
        monkeypatch: pytest.MonkeyPatch) -> None:
    probe = ("import sys, retrograde.cli; retrograde.cli.whatif_forker(); "
             "print(sorted(m for m in ('neural.whatif', 'neural.predict', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # start-up unchanged: the model waits for the first whatif
    from replay.session import ForkError
    from retrograde.cli import whatif_forker

    monkeypatch.setitem(sys.modules, "neural.whatif", None)  # as if the neural part were not installed
    with pytest.raises(ForkError, match=re.escape(NO_FORKER)):
        whatif_forker()(cast(Any, None), 0, {"x": "1"})  # refused before the timeline is read


# -- the TUI -----------------------------------------------------------------------------------------------
def test_tui_marks_the_what_if_and_back_restores_the_view(trace: Path) -> None:
    from textual.widgets import Input, Static

    from neural.whatif import load_forker
    from tui.app import make_app

    timeline = RecordedTimeline(str(trace))
    app = make_app(timeline, title="grow.py", forker=load_forker())

    async def command(pilot: Any, text: str) -> None:
        await pilot.press("colon")
        app.query_one("#command", Input).value = text
        await pilot.press("enter")
        await app.settle()
        await pilot.pause()

    def status() -> str:
        return str(app.query_one("#status", Static).render())

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await command(pilot, f"b {BODY}")
            await command(pilot, "c")
            at, recording = app.engine.position, app.engine
            assert "WHAT IF" not in status()
            await command(pilot, "whatif x = 5")
            assert "WHAT IF" in status() and app.engine is not recording
            assert str(app.query_one("#prompt", Static).render()) == "(retro whatif)"
            assert app.engine.locals()["x"].text == "5" and app.engine.current.line == BODY
            await pilot.press("escape", "s")  # leave the command line; the key steps
            await app.settle()
            await pilot.pause()
            assert app.engine.position == 1  # the key stepped the what-if, not the recording
            await command(pilot, "back")
            assert "WHAT IF" not in status() and app.engine is recording
            assert app.engine.position == at and app.engine.locals()["x"].text == "3"
            assert str(app.query_one("#prompt", Static).render()) == "(retro)"

    try:
        asyncio.run(scenario())
    finally:
        timeline.close()


# -- DAP ---------------------------------------------------------------------------------------------------
@pytest.fixture
def dap() -> Iterator[Any]:
    from test_dap import Client, adapter_command, adapter_env

    process = subprocess.Popen(adapter_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=adapter_env())
    assert process.stdin is not None and process.stdout is not None
    try:
        yield Client(process.stdout, process.stdin)
    finally:
        process.stdin.close()
        assert process.wait(timeout=120) == 0
        assert process.stderr is not None
        assert b"Traceback" not in process.stderr.read()


def test_dap_debug_console_whatif_and_back(dap: Any, trace: Path) -> None:
    program = trace.parent / "grow.py"
    dap.start(trace=str(trace))
    dap.request("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": BODY}])
    dap.request("configurationDone")
    dap.stopped()
    recorded = dap.locals(dap.top()["id"])
    said = dap.request("evaluate", expression="whatif x = 5", context="repl")["result"]
    assert said.startswith("What if x = 5: predicted by the model from step")
    assert "what-if" in dap.stopped()["description"]
    top = dap.top()
    assert top["line"] == BODY and dap.locals(top["id"]) == {**recorded, "x": "5"}
    dap.request("next", threadId=1)  # the client's own buttons step the what-if
    dap.stopped()
    assert dap.locals(dap.top()["id"])["x"] == "5"  # line 3 cannot change x
    refused = dap.response("evaluate", expression="whatif nothere = 1", context="repl")
    assert refused["success"] and refused["body"]["result"].startswith("*** ")
    dap.request("evaluate", expression="back", context="repl")
    stop = dap.stopped()
    assert "what-if" not in stop.get("description", "")
    top = dap.top()
    assert top["line"] == BODY and dap.locals(top["id"]) == recorded
    dap.request("continue", threadId=1)  # the recording goes on as before: to its end
    dap.event("terminated")
