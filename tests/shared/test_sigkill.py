"""Processes SIGKILLed in a loop while others call the same shared breaker,
some of them in the middle of a call or of recording one: the others keep
making progress after every kill, no record of theirs is lost, each killed
process leaves at most its one call under way counted or not, and a process
started right after a kill attaches and calls at once."""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from typing import Any

import pytest

from fluxgate import CircuitBreaker
from fluxgate.retries import Never
from fluxgate.shared import HostMemory
from fluxgate.windows import CountWindow, TimeWindow

from .workers import (
    DEADLINE,
    NEVER_TRIPS,
    ON_WINDOWS,
    SKIP_REASON,
    collect,
    context,
    late_worker,
    slow_build,
    start_process,
    steady_worker,
    stop_process,
    victim_worker,
)

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON),
    pytest.mark.skipif(sys.platform == "darwin", reason="forks many processes quickly"),
    pytest.mark.heavy,
    pytest.mark.no_leakcheck("the calls run in other processes"),
]

STEADY = 2  # processes calling throughout
ROUNDS = 8 if slow_build() else 40  # processes killed
ROUND_CALLS = 1_000  # calls each steady process may make while a victim runs
PROGRESS = 300  # calls each steady process must make after each kill
VICTIM_CAP = 4_000  # a victim stops calling there (it is killed long before)
LATE_CALLS = 100

# Large enough to hold every record the test makes: the window's totals
# are then the count of the records that reached it.
WINDOWS = {
    "count": lambda: CountWindow(STEADY * ROUNDS * (ROUND_CALLS + PROGRESS) + (ROUNDS + 1) * VICTIM_CAP + LATE_CALLS),
    "time": lambda: TimeWindow(3600),
}


def wait_until(condition: Any, what: str) -> None:
    """Poll ``condition`` until true; a generous deadline only turns a hang
    (a wedged process) into a failure."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no progress: {what}")
        time.sleep(0.0005)


class Victims:
    """Start processes that call without pause and kill each at some point
    of its calls; keep what each had counted."""

    def __init__(self, ctx: Any, shared: HostMemory, window_kind: str) -> None:
        self.ctx = ctx
        self.shared = shared
        self.window_kind = window_kind
        self.made: list[int] = []
        self.failed: list[int] = []
        self.random = random.Random(1234)

    def run_one(self, index: int, while_running: Any = lambda: None, reset_every: int = 0) -> None:
        made, failed = self.ctx.RawValue("q", 0), self.ctx.RawValue("q", 0)
        # One victim in four spends its calls mostly in Python, the rest
        # mostly in the breaker (recording under the segment's lock).
        busy = index % 4 == 1
        victim = self.ctx.Process(
            target=victim_worker,
            args=(
                self.shared,
                WINDOWS[self.window_kind](),
                made,
                failed,
                VICTIM_CAP,
                busy,
                reset_every,
            ),
            daemon=True,
        )
        start_process(victim)
        try:
            wait_until(lambda: made.value >= 1 or victim.exitcode is not None, "a victim starting")
            while_running()
            target = self.random.randrange(2, VICTIM_CAP // (20 if busy else 2))
            wait_until(lambda: made.value >= target or victim.exitcode is not None, "a victim calling")
            assert victim.exitcode is None, f"a victim ended by itself: {victim.exitcode}"
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(DEADLINE)
            assert victim.exitcode == -signal.SIGKILL
        finally:
            stop_process(victim)
        self.made.append(made.value)
        self.failed.append(failed.value)


@pytest.mark.parametrize("window_kind", list(WINDOWS))
def test_killed_processes_never_stop_the_others(tmp_path, window_kind) -> None:
    ctx = context("fork")
    shared = HostMemory("killed", directory=tmp_path)
    stop = ctx.Event()
    allowance = ctx.RawValue("q", 0)
    made = [ctx.RawValue("q", 0) for _ in range(STEADY)]
    failed = [ctx.RawValue("q", 0) for _ in range(STEADY)]
    steady = [
        ctx.Process(
            target=steady_worker,
            args=(shared, WINDOWS[window_kind](), allowance, made[i], failed[i], stop),
            daemon=True,
        )
        for i in range(STEADY)
    ]
    victims = Victims(ctx, shared, window_kind)

    def let_steady_call(calls: int) -> None:
        allowance.value += calls

    try:
        for process in steady:
            start_process(process)
        for index in range(ROUNDS):
            # The steady processes call while the victim runs and is killed...
            victims.run_one(index, while_running=lambda: let_steady_call(ROUND_CALLS))
            # ...and after it: each makes its calls, whatever lock or record
            # the victim left behind.
            let_steady_call(PROGRESS)
            target = allowance.value
            for i, count in enumerate(made):
                wait_until(
                    lambda: count.value >= target,
                    f"steady process {i} after kill {index} ({count.value} of {target} calls)",
                )
        stop.set()
        for process in steady:
            process.join(DEADLINE)
            assert process.exitcode == 0
    finally:
        stop.set()
        for process in steady:
            stop_process(process)

    steady_made = sum(count.value for count in made)
    steady_failed = sum(count.value for count in failed)
    assert steady_made == STEADY * ROUNDS * (ROUND_CALLS + PROGRESS)
    observer = CircuitBreaker(
        window=WINDOWS[window_kind](), tripper=NEVER_TRIPS, retry=Never(), shared=shared
    )
    metrics = observer.info().metrics
    # Every call that returned was recorded; a killed process's call under
    # way may or may not have been.
    low = steady_made + sum(victims.made)
    assert low <= metrics.total_count <= low + ROUNDS
    low = steady_failed + sum(victims.failed)
    assert low <= metrics.failure_count <= low + ROUNDS
    assert observer.info().state == "closed"

    # One more kill, and a new process attaches straight after it.
    victims.run_one(ROUNDS)
    before = observer.info().metrics.total_count
    results = ctx.Queue()
    late = ctx.Process(target=late_worker, args=(shared, WINDOWS[window_kind](), LATE_CALLS, results))
    start_process(late)
    try:
        [(late_made, late_failed, late_seen)] = collect(results, [late])
    finally:
        stop_process(late)
    assert late.exitcode == 0
    assert (late_made, late_failed) == (LATE_CALLS, LATE_CALLS // 4)
    after = observer.info().metrics.total_count
    # The last victim's call under way may be counted when its lock is taken over.
    assert before + LATE_CALLS <= after <= before + LATE_CALLS + 1
    assert late_seen == after
    # And this process, too, records at once.
    observer.call(lambda: None)
    assert observer.info().metrics.total_count == after + 1


@pytest.mark.parametrize("window_kind", list(WINDOWS))
def test_processes_killed_while_resetting_leave_a_usable_breaker(tmp_path, window_kind) -> None:
    # The victims reset the breaker every few calls: some die in the middle
    # of a transition. The steady processes keep calling, and afterwards
    # a reset and a known number of calls leave exactly those calls.
    ctx = context("fork")
    shared = HostMemory("resetting", directory=tmp_path)
    stop = ctx.Event()
    allowance = ctx.RawValue("q", 0)
    made = [ctx.RawValue("q", 0) for _ in range(STEADY)]
    failed = [ctx.RawValue("q", 0) for _ in range(STEADY)]
    steady = [
        ctx.Process(
            target=steady_worker,
            args=(shared, WINDOWS[window_kind](), allowance, made[i], failed[i], stop),
            daemon=True,
        )
        for i in range(STEADY)
    ]
    victims = Victims(ctx, shared, window_kind)
    try:
        for process in steady:
            start_process(process)
        for index in range(ROUNDS):
            victims.run_one(index, reset_every=3)
            allowance.value += PROGRESS
            target = allowance.value
            for i, count in enumerate(made):
                wait_until(
                    lambda: count.value >= target,
                    f"steady process {i} after kill {index} ({count.value} of {target} calls)",
                )
        stop.set()
        for process in steady:
            process.join(DEADLINE)
            assert process.exitcode == 0
    finally:
        stop.set()
        for process in steady:
            stop_process(process)

    observer = CircuitBreaker(
        window=WINDOWS[window_kind](), tripper=NEVER_TRIPS, retry=Never(), shared=shared
    )
    assert observer.info().state == "closed"
    observer.reset()
    assert observer.info().metrics.total_count == 0
    results = ctx.Queue()
    late = ctx.Process(target=late_worker, args=(shared, WINDOWS[window_kind](), LATE_CALLS, results))
    start_process(late)
    try:
        [(_, _, late_seen)] = collect(results, [late])
    finally:
        stop_process(late)
    assert late_seen == LATE_CALLS
    metrics = observer.info().metrics
    assert (metrics.total_count, metrics.failure_count) == (LATE_CALLS, LATE_CALLS // 4)
