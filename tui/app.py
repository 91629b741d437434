"""The Textual app: source, locals, stack, output, console and timeline panes over one replay engine."""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Log, Static
from textual.worker import WorkerCancelled, get_current_worker

from replay.breakpoints import Breakpoint
from replay.engine import Engine, EngineError, Stop, StopReason
from replay.repl import ReplayShell
from replay.session import Forker, Session, exception_text
from replay.source import co_name
from replay.timeline import Step, Timeline, TimelineError, Value
from tui.guarded import GuardedTimeline, SearchCancelled
from tui.panes import HelpScreen, KeyBar, LocalsTree, StackList, ValueScreen
from tui.search import Marks, find_line, matching_lines, scan_cost, scan_marks
from tui.source_view import SourceView
from tui.timeline_bar import TimelineBar

# Mark scans reading more steps than this run in a worker instead of before the next frame.
_SYNC_SCAN_STEPS = 100_000
# Output kept in the output pane: the tail, since a chatty program's full output would make every
# jump back and forth slow to render.
_OUTPUT_TAIL = 100_000
# Traces longer than this (with a second reader) load the output pane in a worker: the first look far into
# a long trace may read every chunk before the position.
_SYNC_OUTPUT_STEPS = 200_000
_FRAMES_REMEMBERED = 256  # frames whose last shown locals are kept, to mark what changed
_BUSY_DELAY = 0.15  # seconds a search runs before the progress indicator appears (no flicker)

_PROMPTS = {
    "command": "(retro)",
    "goto": "goto step (N or P%):",
    "search": "search source text:",
    "watch": "watch expression:",
}
_PLACEHOLDERS = {
    "command": "press : to type a replay command: p x, b 12, until, rc, history x, help …",
    "goto": "a step number, or a percentage like 50%",
    "search": "text; stops at the next step whose line contains it",
    "watch": "an expression in the selected frame, e.g. total or items[0]",
}


@dataclass(slots=True)
class _View:
    """What the panes show one timeline through; the recording's is kept while a what-if is shown."""

    guarded: GuardedTimeline
    session: Session
    open_second: Callable[[], Timeline] | None
    second: Timeline | None
    marks: Marks
    frame_locals: OrderedDict[int, tuple[int, dict[str, str], frozenset[str]]]


@dataclass(frozen=True, slots=True)
class _CommandDone:
    """A typed command finished: what it printed, and whether it asked to quit."""

    output: str
    quit: bool


@dataclass(frozen=True, slots=True)
class _Failed:
    message: str


@dataclass(frozen=True, slots=True)
class _Cancelled:
    label: str


_Outcome = Stop | _CommandDone | _Failed | _Cancelled | None


def common_root(files: list[str]) -> str:
    """The directory the trace's files share: paths are shown relative to it (stable, short names)."""
    dirs = [os.path.dirname(f) for f in files if os.path.isabs(f)]
    if not dirs:
        return ""
    try:
        return os.path.commonpath(dirs)
    except ValueError:
        return ""


class RetroApp(App[int]):
    """A time-travel debugger UI: every motion has a forward key and a shifted reverse twin."""

    CSS_PATH = "app.tcss"
    TITLE = "retrograde"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "motion('step')", "step"),
        Binding("n", "motion('next')", "next"),
        Binding("r", "motion('return')", "return"),
        Binding("c", "motion('continue')", "continue"),
        Binding("S,shift+s", "motion('reverse-step')", "reverse step"),
        Binding("N,shift+n", "motion('reverse-next')", "reverse next"),
        Binding("R,shift+r", "motion('reverse-return')", "reverse return"),
        Binding("C,shift+c", "motion('reverse-continue')", "reverse continue"),
        Binding("b", "toggle_breakpoint", "breakpoint"),
        Binding("u", "frame(1)", "up"),
        Binding("d", "frame(-1)", "down"),
        Binding("g", "prompt('goto')", "goto"),
        Binding("slash", "prompt('search')", "search"),
        Binding("w", "prompt('watch')", "watch"),
        Binding("colon", "prompt('command')", "command"),
        Binding("p", "toggle_prediction", "prediction", show=False),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_app", "quit"),
        Binding("escape", "escape", "cancel", show=False),
    ]

    def __init__(self, timeline: Timeline, *, title: str | None = None,
                 open_reader: Callable[[], Timeline] | None = None, note: str = "",
                 predictor: Any = None, forker: Forker | None = None) -> None:
        super().__init__()
        self.predictor = predictor  # neural.predict.Predictor: the model's next step beside the recorded one
        self._predictor_lock = threading.Lock()
        self._predicted_at = -1
        self.guarded = GuardedTimeline(timeline)
        self.console_buffer = io.StringIO()
        # One replay session (engine, displays, stop text) for the keys and the command line, which is the
        # replay REPL's own command object over it. No restart past the end: the TUI stops there.
        self.session = Session(self.guarded, restart=False)
        self.engine: Engine = self.session.engine
        self.shell = ReplayShell(self.guarded, io.StringIO(), self.console_buffer, interactive=False,
                                 session=self.session, forker=forker)
        # `:whatif` forks a predicted timeline: its session reads through a guard of its own, and the
        # recording's view waits in _recording until `:back`.
        self.shell.session_for = lambda timeline: Session(GuardedTimeline(timeline), restart=False)
        self._recording: _View | None = None
        self.trace_title = title or "trace"
        self._open_second = open_reader
        self._second: Timeline | None = None
        self._second_lock = threading.Lock()
        files = sorted({file for chunk in timeline.summaries() for file, _ in chunk.lines})
        self.root = common_root(files)
        self.mode = "command"
        self.busy: str | None = None  # label of the running search
        self._busy_timer: Timer | None = None
        self._busy_shown = False
        self._spinner = cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
        self.last_stop: Stop | None = None
        self.note = note  # the latest message for the status line
        self._frame_locals: OrderedDict[int, tuple[int, dict[str, str], frozenset[str]]] = OrderedDict()
        self._output_text = ""
        self._output_at = -1
        self.marks = Marks()
        self._last_search = ""
        self._status: tuple[Step, int, int] = (self.engine.current, self.engine.end, 0)

    # -- layout -----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="main"):
            yield SourceView(id="source")
            with Vertical(id="side"):
                yield LocalsTree(id="locals")
                yield StackList(id="stack")
        with Horizontal(id="bottom"):
            yield Log(id="output", max_lines=5000)
            yield Log(id="console", max_lines=5000)
            if self.predictor is not None:
                yield Static(id="prediction")
        yield TimelineBar(id="bar")
        with Horizontal(id="command-row"):
            yield Static(_PROMPTS["command"], id="prompt")
            yield Input(placeholder=_PLACEHOLDERS["command"], id="command")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.query_one("#locals", LocalsTree).border_title = "locals"
        self.query_one("#locals", LocalsTree).border_subtitle = "v: full value"
        self.query_one("#stack", StackList).border_title = "stack"
        self.query_one("#output", Log).border_title = "output"
        self.query_one("#console", Log).border_title = "console"
        if self.predictor is not None:
            self.query_one("#prediction", Static).border_title = "model's next step (p: hide)"
        self.write_console("Press : for commands, ? for help.")
        opening = self.session.opening_lines()  # a crashed program: where, and how to get there
        if opening:
            self.write_console("\n".join(opening))
            if not self.note:
                self.note = opening[0] + " (c or :crash goes there)"
        self.update_marks()
        self.refresh_view()
        self.query_one("#source", SourceView).focus()

    # -- names ------------------------------------------------------------------------------------------
    def display_path(self, file: str) -> str:
        """A file as the UI shows it: relative to the trace's common directory."""
        if self.root and file.startswith(self.root + os.sep):
            return file[len(self.root) + 1:]
        return file

    # -- refreshing the panes -----------------------------------------------------------------------------
    def refresh_view(self) -> None:
        """Bring every pane up to the engine's position and frame; each pane skips work when unchanged."""
        engine = self.engine
        current = engine.current
        selected = engine.selected()
        source = self.query_one("#source", SourceView)
        breaks = frozenset(p.line for p in engine.points.values()
                           if isinstance(p, Breakpoint) and p.enabled and p.file == selected.file)
        source.show(selected.file, self.guarded.source, selected.line, engine.frame_index > 0, breaks)
        source.border_title = self.display_path(selected.file)
        source.border_subtitle = f"line {selected.line}"
        self.query_one("#locals", LocalsTree).show(*self._locals_for(selected))
        try:
            stack = engine.stack() if current.depth > 0 or engine.frame_index else [current]
        except TimelineError:  # a caller's steps lie in a damaged chunk of the recording: this frame alone
            stack = [current]
        self.query_one("#stack", StackList).show(stack, engine.frame_index, self.display_path)
        self._refresh_output()
        self._refresh_prediction()
        self.query_one("#bar", TimelineBar).update(engine.position, len(engine.timeline), self.marks)
        self._status = (current, engine.end, engine.frame_index)
        self._refresh_status()

    def _locals_for(self, selected: Step) -> tuple[dict[str, Value], frozenset[str]]:
        """The frame's locals, and the names whose values differ from when this frame was last shown."""
        names = self.engine.locals()
        texts = {name: value.text for name, value in names.items()}
        remembered = self._frame_locals.get(selected.frame_id)
        if remembered is not None and remembered[0] == selected.index:
            changed = remembered[2]
        elif remembered is None:
            changed = frozenset()
        else:
            before = remembered[1]
            changed = frozenset(name for name, text in texts.items() if before.get(name) != text)
        self._frame_locals[selected.frame_id] = (selected.index, texts, changed)
        self._frame_locals.move_to_end(selected.frame_id)
        while len(self._frame_locals) > _FRAMES_REMEMBERED:
            self._frame_locals.popitem(last=False)
        return names, changed

    def second_reader(self) -> Timeline:
        """A reader for worker threads (hold _second_lock): the engine's may be busy on another thread."""
        if self._second is None:
            self._second = self._open_second() if self._open_second is not None else self.guarded.inner
        return self._second

    def _refresh_output(self) -> None:
        position = self.engine.position
        if position == self._output_at:
            return
        self._output_at = position
        if self._open_second is not None and len(self.guarded) > _SYNC_OUTPUT_STEPS:
            self._load_output(position)
        else:
            self._show_output(position, self.guarded.output_until(position))

    @work(thread=True, exclusive=True, group="output", exit_on_error=False)
    def _load_output(self, position: int) -> None:
        worker = get_current_worker()
        with self._second_lock:
            if worker.is_cancelled:
                return
            text = self.second_reader().output_until(position)
        if not worker.is_cancelled:
            self.call_from_thread(self._show_output, position, text)

    def _show_output(self, position: int, text: str) -> None:
        if position != self.engine.position:
            return  # a later position's text is on its way
        text = text[-_OUTPUT_TAIL:]
        if text == self._output_text:
            return
        log = self.query_one("#output", Log)
        if self._output_text and text.startswith(self._output_text):
            log.write(text[len(self._output_text):])
        else:
            log.clear()
            log.write(text)
        self._output_text = text

    def _refresh_prediction(self) -> None:
        if self.predictor is None or self.engine.position == self._predicted_at:
            return
        pane = self.query_one("#prediction", Static)
        if not pane.display:
            return
        if self.shell.forked:
            self._predicted_at = self.engine.position
            pane.update(Text("a what-if: every step here is the model's", style="dim"))
            return
        self._predicted_at = self.engine.position
        pane.update(Text("predicting...", style="dim"))
        self._predict(self.engine.position)

    @work(thread=True, exclusive=True, group="predict", exit_on_error=False)
    def _predict(self, position: int) -> None:
        from neural.predict import PredictError
        from neural.trajectory import Action
        from tui.prediction import compare, next_in_file, render, state_at

        worker = get_current_worker()
        with self._second_lock:
            reader = self.second_reader()
            step = reader.step(position)
            code = reader.source(step.file) or ""
            following = next_in_file(reader, step)
            current = state_at(reader, step)
            recorded = state_at(reader, following) if following is not None else None
        if worker.is_cancelled:
            return
        if recorded is None:
            text = Text("the recording ends here: nothing to predict", style="dim")
        else:
            try:
                with self._predictor_lock:
                    self.predictor.begin(code, current)
                    prediction = self.predictor.predict(Action("step_into"))
            except PredictError as exc:
                text = Text(str(exc), style="dim")
            else:
                note = f"step_into, {prediction.seconds * 1000:.0f} ms"
                if not prediction.valid:
                    note += f"; flagged: {prediction.problem}"
                text = render(compare(prediction.state, recorded), note)
        if not worker.is_cancelled:
            self.call_from_thread(self._show_prediction, position, text)

    def _show_prediction(self, position: int, text: Text) -> None:
        if position == self.engine.position:
            self.query_one("#prediction", Static).update(text)

    def action_toggle_prediction(self) -> None:
        if self.predictor is None:
            self.set_note("no model: open the trace with `retrograde tui TRACE --predict`")
            return
        pane = self.query_one("#prediction", Static)
        pane.display = not pane.display
        self._predicted_at = -1
        self._refresh_prediction()

    def _refresh_status(self) -> None:
        """The top line. It reads only what refresh_view saved: during a search the timeline's reader
        belongs to the worker thread."""
        step, end, frame_index = self._status
        status = Text(no_wrap=True, overflow="ellipsis")
        if self.shell.forked:
            status.append(" WHAT IF · predicted by the model · :back returns ", "bold black on #d7af5f")
        status.append(f" {self.trace_title} ", "bold black on #87afd7")
        status.append(f" step {step.index}/{end} ", "bold")
        status.append(f"{step.event} ", "bold yellow" if step.event == "exception" else "grey62")
        status.append(f"{co_name(step.func)}() ", "#87afd7")
        status.append(f"{self.display_path(step.file)}:{step.line} ", "grey62")
        if frame_index:
            status.append(f"[frame +{frame_index}] ", "bold #d7af5f")
        if self.busy is not None:
            if self._busy_shown:
                at = self.guarded.progress
                where = f" at step {at} ({100 * at // max(1, end)}%)" if at >= 0 else ""
                status.append(f"{next(self._spinner)} {self.busy}: searching{where} · esc cancels",
                              "bold #d7af5f")
        elif self.note:
            status.append(self.note, "italic")
        self.query_one("#status", Static).update(status)

    def set_note(self, text: str) -> None:
        self.note = text
        self._refresh_status()

    def write_console(self, text: str) -> None:
        if text:
            self.query_one("#console", Log).write(text if text.endswith("\n") else text + "\n")

    # -- motions ------------------------------------------------------------------------------------------
    def _engine_motion(self, name: str) -> Callable[[], Stop]:
        engine = self.engine
        return {
            "step": engine.step, "next": engine.next, "return": engine.return_, "continue": engine.continue_,
            "reverse-step": engine.reverse_step, "reverse-next": engine.reverse_next,
            "reverse-return": engine.reverse_return, "reverse-continue": engine.reverse_continue,
        }[name]

    def action_motion(self, name: str) -> None:
        if self._refuse_while_busy():
            return
        motion = self._engine_motion(name)
        engine = self.engine
        # A predicted timeline's next step may still have to be predicted: that goes to a worker.
        quick = name == "reverse-step" or (name == "step" and (engine.position < engine.end
                                                               or engine.timeline.complete))
        if quick:
            # One event away: always quick, so no worker round trip.
            try:
                self.finish(motion())
            except (EngineError, TimelineError) as exc:  # a damaged chunk: say so, stay open
                self.finish(_Failed(str(exc)))
            return
        self.run_in_background(name, motion)

    def _refuse_while_busy(self) -> bool:
        if self.busy is not None:
            self.bell()
            self.set_note("")
            return True
        return False

    def run_in_background(self, label: str, job: Callable[[], _Outcome]) -> None:
        """Run an engine job in a worker thread, with a progress indicator; esc cancels it."""
        self.busy = label
        self._busy_shown = False
        self.guarded.cancel_event.clear()
        self.guarded.progress = -1
        self._busy_timer = self.set_interval(0.1, self._tick_busy, pause=True)
        self.set_timer(_BUSY_DELAY, self._show_busy)
        self._background(label, job)

    def _show_busy(self) -> None:
        if self.busy is not None and self._busy_timer is not None:
            self._busy_shown = True
            self._busy_timer.resume()
            self._refresh_status()

    def _tick_busy(self) -> None:
        if self.busy is not None:
            self._refresh_status()

    @work(thread=True, group="search", exit_on_error=False)
    def _background(self, label: str, job: Callable[[], _Outcome]) -> None:
        outcome: _Outcome
        try:
            outcome = job()
        except SearchCancelled:
            outcome = _Cancelled(label)
        except (EngineError, TimelineError) as exc:
            outcome = _Failed(str(exc))
        except Exception as exc:  # a bug must show as a message, not end the session
            outcome = _Failed(f"internal error: {type(exc).__name__}: {exc}")
        self.call_from_thread(self.finish, outcome)

    def finish(self, outcome: _Outcome) -> None:
        """Show what a motion, search or command did, then bring the panes up to date."""
        if self.busy is not None:
            self.busy = None
            if self._busy_timer is not None:
                self._busy_timer.stop()
                self._busy_timer = None
        if isinstance(outcome, Stop):
            self.last_stop = outcome
            self.shell.list_next = None
            self.write_console("\n".join(outcome.messages))
            self.note = _describe_stop(outcome)
            crash = self.engine.crash if outcome.reason == StopReason.CRASH else None
            if crash is not None:
                self.note = f"uncaught {exception_text(crash.exception)}: where it crashed (rs, rc go back)"
            self.shell.show_displays(self.engine.selected())
            self.write_console(self._take_console())
        elif isinstance(outcome, _CommandDone):
            self.write_console(outcome.output)
            self.note = ""
            if outcome.quit:
                self.exit(0)
                return
            self._follow_shell()
        elif isinstance(outcome, _Failed):
            self.note = outcome.message
            self.write_console("*** " + outcome.message)
        elif isinstance(outcome, _Cancelled):
            self.note = f"{outcome.label} cancelled; the position is unchanged"
        self.refresh_view()
        if isinstance(outcome, _CommandDone):
            self.update_marks()  # the command may have set or cleared breakpoints

    def _take_console(self) -> str:
        text = self.console_buffer.getvalue()
        self.console_buffer.seek(0)
        self.console_buffer.truncate()
        return text

    # -- what if ------------------------------------------------------------------------------------------
    def _view(self) -> _View:
        return _View(self.guarded, self.session, self._open_second, self._second, self.marks,
                     self._frame_locals)

    def _show_view(self, view: _View) -> None:
        self.guarded, self.session, self.engine = view.guarded, view.session, view.session.engine
        self._open_second, self._second = view.open_second, view.second
        self.marks, self._frame_locals = view.marks, view.frame_locals
        self._output_at = -1  # the output pane and the model's pane follow the new timeline
        self._predicted_at = -1

    def _follow_shell(self) -> None:
        """After `:whatif` or `:back`, show the timeline the command line now steps."""
        session = self.shell.session
        if session is self.session:
            return
        if self.shell.forked:
            if self._recording is None:
                self._recording = self._view()
            guarded = session.engine.timeline
            assert isinstance(guarded, GuardedTimeline)  # made by shell.session_for
            inner = guarded.inner
            self._show_view(_View(guarded, session, lambda: inner, None, Marks(), OrderedDict()))
            self.note = "a what-if: the model predicts every step from here; :back returns to the recording"
        else:
            assert self._recording is not None
            self._show_view(self._recording)
            self._recording = None
            self.note = "back to the recording"
        self.query_one("#prompt", Static).update(self._prompt_text("command"))

    def _prompt_text(self, mode: str) -> str:
        return "(retro whatif)" if mode == "command" and self.shell.forked else _PROMPTS[mode]

    # -- frames, breakpoints --------------------------------------------------------------------------------
    def action_frame(self, delta: int) -> None:
        if self._refuse_while_busy():
            return
        try:
            self.engine.up(delta) if delta > 0 else self.engine.down(-delta)
        except (EngineError, TimelineError) as exc:
            self.set_note(str(exc))
            return
        self.note = ""
        self.refresh_view()

    def on_stack_list_frame_chosen(self, message: StackList.FrameChosen) -> None:
        if self.busy is not None:
            return
        levels = len(self.engine.stack())
        if 0 <= message.level < levels and message.level != self.engine.frame_index:
            self.engine.frame_index = message.level
            self.note = ""
            self.refresh_view()

    def action_toggle_breakpoint(self) -> None:
        source = self.query_one("#source", SourceView)
        self.toggle_breakpoint(source.file, source.cursor_line)

    def on_source_view_toggle_breakpoint(self, message: SourceView.ToggleBreakpoint) -> None:
        self.toggle_breakpoint(message.file, message.line)

    def toggle_breakpoint(self, file: str, line: int) -> None:
        if self._refuse_while_busy() or not file:
            return
        engine = self.engine
        existing = [p for p in engine.points.values()
                    if isinstance(p, Breakpoint) and (p.file, p.line) == (file, line)]
        try:
            if existing:
                engine.delete_at(file, line)
                self.set_note(f"cleared the breakpoint at {self.display_path(file)}:{line}")
            else:
                point = engine.add_breakpoint(f"{file}:{line}")
                self.set_note(f"breakpoint {point.number} at {self.display_path(file)}:{line}")
        except (EngineError, TimelineError) as exc:
            self.set_note(f"no breakpoint at line {line}: {exc}")
            return
        self.update_marks()
        self.refresh_view()

    # -- timeline bar -----------------------------------------------------------------------------------
    def on_timeline_bar_seek(self, message: TimelineBar.Seek) -> None:
        if self.busy is not None or message.index == self.engine.position:
            return
        try:
            self.finish(self.engine.goto(message.index))
        except (EngineError, TimelineError) as exc:
            self.finish(_Failed(str(exc)))

    def update_marks(self) -> None:
        """Recompute where breakpoint lines run and exceptions rise, for the timeline bar."""
        wanted = frozenset((p.file, p.line) for p in self.engine.points.values()
                           if isinstance(p, Breakpoint) and p.enabled)
        inner = self.guarded.inner
        if self.busy is None and scan_cost(inner, wanted) <= _SYNC_SCAN_STEPS:  # the engine's reader is free
            self._set_marks(scan_marks(inner, wanted) or Marks())
            return
        self._scan_marks(wanted)

    @work(thread=True, exclusive=True, group="marks", exit_on_error=False)
    def _scan_marks(self, wanted: frozenset[tuple[str, int]]) -> None:
        worker = get_current_worker()
        with self._second_lock:
            marks = scan_marks(self.second_reader(), wanted, lambda: worker.is_cancelled)
        if marks is not None and not worker.is_cancelled:
            self.call_from_thread(self._set_marks, marks)

    def _set_marks(self, marks: Marks) -> None:
        self.marks = marks
        self.query_one("#bar", TimelineBar).update(self.engine.position, len(self.engine.timeline), marks)

    # -- prompts and the command line ---------------------------------------------------------------------
    def action_prompt(self, mode: str) -> None:
        self.mode = mode
        self.query_one("#prompt", Static).update(self._prompt_text(mode))
        field = self.query_one("#command", Input)
        field.placeholder = _PLACEHOLDERS[mode]
        field.value = self._last_search if mode == "search" else ""
        field.focus()

    def _leave_prompt(self) -> None:
        self.mode = "command"
        self.query_one("#prompt", Static).update(self._prompt_text("command"))
        field = self.query_one("#command", Input)
        field.placeholder = _PLACEHOLDERS["command"]
        field.value = ""
        self.query_one("#source", SourceView).focus()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        text = message.value.strip()
        mode = self.mode
        message.input.value = ""
        if mode != "command":
            self._leave_prompt()
            if not text:
                return
        if self._refuse_while_busy():
            return
        if mode == "command":
            self.run_command(message.value)
        elif mode == "goto":
            self.goto(text)
        elif mode == "search":
            self.search(text)
        elif mode == "watch":
            self.add_watch(text)

    def run_command(self, line: str) -> None:
        """Run one `retrograde replay` command line through the REPL's command object."""
        self.write_console(self.shell.prompt + line)
        shell = self.shell

        def job() -> _Outcome:
            command = shell.precmd(line)
            stop = shell.onecmd(command)
            return _CommandDone(self._take_console(), bool(stop))

        self.run_in_background(line.strip().split(" ")[0] or "command", job)

    def goto(self, text: str) -> None:
        try:
            stop = self.engine.goto_text(text)
        except (EngineError, TimelineError) as exc:
            self.finish(_Failed(str(exc)))
            return
        self.finish(stop)

    def search(self, text: str) -> None:
        """The next step (after the position) at a line whose source contains `text`."""
        self._last_search = text
        engine, timeline = self.engine, self.guarded

        def job() -> _Outcome:
            targets = matching_lines(timeline, text)
            if not targets:
                return _Failed(f"no line that ran contains {text!r}")
            found = find_line(timeline, engine.position, targets)
            if found is None:
                return _Failed(f"no later step runs a line containing {text!r}")
            return engine.goto(found.index)

        self.run_in_background("search", job)

    def add_watch(self, text: str) -> None:
        try:
            point = self.engine.add_watchpoint(text)
        except (EngineError, TimelineError) as exc:
            self.finish(_Failed(str(exc)))
            return
        value = self.shell.value_text(text)
        self.write_console(f"Watchpoint {point.number}: {point.expression.text} = {value}")
        self.set_note(f"watchpoint {point.number} on {point.expression.text}: c / C stop where it changes")

    # -- the rest ------------------------------------------------------------------------------------------
    def action_escape(self) -> None:
        if self.busy is not None:
            self.guarded.cancel_event.set()
            return
        if self.query_one("#command", Input).has_focus:
            self._leave_prompt()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(_command_summary(self.shell)))

    def on_locals_tree_show_value(self, message: LocalsTree.ShowValue) -> None:
        self.push_screen(ValueScreen(message.name, message.text))

    async def settle(self) -> None:
        """Wait until no search, output or marks worker is running (for tests, benchmarks, screenshots)."""
        for worker in list(self.workers):
            try:
                await worker.wait()
            except WorkerCancelled:
                pass  # superseded by a newer one, which is in the list too

    def action_quit_app(self) -> None:
        self.guarded.cancel_event.set()
        self.exit(0)


def _describe_stop(stop: Stop) -> str:
    if stop.reason in ("breakpoint", "watchpoint", "catchpoint"):
        return f"{stop.reason} {stop.number}" + (f": {stop.messages[-1]}" if stop.messages else "")
    if stop.messages:
        return stop.messages[-1]
    if stop.reason == "exception" and stop.step.value is not None:
        return f"exception {stop.step.value.text}"
    if stop.step.event == "unwind":
        return "the frame unwinds by the exception"  # it did not return: no value to show
    if stop.step.event in ("return", "yield") and stop.step.value is not None:
        return f"{stop.step.event} {stop.step.value.text}"
    return ""


def _command_summary(shell: ReplayShell) -> str:
    """The first lines of the REPL commands' help, one per command (aliases once)."""
    seen: set[object] = set()
    lines = ["Commands (type them after :, or `help NAME` there):", ""]
    for name in sorted(dir(shell)):
        if not name.startswith("do_") or name == "do_EOF":
            continue
        method = getattr(shell, name)
        function = getattr(method, "__func__", method)
        if function in seen or not method.__doc__:
            continue
        seen.add(function)
        doc = [line.strip() for line in method.__doc__.strip().splitlines()]
        lines.append(f"  {doc[0]:<44} {doc[1] if len(doc) > 1 else ''}")
    return "\n".join(lines)


def make_app(timeline: Timeline, *, title: str | None = None,
             open_reader: Callable[[], Timeline] | None = None, predictor: Any = None,
             forker: Forker | None = None) -> RetroApp:
    """The TUI over a timeline (shared by `retrograde tui` and the tests); `forker` makes `:whatif` work.

    `open_reader` opens a second, independent reader of the same trace for worker threads (the output pane
    and timeline marks of long traces); for a RecordedTimeline it defaults to reopening its file. Raises
    replay.engine.EngineError when the timeline has no steps.
    """
    note = ""
    if open_reader is None:
        from replay.recorded import RecordedTimeline

        if isinstance(timeline, RecordedTimeline):
            path = timeline.path
            open_reader = lambda: RecordedTimeline(path)  # noqa: E731
            if timeline.damage:
                note = timeline.damage_text()
            elif timeline.truncated_at is not None:
                note = f"the trace is truncated at step {timeline.truncated_at}: the recording did not finish"
    return RetroApp(timeline, title=title, open_reader=open_reader, note=note, predictor=predictor,
                    forker=forker)
