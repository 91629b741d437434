"""The compiled part of the recorder (tracer/_core/*.c), if it is built, current and consistent.

It is optional: without a C compiler at install time, or when a source in tracer/_core/ changed since the
last build (the build embeds the CRC-32 of its sources), or when a constant the C code shares with the
Python code differs, this gives None and the pure Python code runs."""

from __future__ import annotations

import importlib
import os
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_core")


def source_hash(sources: Iterable[tuple[str, bytes]]) -> str:
    """The hash setup.py embeds in the build: CRC-32 over each (name, bytes), in name order (CRC-32: it only
    tells edits apart; hashlib's import alone cost 3 ms of every recording's start-up)."""
    crc = 0
    for name, data in sorted(sources):
        crc = zlib.crc32(data, zlib.crc32(name.encode() + b"\0", crc))
    return f"{crc:08x}"


def _sources() -> list[tuple[str, bytes]] | None:
    """Every C unit and header of the extension, or None when the sources are not there."""
    try:
        names = [n for n in os.listdir(SOURCE_DIR) if n.endswith((".c", ".h"))]
        result = []
        for name in names:
            with open(os.path.join(SOURCE_DIR, name), "rb") as handle:
                result.append((name, handle.read()))
    except OSError:
        return None
    return result or None


def _stale(module: Any) -> bool:
    """True when the built extension is not the current tracer/_core/ (edited since the last build)."""
    sources = _sources()
    if sources is None:
        return False  # an installed package without its sources: trust the build
    return bool(getattr(module, "SOURCE_HASH", "") != source_hash(sources))


def shared_constants() -> dict[str, int]:
    """Every constant the C code shares with the Python code, from its Python definition (the C module
    exports the same names). EV_* are tracer/format.py's, which imports this module: monitor.py checks
    them, and the layout size of its fast_info."""
    from tracer import codes, plan, values  # none of them imports this module

    names = ("G_GLOBAL", "G_METHOD", "G_ITEM_METHOD", "G_SUBSCR", "G_STORE", "G_INPLACE", "G_CALL",
             "G_LIBCALL")
    found = {
        name: getattr(plan, name)
        for name in (*names, "K_PURE", "K_MUTATES", "K_UNKNOWN", "PLAN_GROW", "PLAN_ITEMS", "PLAN_POP")
    }
    found.update(
        NATIVE_INT_LIMIT=values.NATIVE_INT_LIMIT,
        NATIVE_FLOAT_LIMIT=values.NATIVE_FLOAT_LIMIT,
        FAST_LEN=values._FAST_LEN,
        NESTED_BUDGET=values._NESTED_BUDGET,
        HEAD_TRACKED=values.HEAD_TRACKED,
        HEAD_TRACKED_FLAT=values.HEAD_TRACKED_FLAT,
        FLAG_OBJECT=values.FLAG_OBJECT,
    )
    shared_codes = ("T_LIST", "T_DICT", "OP_SPLICE", "OP_SET", "OP_DEL")  # tracker.c records them
    found.update({name: getattr(codes, name) for name in shared_codes})
    return found


def mismatches(module: Any, expected: Mapping[str, int]) -> list[str]:
    """The names whose value in the built module differs from the Python one (or that it lacks)."""
    return [name for name, value in expected.items() if getattr(module, name, None) != value]


def load() -> Any:
    """tracer._core, or None when it is not built, is stale, or disagrees on a shared constant."""
    if os.environ.get("RETROGRADE_NO_CORE"):
        return None
    try:
        module = importlib.import_module("tracer._core")
    except ImportError:
        return None
    if _stale(module) or mismatches(module, shared_constants()):
        return None
    from tracer import plan

    set_effects = getattr(module, "set_library_effects", None)
    if set_effects is None:
        return None  # a build without the effect table: not this one
    set_effects(plan.LIBRARY_EFFECTS)  # one table, Python's (the effect guards read it)
    return module


core: Any = load()
