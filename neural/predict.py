"""Predicting the next debugger state with a trained model: incremental decoding over a KV cache, constrained.

A `Predictor` keeps one running text in the model's KV cache: the code, a full state, then actions and the
states predicted after them, in the training format (neural.textformat). `predict(action)` appends the
action and decodes the next state:

1. the header `EVENT LINE DEPTH FUNC` token by token, each token the most likely one that keeps the header a
   prefix of an allowed header (neural.constraints.allowed_headers: real code objects, lines they hold,
   successors in the control flow graph, depths the action can reach);
2. the source line, copied from the code rather than predicted (it is derived data in the format);
3. the locals and value, until <|action|> or <|end|>; the result must parse (JSON of reprs, <|same|> only
   where the format allows it) and pass check_state.

A state that fails is decoded again by sampling (seeded) up to `retries` times; if every try fails the
state is *flagged*: the constrained header with the locals that could be read (or the previous frame's),
never an exception. When the text would outgrow the model's context, it restarts from the code and the
latest state written in full, as training examples start. Only the new tokens of each step run through
the model: one forward pass per generated token, the forced source line in one pass.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from neural.bodies import SAME_CHAR, VALUE_CHAR, BodyGrammar, BodyPlan, body_plan, frame_plan
from neural.constraints import (
    VALUE_EVENTS,
    CodeError,
    HeaderSet,
    StaticCode,
    allowed_headers,
    check_state,
    compact_code,
    fallback_locals,
    header,
    is_repr,
)
from neural.flow import Decision, FlowMemory
from neural.textformat import (
    ACTION,
    CODE,
    END,
    LOCALS,
    PAD,
    SAME,
    SRC,
    STATE,
    VALUE,
    FormatError,
    escape,
    is_diff,
    parse_state,
    serialize_action,
    serialize_code,
    serialize_state,
    source_line,
    unescape,
)
from neural.trajectory import CLOSE_EVENTS, Action, State


class PredictError(Exception):
    """The model cannot be used for this code (too long for its context, not compilable, no model)."""


class LanguageModel(Protocol):
    """A causal LM with a cache: feed tokens, get the next token's scores; crop to go back."""

    context: int  # longest sequence the model reads

    @property
    def length(self) -> int:
        """Tokens in the cache."""
        ...

    def reset(self) -> None: ...

    def feed(self, ids: Sequence[int]) -> Any:
        """Append tokens; the scores (logits) of the token after them: a list of floats or a 1-D tensor."""
        ...

    def crop(self, length: int) -> None:
        """Forget everything after the first `length` tokens."""
        ...


class CachedModel:
    """A transformers causal LM behind the LanguageModel protocol, with a DynamicCache kept between calls."""

    def __init__(self, model: Any, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.model = model.eval()
        self.device = next(model.parameters()).device
        config = model.config
        self.context = int(getattr(config, "max_position_embeddings", 512) or 512)
        self._torch = torch
        # transformers 5.x renamed the forward's cache argument from past_key_values to cache.
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )
        self._cache: Any = None
        self._length = 0

    @property
    def length(self) -> int:
        return self._length

    def reset(self) -> None:
        self._cache = None
        self._length = 0

    def feed(self, ids: Sequence[int]) -> Any:
        torch = self._torch
        from transformers import DynamicCache

        if not ids:
            raise ValueError("nothing to feed")
        if self._cache is None:
            self._cache = DynamicCache()
        with torch.inference_mode():
            tensor = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            out = self.model(input_ids=tensor, use_cache=True, **{self._cache_arg: self._cache})
        # The DynamicCache passed in is updated in place (reading it back from `out` warns in transformers 5).
        self._length += len(ids)
        return out.logits[0, -1].float()  # a tensor: ordering it in C is much cheaper than in Python

    def crop(self, length: int) -> None:
        if length >= self._length:
            return
        if length <= 0 or self._cache is None:
            self.reset()
            return
        self._cache.crop(length - self._length)  # a negative count removes that many tokens (all versions)
        self._length = length


@dataclass(frozen=True, slots=True)
class Prediction:
    """One predicted state and how it was obtained."""

    state: State
    action: Action
    valid: bool  # False: every try failed a check and the state was patched up (see `problem`)
    problem: str | None  # why the state is flagged: the check its last try failed (None when valid)
    tries: int
    tokens: int  # tokens generated (not counting the forced source line)
    seconds: float


class Predictor:
    """Predicts states one action at a time for one piece of code, reusing the KV cache between steps."""

    def __init__(
        self,
        lm: LanguageModel,
        tokenizer: Any,
        *,
        retries: int = 2,
        seed: int = 0,
        max_state_tokens: int | None = None,
        walk: int = 0,
    ) -> None:
        self.lm = lm
        self.walk = walk  # step_return/breakpoint taken step by step, up to this many steps (0: one jump)
        self.sampling = False  # sample every prediction (seeded) instead of greedy decoding
        self.ahead = True  # feed what the constraints decide in one model call (False: token by token)
        self._walk_start: State | None = None
        self.tokenizer = tokenizer
        self.retries = retries
        self.rng = random.Random(seed)
        self.max_state_tokens = max_state_tokens or max(64, min(384, lm.context // 3))
        vocab = len(tokenizer)
        self.token_text = [tokenizer.decode([i]) for i in range(vocab)]
        ids = {
            name: tokenizer.convert_tokens_to_ids(name)
            for name in (PAD, CODE, STATE, SRC, LOCALS, VALUE, ACTION, END, SAME)
        }
        self.special = ids
        self.stop_ids = frozenset({ids[ACTION], ids[END]})
        self.banned_in_body = frozenset({ids[PAD], ids[CODE], ids[STATE], ids[SRC], ids[LOCALS]})
        self.special_ids = frozenset(ids.values()) | frozenset(tokenizer.all_special_ids)
        self._trie: dict[str, Any] | None = None
        self._reserve = self.max_state_tokens  # tokens kept free for the next prediction (see _restart)
        self.grammar_text = list(self.token_text)  # token texts as the body grammar reads them
        for other in self.special_ids - set(ids.values()):
            self.grammar_text[other] = ""  # a foreign tokenizer's own special tokens never fit a body
        self.grammar_text[ids[SAME]] = SAME_CHAR
        self.grammar_text[ids[VALUE]] = VALUE_CHAR
        self.code = ""
        self.static: StaticCode | None = None
        self._code_ids: list[int] = []
        self.state: State | None = None  # the latest state in the running text
        self.flow: FlowMemory | None = None  # the predicted run's loops, for branches the code decides
        self._repaired = False
        self._to_model: dict[int, int] = {}  # original line -> line in the (shortened) code the model reads
        self._from_model: dict[int, int] = {}

    @classmethod
    def from_path(cls, path: str, *, threads: int | None = None, **kwargs: Any) -> Predictor:
        """A predictor for a saved model directory (the tokenizer saved beside it)."""
        from neural.model import load_model
        from neural.tokenizer import load_tokenizer

        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            tokenizer = load_tokenizer(path)
            model = load_model(path)
        except (OSError, ValueError) as exc:
            raise PredictError(f"cannot load the model in {path}: {str(exc).splitlines()[0]}") from None
        return cls(CachedModel(model, threads=threads), tokenizer, **kwargs)

    # -- the running text ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def begin(self, code: str, state: State) -> None:
        """Start a new text: the code, then `state` in full (the state the first action starts from).

        Code that takes more than half of the context is shown in part, without the lines that cannot
        matter to `state`'s function (docstrings, functions it never names, the `__main__` block); the
        model then works in that shorter code's line numbers; states are translated on the way in and out.
        """
        try:
            self.static = StaticCode.from_source(code)
        except CodeError as exc:
            raise PredictError(str(exc)) from None
        self.code = code
        self._to_model, self._from_model = {}, {}
        self._code_ids = self.encode(serialize_code(code))
        state_tokens = len(self.encode(serialize_state(code, state)))
        # Shortened when it does not fit, or when it would leave less than half the window for the steps.
        if len(self._code_ids) + state_tokens > self._room() or len(self._code_ids) > self._room() // 2:
            text, kept = compact_code(code, state.func)
            size = len(self.encode(serialize_code(text)))
            if size + state_tokens > self._room() or size > 3 * self._room() // 4:
                text, kept = compact_code(code, state.func, callers=False)  # its callers do not fit too
            try:
                static = StaticCode.from_source(text)
            except CodeError:
                static = None  # cannot happen for whole statements removed; keep the full code if it does
            if static is not None:
                self.static, self.code = static, text
                self._from_model = dict(enumerate(kept, 1))
                self._to_model = {old: new for new, old in self._from_model.items()}
                self._code_ids = self.encode(serialize_code(text))
        self._restart(self._in(state))
        self.flow = FlowMemory(self.static)
        assert self.state is not None
        self.flow.safe_observe(self.state)

    def _in(self, state: State) -> State:
        """A state in the model's line numbers (those of the code it reads)."""
        return replace(state, line=self._to_model.get(state.line, state.line)) if self._to_model else state

    def _out(self, state: State) -> State:
        if not self._from_model:
            return state
        return replace(state, line=self._from_model.get(state.line, state.line))

    def _room(self, reserve: int | None = None) -> int:
        return self.lm.context - (self.max_state_tokens if reserve is None else reserve) - 16

    def _restart(self, state: State) -> None:
        """Start the text again: the code, then `state` in full. When that leaves less than the usual
        room for a prediction, the room shrinks to what a state of this size needs (its tokens and 48);
        a state still too big is shown with its long reprs cut (as the recorder cuts them), then without
        locals: the prediction goes on rather than stopping (the decoder reads names it keeps, and their
        values, from the state itself, not from the cut text)."""
        for shown in (state, _shortened(state, 40), _shortened(state, 12), replace(state, locals={})):
            state_ids = self.encode(serialize_state(self.code, shown))
            ids = self._code_ids + state_ids
            self._reserve = min(self.max_state_tokens, max(64, len(state_ids) + 48))
            if len(ids) <= self._room(self._reserve):
                break
        if len(ids) > self._room(self._reserve):
            raise PredictError(
                f"the code and its state take {len(ids)} tokens, more than the model's context allows "
                f"({self.lm.context} tokens, {self._reserve} kept for the prediction)"
            )
        self.lm.reset()
        self.lm.feed(ids)
        self.state = state

    def predict(self, action: Action, previous: State | None = None) -> Prediction:
        """The state after `action` from the latest state (or from `previous`, which restarts the text).

        With `walk` > 0, step_return and breakpoint are taken as the debugger takes them on a predicted
        timeline: one predicted step at a time (step_over to the frame's return; step_into to the line),
        so that every step the code decides (neural.flow, neural.exact) is exact on the way. After `walk`
        steps without arriving, the action is predicted in one jump from where it started.
        """
        if self.static is None:
            raise PredictError("begin() must be called first")
        if self.walk > 0 and action.name in ("step_return", "breakpoint"):
            walked = self._walk(action, previous)
            if walked is not None:
                return walked
            previous = self._walk_start  # not there within the limit: from the start, in one jump
        return self._predict(action, previous)

    def _walk(self, action: Action, previous: State | None) -> Prediction | None:
        started = time.perf_counter()
        if previous is not None and self._in(previous) != self.state:
            self._jump_to(self._in(previous))
        assert self.state is not None
        start = self._out(self.state)
        self._walk_start = start
        if action.name == "step_return" and start.event in CLOSE_EVENTS:
            return None  # the caller's return: a jump over code the run has not seen
        step = Action("step_over" if action.name == "step_return" else "step_into")
        tokens = 0
        for _ in range(self.walk):
            got = self._predict(step)
            tokens += got.tokens
            state = got.state
            if action.name == "step_return":
                arrived = state.event in CLOSE_EVENTS and state.depth <= start.depth
                arrived = arrived or state.depth < start.depth
            else:
                arrived = state.event == "line" and state.line == action.line
                arrived = arrived or (state.event in CLOSE_EVENTS and state.depth <= 0)  # the program ended
            if arrived:
                seconds = time.perf_counter() - started
                return Prediction(state, action, got.valid, got.problem, got.tries, tokens, seconds)
            if state.event in CLOSE_EVENTS and state.depth < start.depth:
                break
        self._jump_to(self._in(start))
        return None

    def _jump_to(self, state: State) -> None:
        """Restart the text from `state` (model line numbers): the run's loops seen so far are forgotten."""
        self._restart(state)
        if self.flow is not None:
            self.flow.forget()
            self.flow.safe_observe(state)

    def _predict(self, action: Action, previous: State | None = None) -> Prediction:
        assert self.static is not None
        started = time.perf_counter()
        if previous is not None and self._in(previous) != self.state:
            self._jump_to(self._in(previous))
        if action.name == "breakpoint" and self._to_model:
            action = Action("breakpoint", self._to_model.get(action.line, action.line))
        assert self.state is not None
        previous = self.state
        prompt = [*self.encode(serialize_action(action)), self.special[STATE]]
        if self.lm.length + len(prompt) + self._reserve >= self.lm.context:
            self._restart(previous)  # the window is full: code + latest full state, as in training
        logits = self.lm.feed(prompt)
        base = self.lm.length
        allowed = allowed_headers(self.static, previous, action)
        decided = None
        decision: Decision | None = None
        if action.name in ("step_into", "step_over") and self.flow is not None:
            decision = self.flow.safe_decide(previous)
            if action.name == "step_over" and decision is not None:
                try:
                    decision = self.flow.decide_over(previous, decision)
                except Exception:  # (as safe_decide: this module's own reasoning failing means "not decided")
                    decision = None
            if decision is not None:
                allowed = _decided_headers(allowed, previous, decision)
                decided = decision.values
        problem: str | None = None
        tokens = 0
        head = ""
        parsed: State | None = None
        plan: BodyPlan | None = None
        tries = 0
        for attempt in range(self.retries + 1):
            tries = attempt + 1
            self._repaired = False
            if attempt:
                self.lm.crop(base)
            head, after_head, used = self._decode_header(logits, allowed, sample=attempt > 0 or self.sampling)
            tokens += used
            probe = _probe(head)
            same_line = decision is not None and probe.event == "line" and (probe.func, probe.depth) == (
                previous.func, previous.depth) and decision.frame is None
            if decision is not None and decision.frame is not None and (
                probe.event, probe.line, probe.depth, probe.func
            ) == (decision.event, decision.only, decision.depth, decision.func):
                diff_base = previous.locals if is_diff(previous, action, probe) else None
                plan = frame_plan(decision.frame, probe.event, decision.value, diff_base, decision.carry)
            else:
                plan = body_plan(
                    self.static, previous, action, probe, decided if same_line else None,
                    keep_rest=same_line and decision is not None and decision.keep_rest,
                )
            body, used = self._decode_body(after_head, BodyGrammar(plan), sample=attempt > 0 or self.sampling)
            tokens += used
            parsed, problem = self._read(head, body, previous, action, allowed)
            if problem is None:
                break
        assert head and plan is not None
        if parsed is None or problem is not None or self._repaired:
            if parsed is None or problem is not None:
                parsed = self._patch(head, parsed, previous, plan)
            self.lm.crop(base)  # the running text gets the state as training would have written it
            self.lm.feed(self.encode(serialize_state(self.code, parsed, previous, action)[len(STATE) :]))
        self.state = parsed
        if self.flow is not None:
            if action.name not in ("step_into", "step_over"):
                self.flow.forget()  # a jump: loops seen from here on start unknown
            self.flow.safe_observe(parsed)
        if action.name == "breakpoint" and self._from_model:
            action = Action("breakpoint", self._from_model.get(action.line, action.line))
        return Prediction(
            self._out(parsed),
            action,
            problem is None,
            problem,
            tries,
            tokens,
            time.perf_counter() - started,
        )

    # -- decoding --------------------------------------------------------------------------------------------
    def _fitting(self, grammar: BodyGrammar, states: frozenset[tuple[Any, ...]]) -> list[int]:
        """Every token that can continue the body: a walk of the token-text trie pruned by the grammar."""
        if self._trie is None:
            self._trie = {}
            for t, text in enumerate(self.grammar_text):
                if text and t not in self.stop_ids and t not in self.banned_in_body:
                    node = self._trie
                    for ch in text:
                        node = node.setdefault(ch, {})
                    node.setdefault("", []).append(t)
        found: list[int] = []
        todo: list[tuple[dict[str, Any], frozenset[tuple[Any, ...]]]] = [(self._trie, states)]
        while todo:
            node, current = todo.pop()
            for ch, child in node.items():
                if ch == "":
                    found.extend(child)
                    continue
                after = grammar.advance(current, ch)
                if after:
                    todo.append((child, after))
        return found

    def _choose(self, logits: Any, ok: Any, sample: bool, limit: int | None = None) -> int | None:
        """The best token (or a sampled one among the top 20) that `ok` accepts; None when none does
        (among the `limit` best, when given)."""
        if isinstance(logits, list):
            order = sorted(range(len(logits)), key=logits.__getitem__, reverse=True)
        else:
            order = logits.argsort(descending=True).tolist()
        if limit is not None:
            order = order[:limit]
        if sample:
            pool = [t for t in order[:20] if ok(t)]
            if pool:
                top = float(logits[pool[0]])
                weights = [math.exp((float(logits[t]) - top) / 0.8) for t in pool]
                return self.rng.choices(pool, weights)[0]
        for t in order:
            if ok(t):
                return t
        return None

    def _decode_header(
        self, logits: Any, allowed: HeaderSet, sample: bool
    ) -> tuple[str, Any, int]:
        """Decode `EVENT LINE DEPTH FUNC<|src|>` within `allowed`; also feeds the source line, <|locals|>."""
        src_id = self.special[SRC]
        text = ""
        used = 0
        while True:
            forced = allowed.forced(text)
            if self.ahead and forced in allowed and len(allowed.completions(forced)) == 1:  # decided
                ids = self.encode(forced[len(text):])
                logits = self.lm.feed([*ids, src_id])
                text = forced
                used += len(ids)
                break
            ids = self._ahead(forced[len(text):])
            if ids:
                logits = self.lm.feed(ids)
                text += "".join(self.token_text[t] for t in ids)
                used += len(ids)
            current = text

            def ok(t: int, current: str = current) -> bool:
                if t == src_id:
                    return current in allowed
                if t in self.special_ids:
                    return False
                piece = self.token_text[t]
                return bool(piece) and allowed.has_prefix(current + piece)

            choice = self._choose(logits, ok, sample) if used < 64 else None
            if choice is None:  # no token continues the header (or too long): complete it by hand
                text = (allowed.completions(text) or allowed.items)[0]
                logits = (
                    self.lm.feed([*self.encode(text[len(current) :]), src_id])
                    if text != current
                    else self.lm.feed([src_id])
                )
                break
            used += 1
            if choice == src_id:
                logits = self.lm.feed([src_id])
                break
            text += self.token_text[choice]
            logits = self.lm.feed([choice])
        line = int(text.split(" ", 2)[1])
        source_ids = [*self.encode(escape(source_line(self.code, line))), self.special[LOCALS]]
        logits = self.lm.feed(source_ids)
        return text, logits, used

    def _ahead(self, text: str, whole: bool = False) -> list[int]:
        """The tokens of `text` to feed at once; without `whole`, all but the last one (the model picks
        the tokens at the boundary, which may join the forced text to what follows, as in training).
        Empty when `text` does not split into tokens that spell it out (as grammar_text reads them)."""
        if not text or not self.ahead:
            return []
        ids: list[int] = []
        for n, piece in enumerate(text.split(SAME_CHAR)):
            if n:
                ids.append(self.special[SAME])
            for m, part in enumerate(piece.split(VALUE_CHAR)):
                if m:
                    ids.append(self.special[VALUE])
                if part:
                    ids.extend(self.encode(part))
        if "".join(self.grammar_text[t] for t in ids) != text:
            return []
        return ids if whole else ids[:-1]

    def _decode_body(self, logits: Any, grammar: BodyGrammar, sample: bool) -> tuple[str, int]:
        """Decode the locals and value up to (not including) <|action|> or <|end|>, within `grammar`."""
        out: list[int] = []
        states = grammar.start()
        texts = self.grammar_text
        while len(out) < self.max_state_tokens:
            text, _after, ends = grammar.forced(states)
            if text:  # what the plan decides is written at once, not token by token
                ids = self._ahead(text, whole=ends)
                if ids and len(out) + len(ids) < self.max_state_tokens and (
                    self.lm.length + len(ids) + 1 < self.lm.context
                ):
                    logits = self.lm.feed(ids)
                    out.extend(ids)
                    if ends:  # (whole: `ids` spell all of `text`)
                        break
                    states = grammar.advance(states, "".join(texts[t] for t in ids))
            current = states

            def ok(t: int, current: frozenset[tuple[Any, ...]] = current) -> bool:
                if t in self.stop_ids:
                    return grammar.complete(current)
                if t in self.banned_in_body:
                    return False
                text = texts[t]
                return bool(text) and bool(grammar.advance(current, text))

            choice = self._choose(logits, ok, sample, limit=48)
            if choice is None:  # the model's favourites do not fit: the best of the tokens that do
                fits = self._fitting(grammar, current)
                if grammar.complete(current):
                    fits.extend(self.stop_ids)
                choice = max(fits, key=lambda t: float(logits[t])) if fits else None
            if choice is None or choice in self.stop_ids:
                break
            states = grammar.advance(states, texts[choice])
            out.append(choice)
            if self.lm.length + 1 >= self.lm.context:
                break
            logits = self.lm.feed([choice])
        return self.tokenizer.decode(out), len(out)

    def _read(
        self, head: str, body: str, previous: State, action: Action, allowed: HeaderSet
    ) -> tuple[State | None, str | None]:
        event, line, depth, func = head.split(" ", 3)
        probe = State(event, int(line), int(depth), func, {})
        base = previous if is_diff(previous, action, probe) else None
        try:
            state = parse_state(f"{head}{SRC}{LOCALS}{body}", base)
        except FormatError as exc:
            fixed = _drop_unknown_same(body, base)
            if fixed is None:
                return None, str(exc)
            try:  # repaired: a name marked unchanged that the previous state does not have is dropped
                state = parse_state(f"{head}{SRC}{LOCALS}{fixed}", base)
            except FormatError:
                return None, str(exc)
            self._repaired = True
        return state, check_state(state, allowed)

    def _patch(self, head: str, parsed: State | None, previous: State, plan: BodyPlan) -> State:
        """A usable state from a failed decode: its header, the locals the plan allows (computed, kept,
        readable or copied from the previous state), the computed or readable value or a placeholder."""
        probe = _probe(head)
        locals_ = plan.fallback(previous, fallback_locals(parsed.locals) if parsed is not None else None)
        value = None
        if probe.event in VALUE_EVENTS:
            value = plan.value_text or (
                parsed.value if parsed is not None and parsed.value and is_repr(parsed.value) else "None"
            )
        return replace(probe, locals=locals_, value=value)


def _decided_headers(allowed: HeaderSet, previous: State, decision: Decision) -> HeaderSet:
    """The allowed headers that agree with what the code decides (`allowed` itself if none would)."""
    depth = decision.depth if decision.depth is not None else previous.depth
    func = decision.func if decision.func is not None else previous.func
    if decision.only is not None:
        only = header(decision.event, decision.only, depth, func)
        return HeaderSet([only]) if only in allowed else allowed
    if decision.never is not None:
        never = header("line", decision.never, previous.depth, previous.func)
        kept = [item for item in allowed.items if item != never]
        return HeaderSet(kept) if kept else allowed
    return allowed


def _probe(head: str) -> State:
    """A state with the header's fields and no locals."""
    event, line, depth, func = head.split(" ", 3)
    return State(event, int(line), int(depth), unescape(func), {})


def _shortened(state: State, limit: int) -> State:
    """The state with every repr longer than `limit` cut to `limit` characters and "..."."""
    cut = {k: v if len(v) <= limit else v[:limit] + "..." for k, v in state.locals.items()}
    return replace(state, locals=cut)


def _drop_unknown_same(body: str, base: State | None) -> str | None:
    """The body with `"name": "<|same|>"` entries that `base` cannot fill removed (None if not JSON)."""
    locals_text, sep, value_text = body.partition(VALUE)
    try:
        raw = json.loads(locals_text)
    except json.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    known = base.locals if base is not None else {}
    kept = {k: v for k, v in raw.items() if not (v == SAME and unescape(k) not in known)}
    return json.dumps(kept, ensure_ascii=False) + sep + value_text


__all__ = ["CachedModel", "LanguageModel", "PredictError", "Prediction", "Predictor"]
