"""The TUI: Pilot-driven behaviour (keys, panes, breakpoints, reverse, command line), SVG snapshots of the
layout, the stack finder and the `retrograde tui` command line's errors."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import pytest

pytest.importorskip("textual")  # the TUI is the optional `tui` extra

from conftest import RunRetrograde
from replay_fixtures import reference_timeline
from textual.pilot import Pilot
from textual.widgets import Input, Log

from replay.breakpoints import Breakpoint
from replay.engine import Engine
from replay.memory import ListTimeline
from replay.recorded import RecordedTimeline
from replay.timeline import Step, Value
from tui import cli
from tui.app import RetroApp, make_app
from tui.guarded import GuardedTimeline, SearchCancelled
from tui.panes import HelpScreen, KeyBar, LocalsTree, StackList, ValueScreen
from tui.search import find_line, matching_lines, scan_marks
from tui.source_view import SourceView
from tui.stack import StackFinder
from tui.timeline_bar import TimelineBar

ROOT = Path(__file__).resolve().parent.parent
BUBBLE = ROOT / "samples" / "bubble_sort.py"
SIZE = (100, 32)

needs_snapshots = pytest.mark.skipif(importlib.util.find_spec("pytest_textual_snapshot") is None,
                                     reason="pytest-textual-snapshot is not installed")


# -- fixtures and helpers ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bubble_trace(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Path:
    """samples/bubble_sort.py recorded once for the module."""
    out = tmp_path_factory.mktemp("tui") / "bubble_sort.rtrace"
    run_retrograde(["record", "-o", out, BUBBLE], cwd=out.parent)
    assert out.exists()
    return out


@pytest.fixture
def app(bubble_trace: Path) -> Iterator[RetroApp]:
    timeline = RecordedTimeline(bubble_trace)
    yield make_app(timeline, title="bubble_sort.py")
    timeline.close()


def twin(trace: Path) -> Engine:
    """An engine of its own over the same trace: what the keys must agree with."""
    return Engine(RecordedTimeline(trace))


Scenario = Callable[[Pilot[int]], Awaitable[None]]


def drive(app: RetroApp, scenario: Scenario, size: tuple[int, int] = SIZE) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


async def press(pilot: Pilot[int], *keys: str) -> None:
    """Press keys one at a time, letting any search worker finish and the screen settle after each."""
    for key in keys:
        await pilot.press(key)
        await cast(RetroApp, pilot.app).settle()
        await pilot.pause()


async def type_in(pilot: Pilot[int], opener: str, text: str) -> None:
    """Open a prompt (":", "g", "/", "w"), type text, press enter."""
    await press(pilot, opener)
    field = pilot.app.query_one("#command", Input)
    assert field.has_focus
    field.value = text
    await press(pilot, "enter")


def line_text(view: SourceView, number: int) -> str:
    """What the source pane shows for a line (it must be on screen)."""
    row = number - 1 - int(view.scroll_y)
    assert 0 <= row < view.scrollable_content_region.height, f"line {number} is not on screen"
    return view.render_line(row).text


def tree_labels(tree: LocalsTree) -> dict[str, str]:
    return {node.data.name: str(node.label) for node in tree.root.children if node.data is not None}


def console_text(app: RetroApp) -> str:
    return "\n".join(app.query_one("#console", Log).lines)


def goto_line(engine: Engine, line: int, func: str, occurrence: int = 1) -> None:
    """Move an engine to the occurrence-th line event at `line` in `func`."""
    seen = 0
    for step in engine.timeline.steps(0, len(engine.timeline)):
        if step.event == "line" and step.line == line and step.func == func:
            seen += 1
            if seen == occurrence:
                engine.goto(step.index)
                return
    raise AssertionError(f"line {line} of {func} runs fewer than {occurrence} times")


# -- keys and panes ------------------------------------------------------------------------------------------
def test_starts_where_pdb_starts_and_shows_that_line(app: RetroApp, bubble_trace: Path) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        engine = twin(bubble_trace)
        assert app.engine.position == engine.start
        view = app.query_one("#source", SourceView)
        assert view.file == str(BUBBLE) and view.current_line == engine.current.line
        assert "▶" in line_text(view, engine.current.line)
        assert view.border_title == "bubble_sort.py"  # relative to the trace's root: no tmp paths
        status = str(app.query_one("#status").render())
        assert f"step {engine.start}/{engine.end}" in status

    drive(app, scenario)


def test_forward_and_reverse_keys_match_the_engine(app: RetroApp, bubble_trace: Path) -> None:
    engine = twin(bubble_trace)
    expected: list[int] = []
    keys = ["n", "n", "n", "s", "s", "n", "s", "s", "S", "N", "r", "R", "s", "S", "N"]
    moves = {"s": engine.step, "n": engine.next, "r": engine.return_, "S": engine.reverse_step,
             "N": engine.reverse_next, "R": engine.reverse_return}
    for key in keys:
        expected.append(moves[key]().step.index)

    async def scenario(pilot: Pilot[int]) -> None:
        view = app.query_one("#source", SourceView)
        for key, index in zip(keys, expected):
            await press(pilot, key)
            assert app.engine.position == index, f"after {key}"
            step = app.engine.current
            assert view.current_line == step.line
            assert "▶" in line_text(view, step.line)

    drive(app, scenario)
    assert len(set(expected)) > 5  # the keys really moved around


def test_locals_show_values_and_mark_the_changed_ones(app: RetroApp, bubble_trace: Path) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        goto_line(app.engine, 8, "bubble_sort")  # n = len(items) is next
        app.refresh_view()
        await pilot.pause()
        tree = app.query_one("#locals", LocalsTree)
        assert tree_labels(tree) == {"items": "items = [5, 1, 4, 2, 8, 3]"}
        await press(pilot, "n")
        labels = tree_labels(tree)
        assert labels["n"] == "n = 6"
        assert tree._changed == frozenset({"n"})  # items kept its value
        styles = {node.data.name: {str(span.style) for span in node.label.spans}
                  for node in tree.root.children if node.data is not None}
        assert any("yellow" in style for style in styles["n"])
        assert not any("yellow" in style for style in styles["items"])
        await press(pilot, "N")  # back: n is gone again, items unchanged
        assert set(tree_labels(tree)) == {"items"} and tree._changed == frozenset()

    drive(app, scenario)


def test_containers_expand_and_values_show_in_full(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        goto_line(app.engine, 8, "bubble_sort")
        app.refresh_view()
        await pilot.pause()
        tree = app.query_one("#locals", LocalsTree)
        tree.focus()
        node = tree.root.children[0]
        assert node.allow_expand
        tree.move_cursor(node)
        await press(pilot, "enter")
        assert [str(child.label) for child in node.children][:2] == ["[0] = 5", "[1] = 1"]
        await press(pilot, "s")  # the next step keeps the container open
        assert tree.root.children[0].is_expanded
        await press(pilot, "v")
        assert isinstance(app.screen, ValueScreen)
        assert app.screen.text == "[5, 1, 4, 2, 8, 3]"
        await press(pilot, "escape")
        assert not isinstance(app.screen, ValueScreen)

    drive(app, scenario)


def test_a_container_too_long_to_show_expands_to_its_recorded_items(
    tmp_path: Path, run_retrograde: RunRetrograde
) -> None:
    script = tmp_path / "big.py"
    script.write_text(
        "def main():\n    big = list(range(5000))\n    big[0] = 'first'\n    return big\nmain()\n"
    )
    trace = tmp_path / "big.rtrace"
    run_retrograde(["record", "-o", trace, script], cwd=tmp_path)
    timeline = RecordedTimeline(trace)
    app = make_app(timeline, title="big.py")

    async def scenario(pilot: Pilot[int]) -> None:
        goto_line(app.engine, 4, "main")
        app.refresh_view()
        await pilot.pause()
        tree = app.query_one("#locals", LocalsTree)
        tree.focus()
        node = tree.root.children[0]
        assert node.data is not None and node.data.truncated and node.allow_expand
        tree.move_cursor(node)
        await press(pilot, "enter")
        labels = [str(child.label) for child in node.children]
        assert labels[:2] == ["[0] = 'first'", "[1] = 1"]  # rebuilt from the trace, as of this step
        assert labels[-1] == "… 4500 more"

    try:
        drive(app, scenario)
    finally:
        timeline.close()


def test_stack_pane_and_frame_up_down(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        goto_line(app.engine, 12, "bubble_sort")
        app.refresh_view()
        await pilot.pause()
        stack = app.query_one("#stack", StackList)
        prompts = [str(stack.get_option_at_index(i).prompt) for i in range(stack.option_count)]
        assert prompts == ["bubble_sort  bubble_sort.py:12", "main  bubble_sort.py:22",
                           "<module>  bubble_sort.py:28"]
        assert stack.highlighted == 0
        view = app.query_one("#source", SourceView)
        await press(pilot, "u")
        assert app.engine.frame_index == 1 and stack.highlighted == 1
        assert view.current_line == 22 and view.outer_frame
        assert set(tree_labels(app.query_one("#locals", LocalsTree))) == {"data"}
        await press(pilot, "u", "u")  # past the outermost frame: a message, no move
        assert app.engine.frame_index == 2 and "Oldest frame" in app.note
        await press(pilot, "d", "d")
        assert app.engine.frame_index == 0 and view.current_line == 12 and not view.outer_frame
        stack.focus()
        await press(pilot, "down", "enter")  # choosing a frame in the stack selects it
        assert app.engine.frame_index == 1

    drive(app, scenario)


def test_output_pane_shows_output_up_to_the_step(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        output = app.query_one("#output", Log)
        assert list(output.lines) == [""] or not output.lines
        goto_line(app.engine, 24, "main")  # the second print is next
        app.refresh_view()
        await pilot.pause()
        assert [line for line in output.lines if line] == ["before: [5, 1, 4, 2, 8, 3]"]
        await press(pilot, "n")
        assert [line for line in output.lines if line] == [
            "before: [5, 1, 4, 2, 8, 3]", "after:  [1, 2, 3, 4, 5, 8]"]
        await press(pilot, "N", "N")
        assert not [line for line in output.lines if line]

    drive(app, scenario)


def test_breakpoint_with_b_then_continue_and_reverse_continue(app: RetroApp, bubble_trace: Path) -> None:
    engine = twin(bubble_trace)
    engine.add_breakpoint(f"{BUBBLE}:13")
    first, second = engine.continue_().step.index, engine.continue_().step.index

    async def scenario(pilot: Pilot[int]) -> None:
        view = app.query_one("#source", SourceView)
        view.cursor_line = 13
        await press(pilot, "b")
        points = [p for p in app.engine.points.values() if isinstance(p, Breakpoint)]
        assert [(p.file, p.line) for p in points] == [(str(BUBBLE), 13)]
        assert line_text(view, 13).startswith("●")
        bar = app.query_one("#bar", TimelineBar)
        assert first in bar.marks.breakpoints and second in bar.marks.breakpoints
        await press(pilot, "c")
        assert app.engine.position == first and app.engine.current.line == 13
        assert app.note.startswith("breakpoint 1")
        await press(pilot, "c")
        assert app.engine.position == second
        await press(pilot, "C")
        assert app.engine.position == first
        await press(pilot, "down", "up")  # the cursor is on line 13 again after moving it away
        assert view.cursor_line == 13
        await press(pilot, "b")  # toggles it off again
        assert not app.engine.points and not line_text(view, 13).startswith("●")
        await press(pilot, "c")
        assert app.engine.position == app.engine.end

    drive(app, scenario)


def test_clicking_the_gutter_toggles_a_breakpoint(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        view = app.query_one("#source", SourceView)
        top = int(view.scroll_y)
        line = top + 3
        # Offsets are from the widget's corner: one cell of border before the gutter.
        await pilot.click("#source", offset=(1, 1 + (line - 1 - top)))
        await pilot.pause()
        breaks = [(p.file, p.line) for p in app.engine.points.values() if isinstance(p, Breakpoint)]
        text = view._shown.lines[line - 1].plain.strip()
        if text and not text.startswith(("#", '"""')):
            assert breaks == [(str(BUBBLE), line)]
        else:
            assert breaks == [] and "no breakpoint" in app.note

    drive(app, scenario)


def test_command_line_runs_replay_commands(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        goto_line(app.engine, 9, "bubble_sort")
        app.refresh_view()
        await pilot.pause()
        await type_in(pilot, "colon", "p n")
        assert console_text(app).splitlines()[-2:] == ["(retro) p n", "6"]
        await type_in(pilot, "colon", "p items[0] * 10")
        assert console_text(app).splitlines()[-1] == "50"
        before = app.engine.position
        await type_in(pilot, "colon", "reverse-step")  # a motion typed in moves the panes too
        assert app.engine.position < before
        assert app.query_one("#source", SourceView).current_line == app.engine.current.line
        await type_in(pilot, "colon", "b 14")
        assert line_text(app.query_one("#source", SourceView), 14).startswith("●")
        await type_in(pilot, "colon", "nonsense here")
        assert console_text(app).splitlines()[-1].startswith("*** Unknown command")

    drive(app, scenario)


def test_goto_search_and_watch_prompts(app: RetroApp, bubble_trace: Path) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        await type_in(pilot, "g", "30")
        assert app.engine.position == 30
        await type_in(pilot, "g", "100%")
        assert app.engine.position == app.engine.end
        await type_in(pilot, "g", "zzz")
        assert app.engine.position == app.engine.end and "Bad step" in app.note
        await type_in(pilot, "g", "0")
        await type_in(pilot, "slash", "SWAPPED = TRUE")  # not all lower case: case matters
        assert "no line" in app.note and app.engine.position == 0
        await type_in(pilot, "slash", "swapped = true")
        assert app.engine.current.line == 14 and app.engine.current.event == "line"
        first_swap = app.engine.position
        await type_in(pilot, "slash", "swapped = true")
        assert app.engine.position > first_swap and app.engine.current.line == 14
        goto_line(app.engine, 11, "bubble_sort")
        app.refresh_view()
        await type_in(pilot, "w", "swapped")
        assert "Watchpoint 1: swapped = False" in console_text(app)
        await press(pilot, "c")
        assert app.last_stop is not None and app.last_stop.reason == "watchpoint"
        assert app.engine.locals()["swapped"].text == "True"

    drive(app, scenario)


def test_timeline_bar_click_jumps(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        bar = app.query_one("#bar", TimelineBar)
        width = bar.size.width
        await pilot.click("#bar", offset=(width - 1, 0))
        await pilot.pause()
        assert app.engine.position == app.engine.end
        await pilot.click("#bar", offset=(width // 2, 0))
        await pilot.pause()
        assert abs(app.engine.position - app.engine.end // 2) <= len(app.engine.timeline) // width + 1
        await pilot.click("#bar", offset=(0, 0))
        await pilot.pause()
        assert app.engine.position == 0

    drive(app, scenario)


def test_timeline_bar_marks_exceptions() -> None:
    timeline = reference_timeline("replay_basic.py")
    raised = [step.index for step in timeline.steps(0, len(timeline)) if step.event == "exception"]
    assert raised
    app = make_app(timeline, title="basic")

    async def scenario(pilot: Pilot[int]) -> None:
        bar = app.query_one("#bar", TimelineBar)
        assert bar.marks.exceptions == tuple(raised)
        assert "✕" in bar.render_line(0).text

    drive(app, scenario)


def test_timeline_bar_drag_scrubs(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        bar = app.query_one("#bar", TimelineBar)
        width = bar.size.width
        await pilot.mouse_down("#bar", offset=(0, 0))
        await pilot.hover("#bar", offset=(width // 4, 0))
        await pilot.pause()
        quarter = app.engine.position
        await pilot.hover("#bar", offset=(3 * width // 4, 0))
        await pilot.mouse_up("#bar", offset=(3 * width // 4, 0))
        await pilot.pause()
        assert 0 < quarter < app.engine.position < app.engine.end
        assert app.query_one("#source", SourceView).current_line == app.engine.current.line

    drive(app, scenario)


def test_help_screen_and_quit(app: RetroApp) -> None:
    async def scenario(pilot: Pilot[int]) -> None:
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "reverse-next" in app.screen.commands  # the REPL's commands are listed
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)
        await press(pilot, "q")

    drive(app, scenario)
    assert app.return_code == 0


def test_key_bar_fits_small_and_large_terminals() -> None:
    assert KeyBar.hints(80).cell_len <= 80
    assert "S N R C" in KeyBar.hints(80).plain and "q quit" in KeyBar.hints(80).plain
    assert "reverse" in KeyBar.hints(200).plain


# -- long searches -------------------------------------------------------------------------------------------
class GatedTimeline(ListTimeline):
    """An in-memory loop whose bulk reads stop halfway until the gate opens: a search still running when the
    test presses esc, however slow or fast the machine."""

    gate = threading.Event()

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        for step in super().steps(start, stop):
            if step.index == len(self) // 2:
                assert self.gate.wait(timeout=30)
            yield step


def long_loop(count: int, timeline_class: type[ListTimeline] = ListTimeline) -> ListTimeline:
    file = "/virtual/loop.py"
    source = "total = 0\nwhile True:\n    total += 1\nprint(total)\n"
    steps = [Step(0, "call", file, 0, "<module>", 0, 0, 0)]
    states: list[dict[str, Value]] = [{}]
    for i in range(1, count):
        line = 1 if i == 1 else (2 if i % 2 == 0 else 3)
        steps.append(Step(i, "line", file, line, "<module>", 0, 0, 0))
        states.append({"total": Value(str(i // 2), literal=True)} if i > 1 else {})
    return timeline_class(steps, states, {file: source}, output=[(count - 1, "done\n")], chunk_size=4096)


def test_a_long_continue_runs_in_a_worker_and_esc_cancels_it() -> None:
    timeline = long_loop(20_000, GatedTimeline)
    app = make_app(timeline, title="loop")

    async def scenario(pilot: Pilot[int]) -> None:
        app.engine.add_breakpoint("3", "total < 0")  # every chunk may hit; no step does
        start = app.engine.position
        GatedTimeline.gate.clear()
        await pilot.press("c")
        await pilot.pause(0.3)  # past the delay before the progress indicator shows
        assert app.busy == "continue"
        status = str(app.query_one("#status").render())
        assert "continue: searching at step" in status and "esc cancels" in status
        await pilot.press("s")  # refused while the search runs
        await pilot.press("escape")
        GatedTimeline.gate.set()
        await app.settle()
        await pilot.pause()
        assert app.busy is None and "cancelled" in app.note
        assert app.engine.position == start
        await press(pilot, "s")  # and the keys work again
        assert app.engine.position > start

    drive(app, scenario)


def test_guarded_timeline_cancels_scans() -> None:
    guarded = GuardedTimeline(long_loop(10_000))
    assert sum(1 for _ in guarded.steps(0, 10_000)) == 10_000
    assert guarded.progress > 8000
    guarded.cancel_event.set()
    with pytest.raises(SearchCancelled):
        sum(1 for _ in guarded.steps(0, 10_000))


def test_search_helpers_over_a_loop() -> None:
    timeline = long_loop(1000)
    targets = matching_lines(timeline, "total += 1")
    assert targets == {("/virtual/loop.py", 3)}
    found = find_line(timeline, 10, targets)
    assert found is not None and found.index == 11
    back = find_line(timeline, 10, targets, forward=False)
    assert back is not None and back.index == 9
    marks = scan_marks(timeline, {("/virtual/loop.py", 2)})
    assert marks is not None and marks.breakpoints[:3] == (2, 4, 6) and marks.exceptions == ()


# -- the stack finder ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["replay_nested.py", "replay_basic.py"])
def test_stack_finder_agrees_with_the_timeline(name: str) -> None:
    timeline = reference_timeline(name)
    finder = StackFinder(timeline)
    for index in range(len(timeline)):
        assert finder.stack_at(index) == timeline.stack_at(index), f"step {index}"


def test_stack_finder_agrees_on_a_recording(bubble_trace: Path) -> None:
    timeline = RecordedTimeline(bubble_trace)
    finder = StackFinder(timeline)
    for index in range(len(timeline)):
        assert finder.stack_at(index) == timeline.stack_at(index), f"step {index}"


# -- snapshots -----------------------------------------------------------------------------------------------
def _inside_the_sort(app: RetroApp) -> Scenario:
    async def run_before(pilot: Pilot[int]) -> None:
        app.engine.add_breakpoint(f"{BUBBLE}:13")
        app.update_marks()
        goto_line(app.engine, 12, "bubble_sort", occurrence=4)
        await press(pilot, "n", "n")

    return run_before


@needs_snapshots
def test_snapshot_80x24(app: RetroApp, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app, terminal_size=(80, 24), run_before=_inside_the_sort(app))


@needs_snapshots
def test_snapshot_120x40(app: RetroApp, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app, terminal_size=(120, 40), run_before=_inside_the_sort(app))


@needs_snapshots
def test_snapshot_help_80x24(app: RetroApp, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"])


# -- the command line ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, message", [
    ("missing.py", "missing.py: no such file"),
    (".", "is a directory"),
    ("bad.rtrace", "bad.rtrace"),
    ("bad.rtrace extra", "arguments go with a SCRIPT"),
])
def test_cli_reports_bad_input_in_one_line(tmp_path: Path, run_retrograde: RunRetrograde,
                                           target: str, message: str) -> None:
    (tmp_path / "bad.rtrace").write_bytes(b"RTGTRACE" + b"\0garbage" * 4)
    result = run_retrograde(["tui", *target.split()], cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrograde: ") and message in lines[0]


def test_cli_records_a_script_with_arguments(tmp_path: Path) -> None:
    script = tmp_path / "argv.py"
    script.write_text("import sys\nwords = sys.argv[1:]\nprint(' '.join(words))\n")
    trace = tmp_path / "argv.rtrace"
    assert not cli.is_trace(str(script))
    cli.record(str(script), ["two", "words"], str(trace))
    assert cli.is_trace(str(trace))
    timeline = cli.open_timeline(str(trace))
    assert timeline.output_until(len(timeline) - 1) == "two words\n"


def test_cli_without_a_terminal_refuses_after_recording(tmp_path: Path,
                                                        run_retrograde: RunRetrograde) -> None:
    script = tmp_path / "hello.py"
    script.write_text("x = 1\n")
    result = run_retrograde(["tui", script], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "retrograde: the TUI needs a terminal (try `retrograde replay TRACE` for a line-based session)")
    assert os.listdir(tmp_path) == ["hello.py"]  # the temporary trace went with the session


def test_cli_subcommand_is_registered() -> None:
    from retrograde.cli import parser as _parser

    args = _parser().parse_args(["tui", "prog.py", "-v", "x"])
    assert args.handler is cli.run and args.target == "prog.py" and args.args == ["-v", "x"]
    assert sys.executable  # the recorder child runs under this interpreter
