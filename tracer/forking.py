"""Fork handling: a forked child never writes to the parent's trace; our flusher causes no fork warning."""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Protocol

FORK_WARNING = r"This process \(pid=\d+\) is multi-threaded, use of fork\(\) may lead to deadlocks"


def drop_filter(entry: Any) -> None:
    """Remove the warnings filter ForkHooks._before_fork added (already gone: nothing)."""
    if entry is None:
        return
    try:
        warnings.filters.remove(entry)  # type: ignore[attr-defined]
        mutated = getattr(warnings, "_filters_mutated", None) or getattr(
            warnings, "_filters_mutated_lock_held", None
        )
        if mutated is not None:
            mutated()
    except (ValueError, TypeError):
        pass


class _ForkHost(Protocol):
    """The recorder state the fork hooks use."""

    _installed: Any
    _fork_filter: Any
    _active: Any
    _flusher_stop: Any
    _lock: Any
    _owner: Any
    _writer: Any
    _new_lock: Any

    def _uninstall(self) -> None: ...

    def _before_fork(self) -> None: ...

    def _after_fork_in_parent(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


class ForkHooks:
    """The recorder's os.register_at_fork hooks (a mixin of PythonRecorder)."""

    _owner: int | None  # the thread holding the recorder's lock for its own work
    _writer: Any

    def _register_fork_hooks(self: _ForkHost) -> None:
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork_in_child,
            )

    def _before_fork(self: _ForkHost) -> None:
        # Python 3.12+ warns at fork() when the process has other threads. Our flusher is the only other
        # one when the program has none of its own: that warning would be ours, not the program's.
        self._fork_filter = None
        if self._installed and threading.active_count() == 1:
            warnings.filterwarnings("ignore", message=FORK_WARNING, category=DeprecationWarning)
            self._fork_filter = warnings.filters[0]

    def _after_fork_in_parent(self) -> None:
        # CPython warns after these hooks have run: the flusher drops the filter on its next tick.
        pass

    def _after_fork_in_child(self: _ForkHost) -> None:
        drop_filter(getattr(self, "_fork_filter", None))
        # The child shares our file handle: it must never write to it.
        self._active = False
        self._flusher_stop = True
        self._lock = self._new_lock()
        self._owner = None
        self._uninstall()
        if self._writer is not None:
            self._writer.abandon()
            self._writer = None
