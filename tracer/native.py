"""The compiled part of the recorder (tracer/_core.c), if it is built and current.

It is optional: without a C compiler at install time, or when tracer/_core.c changed since the last
build (the build embeds the sha1 of its source), this gives None and the pure Python code runs."""

from __future__ import annotations

import hashlib
import importlib
import os
from typing import Any


def _stale(module: Any) -> bool:
    """True when the built extension is not the current tracer/_core.c (edited since the last build)."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_core.c")
    try:
        with open(source, "rb") as handle:
            digest = hashlib.sha1(handle.read()).hexdigest()
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
