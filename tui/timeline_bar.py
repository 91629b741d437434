"""TimelineBar: one row showing where the position is in the trace, with breakpoint and exception hits;
click or drag to jump."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tui.search import Marks

_PAST = Style(color="#5f87af")
_FUTURE = Style(color="grey35")
_BREAK = Style(color="red", bold=True)
_RAISE = Style(color="yellow", bold=True)
_HERE = Style(color="black", bgcolor="bright_white", bold=True)


class TimelineBar(Widget):
    """Cells stand for equal ranges of steps; the position's cell is lit, marks show where hits are."""

    DEFAULT_CSS = """
    TimelineBar { height: 1; }
    """

    class Seek(Message):
        """The user clicked or dragged on the bar: go to this step."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.length = 1
        self.position = 0
        self.marks = Marks()
        self._cells: tuple[int, frozenset[int], frozenset[int]] | None = None  # width, bp cells, exc cells
        self._dragging = False

    def update(self, position: int, length: int, marks: Marks | None = None) -> None:
        if marks is not None and marks != self.marks:
            self.marks = marks
            self._cells = None
        if length != self.length:
            self._cells = None
        if (position, length) != (self.position, self.length) or self._cells is None:
            self.position, self.length = position, max(1, length)
            self.refresh()

    def cell_of(self, index: int, width: int) -> int:
        return min(width - 1, index * width // self.length)

    def index_at(self, x: int) -> int:
        width = max(1, self.size.width)
        x = max(0, min(width - 1, x))
        # The middle of the cell's range, except at the ends, which must reach the first and last step.
        if x == 0:
            return 0
        if x == width - 1:
            return self.length - 1
        return min(self.length - 1, (2 * x + 1) * self.length // (2 * width))

    def _mark_cells(self, width: int) -> tuple[frozenset[int], frozenset[int]]:
        if self._cells is None or self._cells[0] != width:
            self._cells = (
                width,
                frozenset(self.cell_of(i, width) for i in self.marks.breakpoints),
                frozenset(self.cell_of(i, width) for i in self.marks.exceptions),
            )
        return self._cells[1], self._cells[2]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y != 0 or width <= 0:
            return Strip.blank(width)
        breaks, raises = self._mark_cells(width)
        here = self.cell_of(self.position, width)
        segments: list[Segment] = []
        for cell in range(width):
            if cell == here:
                segments.append(Segment("◆", _HERE))
            elif cell in raises:
                segments.append(Segment("✕", _RAISE))
            elif cell in breaks:
                segments.append(Segment("●", _BREAK))
            else:
                segments.append(Segment("━" if cell < here else "─", _PAST if cell < here else _FUTURE))
        return Strip(segments, width).simplify()

    # -- mouse ----------------------------------------------------------------------------------------------
    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._dragging = True
        self.capture_mouse()
        self.post_message(self.Seek(self.index_at(event.x)))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self.post_message(self.Seek(self.index_at(event.x)))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()
