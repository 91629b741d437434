"""Sandbox guard, installed as sitecustomize.py in each sandboxed run: no fork, no exec, no network.

It runs inside the child before the recorder starts. A seccomp filter makes the kernel kill the
process on fork, vfork, non-thread clone and exec, and refuse non-Unix sockets, whatever way the
program calls them (ctypes included); Python-level stubs on top turn the usual calls into clear
exceptions and leave a note in the file named by RETROGRADE_SANDBOX_NOTES so the runner can tell a
fork or network attempt apart from other errors. Only the standard library is used: this file is
copied out of the package.
"""

from __future__ import annotations

import os

_NOTES = os.environ.pop("RETROGRADE_SANDBOX_NOTES", "")

# seccomp / BPF constants (linux/seccomp.h, linux/filter.h, linux/audit.h)
_LD_ABS_W = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_RET = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_KILL = 0x80000000  # SECCOMP_RET_KILL_PROCESS: the runner sees SIGSYS and records a fork attempt
_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1
# arch audit value, then syscall numbers: fork, vfork, execve, execveat, clone, clone3, socket
_ARCHES = {
    "x86_64": (0xC000003E, (57, 58, 59, 322), 56, 435, 41),
    "aarch64": (0xC00000B7, (221, 281), 220, 435, 198),
}


def _note(kind: str) -> None:
    if not _NOTES:
        return
    try:
        fd = os.open(_NOTES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (kind + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _filter() -> list[tuple[int, int, int, int]] | None:
    """The BPF program as (code, jt, jf, k) rows, or None on an architecture we have no table for."""
    import platform

    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return None
    audit, denied, clone, clone3, socket = arch
    rows: list[tuple[int, int, int, int]] = []
    # Labels are resolved at the end: the tail is [allow, deny, enosys, clone check..., socket check...].
    rows.append((_LD_ABS_W, 0, 0, 4))  # arch
    rows.append((_JEQ, 1, 0, audit))
    rows.append((_RET, 0, 0, _ERRNO | _EPERM))  # a foreign ABI: refuse everything
    rows.append((_LD_ABS_W, 0, 0, 0))  # syscall number
    if audit == 0xC000003E:
        rows.append((_JGE, 0, 1, 0x40000000))  # the x32 ABI
        rows.append((_RET, 0, 0, _ERRNO | _EPERM))
    for nr in denied:
        rows.append((_JEQ, 0, 1, nr))
        rows.append((_RET, 0, 0, _KILL))
    rows.append((_JEQ, 0, 1, clone3))  # glibc then falls back to clone, which is checked below
    rows.append((_RET, 0, 0, _ERRNO | _ENOSYS))
    rows.append((_JEQ, 0, 4, clone))
    rows.append((_LD_ABS_W, 0, 0, 16))  # args[0] (flags), low 32 bits
    rows.append((_JSET, 1, 0, _CLONE_THREAD))
    rows.append((_RET, 0, 0, _KILL))
    rows.append((_RET, 0, 0, _ALLOW))
    rows.append((_JEQ, 0, 4, socket))
    rows.append((_LD_ABS_W, 0, 0, 16))  # args[0] (domain)
    rows.append((_JEQ, 1, 0, _AF_UNIX))
    rows.append((_RET, 0, 0, _ERRNO | _EACCES))
    rows.append((_RET, 0, 0, _ALLOW))
    rows.append((_RET, 0, 0, _ALLOW))
    return rows


def _install_seccomp() -> bool:
    try:
        import ctypes

        rows = _filter()
        if rows is None:
            return False

        class Row(ctypes.Structure):
            _fields_ = [
                ("code", ctypes.c_ushort),
                ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint),
            ]

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Row))]

        table = (Row * len(rows))(*[Row(*row) for row in rows])
        prog = Prog(len(rows), ctypes.cast(table, ctypes.POINTER(Row)))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return False
        return libc.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    except Exception:
        return False


def _blocked(kind: str, what: str) -> object:
    def stub(*_args: object, **_kwargs: object) -> object:
        _note(kind)
        raise PermissionError(f"{what} is not allowed in the retrograde sandbox")

    return stub


def _install_stubs(block_network: bool) -> None:
    for name in ("fork", "forkpty", "vfork", "system", "popen", "posix_spawn", "posix_spawnp",
                 "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
                 "spawnv", "spawnve", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe"):
        if hasattr(os, name):
            setattr(os, name, _blocked("fork", f"os.{name}"))
    try:
        import _posixsubprocess

        _posixsubprocess.fork_exec = _blocked("fork", "starting a subprocess")  # type: ignore[assignment]
    except ImportError:
        pass
    if block_network:
        import socket

        base = socket.socket

        class GuardedSocket(base):  # type: ignore[misc,valid-type]
            """Refuses internet sockets; a subclass, so modules that subclass socket still import."""

            def __init__(self, family: int = -1, *args: object, **kwargs: object) -> None:
                fileno = args[2] if len(args) > 2 else kwargs.get("fileno")
                if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
                    _note("network")
                    raise PermissionError("network access is not allowed in the retrograde sandbox")
                super().__init__(family, *args, **kwargs)

        socket.socket = GuardedSocket  # type: ignore[misc]
        socket.create_connection = _blocked("network", "network access")  # type: ignore[assignment]
        socket.getaddrinfo = _blocked("network", "name lookup")  # type: ignore[assignment]


def _main() -> None:
    if os.environ.pop("RETROGRADE_SANDBOX", "") != "1":
        return
    netns = os.environ.pop("RETROGRADE_SANDBOX_NETNS", "") == "1"
    seccomp = _install_seccomp()
    # Without a kernel guard on sockets, refuse them in-process as the last line of defence.
    _install_stubs(block_network=True)
    _note(f"guard seccomp={int(seccomp)} netns={int(netns)}")


_main()
