"""The `retrograde` command: every package's commands, gathered above the four layers, and `demo`.

Each package registers its own commands (`register(subparsers)` in its `cli.py`); this module only
lists them, in help order, and wires what crosses layers: `replay --neural` gets the model's timeline
from the neural package, which the replay package cannot import, and `whatif` its forker.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from tracer import cli as tracer_cli
from tracer.cli import PROG, Registrar, RegistrarLoader, fail

# Optional parts: a module that cannot be imported (its extra is not installed, or it is not written
# yet) simply adds no command.
_OPTIONAL_MODULES = (
    "tui.cli",
    "tracer.corpus.cli",
    "neural.cli",
    "neural.dataset_cli",
    "retrograde.dap.cli",
)


def _module_registrar(name: str) -> RegistrarLoader:
    def load() -> Registrar | None:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return None
        return getattr(module, "register", None)

    return load


def _replay_registrar() -> Registrar | None:
    try:
        from replay import cli
    except ImportError:
        return None
    return functools.partial(cli.register, predicted=predicted_timeline, forker=whatif_forker)


def whatif_forker(model: str | None = None) -> Any:
    """`whatif`'s replay.session.Forker: neural's what-if, imported and its model loaded on first use."""
    from replay.session import NO_FORKER, ForkError, LazyForker

    def make() -> Any:
        try:
            from neural.whatif import load_forker
        except ImportError:
            raise ForkError(NO_FORKER) from None
        return load_forker(model)

    return LazyForker(make)


def predicted_timeline(path: str, call: str | None, model: str | None, max_steps: int) -> Any:
    """The model's prediction of FILE as a timeline, for `replay --neural` (imports neural only now)."""
    from replay.cli import ReplayCliError

    try:
        from neural.cli import NeuralCliError, neural_timeline
    except ImportError:
        raise ReplayCliError("--neural needs the neural part (pip install 'retrograde[neural]')") from None
    try:
        return neural_timeline(path, call, model, max_steps)
    except NeuralCliError as exc:
        raise ReplayCliError(str(exc)) from None


def register_demo(subparsers: Any) -> None:
    """Add `demo`: record a bundled sample and replay it."""
    demo = subparsers.add_parser("demo", help="record a bundled sample program and replay it")
    demo.add_argument("--sample", default="bubble_sort.py", help="sample file name in samples/")
    demo.set_defaults(handler=cmd_demo)


# The whole command line, in help order. Loading stops once the command is known (tracer.cli.run).
LOADERS: tuple[RegistrarLoader, ...] = (
    lambda: tracer_cli.register,
    _replay_registrar,
    lambda: register_demo,
    *map(_module_registrar, _OPTIONAL_MODULES),
)


def parser() -> argparse.ArgumentParser:
    """The full `retrograde` argument parser (every installed part's commands)."""
    return tracer_cli.build_parser(LOADERS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `retrograde ARGS`; returns the exit code."""
    return tracer_cli.run(argv, LOADERS)


def samples_dir() -> str:
    """The bundled sample programs (samples/ beside the packages)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "samples")


def cmd_demo(args: argparse.Namespace) -> int:
    """Record a sample, summarise it, and replay it (a scripted tour when there is no terminal)."""
    import io
    import subprocess
    import tempfile

    from replay.cli import cmd_replay, replay_trace

    sample = os.path.join(samples_dir(), args.sample)
    if not os.path.isfile(sample):
        return fail(f"no bundled sample named {args.sample!r} in {samples_dir()}", 2)
    out_dir = tempfile.mkdtemp(prefix="retrograde-demo-")
    trace = os.path.join(out_dir, os.path.splitext(args.sample)[0] + ".rtrace")
    print(f"{PROG}: recording {sample}", file=sys.stderr)
    result = subprocess.run(
        [sys.executable, "-m", "retrograde", "record", "-o", trace, sample], stdin=subprocess.DEVNULL
    )
    if not os.path.exists(trace):
        return fail("the recording failed")
    print(f"{PROG}: program exited with {result.returncode}; trace saved as {trace}\n", file=sys.stderr)
    tracer_cli.cmd_info(argparse.Namespace(trace=trace, json=False))
    print()
    if sys.stdin.isatty() or args.sample != "bubble_sort.py":
        return cmd_replay(argparse.Namespace(trace=trace))
    # No terminal to type into: take a short scripted tour, forward and backward.
    tour = ["b 14", "c", "c", "p items", "rc", "p items", "rs", "p items", "history swapped", "w", "q"]
    print(f"{PROG}: no terminal, so a scripted tour: {'; '.join(tour)}\n")
    status = replay_trace(trace, io.StringIO("\n".join(tour) + "\n"), sys.stdout, interactive=False)
    try:
        from neural.cli import cmd_predict
    except ImportError:
        return status
    call, actions = "bubble_sort([3, 1, 2])", "s,s,n,n,r"
    print(f"\n{PROG}: and the bundled model predicts {call} without running it "
          f"(retrograde predict {args.sample} --call '{call}' --actions {actions}):\n")
    sys.stdout.flush()
    return status or cmd_predict(argparse.Namespace(file=sample, call=call, model=None, max_steps=500,
                                                    actions=actions, json=False))
