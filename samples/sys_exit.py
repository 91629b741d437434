"""sys.exit(3) in the middle of a program: the SystemExit unwinds through a finally block and the program
ends with exit code 3; the last line never runs.
"""
import sys


def validate(values):
    for value in values:
        if value < 0:
            print(f"negative value {value}, giving up")
            sys.exit(3)
    return True


def main():
    try:
        validate([3, 1, -4, 1])
    finally:
        print("cleanup runs even on sys.exit")


main()
print("never printed")
