"""Serving DAP sessions: one over stdin/stdout, or clients one after another on a TCP port."""

from __future__ import annotations

import os
import socket
import sys
from typing import BinaryIO, TextIO

from retrograde.dap.adapter import Adapter
from retrograde.dap.protocol import Connection, ProtocolError


def serve(reader: BinaryIO, writer: BinaryIO, log: TextIO) -> int:
    """Answer one client until it disconnects or its input ends; the exit status."""
    adapter = Adapter(Connection(reader, writer))
    try:
        while not adapter.closed:
            try:
                message = adapter.conn.read()
            except ProtocolError as exc:
                print(f"retrograde: {exc}", file=log)
                return 1
            if message is None:
                break
            adapter.handle(message)
    except (BrokenPipeError, ConnectionError):
        return 0  # the client went away: nobody is left to tell
    finally:
        adapter.close()
    return 0


def serve_stdio() -> int:
    """DAP over this process's stdin and stdout; anything else writing to stdout goes to stderr.

    The protocol keeps a private copy of file descriptor 1, and descriptor 1 itself (what a library's
    print or a native extension's write reaches) becomes stderr, so nothing can corrupt the stream."""
    sys.stdout.flush()
    try:
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        protocol_fd = -1
    writer = open(protocol_fd, "wb", closefd=True) if protocol_fd >= 0 else sys.stdout.buffer  # noqa: SIM115
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        return serve(sys.stdin.buffer, writer, sys.stderr)
    finally:
        sys.stdout = saved
        if protocol_fd >= 0:
            writer.close()


def serve_tcp(host: str, port: int, once: bool) -> int:
    """Listen on host:port and serve each client that connects in turn (only the first with `once`)."""
    try:
        server = socket.create_server((host, port))
    except OSError as exc:
        print(f"retrograde: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with server:
        bound = server.getsockname()
        print(f"retrograde: listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
        while True:
            client, _address = server.accept()
            with client, client.makefile("rb") as reader, client.makefile("wb") as writer:
                status = serve(reader, writer, sys.stderr)
            if once:
                return status
