"""GuardedTimeline: a Timeline wrapper whose step scans report progress and can be cancelled mid-search, and
whose stacks come from summaries (StackFinder) rather than the backend's frame links."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from replay.timeline import ChunkSummary, Step, Timeline, Value
from tui.stack import StackFinder

# Steps between two looks at the cancel flag: often enough to stop within a few ms, rarely enough to cost
# nothing measurable.
_CHECK_EVERY = 1024


class SearchCancelled(BaseException):
    """The user cancelled a running search; the engine's position is unchanged.

    A BaseException, like KeyboardInterrupt, so that the REPL's catch-all for command errors lets it through.
    """


class GuardedTimeline:
    """Delegates to a Timeline; `steps()` (the engine's only bulk read) notes progress and honours cancel.

    The engine moves its position only after a search finishes, so raising out of the scan leaves it
    where it was. Point hit counts may have been bumped by the abandoned scan (pdb would count them too,
    had the program run that far).
    """

    def __init__(self, inner: Timeline) -> None:
        self.inner = inner
        self.cancel_event = threading.Event()
        self.progress = -1  # the index the latest scan last reported (-1: none running)
        self.stacks = StackFinder(inner)

    # -- the Timeline protocol --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.inner)

    @property
    def complete(self) -> bool:
        return self.inner.complete

    def step(self, index: int) -> Step:
        return self.inner.step(index)

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        cancel = self.cancel_event
        count = 0
        for step in self.inner.steps(start, stop):
            count += 1
            if count >= _CHECK_EVERY:
                count = 0
                self.progress = step.index
                if cancel.is_set():
                    raise SearchCancelled
            yield step

    def locals_at(self, index: int) -> dict[str, Value]:
        return self.inner.locals_at(index)

    def stack_at(self, index: int) -> list[Step]:
        return self.stacks.stack_at(index)

    def source(self, file: str) -> str | None:
        return self.inner.source(file)

    def output_until(self, index: int) -> str:
        return self.inner.output_until(index)

    def summaries(self) -> Sequence[ChunkSummary]:
        return self.inner.summaries()
