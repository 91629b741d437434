"""A KeyboardInterrupt raised by the program: pdb enters post-mortem for it like any BaseException."""


def work(n):
    if n > 2:
        raise KeyboardInterrupt
    return n


done = []
for k in range(5):
    done.append(work(k))
