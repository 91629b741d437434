"""A live pdb that runs many command scripts in one process, for the generated differential tests.

Each request (a JSON line: script path and commands) gets a fresh `pdb.Pdb` reading the commands, and the
loop of `python -m pdb`'s main(): restart after the end with pdb's message, post-mortem on an uncaught
exception, the exit status on SystemExit. The answer is pdb's stdout as one JSON line. The program's own
output is discarded (the comparison reads only pdb's stops). Started by replay_pdb.PdbWorker as
`python -c "import pdb_worker; pdb_worker.serve()"`: pdb clears `__main__`, so this cannot be __main__.
"""

from __future__ import annotations

import bdb
import io
import json
import os
import pdb
import sys


def run(script: str, commands: list[str]) -> str:
    """pdb's output for the commands, as `python -m pdb SCRIPT` prints it (program output left out)."""
    bdb.Breakpoint.clearBreakpoints()  # bdb keeps breakpoints in class attributes: a fresh set per script
    out = io.StringIO()
    stdin = io.StringIO("\n".join([*commands, "q"]) + "\n")
    debugger = pdb.Pdb(stdin=stdin, stdout=out, readrc=False)
    debugger.use_rawinput = False
    target = pdb._ScriptTarget(script)
    saved = sys.stdin, sys.stdout, sys.argv
    # `clear` asks through input(): it reads the same stream as the commands, as in the live session.
    sys.stdin, sys.argv = stdin, [script]
    try:
        with open(os.devnull, "w") as devnull:
            sys.stdout = devnull
            while True:  # pdb.main()'s loop, printing to pdb's stdout
                try:
                    debugger._run(target)
                except SystemExit as exc:
                    print("The program exited via sys.exit(). Exit status:", exc, file=out)
                except BaseException as exc:
                    print("Uncaught exception. Entering post mortem debugging", file=out)
                    print("Running 'cont' or 'step' will restart the program", file=out)
                    debugger.interaction(None, exc)
                if debugger._user_requested_quit:
                    break
                print("The program finished and will be restarted", file=out)
    finally:
        sys.stdin, sys.stdout, sys.argv = saved
    return out.getvalue()


def serve() -> None:
    """Answer requests from stdin until it closes."""
    requests, answers = sys.stdin, sys.stdout
    for line in requests:
        request = json.loads(line)
        try:
            output = run(request["script"], request["commands"])
        except BaseException as exc:
            output = f"<worker error: {type(exc).__name__}: {exc}>"
        answers.write(json.dumps({"output": output}) + "\n")
        answers.flush()
