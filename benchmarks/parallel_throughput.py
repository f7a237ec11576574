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
succeeds.  A round times one thread, then two, for every scenario in turn;
the figures are the medians over --rounds rounds (one thread's rate, and the
ratio within each round), so that a virtual machine's slow spells, which
come and go over seconds, fall on every scenario alike.

    python benchmarks/parallel_throughput.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import platform
import statistics
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


Callers = Callable[[int], list[Call]]


def scenarios(function: Call) -> dict[str, Callers]:
    """For each scenario, the callers of `threads` threads."""
    shared = CircuitBreaker()(function)
    return {
        "bare": lambda threads: [function] * threads,
        "per-thread": lambda threads: [CircuitBreaker()(function) for _ in range(threads)],
        "shared": lambda threads: [shared] * threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50_000, help="calls per thread")
    parser.add_argument("--rounds", type=int, default=25, help="rounds to take medians of")
    args = parser.parse_args()

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"CPython {platform.python_version()}"
        f"{' free-threaded' if sysconfig.get_config_var('Py_GIL_DISABLED') else ''}, "
        f"GIL {'on' if gil else 'off'}, {args.calls} calls per thread, "
        f"medians of {args.rounds} rounds"
    )
    work, loops = make_work(1e-6)
    callers: dict[tuple[str, str], Callers] = {}
    for label, function in (("trivial", trivial), (f"~1 us ({loops} loops)", work)):
        for name, make in scenarios(function).items():
            callers[label, name] = make
            run_loop(make(1)[0], args.calls)  # warm up
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in callers}
    ratios: dict[tuple[str, str], list[float]] = {key: [] for key in callers}
    for _ in range(args.rounds):
        for key, make in callers.items():
            one = timed(make(1), args.calls)
            two = timed(make(2), args.calls)
            rates[key].append(args.calls / one)
            ratios[key].append(2 * one / two)
    print(f"{'function':<20} {'scenario':<11} {'1 thread':>13} {'2 threads':>10}")
    for (label, name), rate in rates.items():
        ratio = statistics.median(ratios[label, name])
        print(f"{label:<20} {name:<11} {statistics.median(rate) / 1e6:>8.2f} M/s {ratio:>9.2f}x")


if __name__ == "__main__":
    main()
