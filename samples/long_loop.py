"""A long loop: 20,000 iterations of a rolling checksum (about 40,000 line steps), to see how recording
and replay cope with many steps in one frame.
"""


def checksum(n):
    total = 0
    for i in range(n):
        total = (total * 31 + i) % 1_000_003
    return total


print("checksum:", checksum(20_000))
