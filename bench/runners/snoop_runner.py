"""Runner: the workload's main() wrapped in snoop with a large depth, logging to OUTFILE."""

from __future__ import annotations

import snoop
from _workload import load_main, parse_argv

if __name__ == "__main__":
    out, workload, args = parse_argv()
    main = load_main(workload, args)
    with open(out, "w", encoding="utf-8") as stream:
        config = snoop.Config(out=stream, color=False, columns=())
        config.snoop(depth=1000)(main)()
