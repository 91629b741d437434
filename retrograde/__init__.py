"""Retrograde's front ends, above the four layers (tracer < replay < neural < tui).

The `retrograde` command line, the DAP adapter and the pytest plugin live here.
"""
