"""Bounded, exception-safe encoding of Python values as reprs, with literal (structural) builtins.

An encoded value is what goes in the trace: an ``int`` (64-bit), ``bool`` or finite ``float`` as itself
(its repr is its text: cheaper to record and smaller than the text); a ``str`` when the text is a Python
literal that ``ast.literal_eval`` turns back into an equal value; else a list ``[text, flags]`` (opaque;
bit 0 of flags set when the text was cut at the limit). Compare encodings with ``same_encoding``: ``==``
takes ``1`` for ``True`` and ``0.0`` for ``-0.0``. The text's cost is bounded by the limit, not by the
size of the value.

A builtin container whose text was cut is also recorded whole, by structure, when the encoder has an
object tracker (trace format 5, ``tracer/objects.py``): ``[text, flags, oid]`` with bit 1 of flags set
(FLAG_OBJECT); replay rebuilds the value from the trace's objects column. That costs what changed in it.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import operator
import types
from collections.abc import Callable
from typing import Any


def _load_same_head(value: Any, head: Any) -> Any:
    """The compiled core's head comparison, looked up on first use (tracer.native imports this module to
    check the constants it shares, so this module must not import it at its top)."""
    global _same_head
    from tracer.native import core

    _same_head = getattr(core, "same_head", None)
    if _same_head is None:
        return _python_same_head(value, head)
    return _same_head(value, head)


def _python_same_head(value: Any, head: Any) -> bool:
    elements, length = head
    if length >= 0 and len(value) != length:
        return False
    items = itertools.chain.from_iterable(value.items()) if type(value) is dict else value
    current = list(itertools.islice(items, len(elements)))
    return len(current) == len(elements) and all(map(operator.is_, current, elements))


_same_head: Callable[[Any, Any], Any] | None = _load_same_head


def _load_head_text(value: Any, limit: int) -> Any:
    """The compiled core's head_text (see _load_same_head), looked up on first use."""
    global _head_text
    from tracer.native import core

    _head_text = getattr(core, "head_text", None)
    return _head_text(value, limit) if _head_text is not None else None


# (text, shown, flat) of a container's cut repr, or None (tracer/_core/values.c head_text)
_head_text: Callable[[Any, int], Any] | None = _load_head_text

DEFAULT_LIMIT = 1000
ELLIPSIS = "..."
FLAG_TRUNCATED = 1
FLAG_OBJECT = 2  # [text, flags, oid]: the whole value is object oid of the trace's objects column

# Values of these exact types can only change by rebinding the name: an identity check is enough.
IMMUTABLE_TYPES: frozenset[type] = frozenset(
    {
        int,
        float,
        bool,
        type(None),
        str,
        bytes,
        complex,
        range,
        type,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.ModuleType,
        types.CodeType,
        type(Ellipsis),
        type(NotImplemented),
    }
)
# Exact types whose repr is a literal when their elements' reprs are.
_SCALAR_LITERALS: frozenset[type] = frozenset({int, float, bool, type(None), str, bytes, complex})
_FAST_ELEMENT_TYPES: frozenset[type] = frozenset({int, float, bool, type(None)})
_CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, set, frozenset})
# The collections containers: their repr costs the whole container, so their text is bounded here like a
# builtin's (deque like a list, the others like a dict), and with a tracker they are recorded whole too.
_WRAPPED: frozenset[type] = frozenset(
    {collections.deque, collections.defaultdict, collections.OrderedDict, collections.Counter}
)
_NON_LITERAL_FLOATS = frozenset({"inf", "-inf", "nan"})
_FAST_LEN = 256  # containers up to this size whose elements are plain numbers use the C repr directly

Encoded = str | list[Any] | int | float
NATIVE_INT_MIN, NATIVE_INT_MAX = -(2**63), 2**63 - 1  # what msgpack stores as an int
# The longest repr of a native value (an int64: 20 characters; a float: 24): below these value limits the
# text could need cutting, so the value is stored as text.
NATIVE_INT_LIMIT, NATIVE_FLOAT_LIMIT = 20, 24


def native(value: object, limit: int) -> int | float | None:
    """value itself when it is stored as itself (an int64, a bool, a finite float), else None."""
    t = type(value)
    if t is bool:
        return value  # type: ignore[return-value]
    if t is int:
        if limit >= NATIVE_INT_LIMIT and NATIVE_INT_MIN <= value <= NATIVE_INT_MAX:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        return None
    if t is float and limit >= NATIVE_FLOAT_LIMIT and math.isfinite(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    return None


def same_encoding(a: object, b: object) -> bool:
    """True when two encodings stand for the same text (type-exact: 1 is not True, 0.0 is not -0.0)."""
    if type(a) is not type(b) or a != b:
        return False
    return type(a) is not float or math.copysign(1.0, a) == math.copysign(1.0, b)  # type: ignore[arg-type]


def is_immutable(value: object) -> bool:
    """True when only rebinding can change the value's repr (so identity checks suffice)."""
    t = type(value)
    if t in IMMUTABLE_TYPES:
        return True
    if t is tuple or t is frozenset:
        if len(value) > 64:  # type: ignore[arg-type]
            return False
        return all(type(x) in IMMUTABLE_TYPES for x in value)  # type: ignore[attr-defined]
    return False


class _Budget(Exception):
    """Raised inside the slow encoder when the text reached the limit."""


class ValueEncoder:
    """Turns values into bounded reprs; never raises, never lets the program see an exception."""

    __slots__ = ("last_head", "limit", "tracker", "walk_head")

    def __init__(self, limit: int = DEFAULT_LIMIT, tracker: Any = None) -> None:
        self.limit = max(limit, 16)
        # An ObjectTracker (tracer/objects.py): cut builtin containers are recorded by structure too.
        self.tracker = tracker
        self.walk_head: tuple[list[Any], int] | None = None  # with a tracker: the head of a walked text
        # After encoding a container of immutable elements: (elements, length). The elements are those
        # the text depends on (keys and values alternating for a dict): all of them with the container's
        # length, or just the head of a big container whose text was cut (length -1). Same elements by
        # identity (and same length) => same text, without rendering it again.
        self.last_head: tuple[list[Any], int] | None = None

    def head_unchanged(self, value: Any, head: tuple[list[Any], int] | None) -> bool:
        """True when value still holds exactly the objects of `head` (so its text is unchanged)."""
        if head is None:
            return False
        elements, length = head
        if length < -1:  # a fingerprint of the compiled recorder (tracer/_core/): it checks those itself
            return False
        if _same_head is not None and type(elements) is list:
            return bool(_same_head(value, head))
        return _python_same_head(value, head)

    def encode(self, value: object) -> Encoded:
        self.last_head = None
        t = type(value)
        try:
            if t in _SCALAR_LITERALS:
                as_is = native(value, self.limit)
                if as_is is not None:
                    return as_is
                if t is str or t is bytes:
                    if len(value) > self.limit:  # type: ignore[arg-type]
                        return self._cut(_long_text_repr(value, self.limit))  # type: ignore[arg-type]
                    text = repr(value)
                elif t is int:
                    text = _int_text(value, self.limit)  # type: ignore[arg-type]
                    if text[0] == "<":
                        return [text, 0]
                else:
                    text = repr(value)
                    if (t is float and text in _NON_LITERAL_FLOATS) or (
                        t is complex and ("inf" in text or "nan" in text)
                    ):
                        return [text, 0]
                return text if len(text) <= self.limit else self._cut(text)
            if t in _CONTAINERS or t in _WRAPPED:
                tracker = self.tracker
                if tracker is None:
                    return self._encode_container(value)
                # A tracked container (its text was cut) is compared by the tracker first: when nothing in
                # it changed, or only what lies past the head its text shows, the text is the same.
                shown = tracker.text_of(value)
                oid = None
                if shown is not None:
                    oid = tracker.observe(value, shown)
                    if tracker.text_current(value) or (
                        not tracker.nested_changed and self.head_unchanged(value, shown[1])
                    ):
                        tracker.confirm_text(value)
                        self.last_head = None
                        enc = shown[0]
                        return [enc[0], enc[1] | FLAG_OBJECT, oid]
                self.walk_head = None
                enc = self._encode_container(value)
                if type(enc) is not list or not enc[1] & FLAG_TRUNCATED:
                    return enc  # short enough to show whole: its text is all of it
                # Its text is cut: record the whole value by structure (what changed since it was last
                # seen). No head for the recorder: only the tracker can tell whether the rest changed.
                shown = (enc, self.last_head or self.walk_head)
                self.last_head = self.walk_head = None
                if oid is None:
                    oid = tracker.observe(value, shown)
                else:
                    tracker.show(value, shown)
                tracker.confirm_text(value)
                return [enc[0], enc[1] | FLAG_OBJECT, oid]
            text = repr(value)
            if type(text) is not str:
                text = str.__str__(text)  # a str subclass: its own __str__ may do anything
            return [text, 0] if len(text) <= self.limit else self._cut(text)
        except BaseException as exc:  # a raising __repr__ must never reach the program
            if isinstance(exc, KeyboardInterrupt):
                raise
            if issubclass(t, BaseException):
                shown = self._exception_text(value)  # type: ignore[arg-type]
                if shown is not None:
                    return shown
            return [f"<unrepresentable {_type_name(t)}: {type(exc).__name__}>", 0]

    def _exception_text(self, exc: BaseException) -> Encoded | None:
        """Name(args...) of an exception whose repr raised (an int argument too long for str, say)."""
        try:
            if type(exc).__repr__ is not BaseException.__repr__:  # its own repr failed: no stand-in for it
                return None
            args = exc.args
            if type(args) is not tuple:
                return None
            texts = [decode_text(self.encode(arg))[0] for arg in args[:8]]
            self.last_head = None
            text = f"{_type_name(type(exc))}({', '.join(texts)}{', ...' if len(args) > 8 else ''})"
        except Exception:
            return None
        return [text, 0] if len(text) <= self.limit else self._cut(text)

    def _cut(self, text: str) -> list[Any]:
        return [text[: self.limit] + ELLIPSIS, FLAG_TRUNCATED]

    def _encode_container(self, value: Any) -> Encoded:
        if type(value) in _WRAPPED:
            return self._encode_wrapped(value)
        try:
            fast = self._encode_direct(value)
        except ValueError:  # an element's repr refused (an int too long for str): render piece by piece
            self.last_head = None
            fast = None
        if fast is not None:
            return fast
        got = _head_text(value, self.limit) if _head_text is not None else None
        if got is not None:  # builtin values only, cut: written in C up to the limit
            return self._compiled_head(value, got)
        # Slow path: build the repr piece by piece, stopping at the limit.
        parts: list[str] = []
        state = {"size": 0, "literal": True, "top": 0}
        try:
            self._walk(value, parts, state, set())
        except _Budget:
            if self.tracker is not None and type(value) in (list, tuple, dict):
                # The cut text shows the first `top` elements: while they are the same objects and none
                # of them changed in place (the tracker says which did), it is the same text.
                top = int(state["top"])
                items = itertools.chain.from_iterable(value.items()) if type(value) is dict else value
                self.walk_head = (list(itertools.islice(items, 2 * top if type(value) is dict else top)), -1)
            return self._cut("".join(parts))
        text = "".join(parts)
        if len(text) > self.limit:
            return self._cut(text)
        return text if state["literal"] else [text, 0]

    def _compiled_head(self, value: Any, got: tuple[str, int, bool]) -> Encoded:
        """The cut encoding of a container from tracer/_core head_text's (text, shown, flat), with the head
        the Python paths would keep: its first `shown` elements, compared by identity next time when they
        are flat (last_head); when some are containers, only for the object tracker, which says which of
        them changed in place (walk_head, as _walk keeps it)."""
        text, shown, flat = got
        t = type(value)
        if t is dict:
            head: list[Any] | None = [x for kv in itertools.islice(value.items(), shown) for x in kv]
        elif t is list or t is tuple:
            head = list(itertools.islice(value, shown))
        else:
            head = None  # (a set's head is never kept)
        if head is not None and flat:
            self.last_head = (head, -1)
        elif head is not None and self.tracker is not None:
            self.walk_head = (head, -1)
        return self._cut(text)

    def _encode_wrapped(self, value: Any) -> Encoded:
        """A deque, defaultdict, OrderedDict or Counter: its repr when that is short (it is then bounded:
        its items' text is), else its type's opening and the cut text of its first items: the same text
        as repr cut at the limit (a Counter's most common keys first, as its repr shows them)."""
        t = type(value)
        keep = self.limit // 2 + 1  # more items than that cannot fit (each takes 3 characters or more)
        if t is collections.deque and _head_text is not None:
            got = _head_text(value, self.limit)  # builtin values only, cut: its head written in C (no copy)
            if got is not None:
                self.last_head = self.walk_head = None
                return self._cut(got[0])
        if t is collections.deque:
            body: Any = list(itertools.islice(value, keep))
        elif t is collections.Counter:
            # Its repr lists the keys by count (a stable sort: ties in insertion order); nlargest is that
            # sort's head, at the cost of one pass over the counts (the only O(size) text made here).
            try:
                body = dict(heapq.nlargest(keep, value.items(), key=operator.itemgetter(1)))
            except TypeError:  # counts that do not compare: repr shows insertion order too
                body = dict(itertools.islice(value.items(), keep))
        else:
            body = dict(itertools.islice(value.items(), keep))
        enc = self._encode_container(body)
        self.last_head = self.walk_head = None
        text, _, cut = decode_text(enc)
        if not cut and len(body) == len(value):
            text = repr(value)
            if type(text) is not str:
                text = str.__str__(text)
            return [text, 0] if len(text) <= self.limit else self._cut(text)
        if t is collections.deque:
            opening = "deque("
        elif t is collections.defaultdict:
            factory = decode_text(self.encode(value.default_factory))[0]
            self.last_head = None
            opening = f"defaultdict({factory}, "
        else:
            opening = f"{t.__name__}("
        return self._cut((opening + text)[: self.limit + 1])

    def _encode_direct(self, value: Any) -> Encoded | None:
        """The encoding from builtin reprs of the container or its head, or None for the slow path."""
        n = len(value)
        t = type(value)
        head_len = self.limit // 2  # each element takes at least 3 characters ("0, "): enough to overflow
        if n > head_len and t is not frozenset:
            # Big container: only its head can show in the bounded text. repr of the head is an exact
            # prefix of repr of the whole (same iteration order), so cut it and we are done.
            got = _head_text(value, self.limit) if _head_text is not None else None
            if got is not None:  # written in C up to the limit, with how many elements it shows
                return self._compiled_head(value, got)
            items = value.items() if t is dict else value
            probe = list(itertools.islice(items, 8))
            per_item = max(len(repr(probe)) / max(len(probe), 1), 3.0)
            head_len = min(head_len, int(self.limit / per_item * 1.25) + 8)
            head = list(itertools.islice(items, head_len))
            kinds = set(map(type, head)) if t is not dict else {type(x) for kv in head for x in kv}
            if kinds <= _FAST_ELEMENT_TYPES or (
                kinds <= _SCALAR_LITERALS and _short_strings(head, kinds, self.limit)
            ):
                if t is dict:
                    body = ", ".join([f"{k!r}: {v!r}" for k, v in head])
                    text = "{" + body
                else:
                    text = ("[" if t is list else "(" if t is tuple else "{") + ", ".join(map(repr, head))
                if len(text) > self.limit:
                    if t is dict:
                        self.last_head = ([x for kv in head for x in kv], -1)
                    elif t is not set:
                        self.last_head = (head, -1)
                    return self._cut(text)
        if n <= _FAST_LEN:
            if type(value) is dict:
                kinds = set(map(type, value))
                kinds.update(map(type, value.values()))
            else:
                kinds = set(map(type, value))
            if kinds <= _FAST_ELEMENT_TYPES or (
                kinds <= _SCALAR_LITERALS and _short_strings(value, kinds, self.limit)
            ):
                text = repr(value)
                if t is not frozenset:
                    flat = list(itertools.chain.from_iterable(value.items())) if t is dict else list(value)
                    self.last_head = (flat, n)
                if len(text) > self.limit:
                    return self._cut(text)
                if _no_literal_number(value, kinds, text):
                    return [text, 0]  # inf / nan have no literal form
                return [text, 0] if type(value) is frozenset else text
            nested = _nested_kinds(value, kinds, self.limit)
            if nested is not None:
                # Two levels of small builtin containers (a dict of lists...): the C repr is bounded.
                text = repr(value)
                if len(text) > self.limit:
                    return self._cut(text)
                literal = t is not frozenset and frozenset not in nested and not _no_literal_number(
                    value, nested, text
                )
                return text if literal else [text, 0]
        return None

    def _emit(self, parts: list[str], state: dict[str, Any], piece: str) -> None:
        parts.append(piece)
        state["size"] += len(piece)
        if state["size"] > self.limit:
            raise _Budget

    def _walk(self, value: Any, parts: list[str], state: dict[str, Any], active: set[int]) -> None:
        t = type(value)
        emit: Callable[[str], None] = lambda piece: self._emit(parts, state, piece)  # noqa: E731
        if t not in _CONTAINERS:
            if (t is str or t is bytes) and len(value) > self.limit:
                emit(_long_text_repr(value, self.limit))
                return
            if t not in _SCALAR_LITERALS:
                state["literal"] = False
            try:
                text = _int_text(value, self.limit) if t is int else repr(value)
                if type(text) is not str:
                    text = str.__str__(text)  # a str subclass: its own __str__ may do anything
                if (t is float or t is complex) and ("inf" in text or "nan" in text):
                    state["literal"] = False  # inf / nan have no literal form
                if t is int and text[0] == "<":
                    state["literal"] = False
                emit(text)
            except _Budget:
                raise
            except Exception as exc:
                state["literal"] = False
                emit(f"<unrepresentable {_type_name(t)}: {type(exc).__name__}>")
            return
        if id(value) in active:  # a container that contains itself: repr shows [...]
            state["literal"] = False
            emit("{...}" if t is dict else "(...)" if t is tuple else "[...]")
            return
        active.add(id(value))
        if t is dict:
            emit("{")
            for i, (k, v) in enumerate(value.items()):
                if len(active) == 1:
                    state["top"] = i + 1
                if i:
                    emit(", ")
                self._walk(k, parts, state, active)
                emit(": ")
                self._walk(v, parts, state, active)
            emit("}")
        elif t is list or t is tuple:
            emit("[" if t is list else "(")
            for i, item in enumerate(value):
                if len(active) == 1:
                    state["top"] = i + 1
                if i:
                    emit(", ")
                self._walk(item, parts, state, active)
            emit("]" if t is list else ("," if len(value) == 1 else "") + ")")
        else:  # set / frozenset
            if not value:
                if t is frozenset:
                    state["literal"] = False
                emit("set()" if t is set else "frozenset()")
            else:
                if t is frozenset:
                    state["literal"] = False
                    emit("frozenset(")
                emit("{")
                for i, item in enumerate(value):
                    if i:
                        emit(", ")
                    self._walk(item, parts, state, active)
                emit("}" if t is set else "})")
        active.discard(id(value))


_INT_REPR_BITS = 2000  # ints up to this size (603 digits) convert under any sys.set_int_max_str_digits
_HUGE_INT_BITS = 1 << 24  # beyond (about 5 million digits) even the leading digits cost too much to find
_LOG10_2 = math.log10(2)


def _int_text(value: int, limit: int) -> str:
    """repr(value), or for a long int its first limit+1 digits (a prefix of repr, for the caller to cut).

    str(int) refuses more than sys.get_int_max_str_digits() digits (4300 by default) and costs time
    quadratic in them, so the head is found with one division instead. Where even that cannot be shown,
    the text is a description in angle brackets (not a literal): "<int with N digits>".
    """
    bits = value.bit_length()
    if bits <= _INT_REPR_BITS:
        return repr(value)
    digits = int((bits - 1) * _LOG10_2) + 1  # 2**(bits-1) has this many: value has it or one more
    if bits > _HUGE_INT_BITS:
        return f"<int with about {digits} digits>"
    keep = limit + 1
    shift = max(digits - keep, 0)
    head = abs(value) // 10**shift if shift else abs(value)
    if head >= 10**keep:  # the estimate was one digit short
        head //= 10
        shift += 1
    try:
        text = str(head)
    except ValueError:  # a limit above the interpreter's int digits limit
        return f"<int with {digits + (abs(value) >= 10**digits)} digits>"
    return "-" + text if value < 0 else text


# rec.heads[name] of a value the object tracker records (tracer/objects.py): no fingerprint (one would
# cost a pass over the whole container, and would go stale when the tracker is told of a change by the
# bytecode plan); only the tracker says whether it changed.
HEAD_TRACKED = -4
TRACKED_HEAD: tuple[list[Any], int] = ([], HEAD_TRACKED)
# A tracked container holding no element that can change in place (ObjectTracker.flat): the compiled core
# skips it without a look after a line whose guards held and name other objects (ObjectTracker.untouched).
HEAD_TRACKED_FLAT = -5
TRACKED_FLAT_HEAD: tuple[list[Any], int] = ([], HEAD_TRACKED_FLAT)
_NESTED_BUDGET = 2048  # elements in the inner containers that a direct repr may render


def _nested_kinds(value: Any, kinds: set[type], limit: int) -> set[type] | None:
    """All element types when value is a small container of small builtin containers of scalars (so
    repr() is cheap and its text bounded), else None."""
    if not kinds <= _SCALAR_LITERALS | _CONTAINERS:
        return None
    elements = itertools.chain(value, value.values()) if type(value) is dict else value
    inner = [x for x in elements if type(x) in _CONTAINERS]
    if sum(map(len, inner)) > _NESTED_BUDGET:
        return None
    inner_kinds: set[type] = set()
    text_size = 0
    for x in inner:
        items = list(itertools.chain(x, x.values())) if type(x) is dict else x
        inner_kinds.update(map(type, items))
        if str in inner_kinds or bytes in inner_kinds:
            text_size += sum(len(y) for y in items if type(y) is str or type(y) is bytes)
    if not inner_kinds <= _SCALAR_LITERALS or text_size > 4 * limit:
        return None
    return kinds | inner_kinds


def _no_literal_number(value: Any, kinds: set[type], text: str) -> bool:
    """True when the repr text of value (a container of scalars, or of small containers of scalars: kinds
    are all the element types) shows an inf or nan float, which have no literal form. Floats are looked
    at (a string element 'info' is no reason); a complex only by its text, as the compiled core does."""
    if complex in kinds and ("inf" in text or "nan" in text):
        return True
    if float not in kinds:
        return False
    stack = [value]
    while stack:
        v = stack.pop()
        for x in itertools.chain(v, v.values()) if type(v) is dict else v:
            if type(x) is float:
                if not math.isfinite(x):
                    return True
            elif type(x) in _CONTAINERS:
                stack.append(x)
    return False


def _long_text_repr(value: str | bytes, limit: int) -> str:
    """A prefix of repr(value) at least limit+1 long, without rendering all of a long string.

    repr picks double quotes only when the text has a ' and no ": the choice depends on the whole value,
    so check that (memchr-fast) and force the same choice on the prefix."""
    head = value[: limit + 1]
    text = repr(head)
    quote, other = ("'", '"') if isinstance(value, str) else (b"'", b'"')
    whole_double = quote in value and other not in value  # type: ignore[operator]
    head_double = text.endswith('"')
    if head_double and not whole_double:
        # The full value has a " later on: repr uses single quotes and escapes the ' characters.
        text = repr(head + other)[:-2] + "'"  # type: ignore[operator]
    return text


def _short_strings(value: Any, kinds: set[type], limit: int) -> bool:
    """True when every str/bytes element (and dict key/value) is short enough for a direct repr."""
    if str not in kinds and bytes not in kinds:
        return True
    items: Any = value
    if type(value) is dict:
        items = list(value)
        items.extend(value.values())
    total = 0
    for item in items:
        if type(item) is str or type(item) is bytes:
            total += len(item)
            if total > limit:
                return False
    return True


def _type_name(t: type) -> str:
    try:
        return t.__qualname__
    except Exception:
        return "object"


def decode_text(encoded: Encoded) -> tuple[str, bool, bool]:
    """(text, literal, truncated) of an encoded value (an object's text: its head, cut at the limit)."""
    t = type(encoded)
    if t is str:
        return encoded, True, False  # type: ignore[return-value]
    if t is int or t is bool or t is float:
        return repr(encoded), True, False
    text, flags = encoded[0], encoded[1]  # type: ignore[index]
    return str(text), False, bool(int(flags) & FLAG_TRUNCATED)


def object_id(encoded: Encoded) -> int | None:
    """The object id of an encoding that stands for a value recorded by structure, else None."""
    if type(encoded) is not list and type(encoded) is not tuple:
        return None
    if len(encoded) < 3 or not int(encoded[1]) & FLAG_OBJECT:
        return None
    oid = encoded[2]
    return oid if type(oid) is int else None
