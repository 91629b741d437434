"""The replay engine: test_bdb-style tables of (command, expected stop), breakpoints, watchpoints, queries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from replay_fixtures import DATA, FILE, build, reference_timeline, small_program

from replay.engine import (
    PDB_EVENT,
    BadArgument,
    BadExpression,
    Engine,
    EngineError,
    FrameError,
    NoSuchPoint,
    Stop,
)
from replay.expressions import EvalError, Opaque, parse_expression
from replay.memory import ListTimeline
from replay.timeline import ChunkSummary, Step, Timeline, Value

NESTED = str(DATA / "replay_nested.py")

Expected = tuple[str, tuple[str, int, str]]


def run_table(engine: Engine, table: list[Expected]) -> None:
    """Run each command and compare its stop's (event, line, func) with the table, reporting all at once."""
    actions: dict[str, Callable[[], Stop]] = {
        "s": engine.step, "n": engine.next, "r": engine.return_, "c": engine.continue_,
        "unt": engine.until, "rs": engine.reverse_step, "rn": engine.reverse_next,
        "rr": engine.reverse_return, "rc": engine.reverse_continue,
    }
    actual = []
    for command, _ in table:
        stop = actions[command]()
        actual.append((command, (stop.step.event, stop.step.line, stop.step.func)))
    assert actual == table


def nested() -> Engine:
    return Engine(reference_timeline("replay_nested.py"))


# -- stepping tables ----------------------------------------------------------------------------------------
def test_starts_at_the_first_line_like_pdb() -> None:
    engine = Engine(small_program())
    assert (engine.current.event, engine.current.line) == ("line", 1)
    assert engine.start == 1


def test_step_and_reverse_step_table() -> None:
    engine = Engine(small_program())
    run_table(engine, [
        ("s", ("line", 6, "<module>")),
        ("s", ("line", 7, "<module>")),
        ("s", ("call", 1, "f")),
        ("s", ("line", 2, "f")),
        ("s", ("line", 3, "f")),
        ("s", ("return", 3, "f")),
        ("s", ("line", 8, "<module>")),
        ("s", ("return", 8, "<module>")),
        ("rs", ("line", 8, "<module>")),
        ("rs", ("return", 3, "f")),
        ("rs", ("line", 3, "f")),
        ("rs", ("line", 2, "f")),
        ("rs", ("call", 1, "f")),
        ("rs", ("line", 7, "<module>")),
    ])


def test_next_skips_calls_and_return_steps_out() -> None:
    engine = Engine(small_program())
    run_table(engine, [
        ("n", ("line", 6, "<module>")),
        ("n", ("line", 7, "<module>")),
        ("n", ("line", 8, "<module>")),
        ("rn", ("line", 7, "<module>")),
        ("s", ("call", 1, "f")),
        ("n", ("line", 2, "f")),
        ("n", ("line", 3, "f")),
        ("n", ("return", 3, "f")),
        ("n", ("line", 8, "<module>")),  # next at a return continues as step: the caller's next event
        ("n", ("return", 8, "<module>")),
    ])


def test_return_and_reverse_return() -> None:
    engine = Engine(small_program())
    run_table(engine, [
        ("s", ("line", 6, "<module>")),
        ("s", ("line", 7, "<module>")),
        ("s", ("call", 1, "f")),
        ("s", ("line", 2, "f")),
        ("r", ("return", 3, "f")),
        ("rr", ("call", 1, "f")),
        ("rr", ("line", 7, "<module>")),  # at the call: back to the caller's line
        ("r", ("return", 8, "<module>")),
    ])


def test_ends_leave_the_position_unchanged_with_a_message() -> None:
    engine = Engine(small_program())
    stop = engine.reverse_step()
    assert (stop.reason, stop.moved, engine.position) == ("start", False, 1)
    assert "start of the trace" in stop.messages[-1]
    engine.last()
    for command in (engine.step, engine.next, engine.continue_, engine.return_, engine.until):
        stop = command()
        assert (stop.reason, stop.moved, engine.position) == ("end", False, len(engine.timeline) - 1)
        assert "end of the trace" in stop.messages[-1]


def test_continue_without_points_runs_to_the_end_and_reverse_to_the_start() -> None:
    engine = Engine(small_program())
    stop = engine.continue_()
    assert (stop.reason, stop.moved, stop.step.index) == ("end", True, 9)
    stop = engine.reverse_continue()
    assert (stop.reason, stop.moved, stop.step.index) == ("start", True, 1)


def test_breakpoint_in_loop_table() -> None:
    engine = nested()
    engine.add_breakpoint("22")
    run_table(engine, [
        ("c", ("line", 22, "walk")),
        ("s", ("call", 13, "square")),
        ("s", ("line", 14, "square")),
        ("s", ("return", 14, "square")),
        ("s", ("line", 19, "walk")),
        ("n", ("line", 20, "walk")),
        ("n", ("line", 22, "walk")),
        ("n", ("line", 19, "walk")),
        ("rn", ("line", 22, "walk")),
        ("rn", ("line", 20, "walk")),
        ("rn", ("line", 19, "walk")),
        ("rn", ("line", 22, "walk")),
        ("rc", ("line", 1, "<module>")),
        ("c", ("line", 22, "walk")),
        ("c", ("line", 22, "walk")),
        ("rc", ("line", 22, "walk")),
    ])


def test_next_stops_at_breakpoints_in_callees_and_at_exceptions() -> None:
    engine = nested()
    engine.add_breakpoint("risky")
    run_table(engine, [
        ("c", ("line", 27, "risky")),
        ("n", ("line", 28, "risky")),
        ("n", ("line", 30, "risky")),
        ("n", ("line", 34, "risky")),
        ("n", ("return", 34, "risky")),
        ("n", ("line", 53, "<module>")),
        ("n", ("line", 27, "risky")),  # the next call of risky hits the breakpoint
        ("n", ("line", 28, "risky")),
        ("n", ("line", 29, "risky")),
        ("n", ("exception", 29, "risky")),
        ("n", ("line", 31, "risky")),
        ("rn", ("exception", 29, "risky")),
        ("rn", ("line", 29, "risky")),
    ])


def test_unwinding_frames_show_as_returns_then_exceptions_in_callers() -> None:
    engine = nested()
    engine.add_breakpoint("44")
    run_table(engine, [
        ("c", ("line", 44, "deep")),
        ("c", ("line", 44, "deep")),
        ("c", ("line", 44, "deep")),
        ("c", ("line", 44, "deep")),
        ("n", ("line", 45, "deep")),
        ("n", ("exception", 45, "deep")),
        ("n", ("return", 45, "deep")),
        ("n", ("exception", 46, "deep")),
        ("r", ("return", 46, "deep")),
    ])
    assert engine.current.value is not None and engine.current.value.text == "None"


def test_generator_next_passes_its_yields() -> None:
    engine = nested()
    engine.add_breakpoint("39")
    run_table(engine, [
        ("c", ("line", 39, "countdown")),
        ("n", ("line", 40, "countdown")),  # the yield and the resume are not stops for next
        ("n", ("line", 38, "countdown")),
        ("rn", ("line", 40, "countdown")),
        ("rn", ("line", 39, "countdown")),
        ("s", ("yield", 39, "countdown")),
        ("s", ("resume", 39, "countdown")),  # list() resumes it at once: no line of <module> between
        ("s", ("line", 40, "countdown")),
        ("rn", ("line", 39, "countdown")),  # reverse-next passes the resume and the yield too
    ])


def test_until_runs_past_the_loop() -> None:
    engine = nested()
    engine.add_breakpoint("22")
    engine.continue_()
    engine.delete(1)
    engine.next()  # 19, the loop head
    stop = engine.until()
    assert (stop.step.line, stop.step.func) == (20, "walk")  # a line greater than 19 in this frame
    stop = engine.until(23)
    assert (stop.step.line, stop.step.func, stop.step.event) == (23, "walk", "line")
    with pytest.raises(BadArgument, match="smaller"):
        engine.until(10)


def test_next_after_up_runs_to_the_callers_next_line() -> None:
    engine = nested()
    engine.add_breakpoint("14")
    engine.continue_()
    assert engine.current.func == "square"
    assert engine.up().func == "walk"
    stop = engine.next()  # pdb: next applies to the selected frame
    assert (stop.step.func, stop.step.line) == ("walk", 19)
    assert engine.frame_index == 0


# -- frames ---------------------------------------------------------------------------------------------
def test_where_up_down_select_frames_without_moving() -> None:
    engine = nested()
    engine.add_breakpoint("14")
    engine.continue_()
    position = engine.position
    assert [s.func for s in engine.stack()] == ["<module>", "walk", "square"]
    assert engine.up().func == "walk"
    assert engine.up().func == "<module>"
    with pytest.raises(FrameError, match="Oldest"):
        engine.up()
    assert engine.down(5).func == "square"
    with pytest.raises(FrameError, match="Newest"):
        engine.down()
    assert engine.position == position
    engine.up()
    assert engine.evaluate("total") == 0  # evaluated in the selected frame


# -- breakpoints ----------------------------------------------------------------------------------------
def test_condition_and_ignore_counts() -> None:
    engine = nested()
    point = engine.add_breakpoint("22", "item > 3")
    stop = engine.continue_()
    assert engine.evaluate("item") == 4
    assert stop.number == point.number
    engine.first()
    engine.set_condition(point.number, None)
    engine.set_ignore(point.number, 2)
    engine.continue_()
    assert engine.evaluate("item") == 4  # items 1 and 2 were ignored
    assert point.ignore == 0


def test_condition_error_stops_as_bdb_does_and_is_reported_once() -> None:
    """bdb's effective(): a condition that cannot be evaluated stops, whatever the ignore count, and a
    temporary breakpoint stays."""
    engine = nested()
    engine.add_breakpoint("22", "missing > 1", temporary=True)
    engine.set_ignore(1, 5)
    engine.add_breakpoint("23")
    stop = engine.continue_()
    assert (stop.reason, stop.number, stop.step.line) == ("breakpoint", 1, 22)
    errors = [m for m in stop.messages if "Error in condition" in m]
    assert len(errors) == 1 and "missing" in errors[0] and "stopping" in errors[0]
    assert 1 in engine.points and engine.points[1].ignore == 5  # kept, ignore count untouched
    second = engine.continue_()
    assert (second.number, second.step.line) == (1, 22) and second.step.index > stop.step.index
    assert not any("Error" in m for m in second.messages)  # reported once


def test_bad_conditions_are_refused_when_set() -> None:
    engine = nested()
    with pytest.raises(BadExpression):
        engine.add_breakpoint("22", "item >")
    with pytest.raises(BadExpression):
        engine.add_breakpoint("22", "[x for x in items]")


def test_tbreak_is_deleted_when_hit() -> None:
    engine = nested()
    point = engine.add_breakpoint("22", temporary=True)
    stop = engine.continue_()
    assert stop.reason == "breakpoint" and any("Deleted" in m for m in stop.messages)
    assert point.number not in engine.points
    assert engine.continue_().reason == "end"


def test_disable_enable_and_clear() -> None:
    engine = nested()
    point = engine.add_breakpoint("22")
    engine.set_enabled(point.number, False)
    assert engine.continue_().reason == "end"
    engine.set_enabled(point.number, True)
    assert engine.reverse_continue().reason == "breakpoint"
    engine.delete_at(NESTED, 22)
    assert engine.points == {}
    with pytest.raises(NoSuchPoint):
        engine.delete(point.number)
    with pytest.raises(NoSuchPoint):
        engine.set_enabled(99, True)


@pytest.mark.parametrize("spec, message", [
    ("24", "Blank or comment"),
    ("999", "End of file"),
    ("nosuchfile.py:3", "not found"),
    ("replay_nested.py:x", "Bad lineno"),
    ("no_such_function", "not a function"),
    ("", "location is required"),
])
def test_bad_breakpoint_locations(spec: str, message: str) -> None:
    with pytest.raises(BadArgument, match=message):
        nested().add_breakpoint(spec)


def test_function_breakpoints_resolve_like_pdb() -> None:
    engine = nested()
    point = engine.add_breakpoint("walk")
    assert (point.file, point.line, point.funcname) == (NESTED, 18, "walk")
    assert engine.add_breakpoint("replay_nested.py:46").line == 46
    with pytest.raises(BadArgument):
        engine.add_breakpoint("bump")  # a method pdb cannot name from module code before it exists


def test_catchpoint_stops_at_exceptions_both_ways() -> None:
    engine = nested()
    engine.add_catchpoint("RuntimeError")
    first = engine.continue_()
    assert first.reason == "catchpoint" and first.step.event == "exception" and first.step.func == "deep"
    second = engine.continue_()
    assert second.step.index > first.step.index
    assert engine.reverse_continue().step.index == first.step.index


# -- watchpoints ----------------------------------------------------------------------------------------
def test_watchpoint_stops_where_the_value_changes_in_both_directions() -> None:
    engine = nested()
    engine.add_breakpoint("18")
    engine.continue_()
    engine.delete(1)
    point = engine.add_watchpoint("total")
    seen = []
    while (stop := engine.continue_()).reason == "watchpoint":
        assert stop.number == point.number
        seen.append((stop.step.line, engine.evaluate("total"), stop.messages[-1]))
    assert [value for _, value, _ in seen] == [0, 1, 5, 21, 46]
    assert seen[1][2] == "watchpoint 2: total: 0 -> 1"
    assert stop.reason == "end"
    back = []
    while (stop := engine.reverse_continue()).reason == "watchpoint":
        back.append(engine.evaluate("total"))
    assert back == [46, 21, 5, 1, 0]


def test_watchpoint_on_an_expression_and_module_names() -> None:
    engine = nested()
    engine.add_watchpoint("len(signs) if signs else 0")
    values = []
    while engine.continue_().reason == "watchpoint":
        values.append(engine.evaluate("signs"))
    assert values == [[0, -1, 2, -3]]


# -- values and queries ---------------------------------------------------------------------------------
def test_print_expressions_over_recorded_values() -> None:
    engine = nested()
    engine.add_breakpoint("22")
    engine.continue_()
    assert engine.evaluate("item * 10 + total") == 10
    assert engine.evaluate("[item, total][0]") == 1
    assert engine.evaluate("sorted({3, 1, 2})[-1]") == 3
    assert isinstance(engine.evaluate("items"), Opaque)
    assert engine.evaluate("repr(items)") == "range(0, 7)"
    with pytest.raises(BadExpression, match="recorded only as text"):
        engine.evaluate("items + 1")
    with pytest.raises(BadExpression, match="not defined"):
        engine.evaluate("nope")
    with pytest.raises(BadExpression, match="ZeroDivisionError"):
        engine.evaluate("item / 0")


def test_history_lists_every_change_with_values() -> None:
    engine = nested()
    engine.add_breakpoint("22")
    engine.continue_()
    changes = engine.history("total")
    assert [(c.old.text if c.old else None, c.new.text if c.new else None) for c in changes] == [
        (None, "0"), ("0", "1"), ("1", "5"), ("5", "21"), ("21", "46"),
    ]
    assert all(c.step.func == "walk" for c in changes)


def test_goto_and_percent() -> None:
    engine = nested()
    total = len(engine.timeline)
    assert engine.goto(0).step.index == 0
    assert engine.goto_percent(100).step.index == total - 1
    assert engine.goto_percent(50).step.index == round((total - 1) / 2)
    with pytest.raises(BadArgument):
        engine.goto(total)
    with pytest.raises(BadArgument):
        engine.goto_percent(101)
    assert engine.first().step.index == engine.start


def test_results_do_not_depend_on_chunking() -> None:
    """Chunk skipping is an optimisation only: any chunk size gives the same stops."""
    commands = "n n s s s c n r rn rr rc c c rs rs c n n n rc rn rn rr r".split()  # noqa: SIM905
    results = []
    for size in (1, 3, 16, 100_000):
        timeline = reference_timeline("replay_nested.py", chunk_size=size)
        engine = Engine(timeline)
        engine.add_breakpoint("22", "item % 2")
        engine.add_breakpoint("45")
        engine.add_watchpoint("counter")
        actions = {"s": engine.step, "n": engine.next, "r": engine.return_, "c": engine.continue_,
                   "rs": engine.reverse_step, "rn": engine.reverse_next, "rr": engine.reverse_return,
                   "rc": engine.reverse_continue}
        results.append([(actions[c]().step.index, engine.position) for c in commands])
    assert all(r == results[0] for r in results[1:])


# -- the in-memory timeline -------------------------------------------------------------------------------
def export_line(step: int, event: str, line: int, func: str, depth: int, value: str | None = None,
                **names: str) -> str:
    return json.dumps({"step": step, "event": event, "file": FILE, "line": line, "func": func,
                       "depth": depth, "thread": 0, "locals": names, "value": value})


def test_list_timeline_from_export_builds_frames_stacks_and_summaries() -> None:
    lines = [
        export_line(0, "call", 0, "<module>", 0),
        export_line(1, "line", 6, "<module>", 0),
        export_line(2, "line", 7, "<module>", 0, x="1"),
        export_line(3, "call", 1, "f", 1, a="1"),
        export_line(4, "line", 2, "f", 1, a="1"),
        export_line(5, "return", 3, "f", 1, "2", a="1", b="2"),
        export_line(6, "line", 8, "<module>", 0, x="1", y="2", obj="<object object at 0x1>"),
    ]
    timeline = ListTimeline.from_export(lines, {FILE: "x = 1\n"}, output=[(5, "hi\n")], chunk_size=3)
    assert isinstance(timeline, Timeline)
    assert [s.frame_id for s in timeline.steps(0, 7)] == [0, 0, 0, 1, 1, 1, 0]
    assert [s.index for s in timeline.stack_at(4)] == [2, 4]
    assert timeline.locals_at(6)["y"] == Value("2", literal=True)
    assert timeline.locals_at(6)["obj"].literal is False
    assert timeline.step(5).value == Value("2", literal=True)
    assert timeline.output_until(5) == "hi\n" and timeline.output_until(4) == ""
    summaries = timeline.summaries()
    assert [(c.start, c.stop) for c in summaries] == [(0, 3), (3, 6), (6, 7)]
    assert summaries[1].min_depth == 1 and "b" in summaries[1].changed and "x" not in summaries[1].changed
    with pytest.raises(IndexError):
        timeline.step(7)


def test_list_timeline_relabels_settrace_generator_events() -> None:
    timeline = reference_timeline("replay_nested.py")
    gens = [s for s in timeline.steps(0, len(timeline)) if s.func == "countdown"]
    assert {s.event for s in gens} >= {"call", "yield", "resume", "return"}
    assert len({s.frame_id for s in gens}) == 1  # one generator, one frame across its resumes


def test_empty_timeline_is_an_error() -> None:
    with pytest.raises(EngineError):
        Engine(build([]))


# -- the safe evaluator ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("a + b * 2", 7),
    ("a < b <= 3 and not c", True),
    ("d['k'][1:]", [2, 3]),
    ("len(d) + max(d['k'])", 4),
    ("s.upper().startswith('HE')", True),
    ("f'{a}-{s!r}'", "1-'hello'"),
    ("a if c else b", 3),
    ("obj == obj", True),
    ("repr(obj)", "<Thing at 0x1>"),
    ("None is None", True),
])
def test_safe_evaluator_values(text: str, expected: object) -> None:
    names = {"a": Value("1", True), "b": Value("3", True), "c": Value("False", True),
             "d": Value("{'k': [1, 2, 3]}", True), "s": Value("'hello'", True),
             "obj": Value("<Thing at 0x1>", False)}
    assert parse_expression(text).evaluate(names) == expected


@pytest.mark.parametrize("text", [
    "obj.attr", "a.__class__", "__import__('os')", "open('x')", "getattr(a, 'real')", "2 ** 10 ** 9",
    "'x' * 10 ** 9", "(lambda: 1)()", "[i for i in d]", "obj + 1", "s.format(a)", "eval('1')",
])
def test_safe_evaluator_refuses(text: str) -> None:
    names = {"a": Value("1", True), "d": Value("{}", True), "s": Value("'x'", True),
             "obj": Value("<Thing>", False)}
    with pytest.raises(EvalError):
        parse_expression(text).evaluate(names)


def test_recorded_and_reference_timelines_stop_alike(tmp_path: Path) -> None:
    """The same commands over `retrograde record`'s trace and the settrace reference stop alike."""
    recorded = pytest.importorskip("replay.recorded")
    script = DATA / "replay_nested.py"
    trace = tmp_path / "nested.rtrace"
    subprocess.run([sys.executable, "-m", "tracer", "record", "-o", str(trace), str(script)],
                   capture_output=True, text=True, timeout=60, cwd=str(DATA), check=True)
    commands = "n n s s s c n r rn rr rc c c rs rs c n n n rc rn rn rr r c c c rc rc".split()  # noqa: SIM905
    results = []
    for timeline in (recorded.RecordedTimeline(trace), reference_timeline("replay_nested.py")):
        engine = Engine(timeline)
        engine.add_breakpoint("22", "item % 2")
        engine.add_breakpoint("45")
        engine.add_watchpoint("counter")
        actions = {"s": engine.step, "n": engine.next, "r": engine.return_, "c": engine.continue_,
                   "rs": engine.reverse_step, "rn": engine.reverse_next, "rr": engine.reverse_return,
                   "rc": engine.reverse_continue}
        stops = []
        for command in commands:
            stop = actions[command]()
            stops.append((command, PDB_EVENT[stop.step.event], stop.step.line, stop.step.func, stop.reason))
        results.append(stops)
    assert results[0] == results[1]


class GrowingTimeline(ListTimeline):
    """Reveals its steps a few at a time, as a predicted (neural) timeline does when navigated."""

    def __init__(self, full: ListTimeline, shown: int) -> None:
        super().__init__(list(full.steps(0, len(full))), [full.locals_at(i) for i in range(len(full))],
                         {FILE: full.source(FILE) or ""}, chunk_size=4)
        self.total = len(full)
        self.shown = shown

    def __len__(self) -> int:
        return self.shown

    @property
    def complete(self) -> bool:
        return self.shown >= self.total

    def step(self, index: int) -> Step:
        if index >= self.shown and index < self.total:
            self.shown = min(self.total, index + 2)
        if index >= self.shown:
            raise IndexError(index)
        return super().step(index)

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        return super().steps(start, min(stop, self.shown))

    def summaries(self) -> list[ChunkSummary]:
        return [c for c in super().summaries() if c.start < self.shown]


def test_engine_grows_a_predicted_timeline() -> None:
    timeline = GrowingTimeline(small_program(), shown=3)
    engine = Engine(timeline)
    engine.add_breakpoint("8")
    stop = engine.continue_()
    assert (stop.reason, stop.step.line, stop.step.func) == ("breakpoint", 8, "<module>")
    assert engine.step().step.event == "return"
    assert engine.step().reason == "end" and timeline.complete


def test_stepping_stays_on_the_thread_while_breakpoints_fire_on_any() -> None:
    def row(event: str, line: int, func: str, depth: int, frame: int, thread: int) -> Step:
        return Step(0, event, FILE, line, func, depth, thread, frame)

    rows = [
        row("call", 0, "<module>", 0, 0, 0), row("line", 1, "<module>", 0, 0, 0),
        row("call", 1, "f", 0, 1, 1), row("line", 2, "f", 0, 1, 1),
        row("line", 6, "<module>", 0, 0, 0),
        row("line", 3, "f", 0, 1, 1), row("return", 3, "f", 0, 1, 1),
        row("line", 7, "<module>", 0, 0, 0), row("return", 7, "<module>", 0, 0, 0),
    ]
    steps = [Step(i, s.event, s.file, s.line, s.func, s.depth, s.thread, s.frame_id,
                  Value("None", True) if s.event == "return" else None) for i, s in enumerate(rows)]
    timeline = ListTimeline(steps, [{} for _ in steps], {FILE: SOURCE_WITH_THREAD}, chunk_size=2)
    engine = Engine(timeline)
    assert [engine.step().step.index for _ in range(3)] == [4, 7, 8]  # thread 0 only
    assert [engine.reverse_step().step.index for _ in range(3)] == [7, 4, 1]
    engine.add_breakpoint("3")
    stop = engine.continue_()
    assert (stop.reason, stop.step.thread, stop.step.line) == ("breakpoint", 1, 3)
    assert engine.next().step.index == 6  # next continues on the breakpoint's thread
    assert engine.reverse_continue().step.index == 5


SOURCE_WITH_THREAD = "a = 1\nb = 2\nc = 3\nd = 4\ne = 5\nf = 6\ng = 7\n"
