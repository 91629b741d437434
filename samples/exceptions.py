"""Exceptions: try/except/else/finally, a context manager class in a with statement (normal exit and
exit by an exception), a bare `raise` re-raising, and an error raised deep in a callee caught by its caller.
"""


class Resource:
    def __init__(self, name):
        self.name = name
        self.log = []

    def __enter__(self):
        self.log.append("open")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.log.append("close" if exc is None else f"close after {exc_type.__name__}")
        return exc_type is KeyError  # swallow KeyError only

    def __repr__(self):
        return f"Resource({self.name!r}, log={self.log!r})"


def parse(text):
    return int(text)


def parse_all(items):
    results = []
    for item in items:
        try:
            number = parse(item)
        except ValueError as err:
            results.append(f"bad {item!r}: {err}")
        else:
            results.append(number)
        finally:
            results.append("|")
    return results


def checked_divide(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        print("checked_divide: dividing by zero, re-raising")
        raise


def level_three(table):
    return table["missing"]


def level_two(table):
    return level_three(table) + 1


def caller():
    try:
        checked_divide(1, 0)
    except ZeroDivisionError as err:
        message = f"caller caught: {err}"
    try:
        level_two({"present": 1})
    except KeyError as err:
        message += f"; caught KeyError {err} two frames down"
    return message


print(parse_all(["1", "x", "3"]))
print(caller())
with Resource("quiet") as res:
    res.log.append("work")
print(res)
with Resource("swallowing") as res:
    {}["nope"]
print(res)
try:
    with Resource("leaking") as res:
        raise RuntimeError("escapes the with block")
except RuntimeError as err:
    print("outer handler:", err, res)
