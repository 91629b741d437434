"""The compiled part of the recorder (tracer/_core.c), if it is built and current.

It is optional: without a C compiler at install time, or when tracer/_core.c changed since the last
build (the build embeds the CRC-32 of its source), this gives None and the pure Python code runs."""

from __future__ import annotations

import importlib
import os
import zlib
from typing import Any


def source_hash(source: bytes) -> str:
    """The hash setup.py embeds in the build (CRC-32: it only tells edits apart; hashlib's import alone
    cost 3 ms of every recording's start-up)."""
    return f"{zlib.crc32(source):08x}"


def _stale(module: Any) -> bool:
    """True when the built extension is not the current tracer/_core.c (edited since the last build)."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_core.c")
    try:
        with open(source, "rb") as handle:
            digest = source_hash(handle.read())
    except OSError:
        return False  # an installed package without its sources: trust the build
    return bool(getattr(module, "SOURCE_HASH", "") != digest)


def load() -> Any:
    """tracer._core, or None when it is not built or is stale."""
    if os.environ.get("RETROGRADE_NO_CORE"):
        return None
    try:
        module = importlib.import_module("tracer._core")
    except ImportError:
        return None
    return None if _stale(module) else module


core: Any = load()
