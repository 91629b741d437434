"""Run one program in its own sandboxed subprocess under the recorder, and say how it ended."""

from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO, Any

from tracer.corpus.program import DRIVER_NAME, Program

# Every status a run can end with. "internal" means the sandbox itself failed: a re-run retries it.
STATUSES = (
    "ok", "error", "exit", "timeout", "memory", "crash", "syntax", "step_cap", "fork", "network", "internal"
)
FINAL_STATUSES = frozenset(STATUSES) - {"internal"}
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_JOB_PREFIX = "retrograde-sandbox-"
_PRELUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prelude.py")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one sandboxed run may use."""

    timeout: float = 10.0  # wall clock, seconds
    cpu: int = 10  # CPU seconds
    memory_mb: int = 1024  # address space
    max_steps: int = 100_000  # trace steps; past this the trace is cut
    keep_over_cap: bool = True  # keep a cut trace (status step_cap) or drop it
    output_bytes: int = 64 * 1024  # stdout / stderr kept per stream
    file_bytes: int = 256 * 1024 * 1024  # largest file the program (or its trace) may write


@dataclass(frozen=True, slots=True)
class Result:
    """How one program's run ended: one manifest entry."""

    id: str
    source: str
    split: str
    status: str
    error: str
    exit_code: int | None
    steps: int
    line_steps: int
    duration: float
    trace: str  # path relative to the corpus directory; "" when no trace was kept
    trace_bytes: int
    stdout_bytes: int  # everything the program wrote; only the first Limits.output_bytes are kept
    stderr_bytes: int
    stdout: str  # the kept part of stdout
    stderr_tail: str
    network: str  # how the network was shut off: "netns+seccomp", "seccomp", "blocked-in-process"
    fork: str  # how forks were refused: "seccomp" or "blocked-in-process"
    filesystem: str  # "readonly" (only the sandbox directory is writable) or "shared"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def netns_mode() -> str:
    """How this process can give a child its own, empty network namespace: 'root', 'user' or ''."""
    for mode in ("root", "user"):
        try:
            subprocess.run(
                [sys.executable, "-S", "-c", ""],
                preexec_fn=functools.partial(_unshare_net, mode),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
                timeout=30,
            )
            return mode
        except (OSError, subprocess.SubprocessError):
            continue
    return ""


def _unshare_net(mode: str) -> None:
    if mode == "root":
        os.unshare(os.CLONE_NEWNET)
    else:
        os.unshare(os.CLONE_NEWUSER | os.CLONE_NEWNET)


# mount(2) flags, and the per-mount options that a read-only remount must keep.
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_MOUNT_OPTIONS = {
    "nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21
}


@functools.cache
def _mount_points() -> tuple[tuple[bytes, int], ...]:
    """Every mount but /dev and /proc (device writes and /proc/self must keep working), with its flags."""
    found: dict[bytes, int] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                if point in ("/dev", "/proc") or point.startswith(("/dev/", "/proc/")):
                    continue
                flags = 0
                for option in fields[5].split(","):
                    flags |= _MOUNT_OPTIONS.get(option, 0)
                found[os.fsencode(point)] = flags  # the last (topmost) mount on a point wins
    except (OSError, IndexError):
        return ()
    return tuple(found.items())


def _readonly_root(job: str, libc: Any, points: tuple[tuple[bytes, int], ...]) -> None:
    """In a new mount namespace: everything read-only except the job directory (runs in preexec)."""
    import ctypes

    def mount(source: bytes | None, target: bytes, flags: int) -> None:
        if libc.mount(source, target, None, flags, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target!r}: {os.strerror(err)}")

    os.unshare(os.CLONE_NEWNS)
    mount(b"none", b"/", _MS_REC | _MS_PRIVATE)  # nothing we do here leaks back to the host
    target = os.fsencode(job)
    mount(target, target, _MS_BIND | _MS_REC)  # the job directory becomes its own, writable mount
    for point, flags in points:
        mount(None, point, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)
    os.chdir(os.getcwd())  # the working directory was entered before the bind mount: enter it anew


@functools.cache
def readonly_fs() -> bool:
    """Whether this process can give a child a read-only view of the file system (root, Linux)."""
    libc = _libc()
    points = _mount_points()
    if libc is None or not points or os.geteuid() != 0:
        return False
    job = tempfile.mkdtemp(prefix="retrograde-probe-")
    try:
        probe = "import os, sys\nsys.exit(1 if os.access('/', os.W_OK) else 0)\n"  # access() reports EROFS
        subprocess.run(
            [sys.executable, "-S", "-c", probe],
            preexec_fn=functools.partial(_readonly_root, job, libc, points),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        shutil.rmtree(job, ignore_errors=True)


@functools.cache
def _libc() -> Any:
    import ctypes

    if not sys.platform.startswith("linux"):
        return None  # prctl is Linux's
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _child_setup(limits: Limits, netns: str, readonly_job: str) -> Callable[[], None]:
    """The preexec function: runs in the child between fork and exec (only system calls, no imports)."""
    cpu = max(1, int(limits.cpu))
    memory = limits.memory_mb * 1024 * 1024
    fsize = limits.file_bytes
    libc = _libc()
    points = _mount_points()

    def setup() -> None:
        if libc is not None:
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the runner, never orphaned
        if netns:
            _unshare_net(netns)
        if readonly_job:
            _readonly_root(readonly_job, libc, points)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return setup


@functools.cache
def _prelude_source() -> str:
    with open(_PRELUDE, encoding="utf-8") as handle:
        return handle.read()


class _Capped:
    """Drains a pipe on a thread, keeping the first `cap` bytes and counting the rest."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        self.data = bytearray()
        self.total = 0
        self.tail = b""
        self._stream = stream
        self._cap = cap
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        read = self._stream.read1 if hasattr(self._stream, "read1") else self._stream.read
        while True:
            try:
                block = read(65536)
            except (OSError, ValueError):
                break
            if not block:
                break
            self.total += len(block)
            room = self._cap - len(self.data)
            if room > 0:
                self.data += block[:room]
            self.tail = (self.tail + block)[-2048:]

    def join(self) -> None:
        self._thread.join(timeout=5)


def run_program(program: Program, limits: Limits, trace_path: str, trace_name: str = "") -> Result:
    """Record `program` into trace_path in a sandbox; never raises for anything the program does."""
    start = time.monotonic()
    base: dict[str, Any] = {"id": program.id, "source": program.source, "split": program.split}
    source = program.driver()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the child shows the program's own warnings, not the runner
            compile(source, DRIVER_NAME, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return _result(base, "syntax", _syntax_message(exc), start)
    job = tempfile.mkdtemp(prefix=f"{_JOB_PREFIX}{os.getpid()}-")
    try:
        return _run_in(job, program, source, limits, trace_path, trace_name or trace_path, base, start)
    except Exception as exc:  # the sandbox failed, not the program: retried on a re-run
        return _result(base, "internal", f"{type(exc).__name__}: {exc}", start)
    finally:
        shutil.rmtree(job, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not: a container's first process may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_stale() -> int:
    """Remove sandbox directories left by runners that were killed (their pid is gone); returns how many."""
    removed = 0
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(_JOB_PREFIX):
            continue
        pid_text = name[len(_JOB_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        if pid_alive(int(pid_text)):
            continue
        shutil.rmtree(os.path.join(base, name), ignore_errors=True)
        removed += 1
    return removed


def _run_in(
    job: str,
    program: Program,
    source: str,
    limits: Limits,
    trace_path: str,
    trace_name: str,
    base: dict[str, Any],
    start: float,
) -> Result:
    work = os.path.join(job, "work")
    prelude = os.path.join(job, "prelude")
    os.mkdir(work)
    os.mkdir(prelude)
    with open(os.path.join(prelude, "sitecustomize.py"), "w", encoding="utf-8") as handle:
        handle.write(_prelude_source())
    driver = os.path.join(work, DRIVER_NAME)
    with open(driver, "w", encoding="utf-8") as handle:
        handle.write(source)
    notes_path = os.path.join(job, "notes")
    partial = os.path.join(job, "trace.rtrace")  # inside the only writable place; moved out at the end
    os.makedirs(os.path.dirname(os.path.abspath(trace_path)), exist_ok=True)
    netns = netns_mode()
    readonly = readonly_fs()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": work,
        "TMPDIR": work,
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join((prelude, _PROJECT_ROOT)),
        "PYTHONHASHSEED": "0",  # the same program gives the same trace (set and dict orders)
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "RETROGRADE_SANDBOX": "1",
        "RETROGRADE_SANDBOX_NOTES": notes_path,
        "RETROGRADE_SANDBOX_NETNS": "1" if netns else "0",
    }
    command = [
        sys.executable, "-m", "tracer", "record", "--max-steps", str(limits.max_steps), "-o", partial, driver,
    ]
    began = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_child_setup(limits, netns, job if readonly else ""),
        start_new_session=True,  # its own process group, killed as a whole
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = _Capped(proc.stdout, limits.output_bytes)
    err = _Capped(proc.stderr, limits.output_bytes)
    timed_out = False
    try:
        rc = proc.wait(timeout=limits.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        rc = proc.wait()
    finally:
        _kill_group(proc.pid)  # anything left in the group (nothing, while forks are refused)
    duration = time.monotonic() - began
    out.join()
    err.join()
    proc.stdout.close()
    proc.stderr.close()
    notes = _read_notes(notes_path)
    stderr_text = err.tail.decode("utf-8", "replace")
    trace = _trace_facts(partial)
    status, error = _classify(rc, timed_out, notes, trace, stderr_text, limits)
    kept = ""
    trace_bytes = 0
    if os.path.exists(partial):
        if status == "step_cap" and not limits.keep_over_cap:
            os.unlink(partial)
        else:
            shutil.move(partial, trace_path + ".part")
            os.replace(trace_path + ".part", trace_path)  # a reader never sees half a trace
            kept = trace_name
            trace_bytes = os.path.getsize(trace_path)
    guard = next((n for n in notes if n.startswith("guard ")), "")
    seccomp = "seccomp=1" in guard
    network = "+".join(p for p in ("netns" if netns else "", "seccomp" if seccomp else "") if p)
    return Result(
        **base,
        status=status,
        error=error,
        exit_code=None if timed_out else rc,
        steps=int(trace.get("steps", 0)),
        line_steps=int(trace.get("line_steps", 0)),
        duration=round(duration, 4),
        trace=kept,
        trace_bytes=trace_bytes,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        stdout=bytes(out.data).decode("utf-8", "replace"),
        stderr_tail=stderr_text[-500:],
        network=network or "blocked-in-process",
        fork="seccomp" if seccomp else "blocked-in-process",
        filesystem="readonly" if readonly else "shared",
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_notes(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError:
        return []


def _trace_facts(path: str) -> dict[str, Any]:
    """Steps, line steps, exit status and step-cap flag of a (possibly truncated) trace; {} if unreadable."""
    from tracer.format import TraceFormatError, TraceReader

    if not os.path.exists(path):
        return {}
    try:
        with TraceReader(path) as reader:
            footer = reader.footer or {}
            return {
                "steps": reader.step_count,
                "line_steps": sum(entry.summary.line_steps for entry in reader.chunks),
                "exit": footer.get("exit") or {},
                "max_steps_reached": bool(footer.get("max_steps_reached")),
                "truncated": reader.truncated,
            }
    except (TraceFormatError, OSError, ValueError):
        return {}


def _classify(
    rc: int, timed_out: bool, notes: list[str], trace: dict[str, Any], stderr: str, limits: Limits
) -> tuple[str, str]:
    if timed_out:
        return "timeout", f"wall-clock limit of {limits.timeout:g} s"
    if rc < 0:
        sig = -rc
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            return "timeout", f"CPU limit of {limits.cpu} s"
        if sig == signal.SIGSYS:
            return "fork", "a fork or exec system call was refused (seccomp)"
        if sig == signal.SIGXFSZ:
            return "crash", f"file size limit of {limits.file_bytes} bytes"
        if "MemoryError" in stderr:
            return "memory", f"memory limit of {limits.memory_mb} MB"
        return "crash", f"killed by {_signal_name(sig)}"
    if "fork" in notes:
        return "fork", "tried to start a process"
    if "network" in notes:
        return "network", "tried to use the network"
    exit_info = trace.get("exit") or {}
    kind = exit_info.get("kind")
    if (kind == "exception" and exit_info.get("type") == "MemoryError") or (
        rc != 0 and kind != "exit" and "MemoryError" in stderr
    ):
        return "memory", f"memory limit of {limits.memory_mb} MB"
    if trace.get("max_steps_reached"):
        return "step_cap", f"over {limits.max_steps} steps"
    if kind == "exception":
        return "error", f"{exit_info.get('type')}: {exit_info.get('message', '')}".rstrip(": ")
    if kind == "exit" and exit_info.get("code") not in (0, None):
        return "exit", f"exit code {exit_info.get('code')}"
    if rc != 0:
        last = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        return "error", last[0][:300] if last else f"exit code {rc}"
    if not trace:
        return "internal", "the recorder wrote no trace"
    return "ok", ""


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _syntax_message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _result(base: dict[str, Any], status: str, error: str, start: float) -> Result:
    return Result(
        **base,
        status=status,
        error=error,
        exit_code=None,
        steps=0,
        line_steps=0,
        duration=round(time.monotonic() - start, 4),
        trace="",
        trace_bytes=0,
        stdout_bytes=0,
        stderr_bytes=0,
        stdout="",
        stderr_tail="",
        network="",
        fork="",
        filesystem="",
    )
