"""`retrograde dap [--listen HOST:PORT]`: the Debug Adapter Protocol server's command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

PROG = "retrograde"


class ListenError(ValueError):
    """A --listen value that is not HOST:PORT."""


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="[HOST:]PORT",
                        help="serve DAP over TCP instead of stdin/stdout (host default 127.0.0.1; port 0 "
                             "picks a free one, printed on stderr)")
    parser.add_argument("--once", action="store_true",
                        help="with --listen: exit after the first client instead of waiting for the next")


def register(subparsers: Any) -> None:
    """Add the `dap` subcommand to the retrograde command line."""
    parser = subparsers.add_parser(
        "dap", help="debug recordings from an editor: a Debug Adapter Protocol server with step-back",
        description="Speak the Debug Adapter Protocol over stdin/stdout (or TCP with --listen). The launch "
                    "request names a trace, a program to record first, or a neural timeline; every stop "
                    "follows the replay's rules, forward and backward.")
    _add_arguments(parser)
    parser.set_defaults(handler=run)


def parse_listen(text: str) -> tuple[str, int]:
    """(host, port) from `HOST:PORT` or `PORT`."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host = ""
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(f"--listen wants HOST:PORT or PORT, not {text!r}") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"port {port} is outside 0..65535")
    return host, port


def run(args: argparse.Namespace) -> int:
    """The `dap` subcommand's handler: the exit status."""
    from retrograde.dap.server import serve_stdio, serve_tcp

    if args.listen is None:
        if args.once:
            print(f"{PROG}: --once goes with --listen", file=sys.stderr)
            return 2
        return serve_stdio()
    try:
        host, port = parse_listen(args.listen)
    except ListenError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        return serve_tcp(host, port, args.once)
    except KeyboardInterrupt:
        return 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        print(f"{PROG}: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m retrograde.dap`: the same as `retrograde dap`."""
    parser = _Parser(prog="retrograde dap", description="Debug Adapter Protocol server over recordings.")
    _add_arguments(parser)
    return run(parser.parse_args(argv))
