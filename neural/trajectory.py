"""Debugger trajectories: the state tree of a timeline, debugger actions on it, and a seeded policy sampler.

The tree follows "Towards a Neural Debugger for Python" (arXiv 2603.09951). Every step of the program's
main thread in one source file is a node, kept in time order, so a preorder walk of the tree is the
timeline itself. A frame activation is a *level*: it opens with a "call" (or a generator's "resume") and
closes with a "return" (or "yield", or "unwind" when an exception leaves the frame). The nodes of a
callee's level are the children of the caller's line that made the call. Choices made here:

- "exception" and "handled" are ordinary nodes of their frame's level, like "line".
- Each resume..yield stretch of a generator is its own level, a child of the caller's line that resumed it
  (`next(g)` or the `for` line), so step_into on that line enters the generator and step_over skips it.
- A frame that never closes (a trace cut by --max-steps) leaves its level open: step_return then goes to
  the last node. Steps of other threads and of other files are left out (as if untraced), and levels are
  rebuilt from frame ids, so a missing close event cannot desynchronise the tree.

Forward actions: step_into (the next node), step_over (the next node at the same level, up a level at the
end of one), step_return (the close node of the level; from a close node, the close node of the level
above), breakpoint LINE (the first future "line" node with that line, any depth; the last node when no
future node matches, as a debugger runs to the end), continue (the last node: normal exit or error).
Inverse actions: step_back (the previous node), step_back_over (the previous node at the same level, up to
the caller's line at the start of one), back_to_call (the open node of the level, which holds the inputs;
from an open node, the open node of the level above). An action that cannot move returns None.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from replay.timeline import Step, Timeline

FORWARD = ("step_into", "step_over", "step_return", "breakpoint", "continue")
INVERSE = ("step_back", "step_back_over", "back_to_call")
ACTIONS = FORWARD + INVERSE

OPEN_EVENTS = frozenset({"call", "resume"})
CLOSE_EVENTS = frozenset({"return", "yield", "unwind"})

# The paper's policy: half the trajectories use the first mix, half the second (renormalised weights).
POLICY_MIXES: tuple[dict[str, float], ...] = (
    {"step_into": 0.35, "step_over": 0.1, "step_return": 0.2, "breakpoint": 0.1, "continue": 0.05},
    {"step_into": 0.5, "step_over": 0.5},
)

# Heap addresses in reprs ("<function f at 0x7f...>") change from run to run: a model cannot predict them.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,16}")
ADDRESS_PLACEHOLDER = "0x?"


@dataclass(frozen=True, slots=True)
class Action:
    """A debugger command; `line` is the target of a breakpoint (0 for every other action)."""

    name: str
    line: int = 0

    def __post_init__(self) -> None:
        if self.name not in ACTIONS:
            raise ValueError(f"unknown action {self.name!r}")
        if (self.name == "breakpoint") != (self.line > 0):
            raise ValueError("a breakpoint needs a positive line, other actions none")

    @property
    def inverse(self) -> bool:
        return self.name in INVERSE


@dataclass(frozen=True, slots=True)
class State:
    """What the debugger shows at a node: event, location, level, locals (name -> repr) and value repr."""

    event: str
    line: int
    depth: int
    func: str
    locals: Mapping[str, str]
    value: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.event, self.line, self.depth, self.func, self.value) == (
            other.event, other.line, other.depth, other.func, other.value
        ) and list(self.locals.items()) == list(other.locals.items())

    def __hash__(self) -> int:
        return hash((self.event, self.line, self.depth, self.func, self.value, tuple(self.locals.items())))


@dataclass(frozen=True, slots=True)
class Trajectory:
    """The code, the states visited, and the action taken between each state and the next."""

    code: str
    states: tuple[State, ...]
    actions: tuple[Action, ...]  # len(states) - 1 of them: actions[i] leads from states[i] to states[i + 1]

    def __post_init__(self) -> None:
        if not self.states:
            raise ValueError("a trajectory needs at least one state")
        if len(self.actions) != len(self.states) - 1:
            raise ValueError(f"{len(self.states)} states need {len(self.states) - 1} actions")


def normalize_repr(text: str) -> str:
    return _ADDRESS.sub(ADDRESS_PLACEHOLDER, text)


class StateTree:
    """The nodes of one thread and one file of a timeline, with their levels and the actions between them."""

    def __init__(self, code: str, states: Sequence[State], frames: Sequence[int]) -> None:
        """`frames[i]` identifies node i's frame activation (any ints; a generator may reuse one)."""
        if len(states) != len(frames):
            raise ValueError("one frame id per state")
        self.code = code
        self.states = list(states)
        n = len(self.states)
        self.opener = [0] * n  # index of the node that opened node i's level
        self.closer: dict[int, int] = {}  # opener index -> index of the node that closed that level
        self.level = [0] * n
        stack: list[tuple[int, int]] = []  # (frame id, opener index), outermost first
        for i, (state, frame) in enumerate(zip(self.states, frames)):
            if state.event in OPEN_EVENTS:
                stack.append((frame, i))
            else:
                pos = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][0] == frame), None)
                if pos is None:  # a frame first seen mid-run (the trace began inside it): open it here
                    stack.append((frame, i))
                else:
                    del stack[pos + 1:]  # frames above that vanished without a close event
            self.level[i] = len(stack) - 1
            self.opener[i] = stack[-1][1]
            if state.event in CLOSE_EVENTS:
                self.closer[stack[-1][1]] = i
                stack.pop()
        # The levels rebuilt here replace the recorded depths (other threads and files are left out).
        self.states = [
            s if s.depth == lvl else State(s.event, s.line, lvl, s.func, s.locals, s.value)
            for s, lvl in zip(self.states, self.level)
        ]

    def __len__(self) -> int:
        return len(self.states)

    @classmethod
    def from_timeline(cls, timeline: Timeline, file: str | None = None, thread: int = 0,
                      normalize: bool = True) -> StateTree:
        """The tree of `file` (default: the file of the first step) on `thread`, from any Timeline."""
        states: list[State] = []
        frames: list[int] = []
        for step in timeline.steps(0, len(timeline)):
            if file is None:
                file = step.file
            if step.file != file or step.thread != thread:
                continue
            locals_ = {name: value.text for name, value in timeline.locals_at(step.index).items()}
            states.append(_state(step, locals_, step.value.text if step.value else None, normalize))
            frames.append(step.frame_id)
        return cls(timeline.source(file or "") or "", states, frames)

    @classmethod
    def from_recorded(cls, path: str, file: str | None = None, thread: int = 0,
                      normalize: bool = True) -> StateTree:
        """The tree of a trace file, read in one pass (much faster than from_timeline for long traces)."""
        from replay.recorded import RecordedTimeline
        from tracer.values import decode_text

        timeline = RecordedTimeline(path)
        try:
            states: list[State] = []
            frames: list[int] = []
            for step, encoded in timeline.iter_states():
                if file is None:
                    file = step.file
                if step.file != file or step.thread != thread:
                    continue
                locals_ = {name: decode_text(enc)[0] for name, enc in encoded.items()}
                states.append(_state(step, locals_, step.value.text if step.value else None, normalize))
                frames.append(step.frame_id)
            return cls(timeline.source(file or "") or "", states, frames)
        finally:
            timeline.close()

    # -- actions ---------------------------------------------------------------------------------------
    def apply(self, node: int, action: Action) -> int | None:
        """The node the action leads to from `node`, or None when it cannot move."""
        n = len(self.states)
        if not 0 <= node < n:
            raise IndexError(f"node {node} is outside the tree (0..{n - 1})")
        level = self.level
        if action.name == "step_into":
            return node + 1 if node + 1 < n else None
        if action.name == "step_over":
            return next((j for j in range(node + 1, n) if level[j] <= level[node]), None)
        if action.name == "step_return":
            start = node
            if self.states[node].event in CLOSE_EVENTS:
                start = next((j for j in range(node + 1, n) if level[j] < level[node]), -1)
                if start < 0:
                    return None
            close = self.closer.get(self.opener[start])
            if close is None:  # an unclosed level (cut trace): run to the end
                return n - 1 if n - 1 > node else None
            return close
        if action.name == "breakpoint":
            for j in range(node + 1, n):
                state = self.states[j]
                if state.event == "line" and state.line == action.line:
                    return j
            return n - 1 if n - 1 > node else None
        if action.name == "continue":
            return n - 1 if n - 1 > node else None
        if action.name == "step_back":
            return node - 1 if node > 0 else None
        if action.name == "step_back_over":
            return next((j for j in range(node - 1, -1, -1) if level[j] <= level[node]), None)
        # back_to_call
        opener = self.opener[node]
        if opener != node:
            return opener
        return self.opener[node - 1] if node > 0 else None

    def trajectory(self, start: int, actions: Iterable[Action]) -> Trajectory:
        """The trajectory from `start` under `actions` (an action that cannot move raises ValueError)."""
        nodes = [start]
        taken: list[Action] = []
        for action in actions:
            target = self.apply(nodes[-1], action)
            if target is None:
                raise ValueError(f"{action.name} cannot move from node {nodes[-1]}")
            nodes.append(target)
            taken.append(action)
        return Trajectory(self.code, tuple(self.states[i] for i in nodes), tuple(taken))

    # -- sampling --------------------------------------------------------------------------------------
    def sample(self, rng: random.Random, max_actions: int = 32, inverse_rate: float = 0.1,
               start: int = 0) -> Trajectory:
        """A trajectory under the paper's policy: one of the two mixes (50/50) for the whole trajectory.

        With probability `inverse_rate` an action is instead an inverse one (uniform over those that move),
        so the model also learns to go back. Sampling stops at the last node or after `max_actions`.
        """
        if not self.states:
            raise ValueError("an empty tree has no trajectories")
        mix = POLICY_MIXES[rng.randrange(len(POLICY_MIXES))]
        node = start
        nodes = [node]
        taken: list[Action] = []
        last = len(self.states) - 1
        while len(taken) < max_actions and node < last:
            action = None
            if inverse_rate > 0 and rng.random() < inverse_rate:
                choices = [Action(name) for name in INVERSE if self.apply(node, Action(name)) is not None]
                if choices:
                    action = rng.choice(choices)
            if action is None:
                action = self._forward(rng, mix, node)
            target = self.apply(node, action)
            if target is None:  # cannot happen for the actions offered, but never loop on it
                break
            node = target
            nodes.append(node)
            taken.append(action)
        return Trajectory(self.code, tuple(self.states[i] for i in nodes), tuple(taken))

    def _forward(self, rng: random.Random, mix: Mapping[str, float], node: int) -> Action:
        names = list(mix)
        while names:
            weights = [mix[name] for name in names]  # rng.choices renormalises the weights
            name = rng.choices(names, weights)[0]
            if name == "breakpoint":
                lines = [j for j in range(node + 1, len(self.states)) if self.states[j].event == "line"]
                if lines:
                    # A line that will be hit, so the breakpoint teaches a jump rather than "run to the end".
                    return Action("breakpoint", self.states[rng.choice(lines)].line)
            elif self.apply(node, Action(name)) is not None:
                return Action(name)
            names.remove(name)
        return Action("step_into")

    def call_nodes(self) -> list[int]:
        """Indexes of "call" nodes below module level: entry points for trajectories that start mid-run."""
        return [i for i, s in enumerate(self.states) if s.event == "call" and self.level[i] > 0]


def _state(step: Step, locals_: dict[str, str], value: str | None, normalize: bool) -> State:
    if normalize:
        locals_ = {name: normalize_repr(text) for name, text in locals_.items()}
        value = normalize_repr(value) if value is not None else None
    return State(step.event, step.line, step.depth, step.func, locals_, value)


def sample_trajectories(tree: StateTree, count: int, seed: int, max_actions: int = 32,
                        inverse_rate: float = 0.1, call_start_rate: float = 0.3) -> list[Trajectory]:
    """`count` seeded trajectories; some start at a function's call node (as an entry call would)."""
    rng = random.Random(seed)
    calls = tree.call_nodes()
    out = []
    for _ in range(count):
        start = rng.choice(calls) if calls and rng.random() < call_start_rate else 0
        out.append(tree.sample(rng, max_actions=max_actions, inverse_rate=inverse_rate, start=start))
    return out


def describe(value: Any) -> str:
    """A short label for an action or a state, for logs and error messages."""
    if isinstance(value, Action):
        return f"{value.name} {value.line}" if value.name == "breakpoint" else value.name
    if isinstance(value, State):
        return f"{value.event} {value.func}:{value.line} (level {value.depth})"
    return repr(value)
