"""Runner: the workload as __main__ under hunter with a VarsSnooper action, logging to OUTFILE."""

from __future__ import annotations

import hunter
from _workload import parse_argv, run_as_main

if __name__ == "__main__":
    out, workload, args = parse_argv()
    with open(out, "w", encoding="utf-8") as stream:
        # Keyword form: a bare Q(...) predicate would get hunter's default CallPrinter added to stderr too.
        hunter.trace(filename_contains=workload, action=hunter.VarsSnooper(stream=stream))
        try:
            run_as_main(workload, args)
        finally:
            hunter.stop()
