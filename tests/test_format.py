"""The trace file reader on bad input: empty, foreign, wrong version, truncated, corrupt and hostile files.

Whatever the bytes, reading either works (a truncated trace opens as a prefix of the full one) or raises
TraceFormatError (on open) / TimelineError (on navigation) with a clear sentence; never another exception.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import struct
import threading
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from conftest import RunRetrograde

from replay.recorded import RecordedTimeline
from replay.timeline import TimelineError
from tracer.format import (
    FORMAT_VERSION,
    MAGIC,
    MAX_PAYLOAD_BYTES,
    TAG_CHUNK,
    TAG_CODE,
    TAG_FILE,
    TAG_FOOTER,
    TRAILER,
    TRAILER_MAGIC,
    ChunkData,
    TraceFormatError,
    TraceReader,
    compress_payload,
    decompress_payload,
    read_header_only,
)
from tracer.monitor import compiled_available

# A small program with calls, returns, an exception and output, so chunks carry every kind of column.
PROGRAM = """\
def square(n):
    result = n * n
    return result


def risky(k):
    if k == 3:
        raise ValueError(k)
    return k


values = []
for i in range(6):
    values.append(square(i))
    try:
        risky(i)
    except ValueError as exc:
        print("caught", exc)
print("done", values)
"""


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> dict[str, Path]:
    """The program recorded with tiny chunks (many keyframes) and with the default chunk size."""
    root = tmp_path_factory.mktemp("format")
    script = root / "prog.py"
    script.write_text(PROGRAM)
    out = {}
    for name, extra in (("small", ["--chunk-steps", "5"]), ("default", [])):
        trace = root / f"{name}.rtrace"
        done = run_retrograde(["record", "-o", trace, *extra, script], cwd=root)
        assert done.returncode == 0, done.stderr
        assert "done [0, 1, 4, 9, 16, 25]" in done.stdout
        out[name] = trace
    return out


def full_dump(timeline: RecordedTimeline) -> list[tuple[Any, ...]]:
    """Every step with its locals, via the sequential path."""
    return [(step, dict(state)) for step, state in timeline.iter_states()]


def read_everything(path: Path) -> int:
    """Open and navigate a trace in every way replay does; returns its step count."""
    timeline = RecordedTimeline(path)
    try:
        n = len(timeline)
        for _step, _state in timeline.iter_states():
            pass
        for i in range(0, n, 3):
            timeline.step(i)
            timeline.locals_at(i)
            timeline.stack_at(i)
        if n:
            timeline.output_until(n - 1)
        timeline.all_output()
        timeline.summaries()
        for file in timeline.files:
            timeline.source(file)
        return n
    finally:
        timeline.close()


def assert_clear(message: str) -> None:
    assert message and "\n" not in message
    assert "Traceback" not in message


# -- files that are not traces ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="no such trace file"):
        TraceReader(tmp_path / "absent.rtrace")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="directory"):
        TraceReader(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.rtrace"
    path.write_bytes(b"")
    with pytest.raises(TraceFormatError, match="empty") as info:
        TraceReader(path)
    assert "empty.rtrace" in str(info.value)
    assert_clear(str(info.value))


@pytest.mark.parametrize(
    "content",
    [
        bytes(random.Random(7).randrange(256) for _ in range(4096)),
        json.dumps({"steps": [1, 2, 3], "format_version": 1}).encode(),
        b"print('hello')\n",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        b"RTGTRAC",  # a prefix of the magic only
        b"RTGTRACX" + msgpack.packb({"format_version": FORMAT_VERSION}),
        TRAILER.pack(0, TRAILER_MAGIC),
    ],
    ids=["random", "json", "python", "png", "short-magic", "wrong-magic", "trailer-only"],
)
def test_foreign_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.rtrace"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError, match="not a Retrograde trace") as info:
        TraceReader(path)
    assert_clear(str(info.value))
    with pytest.raises(TraceFormatError):
        RecordedTimeline(path)


def test_magic_only(tmp_path: Path) -> None:
    path = tmp_path / "magic.rtrace"
    path.write_bytes(MAGIC)
    with pytest.raises(TraceFormatError, match="truncated inside its header"):
        TraceReader(path)


@pytest.mark.parametrize("header", [[1, 2, 3], "text", 17, None], ids=["list", "str", "int", "nil"])
def test_header_not_a_map(tmp_path: Path, header: object) -> None:
    path = tmp_path / "bad-header.rtrace"
    path.write_bytes(MAGIC + msgpack.packb(header))
    with pytest.raises(TraceFormatError, match="corrupt header"):
        TraceReader(path)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1", None])
def test_wrong_format_version(tmp_path: Path, traces: dict[str, Path], version: object) -> None:
    data = traces["small"].read_bytes()
    header = read_header_only(data)
    assert header["format_version"] == FORMAT_VERSION
    header_len = len(msgpack.packb(header))
    if version is None:
        del header["format_version"]
    else:
        header["format_version"] = version
    path = tmp_path / "version.rtrace"
    path.write_bytes(MAGIC + msgpack.packb(header) + data[len(MAGIC) + header_len :])
    with pytest.raises(TraceFormatError, match="this Retrograde reads formats 1, 2, 3, 4") as info:
        TraceReader(path)
    assert repr(version) in str(info.value)
    assert_clear(str(info.value))


def _as_zlib_format(data: bytes, version: int) -> bytes:
    """The same trace written as format `version` (1 or 2): chunk payloads as zlib streams, no footer."""
    header = read_header_only(data)
    header_len = len(msgpack.packb(header))
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data[len(MAGIC) + header_len :])
    out = [MAGIC, msgpack.packb(dict(header, format_version=version))]
    for record in unpacker:
        if not isinstance(record, list) or record[0] not in (TAG_CHUNK, 1, 2):
            break  # the footer: the reader then indexes the chunks by a scan
        if record[0] == TAG_CHUNK:
            record[5] = zlib.compress(decompress_payload(record[5]), 3)
        out.append(msgpack.packb(record, use_bin_type=True))
    return b"".join(out)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("which", ["small", "default"])
def test_zlib_formats_still_read(tmp_path: Path, traces: dict[str, Path], version: int, which: str) -> None:
    """Formats 1 and 2 differ from 3 only in the chunk compression (zlib) and, for 1, no native scalars."""
    path = tmp_path / f"v{version}.rtrace"
    path.write_bytes(_as_zlib_format(traces[which].read_bytes(), version))
    with TraceReader(path) as old, TraceReader(traces[which]) as new:
        assert old.header["format_version"] == version
        assert [c.start for c in old.chunks] == [c.start for c in new.chunks]
        assert new.chunks
        for number in range(len(new.chunks)):
            assert old.read_chunk(number) == new.read_chunk(number)
    old_timeline, new_timeline = RecordedTimeline(path), RecordedTimeline(traces[which])
    try:
        assert len(old_timeline) == len(new_timeline) > 0
        assert list(old_timeline.iter_states()) == list(new_timeline.iter_states())
    finally:
        old_timeline.close()
        new_timeline.close()


def test_payload_size_claim_is_checked() -> None:
    """A zstd frame that claims more than the reader's limit is refused before it is inflated."""
    body = b"x" * 1000
    frame = compress_payload(body)
    assert zstandard.frame_content_size(frame) == len(body)
    assert decompress_payload(frame) == body
    # A frame header (magic, descriptor 0xE0: single segment, 8-byte content size) claiming one byte more
    # than the limit, and no data: the claim alone must be refused.
    claim = b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", MAX_PAYLOAD_BYTES + 1)
    assert zstandard.frame_content_size(claim) == MAX_PAYLOAD_BYTES + 1
    with pytest.raises(TraceFormatError, match="size limit"):
        decompress_payload(claim)


def test_header_records_what_the_issue_asks(traces: dict[str, Path]) -> None:
    with TraceReader(traces["default"]) as reader:
        header = reader.header
        for key in ("format_version", "argv", "cwd", "python", "start_time"):
            assert key in header, key
        assert reader.footer is not None and not reader.truncated
        assert reader.truncated_at is None
        # Every traced file's source is in the trace, so replay needs no original files.
        (file_id,) = reader.files
        assert reader.source(file_id) == PROGRAM


# -- truncation at every few bytes ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["small", "default"])
def test_truncated_at_many_offsets_is_a_prefix(tmp_path: Path, traces: dict[str, Path], which: str) -> None:
    data = traces[which].read_bytes()
    full = RecordedTimeline(traces[which])
    reference = full_dump(full)
    full_len = len(full)
    full_locals = [full.locals_at(i) for i in range(full_len)]
    full.close()
    assert full_len > 50
    with TraceReader(traces[which]) as reader:
        body_start = reader._body_start
    path = tmp_path / "cut.rtrace"
    counts: set[int] = set()
    header_errors = 0
    for cut in range(0, len(data), 7 if which == "small" else 5):
        path.write_bytes(data[:cut])
        try:
            timeline = RecordedTimeline(path)
        except TraceFormatError as exc:
            # Only a cut inside the magic or the header may fail to open.
            assert cut < body_start, f"cut at byte {cut} of {len(data)}: {exc}"
            assert_clear(str(exc))
            header_errors += 1
            continue
        assert cut >= body_start
        try:
            k = timeline.truncated_at
            assert k is not None, f"cut at byte {cut}: not reported as truncated"
            assert k == len(timeline) <= full_len
            got = full_dump(timeline)
            assert got == reference[:k], f"cut at byte {cut}: steps differ from the full trace's first {k}"
            for i in random.Random(cut).sample(range(k), min(k, 10)):
                assert timeline.locals_at(i) == full_locals[i]
                assert timeline.step(i) == reference[i][0]
            counts.add(k)
        finally:
            timeline.close()
    assert header_errors > 0
    if which == "small":
        # Tiny chunks: many distinct prefixes, growing to the whole trace once only the footer is cut.
        assert len(counts) > 10
        assert 0 in counts and full_len in counts


def test_garbage_after_trace_keeps_all_steps(tmp_path: Path, traces: dict[str, Path]) -> None:
    data = traces["small"].read_bytes()
    path = tmp_path / "garbage.rtrace"
    path.write_bytes(data + b"\x00garbage" * 10)
    full = RecordedTimeline(traces["small"])
    timeline = RecordedTimeline(path)
    assert timeline.truncated_at == len(full)
    assert full_dump(timeline) == full_dump(full)


# -- corruption inside chunks -----------------------------------------------------------------------------


def _read_or_clean_error(path: Path) -> str:
    try:
        read_everything(path)
    except (TraceFormatError, TimelineError) as exc:
        assert_clear(str(exc))
        return "error"
    return "ok"


def _regions(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every part of a trace file: magic, header, file, code, the head of a chunk
    record (its array header, tag, number, start, count, summary and the payload's bin header), the chunk
    payload itself (a zstd frame), footer, trailer."""
    regions = [(0, len(MAGIC), "magic")]
    unpacker = msgpack.Unpacker(io.BytesIO(data[len(MAGIC):]), raw=False, strict_map_key=False)
    position = len(MAGIC)
    while True:
        record = unpacker.unpack()
        end = len(MAGIC) + unpacker.tell()
        if isinstance(record, dict):
            regions.append((position, end, "header"))
        elif record[0] == TAG_CHUNK:
            payload = len(record[5])
            regions += [(position, end - payload, "chunk head"), (end - payload, end, "chunk payload")]
        else:
            names = {TAG_FILE: "file", TAG_CODE: "code", TAG_FOOTER: "footer"}
            regions.append((position, end, names[record[0]]))
        position = end
        if isinstance(record, list) and record[0] == TAG_FOOTER:
            break
    regions.append((position, len(data), "trailer"))
    return regions


def _flip_outcome(path: Path, data: bytes, position: int, mask: int, full: list[tuple[Any, ...]]) -> str:
    """"error" (a clean TraceFormatError/TimelineError), "same" (read in full, every step and local as
    before), "truncated" (reported as truncated, the steps it keeps as before) or "changed" (read without
    complaint, but different)."""
    corrupt = bytearray(data)
    corrupt[position] ^= mask
    path.write_bytes(bytes(corrupt))
    try:
        read_everything(path)
        timeline = RecordedTimeline(path)
    except (TraceFormatError, TimelineError) as exc:
        assert_clear(str(exc))
        return "error"
    try:
        got = full_dump(timeline)
        if timeline.truncated_at is not None and got == full[: timeline.truncated_at]:
            return "truncated"  # reported: the reader fell back to scanning the records
        return "same" if got == full and timeline.truncated_at is None else "changed"
    finally:
        timeline.close()


# What a flipped byte may do, by where it is. Chunk payloads carry zstd's XXH64 checksum, and a checksums
# record (between the footer and the trailer) carries CRC-32s of the header, the file and code records and
# the footer, so:
# - magic: the file is refused.
# - chunk payload: always an error (the checksum, or the frame header no longer parses).
# - chunk head, file and code records, header, trailer: an error, or harmless. The reader takes every
#   chunk's start, count and summary from the footer's index and names from the footer's tables, so these
#   copies do not change a step (`retrograde info` reports the damage: tests/test_corrupt.py); a flip in
#   the trailer makes the reader scan the records and report the trace as truncated (with every step it
#   keeps unchanged).
# - footer: an error, harmless, or truncated (the footer fails its checksum, so the reader scans the records
#   and reports the trace as truncated). Never a silent change of a step.
ALLOWED = {
    "magic": {"error"},
    "chunk payload": {"error"},
    "chunk head": {"error", "same"},
    "file": {"error", "same"},
    "code": {"error", "same"},
    "header": {"error", "same"},
    "trailer": {"error", "same", "truncated"},
    "footer": {"error", "same", "truncated"},
}


@pytest.mark.parametrize("which", ["small", "default"])
def test_flipped_bytes_in_chunks(tmp_path: Path, traces: dict[str, Path], which: str) -> None:
    """The bytes of every chunk record flipped in turn: a payload byte is always caught; a byte of the
    record's head is caught or changes nothing (the footer's index is what the reader uses)."""
    data = traces[which].read_bytes()
    full = full_dump(RecordedTimeline(traces[which]))
    path = tmp_path / "flipped.rtrace"
    seen: dict[str, set[str]] = {}
    for start, end, kind in _regions(data):
        if not kind.startswith("chunk"):
            continue
        # Every byte of the default trace's chunks; every 3rd payload byte of the small one's many chunks.
        stride = 3 if which == "small" and kind == "chunk payload" else 1
        # A head byte under several masks: 0x91 ^ 0x55 turns a one-item array into a bin8 whose length
        # swallows the next chunk's record, whose intact payload must not pass for this chunk's.
        masks = (0xFF, 0x55, 0x01, 0x80) if kind == "chunk head" else (0xFF,)
        for position in range(start, end, stride):
            for mask in masks:
                outcome = _flip_outcome(path, data, position, mask, full)
                assert outcome in ALLOWED[kind], f"{which}: byte {position} ^ {mask:#x} ({kind}): {outcome}"
                seen.setdefault(kind, set()).add(outcome)
    assert seen["chunk payload"] == {"error"}


def test_damaged_head_cannot_borrow_the_next_payload(tmp_path: Path, traces: dict[str, Path]) -> None:
    """A head whose summary turns into a byte string long enough to swallow the rest of its record and the
    next chunk's head (what 0x91 ^ 0x55 did in CI: a one-item array became a bin8) parses as a chunk record
    whose payload is the next chunk's, intact and of the same step count: the reader refuses it, it never
    shows the next chunk's steps as this one's."""
    data = traces["small"].read_bytes()
    full = full_dump(RecordedTimeline(traces["small"]))
    heads = [(start, end) for start, end, kind in _regions(data) if kind == "chunk head"]

    def item(start: int, index: int) -> int:
        """Where item `index` of the chunk record at `start` begins."""
        unpacker = msgpack.Unpacker(io.BytesIO(data[start:]), raw=False)
        unpacker.read_array_header()
        for _ in range(index):
            unpacker.skip()
        return start + unpacker.tell()

    for number in (0, len(heads) // 2):
        summary, next_payload = item(heads[number][0], 4), item(heads[number + 1][0], 5)
        # Only 6 bytes change: the summary becomes [bin32 up to the next chunk's payload].
        corrupt = bytearray(data)
        corrupt[summary : summary + 6] = b"\x91\xc6" + struct.pack(">I", next_payload - summary - 6)
        path = tmp_path / f"borrowed{number}.rtrace"
        path.write_bytes(bytes(corrupt))
        with pytest.raises((TraceFormatError, TimelineError)) as caught:
            timeline = RecordedTimeline(path)
            try:
                assert full_dump(timeline) == full, "the next chunk's steps were shown as this one's"
            finally:
                timeline.close()
        assert_clear(str(caught.value))
        assert f"chunk {number}" in str(caught.value)


def test_flipped_bytes_everywhere(tmp_path: Path, traces: dict[str, Path]) -> None:
    """Every byte of a small trace flipped in turn (header, records, footer, trailer): each outcome is one
    its region allows (ALLOWED, argued above): no flip anywhere changes a step silently."""
    data = traces["small"].read_bytes()
    full = full_dump(RecordedTimeline(traces["small"]))
    path = tmp_path / "flipped.rtrace"
    regions = _regions(data)
    assert [kind for _, _, kind in regions][:2] == ["magic", "header"] and regions[-1][2] == "trailer"
    counts: dict[tuple[str, str], int] = {}
    for start, end, kind in regions:
        # Every byte, but every 7th of payloads (test_flipped_bytes_in_chunks takes them all) and every 2nd
        # of the footer, to stay within seconds.
        for position in range(start, end, {"chunk payload": 7, "footer": 2}.get(kind, 1)):
            outcome = _flip_outcome(path, data, position, 0x55, full)
            assert outcome in ALLOWED[kind], f"byte {position} ({kind}) flipped: {outcome}"
            counts[kind, outcome] = counts.get((kind, outcome), 0) + 1
    # Every region was reached, and the magic and the payloads were always caught.
    assert {kind for kind, _ in counts} == set(ALLOWED)
    assert counts.get(("magic", "error")) == len(MAGIC)


def test_corrupt_source_record(tmp_path: Path, traces: dict[str, Path]) -> None:
    data = traces["small"].read_bytes()
    with TraceReader(traces["small"]) as reader:
        ((_path, offset),) = reader.files.values()
    start = data.index(b"def square", offset)  # inside the recorded source text
    corrupt = bytearray(data)
    corrupt[start] = 0xFF  # not valid UTF-8
    path = tmp_path / "source.rtrace"
    path.write_bytes(bytes(corrupt))
    timeline = RecordedTimeline(path)
    try:
        (file,) = timeline.files
        assert timeline.source(file) is None
    except (TraceFormatError, TimelineError) as exc:
        assert_clear(str(exc))


def _crafted_bodies(n: int) -> dict[str, Any]:
    """Chunk payloads that are well-formed msgpack inside a valid zstd frame, but nonsense as columns."""
    kf = {0: [1, -1, 0, 0, 1, {}]}  # one live frame (fid 0) so steps have a frame to refer to
    ev, fids, lines = b"\x01" * n, [0] * n, [1] * n
    return {
        "seven-columns": [{}, ev, fids, lines, [], [], {}],
        "not-a-list": 42,
        "keyframe-str": ["not a keyframe", ev, fids, lines, [], [], {}, []],
        "frames-list": [{}, ev, fids, lines, [], [], [], []],
        "change-out-of-range": [kf, ev, fids, lines, [[99, "x", "1"]], [], {}, []],
        "unknown-fid": [{}, ev, [12345] * n, lines, [], [], {}, []],
        "unknown-event": [kf, b"\x63" * n, fids, lines, [], [], {}, []],
        "short-keyframe-entry": [{0: [1, -1, 0, 0, 1]}, ev, fids, lines, [], [], {}, []],
        "keyframe-locals-str": [{0: [1, -1, 0, 0, 1, "x"]}, ev, fids, lines, [], [], {}, []],
        "keyframe-locals-int": [{0: [1, -1, 0, 0, 1, {"a": 3}]}, ev, fids, lines, [], [], {}, []],
        "change-value-int": [kf, ev, fids, lines, [[0, "x", 5]], [], {}, []],
        "change-flags-str": [kf, ev, fids, lines, [[0, "x", ["t", "notint"]]], [], {}, []],
        "value-int": [kf, b"\x02" * n, fids, lines, [], [[0, 5]], {}, []],
        "value-empty-list": [kf, b"\x02" * n, fids, lines, [], [[0, []]], {}, []],
        "output-position-str": [kf, ev, fids, lines, [], [], {}, [["x", 1, "t"]]],
        "output-pair": [kf, ev, fids, lines, [], [], {}, [[0, 1]]],
        "outputs-int": [kf, ev, fids, lines, [], [], {}, 5],
        "output-text-int": [kf, ev, fids, lines, [], [], {}, [[0, 1, 5]]],
        "lines-str": [kf, ev, fids, ["l"] * n, [], [], {}, []],
    }


@pytest.mark.parametrize("name", list(_crafted_bodies(1)))
def test_crafted_chunk_payload(tmp_path: Path, traces: dict[str, Path], name: str) -> None:
    """A checksummed chunk whose decoded columns are nonsense: reading works or fails cleanly."""
    data = traces["small"].read_bytes()
    with TraceReader(traces["small"]) as reader:
        entry = reader.chunks[2]
        record = reader._record_at(entry.offset)
    body = _crafted_bodies(entry.count)[name]
    payload = compress_payload(msgpack.packb(body, use_bin_type=True))
    new_record = msgpack.packb([TAG_CHUNK, record[1], record[2], record[3], record[4], payload])
    path = tmp_path / "crafted.rtrace"
    # Chunk 2 becomes the last record (no footer): the reader indexes it by a scan.
    path.write_bytes(data[: entry.offset] + new_record)
    timeline = RecordedTimeline(path)
    assert timeline.truncated_at == entry.start + entry.count
    timeline.close()
    _read_or_clean_error(path)  # any exception other than the two documented ones fails the test


# -- hostile msgpack: huge declared sizes must be refused before allocating ----------------------------


HOSTILE_HEADERS = {
    "array32": b"\xdd" + struct.pack(">I", 2**31),
    "map32": b"\xdf" + struct.pack(">I", 2**31),
    "str32": b"\xdb" + struct.pack(">I", 2**31),
    "bin32": b"\xc6" + struct.pack(">I", 2**31),
    "ext32": b"\xc9" + struct.pack(">I", 2**31) + b"\x01",
    "nested-arrays": b"\x91" * 100_000,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_HEADERS))
def test_hostile_header_is_refused_without_allocating(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "hostile.rtrace"
    path.write_bytes(MAGIC + HOSTILE_HEADERS[kind] + b"\x00" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(TraceFormatError) as info:
            TraceReader(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_clear(str(info.value))
    assert peak < 50 * 1024 * 1024


@pytest.mark.parametrize("kind", ["array32", "map32", "str32", "bin32"])
def test_hostile_record_after_valid_header(tmp_path: Path, traces: dict[str, Path], kind: str) -> None:
    data = traces["small"].read_bytes()
    with TraceReader(traces["small"]) as reader:
        first_chunk = reader.chunks[0].offset
    path = tmp_path / "hostile.rtrace"
    # A valid header and file/code records, then a record that claims 2**31 elements.
    path.write_bytes(data[:first_chunk] + HOSTILE_HEADERS[kind] + b"\x00" * 64)
    tracemalloc.start()
    try:
        timeline = RecordedTimeline(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert timeline.truncated_at == 0
    assert len(timeline) == 0
    assert peak < 50 * 1024 * 1024
    timeline.close()


@pytest.mark.parametrize("kind", ["array32", "map32", "str32", "bin32"])
def test_hostile_footer(tmp_path: Path, traces: dict[str, Path], kind: str) -> None:
    data = traces["small"].read_bytes()
    with TraceReader(traces["small"]) as reader:
        last = reader.chunks[-1]
        footer_offset = TRAILER.unpack(data[-TRAILER.size :])[0]
    assert footer_offset > last.offset
    body = data[:footer_offset] + HOSTILE_HEADERS[kind] + b"\x00" * 64
    path = tmp_path / "hostile.rtrace"
    path.write_bytes(body + TRAILER.pack(footer_offset, TRAILER_MAGIC))
    with pytest.raises(TraceFormatError) as info:
        RecordedTimeline(path)
    assert_clear(str(info.value))


def test_trailer_pointing_outside_the_file_falls_back_to_a_scan(
    tmp_path: Path, traces: dict[str, Path]
) -> None:
    data = traces["small"].read_bytes()
    full = RecordedTimeline(traces["small"])
    path = tmp_path / "trailer.rtrace"
    path.write_bytes(data[: -TRAILER.size] + TRAILER.pack(len(data) * 2, TRAILER_MAGIC))
    timeline = RecordedTimeline(path)
    assert timeline.truncated_at == len(full)
    assert full_dump(timeline) == full_dump(full)


def test_footer_index_disagreeing_with_step_count(tmp_path: Path, traces: dict[str, Path]) -> None:
    data = traces["small"].read_bytes()
    footer_offset = TRAILER.unpack(data[-TRAILER.size :])[0]
    with TraceReader(traces["small"]) as reader:
        record = reader._record_at(footer_offset)
    footer = dict(record[1], steps=record[1]["steps"] + 1)
    new = msgpack.packb([record[0], footer], use_bin_type=True)
    path = tmp_path / "footer.rtrace"
    path.write_bytes(data[:footer_offset] + new + TRAILER.pack(footer_offset, TRAILER_MAGIC))
    with pytest.raises(TraceFormatError, match="disagree"):
        TraceReader(path)


def test_read_header_only(traces: dict[str, Path]) -> None:
    header = read_header_only(traces["small"].read_bytes())
    assert header["format_version"] == FORMAT_VERSION
    with pytest.raises(TraceFormatError, match="wrong magic"):
        read_header_only(b"NOTATRACE")


# -- text deltas (format 4) ---------------------------------------------------------------------------------


def _delta_body(changes: list[Any], deltas: int) -> bytes:
    keyframe = {0: [1, -1, 0, 0, 1, {"log": "[" + ", ".join(map(str, range(30))) + "]", "n": 3}]}
    body = [keyframe, b"\x01\x01\x01", [0, 0, 0], [1, 2, 3], changes, [], {}, [], [], deltas]
    return compress_payload(msgpack.packb(body, use_bin_type=True))


def test_text_deltas_resolve_against_the_keyframe_and_earlier_changes() -> None:
    base = "[" + ", ".join(map(str, range(30))) + "]"
    first = base[:-1] + ", 30]"
    second = first[:-1] + ", 'é日本']"
    changes = [
        [0, "log", [len(base) - 1, 1, ", 30"]],  # against the keyframe's text
        [1, "n", 4, "log", [len(first) - 1, 1, ", 'é日本'"]],  # against the change before
        [2, "log", None],
    ]
    chunk = ChunkData.unpack_payload(0, 3, _delta_body(changes, 2))
    assert chunk.changes == ((0, "log", first), (1, "n", 4, "log", second), (2, "log", None))
    assert chunk.deltas == 0  # resolved: nothing after the reader sees a delta


@pytest.mark.parametrize(
    "changes, deltas",
    [
        ([[0, "missing", [0, 0, "x"]]], 1),  # no earlier text for that name
        ([[0, "n", [0, 0, "x"]]], 1),  # the earlier encoding is not a text
        ([[0, "log", [80, 80, "x"]]], 1),  # prefix + suffix longer than the text
        ([[0, "log", [-1, 0, "x"]]], 1),
        ([[0, "log", [0, 0, 5]]], 1),
        ([[7, "log", [0, 0, "x"]]], 1),  # a change outside the chunk's steps
        ([], "1"),
        ([], -1),
    ],
)
def test_bad_text_deltas_are_clean_errors(changes: list[Any], deltas: object) -> None:
    with pytest.raises(TraceFormatError):
        ChunkData.unpack_payload(0, 3, _delta_body(changes, deltas))  # type: ignore[arg-type]


def test_recorder_writes_deltas_that_read_back_as_whole_texts(
    tmp_path: Path, run_retrograde: RunRetrograde
) -> None:
    """A list that grows one item per line (its repr stays under the value limit): stored as deltas, read
    back as the whole repr at every step, across chunks (each delta's base is in the keyframe)."""
    program = tmp_path / "grow.py"
    program.write_text(
        "def main():\n"
        "    items = []\n"
        "    for i in range(150):\n"
        "        items.append(i * 10)\n"
        "    print(len(items))\n"
        "main()\n"
    )
    trace = tmp_path / "grow.rtrace"
    if not compiled_available():
        pytest.skip("text deltas are written by the compiled recorder, and tracer/_core/ is not built")
    # Only the compiled recorder writes deltas: it is asked for even in the pure Python run of the suite.
    env = {**os.environ, "RETROGRADE_RECORDER": "c"}
    done = run_retrograde(["record", "--chunk-steps", "64", "-o", trace, program], cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stdout == "150\n", done.stderr
    with TraceReader(trace) as reader:
        raw = [reader._record_at(entry.offset)[5] for entry in reader.chunks]
    bodies = [msgpack.unpackb(decompress_payload(payload), strict_map_key=False) for payload in raw]
    assert len(bodies) > 3 and all(len(body) == 10 and body[9] > 0 for body in bodies[1:-1])
    timeline = RecordedTimeline(trace)
    try:
        seen = [state["items"] for step, state in timeline.iter_states() if step.line == 4]
    finally:
        timeline.close()
    assert seen == [repr([i * 10 for i in range(k)]) for k in range(150)]


@pytest.mark.parametrize("background", [False, True])
def test_writer_keeps_records_in_order(tmp_path: Path, background: bool) -> None:
    """Chunks, files and codes written in one go (the background writer takes whatever is waiting as one
    batch, compressed by one zstd call) read back in order, each chunk's payload as compress_payload gives
    it, with the index pointing at every record; with and without the footer."""
    from tracer.format import ChunkSummary, TraceWriter

    path = tmp_path / "batch.rtrace"
    writer = TraceWriter(path, {"argv": ["x"]}, background=background)
    gate, batches = threading.Event(), []
    run = writer._run

    def gated(batch: list[Any]) -> None:  # the writer waits until everything is queued: one big batch
        gate.wait(10)
        batches.append(len(batch))
        run(batch)

    if background:
        writer._run = gated  # type: ignore[method-assign]
        writer._BACKLOG = 100
    else:
        gate.set()
    writer.add_file(0, "/prog.py", "print(1)\n")
    bodies = []
    start = 0
    for number in range(40):  # all queued behind the gated first batch: the rest comes as one batch
        count = 3 + number % 4
        chunk = ChunkData(
            start=start, keyframe={}, events=bytes([1] * count), fids=[0] * count, lines=[number] * count,
            changes=[], values=[], frames={}, outputs=[], moves=[],
        )
        summary = ChunkSummary(frozenset({(7, number)}), frozenset({7}), 0, 0, 2, frozenset(), count)
        if number == 5:
            writer.add_code(7, 0, "main", 1)
        bodies.append(chunk.pack_body())
        writer.add_chunk(chunk, summary)
        start += count
    gate.set()
    writer.close({"steps": start})
    if background:
        assert sum(batches) == 42 and max(batches) > 1  # every record written, most in one batch
    with TraceReader(path) as reader:
        assert reader.step_count == start and not reader.truncated
        assert [entry.start for entry in reader.chunks] == list(itertools.accumulate(
            [0] + [3 + n % 4 for n in range(39)]))
        assert set(reader.codes) == {7} and reader.source(0) == "print(1)\n"
        for number in range(40):
            assert list(reader.read_chunk(number).lines) == [number] * (3 + number % 4)
            offset = reader.chunks[number].offset
            record = reader._record_at(offset)
            assert record[0] == TAG_CHUNK and record[5] == compress_payload(bodies[number])
    # Without its footer (a killed recording) the same records are found by scanning.
    data = path.read_bytes()
    footer_offset, _magic = TRAILER.unpack(data[-TRAILER.size :])
    cut = tmp_path / "cut.rtrace"
    cut.write_bytes(data[:footer_offset])
    with TraceReader(cut) as reader:
        assert len(reader.chunks) == 40 and reader.truncated
        assert list(reader.read_chunk(39).lines) == [39] * (3 + 39 % 4)
