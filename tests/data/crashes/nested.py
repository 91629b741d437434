"""An exception three calls deep: the post-mortem stop is in the innermost frame."""


def divide(total, count):
    share = total / count
    return share


def average(values):
    total = sum(values)
    return divide(total, len(values))


def report(groups):
    for name, values in groups.items():
        print(name, average(values))


report({"a": [1, 2, 3], "b": []})
