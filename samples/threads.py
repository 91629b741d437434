"""Threads: a worker thread fills a shared list. The main thread starts and joins it on one line, so the
worker's steps never interleave with the main thread's and the recording is deterministic.
"""
import threading


class Worker(threading.Thread):
    def __init__(self, results, n):
        super().__init__(name="squares")
        self.results = results
        self.n = n

    def run(self):
        for i in range(self.n):
            self.results.append(i * i)

    def __repr__(self):
        # Thread's own repr shows the thread id, which differs from run to run.
        return f"Worker({self.name!r}, alive={self.is_alive()})"


def run_worker(n):
    results = []
    worker = Worker(results, n)
    worker.start(); worker.join()  # noqa: E702 -- one line on purpose, see the docstring
    return results


print("worker produced:", run_worker(4))
