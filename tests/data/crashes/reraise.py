"""A bare `raise` after cleanup: the traceback keeps the original frames; outer's locals are its last."""


def inner(n):
    total = n * 2
    raise ValueError(f"bad {total}")


def outer():
    note = "start"
    try:
        inner(3)
    except ValueError:
        note = "cleanup"
        raise


outer()
