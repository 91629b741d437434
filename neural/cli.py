"""Subcommands of the neural part: train, trajectories, predict, eval (torch is imported only when used)."""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import Any

PROG = "retrograde"


def _fail(message: str, code: int = 1) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train", help="train a model on debugger trajectories of recorded programs",
        description="Record programs (or read traces), sample debugger trajectories, train a tokenizer and "
                    "a causal LM from scratch (or fine-tune --base). Writes the model to OUT; OUT/checkpoint "
                    "holds what --resume needs.")
    train.add_argument("--data", metavar="PATH",
                       help="traces (.rtrace file or directory), a directory of .py scripts, "
                            "or a JSONL of programs")
    train.add_argument("--synth", type=int, default=0, metavar="N",
                       help="also generate N programs with the corpus generator")
    train.add_argument("--dataset", metavar="DIR",
                       help="token shards built by 'retrograde dataset build' (instead of --data/--synth)")
    train.add_argument("--synth-seed", type=int, default=0, metavar="SEED")
    train.add_argument("--out", required=True, metavar="DIR", help="where the model is written")
    train.add_argument("--steps", type=int, default=1000, metavar="N", help="optimizer steps (default 1000)")
    train.add_argument("--base", metavar="PATH", help="fine-tune this local causal-LM checkpoint")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--block-size", type=int, default=512, help="longest example, in tokens")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate (1e-3; 1e-4 with --base)")
    train.add_argument("--warmup", type=int, default=50)
    train.add_argument("--eval-every", type=int, default=100, metavar="N")
    train.add_argument("--save-every", type=int, default=200, metavar="N")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--per-trace", type=int, default=4, help="trajectories sampled per trace")
    train.add_argument("--max-actions", type=int, default=24, help="actions per sampled trajectory")
    train.add_argument("--vocab-size", type=int, default=4096)
    train.add_argument("--layers", type=int, default=4)
    train.add_argument("--hidden", type=int, default=256)
    train.add_argument("--heads", type=int, default=4)
    train.add_argument("--intermediate", type=int, default=None, help="MLP width (default 8/3 of hidden)")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    train.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    train.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this long")
    train.add_argument("--jobs", type=int, default=2, help="programs recorded at a time")
    train.add_argument("--code-loss", action="store_true", help="also train on the code context tokens")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(handler=cmd_train)

    traj = subparsers.add_parser(
        "trajectories", help="print sampled debugger trajectories of a trace, in the model's text format")
    traj.add_argument("trace", metavar="TRACE")
    traj.add_argument("-n", type=int, default=1, help="how many (default 1)")
    traj.add_argument("--seed", type=int, default=0)
    traj.add_argument("--max-actions", type=int, default=24)
    traj.set_defaults(handler=cmd_trajectories)

    pred = subparsers.add_parser(
        "predict", help="predict the execution of code that is not run, step by step, with the model",
        description="Start at FILE's function called as --call (or at the top of the script) and print the "
                    "states the model predicts, each as the replay prints a stop. Without --actions it steps "
                    "into every line until the call returns; with --actions it takes those debugger actions, "
                    "one model prediction each.")
    pred.add_argument("file", metavar="FILE", help="a Python source file (it is never run)")
    add_neural_options(pred)
    pred.add_argument("--actions", metavar="LIST",
                      help="comma-separated: s (step into), n (step over), r (step return), c (continue), "
                           "b LINE (breakpoint), rs / rn (step back / back over), rr (back to the call)")
    pred.add_argument("--json", action="store_true", help="one JSON object per state instead of pdb's format")
    pred.set_defaults(handler=cmd_predict)

    ev = subparsers.add_parser("eval", help="measure how well a model predicts execution",
                               description="Score a model on held-out traces or on a CRUXEval-format file. "
                                           "Prints a table, then the scores as one JSON line.")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="{cruxeval,traces}")
    ev.set_defaults(handler=lambda args: _fail("eval needs a task: retrograde eval cruxeval FILE | "
                                               "retrograde eval traces PATH...", 2))
    crux = ev_sub.add_parser("cruxeval", help="output and input prediction on CRUXEval-format items",
                             description="Each JSON line has code (defining f), input (argument text) and "
                                         "output (a repr). Scores pass@1 (greedy) for output prediction via "
                                         "step_return and via a breakpoint at the return line, and input "
                                         "prediction via back_to_call, checked by running f in the sandbox.")
    crux.add_argument("file", metavar="FILE")
    crux.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    crux.add_argument("--model", metavar="PATH", help="model directory (default: the bundled model)")
    crux.add_argument("--no-check", action="store_true", help="do not run f to check predicted inputs")
    crux.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    crux.add_argument("--jump", action="store_true", help=JUMP_HELP)
    crux.add_argument("--quiet", action="store_true", help="no progress output")
    crux.set_defaults(handler=cmd_eval_cruxeval)
    traces = ev_sub.add_parser("traces", help="next-state accuracy per action type on held-out traces",
                               description="For seeded states of each trace and each action type "
                                           "(step_into, step_over, step_return, breakpoint, inverse), "
                                           "the model predicts the next state once; event, line, locals and "
                                           "exact matches are counted, beside two baselines.")
    traces.add_argument("paths", nargs="+", metavar="DIR_OR_TRACES")
    traces.add_argument("--model", metavar="PATH", help="model directory (default: the bundled model)")
    traces.add_argument("--per-action", type=int, default=4, metavar="N",
                        help="states per action type per trace (default 4)")
    traces.add_argument("--limit", type=int, metavar="N", help="at most N items in all")
    traces.add_argument("--seed", type=int, default=0)
    traces.add_argument("--baselines-only", action="store_true", help="score the baselines, load no model")
    traces.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    traces.add_argument("--jump", action="store_true", help=JUMP_HELP)
    traces.add_argument("--quiet", action="store_true", help="no progress output")
    traces.set_defaults(handler=cmd_eval_traces)


def add_neural_options(parser: Any) -> None:
    """--call, --model, --max-steps: shared by predict, replay --neural and tui --neural."""
    parser.add_argument("--call", metavar="EXPR", help='the entry call, like "f(1, [2, 3])"')
    parser.add_argument("--model", metavar="PATH", help="model directory (default: the bundled model)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="predict at most N steps (default: sized for the code's lines and loops)")


class NeuralCliError(Exception):
    """One sentence for the user, before or while a model is loaded."""


JUMP_HELP = ("take step_return and breakpoint in one predicted jump (the model alone), not step by step "
             "(the default, as the debugger does, up to 64 steps)")
WALK = 64  # step_return and breakpoint are taken step by step, up to this many steps (then one jump)


def load_predictor(model: str | None, threads: int | None = None, walk: int = WALK) -> Any:
    """The predictor of a model directory (default: the bundled one); NeuralCliError when it cannot load."""
    if model is not None and not os.path.isdir(model):
        raise NeuralCliError(f"no such model directory: {model}")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise NeuralCliError(f"the model needs torch and transformers ({exc.name} is missing)") from None
    from neural.model import DEFAULT_MODEL_DIR
    from neural.predict import PredictError, Predictor

    try:
        # One torch thread unless asked: a small model at batch size 1 gains little from more, and on a
        # busy machine two threads can wait on each other for seconds per step.
        return Predictor.from_path(model or DEFAULT_MODEL_DIR, threads=threads or 1, walk=walk)
    except (PredictError, FileNotFoundError) as exc:
        raise NeuralCliError(str(exc)) from None


def neural_timeline(path: str, call: str | None, model: str | None, max_steps: int | None = None,
                    predictor: Any = None) -> Any:
    """A NeuralTimeline over FILE from --call (or the whole script); NeuralCliError for any bad input."""
    if max_steps is not None and max_steps <= 0:
        raise NeuralCliError("--max-steps must be positive")
    try:
        with open(path, encoding="utf-8") as handle:
            code = handle.read()
    except FileNotFoundError:
        raise NeuralCliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise NeuralCliError(f"{path} is a directory, not a Python file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NeuralCliError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    from neural.constraints import CodeError, StaticCode

    try:
        StaticCode.from_source(code, path)
    except CodeError as exc:
        raise NeuralCliError(f"{path}: {exc}") from None
    from neural.timeline import CallError, driver_code, entry_state

    if call is not None:
        try:
            entry_state(driver_code(code, call), call)
        except CallError as exc:
            raise NeuralCliError(str(exc)) from None
    predictor = predictor or load_predictor(model)
    from neural.timeline import NeuralTimeline
    from replay.timeline import TimelineError

    try:
        if call is not None:
            return NeuralTimeline.for_call(predictor, code, path, call, max_steps)
        return NeuralTimeline.for_script(predictor, code, path, max_steps)
    except TimelineError as exc:
        raise NeuralCliError(str(exc)) from None


_SHORT_ACTIONS = {
    "s": "step_into", "n": "step_over", "r": "step_return", "c": "continue",
    "rs": "step_back", "rn": "step_back_over", "rr": "back_to_call",
}


def parse_actions(text: str) -> list[Any]:
    """`s,s,n,b 12,r,rs` (short names or the actions' own names) as Actions; ValueError with the reason."""
    from neural.trajectory import ACTIONS, Action

    out = []
    for raw in text.split(","):
        word = raw.strip()
        if not word:
            continue
        name, _, rest = word.partition(" ")
        glued = name[:1] == "b" and name[1:].isdigit()  # "b12"
        if glued or name in ("b", "break", "breakpoint"):
            number = name[1:] if glued else rest.strip()
            if not number.isdigit() or int(number) <= 0:
                raise ValueError(f"a breakpoint needs a line number, like 'b 12', not {word!r}")
            out.append(Action("breakpoint", int(number)))
            continue
        full = _SHORT_ACTIONS.get(word, word)
        if full not in ACTIONS or full == "breakpoint":
            raise ValueError(f"unknown action {word!r} (use s, n, r, c, b LINE, rs, rn, rr)")
        out.append(Action(full))
    if not out:
        raise ValueError("--actions is empty")
    return out


def format_stop(path: str, code: str, state: Any, flagged: str | None = None) -> str:
    """A predicted state as the replay prints a stop: marker, `> file(line)func()`, source line, locals."""
    from neural.constraints import is_literal
    from neural.textformat import source_line
    from replay.session import location_text, marker_line
    from replay.timeline import Value

    value = Value(state.value, literal=is_literal(state.value)) if state.value is not None else None
    # The replay session's stop text: the same marker and location line as `retrograde replay` prints.
    marker = marker_line(state.event, value)
    lines = [] if marker is None else [marker]
    lines.append("> " + location_text(os.path.abspath(path), state.line, state.func, state.event, value))
    text = source_line(code, state.line)
    if text:
        lines.append("-> " + text)
    for name, value in state.locals.items():
        lines.append(f"   {name} = {value}")
    if flagged:
        lines.append(f"   (flagged: the model's output failed every check: {flagged})")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    import json

    try:
        actions = parse_actions(args.actions) if args.actions is not None else None
        timeline = neural_timeline(args.file, args.call, args.model, args.max_steps)
    except (NeuralCliError, ValueError) as exc:
        return _fail(str(exc), 2 if isinstance(exc, ValueError) else 1)
    code = timeline.code
    from neural.predict import PredictError

    def show(state: Any, prediction: Any, action: Any) -> None:
        problem = prediction.problem if prediction is not None and not prediction.valid else None
        if args.json:
            print(json.dumps({
                "action": action.name if action is not None else None,
                "line_target": action.line if action is not None and action.line else None,
                "event": state.event, "line": state.line, "depth": state.depth, "func": state.func,
                "locals": dict(state.locals), "value": state.value, "flagged": problem,
                "ms": round(prediction.seconds * 1000, 1) if prediction is not None else None,
            }))
        else:
            if action is not None:
                print(f"({action.name}{' ' + str(action.line) if action.line else ''})")
            print(format_stop(args.file, code, state, problem))
        sys.stdout.flush()

    try:
        if actions is None:
            index = 0
            while True:
                try:
                    timeline.step(index)
                except IndexError:
                    break
                show(timeline.states[index], timeline.predictions[index], None)
                index += 1
        else:
            predictor = timeline.predictor
            show(timeline.states[0], None, None)
            for action in actions:
                prediction = predictor.predict(action)
                show(prediction.state, prediction, action)
    except BrokenPipeError:
        return 0
    except PredictError as exc:
        return _fail(f"the prediction stopped: {exc}")
    if timeline.stopped:
        return _fail(f"the prediction stopped: {timeline.stopped}")
    return 0


@contextlib.contextmanager
def _progress(quiet: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal's stderr (nothing otherwise); yields its update(done, total)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def cmd_eval_cruxeval(args: argparse.Namespace) -> int:
    import json

    from neural.evaluate import CRUX_KEYS, EvalError, eval_cruxeval, load_cruxeval, table

    if args.limit is not None and args.limit <= 0:
        return _fail("--limit must be positive", 2)
    try:
        items = load_cruxeval(args.file)
    except EvalError as exc:
        return _fail(str(exc))
    if not items:
        return _fail(f"{args.file} holds no items")
    items = items[:args.limit] if args.limit else items
    try:
        predictor = load_predictor(args.model, args.threads, walk=0 if args.jump else WALK)
    except NeuralCliError as exc:
        return _fail(str(exc))
    with _progress(args.quiet, "cruxeval") as update:
        result = eval_cruxeval(predictor, items, check_inputs=not args.no_check, progress=update)
    scores = result["scores"]
    print(f"CRUXEval-format pass@1 (greedy) on {result['items']} items of {args.file} "
          f"({result['seconds']} s, {result['items_per_s']} items/s)")
    print(table(((name, [f"{scores[name][k]:.3f}" for k in CRUX_KEYS]) for name in ("model", "copy")),
                ("", "output via step_return", "output via breakpoint", "output via steps",
                 "input via inverse", "input via search")))
    for line in result["skipped"][:5]:
        print(f"skipped {line}")
    print(json.dumps({**{key: scores["model"][key] for key in CRUX_KEYS}, "items": result["items"],
                      "baseline_copy": scores["copy"]}))
    return 0


def cmd_eval_traces(args: argparse.Namespace) -> int:
    import json

    from neural.evaluate import ACTION_TYPES, FIELDS, EvalError, eval_traces, load_trees, table

    if args.per_action <= 0 or (args.limit is not None and args.limit <= 0):
        return _fail("--per-action and --limit must be positive", 2)
    errors: list[str] = []
    try:
        trees = load_trees(args.paths, errors)
    except EvalError as exc:
        return _fail(str(exc))
    predictor = None
    if not args.baselines_only:
        try:
            predictor = load_predictor(args.model, args.threads, walk=0 if args.jump else WALK)
        except NeuralCliError as exc:
            return _fail(str(exc))
    try:
        with _progress(args.quiet, "traces") as update:
            result = eval_traces(predictor, trees, per_action=args.per_action, seed=args.seed,
                                 limit=args.limit, progress=update)
    except EvalError as exc:
        return _fail(str(exc))
    scores = result["scores"]
    print(f"next-state exact match on {result['items']} items from {result['traces']} traces "
          f"({result['seconds']} s; {result['flagged']} predictions flagged)")
    rows = []
    for name in scores:
        for kind in ACTION_TYPES:
            cell = scores[name][kind]
            rows.append((f"{name} {kind}", [str(cell["n"]), *(f"{cell[f]:.3f}" for f in FIELDS)]))
    print(table(rows, ("", "n", *FIELDS)))
    if errors:  # damaged or foreign traces were skipped (the scores are of the others): one warning line
        more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
        print(f"{PROG}: warning: skipped {len(errors)} unreadable trace(s): {errors[0]}{more}",
              file=sys.stderr)
    print(json.dumps({"scores": scores, "items": result["items"], "traces": result["traces"],
                      "flagged": result["flagged"]}))
    return 0


def _check_positive(args: argparse.Namespace, *names: str) -> str | None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    return None


def cmd_train(args: argparse.Namespace) -> int:
    import time

    clock_start = time.monotonic()
    if not args.data and not args.synth and not args.resume and not args.dataset:
        return _fail("train needs --dataset DIR, --data PATH or --synth N (or --resume)", 2)
    if args.dataset and (args.data or args.synth):
        return _fail("--dataset cannot be combined with --data or --synth", 2)
    if args.dataset and not args.resume and not os.path.isfile(os.path.join(args.dataset, "manifest.json")):
        return _fail(f"{args.dataset} is not a dataset (no manifest.json): build one with "
                     "'retrograde dataset build'", 2)
    problem = _check_positive(args, "steps", "batch_size", "block_size", "eval_every", "vocab_size", "layers",
                              "hidden", "heads", "per_trace", "max_actions", "jobs", "max_minutes", "lr")
    if problem:
        return _fail(problem, 2)
    if args.synth < 0:
        return _fail("--synth must not be negative", 2)
    if args.hidden % args.heads:
        return _fail("--hidden must be a multiple of --heads", 2)
    if args.data and not args.resume:
        from neural.dataset import DataError, find_data

        try:  # before torch's slow import: bad data should fail fast
            find_data(args.data)
        except DataError as exc:
            return _fail(str(exc))
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        return _fail(f"training needs torch and transformers ({exc.name} is missing)")
    from neural.dataset import DataError
    from neural.model import ModelSize
    from neural.train import TrainError, TrainOptions, train

    intermediate = args.intermediate or (args.hidden * 8 // 3 + 15) // 16 * 16
    options = TrainOptions(
        out=args.out, data=args.data, dataset=args.dataset, synth=args.synth, synth_seed=args.synth_seed,
        steps=args.steps,
        batch_size=args.batch_size, block_size=args.block_size,
        lr=args.lr if args.lr is not None else (1e-4 if args.base else 1e-3),
        warmup=args.warmup, eval_every=args.eval_every, save_every=args.save_every, seed=args.seed,
        per_trace=args.per_trace, max_actions=args.max_actions, vocab_size=args.vocab_size,
        size=ModelSize(layers=args.layers, hidden=args.hidden, heads=args.heads, intermediate=intermediate,
                       context=max(args.block_size, 256)),
        base=args.base, resume=args.resume, device=args.device, threads=args.threads,
        max_minutes=args.max_minutes, jobs=args.jobs, code_loss=args.code_loss, quiet=args.quiet,
        command=shlex.join([PROG, *sys.argv[1:]]), clock_start=clock_start,
    )
    try:
        info = train(options)
    except (DataError, TrainError, FileNotFoundError, RuntimeError) as exc:
        return _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    print(f"trained {info['steps']} steps on {info['tokens_seen']} tokens in {info['wall_time_s']} s: "
          f"train loss {info['final_train_loss']}, validation loss {info['final_val_loss']} -> {args.out}")
    return 0


def cmd_trajectories(args: argparse.Namespace) -> int:
    from neural.textformat import serialize
    from neural.trajectory import StateTree, sample_trajectories

    if args.n <= 0 or args.max_actions <= 0:
        return _fail("-n and --max-actions must be positive", 2)
    if not os.path.isfile(args.trace):
        return _fail(f"no such trace: {args.trace}")
    try:
        tree = StateTree.from_recorded(args.trace)
    except Exception as exc:  # the trace reader's own errors, or a file that is no trace at all
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        name = os.path.basename(args.trace)
        return _fail(text if text.startswith(name) else f"cannot read {args.trace}: {text}")
    if not len(tree):
        return _fail(f"{args.trace} has no steps")
    for trajectory in sample_trajectories(tree, args.n, args.seed, args.max_actions):
        print(serialize(trajectory))
    return _damage_status(args.trace)


def _damage_status(path: str) -> int:
    """1, with the damage in one sentence, when the trace's checked parts other than its chunks (header,
    footer, file records) are damaged; else 0. The chunks were all read already."""
    from tracer.format import TraceReader, damage_sentence

    with TraceReader(path) as reader:
        reader.verify_files()
        damage = reader.damage
        if damage:
            sys.stdout.flush()
            return _fail(damage_sentence(path, damage, len(reader.chunks)))
    return 0
