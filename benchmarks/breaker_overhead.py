"""What a protected call costs, against the same work unprotected.

Prints figures; asserts nothing (these machines are noisy: compare the
ratios, and rerun). Run from an environment where fluxgate is installed:

    python benchmarks/breaker_overhead.py

Measured, best of 7 repeats in one process:

- sync: ``g(1)`` (a default ``@cb``-decorated function, CLOSED) against
  ``f(1)`` (the same function undecorated);
- OPEN rejection: ``g(1)`` on an open breaker, caught, against raising and
  catching a new exception of the same type directly;
- async: ``await g(1)`` against ``await f(1)`` in the same loop, 100 000
  awaits per loop run;
- memory: resident set growth over 20 000 default breakers, each with a full
  ``CountWindow(100)``;
- the shape of the breaker, each against a default ``@cb`` call in the same
  run: a ``TimeWindow(60)`` breaker (its ratio to the bare call too), four
  more tripper leaves (the cost of one), and ten distinct ``SlowRate``
  thresholds that every call reaches (the cost of one);
- the OPEN rejection again with the default retry, ``Cooldown(60.0)``, which
  reads the wall clock to decide (the row above uses ``Never()``, which
  does not);
- a Python tripper (a ``Tripper`` subclass): a call through it against a
  call through a built-in tripper that never trips either;
- a no-op listener: the ``force_open()``/``reset()`` cycle (two transitions)
  of a breaker with one, against one without.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import timeit

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Cooldown, Never, Retry
from fluxgate.signal import Signal
from fluxgate.trippers import (
    AvgLatency,
    CallContext,
    FailureRate,
    FailureStreak,
    MinRequests,
    SlowRate,
    Tripper,
)
from fluxgate.windows import TimeWindow

REPEAT = 7


def best_ns(stmt: str, namespace: dict[str, object], number: int) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=REPEAT, number=number)) / number * 1e9


def sync_closed() -> tuple[float, float]:
    def f(x: int) -> int:
        return x

    g = CircuitBreaker()(f)
    namespace: dict[str, object] = {"f": f, "g": g}
    return best_ns("f(1)", namespace, 1_000_000), best_ns("g(1)", namespace, 1_000_000)


def breaker_shapes() -> dict[str, float]:
    """ns per call of a bare call, a default breaker and three other shapes,
    timed in turns so that they share the machine's noise."""

    def f(x: int) -> int:
        return x

    def protect(**components: object) -> object:
        g = CircuitBreaker(**components)(f)  # type: ignore[arg-type]
        for i in range(200):  # a full window
            g(i)
        return g

    extra = FailureStreak(10**6) | AvgLatency(100.0) | FailureRate(0.9) | FailureStreak(10**7)
    slow = MinRequests(100) & FailureRate(0.5)
    for k in range(1, 11):  # every call is slower than 10 ps
        slow = slow | (MinRequests(10**9) & SlowRate(0.5, threshold=k * 1e-12))
    shapes = {
        "bare": f,
        "default": protect(),
        "TimeWindow(60)": protect(window=TimeWindow(60)),
        "4 more leaves": protect(tripper=MinRequests(100) & FailureRate(0.5) | extra),
        "10 thresholds": protect(tripper=slow),
    }
    best = dict.fromkeys(shapes, float("inf"))
    for _ in range(REPEAT):
        for name, g in shapes.items():
            timer = timeit.Timer("g(1)", globals={"g": g})
            best[name] = min(best[name], timer.timeit(number=300_000) / 300_000 * 1e9)
    return best


def open_rejection(retry: Retry | None = None) -> tuple[float, float]:
    cb = CircuitBreaker(tripper=MinRequests(1), retry=Never() if retry is None else retry)

    def fail(x: int) -> int:
        raise ValueError(x)

    g = cb(fail)
    try:
        g(1)
    except ValueError:
        pass
    assert cb.info().state == "open"
    bare = (
        "try:\n"
        "    raise CallNotPermittedError('Circuit breaker is open')\n"
        "except CallNotPermittedError:\n"
        "    pass"
    )
    protected = "try:\n    g(1)\nexcept CallNotPermittedError:\n    pass"
    namespace = {"g": g, "CallNotPermittedError": CallNotPermittedError}
    return best_ns(bare, namespace, 300_000), best_ns(protected, namespace, 300_000)


class NeverTrips(Tripper):
    """A tripper written in Python."""

    def __call__(self, ctx: CallContext) -> bool:
        return False


def python_tripper() -> tuple[float, float]:
    """ns per call through a built-in tripper and through a Python one,
    timed in turns (neither trips)."""

    def f(x: int) -> int:
        return x

    calls = {
        "built-in": CircuitBreaker(tripper=MinRequests(10**9))(f),
        "python": CircuitBreaker(tripper=NeverTrips())(f),
    }
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(REPEAT):
        for name, g in calls.items():
            timer = timeit.Timer("g(1)", globals={"g": g})
            best[name] = min(best[name], timer.timeit(number=100_000) / 100_000 * 1e9)
    return best["built-in"], best["python"]


def listener_cost() -> tuple[float, float]:
    """ns per force_open()/reset() cycle (two transitions) of a breaker
    without listeners and of one with a no-op listener, timed in turns."""

    def noop(signal: Signal) -> None:
        pass

    breakers = {"none": CircuitBreaker(), "one": CircuitBreaker(listeners=[noop])}
    best = dict.fromkeys(breakers, float("inf"))
    for _ in range(REPEAT):
        for name, cb in breakers.items():
            timer = timeit.Timer("cb.force_open(); cb.reset()", globals={"cb": cb})
            best[name] = min(best[name], timer.timeit(number=50_000) / 50_000 * 1e9)
    return best["none"], best["one"]


def async_closed() -> tuple[float, float]:
    async def f(x: int) -> int:
        return x

    g = AsyncCircuitBreaker()(f)
    n = 100_000

    async def loop_of(func: object) -> float:
        clock = asyncio.get_running_loop().time
        start = clock()
        for _ in range(n):
            await func(1)  # type: ignore[operator]
        return (clock() - start) / n * 1e9

    def best(func: object) -> float:
        return min(asyncio.run(loop_of(func)) for _ in range(REPEAT))

    return best(f), best(g)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def memory_per_breaker(count: int = 20_000) -> float | None:
    if not sys.platform.startswith("linux"):
        return None

    def ok(x: int) -> int:
        return x

    gc.collect()
    before = rss_bytes()
    breakers = []
    for _ in range(count):
        cb = CircuitBreaker()
        for i in range(100):
            cb.call(ok, i)
        breakers.append(cb)
    gc.collect()
    after = rss_bytes()
    assert all(cb.info().metrics.total_count == 100 for cb in breakers[:10])
    return (after - before) / count


def main() -> None:
    print(f"Python {sys.version.split()[0]} on {sys.platform}; best of {REPEAT}")
    f_ns, g_ns = sync_closed()
    print(f"sync CLOSED call   bare {f_ns:7.1f} ns  protected {g_ns:7.1f} ns  "
          f"ratio {g_ns / f_ns:4.2f}x  (goal <= 3x)")
    r_ns, o_ns = open_rejection()
    print(f"OPEN rejection     raise {r_ns:6.1f} ns  protected {o_ns:7.1f} ns  "
          f"ratio {o_ns / r_ns:4.2f}x  (goal <= 1.2x)")
    a_ns, b_ns = async_closed()
    print(f"async CLOSED await bare {a_ns:7.1f} ns  protected {b_ns:7.1f} ns  "
          f"ratio {b_ns / a_ns:4.2f}x  (goal <= 4x)")
    shapes = breaker_shapes()
    bare, default = shapes["bare"], shapes["default"]
    print(f"TimeWindow(60)     bare {bare:7.1f} ns  protected {shapes['TimeWindow(60)']:7.1f} ns  "
          f"ratio {shapes['TimeWindow(60)'] / bare:4.2f}x  (goal <= 3.5x; default here {default / bare:4.2f}x)")
    print(f"per extra tripper leaf  {(shapes['4 more leaves'] - default) / 4:+6.1f} ns  "
          f"(goal <= 3 ns; 4 more leaves than the default tripper)")
    print(f"per SlowRate threshold  {(shapes['10 thresholds'] - default) / 10:+6.1f} ns  "
          f"(10 distinct thresholds, each call slow for all)")
    r_ns, c_ns = open_rejection(Cooldown(60.0))
    print(f"OPEN, Cooldown(60) raise {r_ns:6.1f} ns  protected {c_ns:7.1f} ns  "
          f"ratio {c_ns / r_ns:4.2f}x  (the default retry reads the wall clock)")
    builtin_ns, python_ns = python_tripper()
    print(f"Python tripper     {python_ns - builtin_ns:+6.1f} ns per call over a built-in  "
          f"(goal <= 300 ns)")
    none_ns, one_ns = listener_cost()
    print(f"no-op listener     {(one_ns - none_ns) / 2:+6.1f} ns per transition  "
          f"(goal <= 300 ns)")
    per_breaker = memory_per_breaker()
    if per_breaker is not None:
        print(f"memory per breaker with a full CountWindow(100): "
              f"{per_breaker:6.0f} bytes RSS  (goal <= 1024)")


if __name__ == "__main__":
    main()
