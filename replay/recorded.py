"""RecordedTimeline: the Timeline protocol over a trace file, lazily (index on open, one chunk per visit)."""

from __future__ import annotations

import bisect
import functools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack

from replay.timeline import ChunkSummary, Step, TimelineError, Value
from tracer.format import (
    EV_RETURN,
    EV_UNWIND,
    EVENT_NAMES,
    ChunkData,
    CorruptChunkError,
    Damage,
    TraceFormatError,
    TraceReader,
    apply_change,
    damage_sentence,
)
from tracer.objects import ObjectResolver
from tracer.values import decode_text, object_id

_CACHE_CHUNKS = 6
# What malformed contents of a (checksum-less) trace can raise while we decode them.
_CORRUPT = (
    TypeError, ValueError, IndexError, KeyError, AttributeError, UnicodeDecodeError, msgpack.UnpackException
)

def _guarded[T](method: Callable[..., T]) -> Callable[..., T]:
    """Turn any decoding failure inside a timeline method into one TimelineError sentence."""

    @functools.wraps(method)
    def wrapper(self: RecordedTimeline, *args: Any) -> T:
        try:
            return method(self, *args)
        except (TimelineError, IndexError) as exc:
            if isinstance(exc, IndexError) and not str(exc).startswith("step "):
                raise self._corrupt(exc) from None
            raise
        except TraceFormatError as exc:
            raise TimelineError(str(exc)) from None
        except _CORRUPT as exc:
            raise self._corrupt(exc) from None

    return wrapper


def _guarded_iter[T](method: Callable[..., Iterator[T]]) -> Callable[..., Iterator[T]]:
    @functools.wraps(method)
    def wrapper(self: RecordedTimeline, *args: Any) -> Iterator[T]:
        try:
            yield from method(self, *args)
        except TraceFormatError as exc:
            raise TimelineError(str(exc)) from None
        except _CORRUPT as exc:
            raise self._corrupt(exc) from None

    return wrapper


def to_value(encoded: Any, full: Callable[[int], Callable[[], object]] | None = None) -> Value:
    """The Value of an encoding; full(oid) gives the rebuilder of a value recorded whole by structure."""
    text, literal, truncated = decode_text(encoded)
    if full is not None:
        oid = object_id(encoded)
        if oid is not None:
            return Value(text, literal, truncated, full(oid))
    return Value(text, literal, truncated)


class _Chunk:
    """A decoded chunk with the lookups navigation needs, built once per decode."""

    __slots__ = (
        "count",
        "cursors",
        "data",
        "frame_change_offs",
        "frame_changes",
        "frame_meta",
        "frame_steps",
        "moves",
        "number",
        "start",
        "values",
    )

    def __init__(self, number: int, data: ChunkData) -> None:
        self.number = number
        self.data = data
        self.start = data.start
        self.count = len(data.fids)
        meta: dict[int, tuple[int, int, int, int]] = {}
        for fid, (code_id, parent, thread, depth, *_rest) in data.keyframe.items():
            meta[int(fid)] = (int(code_id), int(parent), int(thread), int(depth))
        for fid, (code_id, parent, thread, depth) in data.frames.items():
            meta[int(fid)] = (int(code_id), int(parent), int(thread), int(depth))
        self.frame_meta = meta
        moves: dict[int, list[tuple[int, int, int, int]]] = {}
        for off, fid, parent, thread, depth in data.moves:
            moves.setdefault(int(fid), []).append((int(off), int(parent), int(thread), int(depth)))
        self.moves = moves
        steps: dict[int, list[int]] = {}
        for off, fid in enumerate(data.fids):
            lst = steps.get(fid)
            if lst is None:
                steps[fid] = [off]
            else:
                lst.append(off)
        self.frame_steps = steps
        changes: dict[int, list[list[Any]]] = {}
        fids = data.fids
        for change in data.changes:
            off = change[0]
            if not 0 <= off < self.count:
                raise TraceFormatError(f"chunk {number} has a change outside its steps")
            changes.setdefault(fids[off], []).append(change)
        self.frame_changes = changes
        self.frame_change_offs = {fid: [c[0] for c in lst] for fid, lst in changes.items()}
        # fid -> (number of that frame's changes applied, state): sequential visits cost O(1) each.
        self.cursors: dict[int, tuple[int, dict[str, Any]]] = {}
        self.values = {int(off): enc for off, enc in data.values}

    def meta_at(self, fid: int, off: int) -> tuple[int, int, int, int]:
        """(code_id, parent, thread, depth) of frame fid at step offset off (a generator can move)."""
        meta = self.frame_meta[fid]
        for move_off, parent, thread, depth in self.moves.get(fid, ()):
            if move_off > off:
                break
            meta = (meta[0], parent, thread, depth)
        return meta

    def frame_state(self, fid: int, upto_off: int) -> dict[str, Any]:
        """Encoded locals of frame fid after its changes at offsets <= upto_off (do not mutate)."""
        offs = self.frame_change_offs.get(fid, [])
        wanted = bisect.bisect_right(offs, upto_off)
        cursor = self.cursors.get(fid)
        if cursor is not None and cursor[0] == wanted:
            return cursor[1]
        if cursor is not None and cursor[0] < wanted:
            applied, state = cursor[0], dict(cursor[1])
        else:
            base = self.data.keyframe.get(fid)
            applied, state = 0, (dict(base[5]) if base is not None else {})
        for change in self.frame_changes.get(fid, [])[applied:wanted]:
            apply_change(state, change)
        self.cursors[fid] = (wanted, state)
        return state


class RecordedTimeline:
    """A recorded trace, navigable by the replay engine."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.reader = TraceReader(self.path)
        reader = self.reader
        reader.verify_files()  # the source text shown must be what was recorded (a few records, cheap)
        self.header = reader.header
        self.footer = reader.footer
        self._code_file: dict[int, str] = {}
        self._code_name: dict[int, str] = {}
        for code_id, info in reader.codes.items():
            self._code_file[code_id] = reader.file_path(info.file_id) if info.file_id in reader.files else "?"
            self._code_name[code_id] = info.qualname
        self._file_ids = {path: file_id for file_id, (path, _off) in reader.files.items()}
        self._starts = [entry.start for entry in reader.chunks]
        self._cache: OrderedDict[int, _Chunk] = OrderedDict()
        self._summaries: list[ChunkSummary] | None = None
        self._outputs: dict[int, list[list[Any]]] = {}
        self._objects = ObjectResolver(self._objects_of)

    def _corrupt(self, exc: BaseException) -> TimelineError:
        return TimelineError(
            f"{os.path.basename(self.path)} is corrupt: a chunk holds malformed data ({type(exc).__name__})"
        )

    # -- protocol --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.reader.step_count

    @property
    def complete(self) -> bool:
        return True

    @property
    def damage(self) -> list[Damage]:
        """The damaged parts of the file found so far (header, footer, chunks met while navigating)."""
        return self.reader.damage

    def damage_text(self, damage: list[Damage] | None = None) -> str:
        """One sentence naming the file and its damaged parts (default: all found so far)."""
        return damage_sentence(self.path, self.damage if damage is None else damage, len(self._starts))

    @property
    def truncated_at(self) -> int | None:
        return self.reader.truncated_at

    def _chunk_for(self, index: int) -> _Chunk:
        if not 0 <= index < len(self):
            raise IndexError(f"step {index} is outside the trace (0..{len(self) - 1})")
        return self._chunk(bisect.bisect_right(self._starts, index) - 1)

    def _chunk(self, number: int) -> _Chunk:
        chunk = self._cache.get(number)
        if chunk is not None:
            self._cache.move_to_end(number)
            return chunk
        error = self.reader.damaged_chunks.get(number)
        if error is not None:  # known to be damaged: do not read it again
            raise TimelineError(str(error))
        try:
            chunk = _Chunk(number, self.reader.read_chunk(number))
        except CorruptChunkError as exc:
            raise TimelineError(str(exc)) from None
        except (TraceFormatError, ValueError, TypeError, KeyError, IndexError) as exc:
            # Checksummed but inconsistent (a writer bug, or a crafted file): damaged all the same.
            entry = self.reader.chunks[number]
            reason = f"its contents are malformed ({type(exc).__name__})"
            error = CorruptChunkError(self.path, number, len(self._starts), entry.start, entry.count, reason)
            self.reader.damaged_chunks[number] = error
            raise TimelineError(str(error)) from None
        self._cache[number] = chunk
        if len(self._cache) > _CACHE_CHUNKS:
            self._cache.popitem(last=False)
        return chunk

    def _make_step(self, chunk: _Chunk, off: int) -> Step:
        data = chunk.data
        fid = data.fids[off]
        meta = chunk.frame_meta.get(fid)
        if meta is None:
            raise TimelineError(f"step {chunk.start + off} names a frame the trace never introduced")
        code_id, _parent, thread, depth = chunk.meta_at(fid, off)
        event = data.events[off]
        enc = chunk.values.get(off)
        value = to_value(enc, self._rebuilder(chunk.number, off)) if enc is not None else None
        if event == EV_UNWIND:
            value = None
        return Step(
            index=chunk.start + off,
            event=EVENT_NAMES[event] if event < len(EVENT_NAMES) else "line",
            file=self._code_file.get(code_id, "?"),
            line=data.lines[off],
            func=self._code_name.get(code_id, "?"),
            depth=depth,
            thread=thread,
            frame_id=fid,
            value=value,
        )

    @_guarded
    def step(self, index: int) -> Step:
        chunk = self._chunk_for(index)
        return self._make_step(chunk, index - chunk.start)

    @_guarded_iter
    def steps(self, start: int, stop: int) -> Iterator[Step]:
        stop = min(stop, len(self))
        index = max(start, 0)
        while index < stop:
            chunk = self._chunk_for(index)
            end = min(stop, chunk.start + chunk.count)
            for off in range(index - chunk.start, end - chunk.start):
                yield self._make_step(chunk, off)
            index = end

    @_guarded
    def locals_at(self, index: int) -> dict[str, Value]:
        chunk = self._chunk_for(index)
        off = index - chunk.start
        state = chunk.frame_state(chunk.data.fids[off], off)
        full = self._rebuilder(chunk.number, off)
        return {name: to_value(enc, full) for name, enc in state.items()}

    def _rebuilder(self, number: int, off: int) -> Callable[[int], Callable[[], object]]:
        """oid -> a function that rebuilds that object as it was at step `off` of chunk `number`."""

        def full(oid: int) -> Callable[[], object]:
            def build() -> object:
                try:
                    return self._objects.value(oid, number, off)
                except CorruptChunkError as exc:
                    raise TimelineError(str(exc)) from None
                except (TraceFormatError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
                    raise TimelineError(
                        f"{os.path.basename(self.path)} cannot rebuild that value: its objects column is "
                        f"malformed ({type(exc).__name__})"
                    ) from None

            return build

        return full

    def _objects_of(self, number: int) -> Any:
        return self._chunk(number).data.objects

    def _last_step_of(self, fid: int, before: int) -> int | None:
        """Index of frame fid's latest step at or before `before`, searching back through chunks."""
        number = bisect.bisect_right(self._starts, before) - 1
        while number >= 0:
            chunk = self._chunk(number)
            offs = chunk.frame_steps.get(fid)
            if offs:
                pos = bisect.bisect_right(offs, before - chunk.start) - 1
                if pos >= 0:
                    return chunk.start + offs[pos]
            if fid in chunk.data.frames:  # the frame started in this chunk: nothing earlier
                return None
            kept = chunk.data.keyframe.get(fid)
            if kept is not None and len(kept) > 6:  # the keyframe remembers the frame's latest step
                return int(kept[6]) if kept[6] >= 0 else None
            number -= 1
        return None

    @_guarded
    def stack_at(self, index: int) -> list[Step]:
        chunk = self._chunk_for(index)
        here = self._make_step(chunk, index - chunk.start)
        stack = [here]
        parent = chunk.meta_at(here.frame_id, index - chunk.start)[1]
        seen = {here.frame_id}
        while parent >= 0 and parent not in seen:
            seen.add(parent)
            at = self._last_step_of(parent, index)
            if at is None:
                break
            step = self.step(at)
            stack.append(step)
            at_chunk = self._chunk_for(at)
            parent = at_chunk.meta_at(parent, at - at_chunk.start)[1] if parent in at_chunk.frame_meta else -1
        stack.reverse()
        return stack

    def source(self, file: str) -> str | None:
        file_id = self._file_ids.get(file)
        if file_id is None:
            return None
        try:
            return self.reader.source(file_id)
        except (TraceFormatError, *_CORRUPT):
            return None  # a corrupt source record: the trace is still navigable, just without this source

    @property
    def files(self) -> list[str]:
        return sorted(self._file_ids)

    def _chunk_outputs(self, number: int) -> list[list[Any]]:
        """The writes placed in a chunk; none for a damaged chunk (its output is lost with it, and the
        damage is in self.damage): the output of the chunks that read is still shown."""
        outs = self._outputs.get(number)
        if outs is None:
            try:
                outs = list(self._chunk(number).data.outputs)
            except TimelineError:
                if number not in self.reader.damaged_chunks:
                    raise
                outs = []
            self._outputs[number] = outs
        return outs

    @_guarded
    def output_until(self, index: int) -> str:
        parts: list[str] = []
        for number in range(len(self._starts)):
            if self._starts[number] > index:
                break
            if not self.reader.chunks[number].summary.outputs:
                continue  # nothing was written during this chunk: no need to decode it
            for position, _stream, text in self._chunk_outputs(number):
                if position <= index:
                    parts.append(text)
        if self.footer and index >= len(self) - 1:
            for position, _stream, text in self.footer.get("outputs", ()):
                if position <= index:
                    parts.append(text)
        return "".join(parts)

    @_guarded
    def all_output(self) -> list[tuple[int, int, str]]:
        """Every write as (position, stream, text), in order."""
        out: list[tuple[int, int, str]] = []
        for number in range(len(self._starts)):
            if not self.reader.chunks[number].summary.outputs:
                continue
            out.extend((int(p), int(s), str(t)) for p, s, t in self._chunk_outputs(number))
        if self.footer:
            out.extend((int(p), int(s), str(t)) for p, s, t in self.footer.get("outputs", ()))
        return out

    @_guarded
    def summaries(self) -> Sequence[ChunkSummary]:
        if self._summaries is None:
            result = []
            for entry in self.reader.chunks:
                s = entry.summary
                result.append(
                    ChunkSummary(
                        start=entry.start,
                        stop=entry.start + entry.count,
                        lines=frozenset(
                            (self._code_file.get(c, "?"), line) for c, line in s.lines
                        ),
                        funcs=frozenset(self._code_name.get(c, "?") for c in s.codes),
                        min_depth=s.min_depth,
                        max_depth=s.max_depth,
                        events=frozenset(
                            name for bit, name in enumerate(EVENT_NAMES) if s.events & (1 << bit)
                        ),
                        changed=s.changed,
                    )
                )
            self._summaries = result
        return self._summaries

    # -- bulk ------------------------------------------------------------------------------------------
    @_guarded_iter
    def iter_states(self) -> Iterator[tuple[Step, dict[str, Any]]]:
        """Every step with its frame's encoded locals, in one pass (for export and corpus building)."""
        states: dict[int, dict[str, Any]] = {}
        for number in range(len(self._starts)):
            chunk = self._chunk(number)
            data = chunk.data
            for fid, frame in data.keyframe.items():
                if fid not in states:
                    states[fid] = dict(frame[5])
            changes = {change[0]: change for change in data.changes}
            for off in range(chunk.count):
                fid = data.fids[off]
                state = states.get(fid)
                if state is None:
                    state = states[fid] = {}
                change = changes.get(off)
                if change is not None:
                    apply_change(state, change)
                step = self._make_step(chunk, off)
                yield step, state
                if data.events[off] in (EV_RETURN, EV_UNWIND):
                    states.pop(fid, None)

    def close(self) -> None:
        self.reader.close()
