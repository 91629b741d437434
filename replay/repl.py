"""`retrograde replay`: a pdb-style command line over the replay engine, forward and backward."""

from __future__ import annotations

import ast
import cmd
import importlib
import os
import pprint
from collections.abc import Callable
from types import ModuleType
from typing import TextIO

from replay.breakpoints import Breakpoint, Catchpoint, Watchpoint
from replay.engine import BadArgument, Engine, EngineError, Stop, StopReason
from replay.expressions import Opaque
from replay.session import (
    NO_FORKER,
    Forker,
    ForkError,
    Session,
    exception_text,
    parse_changes,
    short_repr,
    value_repr,
)
from replay.source import co_name
from replay.timeline import Step, Timeline, TimelineError

PROMPT = "(retro) "
WHATIF_PROMPT = "(retro whatif) "  # the prompt while a what-if (a predicted timeline) is being debugged
HISTORY_FILE = "~/.retrograde_history"  # command history kept between interactive sessions

# gdb-style long names of the reverse commands (cmd.Cmd cannot dispatch on a hyphen).
_HYPHENATED = {
    "reverse-step": "rs", "reverse-next": "rn", "reverse-return": "rr", "reverse-finish": "rr",
    "reverse-continue": "rc",
}


class ReplayShell(cmd.Cmd):
    """The command loop over a Session; every command is a do_<name> method whose docstring is its help."""

    prompt = PROMPT
    doc_header = "Documented commands (type help <topic>):"

    def __init__(self, timeline: Timeline, stdin: TextIO, stdout: TextIO, interactive: bool,
                 session: Session | None = None, forker: Forker | None = None) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.use_rawinput = interactive
        # A front end that owns a session (the TUI) passes it: its command line then shares every state.
        self.session = session if session is not None else Session(timeline, restart=True)
        self.engine: Engine = self.session.engine
        self.displays = self.session.displays
        self.list_next: int | None = None  # where a bare `list` continues
        self.lastcmd = ""
        # `whatif`: the front end's forker (None: no model part), how a fork's session is made (the TUI
        # wraps its timeline), and the recording's session while a what-if is debugged (None otherwise).
        self.forker = forker
        self.session_for: Callable[[Timeline], Session] | None = None
        self.recording: Session | None = None

    @property
    def forked(self) -> bool:
        """Whether the commands are stepping a what-if (a predicted timeline), not the recording."""
        return self.recording is not None

    def _use(self, session: Session) -> None:
        self.session = session
        self.engine = session.engine
        self.displays = session.displays
        self.list_next = None
        self.prompt = WHATIF_PROMPT if self.forked else PROMPT

    # -- output -------------------------------------------------------------------------------------------
    def message(self, text: str) -> None:
        print(text, file=self.stdout)

    def error(self, text: str) -> None:
        print("***", text, file=self.stdout)

    def source_line(self, step: Step) -> str:
        return self.session.source_line(step)

    def format_entry(self, step: Step, prefix: str = "\n-> ") -> str:
        return self.session.format_entry(step, prefix)

    def print_location(self) -> None:
        for line in self.session.location_lines():
            self.message(line)

    def show_stop(self, stop: Stop) -> None:
        self.list_next = None
        for line in self.session.stop_lines(stop):
            self.message(line)
        if self.forked and stop.reason == StopReason.END:
            self.message(self.fork_end_text())

    def fork_end_text(self) -> str:
        """What the end of a what-if means: the frame returned, or why the prediction stopped early."""
        stopped = getattr(self.engine.timeline, "stopped", None)
        why = f"the prediction stopped: {stopped}" if isinstance(stopped, str) and stopped else \
            "the forked frame returns here"
        return f"End of the what-if ({why}); `back` returns to the recording."

    def show_displays(self, frame: Step) -> None:
        for line in self.session.display_changes(frame):
            self.message(line)

    def value_text(self, expression: str) -> str:
        return self.session.value_text(expression)

    # -- the loop -----------------------------------------------------------------------------------------
    def preloop(self) -> None:
        for line in self.session.opening_lines():
            self.message(line)
        self.show_stop(Stop(self.engine.current, "step"))

    def precmd(self, line: str) -> str:
        word, _, rest = line.strip().partition(" ")
        if word in _HYPHENATED:
            return f"{_HYPHENATED[word]} {rest}".strip()
        return line

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except EngineError as exc:
            self.error(str(exc))
        except TimelineError as exc:
            self.error(f"the trace cannot be read here: {exc}")
        except Exception as exc:  # a bug must not end the session with a traceback
            self.error(f"internal error: {type(exc).__name__}: {exc}")
        return False

    def default(self, line: str) -> None:
        if line.strip() == "EOF":
            return
        text = line.strip()
        if text.startswith("!"):
            text = text[1:]
        try:
            ast.parse(text, mode="eval")
        except SyntaxError:
            self.error(f"Unknown command or invalid syntax: {line.strip()!r} (type help for the commands)")
            return
        self.message(value_repr(self.engine.evaluate(text)))

    def emptyline(self) -> bool:
        # pdb repeats the last command on an empty line.
        return self.onecmd(self.lastcmd) if self.lastcmd else False

    def do_EOF(self, arg: str) -> bool:
        """Quit at the end of input."""
        if self.use_rawinput:
            self.message("")
        return True

    def _move(self, arg: str, action: Callable[[], Stop]) -> None:
        if arg.strip():
            raise BadArgument(f"Invalid argument: {arg.strip()}")
        self.show_stop(action())

    def _forward(self, arg: str, action: Callable[[], Stop]) -> None:
        """A forward command, with pdb's restart past the end of the program."""
        self._move(arg, lambda: self.session.forward(action))

    # -- forward ------------------------------------------------------------------------------------------
    def do_step(self, arg: str) -> None:
        """s(tep)
        Run to the next event at any depth: the next line, a call (--Call--), a return (--Return--) or an
        exception."""
        self._forward(arg, self.engine.step)

    do_s = do_step

    def do_next(self, arg: str) -> None:
        """n(ext)
        Run to the next line of the current function (calls run through), or to its return."""
        self._forward(arg, self.engine.next)

    do_n = do_next

    def do_return(self, arg: str) -> None:
        """r(eturn)
        Run until the current function returns (stops at its --Return--)."""
        self._forward(arg, self.engine.return_)

    do_r = do_return

    def do_continue(self, arg: str) -> None:
        """c(ont(inue))
        Run to the next breakpoint, watchpoint or catchpoint hit. Else, if the program crashed, stop at
        the uncaught exception (pdb's post-mortem); if it finished, restart at the first line as pdb does
        (breakpoints are kept)."""
        self._forward(arg, self.engine.continue_)

    do_c = do_cont = do_continue

    def do_until(self, arg: str) -> None:
        """unt(il) [lineno]
        Without argument, run until a line greater than the current one is reached in this frame; with a
        line number, until a line greater than or equal to it. Either way, stop when the frame returns."""
        line = None
        if arg.strip():
            try:
                line = int(arg)
            except ValueError:
                raise BadArgument(f"Error in argument: {arg.strip()!r}") from None
        self.engine.check_until(line)  # refused before anything moves, even at the post-mortem stop
        self.show_stop(self.session.forward(lambda: self.engine.until(line)))

    do_unt = do_until

    # -- backward -----------------------------------------------------------------------------------------
    def do_rs(self, arg: str) -> None:
        """rs | reverse-step
        Back to the previous event at any depth: exactly retraces step."""
        self._move(arg, self.engine.reverse_step)

    def do_rn(self, arg: str) -> None:
        """rn | reverse-next
        Back to the previous line of the current function; calls in between are un-run without stopping."""
        self._move(arg, self.engine.reverse_next)

    def do_rr(self, arg: str) -> None:
        """rr | reverse-return (reverse-finish)
        Back to the call of the current function (at its call: back to the caller's line)."""
        self._move(arg, self.engine.reverse_return)

    def do_rc(self, arg: str) -> None:
        """rc | reverse-continue
        Back to the previous breakpoint, watchpoint or catchpoint hit, else to the start of the trace."""
        self._move(arg, self.engine.reverse_continue)

    # -- jumps --------------------------------------------------------------------------------------------
    def do_goto(self, arg: str) -> None:
        """goto N | goto P%
        Go to step N (0 is the first recorded step) or to P percent of the way through the trace."""
        if not arg.strip():
            raise BadArgument("goto needs a step number or a percentage")
        self.show_stop(self.engine.goto_text(arg))

    def do_crash(self, arg: str) -> None:
        """crash | pm
        Go to where the program crashed: the uncaught exception's raise site, as pdb's post-mortem shows it
        (`w` lists the frames it unwound, `u`/`d` move through them, reverse commands go back from there)."""
        self._move(arg, self.engine.crash_stop)

    do_pm = do_crash

    def do_first(self, arg: str) -> None:
        """first
        Go to the first stop (the script's first line, where pdb starts)."""
        self._move(arg, self.engine.first)

    def do_last(self, arg: str) -> None:
        """last
        Go to the last recorded step."""
        self._move(arg, self.engine.last)

    # -- breakpoints --------------------------------------------------------------------------------------
    def do_break(self, arg: str, temporary: bool = False) -> None:
        """b(reak) [ ([filename:]lineno | function) [, condition] ]
        Without argument, list all breakpoints, watchpoints and catchpoints. With a line number, set a
        breakpoint at that line of the current file (or of filename); with a function name, at the first
        line of that function. A condition, evaluated over the recorded values, must be true for the
        breakpoint to stop; one that cannot be evaluated is reported once and stops, as pdb's does."""
        if not arg.strip():
            self.list_points()
            return
        location, comma, condition = arg.partition(",")
        point = self.engine.add_breakpoint(location, condition if comma else None, temporary)
        self.message(f"Breakpoint {point.number} at {point.file}:{point.line}")

    do_b = do_break

    def do_tbreak(self, arg: str) -> None:
        """tbreak [ ([filename:]lineno | function) [, condition] ]
        Same arguments as break, but the breakpoint is deleted when first hit."""
        if not arg.strip():
            raise BadArgument("tbreak needs a location")
        self.do_break(arg, temporary=True)

    def ask(self, question: str) -> str:
        """A line of answer from the command input, as pdb's input() takes it ("" at end of input)."""
        if self.use_rawinput:
            try:
                return input(question)
            except EOFError:
                return ""
        self.stdout.write(question)
        self.stdout.flush()
        return self.stdin.readline()

    def _numbers(self, arg: str) -> list[int]:
        numbers = []
        for word in arg.split():
            try:
                numbers.append(int(word))
            except ValueError:
                self.error(f"Invalid breakpoint number {word!r}")
        return numbers

    def do_clear(self, arg: str) -> None:
        """cl(ear) [filename:lineno | bpnumber ...]
        Delete breakpoints by number, or all breakpoints at a file:line. Without argument, ask
        `Clear all breaks?` and delete them all (watchpoints and catchpoints too) on y or yes."""
        text = arg.strip()
        if not text:
            if self.ask("Clear all breaks? ").strip().lower() in ("y", "yes"):
                for number in list(self.engine.points):
                    self.message(f"Deleted {self.engine.delete(number).describe()}")
            return
        if ":" in text:
            file_text, _, line_text = text.rpartition(":")
            file, line, _ = self.engine.resolve_location(f"{file_text}:{line_text}")
            for point in self.engine.delete_at(file, line):
                self.message(f"Deleted {point.describe()}")
            return
        for number in self._numbers(text):
            try:
                self.message(f"Deleted {self.engine.delete(number).describe()}")
            except EngineError as exc:
                self.error(str(exc))

    do_cl = do_clear

    def do_disable(self, arg: str) -> None:
        """disable bpnumber [bpnumber ...]
        Disable breakpoints (or watchpoints, catchpoints): they stay listed but do not stop."""
        self._enable(arg, False)

    def do_enable(self, arg: str) -> None:
        """enable bpnumber [bpnumber ...]
        Enable breakpoints (or watchpoints, catchpoints) again."""
        self._enable(arg, True)

    def _enable(self, arg: str, enabled: bool) -> None:
        if not arg.strip():
            raise BadArgument("Breakpoint number expected")
        for number in self._numbers(arg):
            try:
                point = self.engine.set_enabled(number, enabled)
            except EngineError as exc:
                self.error(str(exc))
            else:
                self.message(f"{'Enabled' if enabled else 'Disabled'} {point.describe()}")

    def do_condition(self, arg: str) -> None:
        """condition bpnumber [condition]
        Set a new condition for the breakpoint; without one, the breakpoint becomes unconditional."""
        number_text, _, condition = arg.strip().partition(" ")
        if not number_text:
            raise BadArgument("Breakpoint number expected")
        try:
            number = int(number_text)
        except ValueError:
            raise BadArgument(f"Invalid breakpoint number {number_text!r}") from None
        self.engine.set_condition(number, condition or None)
        if condition.strip():
            self.message(f"New condition set for breakpoint {number}.")
        else:
            self.message(f"Breakpoint {number} is now unconditional.")

    def do_ignore(self, arg: str) -> None:
        """ignore bpnumber [count]
        Ignore the breakpoint's next count hits (in either direction); without count, stop at the next."""
        words = arg.split()
        if not words or len(words) > 2:
            raise BadArgument("Usage: ignore bpnumber [count]")
        try:
            number, count = int(words[0]), int(words[1]) if len(words) == 2 else 0
        except ValueError:
            raise BadArgument(f"Invalid argument: {arg.strip()}") from None
        self.engine.set_ignore(number, count)
        if count > 0:
            crossings = "1 crossing" if count == 1 else f"{count} crossings"
            self.message(f"Will ignore next {crossings} of breakpoint {number}.")
        else:
            self.message(f"Will stop next time breakpoint {number} is reached.")

    def do_watch(self, arg: str) -> None:
        """watch expression
        Stop, going forward or backward, wherever the expression's value changes in the current frame."""
        point = self.engine.add_watchpoint(arg)
        self.message(f"Watchpoint {point.number}: {point.expression.text} = {self.value_text(arg)}")

    def do_catch(self, arg: str) -> None:
        """catch [ExceptionName]
        Stop at exception events (raised or propagating) of that exception class, or of any."""
        point = self.engine.add_catchpoint(arg or None)
        self.message(f"Catchpoint {point.number}: {point.exception or 'any exception'}")

    def list_points(self) -> None:
        points = self.engine.points
        if not points:
            self.message("No breakpoints.")
            return
        self.message("Num Type         Disp Enb   Where")
        for point in points.values():
            disp = ("del  " if point.temporary else "keep ") + ("yes  " if point.enabled else "no   ")
            if isinstance(point, Breakpoint):
                where = f"at {point.file}:{point.line}"
            elif isinstance(point, Watchpoint):
                where = f"{point.expression.text} in {point.func}"
            else:
                assert isinstance(point, Catchpoint)
                where = point.exception or "any exception"
            self.message(f"{point.number:<4}{point.kind:<13}{disp}{where}")
            if point.condition is not None:
                self.message(f"\tstop only if {point.condition.text}")
            if point.ignore:
                self.message(f"\tignore next {point.ignore} hits")
            if point.hits:
                self.message(f"\tbreakpoint already hit {point.hits} time{'s' if point.hits > 1 else ''}")

    # -- stack --------------------------------------------------------------------------------------------
    def do_where(self, arg: str) -> None:
        """w(here)
        Print the stack, most recent frame last; an arrow marks the selected frame."""
        if arg.strip():
            raise BadArgument(f"Invalid argument: {arg.strip()}")
        for line in self.session.where_lines():
            self.message(line)

    do_w = do_bt = do_where

    def _count(self, arg: str) -> int:
        try:
            return int(arg or 1)
        except ValueError:
            raise BadArgument(f"Invalid frame count ({arg.strip()})") from None

    def do_up(self, arg: str) -> None:
        """u(p) [count]
        Select an older frame (count levels up, default one). The position does not change."""
        self.engine.up(self._count(arg))
        self.list_next = None
        self.print_location()

    do_u = do_up

    def do_down(self, arg: str) -> None:
        """d(own) [count]
        Select a newer frame (count levels down, default one)."""
        self.engine.down(self._count(arg))
        self.list_next = None
        self.print_location()

    do_d = do_down

    # -- values -------------------------------------------------------------------------------------------
    def do_p(self, arg: str) -> None:
        """p expression
        Print the value of the expression, evaluated over the selected frame's recorded locals."""
        if not arg.strip():
            raise BadArgument("Argument expected")
        self.message(value_repr(self.engine.evaluate(arg)))

    def do_pp(self, arg: str) -> None:
        """pp expression
        Pretty-print the value of the expression."""
        if not arg.strip():
            raise BadArgument("Argument expected")
        value = self.engine.evaluate(arg)
        self.message(value.text if isinstance(value, Opaque) else pprint.pformat(value))

    def do_args(self, arg: str) -> None:
        """a(rgs)
        Print the selected frame's locals as recorded."""
        for name, value in self.engine.locals().items():
            self.message(f"{name} = {value.text}")

    do_a = do_args

    def do_display(self, arg: str) -> None:
        """display [expression]
        Show the expression's value whenever it changes at a stop in the current frame; without argument,
        list the display expressions of the current frame."""
        if not arg.strip():
            self.message("Currently displaying:")
            for expression, value in self.displays.get(self.engine.selected().frame_id, {}).items():
                self.message(f"{expression}: {value}")
            return
        self.message(self.session.add_display(arg))

    def do_undisplay(self, arg: str) -> None:
        """undisplay [expression]
        Stop displaying the expression in the current frame (all of them without argument)."""
        shown = self.displays.get(self.engine.selected().frame_id, {})
        if arg.strip():
            if shown.pop(arg.strip(), None) is None:
                raise BadArgument(f"not displaying {arg.strip()}")
        else:
            shown.clear()

    def do_history(self, arg: str) -> None:
        """history NAME
        Every step where the variable NAME took a new value, in every call of the current function."""
        name = arg.strip()
        if not name.isidentifier():
            raise BadArgument("history needs a variable name")
        changes = self.engine.history(name)
        if not changes:
            self.message(f"{name} never changes in {self.engine.selected().func}.")
        for change in changes:
            old = change.old.text if change.old is not None else "<unset>"
            new = change.new.text if change.new is not None else "<unset>"
            step = change.step
            self.message(f"step {step.index:>8}  {co_name(step.func)}:{step.line:<5} {name}: {old} -> {new}")

    # -- source -------------------------------------------------------------------------------------------
    def do_list(self, arg: str) -> None:
        """l(ist) [first[, last] | .]
        List 11 lines of source around the current line, or continue the last listing; `list .` lists around
        the current line again."""
        frame = self.engine.selected()
        source = self.engine.source_index(frame.file)
        if not source.lines:
            raise EngineError(f"No source recorded for {frame.file}")
        text = arg.strip()
        if text and text != ".":
            try:
                parts = [int(p) for p in text.split(",")]
            except ValueError:
                raise BadArgument(f"Error in argument: {text!r}") from None
            if len(parts) == 1:
                first = max(1, parts[0] - 5)
                last = first + 10
            elif len(parts) == 2:
                first, last = parts
                if last < first:
                    last = first + last  # pdb: "list 5, 3" lists 3 lines from 5
            else:
                raise BadArgument(f"Error in argument: {text!r}")
        elif self.list_next is not None and text != ".":
            first = self.list_next
            last = first + 10
        else:
            first = max(1, frame.line - 5)
            last = first + 10
        if first > len(source.lines):
            self.message("[EOF]")
            return
        self._print_lines(frame, range(first, min(last, len(source.lines)) + 1))
        self.list_next = min(last, len(source.lines)) + 1

    do_l = do_list

    def do_longlist(self, arg: str) -> None:
        """ll | longlist
        List the whole source of the current function (the whole file for module code)."""
        frame = self.engine.selected()
        source = self.engine.source_index(frame.file)
        if not source.lines:
            raise EngineError(f"No source recorded for {frame.file}")
        span = source.function_at(frame.line, co_name(frame.func))
        first, last = (span.first, span.last) if span is not None else (1, len(source.lines))
        self._print_lines(frame, range(first, last + 1))

    do_ll = do_longlist

    def _print_lines(self, frame: Step, numbers: range) -> None:
        source = self.engine.source_index(frame.file)
        breaks = {p.line for p in self.engine.points.values()
                  if isinstance(p, Breakpoint) and p.file == frame.file}
        for number in numbers:
            prefix = str(number).rjust(3)
            if len(prefix) < 4:
                prefix += " "
            prefix += "B" if number in breaks else " "
            if number == frame.line:
                prefix += "->"
            self.message(prefix + "\t" + source.line(number).rstrip())

    # -- trace --------------------------------------------------------------------------------------------
    def do_info(self, arg: str) -> None:
        """info [breakpoints]
        Where the position is in the trace (step, event, thread, depth), or the breakpoint list."""
        if arg.strip() in ("b", "break", "breakpoints", "watch", "watchpoints"):
            self.list_points()
            return
        if arg.strip():
            raise BadArgument(f"Unknown info topic: {arg.strip()}")
        engine = self.engine
        step = engine.current
        total = len(engine.timeline)
        percent = 100 * step.index / max(1, total - 1)
        self.message(f"Step {step.index} of {total} ({percent:.1f}%): {step.event} at "
                     f"{step.file}:{step.line} in {step.func}")
        self.message(f"thread {step.thread}, depth {step.depth}, frame {step.frame_id}; "
                     f"first stop {engine.start}, last step {engine.end}")
        self.message(f"{len(engine.points)} breakpoint(s), watchpoint(s) and catchpoint(s)")

    def do_output(self, arg: str) -> None:
        """output [N]
        What the program had written to stdout and stderr before this step (the last N lines with N)."""
        text = self.engine.timeline.output_until(self.engine.position)
        if arg.strip():
            try:
                count = int(arg)
            except ValueError:
                raise BadArgument(f"Invalid line count: {arg.strip()}") from None
            text = "".join(text.splitlines(keepends=True)[-count:]) if count > 0 else ""
        if not text:
            self.message("(no output yet)")
            return
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    # -- what if ------------------------------------------------------------------------------------------
    def do_whatif(self, arg: str) -> None:
        """whatif NAME = EXPR [; NAME = EXPR ...]
        Fork a timeline the model predicts from the selected frame at this step, with each NAME rebound to
        EXPR (a literal or an expression over the frame's values, in order; `n += 1` works too). The same
        commands step it (s, n, r, c, b, p, w, rs...); the prompt says (retro whatif). `back` returns to
        the recording where you left it. Breakpoints come along; what you change in the what-if stays
        there. A whatif inside a what-if forks again from there (back still returns to the recording)."""
        if not arg.strip():
            raise BadArgument("whatif needs a change, like: whatif n = 5; items = [3, 1]")
        changes = parse_changes(arg)
        if self.forker is None:
            raise ForkError(NO_FORKER)
        frame = self.engine.selected()
        fork = self.session.fork(self.forker, changes, self.session_for)
        if self.recording is None:
            self.recording = self.session
        self._use(fork)
        said = "; ".join(f"{name} = {expression}" for name, expression in changes.items())
        self.message(f"What if {said}: predicted by the model from step {frame.index} in "
                     f"{co_name(frame.func)}(); `back` returns here.")
        self.show_stop(Stop(self.engine.current, StopReason.STEP))

    def do_back(self, arg: str) -> None:
        """back
        Leave the what-if: return to the recording at the step, frame and breakpoints you left it with."""
        if arg.strip():
            raise BadArgument(f"Invalid argument: {arg.strip()}")
        if self.recording is None:
            raise BadArgument("not in a what-if: `back` returns from one (see help whatif)")
        recording, self.recording = self.recording, None
        self._use(recording)
        self.message(f"Back to the recording at step {self.engine.position}.")
        self.print_location()

    def do_quit(self, arg: str) -> bool:
        """q(uit)
        Leave the replay."""
        return True

    do_q = do_exit = do_quit

    def do_help(self, arg: str) -> bool | None:
        """h(elp) [command]
        Without argument, list the commands; with a command name, print its help."""
        word = _HYPHENATED.get(arg.strip(), arg.strip())
        return super().do_help(word)

    do_h = do_help


def run_replay(timeline: Timeline, stdin: TextIO, stdout: TextIO, *, interactive: bool,
               forker: Forker | None = None) -> int:
    """Run the replay command line until quit or end of input (`forker` makes `whatif` work); returns the
    exit status."""
    try:
        shell = ReplayShell(timeline, stdin, stdout, interactive, forker=forker)
    except (EngineError, TimelineError) as exc:
        print(f"retrograde: {exc}", file=stdout)
        return 1
    history = os.path.expanduser(HISTORY_FILE)
    readline: ModuleType | None = None
    if interactive:
        try:
            readline = importlib.import_module("readline")  # input() gains line editing and history
            readline.read_history_file(history)
        except (ImportError, OSError):
            pass
    try:
        shell.cmdloop()
    except KeyboardInterrupt:
        print(file=stdout)
    finally:
        if readline is not None:
            try:
                readline.set_history_length(1000)
                readline.write_history_file(history)
            except OSError:
                pass
    return 0


__all__ = ["PROMPT", "WHATIF_PROMPT", "ReplayShell", "exception_text", "run_replay", "short_repr"]
