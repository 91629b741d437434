"""Breakpoint requests: line, function and exception breakpoints, and the stops of hit-conditioned ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replay.breakpoints import Breakpoint
from replay.engine import EngineError
from retrograde.dap.hits import CountedBreakpoint, HitConditionError, parse_hit_condition
from retrograde.dap.state import SessionState


@dataclass(slots=True)
class ClientBreakpoint:
    """A breakpoint as the client set it, and how the engine (or a counter) holds it."""

    id: int
    line: int
    verified: bool
    message: str | None = None
    number: int | None = None  # the engine's breakpoint
    counted: CountedBreakpoint | None = None  # set instead when a hit condition is given

    def body(self, source: dict[str, Any] | None, line: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "verified": self.verified}
        if line is not None:
            result["line"] = line
        if source is not None:
            result["source"] = source
        if self.message:
            result["message"] = self.message
        return result


class BreakpointRequests(SessionState):
    """setBreakpoints, setFunctionBreakpoints and setExceptionBreakpoints over the engine's points."""

    # -- requests --------------------------------------------------------------------------------------------
    def _forget(self, points: list[ClientBreakpoint]) -> None:
        engine = self._engine()
        for point in points:
            if point.number is not None and point.number in engine.points:
                engine.delete(point.number)
                self.by_number.pop(point.number, None)

    def _new_bp(self, spec: str, line: int, condition: Any, hit_condition: Any) -> ClientBreakpoint:
        """Give the engine (or a counter) one breakpoint; an invalid one comes back unverified."""
        engine = self._engine()
        ident = self.next_bp_id
        self.next_bp_id += 1
        condition = condition if isinstance(condition, str) and condition.strip() else None
        hit = hit_condition if isinstance(hit_condition, str) and hit_condition.strip() else None
        try:
            if hit is not None:
                counted = CountedBreakpoint.create(ident, engine.timeline, spec, condition,
                                                   parse_hit_condition(hit))
                point = next(iter(counted.engine.points.values()))
                assert isinstance(point, Breakpoint)
                return ClientBreakpoint(ident, point.line, True, counted=counted)
            created = engine.add_breakpoint(spec, condition)
        except (EngineError, HitConditionError) as exc:
            return ClientBreakpoint(ident, line, False, str(exc))
        self.by_number[created.number] = ident
        return ClientBreakpoint(ident, created.line, True, number=created.number)

    def on_setBreakpoints(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        source = args.get("source") if isinstance(args.get("source"), dict) else {}
        assert isinstance(source, dict)
        path = source.get("path")
        if not isinstance(path, str):
            reference = source.get("sourceReference")
            path = next((f for f, r in self.source_refs.items() if r == reference), None)
        wanted = args.get("breakpoints")
        if not isinstance(wanted, list):
            wanted = [{"line": line} for line in args.get("lines", []) or []]
        file = self._trace_file(path) if isinstance(path, str) else None
        key = file or (path if isinstance(path, str) else "")
        self._forget(self.breakpoints.pop(key, []))
        made: list[ClientBreakpoint] = []
        for item in wanted:
            if not isinstance(item, dict):
                continue
            line = self._our_line(item.get("line"))
            if file is None:
                point = ClientBreakpoint(self.next_bp_id, line, False, f"{path} never runs in this recording")
                self.next_bp_id += 1
            else:
                point = self._line_bp(file, line, item.get("condition"), item.get("hitCondition"))
            made.append(point)
        self.breakpoints[key] = made
        self.conn.respond(request, {"breakpoints": [
            p.body(None, self._client_line(p.line)) for p in made]})

    def _line_bp(self, file: str, line: int, condition: Any, hit_condition: Any) -> ClientBreakpoint:
        """A line breakpoint; one on a blank or comment line moves to the next line of code (as debugpy's
        do) when that line runs in the recording."""
        engine = self._engine()
        source = engine.source_index(file)
        actual = line
        while 1 <= actual <= len(source.lines) and \
                (not source.line(actual).strip() or source.line(actual).strip().startswith("#")):
            actual += 1
        if actual != line and (actual > len(source.lines) or actual not in self._recorded_lines(file)):
            actual = line  # nothing to move to: the engine's own refusal says why
        point = self._new_bp(f"{file}:{actual}", actual, condition, hit_condition)
        if point.verified and engine.timeline.complete and point.line not in self._recorded_lines(file):
            point.message = f"line {point.line} never runs in this recording"
        return point

    def on_setFunctionBreakpoints(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        self._forget(self.function_breakpoints)
        made: list[ClientBreakpoint] = []
        for item in args.get("breakpoints", []) or []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            made.append(self._new_bp(item["name"], 0, item.get("condition"), item.get("hitCondition")))
        self.function_breakpoints = made
        bodies = []
        for point in made:
            file = None
            if point.number is not None:
                engine_point = self._engine().points[point.number]
                assert isinstance(engine_point, Breakpoint)
                file = engine_point.file
            elif point.counted is not None:
                counted_point = next(iter(point.counted.engine.points.values()))
                assert isinstance(counted_point, Breakpoint)
                file = counted_point.file
            bodies.append(point.body(self._source(file) if file else None,
                                     self._client_line(point.line) if point.verified else None))
        self.conn.respond(request, {"breakpoints": bodies})

    def on_setExceptionBreakpoints(self, request: dict[str, Any], args: dict[str, Any]) -> None:
        engine = self._engine()
        filters = {f for f in args.get("filters", []) or [] if isinstance(f, str)}
        for option in args.get("filterOptions", []) or []:
            if isinstance(option, dict) and isinstance(option.get("filterId"), str):
                filters.add(option["filterId"])
        unknown = filters - {"raised", "uncaught"}
        if self.catchpoint is not None and self.catchpoint in engine.points:
            engine.delete(self.catchpoint)
        self.catchpoint = None
        if "raised" in filters:
            self.catchpoint = engine.add_catchpoint(None).number
        self.filters = filters - unknown
        self.conn.respond(request, {"breakpoints": [
            {"verified": name not in unknown, **({"message": f"unknown filter {name!r}"}
                                                  if name in unknown else {})} for name in sorted(filters)]})

    def _extra_stop(self, before: int, after: int, forward: bool) -> tuple[int, str, list[int]] | None:
        """The nearest hit of a hit-conditioned breakpoint (which the engine does not hold) inside the
        motion from `before` (excluded) to `after` (included)."""
        if self._forked():
            return None  # hit counts are counted over the recording, not over a what-if
        low, high = (before, after) if forward else (after, before)
        candidates: list[tuple[int, str, list[int]]] = []
        points = [p for ps in self.breakpoints.values() for p in ps] + self.function_breakpoints
        for point in points:
            if point.counted is not None:
                found = point.counted.between(low, high, forward)
                if found is not None:
                    candidates.append((found, "breakpoint", [point.id]))
        if not candidates:
            return None
        best = min(c[0] for c in candidates) if forward else max(c[0] for c in candidates)
        return best, "breakpoint", [i for c in candidates if c[0] == best for i in c[2]]
