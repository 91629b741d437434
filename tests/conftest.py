"""Shared pytest fixtures: where the project and its samples live, and a subprocess runner for the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

RunRetrograde = Callable[..., "subprocess.CompletedProcess[str]"]


def retrograde_command() -> tuple[list[str], dict[str, str]]:
    """The command that starts the CLI, and extra environment it needs."""
    script = Path(sys.executable).with_name("retrograde")
    if script.exists():
        return [str(script)], {}
    # Not installed as a console script (yet): run the package from the source tree instead.
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "retrograde"], {"PYTHONPATH": path}


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return PROJECT_ROOT / "samples"


@pytest.fixture(scope="session")
def run_retrograde() -> RunRetrograde:
    """run_retrograde(args, cwd, input="", env=None, timeout=120): run `retrograde ARGS` and capture text.

    stdin is `input` (empty by default, never the terminal); env defaults to this process's environment.
    """

    def run(
        args: Sequence[str | os.PathLike[str]],
        cwd: str | os.PathLike[str],
        input: str | None = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        command, extra_env = retrograde_command()
        full_env = {**(os.environ if env is None else env), **extra_env}
        return subprocess.run(
            [*command, *map(str, args)],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )

    return run


def pytest_report_header() -> str:
    """Which recorder core this run tests (test.sh runs the suite once per core)."""
    from tracer import monitor

    core = "python" if monitor.Recorder is monitor.PythonRecorder else "c (tracer/_core/)"
    asked = os.environ.get("RETROGRADE_RECORDER", "")
    return f"retrograde recorder core: {core} (RETROGRADE_RECORDER={asked!r})"
