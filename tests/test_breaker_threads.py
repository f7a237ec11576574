"""CircuitBreaker under threads (SPEC.md section 12, DESIGN.md D7): no outcome
lost or counted twice, protected calls run in parallel, and listeners see
each transition exactly once, in order, even while other threads command."""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import GatedWindow, run_threads

from fluxgate import CallNotPermittedError, CircuitBreaker, permits
from fluxgate.retries import Always
from fluxgate.signal import Signal
from fluxgate.trippers import CallContext, FailureStreak, MinRequests
from fluxgate.windows import CountWindow

pytestmark = pytest.mark.usefixtures("frequent_switches")

THREADS = 8
CALLS = 20_000


class Boom(Exception):
    """What the protected function raises."""


def ok() -> int:
    return 1


def boom() -> None:
    raise Boom("boom")


def assert_chain(signals: list[Signal], cb: CircuitBreaker) -> None:
    """Each signal starts where the previous one ended, the first where the
    breaker started and the last where it is now."""
    assert signals, "no transition happened"
    assert signals[0].old_state == "closed"
    for previous, current in zip(signals, signals[1:]):
        assert current.old_state == previous.new_state, (previous, current)
    assert signals[-1].new_state == cb.info().state


# ---- exact counts ----------------------------------------------------------------


def never_trips_python(ctx: CallContext) -> bool:
    return False


BREAKERS: dict[str, Callable[[], CircuitBreaker]] = {
    "native": lambda: CircuitBreaker(
        window=CountWindow(THREADS * CALLS), tripper=MinRequests(10 * THREADS * CALLS)
    ),
    "python-tripper": lambda: CircuitBreaker(
        window=CountWindow(THREADS * CALLS), tripper=never_trips_python
    ),
    "metrics-only": lambda: CircuitBreaker(
        window=CountWindow(THREADS * CALLS), tripper=MinRequests(1)
    ),
}


@pytest.mark.parametrize("kind", BREAKERS)
def test_mixed_calls_give_exact_counts(kind: str) -> None:
    cb = BREAKERS[kind]()
    if kind == "metrics-only":
        cb.metrics_only()
    protected_ok = cb(ok)
    protected_boom = cb(boom)

    def worker(index: int) -> None:
        decorated = index % 2 == 1
        for i in range(CALLS):
            if i % 3 == 0:
                try:
                    protected_boom() if decorated else cb.call(boom)
                except Boom:
                    pass
            else:
                assert (protected_ok() if decorated else cb.call(ok)) == 1

    run_threads([functools.partial(worker, index) for index in range(THREADS)])
    failures_per_thread = len(range(0, CALLS, 3))
    metrics = cb.info().metrics
    assert metrics.total_count == THREADS * CALLS
    assert metrics.failure_count == THREADS * failures_per_thread
    assert cb.info().state == ("metrics_only" if kind == "metrics-only" else "closed")


# ---- parallelism ---------------------------------------------------------------


def test_protected_calls_run_in_parallel() -> None:
    cb = CircuitBreaker()
    protected = cb(time.sleep)
    started = time.perf_counter()
    run_threads([lambda: protected(0.1) for _ in range(THREADS)])
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"{THREADS} calls of 0.1 s took {elapsed:.3f} s"
    assert cb.info().metrics.total_count == THREADS


def test_no_lock_is_held_while_the_function_runs() -> None:
    """Every thread must be inside the protected function at the same time
    for the barrier to open."""
    cb = CircuitBreaker()
    inside = threading.Barrier(THREADS, timeout=30)
    protected = cb(inside.wait)
    run_threads([protected for _ in range(THREADS)])
    assert cb.info().metrics.total_count == THREADS


# ---- signals under concurrent transitions --------------------------------------


def caller(cb: CircuitBreaker, seed: int, calls: int) -> Callable[[], None]:
    def run() -> None:
        rng = random.Random(seed)
        for _ in range(calls):
            try:
                cb.call(boom if rng.random() < 0.5 else ok)
            except (Boom, CallNotPermittedError):
                pass

    return run


def commander(cb: CircuitBreaker, seed: int, commands: int) -> Callable[[], None]:
    def run() -> None:
        rng = random.Random(seed)
        choices = [cb.reset, cb.disable, cb.metrics_only, cb.force_open]
        for _ in range(commands):
            rng.choice(choices)()
            time.sleep(0)

    return run


TRIPPERS: dict[str, Callable[[], Any]] = {
    "native": lambda: FailureStreak(2),
    "python": lambda: lambda ctx: ctx.consecutive_failures >= 2,
}


@pytest.mark.parametrize("tripper", TRIPPERS)
def test_signals_form_a_chain_while_threads_command(tripper: str) -> None:
    first: list[Signal] = []
    second: list[Signal] = []

    def yielding(signal: Signal) -> None:
        second.append(signal)
        time.sleep(0)  # let other threads transition meanwhile

    cb = CircuitBreaker(
        window=CountWindow(10),
        tripper=TRIPPERS[tripper](),
        retry=Always(),
        permit=permits.All(),
        listeners=[first.append, yielding],
    )
    # Calls and commands at once, then calls alone: a verdict overtaken by a
    # command is discarded, and the last command may leave the breaker
    # DISABLED or FORCED_OPEN, so only the second phase surely trips it.
    run_threads(
        [caller(cb, seed, 5_000) for seed in range(6)]
        + [commander(cb, 100 + seed, 300) for seed in range(2)]
    )
    commanded = len(first)
    cb.reset()
    run_threads([caller(cb, seed, 2_000) for seed in range(6)])
    assert_chain(first, cb)
    assert second == first
    assert commanded >= 600
    automatic = {(s.old_state, s.new_state) for s in first[commanded:]}
    assert {("closed", "open"), ("open", "half_open")} <= automatic


def test_listeners_calling_back_under_threads() -> None:
    signals: list[Signal] = []

    def listener(signal: Signal) -> None:
        signals.append(signal)
        cb.info()
        if signal.new_state == "open":
            cb.reset()

    cb = CircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=Always(),
        permit=permits.All(),
        listeners=[listener],
    )
    run_threads([caller(cb, seed, 2_000) for seed in range(THREADS)])
    assert_chain(signals, cb)
    assert ("open", "closed") in {(s.old_state, s.new_state) for s in signals}


# ---- outcomes from an earlier period -------------------------------------------


class InFlight:
    """A protected call held open in another thread until released."""

    def __init__(self, cb: CircuitBreaker, succeed: bool) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.outcome: list[object] = []
        self.succeed = succeed
        self.thread = threading.Thread(target=self._run, args=(cb,))
        self.thread.start()
        assert self.started.wait(30)

    def _work(self) -> str:
        self.started.set()
        assert self.release.wait(30)
        if not self.succeed:
            raise Boom("late")
        return "late"

    def _run(self, cb: CircuitBreaker) -> None:
        try:
            self.outcome.append(cb.call(self._work))
        except Exception as error:  # noqa: BLE001 - inspected by the test
            self.outcome.append(error)

    def finish(self) -> object:
        self.release.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.outcome[0]


@pytest.mark.parametrize("succeed", [True, False], ids=["success", "failure"])
def test_an_outcome_from_an_earlier_period_is_discarded(succeed: bool) -> None:
    signals: list[Signal] = []
    cb = CircuitBreaker(
        window=CountWindow(10), tripper=FailureStreak(1), listeners=[signals.append]
    )
    call = InFlight(cb, succeed)
    cb.force_open()
    cb.reset()  # CLOSED again, but a later period
    outcome = call.finish()
    if succeed:
        assert outcome == "late"
    else:
        assert isinstance(outcome, Boom)
    assert cb.info().state == "closed"
    assert cb.info().metrics.total_count == 0
    assert [(s.old_state, s.new_state) for s in signals] == [
        ("closed", "forced_open"),
        ("forced_open", "closed"),
    ]


def test_a_stale_half_open_failure_does_not_reopen() -> None:
    signals: list[Signal] = []
    cb = CircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=Always(),
        permit=permits.All(),
        listeners=[signals.append],
    )
    with pytest.raises(Boom):
        cb.call(boom)
    slow = InFlight(cb, succeed=False)  # admitted in HALF_OPEN
    assert cb.info().state == "half_open"
    assert cb.call(ok) == 1  # closes the breaker meanwhile
    assert isinstance(slow.finish(), Boom)
    assert cb.info().state == "closed"
    assert cb.info().reopens == 0
    assert cb.info().metrics.total_count == 0
    assert [(s.old_state, s.new_state) for s in signals] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_overlapping_calls_in_one_period_both_count() -> None:
    cb = CircuitBreaker(window=CountWindow(10), tripper=MinRequests(100))
    call = InFlight(cb, succeed=True)
    assert cb.call(ok) == 1
    assert call.finish() == "late"
    assert cb.info().metrics.total_count == 2


def test_a_python_tripper_verdict_overtaken_by_a_command_is_dropped() -> None:
    """A Python tripper runs outside the breaker's lock: a command landing
    meanwhile (here from the tripper itself) starts a new period, and the
    verdict on the old one is not applied."""
    signals: list[Signal] = []

    def tripper(ctx: CallContext) -> bool:
        cb.reset()
        return True

    cb = CircuitBreaker(window=CountWindow(10), tripper=tripper, listeners=[signals.append])
    assert cb.call(ok) == 1
    assert cb.info().state == "closed"
    assert [(s.old_state, s.new_state) for s in signals] == [("closed", "closed")]


def test_a_retry_overtaken_by_a_command_admits_by_the_new_state() -> None:
    signals: list[Signal] = []

    def retry(changed_at: float, reopens: int) -> bool:
        cb.force_open()
        return True

    cb = CircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=retry,
        permit=permits.All(),
        listeners=[signals.append],
    )
    with pytest.raises(Boom):
        cb.call(boom)
    ran: list[int] = []
    with pytest.raises(CallNotPermittedError, match="^Circuit breaker is forced open$"):
        cb.call(ran.append, 1)
    assert ran == []
    assert [(s.old_state, s.new_state) for s in signals] == [
        ("closed", "open"),
        ("open", "forced_open"),
    ]


def test_a_record_in_a_python_window_never_lands_after_the_reset_of_a_transition() -> None:
    # A call admitted in CLOSED is recording into a window written in Python
    # when another thread forces the breaker open. Whatever the order, the
    # window must not keep that record once the transition has reset it.
    window = GatedWindow(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    caller = threading.Thread(target=cb.call, args=(lambda: None,))
    caller.start()
    assert window.entered.wait(30)
    commander = threading.Thread(target=cb.force_open)
    commander.start()
    # Give the command every chance to reset the window before the record
    # lands (it must wait for the record instead); then let the record go on.
    commander.join(0.2)
    window.opened.set()
    caller.join(30)
    commander.join(30)
    assert not caller.is_alive() and not commander.is_alive()
    info = cb.info()
    assert info.state == "forced_open"
    assert info.metrics.total_count == 0


def test_a_python_window_may_command_its_breaker_from_record() -> None:
    class Commanding(CountWindow):
        def record(self, record: Any) -> None:
            super().record(record)
            if record.success:
                cb.force_open()

    cb = CircuitBreaker(window=Commanding(10), tripper=MinRequests(1_000))
    cb.call(lambda: None)
    assert cb.info().state == "forced_open"
