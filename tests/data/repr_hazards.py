"""Values whose repr raises, misbehaves or cannot be computed: recording must not change the program."""
import sys


class NonStrRepr:
    def __repr__(self):
        return 42


class RecursiveRepr:
    def __repr__(self):
        return repr(self)


class MutatingRepr:
    def __init__(self):
        self.calls = 0

    def __repr__(self):
        self.calls += 1
        return f"<mutating {self.calls}>"


class WeirdStr(str):
    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __str__(self):
        raise RuntimeError("no str either")


class StrSubclassRepr:
    def __repr__(self):
        return WeirdStr("sneaky")


class BadClass:
    @property
    def __class__(self):
        raise RuntimeError("no class")


class BadKey:
    def __hash__(self):
        return 1

    def __eq__(self, other):
        raise RuntimeError("no comparing")

    def __repr__(self):
        return "BadKey()"


def hazards():
    huge = 10**20000
    negative = -(7**9000)
    mixed = [huge, 1, {"k": negative}]
    keyed = {huge: "big"}
    odd = NonStrRepr()
    deep = RecursiveRepr()
    changing = MutatingRepr()
    weird = WeirdStr("text")
    sneaky = StrSubclassRepr()
    classless = BadClass()
    bad_keys = {BadKey(): 1, "x": 2}
    nested = [odd, deep, weird, (classless,)]
    # (changing.calls is not shown: the recorder calls __repr__, as any debugger showing the value does)
    return huge % 1000, len(nested), len(mixed), len(keyed), len(bad_keys)


def raise_huge():
    raise ValueError(10**5000)


result = hazards()
try:
    raise_huge()
except ValueError as error:
    caught = type(error).__name__
print(result, caught, (10**20000).bit_length(), sys.get_int_max_str_digits())
