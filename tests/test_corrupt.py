"""Damaged traces through every command that reads them: bytes flipped in each region of a recorded
multi-chunk trace (magic, header, file and code records, each chunk's record head, zstd frame header,
payload and checksum, footer, checksums record, trailer), and cuts at many offsets.

What each command must do (docs/format.md, "Damaged traces"): one line on stderr starting `retrograde:`,
never a traceback, a non-zero exit when the data is damaged, `info` never calling a damaged file
complete, and nothing that still reads is lost (export writes every readable step).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from conftest import RunRetrograde, retrograde_command

from replay.recorded import RecordedTimeline
from replay.timeline import TimelineError
from tracer.cli import trace_info
from tracer.format import (
    CHECKSUMS_RECORD_SIZE,
    MAGIC,
    TAG_CHUNK,
    TAG_CODE,
    TAG_FILE,
    TAG_FOOTER,
    TRAILER,
    TraceFormatError,
    TraceReader,
)

PROGRAM = """\
def square(n):
    result = n * n
    return result


def risky(k):
    if k % 7 == 3:
        raise ValueError(k)
    return k


values = []
for i in range(40):
    values.append(square(i))
    try:
        risky(i)
    except ValueError as exc:
        print("caught", exc)
print("done", sum(values))
"""
CHUNK_STEPS = 60


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, run_retrograde: RunRetrograde) -> Path:
    """PROGRAM recorded in chunks of CHUNK_STEPS steps."""
    root = tmp_path_factory.mktemp("corrupt")
    (root / "prog.py").write_text(PROGRAM)
    done = run_retrograde(["record", "-o", "prog.rtrace", "--chunk-steps", CHUNK_STEPS, "prog.py"], cwd=root)
    assert done.returncode == 0, done.stderr
    trace = root / "prog.rtrace"
    with TraceReader(trace) as reader:
        assert len(reader.chunks) >= 5 and reader.checksums is not None
    return trace


def regions(data: bytes) -> list[tuple[str, int, int]]:
    """(name, start, end) of every part of a trace file; a chunk's record is split into its head (array
    header, tag, number, steps, summary, the payload's bin header) and its zstd frame: the frame header
    (magic and descriptor, 6 bytes), the compressed blocks, the 4-byte content checksum."""
    out = [("magic", 0, len(MAGIC))]
    unpacker = msgpack.Unpacker(io.BytesIO(data[len(MAGIC) :]), raw=False, strict_map_key=False)
    position = len(MAGIC)
    while True:
        record = unpacker.unpack()
        end = len(MAGIC) + unpacker.tell()
        if isinstance(record, dict):
            out.append(("header", position, end))
        elif record[0] == TAG_CHUNK:
            number, payload = record[1], end - len(record[5])
            out += [
                (f"chunk {number} head", position, payload),
                (f"chunk {number} frame header", payload, payload + 6),
                (f"chunk {number} blocks", payload + 6, end - 4),
                (f"chunk {number} checksum", end - 4, end),
            ]
        else:
            out.append(({TAG_FILE: "file", TAG_CODE: "code", TAG_FOOTER: "footer"}[record[0]], position, end))
        position = end
        if record[0] == TAG_FOOTER if isinstance(record, list) else False:
            break
    out.append(("checksums", position, position + CHECKSUMS_RECORD_SIZE))
    out.append(("trailer", len(data) - TRAILER.size, len(data)))
    assert position + CHECKSUMS_RECORD_SIZE == len(data) - TRAILER.size
    return out


def flipped(data: bytes, position: int, width: int = 8) -> bytes:
    """The bytes with `width` bytes from `position` inverted."""
    corrupt = bytearray(data)
    for i in range(position, min(position + width, len(data))):
        corrupt[i] ^= 0xFF
    return bytes(corrupt)


def chunk_steps(trace: Path, number: int) -> tuple[int, int]:
    with TraceReader(trace) as reader:
        entry = reader.chunks[number]
        return entry.start, entry.start + entry.count


def assert_one_line(stderr: str, stdout: str = "") -> str:
    """stderr is one line starting `retrograde:`, and nothing anywhere is a traceback."""
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("retrograde: "), stderr
    return lines[0]


# -- info: every byte ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 8])
def test_info_never_calls_a_damaged_file_complete(tmp_path: Path, recorded: Path, width: int) -> None:
    """Every byte of the file (1-byte flips) and every third (8-byte flips): the file is refused with one
    sentence, or info reports it damaged; never complete, never merely truncated."""
    data = recorded.read_bytes()
    assert trace_info(str(recorded))["damaged"] is False
    path = tmp_path / "flip.rtrace"
    outcomes: dict[str, set[str]] = {}
    for name, start, end in regions(data):
        kind = name.split(" ", 2)[-1] if name.startswith("chunk") else name
        for position in range(start, end, 1 if width == 1 else 3):
            path.write_bytes(flipped(data, position, width))
            try:
                info = trace_info(str(path))
            except TraceFormatError as exc:
                assert "\n" not in str(exc) and "flip.rtrace" in str(exc)
                outcomes.setdefault(kind, set()).add("refused")
                continue
            assert info["damaged"], f"{name}: byte {position} flipped, info calls the file whole"
            assert info["damage"] and info["damage_text"].startswith("flip.rtrace is damaged: ")
            outcomes.setdefault(kind, set()).add("damaged")
    # A chunk's frame header, blocks and checksum are always caught as that chunk's damage.
    for kind in ("frame header", "blocks", "checksum"):
        assert outcomes[kind] == {"damaged"}, kind


def test_info_names_the_chunk_and_its_steps(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    start, stop = chunk_steps(recorded, 2)
    path = tmp_path / "two.rtrace"
    path.write_bytes(flipped(data, found["chunk 2 blocks"][0] + 5))
    done = run_retrograde(["info", path], cwd=tmp_path)
    assert done.returncode == 1
    line = assert_one_line(done.stderr)
    assert "chunk 2 of " in line and f"(steps {start}-{stop - 1})" in line and "two.rtrace" in line
    assert "status:       complete" not in done.stdout
    assert "status:       damaged: chunk 2 of" in done.stdout
    as_json = run_retrograde(["info", "--json", path], cwd=tmp_path)
    assert as_json.returncode == 1
    info = json.loads(as_json.stdout)
    assert info["status"] == "damaged" and info["damaged"] is True
    parts = [(d["part"], d["chunk"], d["start"], d["stop"]) for d in info["damage"]]
    assert parts == [("chunk", 2, start, stop)]
    assert info["readable_steps"] == info["steps"] - (stop - start)
    whole = run_retrograde(["info", "--json", recorded], cwd=tmp_path)
    assert whole.returncode == 0 and whole.stderr == ""
    assert json.loads(whole.stdout)["status"] == "complete"


# -- export: nothing readable is lost ------------------------------------------------------------------------


def test_export_writes_every_readable_step(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    """Differential: the damaged file's export is the whole file's export less the damaged chunk's steps."""
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    whole = run_retrograde(["export", recorded], cwd=tmp_path)
    assert whole.returncode == 0 and whole.stderr == ""
    reference = [json.loads(line) for line in whole.stdout.splitlines()]
    with TraceReader(recorded) as reader:
        chunks = len(reader.chunks)
    for number in (0, 2, chunks - 1):
        start, stop = chunk_steps(recorded, number)
        path = tmp_path / f"chunk{number}.rtrace"
        path.write_bytes(flipped(data, found[f"chunk {number} checksum"][0], 4))
        done = run_retrograde(["export", path], cwd=tmp_path)
        assert done.returncode == 1
        line = assert_one_line(done.stderr)
        assert f"chunk {number} of {chunks} (steps {start}-{stop - 1})" in line
        got = [json.loads(text) for text in done.stdout.splitlines()]
        assert got == [r for r in reference if not start <= r["step"] < stop]
        assert f"exported the {len(got)} of {len(reference)} steps" in line


def test_export_of_a_damaged_footer_keeps_every_step(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    data = recorded.read_bytes()
    ((_name, start, end),) = [r for r in regions(data) if r[0] == "footer"]
    path = tmp_path / "footer.rtrace"
    path.write_bytes(flipped(data, (start + end) // 2))
    whole = run_retrograde(["export", recorded], cwd=tmp_path).stdout
    done = run_retrograde(["export", path], cwd=tmp_path)
    assert done.returncode == 1
    assert "the footer is corrupt" in assert_one_line(done.stderr)
    assert done.stdout == whole  # the chunks were re-indexed from their records: every step is there


# -- every command on every region ---------------------------------------------------------------------------


def _cases(data: bytes, chunks: int) -> Iterator[tuple[str, int]]:
    """(region, position) for one flip in each kind of region, chunk regions in the first, a middle and
    the last chunk."""
    for name, start, end in regions(data):
        if name.startswith("chunk"):
            number = int(name.split()[1])
            if number not in (0, chunks // 2, chunks - 1):
                continue
        yield name, (start + end) // 2 - 4 if end - start > 8 else start


REPLAY_SCRIPT = "goto {inside}\nw\ngoto {after}\nw\nrs\nc\nq\n"


def test_every_command_on_every_region(tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde) -> None:
    data = recorded.read_bytes()
    with TraceReader(recorded) as reader:
        chunks = len(reader.chunks)
        total = reader.step_count
    path = tmp_path / "bad.rtrace"
    checked = 0
    ends = {name: end for name, _start, end in regions(data)}
    for name, position in _cases(data, chunks):
        path.write_bytes(flipped(data, position, min(8, ends[name] - position)))  # inside the region
        damaged_chunk = int(name.split()[1]) if name.startswith("chunk") else None
        inside, after = 1, 0
        if damaged_chunk is not None:
            inside = chunk_steps(recorded, damaged_chunk)[0] + 1
        if damaged_chunk is not None and damaged_chunk + 1 < chunks:
            after = chunk_steps(recorded, damaged_chunk + 1)[0] + 1
        script = REPLAY_SCRIPT.format(inside=inside, after=min(after, total - 1))
        for command, stdin in ((["info"], ""), (["export"], ""), (["replay"], script),
                               (["trajectories"], "")):
            done = run_retrograde([*command, path], cwd=tmp_path, input=stdin)
            what = f"{name} (byte {position}) flipped, retrograde {command[0]}"
            if name == "code" and command[0] != "info":
                # Code records are a copy of the footer's checksummed names, read only when the footer
                # is lost: only info's full check looks at them.
                assert "Traceback" not in done.stderr and done.stderr.count("\n") <= 1
                continue
            assert done.returncode != 0, f"{what}: exit 0\n{done.stdout[-500:]}"
            line = assert_one_line(done.stderr, done.stdout)
            if damaged_chunk is not None:
                assert f"chunk {damaged_chunk} of {chunks}" in line, f"{what}: {line}"
            checked += 1
    assert checked >= 4 * 14


def test_replay_stays_usable_past_a_damaged_chunk(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    start, stop = chunk_steps(recorded, 2)
    path = tmp_path / "mid.rtrace"
    path.write_bytes(flipped(data, found["chunk 2 blocks"][0]))
    script = f"goto {start + 3}\np i\ngoto {stop + 3}\np i\nq\n"
    done = run_retrograde(["replay", path], cwd=tmp_path, input=script)
    whole = run_retrograde(["replay", recorded], cwd=tmp_path, input=f"goto {stop + 3}\np i\nq\n")
    assert done.returncode == 1 and whole.returncode == 0
    assert "*** the trace cannot be read here: mid.rtrace: chunk 2 of" in done.stdout
    # After the refused goto the session still answers, and beyond the damage it shows what the whole
    # file shows there.
    tail = whole.stdout.split("(retro) ", 1)[1]
    assert done.stdout.rstrip().endswith(tail.rstrip())
    assert f"(steps {start}-{stop - 1})" in assert_one_line(done.stderr, done.stdout)


def test_replay_and_tui_refuse_a_damaged_first_chunk(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    path = tmp_path / "first.rtrace"
    path.write_bytes(flipped(data, found["chunk 0 blocks"][0]))
    for command in ("replay", "tui"):
        done = run_retrograde([command, path], cwd=tmp_path, input="q\n")
        assert done.returncode == 1
        line = assert_one_line(done.stderr, done.stdout)
        assert "chunk 0 of" in line and "needs the first and last steps to open" in line


# -- cuts ----------------------------------------------------------------------------------------------------


def test_cuts_at_many_offsets(tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde) -> None:
    """A cut file (a killed recording looks the same) reads as the prefix it holds: info says truncated
    (never complete), export and replay at most one note line; a cut inside the header is one sentence."""
    data = recorded.read_bytes()
    path = tmp_path / "cut.rtrace"
    cuts = sorted({*range(0, len(data), max(1, len(data) // 12)), len(data) - 1, len(data) - TRAILER.size})
    for cut in cuts:
        path.write_bytes(data[:cut])
        info = run_retrograde(["info", "--json", path], cwd=tmp_path)
        assert "Traceback" not in info.stderr
        if info.returncode == 0:
            assert json.loads(info.stdout)["status"] in ("truncated", "damaged"), cut
        else:
            assert_one_line(info.stderr)
        for command, stdin in ((["export"], ""), (["replay"], "c\nq\n")):
            done = run_retrograde([*command, path], cwd=tmp_path, input=stdin)
            assert "Traceback" not in done.stderr + done.stdout
            if done.returncode != 0 or done.stderr:
                assert_one_line(done.stderr)


# -- dap, tui, eval, corpus export ---------------------------------------------------------------------------


def _dap(trace: Path, requests: list[tuple[str, dict[str, Any]]]) -> tuple[int, str, list[dict[str, Any]]]:
    """Run `retrograde dap` on a request script; (exit code, stderr, messages in order)."""
    stream = b""
    for seq, (command, arguments) in enumerate(requests, 1):
        message = {"seq": seq, "type": "request", "command": command, "arguments": arguments}
        body = json.dumps(message).encode()
        stream += b"Content-Length: %d\r\n\r\n" % len(body) + body
    command_line, env = retrograde_command()
    done = subprocess.run([*command_line, "dap"], input=stream, capture_output=True, timeout=120,
                          env={**os.environ, **env})
    messages, rest = [], done.stdout
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int(head.split(b":")[1])
        messages.append(json.loads(rest[:length]))
        rest = rest[length:]
    return done.returncode, done.stderr.decode(), messages


def test_dap_answers_a_damaged_chunk_and_stays_alive(tmp_path: Path, recorded: Path) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    start, stop = chunk_steps(recorded, 2)
    path = tmp_path / "dap.rtrace"
    path.write_bytes(flipped(data, found["chunk 2 blocks"][0]))
    requests: list[tuple[str, dict[str, Any]]] = [
        ("initialize", {"adapterID": "retrograde"}),
        ("launch", {"trace": str(path), "stopOnEntry": True}),
        ("configurationDone", {}),
        ("goto", {"threadId": 1, "targetId": start + 5}),  # targets are 1-based steps
        ("stackTrace", {"threadId": 1}),
        ("goto", {"threadId": 1, "targetId": start - 1}),
        *[("stepIn", {"threadId": 1})] * 4,
        ("goto", {"threadId": 1, "targetId": stop + 5}),
        ("stackTrace", {"threadId": 1}),
        ("disconnect", {}),
    ]
    code, stderr, messages = _dap(path, requests)
    assert code == 0 and "Traceback" not in stderr
    responses = [m for m in messages if m["type"] == "response"]
    # Exactly one response per request (a step that fails after its response is an output event).
    assert sorted(m["request_seq"] for m in responses) == list(range(1, len(requests) + 1))
    by_seq = {m["request_seq"]: m for m in responses}
    assert not by_seq[4]["success"] and "chunk 2 of" in by_seq[4]["message"]
    assert by_seq[5]["success"] and by_seq[12]["success"] and by_seq[13]["success"]
    outputs = [m["body"]["output"] for m in messages if m.get("event") == "output"]
    assert any("chunk 2 of" in text and text.startswith("retrograde: ") for text in outputs)
    # A failed step leaves a stop where the engine was, so the client is not left running.
    assert sum(1 for m in messages if m.get("event") == "stopped") >= 5


def test_dap_launch_of_a_damaged_first_chunk_is_an_error_response(tmp_path: Path, recorded: Path) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    path = tmp_path / "dap0.rtrace"
    path.write_bytes(flipped(data, found["chunk 0 checksum"][0], 4))
    code, _stderr, messages = _dap(path, [("initialize", {"adapterID": "x"}),
                                          ("launch", {"trace": str(path)}), ("disconnect", {})])
    responses = {m["request_seq"]: m for m in messages if m["type"] == "response"}
    assert code == 0 and not responses[2]["success"] and "chunk 0 of" in responses[2]["message"]
    assert responses[3]["success"]


def test_tui_shows_the_damage_and_stays_usable(tmp_path: Path, recorded: Path) -> None:
    pytest.importorskip("textual")
    from textual.widgets import Input

    from tui.app import make_app

    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    start, stop = chunk_steps(recorded, 2)
    path = tmp_path / "tui.rtrace"
    path.write_bytes(flipped(data, found["chunk 2 blocks"][0]))
    timeline = RecordedTimeline(path)
    app = make_app(timeline, title="tui.rtrace")
    seen: list[tuple[int, str]] = []

    async def goto(pilot: Any, step: int) -> None:
        await pilot.press("g")
        await app.settle()
        app.query_one("#command", Input).value = str(step)
        await pilot.press("enter")
        await app.settle()
        await pilot.pause()

    async def scenario() -> None:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            await goto(pilot, start - 2)
            for _ in range(6):  # step into the damaged chunk: refused, position kept
                await pilot.press("s")
                await app.settle()
                await pilot.pause()
                seen.append((app.engine.position, app.note))
            await goto(pilot, stop + 2)
            seen.append((app.engine.position, app.note))
            await pilot.press("S")
            await app.settle()
            await pilot.pause()
            seen.append((app.engine.position, app.note))
            assert app.is_running

    asyncio.run(scenario())
    timeline.close()
    refused = [(pos, note) for pos, note in seen if "chunk 2 of" in note]
    assert refused and all(pos < start for pos, _note in refused)
    assert seen[-2][0] == stop + 2 and seen[-1][0] == stop + 1
    assert timeline.damage and timeline.damage[0].chunk == 2


def test_tui_command_refuses_a_damaged_first_chunk(tmp_path: Path, recorded: Path) -> None:
    from tui.cli import TuiError, open_timeline

    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    path = tmp_path / "tui0.rtrace"
    path.write_bytes(flipped(data, found["chunk 0 blocks"][0]))
    with pytest.raises(TuiError, match=r"tui0.rtrace: chunk 0 of \d+ \(steps 0-59\) is corrupt"):
        open_timeline(str(path))


def test_timeline_errors_name_the_chunk(tmp_path: Path, recorded: Path) -> None:
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    start, stop = chunk_steps(recorded, 3)
    path = tmp_path / "t3.rtrace"
    path.write_bytes(flipped(data, found["chunk 3 frame header"][0], 4))
    timeline = RecordedTimeline(path)
    try:
        assert timeline.step(start - 1).index == start - 1
        assert timeline.step(stop).index == stop
        with pytest.raises(TimelineError, match=rf"chunk 3 of \d+ \(steps {start}-{stop - 1}\) is corrupt"):
            timeline.locals_at(start)
        assert [(d.part, d.chunk) for d in timeline.damage] == [("chunk", 3)]
    finally:
        timeline.close()


def test_eval_skips_a_damaged_trace_with_one_warning(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    pytest.importorskip("torch")
    data = recorded.read_bytes()
    found = {name: (start, end) for name, start, end in regions(data)}
    path = tmp_path / "eval.rtrace"
    path.write_bytes(flipped(data, found["chunk 1 blocks"][0]))
    both = run_retrograde(["eval", "traces", "--baselines-only", "--quiet", path, recorded], cwd=tmp_path)
    assert both.returncode == 0
    line = assert_one_line(both.stderr, both.stdout)
    assert line.startswith("retrograde: warning: skipped 1") and "eval.rtrace: chunk 1 of" in line
    assert json.loads(both.stdout.splitlines()[-1])["traces"] == 1
    alone = run_retrograde(["eval", "traces", "--baselines-only", "--quiet", path], cwd=tmp_path)
    assert alone.returncode == 1 and "chunk 1 of" in assert_one_line(alone.stderr, alone.stdout)


def test_corpus_export_leaves_out_a_damaged_trace(
    tmp_path: Path, recorded: Path, run_retrograde: RunRetrograde
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text(PROGRAM)
    (src / "b.py").write_text(PROGRAM.replace("range(40)", "range(30)"))
    built = run_retrograde(["corpus", "build", "-o", tmp_path / "corpus", "-j", "1", "--no-progress", src],
                           cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    whole = run_retrograde(["corpus", "export", tmp_path / "corpus"], cwd=tmp_path)
    assert whole.returncode == 0
    records = {json.loads(line)["id"]: line for line in whole.stdout.splitlines()}
    assert len(records) == 2
    (victim,) = [t for t in (tmp_path / "corpus").rglob("a.py-*.rtrace")]
    data = victim.read_bytes()
    blocks = next((start, end) for name, start, end in regions(data) if name == "chunk 0 blocks")
    victim.write_bytes(flipped(data, blocks[0]))
    done = run_retrograde(["corpus", "export", tmp_path / "corpus"], cwd=tmp_path)
    assert done.returncode == 1
    line = assert_one_line(done.stderr, done.stdout)
    assert "left out 1 damaged trace" in line and victim.name in line and "exported the other 1" in line
    kept = done.stdout.splitlines()
    assert len(kept) == 1 and kept[0] in records.values()
    assert json.loads(kept[0])["steps"] and victim.name.split("-")[0] not in json.loads(kept[0])["id"]


def test_a_file_without_the_checksums_record_still_reads(tmp_path: Path, recorded: Path) -> None:
    """Traces written before the checksums record: the same file without it reads whole and complete."""
    data = recorded.read_bytes()
    end = len(data) - TRAILER.size - CHECKSUMS_RECORD_SIZE
    path = tmp_path / "old.rtrace"
    path.write_bytes(data[:end] + data[-TRAILER.size :])
    info = trace_info(str(path))
    assert not info["damaged"] and info["truncated_at"] is None
    assert info["steps"] == trace_info(str(recorded))["steps"]
    with TraceReader(path) as reader:
        assert reader.checksums is None
