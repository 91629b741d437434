"""A finally block changes a local after the exception left the callee: post-mortem shows the last value."""


def fetch(key):
    table = {"a": 1}
    return table[key]


def lookup(keys):
    state = "running"
    try:
        return [fetch(k) for k in keys]
    finally:
        state = "closed"


lookup(["a", "b"])
