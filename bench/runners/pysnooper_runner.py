"""Runner: the workload's main() wrapped in pysnooper.snoop with a large depth, logging to OUTFILE."""

from __future__ import annotations

import pysnooper
from _workload import load_main, parse_argv

if __name__ == "__main__":
    out, workload, args = parse_argv()
    main = load_main(workload, args)
    # A stream, not a path: with a path PySnooper reopens the file for every line it writes.
    with open(out, "w", encoding="utf-8") as stream:
        pysnooper.snoop(output=stream, depth=1000, color=False)(main)()
