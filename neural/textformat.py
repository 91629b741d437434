"""The text a model reads and writes: a trajectory as code context, then states and actions between tokens.

Layout (no whitespace is added between fields; special tokens are single tokens of the tokenizer)::

    <|code|>CODE
    <|state|>EVENT LINE DEPTH FUNC<|src|>SOURCE LINE<|locals|>LOCALS JSON[<|value|>VALUE]
    <|action|>ACTION
    <|state|>...
    <|end|>

- CODE is the program's source text (one file).
- EVENT is one of call, line, return, exception, unwind, yield, resume, handled; LINE the line number
  (0 for a module's call); DEPTH the level in the state tree (module code: 0); FUNC the qualified name.
- SOURCE LINE is that line of CODE, stripped of surrounding white space (empty for line 0). It is derived
  from CODE and LINE, so parse ignores it; it lets the model copy the line it predicts.
- LOCALS JSON is a JSON object of repr strings (name -> repr), in the frame's order, taken just before
  the line runs. When the state continues the previous state's frame (same FUNC and DEPTH, the previous
  event is not a close event, this event is line/exception/handled and the action is step_into, step_over,
  step_back or step_back_over) it is a diff: a name whose repr did not change has the value "<|same|>",
  a name that disappeared is absent. Otherwise (after a call, return, breakpoint, continue,
  back_to_call...) every value is written in full.
- <|value|>VALUE appears when the step carries a value: the return value, the yielded value, or the
  exception, as a repr.
- ACTION is step_into, step_over, step_return, breakpoint LINE, continue, step_back, step_back_over or
  back_to_call. The last state is followed by <|end|> instead of an action.

Free text (code, function names, source lines, reprs) never contains a special token: every "<" that is
followed by "|" or by U+200B gets a U+200B inserted after it, and parse removes one U+200B after each "<".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from neural.trajectory import ACTIONS, CLOSE_EVENTS, Action, State, Trajectory

CODE = "<|code|>"
STATE = "<|state|>"
SRC = "<|src|>"
LOCALS = "<|locals|>"
VALUE = "<|value|>"
ACTION = "<|action|>"
END = "<|end|>"
SAME = "<|same|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (PAD, CODE, STATE, SRC, LOCALS, VALUE, ACTION, END, SAME)

_DIFF_ACTIONS = frozenset({"step_into", "step_over", "step_back", "step_back_over"})
_DIFF_EVENTS = frozenset({"line", "exception", "handled"})
_ZWSP = "\u200b"
_ESCAPE = re.compile("<(?=[|\u200b])")
_UNESCAPE = re.compile("<\u200b")


class FormatError(ValueError):
    """Text that is not a serialized trajectory (or state)."""


def escape(text: str) -> str:
    return _ESCAPE.sub("<" + _ZWSP, text)


def unescape(text: str) -> str:
    return _UNESCAPE.sub("<", text)


def source_line(code: str, line: int) -> str:
    lines = code.splitlines()
    return lines[line - 1].strip() if 1 <= line <= len(lines) else ""


def is_diff(previous: State | None, action: Action | None, state: State) -> bool:
    """Whether `state`'s locals are written as a diff against `previous` (see the module docstring)."""
    return (
        previous is not None and action is not None
        and action.name in _DIFF_ACTIONS
        and state.event in _DIFF_EVENTS
        and previous.event not in CLOSE_EVENTS
        and (previous.func, previous.depth) == (state.func, state.depth)
    )


def locals_json(locals_: Mapping[str, str], base: Mapping[str, str] | None) -> str:
    """The locals as JSON; with `base`, values equal to base's are written as the <|same|> marker."""
    # Names and values are escaped one by one so that the marker itself stays a special token.
    shown = {
        escape(name): SAME if base is not None and base.get(name) == text else escape(text)
        for name, text in locals_.items()
    }
    return json.dumps(shown, ensure_ascii=False)


def serialize_action(action: Action) -> str:
    body = f"breakpoint {action.line}" if action.name == "breakpoint" else action.name
    return ACTION + body


def serialize_state(code: str, state: State, previous: State | None = None,
                    action: Action | None = None) -> str:
    """One state's text, from <|state|> up to (not including) the next <|action|> or <|end|>."""
    base = previous.locals if previous is not None and is_diff(previous, action, state) else None
    text = (
        f"{STATE}{state.event} {state.line} {state.depth} {escape(state.func)}"
        f"{SRC}{escape(source_line(code, state.line))}{LOCALS}{locals_json(state.locals, base)}"
    )
    if state.value is not None:
        text += VALUE + escape(state.value)
    return text


def serialize_code(code: str) -> str:
    return CODE + escape(code)


def serialize(trajectory: Trajectory) -> str:
    code = trajectory.code
    parts = [serialize_code(code)]
    previous: State | None = None
    action: Action | None = None
    for i, state in enumerate(trajectory.states):
        parts.append(serialize_state(code, state, previous, action))
        if i < len(trajectory.actions):
            action = trajectory.actions[i]
            parts.append(serialize_action(action))
        previous = state
    parts.append(END)
    return "".join(parts)


def parse_action(body: str) -> Action:
    """An action from the text after <|action|>."""
    words = body.split()
    if len(words) == 2 and words[0] == "breakpoint" and words[1].isdigit():
        return Action("breakpoint", int(words[1]))
    if len(words) == 1 and words[0] in ACTIONS and words[0] != "breakpoint":
        return Action(words[0])
    raise FormatError(f"not an action: {body!r}")


def parse_state(body: str, previous: State | None = None) -> State:
    """A state from the text after <|state|> (up to the next <|action|> or <|end|>).

    <|same|> values are filled in from `previous`; a marker without a previous value is a FormatError.
    """
    head, sep, rest = body.partition(SRC)
    if not sep:
        raise FormatError("a state has no <|src|> field")
    words = head.split(" ", 3)
    if len(words) != 4 or not words[1].isdigit() or not words[2].isdigit():
        raise FormatError(f"a state header must be 'EVENT LINE DEPTH FUNC', not {head!r}")
    event, line, depth, func = words[0], int(words[1]), int(words[2]), unescape(words[3])
    _src, sep, rest = rest.partition(LOCALS)
    if not sep:
        raise FormatError("a state has no <|locals|> field")
    locals_text, sep, value_text = rest.partition(VALUE)
    value = unescape(value_text) if sep else None
    try:
        raw = json.loads(locals_text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"locals are not JSON ({exc.msg})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise FormatError("locals must be a JSON object of strings")
    locals_: dict[str, str] = {}
    for escaped_name, text in raw.items():
        name = unescape(escaped_name)
        if text == SAME:
            if previous is None or name not in previous.locals:
                raise FormatError(f"{name!r} is marked unchanged but has no previous value")
            text = previous.locals[name]
        else:
            text = unescape(text)
        locals_[name] = text
    return State(event, line, depth, func, locals_, value)


def parse(text: str) -> Trajectory:
    """The trajectory of a serialized text (the inverse of serialize)."""
    if not text.startswith(CODE) or not text.endswith(END):
        raise FormatError("a trajectory starts with <|code|> and ends with <|end|>")
    body = text[len(CODE):-len(END)]
    code_text, *state_texts = body.split(STATE)
    if not state_texts:
        raise FormatError("a trajectory has no states")
    code = unescape(code_text)
    states: list[State] = []
    actions: list[Action] = []
    previous: State | None = None
    for i, chunk in enumerate(state_texts):
        state_text, sep, action_text = chunk.partition(ACTION)
        if bool(sep) != (i < len(state_texts) - 1):
            raise FormatError("every state but the last is followed by an action")
        state = parse_state(state_text, previous)
        states.append(state)
        if sep:
            actions.append(parse_action(action_text))
        previous = state
    return Trajectory(code, tuple(states), tuple(actions))
