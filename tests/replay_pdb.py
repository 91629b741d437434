"""Helpers for the pdb differential tests: run pdb or the replay on a command script, parse their stops."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from replay.memory import ListTimeline
from replay.repl import run_replay
from replay.timeline import Timeline

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_RECORDER = ROOT / "tests" / "reference_recorder.py"

_LOCATION = re.compile(r"^> (?P<file>.+)\((?P<line>\d+)\)(?P<func>[^(]*)\(\)(?:->(?P<value>.*))?$")


@dataclass(frozen=True, slots=True)
class Shown:
    """What one command printed about where it stopped: a marker, the location and any return value."""

    marker: str  # "--Call--", "--Return--" or ""
    file: str
    line: int
    func: str
    value: str | None
    post_mortem: bool = False  # the block entered post-mortem ("Uncaught exception. ...")

    def __str__(self) -> str:
        value = "" if self.value is None else f"->{self.value}"
        marker = f"{self.marker} " if self.marker else ""
        return f"{marker}{os.path.basename(self.file)}({self.line}){self.func}(){value}"


def parse_blocks(output: str, prompt: str) -> list[Shown | None]:
    """One entry per prompt-delimited block (the first is the start): the stop it printed, if any.

    The replay shows a frame that exits by an exception as `--Unwind-- ExcType: message` where live pdb
    (settrace) shows a return of None: read as pdb's `--Return--` and `->None`, so the stops compare."""
    results: list[Shown | None] = []
    for block in output.split(prompt):
        marker = ""
        unwind = False
        shown: Shown | None = None
        post_mortem = "Uncaught exception. Entering post mortem debugging" in block
        for line in block.splitlines():
            if line in ("--Call--", "--Return--"):
                marker = line
                continue
            if line.startswith("--Unwind--"):
                marker, unwind = "--Return--", True
                continue
            match = _LOCATION.match(line)
            if match and shown is None:
                value = "None" if unwind and match["value"] is None else match["value"]
                shown = Shown(marker, match["file"], int(match["line"]), match["func"], value, post_mortem)
        results.append(shown)
    return results


def run_pdb(script: Path, commands: list[str], timeout: float = 60) -> list[Shown | None]:
    """Drive `python -m pdb SCRIPT` with the commands on stdin; the stops it printed, one per command."""
    text = "\n".join([*commands, "q"]) + "\n"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
    proc = subprocess.run(
        [sys.executable, "-m", "pdb", str(script)],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(script.parent),
        env=env,
    )
    return parse_blocks(proc.stdout, "(Pdb) ")[: len(commands) + 1]


def record_reference(script: Path, out: Path, timeout: float = 60) -> ListTimeline:
    """Record SCRIPT with the settrace reference recorder into a ListTimeline."""
    subprocess.run(
        [sys.executable, str(REFERENCE_RECORDER), str(out), str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(script.parent),
        check=False,
    )
    with open(out, encoding="utf-8") as handle:
        return ListTimeline.from_export(handle)


def run_replay_script(timeline: Timeline, commands: list[str]) -> tuple[list[Shown | None], str]:
    """Drive the replay REPL with the commands; its stops, one per command, and the raw output."""
    out = io.StringIO()
    run_replay(timeline, io.StringIO("\n".join([*commands, "q"]) + "\n"), out, interactive=False)
    return parse_blocks(out.getvalue(), "(retro) ")[: len(commands) + 1], out.getvalue()


class PdbWorker:
    """One live-pdb process (tests/pdb_worker.py) answering many command scripts: pdb's stops per script."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TERM="dumb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import pdb_worker; pdb_worker.serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(ROOT / "tests"), env=env,
        )

    def output(self, script: Path, commands: list[str]) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"script": str(script), "commands": commands}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the pdb worker died")
        return str(json.loads(line)["output"])

    def stops(self, script: Path, commands: list[str]) -> list[Shown | None]:
        return parse_blocks(self.output(script, commands), "(Pdb) ")[: len(commands) + 1]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
