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
  thresholds that every call reaches (the cost of one).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import timeit

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.trippers import AvgLatency, FailureRate, FailureStreak, MinRequests, SlowRate
from fluxgate.windows import TimeWindow

REPEAT = 7


def best_ns(stmt: str, namespace: dict[str, object], number: int) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=REPEAT, number=number)) / number * 1e9


def sync_closed() -> tuple[float, float]:
    def f(x: int) -> int:
        return x

    g = CircuitBreaker()(f)
    namespace = {"f": f, "g": g}
    return best_ns("f(1)", namespace, 1_000_000), best_ns("g(1)", namespace, 1_000_000)


def breaker_shapes() -> dict[str, float]:
    """ns per call of a bare call, a default breaker and three other shapes,
    timed in turns so that they share the machine's noise."""

    def f(x: int) -> int:
        return x

    def protect(**components: object) -> object:
        g = CircuitBreaker(**components)(f)  # type: ignore[arg-type]
        for i in range(200):  # a full window
            g(i)  # type: ignore[operator]
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


def open_rejection() -> tuple[float, float]:
    cb = CircuitBreaker(tripper=MinRequests(1), retry=Never())

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
    per_breaker = memory_per_breaker()
    if per_breaker is not None:
        print(f"memory per breaker with a full CountWindow(100): "
              f"{per_breaker:6.0f} bytes RSS  (goal <= 1024)")


if __name__ == "__main__":
    main()
