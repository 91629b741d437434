"""The flusher: a raw background thread that writes the pending steps at least every flush interval."""

from __future__ import annotations

import _thread
import time
from typing import Any, Protocol

from tracer.forking import drop_filter


class _FlushHost(Protocol):
    """The recorder state the flusher uses."""

    flush_interval: Any
    _flusher_stop: Any
    _flusher_running: Any
    _fork_filter: Any
    _last_flush: Any
    _steps: Any
    _outputs: Any
    _lock: Any
    _owner: Any
    _active: Any

    def _flush_locked(self) -> None: ...

    def _fail(self, exc: BaseException) -> None: ...

    def _flusher(self) -> None: ...


class Flusher:
    """Starts and runs the flusher thread (a mixin of PythonRecorder). A raw thread: invisible to
    threading.enumerate, so the program sees no thread of ours."""

    _owner: int | None  # the thread holding the recorder's lock for its own work

    def _start_flusher(self: _FlushHost) -> None:
        self._flusher_running = True
        _thread.start_new_thread(self._flusher, ())

    def _flusher(self: _FlushHost) -> None:
        while not self._flusher_stop:
            time.sleep(self.flush_interval / 2)
            if getattr(self, "_fork_filter", None) is not None:
                drop_filter(self._fork_filter)
                self._fork_filter = None
            if self._flusher_stop:
                break
            if time.monotonic() - self._last_flush >= self.flush_interval and (self._steps or self._outputs):
                with self._lock:
                    self._owner = _thread.get_ident()  # our own code below must not re-enter the callbacks
                    try:
                        if self._active and (self._steps or self._outputs):
                            self._flush_locked()
                    except Exception as exc:
                        self._fail(exc)
                    finally:
                        self._owner = None
        self._flusher_running = False
