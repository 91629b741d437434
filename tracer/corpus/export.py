"""Export a corpus directory as JSON lines: one record per trace, loadable with datasets.load_dataset."""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from typing import Any, TextIO

from tracer.corpus.batch import read_manifest
from tracer.format import CorruptChunkError, TraceFormatError, TraceReader, export_records

LOCALS_MODES = ("map", "pairs")


def records(
    outdir: str,
    *,
    statuses: Collection[str] = (),
    splits: Collection[str] = (),
    locals_mode: str = "map",
    skipped: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every kept trace of the corpus as one record (same keys and types in every record).

    A trace that cannot be read whole (a damaged chunk) is left out, not exported with gaps: with
    `skipped`, its reason goes there and the export goes on; without, TraceFormatError."""
    for entry in read_manifest(outdir).values():
        if not entry.get("trace"):
            continue
        if statuses and entry.get("status") not in statuses:
            continue
        if splits and entry.get("split") not in splits:
            continue
        path = os.path.join(outdir, entry["trace"])
        if not os.path.exists(path):
            continue
        program = entry.get("program") or {}
        try:
            steps = trace_steps(path, locals_mode)
        except TraceFormatError as exc:
            if skipped is None:
                raise
            skipped.append(exc.what if isinstance(exc, CorruptChunkError) else str(exc))
            continue
        yield {
            "id": str(entry["id"]),
            "source": str(entry.get("source", "")),
            "split": str(entry.get("split", "")),
            "status": str(entry.get("status", "")),
            "error": str(entry.get("error") or ""),
            "code": str(program.get("code", "")),
            "entry": str(program.get("entry") or ""),
            "inputs": [str(x) for x in program.get("inputs", [])],
            "tests": [str(x) for x in program.get("tests", [])],
            "setup": str(program.get("setup") or ""),
            "expected": str(program.get("expected") or ""),
            "stdout": str(entry.get("stdout") or ""),
            "cut": entry.get("status") == "step_cap",
            "steps": steps,
        }


def trace_steps(path: str, locals_mode: str = "map") -> list[dict[str, Any]]:
    """The steps of one trace in `retrograde export`'s schema, with files relative to the sandbox."""
    with TraceReader(path) as reader:
        # The sandbox directory is random: keep the stable part of each file name.
        root = str(reader.header.get("root") or "")
        return list(export_records(reader, strip_root=root, locals_as_pairs=locals_mode == "pairs"))


def write_jsonl(
    outdir: str,
    out: TextIO,
    *,
    statuses: Collection[str] = (),
    splits: Collection[str] = (),
    locals_mode: str = "map",
) -> int:
    """Write the corpus's records; the number written. Damaged traces are left out, and then, after every
    readable trace is written, TraceFormatError says which."""
    count = 0
    skipped: list[str] = []
    for record in records(outdir, statuses=statuses, splits=splits, locals_mode=locals_mode, skipped=skipped):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
    if skipped:
        out.flush()
        noun = "trace" if len(skipped) == 1 else "traces"
        raise TraceFormatError(
            f"left out {len(skipped)} damaged {noun} ({skipped[0]}"
            + (f"; and {len(skipped) - 1} more" if len(skipped) > 1 else "")
            + f") and exported the other {count}"
        )
    return count
