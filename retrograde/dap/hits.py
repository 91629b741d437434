"""Stops the adapter adds to the engine's (breakpoints with hit conditions), and the recorded threads."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from replay.engine import Engine
from replay.timeline import Timeline

_HIT_CONDITION = re.compile(r"^\s*(==|=|>=|<=|>|<|%)?\s*(\d+)\s*$")


class HitConditionError(ValueError):
    """A hit condition that is not `N`, `==N`, `>N`, `>=N`, `<N`, `<=N` or `%N`."""


def parse_hit_condition(text: str) -> Callable[[int], bool]:
    """A predicate on the 1-based ordinal of a hit: `5` / `==5` (the fifth), `>5`, `>=5`, `<5`, `<=5`,
    `%5` (every fifth)."""
    match = _HIT_CONDITION.match(text)
    if match is None:
        raise HitConditionError(
            f"hit condition {text.strip()!r} is not one of N, ==N, >N, >=N, <N, <=N, %N")
    op, number = match.group(1) or "==", int(match.group(2))
    if op == "%":
        if number == 0:
            raise HitConditionError("hit condition %0 never holds")
        return lambda n: n % number == 0
    tests: dict[str, Callable[[int], bool]] = {
        "==": lambda n: n == number, "=": lambda n: n == number, ">": lambda n: n > number,
        ">=": lambda n: n >= number, "<": lambda n: n < number, "<=": lambda n: n <= number,
    }
    return tests[op]


@dataclass(slots=True)
class CountedBreakpoint:
    """A breakpoint whose hits are counted over the whole recording, so its N-th hit is the same step
    whichever way the position moves (an ignore count would depend on the path taken).

    A private engine holding only this breakpoint (location and condition) finds the hits, so what counts
    as a hit is exactly what stops the replay."""

    dap_id: int
    accepts: Callable[[int], bool]
    engine: Engine
    hits: list[int] = field(default_factory=list)
    exhausted: bool = False

    @classmethod
    def create(cls, dap_id: int, timeline: Timeline, spec: str, condition: str | None,
               accepts: Callable[[int], bool]) -> CountedBreakpoint:
        engine = Engine(timeline)
        engine.add_breakpoint(spec, condition)  # raises EngineError for a bad location or condition
        if engine.start > 0:
            engine.goto(engine.start - 1)  # so that a hit at the first stop counts too
        return cls(dap_id, accepts, engine)

    def _hits_through(self, index: int) -> None:
        while not self.exhausted and (not self.hits or self.hits[-1] < index):
            stop = self.engine.continue_()
            if stop.reason == "breakpoint" and stop.moved:
                self.hits.append(stop.step.index)
            else:
                self.exhausted = True

    def between(self, low: int, high: int, forward: bool) -> int | None:
        """The accepted hit nearest the start of the motion inside low < index <= high (forward) or
        low <= index < high (backward)."""
        self._hits_through(high)
        accepted = [i for n, i in enumerate(self.hits, 1)
                    if self.accepts(n) and (low < i <= high if forward else low <= i < high)]
        if not accepted:
            return None
        return accepted[0] if forward else accepted[-1]


def recorded_threads(timeline: Timeline) -> list[int]:
    """Every thread that has a step in the timeline (so far), in order.

    A trace file lists each chunk's frames with their threads, which is far cheaper to read than every
    step; any other timeline (or a trace that cannot be read that way) is read step by step."""
    reader = getattr(timeline, "reader", None)
    iter_chunks = getattr(reader, "iter_chunks", None)
    if callable(iter_chunks):
        try:
            threads: set[int] = set()
            for data in iter_chunks():
                threads.update(int(meta[2]) for meta in data.keyframe.values())
                threads.update(int(meta[2]) for meta in data.frames.values())
                threads.update(int(move[3]) for move in data.moves)
            if threads:
                return sorted(threads)
        except Exception:  # an odd trace: the slow way below gives the answer or the error
            pass
    return sorted({step.thread for step in timeline.steps(0, len(timeline))})
