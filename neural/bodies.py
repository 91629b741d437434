"""What the locals and value of a predicted state may be, and a grammar that decodes only those.

Given the header the model chose, `body_plan` says which names the state may show, in which order, and
for each name what its value may be written as:

- only names a frame of that code can bind (neural.constraints: parameters, assigned names, cells);
- a call state: exactly the parameters, in the frame's order, then closure variables once bound;
- the next state of the same frame after step_into/step_over: the previous names in their order (a name
  can vanish only where the line may delete it), then new names the line may bind; a name the line cannot
  change (neural.constraints.changeable, the recorder's own effect analysis) keeps its value ("<|same|>"
  in a diff, the same repr in full), so on those names the prediction equals copying;
- a value the code decides (neural.exact: `NAME = EXPR` over literal locals, `return EXPR`) is written
  as computed.

`BodyGrammar` is the text form of a plan: a small nondeterministic automaton over characters that accepts
exactly `{"name": "repr", ...}[<|value|>VALUE]` as neural.textformat writes it, so that constrained
decoding keeps every token a prefix of an acceptable body.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from neural.constraints import CodeInfo, StaticCode, changeable, fixed_text, line_stores, may_be_bound
from neural.exact import assigned, effects, plain_stores, returned, value_before
from neural.flow import target_before
from neural.textformat import escape, is_diff
from neural.trajectory import CLOSE_EVENTS, OPEN_EVENTS, Action, State

SAME_CHAR = "\ue000"  # the <|same|> token, as the grammar reads it
VALUE_CHAR = "\ue001"  # the <|value|> token
_PSEUDO = frozenset({SAME_CHAR, VALUE_CHAR})
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Choice:
    """How one name's value may be written: the <|same|> marker, exactly `text`, and/or any repr."""

    same: bool = False
    text: str | None = None
    free: bool = True


@dataclass(slots=True)
class BodyPlan:
    """The names a state may show (ordered slots, then an unordered pool) and its value."""

    slots: list[tuple[str, bool, Choice]] = field(default_factory=list)  # (name, required, choice)
    pool: dict[str, Choice] = field(default_factory=dict)  # optional names, any order, after the slots
    value: str = "optional"  # "required", "forbidden" or "optional"
    value_text: str | None = None  # the value, when the code decides it
    base: Mapping[str, str] | None = None  # the previous locals when the state is written as a diff
    carry: Mapping[str, str] | None = None  # the frame's own earlier locals (a caller's), for fallback

    def fallback(self, previous: State, parsed: Mapping[str, str] | None = None) -> dict[str, str]:
        """Locals that fit the plan when decoding failed: computed or kept values, else copied."""
        out: dict[str, str] = {}
        parsed = parsed or {}
        earlier = self.carry if self.carry is not None else previous.locals
        for name, required, choice in self.slots:
            text = choice.text if choice.text is not None else parsed.get(name, earlier.get(name))
            if choice.same and not choice.free and self.base is not None:
                text = self.base.get(name, text)
            if text is None and required:
                text = "None"
            if text is not None:
                out[name] = text
        for name, choice in self.pool.items():
            text = choice.text if choice.text is not None else parsed.get(name)
            if text is not None:
                out[name] = text
        return out


def body_plan(
    static: StaticCode,
    previous: State,
    action: Action,
    probe: State,
    decided: Mapping[str, str] | None = None,
    keep_rest: bool = False,
) -> BodyPlan:
    """The plan of the state whose header is `probe`'s, after `action` from `previous`.

    `decided`: names the control flow binds when the next state is that line (a `for` loop's target:
    neural.flow), with their reprs; `keep_rest`: the step ran no code, so every other name is kept.
    """
    event = probe.event
    plan = BodyPlan()
    plan.value = "required" if event in ("return", "yield", "exception", "handled") else (
        "optional" if event == "unwind" else "forbidden"
    )
    diff = is_diff(previous, action, probe)
    plan.base = previous.locals if diff else None
    info = static.functions.get(probe.func)
    if info is None:
        return plan
    call_params, call_free = static.call_names(probe.func, probe.line) if event == "call" else ((), ())
    if event == "call" and info.function and call_params:
        fixed: dict[str, str] = {}
        if (previous.func, previous.depth) == (probe.func, probe.depth) and previous.event not in OPEN_EVENTS:
            if action.name == "back_to_call":
                fixed = _kept_since_call(static, previous, info)
            elif action.name in ("step_back", "step_back_over") and previous.event == "line" and \
                    set(previous.locals) <= set(call_params) | set(call_free):
                fixed = dict(previous.locals)  # the first line's state: nothing of the frame ran since
        plan.slots = [
            (name, True, Choice(text=fixed[name], free=False) if name in fixed else Choice())
            for name in call_params
        ]
        plan.slots += [(name, False, Choice()) for name in call_free]
        return plan
    backward = (
        action.name in ("step_back", "step_back_over")
        and previous.event not in OPEN_EVENTS
        and event == "line"
        and (previous.func, previous.depth) == (probe.func, probe.depth)
    )
    if backward:
        return _backward_plan(static, previous, action, probe, plan, info, diff)
    same_frame = (
        action.name in ("step_into", "step_over")
        and previous.event not in CLOSE_EVENTS
        and event not in OPEN_EVENTS
        and (previous.func, previous.depth) == (probe.func, probe.depth)
    )
    free = changeable(static, previous, action.name) if same_frame else None
    # The line's own stores and deletions (from its bytecode: an except block's end deletes its name)
    # stay the model's in both cases below.
    if same_frame and keep_rest:
        # the code decided the step and ran nothing: only the bound names change
        free = line_stores(static, previous) - set(decided or {})
    elif same_frame and event == "line" and probe.line != previous.line:
        exact = effects(static, previous)
        if exact is not None:  # the statement ran no code: only its own objects, and their aliases, changed
            computed_now, mutated = exact
            shown = [previous.locals[m] for m in mutated if m in previous.locals]
            free = frozenset(
                name for name, text in previous.locals.items()
                if name not in computed_now and any(m in text for m in shown)
            ) | (line_stores(static, previous) - set(computed_now))
    value_text = returned(static, previous) if event == "return" and previous.line == probe.line else None
    if same_frame and value_text is not None:
        free = frozenset()  # the value was computed without running any code: no local changed
    if free is None:
        plan.pool = {name: Choice(same=diff and name in previous.locals) for name in _ordered(info, previous)}
        return plan
    stores = line_stores(static, previous)
    # A statement's effects are complete at the next line; a line event on the same line is an inlined
    # comprehension's loop going round, in the middle of it.
    computed = assigned(static, previous) if event == "line" and probe.line != previous.line else {}
    if event == "line" and decided:
        computed = {**computed, **decided}
    plan.value_text = value_text
    for name, text in previous.locals.items():
        if name in computed:
            value = computed[name]
            same = diff and value == text
            choice = Choice(same=True, free=False) if same else Choice(text=value, free=False)
            plan.slots.append((name, True, choice))
        elif name not in free:
            kept = Choice(same=True, free=False) if diff else Choice(text=text, free=False)
            plan.slots.append((name, True, kept))
        else:
            plan.slots.append((name, name not in stores, Choice(same=diff)))
    new = [name for name in sorted(stores) if name not in previous.locals and name in info.names]
    # Names the statement certainly binds come next, in the frame's own order (as the recorder lists
    # them); any other name it may bind is optional.
    order = {name: i for i, name in enumerate(_frame_order(info))}
    fresh = sorted((name for name in new if name in computed), key=lambda n: (order.get(n, len(order)), n))
    for name in fresh:
        plan.slots.append((name, True, Choice(text=computed[name], free=False)))
    plan.pool = {name: Choice() for name in new if name not in computed}
    return plan


def _backward_plan(
    static: StaticCode,
    current: State,
    action: Action,
    probe: State,
    plan: BodyPlan,
    info: CodeInfo,
    diff: bool,
) -> BodyPlan:
    """Stepping back within a frame to the line `probe` that led to `current`: running that line from the
    earlier state gave `current`, so a name that line cannot change (neural.constraints.changeable, the
    forward analysis) had the same value before it; only its own stores may be absent before it."""
    earlier = State("line", probe.line, probe.depth, probe.func, current.locals)
    free = changeable(static, earlier, "step_into" if action.name == "step_back" else "step_over")
    if free is None:
        plan.pool = {name: Choice(same=diff and name in current.locals) for name in _ordered(info, current)}
        return plan
    stores = line_stores(static, earlier)
    unbound = _unbound_before(static, probe) & stores
    forward = current.event == "line" and probe.event == "line"  # the line ran to its end, into `current`
    undone = value_before(static, current, probe.line) if forward else None
    item = target_before(static, current, probe.line) if forward and undone is None else None
    if item is not None:
        if item[1] is None:
            unbound = unbound | {item[0]}
        else:
            undone = (item[0], item[1])
    # A comprehension's targets on this line come and go between its steps, in an order the recorder
    # keeps as it found them: they may appear in any order, after the rest.
    looping = _comprehension_targets(static, probe) & stores
    loose: dict[str, Choice] = {}
    for name, text in current.locals.items():
        if name in unbound:
            continue  # the line bound it, and nothing before it can have
        if name in looping:
            loose[name] = Choice(same=diff)
            continue
        if undone is not None and name == undone[0]:
            unchanged = diff and undone[1] == text
            choice = Choice(same=unchanged, text=None if unchanged else undone[1], free=False)
            plan.slots.append((name, True, choice))
            continue
        if name in free or name in stores:
            plan.slots.append((name, name not in stores, Choice(same=diff)))
        else:
            kept = Choice(same=True, free=False) if diff else Choice(text=text, free=False)
            plan.slots.append((name, True, kept))
    deleted = [name for name in sorted(stores) if name not in current.locals and name in info.names]
    plan.pool = {name: Choice() for name in deleted}  # bound before the line, which deleted them
    plan.pool.update(loose)
    return plan


def _comprehension_targets(static: StaticCode, probe: State) -> frozenset[str]:
    """The names comprehensions on `probe`'s line bind as their loops run, and nothing else binds."""
    root = static.tree if probe.func == "<module>" else static.defs.get(probe.func)
    if root is None:
        return frozenset()
    kinds = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    targets = [
        (comp, n) for comp in ast.walk(root) if isinstance(comp, kinds)
        for gen in comp.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)
    ]
    elsewhere = plain_stores(root)
    return frozenset(
        n.id for comp, n in targets
        if comp.lineno <= probe.line <= (comp.end_lineno or comp.lineno) and n.id not in elsewhere
    )


def _unbound_before(static: StaticCode, probe: State) -> frozenset[str]:
    """Names certainly unbound in `probe`'s frame when its line is about to run: no path through the
    frame to that line binds them (neural.constraints.may_be_bound over the line's predecessors)."""
    info = static.functions.get(probe.func)
    before = static.predecessors(probe.func, probe.line)
    if info is None or not info.function or before is None or not before:
        return frozenset()
    bound: set[str] = set()
    for line in before:
        names = may_be_bound(static, probe.func, line)  # (its call line: the parameters, and no more)
        if names is None:
            return frozenset()
        bound |= names
    return frozenset(info.names - bound)


def _kept_since_call(static: StaticCode, current: State, info: CodeInfo) -> dict[str, str]:
    """The parameters that no line of `current`'s function can have changed since its call, with their
    values: never rebound nor deleted (tracer.plan's store analysis, over every line), and holding a value
    that only rebinding changes, or one no line can change in place (neural.constraints.changeable)."""
    table = static.effects(info.qualname)
    if table is None or current.event in OPEN_EVENTS:
        return {}
    stores: set[str] = set()
    for effect in table.values():
        stores |= effect.stores
    out: dict[str, str] = {}
    for name in info.params:
        text = current.locals.get(name)
        if text is None or name in stores or name in info.cells:
            continue
        if not fixed_text(text):
            lines = [line for line in info.lines if line not in info.calls]
            at = [replace(current, event="line", line=one) for one in lines]
            frees = [changeable(static, state, "step_over") for state in at]
            if any(free is None or name in free for free in frees):
                continue
        out[name] = text
    return out


def frame_plan(
    frame: Iterable[tuple[str, str | None]],
    event: str,
    value: str | None,
    base: Mapping[str, str] | None = None,
    carry: Mapping[str, str] | None = None,
) -> BodyPlan:
    """The plan of a state whose locals the code decided (neural.flow: a caller after its callee returned,
    a key lambda's steps): each name in order, its text fixed where known, the model's where not; the
    value if it returns. `base`: the previous locals when the state is written as a diff against them."""
    plan = BodyPlan()
    plan.value = "required" if event in ("return", "yield", "exception", "handled") else "forbidden"
    plan.value_text = value
    plan.base = base
    plan.carry = carry
    for name, text in frame:
        if text is None:
            choice = Choice(same=base is not None and name in base)
        elif base is not None and base.get(name) == text:
            choice = Choice(same=True, free=False)
        else:
            choice = Choice(text=text, free=False)
        plan.slots.append((name, True, choice))
    return plan


def _frame_order(info: CodeInfo) -> list[str]:
    """The order a frame of this code lists its locals in (variables, then cells, then free variables)."""
    out: list[str] = []
    for code in info.codes[:1]:
        for name in (*code.co_varnames, *code.co_cellvars, *code.co_freevars):
            if name not in out:
                out.append(name)
    return out


def _ordered(info: CodeInfo, previous: State) -> list[str]:
    """The frame's names, those of the previous state first (a likely order for the model to follow)."""
    first = [name for name in previous.locals if name in info.names]
    return first + sorted(info.names - set(first))


# -- the grammar ---------------------------------------------------------------------------------------------
def _quoted(text: str) -> str:
    return json.dumps(escape(text), ensure_ascii=False)


class BodyGrammar:
    """A character automaton accepting exactly the bodies a plan allows (see the module docstring).

    A set of states is advanced over the characters of a token; the token fits when the set stays
    non-empty. States are tuples: ("lit", alternatives, typed), ("str", ctx), ("esc", ctx),
    ("hex", ctx, left), ("after",), ("val0",), ("val",), ("fval", typed).
    """

    def __init__(self, plan: BodyPlan) -> None:
        self.plan = plan
        self.keys = {name: _quoted(name) for name, _r, _c in plan.slots} | {n: _quoted(n) for n in plan.pool}
        self.forced_value = None if plan.value_text is None else escape(plan.value_text)

    def start(self) -> frozenset[tuple[Any, ...]]:
        ctx = (0, frozenset[str]())
        alts: list[tuple[str, tuple[Any, ...]]] = [
            ("{" + self.keys[name] + ": ", ("key", name, nxt)) for name, nxt in self._next_keys(ctx)
        ]
        if self._can_close(ctx):
            alts.append(("{}", ("close",)))
        return frozenset({("lit", tuple(alts), 0)})

    def _next_keys(self, ctx: tuple[int, frozenset[str]]) -> Iterable[tuple[str, tuple[int, frozenset[str]]]]:
        index, used = ctx
        slots = self.plan.slots
        for j in range(index, len(slots)):
            name, required, _choice = slots[j]
            yield name, (j + 1, used)
            if required:
                return
        for name in self.plan.pool:
            if name not in used:
                yield name, (len(slots), used | {name})

    def _can_close(self, ctx: tuple[int, frozenset[str]]) -> bool:
        return not any(required for _n, required, _c in self.plan.slots[ctx[0]:])

    def _choice(self, name: str) -> Choice:
        for slot, _required, choice in self.plan.slots:
            if slot == name:
                return choice
        return self.plan.pool[name]

    def _expand(self, outcome: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        kind = outcome[0]
        if kind == "key":
            _k, name, ctx = outcome
            choice = self._choice(name)
            alts: list[tuple[str, tuple[Any, ...]]] = []
            if choice.same:
                alts.append(('"' + SAME_CHAR + '"', ("done", ctx)))
            if choice.text is not None:
                alts.append((_quoted(choice.text), ("done", ctx)))
            if choice.free:
                alts.append(('"', ("open", ctx)))
            return [("lit", tuple(alts), 0)]
        if kind == "done":
            ctx = outcome[1]
            alts = [(", " + self.keys[name] + ": ", ("key", name, nxt)) for name, nxt in self._next_keys(ctx)]
            if self._can_close(ctx):
                alts.append(("}", ("close",)))
            return [("lit", tuple(alts), 0)]
        if kind == "open":
            return [("str", outcome[1])]
        return [("after",)]  # close

    def _step(self, state: tuple[Any, ...], ch: str) -> list[tuple[Any, ...]]:
        kind = state[0]
        if kind == "lit":
            _k, alts, typed = state
            out: list[tuple[Any, ...]] = []
            rest = []
            for text, outcome in alts:
                if len(text) > typed and text[typed] == ch:
                    if len(text) == typed + 1:
                        out.extend(self._expand(outcome))
                    else:
                        rest.append((text, outcome))
            if rest:
                out.append(("lit", tuple(rest), typed + 1))
            return out
        if kind == "str":
            if ch == '"':
                return self._expand(("done", state[1]))
            if ch == "\\":
                return [("esc", state[1])]
            return [] if ch < " " or ch in _PSEUDO else [state]
        if kind == "esc":
            if ch in '"\\/bfnrt':
                return [("str", state[1])]
            return [("hex", state[1], 4)] if ch == "u" else []
        if kind == "hex":
            if ch not in _HEX:
                return []
            return [("str", state[1])] if state[2] == 1 else [("hex", state[1], state[2] - 1)]
        if kind == "after":
            if ch != VALUE_CHAR or self.plan.value == "forbidden":
                return []
            return [("fval", 0)] if self.forced_value is not None else [("val0",)]
        if kind == "fval":
            forced = self.forced_value or ""
            typed = state[1]
            return [("fval", typed + 1)] if typed < len(forced) and forced[typed] == ch else []
        return [] if ch in _PSEUDO else [("val",)]  # val0, val

    def advance(self, states: frozenset[tuple[Any, ...]], text: str) -> frozenset[tuple[Any, ...]]:
        """The states after `text` (empty: `text` cannot continue the body)."""
        current = states
        for ch in text:
            nxt: set[tuple[Any, ...]] = set()
            for state in current:
                nxt.update(self._step(state, ch))
            if not nxt:
                return frozenset()
            current = frozenset(nxt)
        return current

    def forced(self, states: frozenset[tuple[Any, ...]]) -> tuple[str, frozenset[tuple[Any, ...]], bool]:
        """The text every body continuing from `states` writes next, the states after it, and whether the
        body must end there (nothing else can follow). The text stops where the plan leaves a choice."""
        text = ""
        current = states
        while len(current) == 1:
            (state,) = current
            if state[0] == "lit" and len(state[1]) == 1:
                piece = state[1][0][0][state[2]:]
            elif state[0] == "fval" and state[1] < len(self.forced_value or ""):
                piece = (self.forced_value or "")[state[1]:]
            else:
                break
            after = self.advance(current, piece)
            if not after:  # (cannot happen: the piece is the automaton's own)
                break
            text += piece
            current = after
        ends = all(
            (s[0] == "fval" and s[1] == len(self.forced_value or ""))
            or (s[0] == "after" and self.plan.value == "forbidden")
            for s in current
        )
        return text, current, ends

    def complete(self, states: frozenset[tuple[Any, ...]]) -> bool:
        """Whether the body may end here."""
        for state in states:
            if state[0] == "after" and self.plan.value != "required":
                return True
            if state[0] == "val":
                return True
            if state[0] == "fval" and state[1] == len(self.forced_value or ""):
                return True
        return False


__all__ = ["SAME_CHAR", "VALUE_CHAR", "BodyGrammar", "BodyPlan", "Choice", "body_plan"]
