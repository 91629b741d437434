"""The recorder: sys.monitoring callbacks that turn a running program into trace chunks.

Design notes (see DESIGN.md):
- PY_START is enabled globally; the first time a code object starts we decide once whether it belongs to
  the program (filters) and either return DISABLE (it never calls us again) or enable its local events.
- A step stores only what changed in its frame. Candidates come from the code's plan (names the previous
  line stores; whether it may mutate objects); anything unusual since the frame's last step (a callee ran,
  another thread ran, an exception) triggers a full check of the frame's locals. Immutable values are
  compared by identity, mutable ones by their bounded repr.
- Steps go into the chunk's columns (StepBuffer); packing happens per chunk, compression and I/O in a
  writer thread (tracer.format.TraceWriter). A raw background thread (invisible to
  ``threading.enumerate``) flushes at least every half second so a killed process loses at most that much.
- Every callback is wrapped so the program never sees an exception from the recorder; a failure stops
  recording and is noted in the trace's footer.

Split along its seams: the file filters (tracer/filters.py), the output tee (tracer/tee.py), fork
handling (tracer/forking.py), the flusher thread (tracer/flusher.py) and the Python records
(tracer/records.py) live beside this module, which keeps the recorders and their callbacks; the compiled
callbacks are tracer/_core/ (loaded by tracer/native.py).
"""

from __future__ import annotations

import _thread
import collections
import dis
import linecache
import os
import sys
import threading
import time
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from tracer import native as native_module
from tracer.filters import FileFilter
from tracer.flusher import Flusher
from tracer.forking import ForkHooks, drop_filter
from tracer.format import (
    EV_CALL,
    EV_EXCEPTION,
    EV_HANDLED,
    EV_LINE,
    EV_RESUME,
    EV_RETURN,
    EV_UNWIND,
    EV_YIELD,
    ZSTD_LEVEL,
    ChunkData,
    TraceWriter,
    summarize_chunk,
)
from tracer.native import core as _built_core
from tracer.objects import ObjectTracker
from tracer.plan import (
    G_CALL,
    G_GLOBAL,
    G_LIBCALL,
    PLAN_GROW,
    PLAN_ITEMS,
    PLAN_POP,
    CodePlan,
    LinePlan,
    analyse,
    touched_objects,
)
from tracer.records import FrameRecord, StepBuffer, ThreadState
from tracer.tee import OutputTee
from tracer.values import (
    _NON_LITERAL_FLOATS,
    DEFAULT_LIMIT,
    TRACKED_FLAT_HEAD,
    TRACKED_HEAD,
    ValueEncoder,
    decode_text,
    is_immutable,
    native,
    object_id,
    same_encoding,
)

_frame_locals_c = getattr(_built_core, "frame_locals", None)
_CO_OPTIMIZED = 1  # inspect.CO_OPTIMIZED: a function's code, with fast locals
_Spans = dict[str, tuple[tuple[int, int], ...]]
_SHADOWED_CELLS: dict[types.CodeType, _Spans] = {}


def _stored_names(instr: dis.Instruction) -> tuple[str, ...]:
    """The names a STORE_FAST-family instruction stores into (superinstructions name two)."""
    if not instr.opname.startswith("STORE_FAST"):
        return ()
    value = instr.argval
    return tuple(value) if isinstance(value, tuple) else (value,)


def _shadowed_cells(code: types.CodeType) -> _Spans:
    """For each cell or free variable of code that an inlined comprehension also binds as a plain variable:
    the bytecode spans [start, end) in which its slot may hold the plain value instead of the cell (from the
    comprehension's LOAD_FAST_AND_CLEAR to the STORE_FAST after its loop that puts the cell back)."""
    spans = _SHADOWED_CELLS.get(code)
    if spans is None:
        shared = set(code.co_cellvars) | set(code.co_freevars)
        instrs = list(dis.get_instructions(code))
        found: dict[str, list[tuple[int, int]]] = {}
        for i, instr in enumerate(instrs):
            name = instr.argval
            if instr.opname != "LOAD_FAST_AND_CLEAR" or name not in shared:
                continue
            end = len(code.co_code)  # to the end, where the loop cannot be found (be safe)
            loop_end = next((j.argval for j in instrs[i:] if j.opname == "FOR_ITER"), None)
            if isinstance(loop_end, int):
                restores = (j.offset for j in instrs if j.offset > loop_end and name in _stored_names(j))
                end = next(restores, end)
            found.setdefault(name, []).append((instr.offset, end))
        spans = {name: tuple(pairs) for name, pairs in found.items()}
        _SHADOWED_CELLS[code] = spans
    return spans


def frame_locals(frame: types.FrameType) -> Mapping[str, Any]:
    """A frame's variables as a fixed CPython's frame.f_locals shows them, without risking its crashes.

    CPython 3.13 before the fix of gh-128396 (python/cpython#130235) crashes reading f_locals while an
    inlined comprehension (PEP 709) binds a name that is also a cell or free variable of the function: the
    slot then holds the plain value, and f_locals takes it for a cell. The compiled helper reads the
    fast-locals array itself and dereferences only real cells. Without it, such a name is left out while
    its comprehension runs (its value cannot be read safely from Python); every other name is read one by
    one. (3.12's f_locals checks cells but not free variables; 3.14 has the fix: only older versions.)
    """
    if not frame.f_code.co_flags & _CO_OPTIMIZED:
        return frame.f_locals
    if _frame_locals_c is not None:
        result: Mapping[str, Any] = _frame_locals_c(frame)
        return result
    code = frame.f_code
    spans = _shadowed_cells(code) if sys.version_info < (3, 14) else None
    if not spans:
        return frame.f_locals
    at = frame.f_lasti
    unsafe = {name for name, pairs in spans.items() if any(a <= at < b for a, b in pairs)}
    if not unsafe:
        return frame.f_locals
    proxy = frame.f_locals
    safe: dict[str, Any] = {}
    for name in (*code.co_varnames, *code.co_cellvars, *code.co_freevars):
        if name not in unsafe and name not in safe:
            try:
                safe[name] = proxy[name]
            except KeyError:
                pass
    return safe


MON = sys.monitoring
EVENTS = MON.events
TOOL_ID = 4  # ids 3 and 4 are free for general tools; 0 debugger, 1 coverage, 2 profiler, 5 optimizer
TOOL_NAME = "retrograde"
LOCAL_EVENTS = (
    EVENTS.LINE | EVENTS.JUMP | EVENTS.PY_RETURN | EVENTS.PY_YIELD | EVENTS.PY_RESUME | EVENTS.STOP_ITERATION
)
GLOBAL_EVENTS = (
    EVENTS.PY_START | EVENTS.RAISE | EVENTS.EXCEPTION_HANDLED | EVENTS.PY_UNWIND | EVENTS.PY_THROW
)
DISABLE = MON.DISABLE
_MISSING = object()


class RecorderError(Exception):
    """Recording cannot start (tool id taken, file not writable...)."""


class PythonRecorder(ForkHooks, Flusher):
    """Records the program's own frames into a trace file while installed.

    This is the reference recorder, in pure Python. CompiledRecorder (below) runs the same code with the
    commonest callbacks in C; both write the same trace."""

    _record_type: Any = FrameRecord
    _thread_type: Any = ThreadState
    _new_lock: Any = staticmethod(_thread.allocate_lock)
    _new_steps: Any = StepBuffer

    def __init__(
        self,
        path: str,
        *,
        root: str,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        max_steps: int | None = None,
        value_limit: int = DEFAULT_LIMIT,
        chunk_steps: int = 8192,  # smaller chunks: faster random access (a goto decodes one), +2% size
        flush_interval: float = 0.5,
        argv: Sequence[str] = (),
        capture_output: bool = True,
        compression: int = ZSTD_LEVEL,  # zstd level of the chunk payloads
    ) -> None:
        self.path = path
        self.filter = FileFilter(root, include, exclude)
        self.max_steps = max_steps
        self.encoder = ValueEncoder(value_limit)
        self.encode = self.encoder.encode
        # Builtin containers too long to show whole are also recorded by structure (tracer/objects.py);
        # their elements' texts (anything but scalars and builtin containers) come from a second encoder.
        element_text = ValueEncoder(value_limit).encode
        self.objects = ObjectTracker(text=lambda v: decode_text(element_text(v))[0], step=lambda: self._count)
        self.encoder.tracker = self.objects
        self._object_bases: dict[int, list[int]] = {}  # where each object's state is, at the chunk's start
        self._guarded = False  # rechecking after a line whose effect guards held (see _recheck)
        self._touched: tuple[Any, ...] | None = None  # then: the objects that line can have changed
        self.chunk_steps = chunk_steps
        self.flush_interval = flush_interval
        self.compression = compression
        self.capture_output = capture_output
        self.argv = list(argv)
        self._lock = self._new_lock()
        self._owner: int | None = None
        self._value_limit = self.encoder.limit
        self._codes: dict[int, tuple[Any, ...]] = {}  # id(code) -> (code, plan or None[, plan.fast])
        self._files: dict[str, int] = {}
        self._pending_files: list[tuple[int, str, str | None]] = []
        self._pending_codes: list[tuple[int, int, str, int]] = []
        self._threads: dict[int, ThreadState] = {}
        self._thread_numbers = 0
        self._suspended: dict[int, FrameRecord] = {}
        self._steps = self._new_steps()
        self._moves: list[list[int]] = []
        self._outputs: list[list[Any]] = []
        self._keyframe: dict[int, list[Any]] = {}
        self._chunk_start = 0
        self._count = 0
        self._next_check = 1
        self._next_fid = 0
        self._line_steps_written = 0
        self._next_code = 0
        self._active = False
        self._installed = False
        self._writer: TraceWriter | None = None
        self._last_flush = time.monotonic()
        self._flusher_stop = False
        self._flusher_running = False
        self._tees: list[tuple[str, OutputTee, TextIO]] = []
        self.error: str | None = None
        self._fork_filter: Any = None
        self.max_steps_reached = False
        self.exit_status: dict[str, Any] = {"kind": "running"}
        self.start_time = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, *, adopt_stack: bool = False) -> None:
        current = MON.get_tool(TOOL_ID)
        if current is not None:
            raise RecorderError(
                f"sys.monitoring tool id {TOOL_ID} is already in use by {current!r}; "
                "stop that tool (or the other recording) before recording"
            )
        self.start_time = time.time()
        header = {
            "tool": TOOL_NAME,
            "python": sys.version.split()[0],
            "implementation": sys.implementation.name,
            "argv": self.argv,
            "cwd": os.getcwd(),
            "start_time": self.start_time,
            "pid": os.getpid(),
            "value_limit": self.encoder.limit,
            "root": self.filter.root,
        }
        try:
            self._writer = TraceWriter(self.path, header, background=True, level=self.compression)
        except OSError as exc:
            raise RecorderError(f"cannot write the trace file {self.path}: {exc.strerror}") from None
        MON.use_tool_id(TOOL_ID, TOOL_NAME)
        self._installed = True
        self._register_callbacks()
        self._active = True
        if adopt_stack:
            self._adopt_current_stack(sys._getframe(2))
        if self.capture_output:
            for name, number in (("stdout", 1), ("stderr", 2)):
                stream = getattr(sys, name)
                if stream is not None:
                    tee = OutputTee(self, stream, number)
                    self._tees.append((name, tee, stream))
                    setattr(sys, name, tee)
        MON.set_events(TOOL_ID, GLOBAL_EVENTS)
        self._register_fork_hooks()
        # os._exit skips atexit: finish the trace first, so the last moments before it are kept.
        self._real_exit = os._exit
        recorder = self

        def _exit(status: int) -> Any:
            recorder.exit_status = {"kind": "exit", "code": status, "via": "os._exit"}
            try:
                recorder.stop()
            finally:
                recorder._real_exit(status)

        os._exit = _exit
        self._start_flusher()

    def _register_callbacks(self) -> None:
        register = MON.register_callback
        register(TOOL_ID, EVENTS.PY_START, self._on_start)
        register(TOOL_ID, EVENTS.PY_RESUME, self._on_resume)
        register(TOOL_ID, EVENTS.PY_THROW, self._on_throw)
        register(TOOL_ID, EVENTS.LINE, self._on_line)
        register(TOOL_ID, EVENTS.JUMP, self._on_jump)
        register(TOOL_ID, EVENTS.PY_RETURN, self._on_return)
        register(TOOL_ID, EVENTS.PY_YIELD, self._on_yield)
        register(TOOL_ID, EVENTS.RAISE, self._on_raise)
        register(TOOL_ID, EVENTS.EXCEPTION_HANDLED, self._on_handled)
        register(TOOL_ID, EVENTS.PY_UNWIND, self._on_unwind)
        register(TOOL_ID, EVENTS.STOP_ITERATION, self._on_stop_iteration)

    def _uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        try:
            MON.set_events(TOOL_ID, 0)
            for entry in self._codes.values():
                if entry[1] is not None:
                    MON.set_local_events(TOOL_ID, entry[0], 0)
            for event in (
                EVENTS.PY_START,
                EVENTS.PY_RESUME,
                EVENTS.PY_THROW,
                EVENTS.LINE,
                EVENTS.JUMP,
                EVENTS.PY_RETURN,
                EVENTS.PY_YIELD,
                EVENTS.RAISE,
                EVENTS.EXCEPTION_HANDLED,
                EVENTS.PY_UNWIND,
                EVENTS.STOP_ITERATION,
            ):
                MON.register_callback(TOOL_ID, event, None)
            MON.free_tool_id(TOOL_ID)
        except Exception:
            pass
        for name, tee, stream in self._tees:
            if getattr(sys, name) is tee:
                setattr(sys, name, stream)
        self._tees.clear()
        drop_filter(self._fork_filter)
        self._fork_filter = None
        real_exit = getattr(self, "_real_exit", None)
        if real_exit is not None and os._exit is not real_exit:
            os._exit = real_exit

    def stop(self) -> None:
        """Stop recording and finish the file (idempotent)."""
        with self._lock:
            self._owner = _thread.get_ident()
            self._active = False
            self._flusher_stop = True
            self._uninstall()
            self._release_values()
            writer = self._writer
            if writer is None or writer.closed:
                return
            try:
                if self._steps:
                    self._flush_locked()
            except Exception as exc:  # pragma: no cover - defensive
                self.error = self.error or f"flush failed: {exc!r}"
            self.objects.release()
            if self.exit_status.get("kind") == "running":
                self.exit_status = {"kind": "stopped"}
            footer = {
                "steps": self._count,
                "line_steps": self._line_steps_written,
                "end_time": time.time(),
                "duration": time.time() - self.start_time,
                "exit": self.exit_status,
                "max_steps_reached": self.max_steps_reached,
                "error": self.error,
                "outputs": self._outputs,  # written after the last chunk's steps
            }
            try:
                writer.close(footer)
            except OSError as exc:  # the disk is full, the file size limit was hit...
                writer.abandon()
                self.error = self.error or f"writing the trace failed: {exc}"
                # After everything the program printed; one sentence, never a traceback.
                print(
                    f"retrograde: the trace {self.path} could not be finished ({exc.strerror or exc}); "
                    "it reads up to its last complete chunk.",
                    file=sys.__stderr__,
                )
            finally:
                self._owner = None

    def _release_values(self) -> None:
        """Recording stopped: drop the references kept only to speed up the next steps."""

    def _fail(self, exc: BaseException) -> None:
        """An internal error: stop recording (the program runs on) and say why in the footer."""
        self.error = f"recorder error: {type(exc).__name__}: {exc}"
        self._active = False
        try:
            MON.set_events(TOOL_ID, 0)
        except Exception:
            pass

    # -- code objects ----------------------------------------------------------------------------------
    def _decide(self, code: types.CodeType) -> tuple[Any, ...]:
        plan: CodePlan | None = None
        if self.filter(code.co_filename):
            code_id = self._next_code
            self._next_code += 1
            plan = analyse(code, code_id)
            file_id = self._file_id(code.co_filename)
            self._pending_codes.append((code_id, file_id, code.co_qualname, code.co_firstlineno))
            MON.set_local_events(TOOL_ID, code, LOCAL_EVENTS)
        entry = (code, plan)
        self._codes[id(code)] = entry  # the code object is kept alive, so its id stays unique
        return entry

    def _file_id(self, filename: str) -> int:
        file_id = self._files.get(filename)
        if file_id is None:
            file_id = len(self._files)
            self._files[filename] = file_id
            source: str | None
            try:
                with open(filename, encoding="utf-8", errors="replace") as handle:
                    source = handle.read()
            except OSError:
                lines = linecache.getlines(filename)
                source = "".join(lines) if lines else None
            self._pending_files.append((file_id, os.path.abspath(filename), source))
        return file_id

    def _adopt_current_stack(self, frame: Any) -> None:
        """record() used as a context manager: the caller's frames already run; take them as live."""
        chain = []
        while frame is not None:
            chain.append(frame)
            frame = frame.f_back
        with self._lock:
            ts = self._thread(_thread.get_ident())
            for fr in reversed(chain):
                entry = self._codes.get(id(fr.f_code)) or self._decide(fr.f_code)
                if entry[1] is None:
                    continue
                rec = self._new_record(ts, fr.f_code, entry[1], fr)
                rec.last_line = fr.f_lineno or 0
                self._full_check(rec)
            # The adopted frames were live before the first step: they belong to the first keyframe.
            self._steps.clear_frames()
            self._keyframe = self._snapshot_keyframe()

    # -- per-thread state ------------------------------------------------------------------------------
    def _thread(self, tid: int) -> ThreadState:
        ts = self._threads.get(tid)
        if ts is None:
            ts = self._thread_type(self._thread_numbers, threading._active.get(tid))  # type: ignore[attr-defined]
            self._thread_numbers += 1
            self._threads[tid] = ts
        return ts

    def _thread_entering(self, tid: int) -> ThreadState:
        """The state of the thread a frame starts or resumes on (new if the OS reused a dead thread's id)."""
        ts = self._thread(tid)
        if not ts.stack and threading._active.get(tid) is not ts.owner:  # type: ignore[attr-defined]
            del self._threads[tid]
            ts = self._thread(tid)
        return ts

    def _new_record(self, ts: ThreadState, code: types.CodeType, plan: CodePlan, frame: Any) -> FrameRecord:
        stack = ts.stack
        parent = stack[-1].fid if stack else -1
        rec = self._record_type(self._next_fid, code, plan, frame, parent, ts.number, len(stack))
        self._next_fid += 1
        stack.append(rec)
        self._steps.add_frame(rec.fid, plan.code_id, parent, ts.number, rec.depth)
        return rec

    def _top(self, ts: ThreadState, code: types.CodeType, frame_getter: int = 2) -> FrameRecord | None:
        """The record of the frame that raised the event; resynchronises the stack if it drifted."""
        stack = ts.stack
        if stack:
            rec = stack[-1]
            if rec.code is code:
                return rec
        frame = sys._getframe(frame_getter)
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].frame is frame:
                del stack[i + 1 :]
                return stack[i]
        entry = self._codes.get(id(code))
        if entry is None or entry[1] is None:
            return None
        rec = self._new_record(ts, code, entry[1], frame)
        self._full_check(rec)
        return rec

    # -- state checks ----------------------------------------------------------------------------------
    def _set(self, rec: FrameRecord, name: str, obj: object, changes: list[Any] | None) -> list[Any] | None:
        objs = rec.objs
        assert objs is not None
        enc = self.encode(obj)
        objs[name] = obj
        if is_immutable(obj):
            rec.mutables.discard(name)
            rec.heads.pop(name, None)
        else:
            rec.mutables.add(name)
            self._remember_head(rec, name, enc, obj)
        if not same_encoding(rec.texts.get(name, _MISSING), enc):
            rec.texts[name] = enc
            if changes is None:
                changes = [name, enc]
            else:
                changes.append(name)
                changes.append(enc)
        return changes

    def _full_check(self, rec: FrameRecord) -> list[Any] | None:
        self.objects.settled.clear()  # this path does not tell what ran before it (tracer/objects.py)
        frame = rec.frame
        if frame is None:
            return None
        if rec.objs is None:
            rec.objs = {}
        objs = rec.objs
        mutables = rec.mutables
        texts = rec.texts
        changes: list[Any] | None = None
        seen = 0
        module = rec.plan.is_module
        f_locals = frame.f_locals if module else frame_locals(frame)
        if module:
            rec.in_comprehension = f_locals is not frame.f_globals
        for name, obj in list(f_locals.items()):
            if module and (
                (name.startswith("__") and name.endswith("__")) or type(obj) is types.ModuleType
            ):
                continue
            seen += 1
            old = objs.get(name, _MISSING)
            if old is obj:
                if name in mutables:
                    enc = self._recheck(rec, name, obj)
                    if enc is not None:
                        if changes is None:
                            changes = [name, enc]
                        else:
                            changes += (name, enc)
                continue
            changes = self._set(rec, name, obj, changes)
        if seen != len(objs):
            present = f_locals
            for name in [n for n in objs if n not in present]:
                del objs[name]
                texts.pop(name, None)
                mutables.discard(name)
                rec.heads.pop(name, None)
                if changes is None:
                    changes = [name, None]
                else:
                    changes += (name, None)
        return changes

    def _check(self, rec: FrameRecord) -> list[Any] | None:
        """Changes in rec's frame since its last step: targeted when only its own line ran, else full."""
        self.objects.settled.clear()  # this path does not tell what its line changed (tracer/objects.py)
        if rec.last_pos != self._count - 1 or rec.objs is None:
            return self._full_check(rec)
        plan = rec.plan
        if plan.is_module and rec.frame is not None:
            # Inside an inlined comprehension at module level, f_locals is not the globals dict but the
            # comprehension's own variables (what settrace and pdb see); switching in or out of that view
            # changes every name.
            in_comprehension = rec.frame.f_locals is not rec.frame.f_globals
            if in_comprehension or rec.in_comprehension:
                rec.in_comprehension = in_comprehension
                return self._full_check(rec)
        line_plan = plan.lines.get(rec.last_line)
        if line_plan is None:
            line_plan = plan.default
            if line_plan.full:
                return self._full_check(rec)
        names = line_plan.stores
        mutate = line_plan.may_mutate
        guarded = False
        if not names and not (mutate and rec.mutables):
            return None
        frame = rec.frame
        if frame is None:
            return None
        module = plan.is_module
        f_locals = frame.f_locals if module else frame_locals(frame)
        objs = rec.objs
        changes: list[Any] | None = None
        if mutate and rec.mutables and line_plan.guards is not None:
            # Before the stores below replace the values from before the line. Only when the guards show
            # that the line changed nothing are the mutables left alone here (the compiled recorder also
            # narrows them to the names that can show what it changed).
            touched = touched_objects(line_plan.guards, f_locals, objs, frame.f_globals, frame.f_builtins)
            mutate = touched is None or bool(touched)
            guarded = touched is not None
        for name in names:
            obj = f_locals.get(name, _MISSING)
            if obj is _MISSING:
                if name in objs:
                    del objs[name]
                    rec.texts.pop(name, None)
                    rec.mutables.discard(name)
                    rec.heads.pop(name, None)
                    if changes is None:
                        changes = [name, None]
                    else:
                        changes += (name, None)
                continue
            if objs.get(name, _MISSING) is obj:
                continue
            t = type(obj)
            if module and ((name.startswith("__") and name.endswith("__")) or t is types.ModuleType):
                continue
            if t is int or t is bool or t is float or (t is str and len(obj) <= 64):
                # Fast path for the commonest rebinding: a short scalar (no mutables, no heads to track).
                enc: Any = native(obj, self.encoder.limit)
                if enc is None:
                    if t is int and obj.bit_length() > 64:
                        # A long int: str() may refuse it (sys.set_int_max_str_digits); the encoder copes.
                        changes = self._set(rec, name, obj, changes)
                        continue
                    enc = repr(obj)
                    if (t is float and enc in _NON_LITERAL_FLOATS) or len(enc) > self.encoder.limit:
                        changes = self._set(rec, name, obj, changes)
                        continue
                objs[name] = obj
                if name in rec.mutables:
                    rec.mutables.discard(name)
                    rec.heads.pop(name, None)
                if not same_encoding(rec.texts.get(name), enc):
                    rec.texts[name] = enc
                    if changes is None:
                        changes = [name, enc]
                    else:
                        changes += (name, enc)
                continue
            changes = self._set(rec, name, obj, changes)
        if mutate and rec.mutables:
            recheck = self._recheck
            self._guarded = guarded
            self._touched = tuple(touched) if guarded and touched is not None else None
            try:
                for name in rec.mutables:
                    enc = recheck(rec, name, objs[name])
                    if enc is not None:
                        if changes is None:
                            changes = [name, enc]
                        else:
                            changes += (name, enc)
            finally:
                self._guarded = False
                self._touched = None
        return changes

    def _recheck(self, rec: FrameRecord, name: str, obj: object) -> Any:
        """The new encoding of a mutable value if its text changed, else None."""
        head = rec.heads.get(name)
        # (only an identity head can say so here: a fingerprint is the compiled core's, a tracked object's
        # head leaves it to the tracker)
        if head is not None and head[1] >= -1 and self.encoder.head_unchanged(obj, head):
            return None
        if self._guarded and self._touched is not None and self.objects.untouched(obj, self._touched):
            return None
        if self._guarded and self._planned_change(rec, name, obj):
            # (a fingerprint taken before would now be stale)
            rec.heads[name] = TRACKED_FLAT_HEAD if self.objects.flat(obj) else TRACKED_HEAD
            return None
        self.objects.touched = self._touched if self._guarded else None
        try:
            enc = self.encode(obj)
        finally:
            self.objects.touched = None
            self.objects.in_step = None
        self._remember_head(rec, name, enc, obj)
        if not same_encoding(rec.texts[name], enc):
            rec.texts[name] = enc
            return enc
        return None

    def _remember_head(self, rec: FrameRecord, name: str, enc: Any, obj: object) -> None:
        """After encoding name's mutable value obj as enc: the head that shows its text unchanged next time
        (the encoder's), or TRACKED_HEAD for a value the object tracker records (no fingerprint: the tracker
        alone says what changed; TRACKED_FLAT_HEAD when it holds nothing that changes in place), or none."""
        head = self.encoder.last_head
        if head is not None:
            rec.heads[name] = head
        elif object_id(enc) is not None:
            rec.heads[name] = TRACKED_FLAT_HEAD if self.objects.flat(obj) else TRACKED_HEAD
        else:
            rec.heads.pop(name, None)

    def _planned_change(self, rec: FrameRecord, name: str, obj: Any) -> bool:
        """Only the line's own instructions ran, all of known effect (the guards held): when the bytecode
        plan says they only appended to this list, stored items at indices or a slice that locals hold,
        or acted at one end of a list or deque, the object tracker records just that. True when it did
        and the text is still the one recorded; False when the value must be encoded again."""
        t = type(obj)
        if t is not list and t is not collections.deque:
            return False
        line_plan = rec.plan.lines.get(rec.last_line)
        if line_plan is None:
            return False
        objects = self.objects
        op = line_plan.end_ops.get(name)
        if op is not None and (t is collections.deque or op != "append"):
            done = objects.end_op(obj, op)
        elif t is not list:
            return False
        elif name in line_plan.appends and objects.grow(obj):
            return True
        elif (keys := line_plan.item_stores.get(name)) is not None and rec.objs is not None:
            done = objects.store_items(obj, [rec.objs.get(k) for k in keys])
        elif (bounds := line_plan.slice_stores.get(name)) is not None and rec.objs is not None:
            done = objects.store_slice(obj, rec.objs.get(bounds[0]), rec.objs.get(bounds[1]))
        else:
            return False
        if done is None:  # recorded, but its text shows a changed item: only the text again
            objects.show(obj, None)
        return bool(done)

    # -- emitting --------------------------------------------------------------------------------------
    def _emit(self, event: int, rec: FrameRecord, line: int, changes: list[Any] | None, value: Any) -> None:
        self._steps.add(event, rec.fid, line, changes, value, rec.plan.code_id, rec.depth)
        count = self._count
        rec.last_pos = count
        rec.last_line = line
        self._count = count + 1
        if count + 1 >= self._next_check:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Every 1024 steps (and at chunk size and --max-steps): flush if due, stop at the step limit. (A
        program that makes no steps for a while is flushed by the flusher thread.)"""
        if len(self._steps) >= self.chunk_steps or time.monotonic() - self._last_flush >= self.flush_interval:
            self._flush_locked()
        self._next_check = self._count + min(1024, self.chunk_steps - len(self._steps))
        if self.max_steps is not None:
            self._next_check = min(self._next_check, self.max_steps)
        if self.max_steps is not None and self._count >= self.max_steps:
            self.max_steps_reached = True
            self._active = False
            MON.set_events(TOOL_ID, 0)
            for entry in self._codes.values():
                if entry[1] is not None:
                    MON.set_local_events(TOOL_ID, entry[0], 0)

    def note_output(self, stream: int, text: str) -> None:
        if not self._active or not text or self._owner == _thread.get_ident():
            return
        if type(text) is not str:
            return
        with self._lock:
            self._outputs.append([self._count, stream, text])

    def _snapshot_keyframe(self) -> dict[int, list[Any]]:
        frames: dict[int, list[Any]] = {}
        live = [rec for ts in self._threads.values() for rec in ts.stack]
        live.extend(self._suspended.values())
        for rec in live:
            frames[rec.fid] = [
                rec.plan.code_id,
                rec.parent,
                rec.thread,
                rec.depth,
                rec.last_line,
                dict(rec.texts),
                rec.last_pos,
            ]
        return frames

    def _flush_locked(self) -> None:
        writer = self._writer
        if writer is None or writer.closed:
            return
        for file_id, path, source in self._pending_files:
            writer.add_file(file_id, path, source)
        self._pending_files.clear()
        for code_id, file_id, qualname, firstline in self._pending_codes:
            writer.add_code(code_id, file_id, qualname, firstline)
        self._pending_codes.clear()
        steps = self._steps
        self._last_flush = time.monotonic()
        if not steps:
            return  # outputs wait for the next chunk (or go in the footer at the end)
        self._steps = self._new_steps()
        objects = self.objects.take_chunk(self._count, self._chunk_start)
        if objects is not None:
            objects[0] = self._object_bases
            self._object_bases = self.objects.bases()
        chunk = ChunkData(
            start=self._chunk_start,
            keyframe=self._keyframe,
            events=bytes(steps.events),
            fids=[],
            lines=[],
            changes=[],
            values=[],
            frames={},
            outputs=self._outputs,
            moves=self._moves,
            deltas=steps.deltas,
            packed_columns=steps.pack_columns(),  # the columns go to the file packed, never as objects
            objects=objects,
        )
        summary = summarize_chunk(chunk, steps.pairs(), steps.names, (steps.min_depth, steps.max_depth))
        self._line_steps_written += summary.line_steps
        writer.add_chunk(chunk, summary)
        self._chunk_start = self._count
        self._moves = []
        self._outputs = []
        self._keyframe = self._snapshot_keyframe()

    # -- callbacks -------------------------------------------------------------------------------------
    def _on_start(self, code: types.CodeType, offset: int) -> Any:
        entry = self._codes.get(id(code))
        if entry is None:
            writer = self._writer
            if writer is not None and writer.worker_ident == _thread.get_ident():
                # The trace writer's thread runs only library code and must never wait for our lock (the
                # thread holding it may be waiting for the writer): decide without the lock. Untraced code
                # is one dict store, atomic under the GIL.
                if self.filter(code.co_filename):
                    return None
                self._codes[id(code)] = (code, None)
                return DISABLE
            if self._owner == _thread.get_ident():
                # First call of a function from inside our own callback (we hold the lock): decide now, so
                # the recorder's own helpers get DISABLE once instead of costing a callback every call.
                try:
                    entry = self._decide(code)
                except Exception:
                    return DISABLE
                return DISABLE if entry[1] is None else None
            with self._lock:
                self._owner = _thread.get_ident()
                try:
                    entry = self._codes.get(id(code)) or self._decide(code)
                except Exception as exc:
                    self._fail(exc)
                    return DISABLE
                finally:
                    self._owner = None
        plan = entry[1]
        if plan is None:
            return DISABLE
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return None
        frame = sys._getframe(1)
        with self._lock:
            self._owner = tid
            try:
                if self._active:
                    ts = self._thread_entering(tid)
                    rec = self._new_record(ts, code, plan, frame)
                    ts.jump_rec = None
                    self._emit(EV_CALL, rec, frame.f_lineno, self._full_check(rec), None)
            except Exception as exc:
                self._fail(exc)
            finally:
                self._owner = None
        return None

    def _resume_common(self, code: types.CodeType, event: int) -> None:
        entry = self._codes.get(id(code))
        if entry is None or entry[1] is None:
            return
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return
        frame = sys._getframe(2)
        with self._lock:
            self._owner = tid
            try:
                if self._active:
                    ts = self._thread_entering(tid)
                    rec = self._suspended.pop(id(frame), None)
                    if rec is None or rec.code is not code:
                        rec = self._new_record(ts, code, entry[1], frame)
                    else:
                        rec.frame = frame
                        parent = ts.stack[-1].fid if ts.stack else -1
                        depth = len(ts.stack)
                        if parent != rec.parent or depth != rec.depth or ts.number != rec.thread:
                            # Resumed from elsewhere: from this step on the frame has a new caller.
                            rec.parent, rec.depth, rec.thread = parent, depth, ts.number
                            self._moves.append(
                                [len(self._steps), rec.fid, parent, ts.number, depth]
                            )
                        ts.stack.append(rec)
                    ts.jump_rec = None
                    self._emit(event, rec, frame.f_lineno, self._full_check(rec), None)
            except Exception as exc:
                self._fail(exc)
            finally:
                self._owner = None

    def _on_resume(self, code: types.CodeType, offset: int) -> Any:
        self._resume_common(code, EV_RESUME)

    def _on_throw(self, code: types.CodeType, offset: int, exc: BaseException) -> Any:
        self._resume_common(code, EV_RESUME)

    def _on_line(self, code: types.CodeType, line: int) -> Any:
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return None
        ts = self._threads.get(tid)
        if ts is not None:
            jumped = ts.jump_rec
            if jumped is not None and ts.jump_line == line and jumped.code is code:
                # The backward jump just reported this line (LINE fires again for the loop header).
                # Only this thread touches its ThreadState, so no lock is needed to look.
                ts.jump_rec = None
                if jumped.last_pos == self._count - 1:
                    return None
        with self._lock:
            self._owner = tid
            try:
                ts = self._threads.get(tid)
                if ts is None:
                    ts = self._thread(tid)
                stack = ts.stack
                rec = stack[-1] if stack else None
                if rec is None or rec.code is not code:
                    rec = self._top(ts, code)
                if rec is not None:
                    if ts.jump_rec is not None:
                        same = ts.jump_rec is rec and ts.jump_line == line
                        ts.jump_rec = None
                        if same and rec.last_pos == self._count - 1:
                            return None  # the backward jump already reported this line
                    changes = self._check(rec)
                    # _emit, inlined: this is the hottest path of the recorder.
                    self._steps.add(EV_LINE, rec.fid, line, changes, None, rec.plan.code_id, rec.depth)
                    count = self._count
                    rec.last_pos = count
                    rec.last_line = line
                    self._count = count + 1
                    if count + 1 >= self._next_check:
                        self._checkpoint()
            except Exception as exc:
                self._fail(exc)
            finally:
                self._owner = None
        return None

    def _on_jump(self, code: types.CodeType, source: int, destination: int) -> Any:
        if destination > source:
            return DISABLE
        # A backward jump to another line is followed by a LINE event for that line (CPython fires LINE
        # whenever the line changes): only jumps within one line (one-line loops) are reported here.
        entry = self._codes.get(id(code))
        if entry is not None and entry[1] is not None:
            plan = entry[1]
            to = plan.line_of_offset(code, destination)
            if to is not None and plan.line_of_offset(code, source) not in (None, to):
                return DISABLE
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return None
        with self._lock:
            self._owner = tid
            try:
                ts = self._thread(tid)
                rec = self._top(ts, code)
                if rec is not None:
                    line = rec.plan.line_of_offset(code, destination)
                    if line is not None:
                        self._emit(EV_LINE, rec, line, self._check(rec), None)
                        ts.jump_rec = rec
                        ts.jump_line = line
            except Exception as exc:
                self._fail(exc)
            finally:
                self._owner = None
        return None

    def _leave(self, code: types.CodeType, event: int, value: object, suspend: bool) -> None:
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return
        with self._lock:
            self._owner = tid
            try:
                ts = self._thread(tid)
                rec = self._top(ts, code, 3)
                if rec is not None:
                    frame = rec.frame
                    line = frame.f_lineno if frame is not None else rec.last_line
                    changes = self._check(rec)
                    encoded = self.encode(value) if event != EV_UNWIND else None
                    ts.jump_rec = None
                    self._emit(event, rec, line if line is not None else rec.last_line, changes, encoded)
                    if ts.stack and ts.stack[-1] is rec:
                        ts.stack.pop()
                    if suspend and frame is not None:
                        rec.frame = None
                        rec.objs = None  # keep texts only: a suspended generator's values stay unowned
                        rec.mutables = set()
                        rec.heads = {}
                        self._suspended[id(frame)] = rec
                    else:
                        self._suspended.pop(id(frame), None)
                        rec.frame = None
            except Exception as exc:
                self._fail(exc)
            finally:
                self._owner = None

    def _on_return(self, code: types.CodeType, offset: int, value: object) -> Any:
        self._leave(code, EV_RETURN, value, False)

    def _on_yield(self, code: types.CodeType, offset: int, value: object) -> Any:
        self._leave(code, EV_YIELD, value, True)

    def _on_unwind(self, code: types.CodeType, offset: int, exc: BaseException) -> Any:
        entry = self._codes.get(id(code))
        if entry is None or entry[1] is None:
            return None
        self._leave(code, EV_UNWIND, exc, False)
        return None

    def _exception_step(self, code: types.CodeType, event: int, exc: BaseException) -> None:
        entry = self._codes.get(id(code))
        if entry is None or entry[1] is None:
            return
        tid = _thread.get_ident()
        if self._owner == tid or not self._active:
            return
        with self._lock:
            self._owner = tid
            try:
                ts = self._thread(tid)
                rec = self._top(ts, code, 3)
                if rec is not None and rec.frame is not None:
                    ts.jump_rec = None
                    line = rec.frame.f_lineno
                    self._emit(
                        event, rec, line if line is not None else rec.last_line, self._check(rec),
                        self.encode(exc),
                    )
            except Exception as err:
                self._fail(err)
            finally:
                self._owner = None

    def _on_raise(self, code: types.CodeType, offset: int, exc: BaseException) -> Any:
        self._exception_step(code, EV_EXCEPTION, exc)

    def _on_stop_iteration(self, code: types.CodeType, offset: int, value: object) -> Any:
        # A StopIteration the interpreter raises implicitly (a generator's return seen by `yield from` /
        # await): settrace reports it as an 'exception' event, so we do too.
        args = () if value is None else (value,)
        exc = value if isinstance(value, BaseException) else StopIteration(*args)
        self._exception_step(code, EV_EXCEPTION, exc)

    def _on_handled(self, code: types.CodeType, offset: int, exc: BaseException) -> Any:
        self._exception_step(code, EV_HANDLED, exc)


# -- the compiled hot path -------------------------------------------------------------------------------
# tracer/_core/ runs LINE, JUMP, PY_START and PY_RETURN in C for plain function frames and calls the
# methods above for everything else. RETROGRADE_RECORDER=python selects the pure Python recorder.
FAST_INFO_SIZE = 7  # items of fast_info's tuple (INFO_SIZE in tracer/_core/core.h)
_core: Any = _built_core
# tracer/native.py checked the constants of plan.py and values.py; these are format.py's and this module's.
if _core is not None and native_module.mismatches(
    _core, {"EV_CALL": EV_CALL, "EV_LINE": EV_LINE, "EV_RETURN": EV_RETURN, "INFO_SIZE": FAST_INFO_SIZE}
):
    _core = None  # a build of another version: the Python recorder is always right


def planned_lists(lp: LinePlan) -> dict[str, tuple[Any, ...]] | None:
    """{name: (kind, ...)}: what the line's plan says it did to a list under that name, in the order
    PythonRecorder._planned_change tries them, for the compiled core's tracker (tracer/_core/tracker.c),
    which records these changes itself and hands anything else to _planned_change; None when nothing."""
    out: dict[str, tuple[Any, ...]] = {}
    for name in {*lp.appends, *lp.item_stores, *lp.end_ops}:
        op = lp.end_ops.get(name)
        if op is not None and op != "append":  # _planned_change: end_op, and nothing else for a list
            if op == "pop":
                out[name] = (PLAN_POP,)
        elif name in lp.appends:
            out[name] = (PLAN_GROW,)
        elif name in lp.item_stores:
            out[name] = (PLAN_ITEMS, lp.item_stores[name])
    return out or None


def fast_info(code: types.CodeType, plan: CodePlan) -> tuple[Any, ...]:
    """The plan as tuples the C callbacks index directly (layout: INFO_* in tracer/_core/core.h)."""
    assert _core is not None
    simple = bool(_core.simple_locals(code)) and not plan.is_module
    varnames = code.co_varnames

    def call_kinds(attr_kinds: tuple[str | None, str | None]) -> tuple[str | None, int]:
        attr, first = attr_kinds  # the first argument's local by its slot (-1: none)
        return attr, varnames.index(first) if first is not None and first in varnames else -1

    def line_tuple(lp: Any) -> tuple[Any, ...]:
        slots = tuple(varnames.index(n) if n in varnames else -1 for n in lp.stores)
        guards = lp.guards
        if guards is not None:
            calls = (G_CALL, G_LIBCALL)
            guards = tuple(
                (kind, varnames.index(name) if kind not in (G_GLOBAL, *calls) and name in varnames else -1,
                 stored, name, call_kinds(attr_kinds) if kind in calls else attr_kinds, expected)
                for kind, name, stored, attr_kinds, expected in guards
            )
        return (lp.stores, slots, lp.may_mutate, lp.full, guards, planned_lists(lp))

    base = min(plan.lines) if plan.lines else 0
    size = max(plan.lines) - base + 1 if plan.lines else 0
    lines: list[Any] = [None] * size
    for line, lp in plan.lines.items():
        lines[line - base] = line_tuple(lp)
    offsets: list[int | None] = [None] * (len(code.co_code) // 2)
    for start, end, number in code.co_lines():
        if number is not None:
            for off in range(start, min(end, 2 * len(offsets)), 2):
                offsets[off // 2] = number
    default = line_tuple(plan.default)
    return (plan.code_id, plan.is_module, simple, base, tuple(lines), default, tuple(offsets))


if _core is not None:

    class CompiledRecorder(_core.Core, PythonRecorder):
        """PythonRecorder with its commonest callbacks in C (tracer/_core/): the same trace, faster."""

        _record_type = _core.FrameRecord
        _thread_type = _core.ThreadState
        _new_lock = staticmethod(_core.Lock)
        _new_steps = _core.StepBuffer

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._settled = self.objects.settled  # kept true by the C settle() (tracer/_core/guards.c)
            # The object tracker's commonest looks and ops in C (tracker.c); RETROGRADE_C_TRACKER=0: Python.
            if os.environ.get("RETROGRADE_C_TRACKER", "1") != "0":
                self._bind_tracker(self.objects.entries, self.objects.ops)

        def _register_callbacks(self) -> None:
            super()._register_callbacks()
            register = MON.register_callback
            register(TOOL_ID, EVENTS.PY_START, self._c_on_start)
            register(TOOL_ID, EVENTS.LINE, self._c_on_line)
            register(TOOL_ID, EVENTS.JUMP, self._c_on_jump)
            register(TOOL_ID, EVENTS.PY_RETURN, self._c_on_return)

        def _release_values(self) -> None:
            self._forget_renders()

        def _decide(self, code: types.CodeType) -> tuple[Any, ...]:
            entry = super()._decide(code)
            plan = entry[1]
            if plan is None:
                return entry
            plan.fast = fast_info(code, plan)
            full = (code, plan, plan.fast)  # the C PY_START callback reads the third item
            self._codes[id(code)] = full
            return full


def compiled_available() -> bool:
    """True when the C hot path is built and importable."""
    return _core is not None


if TYPE_CHECKING:
    Recorder = PythonRecorder
elif _core is not None and os.environ.get("RETROGRADE_RECORDER", "").lower() != "python":
    Recorder = CompiledRecorder
else:
    Recorder = PythonRecorder
