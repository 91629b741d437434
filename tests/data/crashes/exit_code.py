"""sys.exit(3) from a function: pdb reports the exit status and restarts, no post-mortem."""
import sys


def main():
    code = 3
    sys.exit(code)


main()
