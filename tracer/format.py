"""The trace file: a chunked, indexed msgpack stream, and its validating reader.

Layout::

    MAGIC | header map | record | record | ... | footer record | trailer

Records are msgpack arrays whose first element is a tag:

    [TAG_FILE, file_id, path, source or None]         a traced file and its source text
    [TAG_CODE, code_id, file_id, qualname, firstline]  a traced code object
    [TAG_CHUNK, chunk_no, start, count, summary, payload]
        steps start..start+count-1; payload is a zstd frame (zlib before version 3) of the msgpack of
        [keyframe, events, fids, lines, changes, values, frames, outputs]  (see ChunkData)
    [TAG_FOOTER, footer map]                            index of chunks, totals, exit status
    [TAG_CHECKSUMS, CHECKSUMS.pack(footer, header, files, codes crc)]    20 bytes (since 2026-12)

The trailer is 16 bytes: the footer's offset (uint64 little endian) and TRAILER_MAGIC. A process killed
mid-run leaves no footer: readers then scan the records and stop at the first incomplete one, reporting
the trace as truncated at that step.

What is checked: every chunk payload carries zstd's XXH64 checksum of its content, and its record head
must agree with the footer's index; the checksums record between the footer and the trailer holds the
CRC-32 of the footer record's bytes, of the magic and header, of the file records (paths and source
text) one after the other, and of the code records likewise. A damaged chunk raises CorruptChunkError
(naming the chunk and its steps); the other chunks still read, each from its own keyframe. A footer that
fails its checksum is ignored (the records are scanned instead, as for a killed recording);
TraceReader.damage lists what was found, TraceReader.verify() looks at everything. Files written before
the checksums record read as before, unchecked beyond the chunk payloads.
"""

from __future__ import annotations

import _thread
import io
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO

import msgpack
import zstandard

from tracer.native import core as _core

_core_packb = _core.packb if _core is not None else None  # msgpack's bytes, several times faster


def _packb(obj: Any) -> bytes:
    packed = _core_packb(obj) if _core_packb is not None else None
    return packed if packed is not None else msgpack.packb(obj, use_bin_type=True)


def pack_columns(fids: Any, lines: Any, changes: Any, values: Any, frames: Any) -> bytes:
    """A chunk body's five step columns in msgpack, one after the other (what StepBuffer.pack_columns
    gives; ChunkData.pack_body puts them in the body's array)."""
    return b"".join(map(_packb, (fids, lines, changes, values, frames)))

# Format version changelog:
#   1 (2026-11): first format: header, file/code records, zlib chunks with keyframes, footer index.
#   2 (2026-11): an encoded value may also be a msgpack int (64-bit), bool or float (finite): the value
#                itself, whose repr is its text (tracer.values.decode_text). Version 1 files still read.
#   3 (2026-11): chunk payloads are zstd frames (level 3, with a checksum) instead of zlib streams: 4-6x
#                faster to compress and 5-20% smaller on our traces. Versions 1 and 2 (zlib) still read.
#   4 (2026-11): a change may give a text delta [prefix, suffix, middle] instead of a whole encoding: the
#                new text is old[:prefix] + middle + old[len(old) - suffix:], where old is the same frame's
#                previous text for that name (from the chunk's keyframe or an earlier change). A chunk
#                body has a 10th element, its number of deltas; the reader resolves them as it decodes
#                the chunk (resolve_deltas), so nothing after it sees one.
#   5 (2026-12): full-fidelity builtin containers. An encoding may be [text, flags, oid] (flags bit
#                1, tracer.values.FLAG_OBJECT): a list, tuple, dict, set or frozenset whose text was cut,
#                recorded whole by structure as object oid. A chunk body then has an 11th element (and
#                the 10th, the delta count, even when 0): its objects column [bases, snaps, ops]
#                (tracer/objects.py says what each holds). Versions 1-4 still read (they have no objects).
FORMAT_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
ZSTD_LEVEL = 3
ZLIB_VERSIONS = (1, 2)  # formats whose chunk payloads are zlib streams

MAGIC = b"RTGTRACE"
TRAILER_MAGIC = b"RTGEND01"
TRAILER = struct.Struct("<Q8s")

TAG_FILE = 1
TAG_CODE = 2
TAG_CHUNK = 3
TAG_FOOTER = 9
TAG_CHECKSUMS = 10  # follows the footer; older readers never look past the footer, so it is additive
# CRC-32 of the footer record, of magic + header, of the file records, of the code records.
CHECKSUMS = struct.Struct("<IIII")
# The checksums record is always these 4 bytes (fixarray of 2, TAG_CHECKSUMS, bin8 of 16) and the 16.
CHECKSUMS_HEAD = bytes([0x92, TAG_CHECKSUMS, 0xC4, CHECKSUMS.size])
CHECKSUMS_RECORD_SIZE = len(CHECKSUMS_HEAD) + CHECKSUMS.size



class Event(StrEnum):
    """A step's event; equal to its plain string, so code comparing `step.event == "line"` keeps working."""

    CALL = "call"
    LINE = "line"
    RETURN = "return"
    EXCEPTION = "exception"  # raised in, or propagating into, the frame
    UNWIND = "unwind"  # the frame exits by an exception (never a return of None)
    YIELD = "yield"
    RESUME = "resume"
    HANDLED = "handled"


# Event codes in a chunk's events column (the enum's order is the code).
EVENT_NAMES: tuple[str, ...] = tuple(Event)
EV_CALL, EV_LINE, EV_RETURN, EV_EXCEPTION, EV_UNWIND, EV_YIELD, EV_RESUME, EV_HANDLED = range(8)

# Limits for reading files we may not have written: a hostile file cannot make us allocate without bound.
MAX_RECORD_BYTES = 256 * 1024 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024
_UNPACK_LIMITS: dict[str, Any] = {
    "raw": False,
    "strict_map_key": False,  # keyframe/frame maps are keyed by ints
    "max_buffer_size": MAX_RECORD_BYTES,
    "max_str_len": 64 * 1024 * 1024,
    "max_bin_len": MAX_RECORD_BYTES,
    "max_array_len": 16 * 1024 * 1024,
    "max_map_len": 4 * 1024 * 1024,
    "max_ext_len": 0,
}


class TraceFormatError(Exception):
    """The trace file is missing, empty, foreign, corrupt or of an unsupported version."""


class CorruptChunkError(TraceFormatError):
    """One chunk of a trace cannot be read (its checksum fails or its contents are malformed); the steps of
    the other chunks still read."""

    def __init__(self, path: str, number: int, chunks: int, start: int, count: int, reason: str) -> None:
        self.path = path
        self.number = number
        self.chunks = chunks
        self.start = start
        self.stop = start + count  # exclusive
        self.reason = reason
        # What is wrong, then what to do.
        name = os.path.basename(path)
        self.what = f"{name}: chunk {number} of {chunks} (steps {self.steps}) is corrupt ({reason})"
        super().__init__(f"{self.what}; the other steps still read (retrograde export writes them)")

    @property
    def steps(self) -> str:
        """The unreadable steps as text, like `0-8191`."""
        return f"{self.start}-{self.stop - 1}" if self.stop - self.start > 1 else str(self.start)


@dataclass(frozen=True, slots=True)
class Damage:
    """A damaged part of a trace file found by the reader: what it is, its chunk and steps if any, why."""

    part: str  # "chunk", "footer", "header" or "file record"
    reason: str
    chunk: int | None = None
    start: int | None = None
    stop: int | None = None  # exclusive

    def describe(self, chunks: int) -> str:
        """One clause, like `chunk 3 of 8 (steps 150-199) is corrupt (its checksum does not match)`."""
        if self.part in ("chunk", "chunk head") and self.start is not None and self.stop is not None:
            steps = f"{self.start}-{self.stop - 1}" if self.stop - self.start > 1 else str(self.start)
            head = "the record head of " if self.part == "chunk head" else ""
            return f"{head}chunk {self.chunk} of {chunks} (steps {steps}) is corrupt ({self.reason})"
        verb = "are" if self.part.endswith("s") else "is"
        return f"the {self.part} {verb} corrupt ({self.reason})"

    def as_json(self) -> dict[str, Any]:
        return {"part": self.part, "chunk": self.chunk, "start": self.start, "stop": self.stop,
                "reason": self.reason}


def damage_sentence(path: str, damage: list[Damage], chunks: int) -> str:
    """One sentence naming the file and every damaged part, and what to do."""
    listed = "; ".join(d.describe(chunks) for d in damage[:4])
    if len(damage) > 4:
        listed += f"; and {len(damage) - 4} more"
    return f"{os.path.basename(path)} is damaged: {listed}"


def _chunk_reason(exc: BaseException) -> str:
    """Why a chunk failed to read, in words."""
    if isinstance(exc, zstandard.ZstdError):
        if "checksum" in str(exc).lower():
            return "its checksum does not match"
        return "its compressed data does not decode"
    if isinstance(exc, zlib.error):
        return "its compressed data does not decode"
    if isinstance(exc, TraceFormatError):
        return f"its contents are malformed: {exc}"
    return f"its contents are malformed ({type(exc).__name__})"


@dataclass(frozen=True, slots=True)
class ChunkSummary:
    """Index entry summary of one chunk, enough to skip it in searches."""

    lines: frozenset[tuple[int, int]]  # (code_id, line)
    codes: frozenset[int]
    min_depth: int
    max_depth: int
    events: int  # bit mask over event codes
    changed: frozenset[str]
    line_steps: int
    outputs: int = 0  # writes to stdout/stderr placed in this chunk (0: output searches skip it)

    def pack(self) -> list[Any]:
        flat: list[int] = []
        for code_id, line in sorted(self.lines):
            flat.extend((code_id, line))
        return [
            flat,
            sorted(self.codes),
            self.min_depth,
            self.max_depth,
            self.events,
            sorted(self.changed),
            self.line_steps,
            self.outputs,
        ]

    @classmethod
    def unpack(cls, data: Any) -> ChunkSummary:
        flat, codes, min_depth, max_depth, events, changed, line_steps = data[:7]
        outputs = data[7] if len(data) > 7 else 1  # unknown: assume there may be output
        pairs = frozenset(zip(flat[0::2], flat[1::2], strict=True))
        return cls(
            pairs,
            frozenset(int(c) for c in codes),
            int(min_depth),
            int(max_depth),
            int(events),
            frozenset(str(n) for n in changed),
            int(line_steps),
            int(outputs),
        )


@dataclass(slots=True)
class ChunkData:
    """The decoded contents of one chunk.

    keyframe: {fid: [code_id, parent_fid, thread, depth, line, {name: encoded}, last_step]} for every
              live frame (running or suspended) at the chunk's first step, before that step; last_step is
              the index of the frame's latest step (-2 when it has none).
    events/fids/lines: one entry per step.
    changes: [[step_offset, name, encoded or None (deleted), name, encoded, ...], ...]
    values: [[step_offset, encoded], ...] return / yield / exception values.
    frames: {fid: [code_id, parent_fid, thread, depth]} for frames that start in this chunk.
    outputs: [[position, stream (1 stdout, 2 stderr), text], ...]: text written before step `position`.
    """

    start: int
    keyframe: dict[int, list[Any]]
    events: bytes
    fids: list[int]
    lines: list[int]
    changes: list[list[Any]]
    values: list[list[Any]]
    frames: dict[int, list[Any]]
    outputs: list[list[Any]]
    # [[step_offset, fid, parent_fid, thread, depth], ...]: a suspended generator resumed under another
    # caller takes that parent and depth from that step on.
    moves: list[list[Any]] = field(default_factory=list)
    # How many of the changes are text deltas (format 4); 0 once read (the reader resolves them).
    deltas: int = 0
    # Written by the recorder instead of fids/lines/changes/values/frames (left empty): those five
    # columns already in msgpack (StepBuffer.pack_columns), spliced into the body as they are.
    packed_columns: bytes | None = None
    # Format 5: [bases, snaps, ops] of the objects recorded by structure (tracer/objects.py), or None.
    objects: list[Any] | tuple[Any, ...] | None = None

    def __len__(self) -> int:
        """The number of steps."""
        return len(self.events)

    def pack_body(self) -> bytes:
        """The uncompressed payload (compress_payload compresses it)."""
        columns = self.packed_columns
        if columns is None:
            columns = pack_columns(self.fids, self.lines, self.changes, self.values, self.frames)
        tail: list[Any] = [self.outputs, self.moves]
        if self.deltas or self.objects is not None:
            tail.append(self.deltas)
        if self.objects is not None:
            tail.append(self.objects)
        head = bytes([0x90 | (7 + len(tail))])  # a fixarray of 9 to 11 elements
        return head + _packb(self.keyframe) + _packb(self.events) + columns + b"".join(map(_packb, tail))

    @classmethod
    def unpack_payload(
        cls, start: int, count: int, payload: bytes, *, version: int = FORMAT_VERSION
    ) -> ChunkData:
        body = decompress_payload(payload, version)
        # Arrays come back as tuples: tuples of numbers and strings are dropped from the garbage
        # collector's tracking, so full collections do not crawl through every cached chunk (they made
        # gotos on a 10M-step trace spike to 40 ms).
        limits = {k: v for k, v in _UNPACK_LIMITS.items() if k != "max_buffer_size"}
        parts = msgpack.unpackb(body, use_list=False, **limits)
        if not isinstance(parts, tuple) or len(parts) not in (8, 9, 10, 11):
            raise TraceFormatError("a chunk payload has the wrong shape")
        objects = parts[10] if len(parts) > 10 else None
        if objects is not None and not (
            isinstance(objects, tuple)
            and len(objects) == 3
            and isinstance(objects[0], dict | type(None))
            and isinstance(objects[1], dict)
            and isinstance(objects[2], tuple)
            and all(isinstance(op, tuple) and len(op) >= 3 for op in objects[2])
        ):
            raise TraceFormatError("a chunk has a malformed objects column")
        keyframe, events, fids, lines, changes, values, frames, outputs = parts[:8]
        moves = parts[8] if len(parts) > 8 else ()
        deltas = parts[9] if len(parts) > 9 else 0
        if type(deltas) is not int or deltas < 0:
            raise TraceFormatError("a chunk payload has a bad delta count")
        if not (
            isinstance(keyframe, dict)
            and isinstance(events, bytes)
            and isinstance(fids, tuple)
            and isinstance(lines, tuple)
            and isinstance(changes, tuple)
            and isinstance(values, tuple)
            and isinstance(frames, dict)
            and isinstance(outputs, tuple)
            and isinstance(moves, tuple)
        ):
            raise TraceFormatError("a chunk payload has columns of the wrong type")
        if not (len(events) == len(fids) == len(lines) == count):
            raise TraceFormatError("a chunk's step columns disagree in length")
        for entry in keyframe.values():
            if not (isinstance(entry, tuple) and len(entry) >= 6 and isinstance(entry[5], dict)):
                raise TraceFormatError("a chunk has a malformed keyframe")
        for entry in frames.values():
            if not (isinstance(entry, tuple) and len(entry) == 4):
                raise TraceFormatError("a chunk has a malformed frame table")
        for entry in outputs:
            if not (
                isinstance(entry, tuple)
                and len(entry) == 3
                and isinstance(entry[0], int)
                and isinstance(entry[2], str)
            ):
                raise TraceFormatError("a chunk has a malformed output record")
        if deltas:
            changes = resolve_deltas(keyframe, fids, changes)
        return cls(start, keyframe, events, fids, lines, changes, values, frames, outputs, moves,  # type: ignore[arg-type]
                   objects=objects)


def resolve_deltas(
    keyframe: dict[Any, Any], fids: tuple[Any, ...], changes: tuple[Any, ...]
) -> tuple[Any, ...]:
    """The changes with every text delta replaced by the text it stands for (format 4).

    A delta [prefix, suffix, middle] applies to the same frame's latest text for that name: from an
    earlier change in the chunk, else from the chunk's keyframe."""
    states: dict[Any, dict[Any, Any]] = {}
    out = []
    count = len(fids)
    for change in changes:
        if not (isinstance(change, tuple) and change and type(change[0]) is int and 0 <= change[0] < count):
            raise TraceFormatError("a chunk has a malformed change")
        fid = fids[change[0]]
        state = states.get(fid)
        if state is None:
            entry = keyframe.get(fid)
            state = states[fid] = dict(entry[5]) if entry is not None else {}
        resolved: list[Any] | None = None
        for i in range(1, len(change) - 1, 2):
            name, enc = change[i], change[i + 1]
            if isinstance(enc, tuple) and len(enc) == 3 and type(enc[0]) is int:  # not [text, flags, oid]
                base, (prefix, suffix, middle) = state.get(name), enc
                if not (
                    type(base) is str
                    and type(prefix) is int
                    and type(suffix) is int
                    and type(middle) is str
                    and prefix >= 0
                    and suffix >= 0
                    and prefix + suffix <= len(base)
                ):
                    raise TraceFormatError("a chunk has a text delta with no text to apply it to")
                enc = base[:prefix] + middle + base[len(base) - suffix :]
                if resolved is None:
                    resolved = list(change)
                resolved[i + 1] = enc
            if enc is None:
                state.pop(name, None)
            else:
                state[name] = enc
        out.append(tuple(resolved) if resolved is not None else change)
    return tuple(out)


def payload_compressor(level: int = ZSTD_LEVEL) -> zstandard.ZstdCompressor:
    """The compressor of chunk payloads: each is one zstd frame with its content size and a checksum (so
    flipped bits are caught)."""
    return zstandard.ZstdCompressor(level=level, write_checksum=True)


def compress_payload(body: bytes, compressor: zstandard.ZstdCompressor | None = None) -> bytes:
    """A chunk payload (what TraceWriter writes)."""
    return (compressor or payload_compressor()).compress(body)


def decompress_payload(payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    """The msgpack body of a chunk payload, never more than MAX_PAYLOAD_BYTES whatever the payload claims."""
    if not isinstance(payload, bytes):
        raise TraceFormatError("a chunk payload is not a byte string")
    if version in ZLIB_VERSIONS:
        inflater = zlib.decompressobj()
        body = inflater.decompress(payload, MAX_PAYLOAD_BYTES)
        if inflater.unconsumed_tail:
            raise TraceFormatError("a chunk expands beyond the reader's size limit")
        return body
    size = zstandard.frame_content_size(payload)  # -1: not in the frame header
    if size > MAX_PAYLOAD_BYTES:
        raise TraceFormatError("a chunk expands beyond the reader's size limit")
    return zstandard.ZstdDecompressor().decompress(payload, max_output_size=MAX_PAYLOAD_BYTES)


# What a damaged chunk can raise while it is decoded; read_chunk turns these into a TraceFormatError.
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    msgpack.UnpackException,
    zlib.error,
    zstandard.ZstdError,
)


@dataclass(frozen=True, slots=True)
class CodeInfo:
    file_id: int
    qualname: str
    firstline: int


@dataclass(frozen=True, slots=True)
class ChunkEntry:
    number: int
    start: int
    count: int
    offset: int
    summary: ChunkSummary


class TraceWriter:
    """Appends records to a trace file, flushing each chunk to the OS so a killed process loses little.

    With background=True a raw thread compresses and writes the chunks (zstd releases the GIL, so that
    work runs beside the program on another core); records still reach the file in the order they were
    added, at most _BACKLOG records behind, and close() waits for all of them."""

    _BACKLOG = 16  # chunks waiting for the writer thread before add_chunk waits for it

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: dict[str, Any],
        *,
        background: bool = False,
        level: int = ZSTD_LEVEL,
    ) -> None:
        self.path = os.fspath(path)
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - kept open for the whole recording
        self._packer = msgpack.Packer(use_bin_type=True)
        self._chunks: list[list[Any]] = []
        self._files: list[list[Any]] = []
        self._codes: list[list[Any]] = []
        self._files_crc = 0  # CRC-32 of the file records, one after the other
        self._codes_crc = 0  # and of the code records
        self._offset = 0
        # Used by one thread at a time: the writer thread, or the caller when there is none.
        self._compressor = payload_compressor(level)
        head = MAGIC + self._packer.pack(dict(header, format_version=FORMAT_VERSION))
        self._header_crc = zlib.crc32(head)
        self._write(head)
        self._file.flush()
        self.closed = False
        self.error: BaseException | None = None
        # Jobs for the writer thread (see _work). Handing one over is a deque append and one lock release,
        # never a wait unless _BACKLOG jobs are already waiting. `_wake` and `_room` are binary signals (a
        # release when already released is dropped); each side re-checks the deque after waking, so a
        # signal is never lost.
        self._jobs: deque[Any] | None = None
        self.worker_ident: int | None = None  # the writer thread (it must never wait for the recorder)
        if background:
            self._jobs = deque()
            self._wake = _thread.allocate_lock()
            self._wake.acquire()
            self._room = _thread.allocate_lock()
            self._room.acquire()
            self._idle = _thread.allocate_lock()
            self._idle.acquire()
            self.worker_ident = _thread.start_new_thread(self._work, (self._jobs,))

    @staticmethod
    def _signal(lock: Any) -> None:
        try:
            lock.release()
        except RuntimeError:  # already signalled
            pass

    def _work(self, jobs: deque[Any]) -> None:
        # The writer takes every job waiting and writes them as one batch: one zstd call for all the chunks
        # (multi_compress_to_buffer, without the GIL) and one write. While the program runs Python code, each
        # time this thread wants the GIL back it may wait a switch interval (5 ms), so doing that once per
        # batch rather than a few times per chunk is what lets it keep up.
        done = False
        while not done:
            while not jobs:
                self._wake.acquire()
            batch = []
            while jobs:
                job = jobs.popleft()
                if job is None:
                    done = True
                    break
                batch.append(job)
            if self.error is None and batch:
                try:
                    self._run(batch)
                except BaseException as exc:  # reported by the next add_chunk / close
                    self.error = exc
            self._signal(self._room)
        self._idle.release()

    def _run(self, batch: list[tuple[Any, ...]]) -> None:
        """Write a batch of jobs, in order: ("file", id, path, source), ("code", id, file id, qualname,
        first line), ("chunk", body, start, count, packed summary)."""
        bodies = [job[1] for job in batch if job[0] == "chunk"]
        if len(bodies) > 1:
            payloads: Iterator[Any] = iter(self._compressor.multi_compress_to_buffer(bodies))
        else:
            payloads = iter([self._compressor.compress(body) for body in bodies])
        pack = self._packer.pack
        parts = []
        offset = self._offset
        for job in batch:
            kind = job[0]
            if kind == "chunk":
                _kind, _body, start, count, packed = job
                record = pack([TAG_CHUNK, len(self._chunks), start, count, packed, bytes(next(payloads))])
                self._chunks.append([start, count, offset, packed])
            elif kind == "file":
                record = pack([TAG_FILE, *job[1:]])
                self._files.append([job[1], job[2], offset])
                self._files_crc = zlib.crc32(record, self._files_crc)
            else:
                record = pack([TAG_CODE, *job[1:]])
                self._codes.append(list(job[1:]))
                self._codes_crc = zlib.crc32(record, self._codes_crc)
            parts.append(record)
            offset += len(record)
        self._write(b"".join(parts))
        self.flush()

    def _submit(self, job: tuple[Any, ...]) -> None:
        if self.error is not None:
            raise OSError(f"writing the trace failed: {self.error}")
        jobs = self._jobs
        if jobs is None:
            self._run([job])
            return
        while len(jobs) >= self._BACKLOG:
            self._room.acquire(timeout=0.05)  # the writer signals after each batch; the timeout is a backstop
        jobs.append(job)
        self._signal(self._wake)

    def _drain(self) -> None:
        if self._jobs is not None:
            self._jobs.append(None)
            self._signal(self._wake)
            self._idle.acquire()
            self._jobs = None

    def _write(self, data: bytes) -> int:
        offset = self._offset
        self._file.write(data)
        self._offset += len(data)
        return offset

    def add_file(self, file_id: int, path: str, source: str | None) -> None:
        self._submit(("file", file_id, path, source))

    def add_code(self, code_id: int, file_id: int, qualname: str, firstline: int) -> None:
        self._submit(("code", code_id, file_id, qualname, firstline))

    def add_chunk(self, chunk: ChunkData, summary: ChunkSummary) -> None:
        self._submit(("chunk", chunk.pack_body(), chunk.start, len(chunk), summary.pack()))

    def flush(self) -> None:
        self._file.flush()

    def close(self, footer: dict[str, Any]) -> None:
        if self.closed:
            return
        self.closed = True
        self._drain()
        if self.error is not None:
            footer = dict(footer, error=footer.get("error") or f"writing a chunk failed: {self.error}")
        body = dict(footer, chunks=self._chunks, files=self._files, codes=self._codes)
        record = self._packer.pack([TAG_FOOTER, body])
        offset = self._write(record)
        crcs = CHECKSUMS.pack(zlib.crc32(record), self._header_crc, self._files_crc, self._codes_crc)
        self._write(CHECKSUMS_HEAD + crcs)
        self._write(TRAILER.pack(offset, TRAILER_MAGIC))
        self._file.flush()
        self._file.close()

    def abandon(self) -> None:
        """Close the handle without a footer: in a forked child (which must not touch the file), or after
        close() failed to write the footer (the trace then reads up to its last complete chunk)."""
        self.closed = True
        self._jobs = None  # a forked child has no writer thread
        try:
            self._file.close()
        except Exception:
            pass


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise TraceFormatError(what)


class TraceReader:
    """Validating, lazy reader: opening reads the header and the index only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        name = os.path.basename(self.path)
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise TraceFormatError(f"{self.path}: no such trace file") from None
        except IsADirectoryError:
            raise TraceFormatError(f"{self.path} is a directory, not a trace file") from None
        except OSError as exc:
            raise TraceFormatError(f"{self.path} cannot be read: {exc.strerror}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self.files: dict[int, tuple[str, int]] = {}
        self.codes: dict[int, CodeInfo] = {}
        self.chunks: list[ChunkEntry] = []
        self.footer: dict[str, Any] | None = None
        self._footer_offset: int | None = None  # where the footer record starts (None: no footer read)
        self.truncated_at: int | None = None
        # What the checksums record says (None: a file written before it, or no footer), and the damage
        # found so far: on opening (header, footer), then by every chunk read (read_chunk) and by verify().
        self.checksums: tuple[int, ...] | None = None  # CRC-32 of footer, header, file and code records
        self._damage: list[Damage] = []
        self.damaged_chunks: dict[int, CorruptChunkError] = {}
        self._head_damage: dict[int, Damage] = {}
        self._packed_summaries: list[Any] = []  # the footer's copy of each chunk's summary, as stored
        self._files_checked = self._codes_checked = False
        self._sources: dict[int, str | None] = {}
        try:
            self._open(name)
        except TraceFormatError:
            self._file.close()
            raise
        except _DECODE_ERRORS as exc:
            self._file.close()
            raise TraceFormatError(f"{name} is corrupt ({type(exc).__name__}: {exc})") from None

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self, name: str) -> None:
        _check(self.size > 0, f"{name} is empty, not a Retrograde trace")
        magic = self._file.read(len(MAGIC))
        _check(magic == MAGIC, f"{name} is not a Retrograde trace (wrong magic bytes)")
        unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
        try:
            header = unpacker.unpack()
        except msgpack.OutOfData:
            raise TraceFormatError(f"{name} is truncated inside its header") from None
        _check(isinstance(header, dict), f"{name} has a corrupt header")
        version = header.get("format_version")
        _check(
            type(version) is int and version in READABLE_VERSIONS,
            f"{name} uses trace format {version!r}; this Retrograde reads formats "
            + ", ".join(map(str, READABLE_VERSIONS)),
        )
        self.header: dict[str, Any] = header
        self.version: int = version
        self._body_start = len(MAGIC) + unpacker.tell()
        if not self._read_footer(name):
            self._scan(name)

    def _crc(self, start: int, stop: int, value: int = 0) -> int:
        """CRC-32 of the file's bytes start..stop-1, read a megabyte at a time."""
        self._file.seek(start)
        while start < stop:
            block = self._file.read(min(stop - start, 1 << 20))
            if not block:
                break
            value = zlib.crc32(block, value)
            start += len(block)
        return value

    def _read_checksums(self) -> tuple[int, ...] | None:
        """The checksums record before the trailer, or None (an older file, or no footer)."""
        at = self.size - TRAILER.size - CHECKSUMS_RECORD_SIZE
        if at < self._body_start:
            return None
        self._file.seek(at)
        data = self._file.read(CHECKSUMS_RECORD_SIZE)
        if not data.startswith(CHECKSUMS_HEAD):
            return None
        return CHECKSUMS.unpack(data[len(CHECKSUMS_HEAD) :])

    def _read_footer(self, name: str) -> bool:
        if self.size < self._body_start + TRAILER.size:
            return False
        self._file.seek(self.size - TRAILER.size)
        offset, magic = TRAILER.unpack(self._file.read(TRAILER.size))
        if magic != TRAILER_MAGIC:
            if self._read_checksums() is not None:  # a finished recording whose trailer is damaged
                why = "its magic bytes are wrong; the chunks were re-indexed"
                self._damage.append(Damage("trailer", why))
            return False
        checksums = self._read_checksums()
        footer_end = self.size - TRAILER.size - (CHECKSUMS_RECORD_SIZE if checksums else 0)
        if checksums is not None:
            self.checksums = checksums
            if self._crc(0, self._body_start) != checksums[1]:
                why = "its checksum does not match: argv, cwd or python may be wrong"
                self._damage.append(Damage("header", why))
            if not (self._body_start <= offset < footer_end):
                why = "it points outside the file; the chunks were re-indexed"
                self._damage.append(Damage("trailer", why))
                return False
            if self._crc(offset, footer_end) != checksums[0]:
                why = "its checksum does not match; the chunks were re-indexed, the exit status is lost"
                self._damage.append(Damage("footer", why))
                return False
        if not (self._body_start <= offset < footer_end):
            return False
        self._file.seek(offset)
        unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
        try:
            record = unpacker.unpack()
        except msgpack.OutOfData:
            raise TraceFormatError(f"{name} is truncated at byte {self.size}") from None
        if checksums is None and offset + unpacker.tell() == footer_end - CHECKSUMS_RECORD_SIZE:
            # The footer leaves exactly a checksums record's room before the trailer: it is there, damaged.
            why = "it does not parse, so the footer, header, file and code records go unchecked"
            self._damage.append(Damage("checksums record", why))
        _check(
            isinstance(record, list) and len(record) == 2 and record[0] == TAG_FOOTER,
            f"{name} has a corrupt footer",
        )
        footer = record[1]
        _check(isinstance(footer, dict), f"{name} has a corrupt footer")
        for file_id, path, file_offset in footer["files"]:
            self.files[int(file_id)] = (str(path), int(file_offset))
        for code_id, file_id, qualname, firstline in footer["codes"]:
            self.codes[int(code_id)] = CodeInfo(int(file_id), str(qualname), int(firstline))
        expected = 0
        for number, (start, count, chunk_offset, summary) in enumerate(footer["chunks"]):
            _check(start == expected and count > 0, f"{name} has an inconsistent chunk index")
            _check(self._body_start <= chunk_offset < offset, f"{name} has a chunk offset out of range")
            self.chunks.append(
                ChunkEntry(number, int(start), int(count), int(chunk_offset), ChunkSummary.unpack(summary))
            )
            self._packed_summaries.append(summary)
            expected = start + count
        _check(expected == footer.get("steps", expected), f"{name}: the index and the step count disagree")
        self.footer = footer
        self._footer_offset = offset
        return True

    def _scan(self, name: str) -> None:
        """No footer (the recording was killed or is still running): rebuild the index by a scan."""
        self._file.seek(self._body_start)
        unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
        expected = 0
        while True:
            offset = self._body_start + unpacker.tell()
            try:
                record = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except _DECODE_ERRORS:
                break  # garbage after the last good record: treat like a cut
            if not isinstance(record, list) or not record:
                break
            tag = record[0]
            if tag == TAG_FILE and len(record) == 4:
                self.files[int(record[1])] = (str(record[2]), offset)
                self._sources[int(record[1])] = record[3] if isinstance(record[3], str) else None
            elif tag == TAG_CODE and len(record) == 5:
                self.codes[int(record[1])] = CodeInfo(int(record[2]), str(record[3]), int(record[4]))
            elif tag == TAG_CHUNK and len(record) == 6:
                number, start, count, summary = record[1], record[2], record[3], record[4]
                if start != expected or count <= 0 or number != len(self.chunks):
                    break
                self.chunks.append(
                    ChunkEntry(int(number), int(start), int(count), offset, ChunkSummary.unpack(summary))
                )
                expected = start + count
            elif tag == TAG_FOOTER:
                break  # a footer without a valid trailer: the index above is what we trust
            else:
                break
        self.truncated_at = expected

    # -- access ----------------------------------------------------------------------------------------
    def _record_at(self, offset: int) -> Any:
        self._file.seek(offset)
        unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
        try:
            return unpacker.unpack()
        except msgpack.OutOfData:
            raise TraceFormatError(
                f"{os.path.basename(self.path)} is truncated at byte {self.size}"
            ) from None

    @property
    def step_count(self) -> int:
        return self.chunks[-1].start + self.chunks[-1].count if self.chunks else 0

    @property
    def truncated(self) -> bool:
        """True when the recording did not end cleanly (killed) or stopped at --max-steps."""
        return self.truncated_at is not None or bool(self.footer and self.footer.get("max_steps_reached"))

    def read_chunk(self, number: int) -> ChunkData:
        """Chunk `number` decoded; CorruptChunkError (also kept in damaged_chunks) if it cannot be read.

        The payload is what counts: a record head (number, steps, summary) that disagrees with the index
        is noted as damage (the footer's index is checksummed, so it is the head that is wrong) while the
        steps, checked by the payload's own checksum, still read."""
        entry = self.chunks[number]
        try:
            self._file.seek(entry.offset)
            unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
            record = unpacker.unpack()
            _check(
                isinstance(record, list) and len(record) == 6 and isinstance(record[5], bytes),
                "its record is not a chunk record",
            )
            # A damaged head (a length byte) can make the record swallow the next one, whose intact payload
            # would then pass for this chunk's: a record must end before the next record the index knows.
            end = entry.offset + unpacker.tell()
            _check(end <= self._record_limit(number), "its record runs into the next")
            data = ChunkData.unpack_payload(entry.start, entry.count, record[5], version=self.version)
        except msgpack.OutOfData:
            reason = "its record runs past the end of the file"
        except _DECODE_ERRORS as exc:
            reason = _chunk_reason(exc)
        except TraceFormatError as exc:
            reason = str(exc)
        else:
            packed = self._packed_summaries[number] if number < len(self._packed_summaries) else record[4]
            if record[:4] != [TAG_CHUNK, number, entry.start, entry.count] or record[4] != packed:
                self._head_damage[number] = Damage(
                    "chunk head", "it disagrees with the index; the steps still read", number, entry.start,
                    entry.start + entry.count,
                )
            return data
        error = CorruptChunkError(self.path, number, len(self.chunks), entry.start, entry.count, reason)
        self.damaged_chunks[number] = error
        raise error

    def _record_limit(self, number: int) -> int:
        """Where chunk `number`'s record must end at the latest: the next chunk's record, else the footer."""
        if number + 1 < len(self.chunks):
            return self.chunks[number + 1].offset
        return self.size if self._footer_offset is None else self._footer_offset

    @property
    def damage(self) -> list[Damage]:
        """Every damaged part found so far (call verify() to look at every chunk and file record)."""
        chunks = [
            Damage("chunk", error.reason, number, error.start, error.stop)
            for number, error in sorted(self.damaged_chunks.items())
        ]
        heads = [self._head_damage[n] for n in sorted(self._head_damage) if n not in self.damaged_chunks]
        return [*self._damage, *chunks, *heads]

    def verify_files(self) -> None:
        """Check the file records (paths and source text) against their checksum, when the file has one."""
        if self.checksums is None or self._files_checked:
            return
        self._files_checked = True
        value = 0
        for _path, offset in sorted(self.files.values(), key=lambda item: item[1]):
            try:
                self._file.seek(offset)
                unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
                unpacker.skip()
                value = self._crc(offset, offset + unpacker.tell(), value)
            except _DECODE_ERRORS:
                value = -1
                break
        if value != self.checksums[2]:
            why = "their checksum does not match: a path or source text may be wrong"
            self._damage.append(Damage("file records", why))

    def _verify_codes(self) -> None:
        """Check the code records (function names) against their checksum: one pass over the records. A
        chunk record that does not parse is skipped (read_chunk reports it); if that skip may have passed
        over code records, they go unchecked."""
        assert self.checksums is not None
        chunk_offsets = {entry.offset for entry in self.chunks}
        known = sorted(chunk_offsets | {offset for _path, offset in self.files.values()})
        value, offset, skipped = 0, self._body_start, False
        while offset < self.size:
            self._file.seek(offset)
            unpacker = msgpack.Unpacker(self._file, **_UNPACK_LIMITS)
            try:
                record = unpacker.unpack()
                _check(isinstance(record, list) and bool(record), "not a record")
            except (TraceFormatError, *_DECODE_ERRORS):
                later = [k for k in known if k > offset]
                if offset not in chunk_offsets or not later:
                    why = f"the record at byte {offset} does not parse"
                    self._damage.append(Damage("records", why))
                    return
                offset, skipped = later[0], True
                continue
            end = offset + unpacker.tell()
            if record[0] == TAG_FOOTER:
                break
            if record[0] == TAG_CODE:
                value = self._crc(offset, end, value)
            offset = end
        if value != self.checksums[3] and not skipped:
            self._damage.append(Damage("code records", "their checksum does not match: a name may be wrong"))

    def verify(self) -> list[Damage]:
        """Read every chunk (checking its zstd checksum, contents and record head) and, when the file has a
        checksums record, its file and code records; returns the damage found (empty: the file is whole)."""
        for number in range(len(self.chunks)):
            if number not in self.damaged_chunks:
                try:
                    self.read_chunk(number)
                except CorruptChunkError:
                    pass
        if self.checksums is not None and not self._codes_checked:
            self._codes_checked = True
            self.verify_files()
            self._verify_codes()
        return self.damage

    def source(self, file_id: int) -> str | None:
        if file_id not in self._sources:
            _path, offset = self.files[file_id]
            try:
                record = self._record_at(offset)
            except (ValueError, msgpack.UnpackException) as exc:
                raise TraceFormatError(
                    f"{os.path.basename(self.path)} has a corrupt source record ({type(exc).__name__})"
                ) from None
            ok = isinstance(record, list) and len(record) == 4 and isinstance(record[3], str | None)
            self._sources[file_id] = record[3] if ok else None
        return self._sources[file_id]

    def file_path(self, file_id: int) -> str:
        return self.files[file_id][0]

    def iter_chunks(self) -> Iterator[ChunkData]:
        for number in range(len(self.chunks)):
            yield self.read_chunk(number)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summarize_chunk(
    chunk: ChunkData, pairs: frozenset[tuple[int, int]], names: set[str], depths: tuple[int, int]
) -> ChunkSummary:
    """A chunk's index summary (built at flush time, off the per-step path).

    pairs are the distinct (code id, line) of its steps, names the names its changes mention, depths the
    least and greatest depth of the frames when they stepped; a generator that moved to another caller in
    the chunk (chunk.moves) also counts with its new depth."""
    events = chunk.events
    # One memchr per event kind: set(events) would make and hash an int per step.
    events_mask = sum(1 << ev for ev in range(len(EVENT_NAMES)) if ev in events)
    low, high = depths
    all_depths = [int(move[4]) for move in chunk.moves]
    if len(chunk):
        all_depths.extend((low, high))
    return ChunkSummary(
        frozenset(pairs),
        frozenset(code for code, _line in pairs),
        min(all_depths, default=0),
        max(all_depths, default=0),
        events_mask,
        frozenset(names),
        chunk.events.count(EV_LINE),
        len(chunk.outputs),
    )


def describe_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def read_header_only(data: bytes) -> dict[str, Any]:
    """Parse just the header of an in-memory trace (used by tests and tools)."""
    _check(data.startswith(MAGIC), "not a Retrograde trace (wrong magic bytes)")
    unpacker = msgpack.Unpacker(io.BytesIO(data[len(MAGIC) :]), **_UNPACK_LIMITS)
    header = unpacker.unpack()
    _check(isinstance(header, dict), "corrupt header")
    return header


# -- the JSONL export schema (`retrograde export`, `retrograde corpus export`) ------------------------
# One record per step; the one definition of the schema: both exports and anything else that writes
# steps as JSON go through export_records.
EXPORT_FIELDS = ("step", "event", "file", "line", "func", "depth", "thread", "locals", "value")


def apply_change(state: dict[str, Any], change: Sequence[Any]) -> None:
    """Apply one step's change record (offset, name, encoding, name, encoding, ...) to a frame's encoded
    locals: an encoding of None deletes the name."""
    for i in range(1, len(change) - 1, 2):
        if change[i + 1] is None:
            state.pop(change[i], None)
        else:
            state[change[i]] = change[i + 1]


def export_records(
    reader: TraceReader, *, strip_root: str = "", locals_as_pairs: bool = False, skip_damaged: bool = False
) -> Iterator[dict[str, Any]]:
    """Every step of a trace as an EXPORT_FIELDS record, in one sequential pass over the chunks.

    locals are the stepping frame's locals after the step (repr text); value is the return, yield or
    exception value (None for an unwinding frame); strip_root makes files under that directory relative.
    Malformed chunk contents raise TraceFormatError (CorruptChunkError); with skip_damaged, the steps of a
    damaged chunk are left out (reader.damaged_chunks lists them) and the next chunk starts afresh from
    its keyframe, so every readable step is exported.
    """
    try:
        yield from _export_records(reader, strip_root, locals_as_pairs, skip_damaged)
    except TraceFormatError:
        raise
    except _DECODE_ERRORS as exc:
        name = os.path.basename(reader.path)
        raise TraceFormatError(
            f"{name} is corrupt: a chunk holds malformed data ({type(exc).__name__})"
        ) from None


def _readable_chunks(reader: TraceReader, skip_damaged: bool) -> Iterator[tuple[ChunkData, bool]]:
    """(chunk, whether the chunk before it was skipped as damaged) for every chunk that reads."""
    skipped = False
    for number in range(len(reader.chunks)):
        try:
            chunk = reader.read_chunk(number)
        except CorruptChunkError:
            if not skip_damaged:
                raise
            skipped = True
            continue
        yield chunk, skipped
        skipped = False


def _export_records(
    reader: TraceReader, strip_root: str, pairs: bool, skip_damaged: bool
) -> Iterator[dict[str, Any]]:
    from tracer.values import decode_text

    prefix = strip_root + os.sep if strip_root else ""
    code_file: dict[int, str] = {}
    code_name: dict[int, str] = {}
    for code_id, info in reader.codes.items():
        path = reader.file_path(info.file_id) if info.file_id in reader.files else "?"
        code_file[code_id] = path[len(prefix) :] if prefix and path.startswith(prefix) else path
        code_name[code_id] = info.qualname
    states: dict[int, dict[str, Any]] = {}  # fid -> encoded locals of every live frame
    for chunk, after_gap in _readable_chunks(reader, skip_damaged):
        if after_gap:
            states.clear()  # changes were lost with the damaged chunk: the keyframe has every live frame
        # (code_id, thread, depth) per frame at the chunk's start; a generator resumed under another
        # caller takes the new thread and depth at its move's offset (chunk.moves is in step order).
        meta: dict[int, tuple[int, int, int]] = {}
        for fid, entry in chunk.keyframe.items():
            meta[int(fid)] = (int(entry[0]), int(entry[2]), int(entry[3]))
            if fid not in states:
                states[fid] = dict(entry[5])
        for fid, entry in chunk.frames.items():
            meta[int(fid)] = (int(entry[0]), int(entry[2]), int(entry[3]))
        moves = sorted(chunk.moves, key=lambda move: int(move[0]))
        next_move = 0
        changes = {change[0]: change for change in chunk.changes}
        values = {int(off): enc for off, enc in chunk.values}
        for off, fid in enumerate(chunk.fids):
            while next_move < len(moves) and int(moves[next_move][0]) <= off:
                _off, moved, _parent, thread, depth = moves[next_move]
                if moved in meta:
                    meta[moved] = (meta[moved][0], int(thread), int(depth))
                next_move += 1
            frame = meta.get(fid)
            if frame is None:
                raise TraceFormatError(f"step {chunk.start + off} names a frame the trace never introduced")
            state = states.get(fid)
            if state is None:
                state = states[fid] = {}
            change = changes.get(off)
            if change is not None:
                apply_change(state, change)
            event = chunk.events[off]
            enc = values.get(off)
            local_text = {name: decode_text(value)[0] for name, value in state.items()}
            code_id, thread, depth = frame
            yield {
                "step": chunk.start + off,
                "event": EVENT_NAMES[event] if event < len(EVENT_NAMES) else "line",
                "file": code_file.get(code_id, "?"),
                "line": chunk.lines[off],
                "func": code_name.get(code_id, "?"),
                "depth": depth,
                "thread": thread,
                "locals": [[k, v] for k, v in local_text.items()] if pairs else local_text,
                "value": decode_text(enc)[0] if enc is not None and event != EV_UNWIND else None,
            }
            if event in (EV_RETURN, EV_UNWIND):
                states.pop(fid, None)
