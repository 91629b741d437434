"""What the Python recorder keeps per frame, thread and chunk (C twins: tracer/_core/records.c...)."""

from __future__ import annotations

import types
from typing import Any

from tracer.format import pack_columns
from tracer.plan import CodePlan


class FrameRecord:
    """What the recorder remembers of one live frame activation."""

    __slots__ = (
        "code",
        "depth",
        "fid",
        "frame",
        "heads",
        "in_comprehension",
        "last_line",
        "last_pos",
        "mutables",
        "objs",
        "parent",
        "plan",
        "texts",
        "thread",
    )

    def __init__(
        self, fid: int, code: types.CodeType, plan: CodePlan, frame: Any, parent: int, thread: int, depth: int
    ) -> None:
        self.fid = fid
        self.code = code
        self.plan = plan
        self.frame = frame
        self.parent = parent
        self.thread = thread
        self.depth = depth
        self.objs: dict[str, object] | None = {}
        self.texts: dict[str, Any] = {}
        self.mutables: set[str] = set()
        self.heads: dict[str, tuple[list[Any], int]] = {}
        self.last_line = 0
        self.last_pos = -2
        self.in_comprehension = False


class StepBuffer:
    """One chunk's steps, kept as the chunk's columns (ChunkData) as they come."""

    __slots__ = (
        "_pairs",
        "changes",
        "deltas",
        "events",
        "fids",
        "frames",
        "lines",
        "max_depth",
        "min_depth",
        "names",
        "values",
    )

    def __init__(self) -> None:
        self.events = bytearray()
        self.fids: list[int] = []
        self.lines: list[int] = []
        self.changes: list[list[Any]] = []
        self.values: list[list[Any]] = []
        # For the chunk's summary only: the distinct (code id, line) pairs and the names that changed.
        self._pairs: set[tuple[int, int]] = set()
        self.names: set[str] = set()
        self.min_depth = -1  # -1: no step yet
        self.max_depth = -1
        self.deltas = 0  # text deltas among the changes: the compiled recorder writes them, this one not
        # The frames that start in the chunk: fid -> [code id, parent, thread, depth].
        self.frames: dict[int, list[int]] = {}

    def add(
        self, event: int, fid: int, line: int, changes: list[Any] | None, value: Any, code_id: int, depth: int
    ) -> None:
        offset = len(self.fids)
        self.events.append(event)
        self.fids.append(fid)
        self.lines.append(line)
        self._pairs.add((code_id, line))
        if depth < self.min_depth or self.min_depth < 0:
            self.min_depth = depth
        if depth > self.max_depth:
            self.max_depth = depth
        if changes:
            self.names.update(changes[::2])
            changes.insert(0, offset)
            self.changes.append(changes)
        if value is not None:
            self.values.append([offset, value])

    def add_frame(self, fid: int, code_id: int, parent: int, thread: int, depth: int) -> None:
        self.frames[fid] = [code_id, parent, thread, depth]

    def clear_frames(self) -> None:
        self.frames.clear()

    def pack_columns(self) -> bytes:
        return pack_columns(self.fids, self.lines, self.changes, self.values, self.frames)

    def __len__(self) -> int:
        return len(self.fids)

    def pairs(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._pairs)


class ThreadState:
    __slots__ = ("jump_line", "jump_rec", "number", "owner", "stack")

    def __init__(self, number: int, owner: object) -> None:
        self.number = number
        self.owner = owner  # the threading.Thread running it (None for raw threads): ids get reused
        self.stack: list[FrameRecord] = []
        self.jump_rec: FrameRecord | None = None
        self.jump_line = -1
