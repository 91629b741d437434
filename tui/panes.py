"""The TUI's smaller panes: locals tree, call stack, key bar, and the help and value screens."""

from __future__ import annotations

import pprint
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.widgets.tree import TreeNode

from replay.source import co_name
from replay.timeline import Step, TimelineError, Value

_LABEL_LIMIT = 240  # characters of a value shown in a tree label; `v` shows the rest
_CHILD_LIMIT = 500  # children shown when a container is expanded
_CONTAINERS = (list, tuple, dict, set, frozenset)


@dataclass(slots=True)
class ValueNode:
    """What a locals tree node stands for: a name (or key) and its value, rebuilt when it is literal."""

    name: str
    text: str  # the recorded (or rebuilt) repr
    obj: object = None
    has_obj: bool = False
    loaded: bool = False  # children added
    truncated: bool = False  # the recorder cut the repr at its limit
    build: Callable[[], object] | None = None  # a container recorded whole: rebuilt when it is opened


def _label(name: str, text: str, changed: bool) -> Text:
    shown = text if len(text) <= _LABEL_LIMIT else text[:_LABEL_LIMIT] + "…"
    shown = shown.replace("\n", "⏎")
    return Text.assemble(
        (name, "bold black on yellow" if changed else "bold #87afd7"),
        (" = ", "grey50"),
        (shown, "bold yellow" if changed else ""),
    )


def _children(obj: object) -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        return [(repr(key), value) for key, value in obj.items()]
    if isinstance(obj, list | tuple):
        return [(f"[{i}]", value) for i, value in enumerate(obj)]
    if isinstance(obj, set | frozenset):
        try:
            items = sorted(obj)
        except TypeError:
            items = list(obj)
        return [("·", value) for value in items]
    return []


def _expandable(obj: object) -> bool:
    return isinstance(obj, _CONTAINERS) and len(obj) > 0


class LocalsTree(Tree[ValueNode]):
    """The selected frame's locals; literal containers expand, `v` shows a value in full."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("v", "show_value", "Full value", show=False)]

    class ShowValue(Message):
        """The user asked to see a value's whole repr."""

        def __init__(self, name: str, text: str) -> None:
            super().__init__()
            self.name = name
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("locals", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = True
        self._names: dict[str, Value] = {}
        self._changed: frozenset[str] = frozenset()

    def show(self, names: dict[str, Value], changed: frozenset[str]) -> None:
        """Rebuild for new locals, keeping open the containers that were open and the cursor's name."""
        if names == self._names and changed == self._changed:
            return
        expanded = self._expanded_paths()
        cursor = self.cursor_node
        cursor_name = cursor.data.name if cursor is not None and cursor.data is not None and \
            cursor.parent is self.root else None
        self._names, self._changed = names, changed
        self.clear()
        target: TreeNode[ValueNode] | None = None
        for name, value in names.items():
            node = self._add(self.root, name, value.text, value, name in changed)
            if name in expanded and node.allow_expand:
                self._reopen(node, expanded, (name,))
            if name == cursor_name:
                target = node
        if target is not None:
            self.move_cursor(target)

    def _add(self, parent: TreeNode[ValueNode], name: str, text: str, value: Value | None,
             changed: bool = False) -> TreeNode[ValueNode]:
        data = ValueNode(name, text, truncated=value is not None and value.truncated)
        if value is not None and value.literal:
            try:
                data.obj, data.has_obj = value.python(), True
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
        elif value is not None and value.full is not None:
            data.build = value.full  # its text was cut but the trace holds it whole: rebuilt when opened
        expandable = (data.has_obj and _expandable(data.obj)) or data.build is not None
        return parent.add(_label(name, text, changed), data=data, allow_expand=expandable)

    def _fill(self, node: TreeNode[ValueNode]) -> None:
        data = node.data
        if data is not None and not data.has_obj and data.build is not None:
            try:
                data.obj, data.has_obj = data.build(), True
            except TimelineError as exc:
                data.loaded = True
                node.add_leaf(Text(str(exc), "red"))
                return
        if data is None or data.loaded or not data.has_obj:
            return
        data.loaded = True
        children = _children(data.obj)
        for key, obj in children[:_CHILD_LIMIT]:
            child = ValueNode(key, repr(obj), obj, True)
            node.add(_label(key, child.text, False), data=child, allow_expand=_expandable(obj))
        if len(children) > _CHILD_LIMIT:
            node.add_leaf(Text(f"… {len(children) - _CHILD_LIMIT} more", "grey50"))

    def _expanded_paths(self) -> set[tuple[str, ...] | str]:
        paths: set[tuple[str, ...] | str] = set()

        def walk(node: TreeNode[ValueNode], path: tuple[str, ...]) -> None:
            for child in node.children:
                if child.is_expanded and child.data is not None:
                    here = (*path, child.data.name)
                    paths.add(here)
                    if len(here) == 1:
                        paths.add(here[0])
                    walk(child, here)

        walk(self.root, ())
        return paths

    def _reopen(self, node: TreeNode[ValueNode], expanded: set[tuple[str, ...] | str],
                path: tuple[str, ...]) -> None:
        self._fill(node)
        node.expand()
        for child in node.children:
            if child.data is not None and (*path, child.data.name) in expanded:
                self._reopen(child, expanded, (*path, child.data.name))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[ValueNode]) -> None:
        self._fill(event.node)

    def action_show_value(self) -> None:
        node = self.cursor_node
        if node is None or node.data is None:
            return
        data = node.data
        text = pprint.pformat(data.obj, width=100) if data.has_obj else data.text
        if data.truncated:
            text += "\n\n(the recording kept only the start of this repr)"
        self.post_message(self.ShowValue(data.name, text))


class StackList(OptionList):
    """The call stack, innermost frame first; choosing a frame selects it (like up/down)."""

    class FrameChosen(Message):
        """The user chose the frame `level` levels out from the innermost (0)."""

        def __init__(self, level: int) -> None:
            super().__init__()
            self.level = level

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[tuple[int, int], ...] = ()

    def show(self, stack: list[Step], selected_level: int, name_of: Callable[[str], str]) -> None:
        """stack outermost first (as the engine gives it); `name_of(path)` shortens file names."""
        key = tuple((step.index, step.frame_id) for step in stack)
        if key != self._shown:
            same_outer = len(key) == len(self._shown) and key[:-1] == self._shown[:-1]
            if same_outer and self.option_count == len(key):
                # Only the innermost frame moved (the usual step): replace its one line.
                self.replace_option_prompt_at_index(0, self._prompt(stack[-1], name_of))
            else:
                self.clear_options()
                self.add_options([Option(self._prompt(step, name_of)) for step in reversed(stack)])
            self._shown = key
        if self.highlighted != selected_level:
            self.highlighted = selected_level

    @staticmethod
    def _prompt(step: Step, name_of: Callable[[str], str]) -> Text:
        where = f"{name_of(step.file)}:{step.line}"
        return Text.assemble((co_name(step.func), "bold"), "  ", (where, "grey62"), no_wrap=True,
                             overflow="ellipsis")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.FrameChosen(event.option_index))


# (keys, short label, long label, optional): the one key scheme, shown in the key bar and the help screen.
KEY_HINTS: tuple[tuple[str, str, str, bool], ...] = (
    ("s n r c", "fwd", "step next return cont.", False),
    ("S N R C", "back", "reverse", False),
    ("b", "brk", "break", False),
    ("u d", "frame", "frame", False),
    ("g", "goto", "goto", False),
    ("/", "find", "search", False),
    ("w", "watch", "watch", False),
    (":", "cmd", "cmd", True),
    ("?", "help", "help", False),
    ("q", "quit", "quit", False),
)


class KeyBar(Widget):
    """The footer: the key scheme in one line, with long labels when the terminal is wide enough."""

    DEFAULT_CSS = """
    KeyBar { height: 1; }
    """

    @staticmethod
    def hints(width: int) -> Text:
        """The widest form of the key hints that fits in `width` cells."""
        text = Text()
        for long, gap, optional in ((True, "  ", True), (False, "  ", True), (False, " ", True),
                                    (False, " ", False)):
            text = Text(no_wrap=True, overflow="crop")
            for keys, short, full, is_optional in KEY_HINTS:
                if is_optional and not optional:
                    continue
                if text:
                    text.append(gap)
                text.append(keys, "bold black on #87afd7")
                text.append(" " + (full if long else short))
            if text.cell_len <= width:
                break
        return text

    def render(self) -> Text:
        return self.hints(self.size.width)


HELP_TEXT = """\
[b]Keys[/b]: lower case goes forward, shift goes back the same way.

  [b]s[/b] [b]S[/b]  step, reverse-step       next/previous event, any depth
  [b]n[/b] [b]N[/b]  next, reverse-next       next/previous line of this function
  [b]r[/b] [b]R[/b]  return, reverse-return   to the return / back to the call
  [b]c[/b] [b]C[/b]  continue, reverse-cont.  to the next/previous breakpoint or
                                  watchpoint hit
  [b]b[/b]    breakpoint at the cursor line (or click the line's gutter)
  [b]u[/b] [b]d[/b]  select the frame up (older) / down (newer)
  [b]g[/b]    goto step N or P%      [b]/[/b]  search: next step at a line with text
  [b]w[/b]    watch an expression in the selected frame
  [b]:[/b]    command line: every `retrograde replay` command
  [b]v[/b]    (locals) the value in full   [b]enter[/b]  open a container
  [b]tab[/b]  next pane      [b]↑ ↓ j k[/b]  source cursor    [b]← →[/b]  scroll source
  [b]esc[/b]  cancel a search, leave a prompt, close this help
  [b]?[/b]    this help      [b]q[/b]  quit

On the timeline bar: click or drag to jump; ● breakpoint hits, ✕ exceptions.
"""


class HelpScreen(ModalScreen[None]):
    """The keys and commands."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, commands: str) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(HELP_TEXT, id="help-keys")
            yield Static(Text(self.commands), id="help-commands")


class ValueScreen(ModalScreen[None]):
    """One value's whole repr."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,v", "dismiss", "Close")]

    def __init__(self, name: str, text: str) -> None:
        super().__init__()
        self.value_name = name
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="value-body") as body:
            body.border_title = self.value_name
            yield Static(Text(self.text))
