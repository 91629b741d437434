"""Build hook for the optional C hot path of the recorder (tracer/_core.c); metadata is in pyproject.toml.

The extension is optional: where it cannot be built (no compiler, an unsupported Python), the pure Python
recorder runs instead and records the same trace."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("tracer._core", ["tracer/_core.c"], optional=True, extra_compile_args=["-O2"]),
    ]
)
