"""Stress tests for many threads at once (SPEC.md section 12, DESIGN.md D7).

They run on every build.  On a free-threaded build with the GIL off they run
truly in parallel, and the ``freethreaded`` CI stage also runs them against a
ThreadSanitizer build of the interpreter and of the extension.  Every thread
starts at one barrier so that they overlap as much as possible; each test
checks what a user could see go wrong under a race: a lost or doubled count,
a signal chain with a gap, a torn metric read by ``info()``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence

import pytest
from conftest import run_threads

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker, permits
from fluxgate.metric import Metric
from fluxgate.retries import Always
from fluxgate.signal import Signal
from fluxgate.trippers import FailureStreak, MinRequests, SlowRate
from fluxgate.windows import CountWindow, TimeWindow

pytestmark = pytest.mark.usefixtures("frequent_switches")

THREADS = 4
CALLS = 3_000
NEVER = 10**12  # a MinRequests that no test reaches: the breaker stays closed

# Every built-in window, large enough to keep every call of a test: a
# TimeWindow of a day keeps everything a test run records.
WINDOWS: dict[str, Callable[[int], CountWindow | TimeWindow]] = {
    "count": lambda calls: CountWindow(calls),
    "time": lambda calls: TimeWindow(86_400),
}


class Boom(Exception):
    """What the protected function raises."""


def ok() -> int:
    return 1


def boom() -> None:
    raise Boom("boom")


def outcome(index: int) -> Callable[[], object]:
    """The i-th call of every worker: one failure in three."""
    return boom if index % 3 == 0 else ok


FAILURES_PER_WORKER = len(range(0, CALLS, 3))


def call(cb: CircuitBreaker, index: int) -> None:
    try:
        cb.call(outcome(index))
    except Boom:
        pass


def assert_consistent(metric: Metric, previous: Metric | None) -> None:
    """What any metric read while calls are being recorded satisfies, unless
    the read tore a record in half."""
    assert 0 <= metric.failure_count <= metric.total_count, metric
    assert metric.total_duration >= 0.0, metric
    for count in metric.slow_counts.values():
        assert 0 <= count <= metric.total_count, metric
    if previous is not None:
        assert metric.total_count >= previous.total_count, (previous, metric)
        assert metric.failure_count >= previous.failure_count, (previous, metric)


def reader(cb: CircuitBreaker, done: threading.Event, *, grows: bool) -> Callable[[], None]:
    """Reads info() until `done` is set, checking every metric it sees (and,
    if the window only `grows`, that no count ever goes down)."""

    def run() -> None:
        previous: Metric | None = None
        reads = 0
        while not done.is_set() or reads == 0:
            metric = cb.info().metrics
            assert_consistent(metric, previous)
            if grows:
                previous = metric
            reads += 1

    return run


def workers_then_done(
    workers: Sequence[Callable[[], None]], done: threading.Event
) -> list[Callable[[], None]]:
    """The workers, the last one to finish setting `done`."""
    remaining = [len(workers)]
    lock = threading.Lock()

    def wrap(worker: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                worker()
            finally:
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return run

    return [wrap(worker) for worker in workers]


# ---- one breaker shared by every thread -----------------------------------------


@pytest.mark.parametrize("window", WINDOWS)
def test_one_shared_breaker_counts_every_call_exactly(window: str) -> None:
    # A slow-call threshold, so that the window keeps slow counts too.
    cb = CircuitBreaker(
        window=WINDOWS[window](THREADS * CALLS),
        tripper=MinRequests(NEVER) & SlowRate(1.0, threshold=1e-9),
    )
    done = threading.Event()

    def worker() -> None:
        for i in range(CALLS):
            call(cb, i)

    run_threads(workers_then_done([worker] * THREADS, done) + [reader(cb, done, grows=True)])
    metrics = cb.info().metrics
    assert metrics.total_count == THREADS * CALLS
    assert metrics.failure_count == THREADS * FAILURES_PER_WORKER
    assert list(metrics.slow_counts) == [1e-9]
    assert cb.info().state == "closed"


@pytest.mark.parametrize("window", WINDOWS)
def test_decorated_functions_and_calls_share_one_count(window: str) -> None:
    cb = CircuitBreaker(window=WINDOWS[window](THREADS * CALLS), tripper=MinRequests(NEVER))
    protected: dict[Callable[[], object], Callable[[], object]] = {ok: cb(ok), boom: cb(boom)}

    def worker() -> None:
        for i in range(CALLS):
            try:
                protected[outcome(i)]()
            except Boom:
                pass

    run_threads([worker] * THREADS)
    metrics = cb.info().metrics
    assert (metrics.total_count, metrics.failure_count) == (
        THREADS * CALLS,
        THREADS * FAILURES_PER_WORKER,
    )


# ---- a breaker per thread ----------------------------------------------------------


@pytest.mark.parametrize("window", WINDOWS)
def test_a_breaker_per_thread_counts_its_own_calls(window: str) -> None:
    breakers = [
        CircuitBreaker(window=WINDOWS[window](CALLS), tripper=MinRequests(NEVER))
        for _ in range(THREADS)
    ]

    def worker(cb: CircuitBreaker, calls: int) -> None:
        for i in range(calls):
            call(cb, i)

    # Each thread makes a different number of calls, so that a call recorded
    # in the wrong breaker shows.
    calls = [CALLS - 7 * index for index in range(THREADS)]
    run_threads([functools.partial(worker, cb, n) for cb, n in zip(breakers, calls)])
    for cb, n in zip(breakers, calls):
        metrics = cb.info().metrics
        assert (metrics.total_count, metrics.failure_count) == (n, len(range(0, n, 3)))


# ---- calls and commands at once: the signal chain ----------------------------------


def assert_chain(signals: list[Signal], final_state: str) -> None:
    assert signals, "no transition happened"
    assert signals[0].old_state == "closed"
    for previous, current in zip(signals, signals[1:]):
        assert current.old_state == previous.new_state, (previous, current)
    assert signals[-1].new_state == final_state


@pytest.mark.parametrize("window", WINDOWS)
def test_calls_and_commands_keep_the_signal_chain_unbroken(window: str) -> None:
    signals: list[Signal] = []
    cb = CircuitBreaker(
        window=WINDOWS[window](10),
        tripper=FailureStreak(2),
        retry=Always(),
        permit=permits.All(),
        listeners=[signals.append],
    )
    done = threading.Event()

    def caller(seed: int) -> None:
        for i in range(CALLS):
            try:
                cb.call(boom if (i * 7 + seed) % 5 < 2 else ok)
            except (Boom, CallNotPermittedError):
                pass

    def commander(seed: int) -> None:
        commands = [cb.reset, cb.disable, cb.metrics_only, cb.force_open]
        for i in range(CALLS // 10):
            commands[(i + seed) % len(commands)]()

    run_threads(
        workers_then_done(
            [functools.partial(caller, seed) for seed in range(THREADS - 1)]
            + [functools.partial(commander, 0)],
            done,
        )
        + [reader(cb, done, grows=False)]
    )
    assert_chain(signals, cb.info().state)
    assert len(signals) >= CALLS // 10


# ---- both breakers at once -----------------------------------------------------------


async def async_ok() -> int:
    return 1


async def async_boom() -> None:
    raise Boom("boom")


def test_sync_and_async_breakers_in_parallel_threads() -> None:
    """Threads calling one shared sync breaker while others each run an event
    loop of their own with its own async breaker, all at once."""
    shared = CircuitBreaker(window=CountWindow(THREADS * CALLS), tripper=MinRequests(NEVER))
    own = [
        AsyncCircuitBreaker(window=CountWindow(CALLS), tripper=MinRequests(NEVER))
        for _ in range(THREADS // 2)
    ]

    def sync_worker() -> None:
        for i in range(CALLS):
            call(shared, i)

    def async_worker(acb: AsyncCircuitBreaker) -> None:
        async def main() -> None:
            for i in range(CALLS):
                try:
                    await acb.call(async_boom if i % 3 == 0 else async_ok)
                except Boom:
                    pass

        asyncio.run(main())

    run_threads(
        [sync_worker] * (THREADS - THREADS // 2)
        + [functools.partial(async_worker, acb) for acb in own]
    )
    metrics = shared.info().metrics
    assert metrics.total_count == (THREADS - THREADS // 2) * CALLS
    assert metrics.failure_count == (THREADS - THREADS // 2) * FAILURES_PER_WORKER
    for acb in own:
        metrics = acb.info().metrics
        assert (metrics.total_count, metrics.failure_count) == (CALLS, FAILURES_PER_WORKER)


def test_an_async_breaker_per_thread_keeps_its_signal_chain() -> None:
    chains: list[list[Signal]] = [[] for _ in range(THREADS)]
    breakers = [
        AsyncCircuitBreaker(
            window=CountWindow(10),
            tripper=FailureStreak(2),
            retry=Always(),
            permit=permits.All(),
            listeners=[chain.append],
        )
        for chain in chains
    ]

    def worker(acb: AsyncCircuitBreaker, seed: int) -> None:
        async def main() -> None:
            for i in range(CALLS // 2):
                try:
                    await acb.call(async_boom if (i + seed) % 4 < 2 else async_ok)
                except (Boom, CallNotPermittedError):
                    pass
                if i % 100 == 99:
                    await acb.reset()

        asyncio.run(main())

    run_threads([functools.partial(worker, acb, seed) for seed, acb in enumerate(breakers)])
    for chain, acb in zip(chains, breakers):
        assert_chain(chain, acb.info().state)

