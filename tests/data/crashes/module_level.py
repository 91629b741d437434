"""An exception raised by module code itself."""

values = [3, 1, 2]
values.sort()
first = values[0]
raise AssertionError(f"first is {first}")
