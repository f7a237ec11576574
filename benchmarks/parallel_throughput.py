"""Parallel throughput: how calls scale from one thread to two.

Meant for a free-threaded CPython with the GIL off (on a GIL build nothing
scales and every ratio is about 1.0x or below).  For each scenario, one
thread makes N calls, then two threads make N calls each at once (released
together by a barrier); the ratio is the two threads' aggregate calls per
second over the one thread's.  2.0x is perfect scaling on two free cores.

Scenarios:

    bare        the function called directly, no breaker
    per-thread  each thread calls through a breaker of its own
    shared      both threads call through one breaker

each with a trivial function and with one doing about 1 microsecond of work
(calibrated at start-up: a loop of pure Python arithmetic).  The breakers use
the defaults (CountWindow(100), MinRequests & FailureRate), and every call
succeeds.  Each measurement is the best of --repeat runs: a shared machine
only ever makes a run slower.

    python benchmarks/parallel_throughput.py [--calls N] [--repeat R]
"""

from __future__ import annotations

import argparse
import platform
import sys
import sysconfig
import threading
import time
from collections.abc import Callable

from fluxgate import CircuitBreaker

Call = Callable[[], object]


def trivial() -> None:
    return None


def make_work(target_seconds: float) -> tuple[Call, int]:
    """A function that takes about `target_seconds`, and its loop count."""

    def work_of(n: int) -> Call:
        def work() -> int:
            total = 0
            for i in range(n):
                total += i * i
            return total

        return work

    n = 1
    while True:
        work = work_of(n)
        runs = 20_000
        started = time.perf_counter()
        for _ in range(runs):
            work()
        per_call = (time.perf_counter() - started) / runs
        if per_call >= target_seconds or n > 10_000:
            return work, n
        n = max(n + 1, int(n * target_seconds / per_call))


def run_loop(call: Call, calls: int) -> None:
    for _ in range(calls):
        call()


def timed(targets: list[Call], calls: int) -> float:
    """Seconds for every target to make `calls` calls, each in its own thread,
    all released at once."""
    barrier = threading.Barrier(len(targets) + 1)
    finished: list[float] = []

    def run(call: Call) -> None:
        barrier.wait()
        run_loop(call, calls)
        finished.append(time.perf_counter())

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return max(finished) - started


def best(measure: Callable[[], float], repeat: int) -> float:
    return min(measure() for _ in range(repeat))


def scenario(name: str, function: Call, calls: int, repeat: int) -> tuple[float, float]:
    """(one thread's calls per second, two threads' aggregate ratio)."""

    def callers(threads: int) -> list[Call]:
        if name == "bare":
            return [function] * threads
        if name == "per-thread":
            return [CircuitBreaker()(function) for _ in range(threads)]
        shared = CircuitBreaker()(function)
        return [shared] * threads

    run_loop(callers(1)[0], calls // 10)  # warm up
    one = best(lambda: timed(callers(1), calls), repeat)
    two = best(lambda: timed(callers(2), calls), repeat)
    return calls / one, (2 * calls / two) / (calls / one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per thread")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement")
    args = parser.parse_args()

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"CPython {platform.python_version()}"
        f"{' free-threaded' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''}, "
        f"GIL {'on' if gil else 'off'}, {args.calls} calls per thread, "
        f"best of {args.repeat}"
    )
    work, loops = make_work(1e-6)
    functions = {"trivial": trivial, f"~1 us ({loops} loops)": work}
    print(f"{'function':<20} {'scenario':<11} {'1 thread':>13} {'2 threads':>10}")
    for label, function in functions.items():
        for name in ("bare", "per-thread", "shared"):
            rate, ratio = scenario(name, function, args.calls, args.repeat)
            print(f"{label:<20} {name:<11} {rate / 1e6:>8.2f} M/s {ratio:>9.2f}x")


if __name__ == "__main__":
    main()
