"""What sharing a breaker across the processes of a host costs.

Prints, measured in one run on this machine:

- a CLOSED call on a breaker shared through ``HostMemory`` against the same
  call on a per-process breaker (CPU time per call, median of rounds);
- the aggregate throughput of 2 processes calling one shared breaker,
  against one process alone, protecting about 1 microsecond of work and a
  trivial function; and the same for 2 processes with a breaker each, which
  shows how far the machine itself lets two processes scale. Each figure is
  the best of alternating rounds, since other work on the machine only ever
  slows a round down.

Usage: python benchmarks/shared_breaker.py [--rounds N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from typing import Callable

from fluxgate import CircuitBreaker
from fluxgate.shared import HostMemory
from fluxgate.trippers import MinRequests


def _trivial() -> None:
    return None


def _one_microsecond() -> None:
    total = 0
    for i in range(60):  # about 1 µs of interpreted work
        total += i


def _per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time_ns()
    for _ in range(calls):
        fn()
    return (time.process_time_ns() - start) / calls


def _breaker(directory: str | None, name: str = "bench") -> CircuitBreaker:
    # A tripper that never opens: every call is a CLOSED call.
    shared = HostMemory(name, directory=directory) if directory else None
    return CircuitBreaker(tripper=MinRequests(10**12), shared=shared)


def _worker(
    directory: str | None, work_name: str, seconds: float, start: object, out: object
) -> None:
    work = _one_microsecond if work_name == "1us" else _trivial
    protected = _breaker(directory)(work)
    start.wait()  # type: ignore[attr-defined]
    deadline = time.perf_counter() + seconds
    calls = 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            protected()
        calls += 1000
    out.put(calls)  # type: ignore[attr-defined]


def _throughput(directory: str | None, work: str, processes: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(directory, work, seconds, start, out))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    time.sleep(0.3)
    start.set()
    total = sum(out.get() for _ in workers)
    for w in workers:
        w.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    directory = tempfile.mkdtemp()
    try:
        local = _breaker(None)(_trivial)
        shared = _breaker(directory)(_trivial)
        bare, per_process, host = [], [], []
        for _ in range(args.rounds):
            bare.append(_per_call_ns(_trivial, 200_000))
            per_process.append(_per_call_ns(local, 200_000))
            host.append(_per_call_ns(shared, 200_000))
        b, p, h = (statistics.median(x) for x in (bare, per_process, host))
        print(f"bare call               {b:7.0f} ns")
        print(f"per-process breaker     {p:7.0f} ns  ({p / b:.1f}x bare)")
        print(f"host-shared breaker     {h:7.0f} ns  ({h / p:.2f}x per-process)")
        for work in ("1us", "trivial"):
            best: dict[tuple[str, int], float] = {}
            for _ in range(args.rounds // 2 + 1):
                for where, folder in (("shared", directory), ("own", None)):
                    for processes in (1, 2):
                        rate = _throughput(folder, work, processes, 0.5)
                        key = (where, processes)
                        best[key] = max(best.get(key, 0.0), rate)
            for where, label in (("shared", "one shared breaker"), ("own", "a breaker each")):
                one, two = best[(where, 1)], best[(where, 2)]
                print(
                    f"2 processes, {work:7s} work, {label:18s}: {two / one:.2f}x one "
                    f"process ({one / 1e6:.2f} -> {two / 1e6:.2f} M calls/s)"
                )
    finally:
        HostMemory.unlink("bench", directory=directory)


if __name__ == "__main__":
    main()
