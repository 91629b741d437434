"""Layers only point down (retrograde > tui > neural > replay > tracer), and the suite runs per recorder core.

The import contracts in pyproject.toml are checked by `lint-imports` in test.sh; these tests check that
the contracts say what the project's rule says, that the tool catches an upward import, and (without
the tool) that no module of a lower layer imports a higher one, lazily or not.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

# Highest first. A package may import those after it, never those before it.
LAYERS = ("retrograde", "tui", "neural", "replay", "tracer")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def _forbidden_pairs_of(contract: dict[str, object]) -> set[tuple[str, str]]:
    """The (importer, imported) package pairs a contract forbids."""
    if contract["type"] == "layers":
        layers = [str(layer) for layer in contract["layers"]]  # type: ignore[attr-defined]
        return {(low, high) for i, high in enumerate(layers) for low in layers[i + 1 :]}
    if contract["type"] == "forbidden":
        sources = [str(s) for s in contract["source_modules"]]  # type: ignore[attr-defined]
        targets = [str(t) for t in contract["forbidden_modules"]]  # type: ignore[attr-defined]
        return {(s, t) for s in sources for t in targets}
    return set()


def test_the_contracts_forbid_every_upward_import() -> None:
    forbidden = set().union(*map(_forbidden_pairs_of, _contracts()))
    wanted = {(low, high) for i, high in enumerate(LAYERS) for low in LAYERS[i + 1 :]}
    assert wanted <= forbidden, f"not forbidden: {sorted(wanted - forbidden)}"
    downward = {(high, low) for low, high in wanted}
    assert not forbidden & downward, "a contract forbids a downward import"


def _upward_imports(package: str) -> list[str]:
    """Every import in the package's modules (at any depth: lazy imports count) of a higher layer."""
    higher = set(LAYERS[: LAYERS.index(package)])
    found = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] in higher:
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} imports {name}")
    return found


@pytest.mark.parametrize("package", LAYERS[1:])
def test_no_module_imports_a_higher_layer(package: str) -> None:
    assert _upward_imports(package) == []


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(tool), "--no-cache", "--no-logo"], cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages' sources and pyproject.toml, in a directory lint-imports can be pointed at."""
    if not Path(sys.executable).with_name("lint-imports").exists():
        pytest.skip("import-linter is not installed (pip install 'retrograde[dev]')")
    root = tmp_path_factory.mktemp("layers")
    for package in LAYERS:
        skip = shutil.ignore_patterns("__pycache__", "*.so")
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=skip)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_lint_imports_passes_on_the_project(project_copy: Path) -> None:
    done = _lint_imports(project_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    "module, upward",
    [("tracer/format.py", "replay.recorded"), ("replay/engine.py", "neural"), ("neural/cli.py", "tui.app"),
     ("tui/app.py", "retrograde.cli")],
)
def test_lint_imports_catches_an_upward_import(project_copy: Path, module: str, upward: str) -> None:
    path = project_copy / module
    original = path.read_text()
    try:
        # A lazy import inside a function counts as much as one at the top.
        path.write_text(original + f"\n\ndef _sneaky() -> None:\n    import {upward}  # noqa\n")
        done = _lint_imports(project_copy)
    finally:
        path.write_text(original)
    assert done.returncode != 0
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {upward}" in done.stdout, done.stdout


# -- one suite per recorder core ------------------------------------------------------------------------


def _core_in_use() -> str:
    from tracer import monitor

    return "python" if monitor.Recorder is monitor.PythonRecorder else "c"


def test_the_suite_runs_on_the_recorder_core_it_asks_for() -> None:
    """test.sh runs the suite with RETROGRADE_RECORDER=c, then =python: each run must use that core
    (the C run fails here, rather than silently testing Python twice, when the core is not built)."""
    from tracer import monitor

    wanted = os.environ.get("RETROGRADE_RECORDER", "").lower()
    if wanted == "python":
        assert _core_in_use() == "python"
    elif wanted == "c":
        assert monitor.compiled_available(), "RETROGRADE_RECORDER=c: tracer/_core/ is not built (or stale)"
        assert _core_in_use() == "c"
    else:  # not set: the C core whenever it is built
        assert _core_in_use() == ("c" if monitor.compiled_available() else "python")
    child = subprocess.run(
        [sys.executable, "-c", "from tracer import monitor; print(monitor.Recorder.__name__)"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert child.stdout.strip() == monitor.Recorder.__name__  # `retrograde record` children record alike
