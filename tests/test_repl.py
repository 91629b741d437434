"""`retrograde replay`'s command line: pdb's look and feel, reverse commands, messages not tracebacks."""

from __future__ import annotations

import io

import pytest
from replay_fixtures import DATA, FILE, reference_timeline, small_program

from replay.memory import ListTimeline
from replay.repl import PROMPT, exception_text, run_replay, short_repr
from replay.timeline import Value

NESTED = str(DATA / "replay_nested.py")


def session(commands: str, timeline: ListTimeline | None = None) -> list[str]:
    """Run the REPL on `;`-separated commands; the output of each (index 0: the start), prompts removed."""
    out = io.StringIO()
    script = io.StringIO(commands.replace(";", "\n") + "\n")
    status = run_replay(timeline or reference_timeline("replay_nested.py"), script, out, interactive=False)
    assert status == 0
    text = out.getvalue()
    assert "Traceback" not in text
    return [block.rstrip("\n") for block in text.split(PROMPT)]


def test_starts_at_the_first_line_in_pdb_format() -> None:
    start = session("q")[0]
    assert start == f"> {NESTED}(1)<module>()\n-> import sys"


def test_call_return_and_exception_stops_look_like_pdb() -> None:
    out = session("b square;c;rs;r;cl 1;r;b 29;c;n")
    assert out[2] == f"> {NESTED}(14)square()\n-> return x * x"
    assert out[3] == f"--Call--\n> {NESTED}(13)square()\n-> def square(x):"
    assert out[4] == out[2]  # return stops at the breakpoint on its way
    assert out[6] == f"--Return--\n> {NESTED}(14)square()->1\n-> return x * x"
    assert out[9] == f"KeyError: 1\n> {NESTED}(29)risky()\n-> raise KeyError(n)"


def test_reverse_commands_by_short_and_long_names() -> None:
    out = session("n;n;rn;reverse-next;n;reverse-step;rs")
    assert out[1].startswith(f"> {NESTED}(4)<module>()")
    assert out[2].startswith(f"> {NESTED}(13)<module>()")
    assert out[3].startswith(f"> {NESTED}(4)<module>()")
    assert out[4].startswith(f"> {NESTED}(1)<module>()")
    assert out[6].startswith(f"> {NESTED}(1)<module>()")
    assert out[7] == "At the start of the trace: nothing earlier to replay."


def test_past_the_end_restarts_as_pdb_does_and_the_start_keeps_the_position() -> None:
    out = session("last;s;last;n;last;c;first;rc;rs;rn;rr")
    restarted = f"The program finished and will be restarted\n> {NESTED}(1)<module>()\n-> import sys"
    assert out[2] == out[4] == out[6] == restarted
    assert all(block == "At the start of the trace: nothing earlier to replay." for block in out[8:12])


def test_continue_without_breakpoints_restarts_and_keeps_breakpoints() -> None:
    """pdb: `c` past the end says the program finished and stops at the first line; breakpoints stay
    (the expected blocks are live pdb's output for this script, program output left out)."""
    out = session("b 14;c;cl 1;c;c;tbreak 14;c;c;b 14;c;c;c")
    square = f"> {NESTED}(14)square()\n-> return x * x"
    restarted = f"The program finished and will be restarted\n> {NESTED}(1)<module>()\n-> import sys"
    assert out[2] == square
    assert out[4] == out[5] == restarted  # no breakpoint left: straight to the restart, every time
    assert out[7] == f"Deleted breakpoint 2 at {NESTED}:14\n" + square
    assert out[8] == restarted  # the temporary breakpoint is gone
    assert out[10] == out[11] == out[12] == square  # a new one stops at each call again


@pytest.mark.parametrize("answer, kept", [("y", False), ("yes", False), ("Y", False), ("n", True),
                                          ("", True), ("c", True)])
def test_clear_without_argument_asks_and_consumes_the_answer(answer: str, kept: bool) -> None:
    out = session(f"b 14;b 22;cl;{answer};b")
    assert out[3].startswith("Clear all breaks? ")
    deleted = f"Deleted breakpoint 1 at {NESTED}:14\nDeleted breakpoint 2 at {NESTED}:22"
    assert out[3] == "Clear all breaks? " + ("" if kept else deleted)
    # The answer line is consumed: the next block is the `b` listing, not the answer run as a command.
    assert ("No breakpoints." not in out[4]) == kept
    assert len(out) == 6


@pytest.mark.parametrize("command, message", [
    ("foo bar", "*** Unknown command or invalid syntax: 'foo bar'"),
    ("goto abc", "*** Bad step: abc"),
    ("goto 999999", "*** step 999999 is outside"),
    ("goto 200%", "*** 200% is outside"),
    ("until x", "*** Error in argument: 'x'"),
    ("until 1", '*** "until" line number is smaller than current line number'),
    ("u", "*** Oldest frame"),
    ("d", "*** Newest frame"),
    ("b nofile.py:3", "*** 'nofile.py' not found in the trace"),
    ("b 2", "*** Blank or comment"),
    ("b nosuch", "*** The specified object 'nosuch' is not a function"),
    ("b 22, x >", "*** invalid syntax"),
    ("condition 9 x", "*** Breakpoint number 9 out of range"),
    ("condition", "*** Breakpoint number expected"),
    ("ignore", "*** Usage: ignore bpnumber [count]"),
    ("ignore 1 x", "*** Invalid argument: 1 x"),
    ("disable x", "*** Invalid breakpoint number 'x'"),
    ("enable 4", "*** Breakpoint number 4 out of range"),
    ("cl 7", "*** Breakpoint number 7 out of range"),
    ("p", "*** Argument expected"),
    ("p nosuch", "*** name 'nosuch' is not defined"),
    ("p sys.path", "*** name 'sys' is not defined"),  # module objects are not recorded
    ("nosuch", "*** name 'nosuch' is not defined"),
    ("s now", "*** Invalid argument: now"),
    ("history 1x", "*** history needs a variable name"),
    ("watch", "*** an expression is required"),
    ("info nonsense", "*** Unknown info topic: nonsense"),
    ("output x", "*** Invalid line count: x"),
])
def test_bad_commands_give_one_line_messages(command: str, message: str) -> None:
    timeline = reference_timeline("replay_nested.py")
    out = session(f"n;{command}", timeline)
    assert len(out[2].splitlines()) == 1
    assert out[2].startswith(message)


def test_p_pp_display_and_args() -> None:
    out = session("b 22;c;p item * 10;pp {'a': [item] * 3};display total;n;n;n;n;a")
    assert out[3] == "10"
    assert out[4] == "{'a': [1, 1, 1]}"
    assert out[5] == "display total: 0"
    shown = "\n".join(out[6:10])
    assert "display total: 1  [old: 0]" in shown
    assert out[10] == "items = range(0, 7)\ntotal = 5\nitem = 2"
    assert session("b 22;c;p items.start")[3] == \
        "*** cannot read .start of range(0, 7): only its repr was recorded"


def test_where_up_down_and_list() -> None:
    out = session("b 14;c;w;u;l;ll;d")
    assert out[3].splitlines() == [
        f"  {NESTED}(52)<module>()", "-> total = walk(range(7))",
        f"  {NESTED}(22)walk()", "-> total += square(item)",
        f"> {NESTED}(14)square()", "-> return x * x",
    ]
    assert out[4] == f"> {NESTED}(22)walk()\n-> total += square(item)"
    listing = out[5].splitlines()
    assert listing[0] == " 17  \tdef walk(items):" and listing[5] == " 22  ->\t        total += square(item)"
    assert len(listing) == 11
    assert out[6].splitlines()[-1] == " 23  \t    return total"
    assert out[7] == f"> {NESTED}(14)square()\n-> return x * x"


def test_list_marks_breakpoints_and_continues() -> None:
    out = session("b 4;l;l")
    assert out[2].splitlines()[:4] == ["  1  ->\timport sys", "  2  \t", "  3  \t", "  4 B\tclass Counter:"]
    assert out[3].splitlines()[0].startswith(" 12  \t")


def test_breakpoint_commands_messages() -> None:
    out = session("b 22;tbreak walk;condition 1 item > 3;ignore 1 2;disable 1;enable 1;b;cl 2;condition 1")
    assert out[1] == f"Breakpoint 1 at {NESTED}:22"
    assert out[2] == f"Breakpoint 2 at {NESTED}:18"
    assert out[3] == "New condition set for breakpoint 1."
    assert out[4] == "Will ignore next 2 crossings of breakpoint 1."
    assert out[5] == f"Disabled breakpoint 1 at {NESTED}:22"
    assert out[6] == f"Enabled breakpoint 1 at {NESTED}:22"
    assert out[7].splitlines() == [
        "Num Type         Disp Enb   Where",
        f"1   breakpoint   keep yes  at {NESTED}:22",
        "\tstop only if item > 3",
        "\tignore next 2 hits",
        f"2   breakpoint   del  yes  at {NESTED}:18",
    ]
    assert out[8] == f"Deleted breakpoint 2 at {NESTED}:18"  # pdb says no more for a temporary one
    assert out[9] == "Breakpoint 1 is now unconditional."


def test_watch_history_catch_and_info() -> None:
    out = session("b 18;c;watch total;c;c;rc;history total;catch KeyError;disable 2;c;info")
    assert out[3] == "Watchpoint 2: total = ** raised name 'total' is not defined **"
    assert out[4].splitlines()[0] == "watchpoint 2: total: <name 'total' is not defined> -> 0"
    assert out[5].splitlines()[0] == "watchpoint 2: total: 0 -> 1"
    assert out[6].splitlines()[0] == "watchpoint 2: total: <name 'total' is not defined> -> 0"
    history = out[7].splitlines()
    assert len(history) == 5 and history[1].endswith("total: 0 -> 1")
    assert out[8] == "Catchpoint 3: KeyError"
    assert out[10].splitlines()[0] == "KeyError: 1"
    assert out[11].startswith("Step ") and "in risky" in out[11]


def test_condition_errors_stop_and_are_reported_once() -> None:
    out = session("b 22, nosuch > 1;b 23;c;first;c")
    assert out[3].splitlines()[0].startswith("*** Error in condition of breakpoint 1 (nosuch > 1)")
    assert out[3].splitlines()[1] == f"> {NESTED}(22)walk()"  # pdb stops where it cannot evaluate
    assert "Error" not in out[5] and out[5].startswith(f"> {NESTED}(22)walk()")


def test_goto_first_last_and_output() -> None:
    timeline = ListTimeline(
        list(small_program().steps(0, 10)), [small_program().locals_at(i) for i in range(10)],
        {FILE: small_program().source(FILE) or ""}, output=[(5, "hello\n"), (8, "bye\n")],
    )
    out = session("goto 6;output;goto 50%;last;output;output 1;first;output", timeline)
    assert out[1] == f"> {FILE}(3)f()\n-> return b"
    assert out[2] == "hello"
    assert out[3].startswith("--Call--") or out[3].startswith("> ")
    assert out[4] == f"--Return--\n> {FILE}(8)<module>()->None\n-> x = y * 2"
    assert out[5] == "hello\nbye"
    assert out[6] == "bye"
    assert out[8] == "(no output yet)"


def test_help_lists_commands_and_explains_them() -> None:
    out = session("help;help s;help reverse-next;h rc")
    for name in ("step", "next", "return", "continue", "until", "rs", "rn", "rr", "rc", "goto", "watch",
                 "history", "where", "display", "list", "ll", "info", "output", "tbreak", "condition"):
        assert name in out[1]
    assert out[2].startswith("s(tep)")
    assert out[3].startswith("rn | reverse-next")
    assert out[4].startswith("rc | reverse-continue")


def test_empty_line_repeats_the_last_command_and_eof_quits() -> None:
    out = session("n;;")
    assert out[1].startswith(f"> {NESTED}(4)")
    assert out[2].startswith(f"> {NESTED}(13)")
    assert out[3].startswith(f"> {NESTED}(17)")


def test_formatting_helpers() -> None:
    assert short_repr(Value(repr(list(range(20))), literal=True)) == "[0, 1, 2, 3, 4, 5, ...]"
    assert short_repr(Value("<function outer.<locals>.inner at 0x7f00deadbeef>")) == \
        "<function out...x7f00deadbeef>"  # as reprlib cuts it
    assert exception_text(Value("ValueError('bad value')")) == "ValueError: bad value"
    assert exception_text(Value("KeyError('k')")) == "KeyError: 'k'"
    assert exception_text(Value("StopIteration()")) == "StopIteration"
    assert exception_text(Value("OSError(2, 'No such file')")) == "OSError: (2, 'No such file')"
