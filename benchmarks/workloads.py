"""The workloads of ``benchmarks/compare.py``, for one library in one process.

Run by compare.py with the interpreter of the library's own venv; prints one
JSON object on standard output.  Standard library only, so that it runs in
any of those venvs:

    python benchmarks/workloads.py ADAPTER [--quick]

ADAPTER is one of ``fluxgate``, ``pybreaker``, ``circuitbreaker``,
``aiobreaker``, ``interlock-cb``, ``purgatory`` (``fluxgate`` serves both
this tree and 0.9.4, whose API is the same).  The workloads, in the order they run:

- memory: resident set growth (``/proc/self/statm``; tracemalloc where there
  is no ``/proc``) over N breakers, each after 100 successful calls through
  ``breaker.call``, divided by N; first, while the process is fresh;
- closed: a call of ``f(x) -> x`` through the decorated breaker, CLOSED,
  against ``f`` itself;
- async: an ``await`` of ``async def f(x) -> x`` through the library's async
  breaker, against awaiting ``f`` itself;
- open: a call refused by an OPEN breaker, its exception caught, against
  raising and catching a plain exception;
- threads: 8 threads each making M failing calls through one breaker that
  never trips; the calls made against the failures the breaker counted.

Each timing is a loop of many calls (about 20 ms) timed with
``time.perf_counter_ns``, loop overhead included; the loop is repeated 25
times, the bare and protected loops alternating, and the best repeat of each
is kept.  Each loop is compiled afresh so that its call site's
specialisation belongs to one callee.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

THREADS = 8


@dataclass(frozen=True)
class Budget:
    repeat: int  # timed repeats of each loop; the best is kept
    loop_seconds: float  # how long one timed loop aims to take
    breakers: int  # breakers built for the memory workload
    thread_calls: int  # failing calls made by each thread


# Many short loops rather than a few long ones: on a busy machine the best of
# them is more likely to have run without being preempted.
FULL = Budget(repeat=25, loop_seconds=0.02, breakers=10_000, thread_calls=40_000)
QUICK = Budget(repeat=5, loop_seconds=0.005, breakers=1_000, thread_calls=4_000)


class Refused(Exception):
    """The baseline's exception: raised and caught with no breaker involved."""


def ok(x: int) -> int:
    return x


def fail(x: int) -> int:
    raise ValueError(x)


# --------------------------------------------------------------------------
# Adapters: each library's closest configuration to "a count window of 100
# calls, open at a 50% failure rate, 60 s before trying again".


class Adapter:
    name = ""
    counter = ""  # what the threads workload reads, "" when nothing fits
    async_note = ""  # why there is no async workload, "" when there is one

    def version(self) -> str:
        from importlib.metadata import version

        return version(self.name)

    def breaker(self) -> Any:
        """A breaker in the common configuration."""
        raise NotImplementedError

    def decorate(self, breaker: Any, func: Callable[..., Any]) -> Callable[..., Any]:
        return breaker(func)  # type: ignore[no-any-return]

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        return None

    def call(self, breaker: Any, func: Callable[..., Any], arg: int) -> Any:
        return breaker.call(func, arg)

    def refusal(self) -> type[BaseException]:
        raise NotImplementedError

    def failures_to_open(self) -> int:
        raise NotImplementedError

    def is_open(self, breaker: Any) -> bool:
        raise NotImplementedError

    def counting_breaker(self, calls: int) -> Any:
        """A breaker that never trips within ``calls`` failures, or None."""
        return None

    def counted(self, breaker: Any) -> int:
        raise NotImplementedError


class Fluxgate(Adapter):
    name = "fluxgate"
    counter = "info().metrics.total_count"

    def version(self) -> str:
        version = super().version()
        try:
            import fluxgate._fluxgate  # noqa: F401
        except ImportError:
            return version
        return version + " (native)"

    def _config(self, size: int, min_requests: int) -> dict[str, Any]:
        from fluxgate.retries import Cooldown
        from fluxgate.trackers import All
        from fluxgate.trippers import FailureRate, MinRequests
        from fluxgate.windows import CountWindow

        return {
            "window": CountWindow(size),
            "tracker": All(),
            "tripper": MinRequests(min_requests) & FailureRate(0.5),
            "retry": Cooldown(60.0),
        }

    def breaker(self) -> Any:
        from fluxgate import CircuitBreaker

        return CircuitBreaker(**self._config(100, 100))

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        from fluxgate import AsyncCircuitBreaker

        return AsyncCircuitBreaker(**self._config(100, 100))(func)

    def refusal(self) -> type[BaseException]:
        from fluxgate import CallNotPermittedError

        return CallNotPermittedError

    def failures_to_open(self) -> int:
        return 100

    def is_open(self, breaker: Any) -> bool:
        return breaker.info().state == "open"  # type: ignore[no-any-return]

    def counting_breaker(self, calls: int) -> Any:
        from fluxgate import CircuitBreaker

        # A window as large as the run; one more call than the run to trip.
        return CircuitBreaker(**self._config(calls, calls + 1))

    def counted(self, breaker: Any) -> int:
        return breaker.info().metrics.total_count  # type: ignore[no-any-return]


class PyBreaker(Adapter):
    name = "pybreaker"
    counter = "fail_counter"
    async_note = "its call_async needs Tornado; no asyncio breaker"

    def breaker(self) -> Any:
        import pybreaker

        return pybreaker.CircuitBreaker(fail_max=50, reset_timeout=60)

    def refusal(self) -> type[BaseException]:
        import pybreaker

        return pybreaker.CircuitBreakerError  # type: ignore[no-any-return]

    def failures_to_open(self) -> int:
        return 50

    def is_open(self, breaker: Any) -> bool:
        return breaker.current_state == "open"  # type: ignore[no-any-return]

    def counting_breaker(self, calls: int) -> Any:
        import pybreaker

        return pybreaker.CircuitBreaker(fail_max=calls + 1, reset_timeout=60)

    def counted(self, breaker: Any) -> int:
        return breaker.fail_counter  # type: ignore[no-any-return]


class CircuitBreakerLib(Adapter):
    name = "circuitbreaker"
    counter = "failure_count"

    def breaker(self) -> Any:
        import circuitbreaker

        return circuitbreaker.CircuitBreaker(
            failure_threshold=50, recovery_timeout=60, expected_exception=Exception
        )

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        return self.breaker()(func)  # type: ignore[no-any-return]

    def refusal(self) -> type[BaseException]:
        import circuitbreaker

        return circuitbreaker.CircuitBreakerError  # type: ignore[no-any-return]

    def failures_to_open(self) -> int:
        return 50

    def is_open(self, breaker: Any) -> bool:
        return bool(breaker.opened)

    def counting_breaker(self, calls: int) -> Any:
        import circuitbreaker

        return circuitbreaker.CircuitBreaker(
            failure_threshold=calls + 1, recovery_timeout=60, expected_exception=Exception
        )

    def counted(self, breaker: Any) -> int:
        return breaker.failure_count  # type: ignore[no-any-return]


class AioBreaker(Adapter):
    name = "aiobreaker"
    counter = "fail_counter"

    def breaker(self) -> Any:
        from datetime import timedelta

        import aiobreaker

        return aiobreaker.CircuitBreaker(fail_max=50, timeout_duration=timedelta(seconds=60))

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        return self.breaker()(func)  # type: ignore[no-any-return]

    def refusal(self) -> type[BaseException]:
        import aiobreaker

        return aiobreaker.CircuitBreakerError  # type: ignore[no-any-return]

    def failures_to_open(self) -> int:
        return 50

    def is_open(self, breaker: Any) -> bool:
        import aiobreaker

        return breaker.current_state == aiobreaker.CircuitBreakerState.OPEN  # type: ignore[no-any-return]

    def counting_breaker(self, calls: int) -> Any:
        from datetime import timedelta

        import aiobreaker

        return aiobreaker.CircuitBreaker(
            fail_max=calls + 1, timeout_duration=timedelta(seconds=60)
        )

    def counted(self, breaker: Any) -> int:
        return breaker.fail_counter  # type: ignore[no-any-return]


class Interlock(Adapter):
    """interlock-cb: a count window, a failure rate and a minimum number of
    calls, like fluxgate's; local state (no storage)."""

    name = "interlock-cb"
    counter = "snapshot().total_calls"

    def _breaker(self, size: int, minimum: int) -> Any:
        import interlock

        config = interlock.Config(
            window_type=interlock.WindowType.COUNT_BASED,
            window_size=size,
            minimum_number_of_calls=minimum,
            failure_rate_threshold=0.5,
            wait_duration_in_open=60.0,
        )
        return interlock.CircuitBreaker(name="workload", config=config)

    def breaker(self) -> Any:
        return self._breaker(100, 100)

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        return self.breaker()(func)  # type: ignore[no-any-return]

    def call(self, breaker: Any, func: Callable[..., Any], arg: int) -> Any:
        return breaker.call(func, arg)

    def refusal(self) -> type[BaseException]:
        import interlock

        return interlock.CircuitOpenError  # type: ignore[no-any-return]

    def failures_to_open(self) -> int:
        return 100

    def is_open(self, breaker: Any) -> bool:
        import interlock

        return breaker.state == interlock.State.OPEN  # type: ignore[no-any-return]

    def counting_breaker(self, calls: int) -> Any:
        # A window as large as the run; one more call than the run to trip.
        return self._breaker(calls, calls + 1)

    def counted(self, breaker: Any) -> int:
        return breaker.snapshot().total_calls  # type: ignore[no-any-return]


class Purgatory(Adapter):
    """purgatory: named circuits kept by a factory (one per process, in
    memory, as its documentation shows); a breaker here is a circuit's name.
    Each call through the decorator or ``get_breaker`` looks the circuit up."""

    name = "purgatory"
    counter = "failure_count"

    def __init__(self) -> None:
        self._factory: Any = None
        self._circuits = 0

    def factory(self) -> Any:
        if self._factory is None:
            from purgatory import SyncCircuitBreakerFactory

            self._factory = SyncCircuitBreakerFactory(default_threshold=50, default_ttl=60)
        return self._factory

    def _breaker(self, threshold: int) -> Any:
        self._circuits += 1
        circuit = f"circuit-{self._circuits}"
        self.factory().get_breaker(circuit, threshold=threshold, ttl=60)
        return circuit

    def breaker(self) -> Any:
        return self._breaker(50)

    def decorate(self, breaker: Any, func: Callable[..., Any]) -> Callable[..., Any]:
        return self.factory()(breaker)(func)  # type: ignore[no-any-return]

    def async_decorated(self, func: Callable[..., Any]) -> Optional[Callable[..., Any]]:
        from purgatory import AsyncCircuitBreakerFactory

        factory = AsyncCircuitBreakerFactory(default_threshold=50, default_ttl=60)
        return factory("async-circuit", threshold=50, ttl=60)(func)  # type: ignore[no-any-return]

    def call(self, breaker: Any, func: Callable[..., Any], arg: int) -> Any:
        with self.factory().get_breaker(breaker):
            return func(arg)

    def refusal(self) -> type[BaseException]:
        from purgatory.domain.model import OpenedState

        return OpenedState  # type: ignore[no-any-return]

    def failures_to_open(self) -> int:
        return 50

    def _context(self, breaker: Any) -> Any:
        return self.factory().uow.contexts.get(breaker)

    def is_open(self, breaker: Any) -> bool:
        return self._context(breaker).state == "opened"  # type: ignore[no-any-return]

    def counting_breaker(self, calls: int) -> Any:
        return self._breaker(calls + 1)

    def counted(self, breaker: Any) -> int:
        return self._context(breaker).failure_count  # type: ignore[no-any-return]


ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        Fluxgate(),
        PyBreaker(),
        CircuitBreakerLib(),
        AioBreaker(),
        Interlock(),
        Purgatory(),
    )
}


# --------------------------------------------------------------------------
# Timing


LOOPS = '''
def closed(func, n):
    start = perf_counter_ns()
    for _ in range(n):
        func(1)
    return perf_counter_ns() - start

async def awaits(func, n):
    start = perf_counter_ns()
    for _ in range(n):
        await func(1)
    return perf_counter_ns() - start

def refused(func, n, error):
    start = perf_counter_ns()
    for _ in range(n):
        try:
            func(1)
        except error:
            pass
    return perf_counter_ns() - start

def raised(func, n, error):
    start = perf_counter_ns()
    for _ in range(n):
        try:
            raise error("Circuit breaker is open")
        except error:
            pass
    return perf_counter_ns() - start
'''


def fresh_loop(kind: str) -> Callable[..., Any]:
    """A new copy of one of LOOPS' functions, with a code object of its own."""
    namespace: dict[str, Any] = {"perf_counter_ns": time.perf_counter_ns}
    exec(LOOPS, namespace)
    return namespace[kind]  # type: ignore[no-any-return]


Timed = Callable[[int], int]  # runs a loop of n iterations, returns nanoseconds


def calibrate(timed: Timed, seconds: float) -> int:
    """How many iterations make one loop of ``timed`` last about ``seconds``."""
    number = 10
    while True:
        taken = timed(number) / 1e9
        if taken >= seconds / 10 or number >= 10**8:
            return max(10, int(number * seconds / max(taken, 1e-9)))
        number *= 10


def best_pair(bare: Timed, protected: Timed, budget: Budget) -> tuple[float, float]:
    """The best nanoseconds per iteration of each loop, the two alternating."""
    number = calibrate(protected, budget.loop_seconds)
    bare_best = protected_best = float("inf")
    for _ in range(budget.repeat):
        bare_best = min(bare_best, bare(number) / number)
        protected_best = min(protected_best, protected(number) / number)
    return bare_best, protected_best


def sync_timed(kind: str, func: Optional[Callable[..., Any]], *extra: Any) -> Timed:
    loop = fresh_loop(kind)
    return lambda n: loop(func, n, *extra)


def async_timed(func: Callable[..., Any]) -> Timed:
    loop = fresh_loop("awaits")
    return lambda n: asyncio.run(loop(func, n))


def closed(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    breaker = adapter.breaker()
    protected = adapter.decorate(breaker, ok)
    if protected(1) != 1:
        raise RuntimeError("the decorated function did not return its result")
    bare, through = best_pair(sync_timed("closed", ok), sync_timed("closed", protected), budget)
    if adapter.is_open(breaker):
        raise RuntimeError("the breaker opened during the CLOSED run")
    return {"bare_ns": bare, "ns": through}


async def aok(x: int) -> int:
    return x


def awaited(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    protected = adapter.async_decorated(aok)
    if protected is None:
        return {"na": adapter.async_note or "no async breaker"}
    if asyncio.run(protected(1)) != 1:
        raise RuntimeError("the decorated coroutine function did not return its result")
    bare, through = best_pair(async_timed(aok), async_timed(protected), budget)
    return {"bare_ns": bare, "ns": through}


def rejection(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    breaker = adapter.breaker()
    protected = adapter.decorate(breaker, fail)
    for _ in range(adapter.failures_to_open()):
        try:
            protected(1)
        except Exception:  # the failure, or the library's error on tripping
            pass
    if not adapter.is_open(breaker):
        raise RuntimeError("the breaker did not open")
    error = adapter.refusal()
    try:
        protected(1)
    except error:
        pass
    else:
        raise RuntimeError("the open breaker let a call through")
    bare, through = best_pair(
        sync_timed("raised", None, Refused), sync_timed("refused", protected, error), budget
    )
    if not adapter.is_open(breaker):
        raise RuntimeError("the breaker left OPEN during the run")
    return {"bare_ns": bare, "ns": through}


# --------------------------------------------------------------------------
# Memory and threads


def rss_bytes() -> Optional[int]:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def memory(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    method = "rss" if rss_bytes() is not None else "tracemalloc"
    gc.collect()
    if method == "rss":
        before = rss_bytes() or 0
    else:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    breakers = []
    for _ in range(budget.breakers):
        breaker = adapter.breaker()
        for i in range(100):
            adapter.call(breaker, ok, i)
        breakers.append(breaker)
    gc.collect()
    if method == "rss":
        after = rss_bytes() or 0
    else:
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    if any(adapter.is_open(breaker) for breaker in breakers[:10]):
        raise RuntimeError("a breaker opened on successes")
    return {"bytes": (after - before) / len(breakers), "method": method, "breakers": len(breakers)}


def threads(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    calls = THREADS * budget.thread_calls
    breaker = adapter.counting_breaker(calls)
    if breaker is None:
        return {"na": "no counter to read"}
    protected = adapter.decorate(breaker, fail)
    barrier = threading.Barrier(THREADS)
    unexpected: list[str] = []

    def hammer() -> None:
        barrier.wait()
        for _ in range(budget.thread_calls):
            try:
                protected(1)
            except ValueError:
                pass
            except Exception as error:  # what a library may raise when racing
                unexpected.append(type(error).__name__)

    workers = [threading.Thread(target=hammer) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    counted = adapter.counted(breaker)
    return {
        "calls": calls,
        "counted": counted,
        "lost": calls - counted,
        "errors": len(unexpected),
        "error_types": sorted(set(unexpected)),
        "counter": adapter.counter,
        "open": adapter.is_open(breaker),
    }


def run(adapter: Adapter, budget: Budget) -> dict[str, Any]:
    results: dict[str, Any] = {
        "adapter": adapter.name,
        "version": adapter.version(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "switch_interval": sys.getswitchinterval(),
    }
    workloads: list[tuple[str, Callable[[Adapter, Budget], dict[str, Any]]]] = [
        ("memory", memory),
        ("closed", closed),
        ("async", awaited),
        ("open", rejection),
        ("threads", threads),
    ]
    for name, workload in workloads:
        try:
            results[name] = workload(adapter, budget)
        except Exception as error:  # reported, the other workloads still run
            results[name] = {"error": f"{type(error).__name__}: {error}"}
    return results


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapter", choices=sorted(ADAPTERS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    json.dump(run(ADAPTERS[args.adapter], QUICK if args.quick else FULL), sys.stdout)
    print()


if __name__ == "__main__":
    main()
