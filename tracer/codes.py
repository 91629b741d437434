"""The object tracker's node type and op codes (trace format 5; tracer/objects.py records and reads them).

A module of its own, importing nothing, so that tracer/native.py can check the compiled core's copies of
them (tracer/_core/tracker.c records some ops itself) without importing the tracker."""

from __future__ import annotations

# Node type codes. The collections containers (deque, defaultdict, OrderedDict, Counter) are recorded like
# the builtin ones they wrap (a deque like a list, the others like a dict), with a third node element for
# what else their repr shows: a deque's maxlen, a defaultdict's default_factory (its repr text).
T_LIST, T_TUPLE, T_DICT, T_SET, T_FROZENSET, T_TEXT, T_BIGINT, T_REF = range(8)
T_DEQUE, T_DEFAULTDICT, T_ORDEREDDICT, T_COUNTER = range(8, 12)
# Op codes.
OP_NEW, OP_SPLICE, OP_SET, OP_DEL, OP_ADD, OP_DISCARD = range(6)
