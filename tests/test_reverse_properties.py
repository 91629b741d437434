"""Reverse commands retrace forward ones: properties over random positions and command sequences."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_fixtures import reference_timeline

from replay.engine import PDB_EVENT, RETURNS, Engine, Stop
from replay.memory import ListTimeline

SCRIPTS = ["replay_basic.py", "replay_nested.py"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def stoppable(engine: Engine, timeline: ListTimeline) -> list[int]:
    """Steps where pdb can stop: settrace events of the main thread from the first stop on."""
    return [s.index for s in timeline.steps(engine.start, len(timeline))
            if s.event in PDB_EVENT and s.thread == 0 and not engine._internal_stop_iteration(s)]


def fresh(name: str) -> tuple[Engine, ListTimeline]:
    timeline = reference_timeline(name)
    return Engine(timeline), timeline


def moves(stops: list[Stop]) -> list[int]:
    return [stop.step.index for stop in stops]


@pytest.mark.parametrize("name", SCRIPTS)
@SETTINGS
@given(data=st.data())
def test_step_then_reverse_step_retraces(name: str, data: st.DataObject) -> None:
    engine, timeline = fresh(name)
    origin = data.draw(st.sampled_from(stoppable(engine, timeline)), label="origin")
    count = data.draw(st.integers(1, 25), label="count")
    engine.goto(origin)
    path = [origin]
    for _ in range(count):
        stop = engine.step()
        if not stop.moved:
            break
        path.append(stop.step.index)
    back = [engine.reverse_step().step.index for _ in path[1:]]
    assert back == path[-2::-1]


@pytest.mark.parametrize("name", SCRIPTS)
@SETTINGS
@given(data=st.data())
def test_next_then_reverse_next_retraces_within_a_frame(name: str, data: st.DataObject) -> None:
    engine, timeline = fresh(name)
    candidates = [i for i in stoppable(engine, timeline) if timeline.step(i).event in ("line", "call")]
    origin = data.draw(st.sampled_from(candidates), label="origin")
    count = data.draw(st.integers(1, 20), label="count")
    engine.goto(origin)
    frame = timeline.step(origin).frame_id
    path = [origin]
    for _ in range(count):
        stop = engine.next()
        if not stop.moved or stop.step.frame_id != frame:
            break  # left the frame: past a return, next behaves as step (pdb), which rn does not mirror
        path.append(stop.step.index)
        if stop.step.event in RETURNS:
            break
    engine.goto(path[-1])
    back = [engine.reverse_next().step.index for _ in path[1:]]
    assert back == path[-2::-1]


@pytest.mark.parametrize("name", SCRIPTS)
@SETTINGS
@given(data=st.data())
def test_reverse_continue_returns_to_previous_breakpoint_hit(name: str, data: st.DataObject) -> None:
    engine, timeline = fresh(name)
    main = timeline.step(0).file
    lines = sorted({s.line for s in timeline.steps(0, len(timeline)) if s.event == "line" and s.file == main})
    chosen = data.draw(st.lists(st.sampled_from(lines), min_size=1, max_size=4, unique=True), label="lines")
    for line in chosen:
        engine.add_breakpoint(str(line))
    hits = []
    for _ in range(data.draw(st.integers(1, 12), label="count")):
        stop = engine.continue_()
        if stop.reason != "breakpoint":
            break
        hits.append(stop.step.index)
    if hits:
        engine.goto(hits[-1])
    back = []
    for _ in hits[1:]:
        stop = engine.reverse_continue()
        assert stop.reason == "breakpoint"
        back.append(stop.step.index)
    assert back == hits[-2::-1]
    # Every hit is a line step at one of the chosen lines.
    assert all(timeline.step(i).line in chosen for i in hits)


@pytest.mark.parametrize("name", SCRIPTS)
@SETTINGS
@given(data=st.data())
def test_goto_then_step_and_reverse_step_are_inverse(name: str, data: st.DataObject) -> None:
    engine, timeline = fresh(name)
    points = stoppable(engine, timeline)
    origin = data.draw(st.sampled_from(points[1:-1]), label="origin")
    engine.goto(origin)
    forward = engine.step()
    assert engine.reverse_step().step.index == origin
    engine.goto(origin)
    backward = engine.reverse_step()
    assert engine.step().step.index == origin
    assert backward.step.index < origin < forward.step.index


@SETTINGS
@given(data=st.data())
def test_watch_hits_retrace_backward(data: st.DataObject) -> None:
    engine, _ = fresh("replay_nested.py")
    engine.add_watchpoint(data.draw(st.sampled_from(["k", "total", "counter", "signs", "k * 2 + 1"])))
    forward = []
    for _ in range(data.draw(st.integers(1, 8))):
        stop = engine.continue_()
        if stop.reason != "watchpoint":
            break
        forward.append(stop.step.index)
    if forward:
        engine.goto(forward[-1])
    back = [engine.reverse_continue().step.index for _ in forward[1:]]
    assert back == forward[-2::-1]


@SETTINGS
@given(commands=st.lists(st.sampled_from(["s", "n", "r", "c", "unt", "rs", "rn", "rr", "rc"]), max_size=30))
def test_any_command_sequence_keeps_a_valid_position(commands: list[str]) -> None:
    engine, _ = fresh("replay_nested.py")
    engine.add_breakpoint("22")
    actions = {
        "s": engine.step, "n": engine.next, "r": engine.return_, "c": engine.continue_, "unt": engine.until,
        "rs": engine.reverse_step, "rn": engine.reverse_next, "rr": engine.reverse_return,
        "rc": engine.reverse_continue,
    }
    for command in commands:
        before = engine.position
        stop = actions[command]()
        assert stop.step.index == engine.position
        assert engine.start <= engine.position <= engine.end
        if not stop.moved:
            assert engine.position == before
            assert stop.reason in ("start", "end")
        elif command.startswith("r") and command != "r":
            assert engine.position < before
        else:
            assert engine.position > before
