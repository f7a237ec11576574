"""``python -m fluxgate bench``: what protection costs on this machine.

The same measurements as the project's ``benchmarks/breaker_overhead.py``, so
the figures compare: a default breaker around ``f(x) -> x`` against ``f``
itself, sync and async; a rejection by an OPEN breaker against raising and
catching the same exception directly; and the memory a breaker holding a
full ``CountWindow(100)`` costs, against 100 ``Record`` objects in a deque
(how a pure-Python window keeps them). Timings are the best of several runs,
the two sides of each row alternating; ratios matter more than the absolute
figures, which vary from run to run.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import sys
import time
import timeit
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

import fluxgate
from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.metric import Record
from fluxgate.retries import Never
from fluxgate.trippers import MinRequests

__all__ = ["run"]


@dataclass(frozen=True)
class Budget:
    repeat: int  # timed runs of each side of a row; the best is kept
    run_seconds: float  # how long one timed run aims to take
    breakers: int  # breakers built for the memory row
    baselines: int  # deques of records built for the memory row


FULL = Budget(repeat=7, run_seconds=0.3, breakers=20_000, baselines=2_000)
QUICK = Budget(repeat=3, run_seconds=0.004, breakers=1_000, baselines=200)


@dataclass(frozen=True)
class Row:
    what: str
    baseline: str
    baseline_value: float
    value: float
    unit: str  # "ns" or "bytes"


def _calibrate(timed: Callable[[int], float], seconds: float) -> int:
    """How many iterations make one run of ``timed`` last about ``seconds``."""
    number = 1
    while True:
        taken = timed(number)
        if taken >= seconds / 10 or number >= 10**9:
            return max(1, int(number * seconds / max(taken, 1e-9)))
        number *= 10


def _best_pair(
    bare: Callable[[int], float], protected: Callable[[int], float], budget: Budget
) -> tuple[float, float]:
    """Best nanoseconds per iteration of each side, runs alternating."""
    number = _calibrate(protected, budget.run_seconds)
    bare_best = protected_best = float("inf")
    for _ in range(budget.repeat):
        bare_best = min(bare_best, bare(number))
        protected_best = min(protected_best, protected(number))
    return bare_best / number * 1e9, protected_best / number * 1e9


def _timer(stmt: str, **names: object) -> Callable[[int], float]:
    return timeit.Timer(stmt, globals=names).timeit


def sync_call(budget: Budget) -> Row:
    def f(x: int) -> int:
        return x

    g = CircuitBreaker()(f)
    bare, protected = _best_pair(_timer("f(1)", f=f), _timer("f(1)", f=g), budget)
    return Row("sync call, CLOSED", "bare call", bare, protected, "ns")


def async_await(budget: Budget) -> Row:
    async def f(x: int) -> int:
        return x

    g = AsyncCircuitBreaker()(f)

    async def awaits(func: Callable[[int], Awaitable[int]], number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            await func(1)
        return time.perf_counter() - start

    def timed(func: Callable[[int], Awaitable[int]]) -> Callable[[int], float]:
        return lambda number: asyncio.run(awaits(func, number))

    bare, protected = _best_pair(timed(f), timed(g), budget)
    return Row("async await, CLOSED", "bare await", bare, protected, "ns")


def open_rejection(budget: Budget) -> Row:
    breaker = CircuitBreaker(tripper=MinRequests(1), retry=Never())

    def fail(x: int) -> int:
        raise ValueError(x)

    g = breaker(fail)
    try:
        g(1)
    except ValueError:
        pass
    if breaker.info().state != "open":
        raise RuntimeError("the breaker did not open after a failure")
    bare = _timer(
        "try:\n"
        "    raise CallNotPermittedError('Circuit breaker is open')\n"
        "except CallNotPermittedError:\n"
        "    pass",
        CallNotPermittedError=CallNotPermittedError,
    )
    protected = _timer(
        "try:\n    g(1)\nexcept CallNotPermittedError:\n    pass",
        g=g,
        CallNotPermittedError=CallNotPermittedError,
    )
    raised, rejected = _best_pair(bare, protected, budget)
    return Row("OPEN rejection", "raise/except", raised, rejected, "ns")


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _traced_bytes() -> int:
    return tracemalloc.get_traced_memory()[0]


def _bytes_each(
    build: Callable[[], object], count: int, keep: list[object], read: Callable[[], int]
) -> float:
    """Memory growth per object over ``count`` of them, kept alive in ``keep``
    (so that the next measurement cannot reuse their memory)."""
    gc.collect()
    before = read()
    for _ in range(count):
        keep.append(build())
    gc.collect()
    return (read() - before) / count


def memory(budget: Budget) -> Row:
    """Resident set growth where /proc is available, else what tracemalloc sees."""

    def ok(x: int) -> int:
        return x

    def breaker() -> object:
        cb = CircuitBreaker()
        for i in range(100):
            cb.call(ok, i)
        return cb

    def records() -> object:
        return deque((Record(success=True, duration=0.001) for _ in range(100)), maxlen=100)

    use_rss = _rss_bytes() is not None
    read = (lambda: _rss_bytes() or 0) if use_rss else _traced_bytes
    if not use_rss:
        tracemalloc.start()
    keep: list[object] = []
    try:
        per_breaker = _bytes_each(breaker, budget.breakers, keep, read)
        per_records = _bytes_each(records, budget.baselines, keep, read)
    finally:
        if not use_rss:
            tracemalloc.stop()
    what = f"memory per breaker ({'RSS' if use_rss else 'tracemalloc'})"
    return Row(what, "100 Records", per_records, per_breaker, "bytes")


def _amount(value: float, unit: str) -> str:
    if unit == "ns":
        return f"{value:8.1f} ns"
    if abs(value) >= 1024:
        return f"{value / 1024:6.1f} KiB"
    return f"{value:6.0f} B  "


def _line(row: Row) -> str:
    ratio = row.value / row.baseline_value if row.baseline_value > 0 else float("nan")
    return (
        f"  {row.what:<29} {row.baseline:<13} {_amount(row.baseline_value, row.unit):>11}"
        f"  {_amount(row.value, row.unit):>11}  {ratio:6.2f}x"
    )


def run(out: TextIO, *, quick: bool = False) -> int:
    """Run the benchmark, printing a table to ``out``; returns the exit code."""
    budget = QUICK if quick else FULL
    out.write(
        f"fluxgate {fluxgate.__version__} self-benchmark on "
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.platform}, {platform.machine() or 'unknown machine'})\n"
        f"best of {budget.repeat} alternating runs per side"
        f"{' (quick: rough figures)' if quick else ''}; lower is better\n\n"
        f"  {'measurement':<29} {'baseline':<13} {'':>11}  {'fluxgate':>11}  "
        f"{'ratio':>7}\n"
    )
    out.flush()
    for measure in (sync_call, async_await, open_rejection, memory):
        out.write(_line(measure(budget)) + "\n")
        out.flush()
    out.write(
        "\nratio: fluxgate's figure over the baseline's. Memory: each breaker "
        "holds a full\nCountWindow(100); the baseline keeps 100 Record objects "
        "in a deque, as a\npure-Python window does.\n"
    )
    return 0
