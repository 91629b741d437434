"""Runner: the workload as __main__ under VizTracer (function entry/exit only, no lines), saved to OUTFILE."""

from __future__ import annotations

from _workload import parse_argv, run_as_main
from viztracer import VizTracer

if __name__ == "__main__":
    out, workload, args = parse_argv()
    tracer = VizTracer(output_file=out, verbose=0)
    tracer.start()
    try:
        run_as_main(workload, args)
    finally:
        tracer.stop()
        tracer.save()
