"""The compiled recorder (tracer/_core/) and the Python code agree on every shared constant, and a build
that disagrees, or that is older than any of its sources, is refused (the pure Python recorder runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import setuptools

from tracer import codes, monitor, native, plan, values
from tracer import format as trace_format

ROOT = Path(__file__).resolve().parent.parent
built = pytest.mark.skipif(native.core is None, reason="tracer/_core/ is not built")


def fake_core(**changes: Any) -> types.SimpleNamespace:
    """A stand-in for a current build: the right source hash and every shared constant (then `changes`)."""
    sources = native._sources()
    assert sources is not None
    constants = native.shared_constants()
    constants.update(changes)
    handed: dict[Any, int] = {}  # the effect table load() hands the build
    return types.SimpleNamespace(SOURCE_HASH=native.source_hash(sources), set_library_effects=handed.update,
                                 handed=handed, **constants)


def test_shared_constants_are_the_python_definitions() -> None:
    found = native.shared_constants()
    assert found["G_STORE"] == plan.G_STORE and found["K_UNKNOWN"] == plan.K_UNKNOWN
    assert found["NATIVE_FLOAT_LIMIT"] == values.NATIVE_FLOAT_LIMIT and found["FAST_LEN"] == values._FAST_LEN
    assert set(found) == {
        *(f"G_{n}" for n in ("GLOBAL", "METHOD", "ITEM_METHOD", "SUBSCR", "STORE", "INPLACE", "CALL")),
        "G_LIBCALL",
        *(f"K_{n}" for n in ("PURE", "MUTATES", "UNKNOWN")),
        *("NATIVE_INT_LIMIT", "NATIVE_FLOAT_LIMIT", "FAST_LEN", "NESTED_BUDGET"),
        *("HEAD_TRACKED", "HEAD_TRACKED_FLAT", "FLAG_OBJECT"),
        *("PLAN_GROW", "PLAN_ITEMS", "PLAN_POP"),
        *("T_LIST", "T_DICT", "OP_SPLICE", "OP_SET", "OP_DEL"),
    }
    assert found["OP_SPLICE"] == codes.OP_SPLICE and found["T_DICT"] == codes.T_DICT


@built
def test_the_build_exports_each_constant_with_the_python_value() -> None:
    core = native.core
    for name, value in native.shared_constants().items():
        assert getattr(core, name) == value, name
    events = {name: getattr(trace_format, name) for name in ("EV_CALL", "EV_LINE", "EV_RETURN")}
    assert native.mismatches(core, events) == []
    assert core.INFO_SIZE == monitor.FAST_INFO_SIZE

    def sample(a: int) -> int:
        b = a + 1
        return b

    assert len(monitor.fast_info(sample.__code__, plan.analyse(sample.__code__, 0))) == core.INFO_SIZE


def test_fake_build_with_one_constant_changed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETROGRADE_NO_CORE", raising=False)
    good = fake_core()
    monkeypatch.setattr(native.importlib, "import_module", lambda name: good)
    assert native.load() is good  # the stand-in is accepted as it is
    assert good.handed == plan.LIBRARY_EFFECTS  # with the library effects the guards read
    for name in native.shared_constants():
        bad = fake_core(**{name: native.shared_constants()[name] + 1})
        monkeypatch.setattr(native.importlib, "import_module", lambda name, bad=bad: bad)
        assert native.load() is None, name
        assert native.mismatches(bad, native.shared_constants()) == [name]


def test_a_python_constant_changed_refuses_the_real_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETROGRADE_NO_CORE", raising=False)
    if native.load() is None:
        pytest.skip("tracer/_core/ is not built")
    monkeypatch.setattr(plan, "G_INPLACE", plan.G_INPLACE + 10)
    assert native.load() is None
    monkeypatch.undo()
    monkeypatch.setattr(values, "NATIVE_INT_LIMIT", values.NATIVE_INT_LIMIT - 1)
    assert native.load() is None


@built
def test_monitor_refuses_a_build_with_other_event_numbers() -> None:
    """At import, in a fresh interpreter: the build's EV_LINE differs from tracer/format.py's."""
    script = (
        "import importlib, tracer.monitor as m, tracer.native as n\n"
        "assert m._core is not None and m.Recorder is m.CompiledRecorder\n"
        "n.core.EV_LINE = 7\n"
        "importlib.reload(m)\n"
        "print(m._core is None, m.Recorder is m.PythonRecorder)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("RETROGRADE_NO_CORE", "RETROGRADE_RECORDER")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_an_edit_of_any_source_makes_the_build_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "_core"
    shutil.copytree(native.SOURCE_DIR, copy)
    monkeypatch.setattr(native, "SOURCE_DIR", str(copy))
    current = fake_core()
    assert not native._stale(current)
    names = sorted(p.name for p in copy.iterdir() if p.suffix in (".c", ".h"))
    assert "core.h" in names and "module.c" in names and len(names) >= 5
    for name in names:
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert native._stale(current), name
        path.write_bytes(original)
    assert not native._stale(current)
    (copy / "extra.c").write_text("/* a new unit */\n")
    assert native._stale(current)


def test_setup_py_builds_every_unit_with_native_s_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """setup.py (run without building) compiles every .c, depends on the header, and embeds the hash
    that tracer/native.py computes."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    monkeypatch.chdir(ROOT)
    code = compile((ROOT / "setup.py").read_text(), str(ROOT / "setup.py"), "exec")
    exec(code, {"__name__": "__main__", "__file__": str(ROOT / "setup.py")})
    (ext,) = seen["ext_modules"]
    units = sorted(f"tracer/_core/{p.name}" for p in (ROOT / "tracer" / "_core").glob("*.c"))
    assert sorted(ext.sources) == units and "tracer/_core/core.h" in ext.depends
    sources = native._sources()
    assert sources is not None
    assert dict(ext.define_macros)["RETROGRADE_SOURCE_HASH"] == f'"{native.source_hash(sources)}"'
    if native.core is not None:
        assert native.source_hash(sources) == native.core.SOURCE_HASH
