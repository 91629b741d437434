"""The program's output on the timeline: sys.stdout and sys.stderr stand-ins that note every write."""

from __future__ import annotations

from typing import Any, Protocol, TextIO


class OutputNoter(Protocol):
    """What a tee reports each write to (the recorder)."""

    def note_output(self, stream: int, text: str) -> None: ...


class OutputTee:
    """Stands in for sys.stdout / sys.stderr: forwards everything, and notes each write on the timeline."""

    def __init__(self, recorder: OutputNoter, stream: TextIO, number: int) -> None:
        object.__setattr__(self, "_tee_recorder", recorder)
        object.__setattr__(self, "_tee_stream", stream)
        object.__setattr__(self, "_tee_number", number)

    def write(self, text: str) -> int:
        result = self._tee_stream.write(text)
        self._tee_recorder.note_output(self._tee_number, text)
        return result

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tee_stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tee_stream, name, value)

    def __iter__(self) -> Any:
        return iter(self._tee_stream)

    def __enter__(self) -> Any:
        return self._tee_stream.__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self._tee_stream.__exit__(*exc)
