"""A KeyError turned into a LookupError with `raise ... from`."""

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


connect()
