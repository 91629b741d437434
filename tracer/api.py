"""tracer.record(): record part of a program, as a context manager or a decorator."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from tracer.monitor import Recorder
from tracer.values import DEFAULT_LIMIT


class record(contextlib.ContextDecorator):
    """Record the enclosed code (and everything it calls in the program's own files) into `path`.

    `root` defaults to the directory of the file that calls record(); only files under it are traced
    unless `include` / `exclude` globs say otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        root: str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_steps: int | None = None,
        value_limit: int = DEFAULT_LIMIT,
    ) -> None:
        if root is None:
            caller = sys._getframe(1).f_code.co_filename
            root = os.path.dirname(os.path.abspath(caller)) if not caller.startswith("<") else os.getcwd()
        self.path = os.fspath(path)
        self.options: dict[str, Any] = dict(
            root=root, include=include, exclude=exclude, max_steps=max_steps, value_limit=value_limit
        )
        self.recorder: Recorder | None = None

    def __enter__(self) -> record:
        self.recorder = Recorder(self.path, argv=list(sys.argv), **self.options)
        self.recorder.start(adopt_stack=True)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.recorder is not None:
            if exc is not None:
                self.recorder.exit_status = {"kind": "exception", "type": exc_type.__qualname__}
            else:
                self.recorder.exit_status = {"kind": "exit", "code": 0}
            self.recorder.stop()
            self.recorder = None
