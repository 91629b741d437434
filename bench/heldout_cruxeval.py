"""Write a held-out CRUXEval-format file from the corpus generator, for `retrograde eval cruxeval`.

    python bench/heldout_cruxeval.py -n 100 --seed 777 -o /tmp/heldout_crux.jsonl

Each line is {"id", "code", "input", "output"} like CRUXEval's: `code` defines f, `input` is the argument
text and `output` the repr of f(input), computed here by running f in a child process (one per item, with
a timeout). Programs whose code and input also come out of the seeds the bundled model was trained on
(`--exclude-seeds`, with their counts) are skipped, so the file is held out from that training data.
The real CRUXEval (github.com/facebookresearch/cruxeval) has the same shape and can be used directly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tracer.corpus.synth import generate

_RUN = """
import sys
namespace = {}
exec(compile(sys.argv[1], "program.py", "exec"), namespace)
print(repr(eval("f(" + sys.argv[2] + ")", namespace)))
"""


def output_of(code: str, arguments: str) -> str | None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", _RUN, code, arguments],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument(
        "--exclude-seeds",
        default="0:300,1:1500",
        metavar="SEED:COUNT,...",
        help="generator runs whose programs must not appear (the bundled model's training)",
    )
    args = parser.parse_args()
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for part in filter(None, args.exclude_seeds.split(",")):
        seed, count = (int(x) for x in part.split(":"))
        seen |= {(p.code, p.inputs) for p in generate(count, seed=seed)}
    written = skipped = 0
    with open(args.output, "w", encoding="utf-8") as handle:
        for program in generate(args.n * 3, seed=args.seed):
            if written >= args.n:
                break
            if (program.code, program.inputs) in seen or program.entry != "f" or len(program.inputs) != 1:
                skipped += 1
                continue
            output = output_of(program.code, program.inputs[0])
            if output is None:
                skipped += 1
                continue
            record = {
                "id": f"heldout/{written}",
                "code": program.code,
                "input": program.inputs[0],
                "output": output,
            }
            handle.write(json.dumps(record) + "\n")
            written += 1
    print(f"wrote {written} items to {args.output} ({skipped} skipped: seen in training, or no output)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
