"""Build hook for the optional C hot path of the recorder (tracer/_core/*.c); metadata is in pyproject.toml.

The extension is optional: where it cannot be built (no compiler, an unsupported Python), the pure Python
recorder runs instead and records the same trace. The build embeds the CRC-32 of all its sources (every
.c unit and the shared header), so a stale build (older sources) is never used (tracer/native.py checks)."""

import zlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE_DIR = Path(__file__).resolve().parent / "tracer" / "_core"


def source_hash(directory: Path) -> str:
    """The same hash as tracer/native.py's source_hash: CRC-32 over each source's name and bytes, by name."""
    crc = 0
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.suffix in (".c", ".h"):
            crc = zlib.crc32(path.read_bytes(), zlib.crc32(path.name.encode() + b"\0", crc))
    return f"{crc:08x}"


setup(
    ext_modules=[
        Extension(
            "tracer._core",
            sorted(f"tracer/_core/{p.name}" for p in SOURCE_DIR.glob("*.c")),
            depends=sorted(f"tracer/_core/{p.name}" for p in SOURCE_DIR.glob("*.h")),
            optional=True,
            define_macros=[("RETROGRADE_SOURCE_HASH", f'"{source_hash(SOURCE_DIR)}"')],
            extra_compile_args=["-O2"],
        ),
    ]
)
