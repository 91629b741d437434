"""Run a script or module under the recorder exactly as ``python SCRIPT ARGS`` / ``python -m MOD`` would."""

from __future__ import annotations

import atexit
import importlib.util
import io
import os
import runpy
import signal
import sys
import types
from collections.abc import Sequence
from typing import Any

from tracer.monitor import Recorder

_THIS_FILE = os.path.abspath(__file__)


class ProgramNotFound(Exception):
    """The script to run does not exist or cannot be read."""


def _trimmed(exc: BaseException) -> types.TracebackType | None:
    """The traceback without the runner's own frames (also in chained exceptions), as under python."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        tb = item.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == _THIS_FILE:
            tb = tb.tb_next
        if tb is not item.__traceback__:
            item.__traceback__ = tb
        pending.extend((item.__cause__, item.__context__))
        if isinstance(item, BaseExceptionGroup):
            pending.extend(item.exceptions)
    return exc.__traceback__


def load_script(path: str) -> tuple[str, types.CodeType]:
    """The absolute path and compiled code of a script; ProgramNotFound if it cannot be read."""
    abspath = os.path.abspath(path)
    try:
        with io.open_code(abspath) as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ProgramNotFound(f"can't open file {abspath!r}: no such file") from None
    except IsADirectoryError:
        raise ProgramNotFound(f"can't open file {abspath!r}: it is a directory") from None
    except OSError as exc:
        raise ProgramNotFound(f"can't open file {abspath!r}: {exc.strerror}") from None
    source = importlib.util.decode_source(data)
    return abspath, compile(source, abspath, "exec", dont_inherit=True)


def run_under_recorder(
    recorder: Recorder, *, script: str | None = None, module: str | None = None, args: Sequence[str] = ()
) -> int:
    """Run the program, recording it; returns the exit code (or raises SystemExit like python would).

    The recorder is finished by an atexit handler, after the interpreter has joined the program's
    non-daemon threads, so their steps are in the trace too.
    """
    code: types.CodeType | None = None
    if script is not None:
        try:
            abspath, code = load_script(script)
        except SyntaxError as exc:
            sys.excepthook(type(exc), exc, None)
            return 1
        sys.argv = [script, *args]
        sys.path[0] = os.path.dirname(abspath)
    else:
        assert module is not None
        sys.argv = [module, *args]
        sys.path[0] = os.getcwd()
    main = types.ModuleType("__main__")
    if script is not None:
        main.__dict__.update({"__file__": abspath, "__cached__": None, "__spec__": None})
        main.__dict__["__builtins__"] = __builtins__
    old_main = sys.modules.get("__main__")

    atexit.register(recorder.stop)
    recorder.start()
    try:
        if code is not None:
            sys.modules["__main__"] = main
            exec(code, main.__dict__)
        else:
            runpy._run_module_as_main(module, alter_argv=True)  # type: ignore[attr-defined]
    except SystemExit as exc:
        recorder.exit_status = {"kind": "exit", "code": _exit_code_repr(exc.code)}
        raise
    except KeyboardInterrupt as exc:
        recorder.exit_status = {"kind": "interrupt"}
        sys.excepthook(type(exc), exc, _trimmed(exc))
        recorder.stop()
        sys.stdout.flush()
        sys.stderr.flush()
        # Like python: die by SIGINT so the parent sees the interrupt.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException as exc:
        recorder.exit_status = {
            "kind": "exception",
            "type": type(exc).__qualname__,
            "message": _safe_str(exc),
        }
        sys.excepthook(type(exc), exc, _trimmed(exc))
        return 1
    finally:
        if old_main is not None and sys.modules.get("__main__") is None:
            sys.modules["__main__"] = old_main
    recorder.exit_status = {"kind": "exit", "code": 0}
    return 0


def _exit_code_repr(code: Any) -> Any:
    if code is None or isinstance(code, int):
        return code or 0
    return _safe_str(code)


def _safe_str(obj: object) -> str:
    try:
        return str(obj)[:1000]
    except Exception:
        return "<unprintable>"

