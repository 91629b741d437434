"""Runner: the workload under bench/naive_recorder.py, pickling every snapshot to OUTFILE."""

from __future__ import annotations

import os
import sys

from _workload import parse_argv, run_as_main

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from naive_recorder import NaiveRecorder

if __name__ == "__main__":
    out, workload, args = parse_argv()
    recorder = NaiveRecorder(workload)
    recorder.start()
    try:
        run_as_main(workload, args)
    finally:
        recorder.stop()
        recorder.dump(out)
