"""StackFinder: the call stack at a step, found through chunk summaries instead of frame links.

A frame's caller is, on the same thread, the latest earlier step at a shallower depth: since the caller's
last step (the line that made the call, or resumed the generator) only deeper frames have run. Chunks whose
minimum depth is too deep cannot hold it and are skipped unread, so a caller that last ran millions of
steps ago costs one chunk read, not a walk through every chunk in between. A frame's outer stack never
changes while it runs, unless it can suspend, so it is cached by frame id.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence

from replay.source import SourceIndex, co_name
from replay.timeline import ChunkSummary, Step, Timeline

_CACHED_FRAMES = 4096


class StackFinder:
    """stack_at(index) with the Timeline protocol's meaning, fast on long traces."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._outer: OrderedDict[int, tuple[Step, ...]] = OrderedDict()
        self._sources: dict[str, SourceIndex] = {}
        self._chunks: Sequence[ChunkSummary] = ()
        self._starts: list[int] = []
        self._length = -1

    def _summaries(self) -> Sequence[ChunkSummary]:
        if self._length != len(self.timeline):
            self._chunks = self.timeline.summaries()
            self._starts = [chunk.start for chunk in self._chunks]
            self._length = len(self.timeline)
        return self._chunks

    def _stable(self, step: Step) -> bool:
        """Whether the frame's outer stack is fixed for its whole life (it cannot suspend)."""
        index = self._sources.get(step.file)
        if index is None:
            index = self._sources[step.file] = SourceIndex(self.timeline.source(step.file))
        if not index.lines:
            return False  # without source we cannot tell a generator from a function
        span = index.function_at(step.line, co_name(step.func))
        return span is None or not span.suspends

    def stack_at(self, index: int) -> list[Step]:
        here = self.timeline.step(index)
        return [*self.outer(here), here]

    def outer(self, step: Step) -> tuple[Step, ...]:
        """The frames below `step`'s frame (outermost first), each at its current step."""
        if step.depth <= 0:
            return ()
        cached = self._outer.get(step.frame_id)
        if cached is not None:
            self._outer.move_to_end(step.frame_id)
            return cached
        caller = self._caller(step)
        result = () if caller is None else (*self.outer(caller), caller)
        if self._stable(step):
            self._outer[step.frame_id] = result
            if len(self._outer) > _CACHED_FRAMES:
                self._outer.popitem(last=False)
        return result

    def _caller(self, step: Step) -> Step | None:
        """The latest step before `step` on its thread at a shallower depth."""
        chunks = self._summaries()
        number = bisect.bisect_right(self._starts, step.index - 1) - 1
        while number >= 0:
            chunk = chunks[number]
            number -= 1
            if chunk.min_depth >= step.depth:
                continue
            high = min(step.index, chunk.stop)
            window = 64  # a near caller reads little; a far one reads the chunk in growing slices
            while high > chunk.start:
                low = max(chunk.start, high - window)
                found = None
                for candidate in self.timeline.steps(low, high):
                    if candidate.thread == step.thread and candidate.depth < step.depth:
                        found = candidate
                if found is not None:
                    return found
                high = low
                window *= 4
        return None
