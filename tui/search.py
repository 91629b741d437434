"""Scans the TUI runs over a timeline: text search in executed source lines, and timeline-bar marks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from replay.timeline import ChunkSummary, Step, Timeline, TimelineError

# Marks kept per kind: the bar has at most a few hundred cells, so more indexes add nothing visible.
MAX_MARKS = 50_000


def matching_lines(timeline: Timeline, text: str) -> frozenset[tuple[str, int]]:
    """(file, line) pairs that ran somewhere in the trace and whose source contains `text`.

    Smart case, as in editors: all-lowercase text matches any case.
    """
    fold = text == text.lower()
    wanted = text.lower() if fold else text
    sources: dict[str, list[str]] = {}
    found: set[tuple[str, int]] = set()
    for chunk in timeline.summaries():
        for file, line in chunk.lines:
            if (file, line) in found:
                continue
            lines = sources.get(file)
            if lines is None:
                lines = sources[file] = (timeline.source(file) or "").splitlines()
            if 1 <= line <= len(lines):
                source_line = lines[line - 1].lower() if fold else lines[line - 1]
                if wanted in source_line:
                    found.add((file, line))
    return frozenset(found)


def find_line(timeline: Timeline, start: int, targets: Collection[tuple[str, int]],
              forward: bool = True) -> Step | None:
    """The first line step after `start` (before it, going backward) at one of the target lines."""
    if not targets:
        return None
    chunks = [c for c in timeline.summaries() if not c.lines.isdisjoint(targets)]
    if forward:
        for chunk in chunks:
            if chunk.stop <= start + 1:
                continue
            for step in timeline.steps(max(chunk.start, start + 1), chunk.stop):
                if step.event == "line" and (step.file, step.line) in targets:
                    return step
        return None
    for chunk in reversed(chunks):
        if chunk.start >= start:
            continue
        candidates = [s for s in timeline.steps(chunk.start, min(chunk.stop, start))
                      if s.event == "line" and (s.file, s.line) in targets]
        if candidates:
            return candidates[-1]
    return None


@dataclass(frozen=True, slots=True)
class Marks:
    """Step indexes the timeline bar marks, each list ascending."""

    breakpoints: tuple[int, ...] = ()
    exceptions: tuple[int, ...] = ()


def scan_cost(timeline: Timeline, breakpoints: Collection[tuple[str, int]]) -> int:
    """How many steps `scan_marks` would read (chunks that can hold no mark are skipped)."""
    return sum(c.stop - c.start for c in _mark_chunks(timeline, breakpoints))


def _mark_chunks(timeline: Timeline, breakpoints: Collection[tuple[str, int]]) -> Iterator[ChunkSummary]:
    for chunk in timeline.summaries():
        if "exception" in chunk.events or not chunk.lines.isdisjoint(breakpoints):
            yield chunk


def scan_marks(timeline: Timeline, breakpoints: Collection[tuple[str, int]],
               cancelled: Callable[[], bool] = lambda: False) -> Marks | None:
    """Where breakpoint lines run and exceptions are raised; None if `cancelled()` turned true."""
    hits: list[int] = []
    raised: list[int] = []
    for chunk in _mark_chunks(timeline, breakpoints):
        if cancelled():
            return None
        try:
            for step in timeline.steps(chunk.start, chunk.stop):
                if step.event == "line":
                    if (step.file, step.line) in breakpoints and len(hits) < MAX_MARKS:
                        hits.append(step.index)
                elif step.event == "exception" and len(raised) < MAX_MARKS:
                    raised.append(step.index)
        except TimelineError:
            continue  # a damaged chunk of a recording: it shows no marks (navigating there says why)
    return Marks(tuple(hits), tuple(raised))
