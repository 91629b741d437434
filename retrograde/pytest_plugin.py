"""pytest --retrograde: record each test with Retrograde and keep the traces of the failing ones.

Loaded by pytest through the ``pytest11`` entry point whenever Retrograde is installed, so this module
must cost nothing unless ``--retrograde`` is given: it imports only the standard library and pytest at
load time, and the recorder (``tracer``) only once a recording starts.

Each test is recorded into a temporary file next to its final name; after the test's last report the
trace is renamed into place (kept) or removed. The kept path travels on the test's report as the
attribute ``retrograde_trace`` (a plain string: pytest-xdist serialises a report's attributes, so the
controller's summary sees the traces its workers wrote).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter
    from pluggy import Result

PLUGIN_NAME = "retrograde-recorder"
DEFAULT_DIR = ".retrograde"
TRACE_SUFFIX = ".rtrace"
# The report attributes that carry a kept trace, whether its test failed, and a recording problem (also
# across pytest-xdist).
TRACE_ATTR = "retrograde_trace"
ERROR_ATTR = "retrograde_error"
FAILED_ATTR = "retrograde_failed"
# Retrograde's front end (this plugin included) is never recorded; the recorder compares real paths.
_PLUGIN_GLOB = os.path.join(os.path.dirname(os.path.realpath(__file__)), "*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]]")
_MAX_NAME = 160  # characters before the suffix; file names are limited to 255 bytes


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("retrograde", "Retrograde time-travel traces of tests")
    # `--retrograde` is a flag and `--retrograde=all` a separate option string: argparse looks up the whole
    # argument before splitting it at '=', so `pytest --retrograde tests/` never takes `tests/` as a value.
    group.addoption(
        "--retrograde",
        action="store_const",
        const="failed",
        dest="retrograde",
        default=None,
        help="record every test with Retrograde; keep the traces of failing tests (--retrograde=failed) "
        "or of all tests (--retrograde=all)",
    )
    group.addoption("--retrograde=failed", action="store_const", const="failed", dest="retrograde",
                    help="same as --retrograde")
    group.addoption("--retrograde=all", action="store_const", const="all", dest="retrograde",
                    help="record every test and keep every trace")
    group.addoption(
        "--retrograde-dir",
        dest="retrograde_dir",
        metavar="DIR",
        default=None,
        help=f"where to write the traces (default: {DEFAULT_DIR}/ in the rootdir)",
    )
    group.addoption(
        "--retrograde-fixtures",
        action="store_true",
        dest="retrograde_fixtures",
        default=False,
        help="also record the test's fixtures: setup, the test and teardown in one trace",
    )
    group.addoption(
        "--retrograde-include",
        action="append",
        dest="retrograde_include",
        default=[],
        metavar="GLOB",
        help="also record files matching GLOB (default: the rootdir's files, no libraries)",
    )
    group.addoption(
        "--retrograde-exclude",
        action="append",
        dest="retrograde_exclude",
        default=[],
        metavar="GLOB",
        help="never record files matching GLOB",
    )


def pytest_configure(config: pytest.Config) -> None:
    mode = config.getoption("retrograde", None)
    if mode is None:
        return
    base = str(config.invocation_params.dir)
    option_dir = config.getoption("retrograde_dir")
    if option_dir:
        directory = os.path.join(base, os.path.expanduser(option_dir))
    else:
        directory = os.path.join(str(config.rootpath), DEFAULT_DIR)
    plugin = RetrogradePlugin(
        mode=mode,
        directory=os.path.abspath(directory),
        root=str(config.rootpath),
        fixtures=bool(config.getoption("retrograde_fixtures")),
        include=tuple(config.getoption("retrograde_include") or ()),
        exclude=tuple(config.getoption("retrograde_exclude") or ()),
        default_dir=not option_dir,
        display_base=base,
    )
    config.pluginmanager.register(plugin, PLUGIN_NAME)


def trace_name(nodeid: str) -> str:
    """The trace file name of a test: its node id made a portable file name, unique per node id.

    `tests/test_x.py::test_f[1]` becomes `tests__test_x.py__test_f[1].rtrace`. Where that mapping loses
    information (other characters replaced, `__` already in the id, a name too long), a short hash of the
    node id is appended, so two tests never share a file, even across pytest-xdist workers (each worker
    names its files alone).
    """
    name = nodeid.replace("::", "__").replace("/", "__")
    safe = _UNSAFE.sub("_", name)
    # Both `/` (in the path) and `::` become `__`: a `/` after the first `::` (in a parameter id) or an id
    # without `::` could read like another id.
    _, separator, rest = nodeid.partition("::")
    lossy = safe != name or "__" in nodeid or not separator or "/" in rest or safe.startswith(".")
    if safe.startswith("."):
        safe = "_" + safe
    if len(safe) > _MAX_NAME:
        safe, lossy = safe[:_MAX_NAME], True
    if lossy:
        safe += "-" + hashlib.sha1(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return safe + TRACE_SUFFIX


@dataclass
class _Recording:
    """One test being recorded (or recorded and waiting for its last report)."""

    nodeid: str
    final: str
    partial: str
    recorder: Any = None
    stopped: bool = False
    error: str | None = None
    test_exception: BaseException | None = None  # what the test raised (with fixtures recorded too)


@dataclass
class _Kept:
    """A trace the summary lists."""

    nodeid: str
    path: str
    status: str  # FAILED, PASSED or INTERRUPTED (the session stopped during the test)


@dataclass(eq=False)  # pytest keeps its plugins in sets: identity equality, hashable
class RetrogradePlugin:
    """Records tests while registered (only when --retrograde is given) and lists the kept traces."""

    mode: str
    directory: str
    root: str
    fixtures: bool = False
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    default_dir: bool = True
    display_base: str = "."
    _live: dict[str, _Recording] = field(default_factory=dict)
    _failed: set[str] = field(default_factory=set)
    _kept: list[_Kept] = field(default_factory=list)
    _errors: list[tuple[str, str]] = field(default_factory=list)
    _dir_ready: bool = False

    # -- recording -------------------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        if self._dir_ready:
            return
        created = not os.path.isdir(self.directory)
        os.makedirs(self.directory, exist_ok=True)
        if created and self.default_dir:
            # Like .pytest_cache: the traces are local artefacts, never to be committed.
            try:
                with open(os.path.join(self.directory, ".gitignore"), "x", encoding="utf-8") as handle:
                    handle.write("# Created by pytest --retrograde.\n*\n")
            except OSError:
                pass
        self._dir_ready = True

    def _start(self, item: pytest.Item) -> None:
        nodeid = item.nodeid
        final = os.path.join(self.directory, trace_name(nodeid))
        partial = os.path.join(self.directory, f".{os.path.basename(final)}.{os.getpid()}.part")
        rec = _Recording(nodeid, final, partial)
        self._live[nodeid] = rec
        try:
            self._prepare_dir()
            from tracer.monitor import Recorder  # only now: the plugin costs nothing without --retrograde

            recorder = Recorder(
                partial,
                root=self.root,
                include=tuple(self.include),
                exclude=(*self.exclude, _PLUGIN_GLOB),
                argv=["pytest", nodeid],
            )
            recorder.start()
            rec.recorder = recorder
        except Exception as exc:  # a recorder problem never fails the test: it is reported in the summary
            rec.error = f"could not start recording: {_describe(exc)}"
            rec.stopped = True
            _remove(partial)

    def _stop(self, nodeid: str, excinfo: tuple[Any, ...] | None) -> None:
        rec = self._live.get(nodeid)
        if rec is None or rec.stopped:
            return
        rec.stopped = True
        recorder = rec.recorder
        if recorder is None:
            return
        try:
            # The trace's exit: what the test raised, else what its teardown raised, else a clean exit.
            exc = rec.test_exception or (excinfo[1] if excinfo else None)
            if exc is None:
                recorder.exit_status = {"kind": "exit", "code": 0}
            else:
                recorder.exit_status = {"kind": "exception", "type": type(exc).__qualname__,
                                        "message": _safe_str(exc)}
            recorder.stop()
            if recorder.error:
                rec.error = f"the recording is incomplete: {recorder.error}"
        except Exception as exc:
            rec.error = f"could not finish the trace: {_describe(exc)}"

    def _finish(self, nodeid: str, report: pytest.TestReport | None) -> None:
        """The test's last report: keep its trace (rename it into place) or drop it."""
        rec = self._live.pop(nodeid, None)
        failed = nodeid in self._failed
        self._failed.discard(nodeid)
        if rec is None:
            return
        self._stop(nodeid, None)
        path: str | None = None
        if rec.recorder is None:
            pass  # nothing was recorded (the error says why)
        elif failed or self.mode == "all" or report is None:
            try:
                os.replace(rec.partial, rec.final)
                path = rec.final
            except OSError as exc:
                rec.error = rec.error or f"could not keep the trace: {_describe(exc)}"
        else:
            # This test ran again and passed: an older trace of it would only mislead.
            _remove(rec.final)
        _remove(rec.partial)
        if report is not None:
            if path is not None:
                setattr(report, TRACE_ATTR, path)
                setattr(report, FAILED_ATTR, failed)
            if rec.error is not None:
                setattr(report, ERROR_ATTR, rec.error)
        else:
            if path is not None:
                self._kept.append(_Kept(nodeid, path, "INTERRUPTED"))
            if rec.error is not None:
                self._errors.append((nodeid, rec.error))

    # -- hooks -----------------------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Result[None], None]:
        if self.fixtures:
            self._start(item)
        yield

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Result[None], None]:
        # trylast: the innermost wrapper, so the recording starts right before the test runs and stops
        # right after it (the failing assert and its exception are the trace's last steps).
        if not self.fixtures:
            self._start(item)
        outcome = yield
        if not self.fixtures:
            self._stop(item.nodeid, outcome.excinfo)
        elif outcome.excinfo and item.nodeid in self._live:
            self._live[item.nodeid].test_exception = outcome.excinfo[1]

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, Result[None], None]:
        outcome = yield
        if self.fixtures:
            self._stop(item.nodeid, outcome.excinfo)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Result[pytest.TestReport], None]:
        outcome = yield
        try:
            report = outcome.get_result()
        except BaseException:
            return
        if report.failed:
            self._failed.add(item.nodeid)
        if report.when == "teardown":
            self._finish(item.nodeid, report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Runs where the reports arrive: in this process, or in the pytest-xdist controller.
        path = getattr(report, TRACE_ATTR, None)
        if isinstance(path, str):
            failed = bool(getattr(report, FAILED_ATTR, report.failed))
            self._kept.append(_Kept(report.nodeid, path, "FAILED" if failed else "PASSED"))
        error = getattr(report, ERROR_ATTR, None)
        if isinstance(error, str):
            self._errors.append((report.nodeid, error))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Tests cut short (an interrupt, -x on an error in teardown): keep what they recorded.
        for nodeid in list(self._live):
            self._finish(nodeid, None)

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        if not self._kept and not self._errors:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "retrograde traces")
        passed = [k for k in self._kept if k.status == "PASSED"]
        for kept in self._kept:
            if kept.status == "PASSED":
                continue
            shown = shlex.quote(self._display(kept.path))
            write(f"{kept.status} {kept.nodeid}")
            write(f"    retrograde replay {shown}")
            write(f"    retrograde tui {shown}")
        if passed:
            write(f"{len(passed)} trace{'s' if len(passed) != 1 else ''} of passing tests "
                  f"in {self._display(self.directory)}")
        # One line per distinct problem (a recorder that cannot start fails the same way for every test).
        tests_by_problem: dict[str, list[str]] = {}
        for nodeid, message in self._errors:
            tests_by_problem.setdefault(message, []).append(nodeid)
        for message, nodeids in tests_by_problem.items():
            more = len(nodeids) - 1
            who = nodeids[0] + (f" and {more} more test{'s' if more != 1 else ''}" if more else "")
            write(f"retrograde: {who}: {message}", yellow=True)

    def _display(self, path: str) -> str:
        """A path relative to where pytest was started when it lies under it, else absolute."""
        try:
            relative = os.path.relpath(path, self.display_base)
        except ValueError:
            return path
        return path if relative.startswith(os.pardir) else relative


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _describe(exc: BaseException) -> str:
    text = _safe_str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _safe_str(obj: object) -> str:
    try:
        return str(obj)[:1000]
    except Exception:
        return "<unprintable>"


__all__ = ["RetrogradePlugin", "trace_name"]
