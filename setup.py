"""Build hook for the optional C hot path of the recorder (tracer/_core.c); metadata is in pyproject.toml.

The extension is optional: where it cannot be built (no compiler, an unsupported Python), the pure Python
recorder runs instead and records the same trace. The build embeds the CRC-32 of its source, so a stale
build (an older _core.c) is never used (tracer/monitor.py checks)."""

import zlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "tracer/_core.c"
# The same hash as tracer/native.py's source_hash.
SOURCE_HASH = f"{zlib.crc32(Path(__file__).with_name('tracer').joinpath('_core.c').read_bytes()):08x}"

setup(
    ext_modules=[
        Extension(
            "tracer._core",
            [SOURCE],
            optional=True,
            define_macros=[("RETROGRADE_SOURCE_HASH", f'"{SOURCE_HASH}"')],
            extra_compile_args=["-O2"],
        ),
    ]
)
