"""Full-fidelity builtin containers (trace format 5): objects recorded by structure, changed by deltas.

A local's encoding (tracer/values.py) is bounded by the value limit: a list of 200,000 ints shows as
its first thousand characters. So that nothing recorded is lost, a builtin container (list, tuple, dict,
set, frozenset) whose text is cut at the limit is also recorded here, by structure, as an **object**:
its encoding becomes ``[cut text, FLAG_TRUNCATED | FLAG_OBJECT, oid]`` and the object's content goes in
the chunk's objects column, where replay rebuilds it exactly at any step.

Recording (``ObjectTracker``, one per recorder; both cores reach it through the Python encoder, which
handles every container whose text is cut):

- The first time a container is seen it gets an ``oid`` (the same object under two names, in two
  frames, or after a return is one oid: aliasing is kept) and a ``NEW`` op with its whole content.
- Each time the recorder looks at it again (only where the bytecode plan says a line may have changed
  it, and the compiled core's fingerprint did not prove it unchanged), its content is compared with a
  shadow (the element references seen last time) and only what changed is written: for a list one
  ``SPLICE`` (the common prefix and suffix by identity are kept, so an append, a pop, an insert or one
  item assigned costs that item), for a dict ``SET``/``DEL`` per key, for a set ``ADD``/``DISCARD``.
  Elements that are themselves mutable builtin containers are compared by their encoded bytes.
- Numbers, strings, bytes, None and bools are stored as msgpack values (never through repr); a nested
  builtin container is a node ``[type, items]``; an int beyond 64 bits ``[BIGINT, digits]``; anything
  else is its repr, ``[TEXT, text]``, bounded
  by the value limit (that is where ``--value-limit`` still applies).
- Chunk objects column: ``[bases, snaps, ops]``. ``ops`` are ``[offset, oid, op, *args]`` in step order
  (an op at step k is part of the state *at* step k). ``snaps`` {oid: node} is the state at the chunk's
  end of objects that changed, written when an object's deltas since its last snapshot outweigh its size
  or are spread over ``SNAP_EVERY`` chunks. ``bases`` {oid: [chunk, chunk...]} (state at the chunk's start)
  says where each live object's state is found: the first chunk holds its snapshot (or its NEW op), the
  others hold later ops. So a value at any step needs at most ``SNAP_EVERY`` + 1 chunks.
- Memory: the shadow holds one reference per element of each tracked container (8 bytes each, plus the
  encoded bytes of nested mutable containers); an object the program dropped is released at the next
  chunk.

Reading (``ObjectResolver``): ``value(oid, chunk, offset)`` rebuilds the Python value (lists, tuples,
dicts, sets, frozensets of the recorded scalars; ``OpaqueValue`` for a repr) at that step.
"""

from __future__ import annotations

import collections
import itertools
import operator
import sys
from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from tracer.codes import (  # (also re-exported: the format's codes)
    OP_ADD,
    OP_DEL,
    OP_DISCARD,
    OP_NEW,
    OP_SET,
    OP_SPLICE,
    T_BIGINT,
    T_COUNTER,
    T_DEFAULTDICT,
    T_DEQUE,
    T_DICT,
    T_FROZENSET,
    T_LIST,
    T_ORDEREDDICT,
    T_REF,
    T_SET,
    T_TEXT,
    T_TUPLE,
)

_TYPE_CODES: dict[type, int] = {
    list: T_LIST, tuple: T_TUPLE, dict: T_DICT, set: T_SET, frozenset: T_FROZENSET,
    collections.deque: T_DEQUE, collections.defaultdict: T_DEFAULTDICT,
    collections.OrderedDict: T_ORDEREDDICT, collections.Counter: T_COUNTER,
}
CONTAINER_TYPES = frozenset(_TYPE_CODES)
_DICT_CODES = frozenset({T_DICT, T_DEFAULTDICT, T_ORDEREDDICT, T_COUNTER})
_SEQ_CODES = frozenset({T_LIST, T_DEQUE})  # diffed as one splice plus nested elements
# Dicts whose changes the dict watcher sees (an OrderedDict's own order, move_to_end, is not a dict event).
_WATCHABLE = frozenset({T_DICT, T_DEFAULTDICT, T_COUNTER})
_SCATTER_MIN = 64  # a list change spread wider than this may be recorded item by item (_diff_scattered)
SNAP_EVERY = 8  # an object's state is never more than this many chunks of ops away from a snapshot
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_NATIVE = frozenset({int, float, bool, type(None), str, bytes})
_MUTABLE = frozenset({list, dict, set})
_MAX_DEPTH = 64


_STABLE = _NATIVE | {complex, range, type(Ellipsis), type(NotImplemented)}


def _is_nested_mutable(x: object, depth: int = 0) -> bool:
    """True for an element whose recorded form can change without its identity changing (so it is
    compared by its encoding, not by identity): a list, dict or set, a tuple/frozenset holding one, or an
    object that is not a builtin value (its repr, all that is recorded of it, may change)."""
    t = type(x)
    if t in _STABLE:
        return False
    if t is tuple or t is frozenset:
        if depth >= 8:
            return True
        return any(type(y) not in _STABLE and _is_nested_mutable(y, depth + 1) for y in x)  # type: ignore[attr-defined]
    return True


class NodeEncoder:
    """Values into nodes: msgpack-native scalars as themselves, builtin containers as [type, items],
    anything else as [T_TEXT, repr] through the bounded text encoder."""

    __slots__ = ("ref", "text")

    def __init__(
        self, text: Callable[[object], str], ref: Callable[[object], int | None] | None = None
    ) -> None:
        self.text = text
        # The oid of an immutable tuple/frozenset recorded as an object already: referred to, not copied
        # (a tree of tuples built bottom-up then costs each tuple once).
        self.ref = ref

    def node(self, v: object, depth: int = 0, active: set[int] | None = None) -> Any:
        t = type(v)
        if t in _NATIVE:
            if t is int and not _INT_MIN <= v <= _INT_MAX:  # type: ignore[operator]
                text = self.text(v)  # beyond msgpack's ints: its decimal digits, unless cut
                digits = text[1:] if text[:1] == "-" else text
                return [T_BIGINT if digits.isdigit() and digits.isascii() else T_TEXT, text]
            return v
        code = _TYPE_CODES.get(t)
        if code is None:
            return [T_TEXT, self.text(v)]
        if depth >= _MAX_DEPTH:
            return [T_TEXT, "..."]
        if code in (T_TUPLE, T_FROZENSET) and self.ref is not None:
            oid = self.ref(v)
            if oid is not None:
                return [T_REF, oid]
        if active is None:
            active = set()
        if id(v) in active:  # a container inside itself: repr shows [...] / {...}
            return [T_TEXT, "{...}" if t is dict else "[...]" if t is list else "(...)"]
        active.add(id(v))
        try:
            if code in _DICT_CODES:
                node = [code, self.flat_items(v.items(), depth, active)]  # type: ignore[attr-defined]
            else:
                node = [code, self.items(v, depth, active)]  # type: ignore[arg-type]
            if code >= T_DEQUE:
                node.append(self.extra(v, code))
            return node
        finally:
            active.discard(id(v))

    def extra(self, v: Any, code: int) -> Any:
        """The third element of a collections container's node: what its repr shows besides its items."""
        if code == T_DEQUE:
            return v.maxlen
        if code == T_DEFAULTDICT:
            return self.text(v.default_factory)
        return None

    def items(self, values: Iterable[Any], depth: int = 0, active: set[int] | None = None) -> list[Any]:
        seq = values if type(values) is list else list(values)
        kinds = set(map(type, seq))
        if kinds <= _NATIVE and (int not in kinds or not seq or _ints_fit(seq, kinds)):
            return list(seq)  # a copy: the program may change its list before the chunk is packed
        node = self.node
        return [node(x, depth + 1, active) for x in seq]

    def flat_items(
        self, pairs: Iterable[tuple[Any, Any]], depth: int = 0, active: set[int] | None = None
    ) -> list[Any]:
        node = self.node
        out: list[Any] = []
        for k, v in pairs:
            out.append(node(k, depth + 1, active))
            out.append(node(v, depth + 1, active))
        return out


def _ints_fit(seq: list[Any], kinds: set[type]) -> bool:
    if kinds == {int}:
        return min(seq) >= _INT_MIN and max(seq) <= _INT_MAX
    return all(_INT_MIN <= x <= _INT_MAX for x in seq if type(x) is int)


def _packed(node: Any) -> bytes:
    return msgpack.packb(node, use_bin_type=True)


def common_affixes(old: list[Any], new: list[Any] | tuple[Any, ...]) -> tuple[int, int]:
    """(prefix, suffix): how many leading and trailing elements are the same objects in both."""
    if _core_affixes is not None:
        prefix, suffix = _core_affixes(old, new)
        return prefix, suffix
    n, m = len(old), len(new)
    limit = min(n, m)
    prefix = 0
    is_ = operator.is_
    for same in map(is_, old, new):
        if not same:
            break
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[n - 1 - suffix] is new[m - 1 - suffix]:
        suffix += 1
    return prefix, suffix


def changed_positions(old: list[Any], new: list[Any], start: int, stop: int, cap: int) -> list[int] | None:
    """The indices i in [start, stop) where old[i] is not new[i], or None when there are more than cap."""
    if _core_positions is not None:
        found: list[int] | None = _core_positions(old, new, start, stop, cap)
        return found
    out: list[int] = []
    for i in range(start, stop):
        if old[i] is not new[i]:
            if len(out) >= cap:
                return None
            out.append(i)
    return out


try:
    from tracer.native import core as _native_core
except ImportError:  # pragma: no cover - tracer.native always imports
    _native_core = None
_core_affixes = getattr(_native_core, "common_affixes", None)
_core_positions = getattr(_native_core, "changed_positions", None)
# Dict watchers (the compiled core, CPython 3.12+): a tracked dict's changes arrive as they happen.
_dict_watch = getattr(_native_core, "dict_watch", None)
_dict_unwatch = getattr(_native_core, "dict_unwatch", None)
_dict_events = getattr(_native_core, "dict_events", None)
# Fingerprints (the compiled core): a nested element's unchanged content is proved by identities in C.
_fingerprint = getattr(_native_core, "fingerprint", None)
_stale_nested = getattr(_native_core, "stale_nested", None)
if _stale_nested is None:
    _fingerprint = None
_EV_ADDED, _EV_MODIFIED, _EV_DELETED = 0, 1, 2  # PyDict_WatchEvent; CLONED, CLEARED: compare it whole


class _PyEntry:
    """One tracked container: the object, its shadow, and where its recorded state lives. (The compiled
    core has the same class in C, tracer/_core/tracker.c Entry, so that it can record the commonest changes
    itself; the two have the same fields.)"""

    __slots__ = ("base", "code", "dirty", "fps", "keys", "nested", "nested_ids", "obj", "oid", "rescan",
                 "shadow", "shown", "since_snap", "text_version", "touched", "version", "watched")

    def __init__(self, obj: Any, oid: int, code: int) -> None:
        self.obj = obj
        self.oid = oid
        self.code = code
        self.shadow: Any = None  # list of element refs (list/tuple), dict copy, or frozenset copy (set)
        self.keys: list[Any] | None = None  # dict: its keys in order
        self.nested: dict[Any, bytes] = {}  # position or key -> packed node, for nested mutable elements
        # position or key -> (element, its fingerprint, the packed node it was taken with): while
        # nested[key] is still that very bytes object and the element still has that fingerprint (the
        # compiled core checks it by identity, in C), the element is unchanged: no node to pack again.
        self.fps: dict[Any, tuple[Any, Any, bytes]] = {}
        self.nested_ids: set[int] | None = set()  # ids of those elements (None: to be worked out again)
        self.base = -1  # chunk whose snapshot (or NEW op) starts its state
        self.dirty: list[int] = []  # later chunks with ops on it
        self.since_snap = 0  # elements written in ops since its base
        self.touched = False  # ops in the current chunk
        # Ops recorded on it so far, and how many there were when its text (shown) was last made or found
        # still right: equal means nothing changed since. (Per object: one observe() drains the dict
        # watcher's log for every watched dict, so the ops it adds need not be its own.)
        self.version = 0
        self.text_version = 0
        self.shown: Any = None  # (its cut text encoding, the head it was made from) for the value encoder
        self.watched = False  # a dict whose changes the dict watcher logs (then keys is not kept)
        self.rescan = False  # watched, but the log cannot say what changed (cleared, cloned, lost)


_Entry: Any = getattr(_native_core, "Entry", None) or _PyEntry


class ObjectTracker:
    """The recording side: see the module docstring."""

    def __init__(self, text: Callable[[object], str], step: Callable[[], int]) -> None:
        self.nodes = NodeEncoder(text, self._ref_of)
        self.step = step  # the index of the step being recorded
        self.entries: dict[int, _PyEntry] = {}
        self.ops: list[list[Any]] = []  # [step, oid, op, *args] not yet flushed
        self.next_oid = 0
        self.chunk = 0  # number of the chunk being filled
        # Set by the recorder while it rechecks after a line whose effect guards held: the only objects
        # the line can have changed. A nested element that is none of them needs no comparison.
        self.touched: tuple[Any, ...] | None = None
        self.nested_changed = False  # the last observe() found a nested element changed in place
        # An object whose changes were just recorded from the bytecode plan (store_items): the next
        # observe() of it only takes its new text, without comparing it.
        self.in_step: Any = None
        # ids of tracked containers known to equal their shadow now: compared (or recorded from the plan)
        # since the last time code of unknown effect ran. The recorder keeps it true: it empties the set
        # when such code may have run and drops what a line's guards say it changed (the compiled core's
        # settle(), tracer/_core/guards.c; the Python recorder empties it at every step). A container in
        # it is not compared again at its next look, only its nested elements: so a big list passed down a
        # recursion of traced calls costs nothing per call.
        self.settled: set[int] = set()

    # -- observing ------------------------------------------------------------------------------------
    def _ref_of(self, obj: Any) -> int | None:
        """obj's oid when it is a tracked tuple or frozenset that can never change (nothing mutable and no
        object recorded as its repr inside), else None."""
        entry = self.entries.get(id(obj))
        if entry is None or entry.obj is not obj or entry.nested or entry.code not in (T_TUPLE, T_FROZENSET):
            return None
        return entry.oid

    def text_of(self, obj: Any) -> Any:
        """What observe() was last given as obj's text (encoding, head), or None."""
        entry = self.entries.get(id(obj))
        return entry.shown if entry is not None and entry.obj is obj else None

    def show(self, obj: Any, shown: Any) -> None:
        """Keep shown (text encoding, head) as obj's text, for text_of."""
        entry = self.entries.get(id(obj))
        if entry is not None and entry.obj is obj:
            entry.shown = shown

    def text_current(self, obj: Any) -> bool:
        """True when no op was recorded on obj since its text was last made or confirmed."""
        entry = self.entries.get(id(obj))
        return entry is not None and entry.obj is obj and entry.version == entry.text_version

    def confirm_text(self, obj: Any) -> None:
        """obj's text (shown) is right as of now."""
        entry = self.entries.get(id(obj))
        if entry is not None and entry.obj is obj:
            entry.text_version = entry.version

    def observe(self, obj: Any, shown: Any = None) -> int:
        """obj's oid, recording what changed in it since it was last observed (or all of it). shown: the
        value encoder's (text encoding, head) of obj, kept for text_of."""
        entry = self.entries.get(id(obj))
        if entry is None or entry.obj is not obj:
            oid = self._new(obj)
            self.entries[id(obj)].shown = shown
            self.settled.add(id(obj))
            return oid
        entry.shown = shown
        self.nested_changed = False
        if self.in_step is not None:
            in_step, self.in_step = self.in_step, None
            if in_step is obj:
                self.settled.add(id(obj))
                return entry.oid
        code = entry.code
        settled = self.settled
        if id(obj) in settled and code not in _DICT_CODES:
            # Nothing that could change it unseen ran since it was last compared: only a nested element
            # (reachable from elsewhere) can have changed.
            if code in _SEQ_CODES and self._nested_may_change(entry):
                self._diff_nested(entry, entry.shadow, None)
            elif code == T_FROZENSET and self._nested_may_change(entry):
                self._diff_frozen(entry, obj)
            return entry.oid
        settled.add(id(obj))
        if code in _SEQ_CODES:
            self._diff_list(entry, obj)
        elif code in _DICT_CODES:
            if entry.watched:
                self._drain()
                if entry.rescan:
                    entry.rescan = False
                    self._op(entry, OP_NEW, self._take_shadow(entry, obj), size=0)
                    entry.since_snap += len(obj)
                elif self._nested_may_change(entry):
                    self._diff_dict_nested(entry, obj)
            else:
                self._diff_dict(entry, obj)
        elif code == T_SET:
            self._diff_set(entry, obj)
        elif self._nested_may_change(entry):  # a tuple or frozenset: only nested elements can change
            self._diff_frozen(entry, obj)
        return entry.oid

    def _nested_may_change(self, entry: _PyEntry) -> bool:
        """Can a nested mutable element of entry have changed in place since it was last observed?"""
        if not entry.nested:
            return False
        touched = self.touched
        if touched is None:
            return True
        ids = entry.nested_ids
        if ids is None:
            items = entry.shadow if entry.code != T_FROZENSET else list(entry.obj)  # the order of its keys
            ids = entry.nested_ids = {id(items[key]) for key in entry.nested}
        return any(id(t) in ids for t in touched)

    def _op(self, entry: _PyEntry, *args: Any, size: int = 1) -> None:
        self.ops.append([self.step(), entry.oid, *args])
        entry.since_snap += size
        entry.touched = True
        entry.version += 1

    def _drain(self) -> None:
        """Apply the dict watcher's log: each change of a watched dict is an op at the current step (it
        happened before this step, whichever dict the recorder looks at now)."""
        events, lost = _dict_events()  # type: ignore[misc]
        entries = self.entries
        for address, event, key, value in events:
            entry = entries.get(address)
            if entry is None or not entry.watched or entry.rescan:
                continue
            if event in (_EV_ADDED, _EV_MODIFIED):
                self._set_key(entry, key, value)
            elif event == _EV_DELETED:
                if key in entry.shadow:
                    del entry.shadow[key]
                    if entry.nested.pop(key, None) is not None:
                        entry.nested_ids = None
                        entry.fps.pop(key, None)
                    self._op(entry, OP_DEL, self.nodes.node(key))
            else:
                entry.rescan = True
        if lost:
            for entry in entries.values():
                entry.rescan = entry.watched

    def _new(self, obj: Any) -> int:
        oid = self.next_oid
        self.next_oid += 1
        entry = _Entry(obj, oid, _TYPE_CODES[type(obj)])
        self.entries[id(obj)] = entry
        if entry.code in _WATCHABLE and _dict_watch is not None:
            self._drain()  # events of a dict observed before under this address are not this one's
            try:
                _dict_watch(obj)
                entry.watched = True
            except Exception:  # no watcher left (another tool took them all): compare it whole
                entry.watched = False
        node = self._take_shadow(entry, obj)
        entry.base = self.chunk
        entry.dirty = []
        self.ops.append([self.step(), oid, OP_NEW, node])
        entry.since_snap = 0
        entry.touched = True
        return oid

    def _take_shadow(self, entry: _PyEntry, obj: Any) -> Any:
        """Remember obj's current content; returns its node."""
        nodes = self.nodes
        code = entry.code
        entry.nested = {}
        entry.fps = {}
        entry.nested_ids = None
        if code in _DICT_CODES:
            entry.shadow = dict(obj)
            entry.keys = list(entry.shadow)
            items = nodes.flat_items(entry.shadow.items())
            for i, (k, v) in enumerate(entry.shadow.items()):
                if _is_nested_mutable(v):
                    entry.nested[k] = _packed(items[2 * i + 1])
            return [code, items] if code == T_DICT else [code, items, nodes.extra(obj, code)]
        if code in (T_SET, T_FROZENSET):
            entry.shadow = frozenset(obj)
            items = nodes.items(list(obj))
            if code == T_FROZENSET:
                for i, x in enumerate(obj):
                    if _is_nested_mutable(x):
                        entry.nested[i] = _packed(items[i])
            return [code, items]
        entry.shadow = list(obj)
        items = nodes.items(entry.shadow)
        for i, x in enumerate(entry.shadow):
            if type(x) not in _NATIVE and _is_nested_mutable(x):
                entry.nested[i] = _packed(items[i])
        return [code, items, nodes.extra(obj, code)] if code == T_DEQUE else [code, items]

    def _diff_list(self, entry: _PyEntry, obj: Any) -> None:
        """A list's (or deque's) change since last seen: one splice, then its nested elements. A flat list
        changed in a few places far apart (a heap push or pop) is recorded item by item instead."""
        old = entry.shadow
        prefix, suffix = common_affixes(old, obj)
        n, m = len(old), len(obj)
        scattered = type(obj) is list and not entry.nested and min(n, m) - suffix - prefix > _SCATTER_MIN
        if scattered and self._diff_scattered(entry, obj, prefix, n, m):
            return
        if prefix < n or n != m:
            stop_old, stop_new = n - suffix, m - suffix
            if type(obj) is list:
                segment = obj[prefix:stop_new]
            elif suffix < prefix:  # a deque changed nearer its right end: walk it from there
                segment = list(itertools.islice(reversed(obj), suffix, m - prefix))[::-1]
            else:
                segment = list(itertools.islice(obj, prefix, stop_new))
            self._op(entry, OP_SPLICE, prefix, stop_old, self.nodes.items(segment), size=len(segment) + 1)
            old[prefix:stop_old] = segment
            if entry.nested:
                entry.nested_ids = None
                entry.fps = {}  # positions moved
                shift = len(segment) - (stop_old - prefix)
                entry.nested = {
                    (i if i < prefix else i + shift): b
                    for i, b in entry.nested.items()
                    if i < prefix or i >= stop_old
                }
            for i, x in enumerate(segment, prefix):
                if type(x) not in _NATIVE and _is_nested_mutable(x):
                    entry.nested[i] = _packed(self.nodes.node(x))
                    entry.nested_ids = None
        if self._nested_may_change(entry):
            self._diff_nested(entry, old, skip=(prefix, m - suffix) if (prefix < n or n != m) else None)

    def _diff_scattered(self, entry: _PyEntry, obj: list[Any], prefix: int, n: int, m: int) -> bool:
        """SET ops for the positions where obj differs from its shadow, then a splice for what it gained or
        lost at its end, when that is a small part of the splice between the common affixes (no items
        moved); False, recording nothing, when items moved (an insert or a delete: one splice is right)."""
        old = entry.shadow
        overlap = min(n, m)
        window = max(n, m) - prefix
        positions = changed_positions(old, obj, prefix, overlap, window // 8)
        if positions is None:
            return False
        changed = [obj[i] for i in positions]
        tail = obj[n:] if m > n else []
        if any(type(x) not in _NATIVE and _is_nested_mutable(x) for x in (*changed, *tail)):
            return False
        for i, x in zip(positions, changed, strict=True):
            old[i] = x
            self._op(entry, OP_SET, i, self.nodes.node(x))
        if m != n:
            self._op(entry, OP_SPLICE, overlap, n, self.nodes.items(tail), size=len(tail) + 1)
            old[overlap:n] = tail
        return True

    def untouched(self, obj: Any, touched: tuple[Any, ...]) -> bool:
        """True when obj is a tracked container that cannot have changed: it is none of the touched
        objects (all that the line can have changed, its guards held) and holds no element whose recorded
        form can change in place. Its text and content are then what was recorded last."""
        entry = self.entries.get(id(obj))
        if entry is None or entry.obj is not obj or entry.shown is None or entry.nested:
            return False
        return not any(map(operator.is_, touched, itertools.repeat(obj)))

    def flat(self, obj: Any) -> bool:
        """True when obj is tracked, its text is known (shown) and it holds no element whose recorded form
        can change in place: only a change to obj itself can change what is recorded of it."""
        entry = self.entries.get(id(obj))
        return entry is not None and entry.obj is obj and entry.shown is not None and not entry.nested

    def grow(self, obj: list[Any]) -> bool:
        """obj, a tracked list whose text was cut, was at most appended to since it was last observed (the
        bytecode plan and its run-time guards say so: tracer/plan.py LinePlan.appends): record its new tail
        and return True (its text is still the same), or False when observe() must compare it."""
        entry = self._planned_entry(obj)
        if entry is None:
            return False
        old = entry.shadow
        n = len(old)
        if len(obj) < n:
            return False
        if len(obj) > n:
            self._grow_list(entry, obj, n)
        return bool(self._planned_done(entry, obj, in_head=False))  # the tail is past the head its text shows

    def store_items(self, obj: list[Any], indexes: list[Any]) -> bool | None:
        """obj, a tracked list whose text was cut, changed at most at these indexes since it was last
        observed (LinePlan.item_stores and the guards say so): record those items and return True when
        its text is still the same (every index lies past the head it shows); None when they were
        recorded but one lies in the head its text shows (the text must be made again, and observe() will
        not compare the list again: it is in step); False when observe() must compare it."""
        entry = self._planned_entry(obj)
        if entry is None:
            return False
        head = entry.shown[1]
        old = entry.shadow
        n = len(old)
        if head is None or len(obj) != n:
            return False
        shown = len(head[0])
        positions = []
        in_head = False
        for index in indexes:
            if type(index) is not int:
                return False
            i = index + n if index < 0 else index
            if not 0 <= i < n:
                return False
            if i < shown:
                in_head = True
            if type(obj[i]) not in _NATIVE and _is_nested_mutable(obj[i]):
                return False
            positions.append(i)
        for i in sorted(set(positions)):
            x = obj[i]
            if x is not old[i]:
                old[i] = x
                self._op(entry, OP_SET, i, self.nodes.node(x))
        return self._planned_done(entry, obj, in_head)

    def _planned_entry(self, obj: Any) -> _PyEntry | None:
        """obj's entry when the plan's hints may update it in place: it is tracked, its text was cut and
        is known to be right, and it holds no nested mutable element; else None (observe() compares it)."""
        entry = self.entries.get(id(obj))
        if entry is None or entry.obj is not obj or entry.shown is None or entry.nested:
            return None
        return entry if entry.version == entry.text_version else None

    def _planned_done(self, entry: _PyEntry, obj: Any, in_head: bool) -> bool | None:
        """After a plan's hint made obj's shadow exact: None when the change shows in its text (made
        again by the next observe(), which will not compare it: it is in step), else True."""
        if in_head:
            self.in_step = obj
            return None
        entry.text_version = entry.version
        self.settled.add(id(obj))
        return True

    def store_slice(self, obj: list[Any], lo: Any, hi: Any) -> bool | None:
        """obj, a tracked list whose text was cut, changed at most by one slice store obj[lo:hi] = ...
        since it was last observed (LinePlan.slice_stores and the guards say so): when its length is the
        same, record what changed inside the slice only; returns as store_items does."""
        entry = self._planned_entry(obj)
        if entry is None or not (type(lo) is int or lo is None) or not (type(hi) is int or hi is None):
            return False
        head = entry.shown[1]
        old = entry.shadow
        n = len(old)
        if head is None or len(obj) != n:
            return False
        start, stop, _ = slice(lo, hi).indices(n)
        segment = obj[start:stop]
        prefix, suffix = common_affixes(old[start:stop], segment)
        if prefix == len(segment):  # nothing changed (an empty slice too)
            return self._planned_done(entry, obj, in_head=False)
        changed = segment[prefix:len(segment) - suffix]
        if any(type(x) not in _NATIVE and _is_nested_mutable(x) for x in changed):
            return False
        first, last = start + prefix, stop - suffix
        self._op(entry, OP_SPLICE, first, last, self.nodes.items(changed), size=len(changed) + 1)
        old[first:last] = changed
        return self._planned_done(entry, obj, in_head=first < len(head[0]))

    def end_op(self, obj: Any, op: str) -> bool | None:
        """obj, a tracked list or deque whose text was cut, changed at most by calls of one end method
        since it was last observed (LinePlan.end_ops and the guards say so): record the items that left or
        joined at that end, found from its length alone; returns as store_items does."""
        entry = self._planned_entry(obj)
        if entry is None or entry.code not in _SEQ_CODES:
            return False
        head = entry.shown[1]
        old = entry.shadow
        n, m = len(old), len(obj)
        shown = len(head[0]) if head is not None else n + 1  # no head (a deque): its text is made again
        if op == "pop" or op == "popleft":
            if m > n:
                return False
            if m == n:
                return self._planned_done(entry, obj, in_head=False)
            if op == "popleft":
                if m and obj[0] is not old[n - m]:
                    return False
                self._op(entry, OP_SPLICE, 0, n - m, [], size=1)
                del old[: n - m]
                in_head = True
            else:
                if m and obj[-1] is not old[m - 1]:
                    return False
                self._op(entry, OP_SPLICE, m, n, [], size=1)
                del old[m:]
                in_head = m < shown
        else:
            maxlen = getattr(obj, "maxlen", None)
            if m < n or (maxlen is not None and m == maxlen):
                return False  # a full deque(maxlen) drops items at the other end: compare it
            if op == "append":
                if n and obj[n - 1] is not old[n - 1]:
                    return False
                segment = [obj[i] for i in range(n, m)]
                at, in_head = n, n < shown
            else:
                if n and obj[m - n] is not old[0]:
                    return False
                segment = [obj[i] for i in range(m - n)]
                at, in_head = 0, True
            if any(type(x) not in _NATIVE and _is_nested_mutable(x) for x in segment):
                return False
            if segment:
                self._op(entry, OP_SPLICE, at, at, self.nodes.items(segment), size=len(segment) + 1)
                old[at:at] = segment
        return self._planned_done(entry, obj, in_head)

    def _grow_list(self, entry: _PyEntry, obj: list[Any], n: int) -> None:
        old = entry.shadow
        segment = obj[n:]
        self._op(entry, OP_SPLICE, n, n, self.nodes.items(segment), size=len(segment) + 1)
        old.extend(segment)
        for i, x in enumerate(segment, n):
            if type(x) not in _NATIVE and _is_nested_mutable(x):
                entry.nested[i] = _packed(self.nodes.node(x))
                entry.nested_ids = None

    def _remember_nested(self, entry: _PyEntry, key: Any, x: Any, packed: bytes) -> None:
        if _fingerprint is None:
            return
        fp = _fingerprint(x)
        if fp is None:
            entry.fps.pop(key, None)
        else:
            entry.fps[key] = (x, fp, packed)

    def _diff_nested(self, entry: _PyEntry, items: Any, skip: tuple[int, int] | None) -> None:
        """SET ops for nested mutable elements whose content changed in place."""
        fast = _fingerprint is not None
        nested = entry.nested
        stale = _stale_nested if fast else None
        keys = stale(items, nested, entry.fps) if stale is not None and type(items) is list else list(nested)
        for pos in keys:
            before = nested[pos]
            if skip is not None and skip[0] <= pos < skip[1]:
                continue
            x = items[pos]
            node = self.nodes.node(x)
            packed = _packed(node)
            if packed != before:
                entry.nested[pos] = packed
                self.nested_changed = True
                self._op(entry, OP_SET, pos, node, size=max(len(packed) // 8, 1))
            if fast:
                self._remember_nested(entry, pos, x, entry.nested[pos])

    def _diff_dict(self, entry: _PyEntry, obj: dict[Any, Any]) -> None:
        old: dict[Any, Any] = entry.shadow
        keys = entry.keys
        assert keys is not None
        node = self.nodes.node
        if len(obj) == len(old) and list(obj) == keys:
            for k, v, before in zip(keys, obj.values(), old.values()):
                if v is not before:
                    self._set_key(entry, k, v)
            if self._nested_may_change(entry):
                self._diff_dict_nested(entry, obj)
            return
        removed = [k for k in keys if k not in obj]
        kept = [k for k in keys if k in obj]
        added = [k for k in obj if k not in old]
        if list(obj) != kept + added:  # reordered (a key deleted and put back): write it whole
            self._op(entry, OP_NEW, self._take_shadow(entry, obj), size=0)
            entry.since_snap += len(obj)
            return
        for k in removed:
            self._op(entry, OP_DEL, node(k))
            del old[k]
            if entry.nested.pop(k, None) is not None:
                entry.nested_ids = None
                entry.fps.pop(k, None)
        for k in kept:
            if obj[k] is not old[k]:
                self._set_key(entry, k, obj[k])
        for k in added:
            self._set_key(entry, k, obj[k])
        entry.keys = list(obj)
        if self._nested_may_change(entry):
            self._diff_dict_nested(entry, obj)

    def _set_key(self, entry: _PyEntry, k: Any, v: Any) -> None:
        node = self.nodes.node(v)
        entry.shadow[k] = v
        self._op(entry, OP_SET, self.nodes.node(k), node)
        if entry.nested.pop(k, None) is not None:
            entry.nested_ids = None  # the element it replaced may still be nested elsewhere in it
        if _is_nested_mutable(v):
            entry.nested[k] = _packed(node)
            if entry.nested_ids is not None:
                entry.nested_ids.add(id(v))

    def _diff_dict_nested(self, entry: _PyEntry, obj: dict[Any, Any]) -> None:
        fast = _fingerprint is not None
        nested = entry.nested
        stale = _stale_nested if fast else None
        for k in stale(obj, nested, entry.fps) if stale is not None else list(nested):
            before = nested[k]
            x = obj[k]
            node = self.nodes.node(x)
            packed = _packed(node)
            if packed != before:
                entry.nested[k] = packed
                self.nested_changed = True
                self._op(entry, OP_SET, self.nodes.node(k), node, size=max(len(packed) // 8, 1))
            if fast:
                self._remember_nested(entry, k, x, entry.nested[k])

    def _diff_set(self, entry: _PyEntry, obj: set[Any]) -> None:
        old: frozenset[Any] = entry.shadow
        if len(old) == len(obj) and all(x in old for x in obj):
            return
        gone = [x for x in old if x not in obj]
        new = [x for x in obj if x not in old]
        if gone:
            self._op(entry, OP_DISCARD, self.nodes.items(gone), size=len(gone))
        if new:
            self._op(entry, OP_ADD, self.nodes.items(new), size=len(new))
        entry.shadow = frozenset(obj)

    def _diff_frozen(self, entry: _PyEntry, obj: Any) -> None:
        items = list(obj)
        for pos, before in entry.nested.items():
            if _packed(self.nodes.node(items[pos])) != before:
                self.nested_changed = True
                self._op(entry, OP_NEW, self._take_shadow(entry, obj), size=len(items))
                return

    # -- chunks -----------------------------------------------------------------------------------------
    def take_chunk(self, stop: int, start: int) -> list[Any] | None:
        """The objects column of the chunk of steps [start, stop) ([bases, snaps, ops]), given the bases
        taken at its start; None when no object was ever tracked. Advances to the next chunk."""
        self.settled.clear()  # a look at each container per chunk, whatever ran unseen (an untraced thread)
        if not self.entries and not self.ops:
            self.chunk += 1
            return None
        ops = self.ops
        cut = len(ops)
        while cut and ops[cut - 1][0] >= stop:
            cut -= 1
        mine = ops[:cut]
        del ops[:cut]  # the same list stays: the compiled core appends to it too (tracker.c)
        for op in mine:
            op[0] -= start
        snaps: dict[int, Any] = {}
        for entry in list(self.entries.values()):
            if entry.touched:
                entry.touched = False
                size = len(entry.shadow) + 1
                if entry.base != self.chunk and (
                    self.chunk - entry.base >= SNAP_EVERY or entry.since_snap >= size
                    or len(entry.dirty) >= SNAP_EVERY - 1
                ):
                    snaps[entry.oid] = self._snapshot(entry)
                    entry.base = self.chunk
                    entry.dirty = []
                    entry.since_snap = 0
                elif entry.base != self.chunk:
                    entry.dirty.append(self.chunk)
            elif sys.getrefcount(entry.obj) <= 2:  # only the entry's (and getrefcount's argument): dropped
                self._forget(entry)
        self.chunk += 1
        return [None, snaps, mine]  # bases are filled in by the caller (taken at the chunk's start)

    def bases(self) -> dict[int, list[int]]:
        """{oid: [base chunk, later chunks with ops]} for every live object, as of now (a chunk start)."""
        return {e.oid: [e.base, *e.dirty] for e in self.entries.values()}

    def _snapshot(self, entry: _PyEntry) -> Any:
        """The node of the recorded state (the shadow; nested mutable elements as last recorded)."""
        code = entry.code
        nodes = self.nodes
        extra = [nodes.extra(entry.obj, code)] if code >= T_DEQUE else []
        if code in _DICT_CODES:
            items: list[Any] = []
            for k, v in entry.shadow.items():
                items.append(nodes.node(k))
                packed = entry.nested.get(k)
                items.append(msgpack.unpackb(packed) if packed is not None else nodes.node(v))
            return [code, items, *extra]
        if code in (T_SET, T_FROZENSET):
            return [code, nodes.items(list(entry.shadow))]
        items = nodes.items(entry.shadow)
        for pos, packed in entry.nested.items():
            items[pos] = msgpack.unpackb(packed)
        return [code, items, *extra]

    def _forget(self, entry: _PyEntry) -> None:
        del self.entries[id(entry.obj)]
        self.settled.discard(id(entry.obj))
        if entry.watched and _dict_unwatch is not None:
            entry.watched = False
            try:
                _dict_unwatch(entry.obj)
            except Exception:
                pass

    def release(self) -> None:
        for entry in list(self.entries.values()):
            self._forget(entry)
        if _dict_events is not None:
            _dict_events()  # drop the log
        self.ops.clear()
        self.settled.clear()


# -- reading --------------------------------------------------------------------------------------------
class OpaqueValue:
    """A value recorded as its repr only (not a builtin value): prints as that text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpaqueValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def to_python(node: Any, ref: Callable[[int], Any] | None = None) -> Any:
    """The Python value of a node; ref(oid) gives the value of an object the node refers to."""
    if type(node) is not list and type(node) is not tuple:
        return node
    code, items = node[0], node[1]
    if code == T_TEXT:
        return OpaqueValue(str(items))
    if code == T_BIGINT:
        return int(items)
    if code == T_REF:
        if ref is None or type(items) is not int:
            raise ValueError("an object reference with nothing to resolve it")
        return ref(items)
    if code in _DICT_CODES:
        it = iter(items)
        pairs = {_key(to_python(k, ref)): to_python(v, ref) for k, v in zip(it, it)}
        if code == T_DICT:
            return pairs
        if code == T_DEFAULTDICT:
            factory = node[2] if len(node) > 2 else None
            return collections.defaultdict(_factory(factory), pairs)
        return collections.OrderedDict(pairs) if code == T_ORDEREDDICT else collections.Counter(pairs)
    values = (
        [to_python(x, ref) for x in items] if any(type(x) in (list, tuple) for x in items) else list(items)
    )
    if code == T_LIST:
        return values
    if code == T_TUPLE:
        return tuple(values)
    if code == T_SET:
        return {_key(x) for x in values}
    if code == T_FROZENSET:
        return frozenset(_key(x) for x in values)
    if code == T_DEQUE:
        maxlen = node[2] if len(node) > 2 else None
        return collections.deque(values, maxlen if type(maxlen) is int and maxlen >= 0 else None)
    raise ValueError(f"unknown node type {code!r}")


class RecordedFactory:
    """A defaultdict's default_factory as recorded (its repr): it prints as the original did; calling it
    (a missing key in an expression evaluated on a recorded value) says that it was not recorded."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def __call__(self) -> Any:
        raise KeyError(
            f"the default_factory {self.text} was recorded as text only: a missing key has no value"
        )


_FACTORIES = {repr(t): t for t in (list, dict, set, int, float, str, tuple, bytes, frozenset, bool)}


def _factory(text: Any) -> Any:
    """The default_factory for a recorded repr: a builtin type itself, None, else a RecordedFactory."""
    if text is None or text == "None":
        return None
    if type(text) is not str:
        text = str(text)
    return _FACTORIES.get(text) or RecordedFactory(text)


def _key(value: Any) -> Any:
    """A dict key or set element: lists come back as tuples only if the node says tuple."""
    if type(value) is list:  # cannot happen for a recorded key, but never crash on a damaged file
        return tuple(value)
    return value


def apply_op(value: Any, op: Any, ref: Callable[[int], Any] | None = None) -> Any:
    """Apply one recorded op ([offset, oid, code, *args]) to value (rebuilt in place); returns the value."""
    code = op[2]
    if code == OP_NEW:
        return to_python(op[3], ref)
    if code == OP_SPLICE:
        items = [to_python(x, ref) for x in op[5]]
        if type(value) is collections.deque:
            _splice_deque(value, op[3], op[4], items)
        else:
            value[op[3] : op[4]] = items
    elif code == OP_SET:
        if isinstance(value, dict):
            value[_key(to_python(op[3], ref))] = to_python(op[4], ref)
        elif type(value) is list or type(value) is collections.deque:
            value[op[3]] = to_python(op[4], ref)
        else:  # a tuple (or frozenset) whose nested element changed: rebuilt
            items = list(value)
            items[op[3]] = to_python(op[4], ref)
            value = type(value)(items)
    elif code == OP_DEL:
        del value[_key(to_python(op[3], ref))]
    elif code == OP_ADD:
        value.update(_key(to_python(x, ref)) for x in op[3])
    elif code == OP_DISCARD:
        for x in op[3]:
            value.discard(_key(to_python(x, ref)))
    else:
        raise ValueError(f"unknown object op {code!r}")
    return value


def _splice_deque(d: collections.deque[Any], start: int, stop: int, items: list[Any]) -> None:
    """d[start:stop] = items for a deque (which has no slice assignment), in time proportional to the
    distance from the nearer end: a popleft or an append costs O(1), as it did in the program."""
    n = len(d)
    if n - stop < start:  # nearer the right end
        tail = [d.pop() for _ in range(n - stop)]
        for _ in range(stop - start):
            d.pop()
        d.extend(items)
        d.extend(reversed(tail))
    else:
        head = [d.popleft() for _ in range(start)]
        for _ in range(stop - start):
            d.popleft()
        d.extendleft(reversed(items))
        d.extendleft(reversed(head))


class ObjectResolver:
    """The reading side: rebuild object oid at a step, from chunks' objects columns.

    objects_of(chunk_number) -> that chunk's [bases, snaps, ops] (or None). Results are cached per
    (oid, chunk): the state at the chunk's start, from which a step's state is one pass over its ops."""

    def __init__(self, objects_of: Callable[[int], Any]) -> None:
        self.objects_of = objects_of
        self._starts: dict[tuple[int, int], bytes | None] = {}
        self._fixed: dict[int, Any] = {}  # referenced (immutable) objects: the same at every step

    def _referee(self, chunk: int, offset: int) -> Callable[[int], Any]:
        """ref(oid) for nodes read at step `offset` of `chunk`: a referenced object never changes, so its
        value there is its value anywhere after it was recorded."""

        def ref(oid: int) -> Any:
            value = self._fixed.get(oid)
            if value is None:
                value = self.value(oid, chunk, offset)
                if len(self._fixed) > 100_000:
                    self._fixed.clear()
                self._fixed[oid] = value
            return value

        return ref

    def _state_at_start(self, oid: int, chunk: int) -> Any:
        """The value at the start of `chunk` (None: the object does not exist yet there)."""
        key = (oid, chunk)
        if key in self._starts:
            packed = self._starts[key]
            return None if packed is None else _thaw(packed)
        columns = self.objects_of(chunk)
        bases = columns[0] if columns is not None else None
        where = bases.get(oid) if bases else None
        value: Any = None
        if where:
            first, *later = where
            snaps_first = self.objects_of(first)
            if snaps_first is not None and oid in snaps_first[1]:
                value = to_python(snaps_first[1][oid], self._referee(first, _CHUNK_END))
            else:
                value = self._run_ops(None, oid, snaps_first[2] if snaps_first else (), first)
            for number in later:
                cols = self.objects_of(number)
                value = self._run_ops(value, oid, cols[2] if cols else (), number)
        if len(self._starts) > 64:
            self._starts.clear()
        self._starts[key] = None if value is None else _freeze(value)
        return value

    def _run_ops(self, value: Any, oid: int, ops: Any, chunk: int, upto: int | None = None) -> Any:
        for op in ops:
            if upto is not None and op[0] > upto:
                break
            if op[1] == oid:
                value = apply_op(value, op, self._referee(chunk, op[0]))
        return value

    def value(self, oid: int, chunk: int, offset: int) -> Any:
        """The object's value at step `offset` of `chunk` (after that step's ops)."""
        value = self._state_at_start(oid, chunk)
        columns = self.objects_of(chunk)
        if columns is not None:
            value = self._run_ops(value, oid, columns[2], chunk, upto=offset)
        if value is None:
            raise ValueError(f"object {oid} is not in the trace at that step")
        return value


_CHUNK_END = 1 << 62  # an offset past every step of a chunk


def _freeze(value: Any) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _thaw(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)
