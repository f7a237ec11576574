"""Four processes record into one shared window at once: the window's totals
are exact, started with "fork" or "spawn", in a count or a time window,
and the running totals stay exact when the count window wraps."""

from __future__ import annotations

import sys

import pytest

from fluxgate import CircuitBreaker
from fluxgate.retries import Never
from fluxgate.shared import HostMemory
from fluxgate.windows import CountWindow, TimeWindow

from .workers import (
    NEVER_TRIPS,
    ON_WINDOWS,
    SKIP_REASON,
    collect,
    context,
    counting_worker,
    make_calls,
    slow_build,
    start_process,
    stop_process,
)

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON),
    pytest.mark.no_leakcheck("the calls run in other processes"),
]

PROCESSES = 4
CALLS = 5_000 if slow_build() else 20_000

WINDOWS = {
    "count": lambda: CountWindow(100_000),
    # Ten minutes of one-second buckets: no bucket is reused during the test.
    "time": lambda: TimeWindow(600),
}

START_METHODS = ["fork", "spawn"]
if sys.platform == "darwin":
    START_METHODS.remove("fork")  # unsafe with the frameworks macOS loads


def run_counting_workers(method: str, shared: HostMemory, window_kind: str) -> list[tuple[int, int, int]]:
    ctx = context(method)
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=counting_worker,
            args=(shared, WINDOWS[window_kind](), CALLS, barrier, results),
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            start_process(worker)
        reports = collect(results, workers)
    finally:
        for worker in workers:
            stop_process(worker)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES
    return reports


@pytest.mark.parametrize("window_kind", list(WINDOWS))
@pytest.mark.parametrize("method", START_METHODS)
def test_concurrent_processes_leave_exact_totals(tmp_path, method, window_kind) -> None:
    shared = HostMemory("totals", directory=tmp_path)
    reports = run_counting_workers(method, shared, window_kind)

    assert len({pid for pid, _, _ in reports}) == PROCESSES
    assert sum(made for _, made, _ in reports) == PROCESSES * CALLS
    assert sum(failed for _, _, failed in reports) == PROCESSES * CALLS // 4

    observer = CircuitBreaker(
        window=WINDOWS[window_kind](), tripper=NEVER_TRIPS, retry=Never(), shared=shared
    )
    info = observer.info()
    assert info.state == "closed"
    assert info.metrics.total_count == PROCESSES * CALLS
    assert info.metrics.failure_count == PROCESSES * CALLS // 4
    assert info.metrics.total_duration >= 0.0


@pytest.mark.parametrize("method", START_METHODS)
def test_a_wrapped_count_window_holds_exactly_the_last_records(tmp_path, method) -> None:
    # The workers' records overflow a window of 1000 many times over; what
    # it holds afterwards must still add up, record by record: 1000 calls
    # made now, one in four failing, replace every one of them.
    shared = HostMemory("wrapped", directory=tmp_path)
    ctx = context(method)
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=counting_worker,
            args=(shared, CountWindow(1_000), CALLS // 4, barrier, results),
        )
        for _ in range(PROCESSES)
    ]
    try:
        for worker in workers:
            start_process(worker)
        collect(results, workers)
    finally:
        for worker in workers:
            stop_process(worker)

    breaker = CircuitBreaker(
        window=CountWindow(1_000), tripper=NEVER_TRIPS, retry=Never(), shared=shared
    )
    metrics = breaker.info().metrics
    assert metrics.total_count == 1_000
    assert 0 <= metrics.failure_count <= 1_000

    make_calls(breaker, 1_000)
    metrics = breaker.info().metrics
    assert metrics.total_count == 1_000
    assert metrics.failure_count == 250


def test_durations_of_every_form_are_shared_exactly(tmp_path, monkeypatch) -> None:
    # Whole nanoseconds are kept in 32 bits, any other duration in full; a
    # second breaker on the segment sees the writer's totals bit for bit as
    # the oldest records leave.
    shared = HostMemory("durations", directory=tmp_path)
    durations = [5.5, 0.1 + 0.2, 37 * 1e-9, 3600.0, 1e-10, 250 * 1e-9]
    readings = []
    for duration in durations:
        readings += [1000.0, 1000.0 + duration]
    clock = iter(readings)
    writer = CircuitBreaker(window=CountWindow(3), tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    observer = CircuitBreaker(window=CountWindow(3), tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    held: list[float] = []
    total = 0.0
    for start, end in zip(readings[::2], readings[1::2]):
        writer.call(int)
        if len(held) == 3:
            total = total - held.pop(0)
        held.append(end - start)
        total = total + (end - start)
        assert repr(observer.info().metrics.total_duration) == repr(total)
