"""Shared by the runners: load or run a benchmark workload file given its path and arguments."""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from collections.abc import Callable
from typing import Any


def parse_argv() -> tuple[str, str, list[str]]:
    """Runner command line: OUTFILE WORKLOAD.py [WORKLOAD ARGS...]."""
    if len(sys.argv) < 3:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} OUTFILE WORKLOAD.py [ARGS...]")
    return sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:]


def run_as_main(path: str, args: list[str]) -> None:
    """Execute the workload file as __main__, like `python path args` would."""
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(path)
    runpy.run_path(path, run_name="__main__")


def load_main(path: str, args: list[str]) -> Callable[[], Any]:
    """Import the workload under a non-main name and return its main(), for decorator-style tools."""
    sys.argv = [path, *args]
    sys.path[0] = os.path.dirname(path)
    spec = importlib.util.spec_from_file_location("bench_workload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    main: Callable[[], Any] = module.main
    return main
