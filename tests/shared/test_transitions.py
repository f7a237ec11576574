"""Transitions and commands across processes: a trip made in one process
refuses the next call in another, the trippers decide on the host's metric
and failure streak, commands act on the whole host, exactly one process
makes (and signals) each transition, and a record is applied only in the
period it was admitted in."""

from __future__ import annotations

from typing import Any

import pytest

from fluxgate import CircuitBreaker
from fluxgate.permits import All as PermitAll
from fluxgate.retries import Always, Never
from fluxgate.shared import HostMemory
from fluxgate.trippers import FailureRate, FailureStreak, MinRequests
from fluxgate.windows import CountWindow

from .workers import (
    DEADLINE,
    ON_WINDOWS,
    SKIP_REASON,
    collect,
    context,
    racing_worker,
    slow_build,
    start_process,
    stop_process,
)

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON),
    pytest.mark.no_leakcheck("the breakers run in other processes"),
]

KINDS = ["sync", "async"]


def config(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        window=CountWindow(100),
        tripper=MinRequests(3) & FailureRate(0.5),
        retry=Never(),
        shared=HostMemory("svc", directory=tmp_path),
    )
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize("kind", KINDS)
def test_a_trip_in_one_process_refuses_the_next_call_in_another(tmp_path, remotes, kind) -> None:
    a = remotes(kind, **config(tmp_path))
    b = remotes(kind, **config(tmp_path))
    assert [a.call("fail") for _ in range(3)] == ["failed"] * 3
    assert a.info().state == "open"

    assert b.call("ok") == "refused: Circuit breaker is open"
    assert b.info().state == "open"
    assert b.info() == a.info()
    # Only the process that made the transition signals it.
    assert a.signals() == [("closed", "open")]
    assert b.signals() == []


def test_a_process_that_never_called_sees_the_state_in_info(tmp_path, remotes) -> None:
    kwargs = config(tmp_path)
    observer = CircuitBreaker(**kwargs)
    a = remotes(**kwargs)
    a.calls(2, fail_every=1)
    assert observer.info().metrics.total_count == 2
    assert observer.info().metrics.failure_count == 2
    a.call("fail")
    info = observer.info()
    assert info.state == "open"
    assert info.changed_at == a.info().changed_at
    assert info.metrics.total_count == 0  # the transition emptied the window


@pytest.mark.parametrize("kind", KINDS)
def test_the_tripper_decides_on_the_host_metric(tmp_path, remotes, kind) -> None:
    a = remotes(kind, **config(tmp_path))
    b = remotes(kind, **config(tmp_path))
    assert a.call("fail") == "failed"
    assert a.call("fail") == "failed"
    assert a.info().state == "closed"  # 2 calls: under MinRequests(3)
    assert b.call("fail") == "failed"  # the host's third
    assert b.info().state == "open"
    assert b.signals() == [("closed", "open")]
    assert a.signals() == []
    assert a.call("ok").startswith("refused")


def test_the_failure_streak_is_shared(tmp_path, remotes) -> None:
    kwargs = config(tmp_path, tripper=FailureStreak(3))
    a, b = remotes(**kwargs), remotes(**kwargs)
    assert [a.call("fail"), b.call("fail"), b.call("ok")] == ["failed", "failed", "ok"]
    # The success in b ended the streak a had started.
    assert [a.call("fail"), a.call("fail")] == ["failed", "failed"]
    assert a.info().state == "closed"
    assert b.call("fail") == "failed"
    assert b.info().state == "open"
    assert a.call("ok").startswith("refused")


@pytest.mark.parametrize("kind", KINDS)
def test_commands_are_host_wide(tmp_path, remotes, kind) -> None:
    a = remotes(kind, **config(tmp_path))
    b = remotes(kind, **config(tmp_path))

    a.command("force_open")
    assert b.info().state == "forced_open"
    assert b.call("ok") == "refused: Circuit breaker is forced open"

    b.command("reset")
    assert a.info().state == "closed"
    assert a.call("ok") == "ok"

    b.command("disable")
    assert a.info().state == "disabled"
    assert a.calls(4, fail_every=1) == (0, 4, 0)  # run, but nothing recorded
    assert b.info().total_count == 0

    a.command("metrics_only")
    assert b.info().state == "metrics_only"
    assert b.calls(8, fail_every=1) == (0, 8, 0)  # recorded, never trips
    assert a.info().state == "metrics_only"
    assert a.info().total_count == 8
    assert a.info().failure_count == 8

    # Each process signalled the commands it gave, and only those.
    assert a.signals() == [("closed", "forced_open"), ("disabled", "metrics_only")]
    assert b.signals() == [("forced_open", "closed"), ("closed", "disabled")]


def test_reset_in_one_process_closes_and_empties_the_window_for_all(tmp_path, remotes) -> None:
    kwargs = config(tmp_path, tripper=MinRequests(5) & FailureRate(0.5))
    a, b = remotes(**kwargs), remotes(**kwargs)
    assert a.calls(4, fail_every=1) == (0, 4, 0)
    assert b.info().total_count == 4
    b.command("reset")
    assert a.info().total_count == 0
    # The window a had filled is gone: four more failures do not trip.
    assert a.calls(4, fail_every=1) == (0, 4, 0)
    assert b.info().state == "closed"

    assert a.call("fail") == "failed"  # the fifth since the reset
    assert b.info().state == "open"
    b.command("reset")
    assert a.info().state == "closed"
    assert a.call("ok") == "ok"
    assert a.signals() == [("closed", "open")]
    assert b.signals() == [("closed", "closed"), ("open", "closed")]


def test_half_open_and_reopens_are_shared(tmp_path, remotes) -> None:
    kwargs = config(tmp_path, tripper=FailureStreak(1), retry=Always(), permit=PermitAll())
    a, b = remotes(**kwargs), remotes(**kwargs)
    assert a.call("fail") == "failed"
    assert b.info().state == "open"

    # b's call moves OPEN to HALF_OPEN, fails there and reopens the breaker.
    assert b.call("fail") == "failed"
    assert a.info().state == "open"
    assert a.info().reopens == 1
    assert b.signals() == [("open", "half_open"), ("half_open", "open")]

    # a's call moves it to HALF_OPEN again and its success closes it.
    assert a.call("ok") == "ok"
    assert b.info().state == "closed"
    assert b.info().reopens == 0
    assert a.signals() == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert a.info() == b.info()


@pytest.mark.parametrize("kind", KINDS)
def test_an_outcome_from_an_earlier_period_is_dropped(tmp_path, remotes, kind) -> None:
    # One failure would open this breaker, but a's failing call was admitted
    # before b's reset started a new period: it is not recorded anywhere.
    kwargs = config(tmp_path, tripper=MinRequests(1) & FailureRate(0.5))
    a, b = remotes(kind, **kwargs), remotes(kind, **kwargs)
    a.send("call", "block_fail")
    assert a.entered.wait(DEADLINE)
    b.command("reset")
    a.release.set()
    assert a.receive() == "failed"

    assert b.info().state == "closed"
    assert b.info().total_count == 0
    assert a.info() == b.info()
    assert a.signals() == []
    assert b.call("fail") == "failed"  # a failure of this period does open it
    assert a.info().state == "open"


def test_an_outcome_admitted_before_a_trip_elsewhere_is_dropped(tmp_path, remotes) -> None:
    kwargs = config(tmp_path, tripper=FailureStreak(1))
    a, b = remotes(**kwargs), remotes(**kwargs)
    a.send("call", "block_ok")
    assert a.entered.wait(DEADLINE)
    assert b.call("fail") == "failed"  # opens the breaker while a's call runs
    b.command("reset")
    a.release.set()
    assert a.receive() == "ok"  # the caller still gets its result
    info = b.info()
    assert (info.state, info.total_count) == ("closed", 0)
    assert b.signals() == [("closed", "open"), ("open", "closed")]
    assert a.signals() == []


def test_exactly_one_process_makes_each_transition(tmp_path) -> None:
    # Four processes fail at once until refused: in each round exactly one
    # of them opens the breaker and signals it, and all see it open.
    processes, rounds = 4, 5 if slow_build() else 30
    shared = HostMemory("race", directory=tmp_path)
    resetter = CircuitBreaker(
        window=CountWindow(1_000), tripper=MinRequests(200), retry=Never(), shared=shared
    )
    ctx = context("fork")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=racing_worker, args=(shared, 200, rounds, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            start_process(worker)
        for _ in range(rounds):
            barrier.wait(DEADLINE)  # the round starts
            barrier.wait(DEADLINE)  # every worker was refused
            assert resetter.info().state == "open"
            resetter.reset()
        reports = collect(results, workers)
    finally:
        for worker in workers:
            stop_process(worker)
    opened = sum(signals.count(("closed", "open")) for signals, _ in reports)
    assert opened == rounds
    assert all(set(signals) <= {("closed", "open")} for signals, _ in reports)
    assert all(states == ["open"] * rounds for _, states in reports)
