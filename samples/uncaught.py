"""An uncaught exception: a KeyError deep in a callee is turned into a LookupError with `raise ... from`,
nobody catches it, and the program dies with a chained traceback and exit code 1.
"""

CONFIG = {"host": "localhost"}


def read_setting(name):
    return CONFIG[name]


def connect():
    host = read_setting("host")
    try:
        port = read_setting("port")
    except KeyError as err:
        raise LookupError(f"no setting for {err} (host was {host})") from err
    return host, port


print("connecting...")
connect()
print("never printed")
