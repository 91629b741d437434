"""Standard streams: reads lines from stdin, writes the non-empty ones upper-cased to stdout and a warning
for each blank line to stderr. Try: printf 'one\n\ntwo\n' | python samples/stdin_stderr.py
"""
import sys


def shout(lines):
    kept = 0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            print(f"warning: line {number} is blank", file=sys.stderr)
            continue
        print(text.upper())
        kept += 1
    return kept


count = shout(sys.stdin)
print(f"{count} lines shouted", file=sys.stderr)
