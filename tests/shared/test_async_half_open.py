"""AsyncCircuitBreaker on a shared segment: the HALF_OPEN slots are the
host's, so however many processes probe at once, no more than
``max_half_open_calls`` probes run on the host; a slot held by a process
that was killed is free again."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from fluxgate.shared import HostMemory

from .workers import (
    DEADLINE,
    ON_WINDOWS,
    SKIP_REASON,
    Boom,
    ProbeCounters,
    collect,
    context,
    fail,
    half_open_async_breaker,
    one_probe_worker,
    probing_worker,
    slot_holding_worker,
    slow_build,
    start_process,
    stop_process,
)

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON),
    pytest.mark.no_leakcheck("the calls run in other processes"),
]

PROCESSES = 3
TASKS = 10
PROBES = 5 if slow_build() else 10


def open_breaker(shared: HostMemory, limit: int) -> None:
    """One failure opens the breaker (in this process, which then leaves
    the probing to the others)."""

    async def trip() -> str:
        breaker = half_open_async_breaker(shared, limit)
        with pytest.raises(Boom):
            await breaker.call(fail)  # type: ignore[arg-type]
        return breaker.info().state

    assert asyncio.run(trip()) == "open"


@pytest.mark.parametrize("limit", [1, 3])
def test_host_wide_probes_never_exceed_max_half_open_calls(tmp_path, limit) -> None:
    shared = HostMemory("probes", directory=tmp_path)
    open_breaker(shared, limit)
    ctx = context("fork")
    counters = ProbeCounters.make(ctx)
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=probing_worker,
            args=(shared, limit, TASKS, PROBES, counters, barrier, results),
            daemon=True,
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

    # Every probe ran (a call waits for a slot, it is not refused)...
    assert counters.finished.value == PROCESSES * TASKS * PROBES
    assert counters.running.value == 0
    # ...and never more at once on the host than the slots allow.
    assert 1 <= counters.peak.value <= limit
    # The breaker stayed HALF_OPEN throughout: no probe reopened it.
    assert reports == [("half_open", 0)] * PROCESSES


def test_a_slot_held_by_a_killed_process_is_free(tmp_path) -> None:
    limit = 2
    shared = HostMemory("slots", directory=tmp_path)
    open_breaker(shared, limit)
    ctx = context("fork")
    holding = ctx.Event()
    holder = ctx.Process(target=slot_holding_worker, args=(shared, limit, holding), daemon=True)
    start_process(holder)
    try:
        assert holding.wait(DEADLINE), "the probes never started"
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(DEADLINE)
        assert holder.exitcode == -signal.SIGKILL
    finally:
        stop_process(holder)

    results = ctx.Queue()
    prober = ctx.Process(target=one_probe_worker, args=(shared, limit, results), daemon=True)
    start_process(prober)
    try:
        [state] = collect(results, [prober])
    finally:
        stop_process(prober)
    assert state == "half_open"
