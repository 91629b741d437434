"""`raise err` of a caught exception: the traceback still reaches the frame that raised it first."""


def check(value):
    limit = 10
    if value > limit:
        raise OverflowError(f"{value} > {limit}")
    return value


def run(values):
    seen = []
    for value in values:
        try:
            seen.append(check(value))
        except OverflowError as err:
            seen.append(None)
            raise err


run([1, 5, 20, 3])
