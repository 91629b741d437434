"""A program to record: its code, how to drive it (entry and inputs, or tests), and where it came from."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

DRIVER_NAME = "driver.py"


class ProgramError(ValueError):
    """A program record is malformed (missing code, wrong field types)."""


@dataclass(frozen=True, slots=True)
class Program:
    """One item of a corpus; `inputs` are argument source strings, one call of `entry` each."""

    id: str
    code: str
    entry: str = ""
    inputs: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    setup: str = ""
    expected: str = ""  # CRUXEval's expected output (source text), kept for evaluation
    source: str = "jsonl"
    split: str = "train"

    def driver(self) -> str:
        """The script the sandbox runs: the code, then the entry's calls or the tests, at module level."""
        parts = [_normalise(self.code).rstrip("\n"), ""]
        if self.setup.strip():
            parts.append(_normalise(self.setup).rstrip("\n"))
        if self.entry:
            parts.extend(f"{self.entry}({args})" for args in self.inputs)
        parts.extend(_normalise(test).rstrip("\n") for test in self.tests)
        return "\n".join(parts) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "entry": self.entry,
            "inputs": list(self.inputs),
            "tests": list(self.tests),
            "setup": self.setup,
            "expected": self.expected,
            "source": self.source,
            "split": self.split,
        }

    @classmethod
    def from_json(cls, data: Any, *, default_id: str = "", source: str = "jsonl") -> Program:
        if not isinstance(data, dict):
            raise ProgramError("a program must be a JSON object")
        code = data.get("code")
        if not isinstance(code, str):
            raise ProgramError("a program needs 'code' (a string)")
        pid = data.get("id", default_id)
        if isinstance(pid, int):
            pid = str(pid)
        if not isinstance(pid, str) or not pid:
            raise ProgramError("a program needs an 'id'")
        inputs = _strings(data.get("inputs", []), "inputs")
        tests = _strings(data.get("tests", []), "tests")
        entry = data.get("entry") or ""
        if not isinstance(entry, str) or (entry and not entry.isidentifier()):
            raise ProgramError(f"program {pid}: 'entry' must be a function name")
        if inputs and not entry:
            raise ProgramError(f"program {pid}: 'inputs' need an 'entry'")
        return cls(
            id=pid,
            code=code,
            entry=entry,
            inputs=inputs,
            tests=tests,
            setup=str(data.get("setup") or ""),
            expected=str(data.get("expected") or ""),
            source=str(data.get("source") or source),
            split=str(data.get("split") or "train"),
        )


def dumps(program: Program) -> str:
    return json.dumps(program.to_json(), ensure_ascii=False)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProgramError(f"'{name}' must be a list of strings")
    return tuple(value)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_stem(program_id: str) -> str:
    """A file name for the id: readable, and unique even when two ids differ only in unsafe characters."""
    digest = hashlib.sha1(program_id.encode()).hexdigest()
    readable = _UNSAFE.sub("_", program_id).strip("._")[:60]
    return f"{readable}-{digest[:10]}" if readable else digest[:16]


def shard_of(program_id: str) -> str:
    return hashlib.sha1(program_id.encode()).hexdigest()[:2]
