"""Retrograde's recorder: sys.monitoring callbacks writing compact, chunked, indexed msgpack traces."""

from __future__ import annotations

from tracer.api import record
from tracer.format import FORMAT_VERSION, TraceFormatError, TraceReader

__all__ = ["FORMAT_VERSION", "TraceFormatError", "TraceReader", "record"]
