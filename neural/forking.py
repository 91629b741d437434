"""`whatif`'s replay.session.Forker for the front ends: neural's what-if, loaded on first use.

This module imports neither torch nor the model, so a front end can hand the forker out at start-up."""

from __future__ import annotations

from typing import Any


def whatif_forker(model: str | None = None) -> Any:
    """A LazyForker that loads neural.whatif (and the model at MODEL, default: bundled) on the first fork."""
    from replay.session import NO_FORKER, ForkError, LazyForker

    def make() -> Any:
        try:
            from neural.whatif import load_forker
        except ImportError:
            raise ForkError(NO_FORKER) from None
        return load_forker(model)

    return LazyForker(make)
