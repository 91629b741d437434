"""Run a script or module under the recorder exactly as ``python SCRIPT ARGS`` / ``python -m MOD`` would."""

from __future__ import annotations

import atexit
import codecs
import io
import os
import pkgutil
import re
import runpy
import signal
import sys
import types
import zipfile
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


class ScriptLoadError(Exception):
    """python would refuse to run this path (a directory or zip file without __main__)."""


# A coding declaration (PEP 263), as the tokenizer finds it in the first two lines.
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:[#\r\n]|$)")


def _normal_encoding(name: str) -> str:
    """The tokenizer's spelling of an encoding name (utf-8 and latin-1 aliases; others as written)."""
    enc = name[:12].lower().replace("_", "-")
    if enc == "utf-8" or enc.startswith("utf-8-"):
        return "utf-8"
    if enc in ("latin-1", "iso-8859-1", "iso-latin-1") or enc.startswith(
        ("latin-1-", "iso-8859-1-", "iso-latin-1-")
    ):
        return "iso-8859-1"
    return name


def _declared_encoding(body: bytes) -> str | None:
    """The encoding named by a coding line among the first two lines (the second only after a comment)."""
    for number, line in enumerate(body.split(b"\n", 2)[:2]):
        match = _COOKIE.match(line)
        if match:
            return match.group(1).decode("ascii")
        if number == 0 and not _BLANK_OR_COMMENT.match(line):
            break
    return None


def _line_of(data: bytes, position: int) -> tuple[int, bytes]:
    """The 1-based line number of a byte offset, and that line's bytes."""
    start = data.rfind(b"\n", 0, position) + 1
    end = data.find(b"\n", position)
    return data.count(b"\n", 0, position) + 1, data[start : len(data) if end < 0 else end]


def decode_script(abspath: str, data: bytes) -> str | bytes:
    """The source of a script as python decodes it to run it (bytes: for compile() to decode), or the
    SyntaxError python reports.

    python reads a script with its file tokenizer, whose messages differ from compile()'s on bytes:
    reproduce them (null bytes, undeclared non-UTF-8, unknown or unusable coding declarations).
    """
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8) :] if bom else data
    declared = _declared_encoding(body)
    encoding = _normal_encoding(declared) if declared is not None else "utf-8"
    if bom and encoding != "utf-8":
        raise SyntaxError(f"encoding problem: {encoding} with BOM")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SyntaxError(f"encoding problem: {declared}") from None
    if b"\n#".decode(encoding, "replace") != "\n#":
        raise SyntaxError(f"encoding problem: {declared}")  # not ASCII-compatible (utf-16...)
    null = body.find(b"\0")
    try:
        source = body.decode(encoding)
        bad = -1
    except UnicodeDecodeError as exc:
        source, bad = "", exc.start
    # Declared UTF-8 is not checked as it is read: the compiler decodes it (a bad byte in a comment
    # passes, one in a string literal is a "(unicode error)"), so it gets the bytes.
    compiler_decodes = bad >= 0 and declared is not None and encoding == "utf-8"
    if null >= 0 and (bad < 0 or null < bad):
        lineno, line = _line_of(body, null)
        text = line.split(b"\0", 1)[0].decode(encoding, "replace")
        raise SyntaxError("source code cannot contain null bytes", (abspath, lineno, None, text))
    if compiler_decodes:
        return data
    if bad >= 0:
        if declared is not None:
            raise SyntaxError(f"encoding problem: {declared}")
        lineno, _line = _line_of(body, bad)
        raise SyntaxError(
            f"Non-UTF-8 code starting with '\\x{body[bad]:02x}' in file {abspath} on line {lineno}, "
            "but no encoding declared; see https://peps.python.org/pep-0263/ for details"
        )
    return source


def load_script(path: str) -> tuple[str, types.CodeType]:
    """The absolute path and compiled code of a script; ProgramNotFound if it cannot be read, the
    SyntaxError python would report if it cannot be decoded or compiled."""
    abspath = os.path.abspath(path)
    try:
        with io.open_code(abspath) as handle:
            data = handle.read()
    except OSError as exc:
        raise ProgramNotFound(f"can't open file {abspath!r}: [Errno {exc.errno}] {exc.strerror}") from None
    source = decode_script(abspath, data)
    return abspath, compile(source, abspath, "exec", dont_inherit=True)


def find_main(path: str) -> str | None:
    """For a directory or zip file (which python runs by its __main__ module): its absolute path; for a
    script: None. ProgramNotFound for a missing file, ScriptLoadError for a path without __main__."""
    abspath = os.path.abspath(path)
    if not os.path.exists(abspath):
        raise ProgramNotFound(f"can't open file {abspath!r}: [Errno 2] No such file or directory")
    if not (os.path.isdir(abspath) or zipfile.is_zipfile(abspath)):
        return None
    importer = pkgutil.get_importer(abspath)
    spec = importer.find_spec("__main__") if importer is not None else None
    if spec is None:
        raise ScriptLoadError(f"can't find '__main__' module in {abspath!r}")
    return abspath


def run_under_recorder(
    recorder: Recorder,
    *,
    script: str | None = None,
    module: str | None = None,
    args: Sequence[str] = (),
    main_path: str | None = None,
) -> int:
    """Run the program, recording it; returns the exit code (or raises SystemExit like python would).

    main_path (from find_main) runs a directory or zip file's __main__ module, as `python DIR` does.

    The recorder is finished by an atexit handler, after the interpreter has joined the program's
    non-daemon threads, so their steps are in the trace too.
    """
    code: types.CodeType | None = None
    if main_path is not None:
        assert script is not None
        sys.argv = [script, *args]
        sys.path[0] = main_path
        module = "__main__"
    elif script is not None:
        try:
            abspath, code = load_script(script)
        except SyntaxError as exc:
            # As python reports a script it cannot compile: the error alone, none of our frames.
            sys.excepthook(type(exc), exc.with_traceback(None), None)
            return 1
        sys.argv = [script, *args]
        sys.path[0] = os.path.dirname(abspath)
    else:
        assert module is not None
        sys.argv = [module, *args]
        sys.path[0] = os.getcwd()
    main = types.ModuleType("__main__")
    if code is not None:
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
            # alter_argv: `python -m` shows the module's file as argv[0]; `python DIR` keeps DIR.
            runpy._run_module_as_main(module, alter_argv=main_path is None)  # type: ignore[attr-defined]
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

