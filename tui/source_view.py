"""SourceView: a file's source with syntax colours, a breakpoint gutter and the current line; lines render
on demand (Textual's line API) from a per-file cache of highlighted lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

_GUTTER_STYLE = Style(color="grey50")
_BREAK_STYLE = Style(color="red", bold=True)
_ARROW_STYLE = Style(color="bright_green", bold=True)
_CURRENT_BG = Style(bgcolor="#1f4f2f")  # the line about to run in the innermost frame
_FRAME_BG = Style(bgcolor="#4a3a10")  # an outer frame's current line (after up)
_CURSOR_BG = Style(bgcolor="#2a2a3a")


class HighlightedFile:
    """One file's source split into highlighted lines, rendered to segments once per line."""

    def __init__(self, text: str | None) -> None:
        self.lines: list[Text] = []
        if text:
            highlighted = Syntax(text, "python", theme="monokai").highlight(text)
            highlighted.style = Style()  # the theme's background would fight the line highlights
            self.lines = list(highlighted.split("\n", allow_blank=True))
            if self.lines and not self.lines[-1].plain and text.endswith("\n"):
                self.lines.pop()
        self.width = max((line.cell_len for line in self.lines), default=0)
        self._segments: dict[int, list[Segment]] = {}

    def segments(self, number: int) -> list[Segment]:
        """Line `number` (1-based) as segments, cached."""
        cached = self._segments.get(number)
        if cached is None:
            line = self.lines[number - 1]
            cached = [Segment(span_text, style) for span_text, style in _spans(line)]
            self._segments[number] = cached
        return cached


def _spans(line: Text) -> list[tuple[str, Style]]:
    """A Text line as (text, style) runs without tabs (expanded to 4 columns, as most editors show them)."""
    if "\t" in line.plain:
        line = line.copy()
        line.expand_tabs(4)
    return [(str(seg.text), seg.style or Style()) for seg in line.render(_NULL_CONSOLE)]


# Only used to split Text into styled segments; nothing is printed through it.
_NULL_CONSOLE = Console(width=100_000, color_system="truecolor", force_terminal=True)


class SourceView(ScrollView, can_focus=True):
    """The selected frame's file around its current line; the gutter toggles breakpoints on click."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Line up", show=False),
        Binding("down,j", "cursor(1)", "Line down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
        Binding("left,h", "scroll_left", "Scroll left", show=False),
        Binding("right,l", "scroll_right", "Scroll right", show=False),
    ]

    cursor_line: reactive[int] = reactive(1, layout=False, repaint=True)

    class ToggleBreakpoint(Message):
        """The user asked for a breakpoint to be set or cleared at a line of the shown file."""

        def __init__(self, file: str, line: int) -> None:
            super().__init__()
            self.file = file
            self.line = line

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.file = ""
        self.current_line = 0  # 0: no current line in this file
        self.outer_frame = False
        self.breakpoints: frozenset[int] = frozenset()
        self._files: dict[str, HighlightedFile] = {}
        self._shown: HighlightedFile = HighlightedFile(None)

    # -- state from the app -----------------------------------------------------------------------------
    def show(self, file: str, text_of: Callable[[str], str | None], line: int, outer_frame: bool,
             breakpoints: frozenset[int]) -> None:
        """Show `line` of `file` as current; `text_of(file)` gives the source the first time a file shows."""
        changed_file = file != self.file
        if changed_file:
            highlighted = self._files.get(file)
            if highlighted is None:
                highlighted = self._files[file] = HighlightedFile(text_of(file))
            self._shown = highlighted
            self.file = file
            self.virtual_size = Size(self._gutter_width() + highlighted.width + 1, len(highlighted.lines))
        moved = changed_file or line != self.current_line
        stale = {self.current_line, self.cursor_line, line}
        self.current_line = line
        if moved:
            self.set_reactive(SourceView.cursor_line, line)  # the cursor comes back to a new position
        if changed_file or outer_frame != self.outer_frame or breakpoints != self.breakpoints:
            self.outer_frame, self.breakpoints = outer_frame, breakpoints
            if moved:
                self.follow(line)
            self.refresh()
        elif moved:
            # The usual step: repaint only the lines whose marks move, unless the view has to scroll.
            if self.follow(line):
                self.refresh()
            else:
                for number in stale:
                    self.refresh_line(number - 1)

    @property
    def line_count(self) -> int:
        return len(self._shown.lines)

    def follow(self, line: int) -> bool:
        """Scroll so the line is visible with some context, moving as little as possible; True if it moved."""
        height = self.scrollable_content_region.height or self.size.height
        if height <= 0:
            return False
        top = int(self.scroll_y)
        margin = min(3, max(0, (height - 1) // 2))
        row = line - 1
        if row < top + margin or row >= top + height - margin:
            self.scroll_to(y=max(0, row - height // 2), animate=False, immediate=True)
            return int(self.scroll_y) != top
        return False

    def on_resize(self, event: events.Resize) -> None:
        if self.current_line:
            self.follow(self.current_line)

    def action_cursor(self, delta: int) -> None:
        if self.line_count:
            self.cursor_line = max(1, min(self.line_count, self.cursor_line + delta))
            self.follow(self.cursor_line)

    # -- rendering ----------------------------------------------------------------------------------------
    def _gutter_width(self) -> int:
        return len(str(max(1, len(self._shown.lines)))) + 4  # marker, number, space, arrow, space

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        number = scroll_y + y + 1
        width = self.scrollable_content_region.width
        if number > len(self._shown.lines):
            if number == 1 and self.file:
                missing = f"  no source recorded for {self.file.rpartition('/')[2]}"
                return Strip([Segment(missing, _GUTTER_STYLE)]).crop_extend(0, width, self.rich_style)
            return Strip.blank(width, self.rich_style)
        gutter = self._gutter_width()
        digits = gutter - 4
        is_current = number == self.current_line
        marker = Segment("●", _BREAK_STYLE) if number in self.breakpoints else Segment(" ")
        arrow = Segment("▶ " if is_current else "  ", _ARROW_STYLE)
        head = [marker, Segment(f"{number:>{digits}} ", _GUTTER_STYLE), arrow]
        text_width = max(0, width - gutter)
        body = Strip(self._shown.segments(number)).crop_extend(scroll_x, scroll_x + text_width, None)
        strip = Strip([*head, *body])
        if is_current:
            strip = strip.apply_style(_FRAME_BG if self.outer_frame else _CURRENT_BG)
        elif number == self.cursor_line and self.has_focus:
            strip = strip.apply_style(_CURSOR_BG)
        return strip.apply_style(self.rich_style)

    def watch_cursor_line(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- mouse ----------------------------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.file:
            return
        number = int(self.scroll_y) + offset.y + 1
        if not 1 <= number <= self.line_count:
            return
        self.cursor_line = number
        if offset.x < self._gutter_width() - 2:
            event.stop()
            self.post_message(self.ToggleBreakpoint(self.file, number))
