"""The synchronous CircuitBreaker's state machine (SPEC.md section 8): each
state, each transition, the commands, ``info()``, ``changed_at``, ``reopens``
and the failure streak, with the defaults and with small configurations."""

from __future__ import annotations

import dataclasses
import inspect
import random
import time
from typing import Any
from unittest import mock

import pytest
from freezegun import freeze_time

import fluxgate
import fluxgate.errors
from fluxgate import CallNotPermittedError, CircuitBreaker, permits, trackers
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.metric import Metric
from fluxgate.retries import Always, Cooldown, Never
from fluxgate.signal import Signal
from fluxgate.state import State
from fluxgate.trippers import CallContext, FailureRate, FailureStreak, HalfOpened, MinRequests
from fluxgate.windows import CountWindow

FROZEN_AT = "2024-01-01 00:00:00"
T0 = 1704067200.0

OPEN = "Circuit breaker is open"
HALF_OPEN = "Circuit breaker is half-open, not executing"
FORCED_OPEN = "Circuit breaker is forced open"

EMPTY = Metric.empty()
NOTHING: dict[str, int] = {}


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


class Boom(Exception):
    """What the protected function raises."""


def ok(value: object = "ok") -> object:
    return value


def boom() -> None:
    raise Boom("boom")


def succeed(cb: CircuitBreaker, times: int = 1) -> None:
    for i in range(times):
        assert cb.call(ok, i) == i


def fail(cb: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            cb.call(boom)


def refused(cb: CircuitBreaker, message: str) -> None:
    """The call is refused with `message`, and the function never runs."""
    ran: list[int] = []
    with pytest.raises(CallNotPermittedError) as caught:
        cb.call(ran.append, 1)
    assert type(caught.value) is CallNotPermittedError
    assert str(caught.value) == message
    assert caught.value.args == (message,)
    assert ran == []


def transitions(signals: list[Signal]) -> list[tuple[str, str]]:
    return [(s.old_state, s.new_state) for s in signals]


def small_breaker(**config: Any) -> tuple[CircuitBreaker, list[Signal]]:
    """CountWindow(4), MinRequests(2) & FailureRate(0.5), Cooldown(60),
    permits.All(), and a listener collecting the signals; `config` overrides."""
    signals: list[Signal] = []
    arguments: dict[str, Any] = {
        "window": CountWindow(4),
        "tripper": MinRequests(2) & FailureRate(0.5),
        "retry": Cooldown(60),
        "permit": permits.All(),
        "listeners": [signals.append],
    }
    arguments.update(config)
    return CircuitBreaker(**arguments), signals


def metric(total: int, failures: int) -> Metric:
    """A metric of instant calls (time frozen, or failures only)."""
    return Metric(total_count=total, total_duration=0.0, failure_count=failures, slow_counts={})


def counts(cb: CircuitBreaker) -> tuple[int, int]:
    """The window's call and failure counts, whatever the calls took."""
    m = cb.info().metrics
    return m.total_count, m.failure_count


# ---- construction, info() ----------------------------------------------------


def test_signature() -> None:
    assert _bare(inspect.signature(CircuitBreaker)) == (
        "(window=None, tracker=None, tripper=None, retry=None, permit=None, listeners=(), "
        "*, shared=None)"
    )


def test_starts_closed_at_construction_time() -> None:
    with freeze_time(FROZEN_AT):
        cb = CircuitBreaker()
        assert cb.info() == CircuitBreakerInfo(
            state="closed", changed_at=T0, reopens=0, metrics=EMPTY
        )


def test_changed_at_is_the_wall_clock() -> None:
    before = time.time()
    cb = CircuitBreaker()
    after = time.time()
    assert before <= cb.info().changed_at <= after
    before = time.time()
    cb.force_open()
    after = time.time()
    assert before <= cb.info().changed_at <= after


def test_info_is_a_snapshot() -> None:
    with freeze_time(FROZEN_AT):
        cb, _ = small_breaker(tripper=MinRequests(100))
        succeed(cb, 2)
        fail(cb)
        info = cb.info()
        succeed(cb)
    assert type(info) is CircuitBreakerInfo
    assert dataclasses.asdict(info) == {
        "state": "closed",
        "changed_at": T0,
        "reopens": 0,
        "metrics": {
            "total_count": 3,
            "total_duration": 0.0,
            "failure_count": 1,
            "slow_counts": {},
        },
    }
    assert cb.info().metrics == metric(4, 1)
    assert type(info.state) is str
    assert type(info.reopens) is int
    assert type(info.changed_at) is float


def test_positional_arguments_in_order() -> None:
    signals: list[Signal] = []
    cb = CircuitBreaker(
        CountWindow(2), trackers.TypeOf(Boom), MinRequests(1), Never(), permits.All(),
        [signals.append],
    )
    with pytest.raises(KeyError):  # untracked by TypeOf(Boom)
        cb.call(NOTHING.__getitem__, "missing")
    assert cb.info().metrics == EMPTY
    succeed(cb)  # MinRequests(1) trips on the first record
    assert transitions(signals) == [("closed", "open")]
    refused(cb, OPEN)  # Never()


def test_none_means_default() -> None:
    cb = CircuitBreaker(None, None, None, None, None)
    fail(cb, 99)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


# ---- the defaults --------------------------------------------------------------


def test_default_tripper_waits_for_100_calls() -> None:
    cb = CircuitBreaker()
    fail(cb, 99)
    assert cb.info().state == "closed"
    assert counts(cb) == (99, 99)
    fail(cb)
    assert cb.info().state == "open"


def test_default_tripper_opens_at_half_failures_even_on_a_success() -> None:
    cb = CircuitBreaker()
    fail(cb, 50)
    succeed(cb, 49)
    assert cb.info().state == "closed"
    assert cb.call(ok, "result") == "result"  # 100 calls, 50 failures
    assert cb.info().state == "open"


def test_default_tripper_stays_closed_below_half_failures() -> None:
    cb = CircuitBreaker()
    succeed(cb, 51)
    fail(cb, 49)
    assert cb.info().state == "closed"


def test_default_window_keeps_the_last_100_calls() -> None:
    cb = CircuitBreaker()
    fail(cb, 49)
    succeed(cb, 151)
    assert counts(cb) == (100, 0)
    assert cb.info().state == "closed"


def test_default_tracker_counts_every_exception() -> None:
    cb = CircuitBreaker()
    for error in (Boom(), KeyError(), TypeError(), OSError(), CallNotPermittedError("x")):

        def raiser(error: Exception = error) -> None:
            raise error

        with pytest.raises(type(error)):
            cb.call(raiser)
    assert cb.info().metrics == metric(5, 5)


def test_default_retry_waits_60_seconds() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker(window=None, tripper=None, retry=None, permit=None)
        fail(cb, 100)
        assert cb.info().state == "open"
        frozen.tick(59)
        refused(cb, OPEN)
        frozen.tick(1)
        with mock.patch("random.random", return_value=0.0):
            succeed(cb)
    assert signals == [
        Signal("closed", "open", T0),
        Signal("open", "half_open", T0 + 60),
        Signal("half_open", "closed", T0 + 60),
    ]


def test_default_permit_ramps_up_from_a_tenth_over_60_seconds() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker(window=None, tripper=None, retry=Always(), permit=None)
        fail(cb, 100)
        with mock.patch("random.random", return_value=0.1):
            refused(cb, HALF_OPEN)  # admits a share of 0.1 at first
        with mock.patch("random.random", return_value=0.09):
            fail(cb)  # admitted; MinRequests(100) keeps it HALF_OPEN
        frozen.tick(30)  # a share of 0.55
        with mock.patch("random.random", return_value=0.6):
            refused(cb, HALF_OPEN)
        with mock.patch("random.random", return_value=0.5):
            fail(cb)
        frozen.tick(30)  # all of them
        with mock.patch("random.random", return_value=0.999):
            succeed(cb)
    assert transitions(signals) == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


# ---- CLOSED ------------------------------------------------------------------


def test_closed_runs_the_call_and_returns_its_result() -> None:
    cb, signals = small_breaker()
    assert cb.call(ok, 42) == 42
    assert counts(cb) == (1, 0)
    assert signals == []


def test_closed_reraises_a_tracked_failure_after_recording_it() -> None:
    cb, _ = small_breaker()
    error = Boom("the one")

    def raiser() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        cb.call(raiser)
    assert caught.value is error
    assert cb.info().metrics == metric(1, 1)


def test_closed_opens_when_the_tripper_says_so() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker()
        fail(cb)
        assert cb.info().state == "closed"
        frozen.tick(5)
        fail(cb)
        assert cb.info() == CircuitBreakerInfo("open", T0 + 5, 0, EMPTY)
    assert signals == [Signal("closed", "open", T0 + 5)]


def test_closed_evaluates_the_tripper_after_a_success_too() -> None:
    cb, signals = small_breaker()
    fail(cb)
    assert cb.call(ok, 7) == 7  # 2 calls, half of them failures
    assert cb.info().state == "open"
    assert transitions(signals) == [("closed", "open")]


def test_count_window_evicts_the_oldest() -> None:
    cb, _ = small_breaker()
    succeed(cb, 10)
    assert counts(cb) == (4, 0)
    fail(cb)
    assert counts(cb) == (4, 1)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_the_tripper_sees_the_closed_state_and_the_metric() -> None:
    contexts: list[CallContext] = []

    def tripper(ctx: CallContext) -> bool:
        contexts.append(ctx)
        return False

    cb, _ = small_breaker(tripper=tripper)
    succeed(cb)
    fail(cb, 2)
    assert [type(c) for c in contexts] == [CallContext] * 3
    assert [c.state for c in contexts] == ["closed"] * 3
    assert [(c.metric.total_count, c.metric.failure_count) for c in contexts] == [
        (1, 0),
        (2, 1),
        (3, 2),
    ]
    assert [c.consecutive_failures for c in contexts] == [0, 1, 2]


# ---- OPEN ----------------------------------------------------------------------


def test_open_refuses_without_calling() -> None:
    cb, signals = small_breaker(retry=Never())
    fail(cb, 2)
    for _ in range(3):
        refused(cb, OPEN)
    assert cb.info().state == "open"
    assert cb.info().metrics == EMPTY
    assert transitions(signals) == [("closed", "open")]


def test_call_not_permitted_error_is_public() -> None:
    assert fluxgate.errors.CallNotPermittedError is CallNotPermittedError
    assert fluxgate.CallNotPermittedError is CallNotPermittedError
    assert issubclass(CallNotPermittedError, Exception)


def test_open_tries_half_open_once_the_retry_allows() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker()
        fail(cb, 2)
        frozen.tick(59)
        refused(cb, OPEN)
        frozen.tick(1)
        assert cb.call(ok, 1) == 1
        assert cb.info() == CircuitBreakerInfo("closed", T0 + 60, 0, EMPTY)
    assert signals == [
        Signal("closed", "open", T0),
        Signal("open", "half_open", T0 + 60),
        Signal("half_open", "closed", T0 + 60),
    ]


def test_always_retries_at_once() -> None:
    cb, signals = small_breaker(retry=Always())
    fail(cb, 2)
    succeed(cb)
    assert transitions(signals) == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_never_stays_open_until_a_command() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb, _ = small_breaker(retry=Never())
        fail(cb, 2)
        frozen.tick(10 * 365 * 86400)
        refused(cb, OPEN)
        cb.reset()
        succeed(cb)
        assert cb.info().state == "closed"


def test_retry_receives_changed_at_and_reopens() -> None:
    asked: list[tuple[float, int]] = []

    def retry(changed_at: float, reopens: int) -> bool:
        asked.append((changed_at, reopens))
        return len(asked) > 1

    with freeze_time(FROZEN_AT) as frozen:
        cb, _ = small_breaker(retry=retry, tripper=FailureStreak(1))
        frozen.tick(3)
        fail(cb)  # OPEN at T0 + 3
        frozen.tick(4)
        refused(cb, OPEN)
        frozen.tick(5)
        fail(cb)  # HALF_OPEN at T0 + 12, then OPEN again
        frozen.tick(1)
        fail(cb)  # HALF_OPEN at T0 + 13, then OPEN again
        assert cb.info() == CircuitBreakerInfo("open", T0 + 13, 2, EMPTY)
    assert asked == [(T0 + 3, 0), (T0 + 3, 0), (T0 + 12, 1)]


def test_the_call_that_leaves_open_is_a_half_open_call() -> None:
    contexts: list[CallContext] = []

    def tripper(ctx: CallContext) -> bool:
        contexts.append(ctx)
        return ctx.state == "closed"

    cb, signals = small_breaker(retry=Always(), tripper=tripper)
    fail(cb)
    fail(cb)  # moves to HALF_OPEN and is recorded there
    assert [c.state for c in contexts] == ["closed", "half_open"]
    assert contexts[1].metric == metric(1, 1)
    assert cb.info() == CircuitBreakerInfo("half_open", cb.info().changed_at, 0, metric(1, 1))
    assert transitions(signals) == [("closed", "open"), ("open", "half_open")]


def test_the_permit_decides_the_call_that_leaves_open() -> None:
    asked: list[float] = []

    def permit(changed_at: float) -> bool:
        asked.append(changed_at)
        return False

    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker(retry=Always(), permit=permit, tripper=FailureStreak(1))
        fail(cb)
        frozen.tick(2)
        refused(cb, HALF_OPEN)  # HALF_OPEN began at T0 + 2 with this call
        frozen.tick(3)
        refused(cb, HALF_OPEN)
        assert cb.info() == CircuitBreakerInfo("half_open", T0 + 2, 0, EMPTY)
    assert asked == [T0 + 2, T0 + 2]
    assert transitions(signals) == [("closed", "open"), ("open", "half_open")]


# ---- HALF_OPEN -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "verdict", "expected"),
    [
        ("success", False, "closed"),
        ("success", True, "half_open"),
        ("failure", True, "open"),
        ("failure", False, "half_open"),
    ],
)
def test_half_open_outcome_and_verdict(outcome: str, verdict: bool, expected: str) -> None:
    verdicts = {"closed": True, "half_open": verdict}
    cb, signals = small_breaker(retry=Always(), tripper=lambda ctx: verdicts[ctx.state])
    fail(cb)
    if outcome == "success":
        succeed(cb)
    else:
        fail(cb)
    info = cb.info()
    assert info.state == expected
    assert info.reopens == (1 if expected == "open" else 0)
    if expected == "half_open":
        assert counts(cb) == (1, 0 if outcome == "success" else 1)
        assert len(signals) == 2
    else:
        assert info.metrics == EMPTY
        assert signals[-1].old_state == "half_open"


def test_random_permit_draws_from_the_random_module() -> None:
    random.seed(1234)
    expected = [random.random() < 0.5 for _ in range(40)]
    assert True in expected and False in expected
    cb, signals = small_breaker(
        window=CountWindow(100),
        retry=Always(),
        permit=permits.Random(0.5),
        tripper=HalfOpened() | FailureStreak(1),
    )
    fail(cb)
    random.seed(1234)
    admitted = []
    for _ in range(40):
        try:
            cb.call(ok)
        except CallNotPermittedError as error:
            assert str(error) == HALF_OPEN
            admitted.append(False)
        else:
            admitted.append(True)
    assert admitted == expected
    assert cb.info().state == "half_open"
    assert counts(cb) == (expected.count(True), 0)


def test_ramp_up_permit_admits_a_growing_share() -> None:
    with freeze_time(FROZEN_AT) as frozen, mock.patch("random.random", return_value=0.5):
        cb, _ = small_breaker(
            retry=Always(),
            permit=permits.RampUp(0.2, 1.0, 100),
            tripper=HalfOpened() | FailureStreak(1),
        )
        fail(cb)
        refused(cb, HALF_OPEN)  # a share of 0.2
        frozen.tick(25)
        refused(cb, HALF_OPEN)  # 0.4
        frozen.tick(25)
        succeed(cb)  # 0.6
        assert cb.info().state == "half_open"


# ---- reopens and the failure streak -------------------------------------------


def test_reopens_counts_returns_to_open_and_clears_on_closed() -> None:
    cb, _ = small_breaker(retry=Always(), tripper=FailureStreak(1))
    fail(cb)
    assert (cb.info().state, cb.info().reopens) == ("open", 0)
    for reopens in (1, 2, 3):
        fail(cb)
        assert (cb.info().state, cb.info().reopens) == ("open", reopens)
    succeed(cb)
    assert (cb.info().state, cb.info().reopens) == ("closed", 0)


def test_closed_to_open_is_not_a_reopen() -> None:
    cb, _ = small_breaker(tripper=FailureStreak(1))
    for _ in range(3):
        fail(cb)
        assert (cb.info().state, cb.info().reopens) == ("open", 0)
        cb.reset()


def test_only_reset_clears_reopens() -> None:
    cb, _ = small_breaker(retry=Always(), tripper=FailureStreak(1))
    fail(cb, 3)
    assert cb.info().reopens == 2
    for command in (cb.force_open, cb.metrics_only, cb.disable, cb.force_open):
        command()
        assert cb.info().reopens == 2
    cb.reset()
    assert cb.info().reopens == 0


def test_failure_streak_counts_consecutive_failures() -> None:
    cb, _ = small_breaker(tripper=FailureStreak(3))
    fail(cb, 2)
    succeed(cb)
    fail(cb, 2)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_untracked_exceptions_leave_the_streak_alone() -> None:
    cb, _ = small_breaker(tracker=trackers.TypeOf(Boom), tripper=FailureStreak(3))
    fail(cb, 2)
    for _ in range(3):
        with pytest.raises(KeyError):
            cb.call(NOTHING.__getitem__, "missing")
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_half_open_starts_a_new_streak() -> None:
    cb, _ = small_breaker(retry=Always(), tripper=FailureStreak(2))
    fail(cb, 2)
    fail(cb)  # the first failure of HALF_OPEN
    assert cb.info().state == "half_open"
    fail(cb)
    assert (cb.info().state, cb.info().reopens) == ("open", 1)


def test_closed_starts_a_new_streak() -> None:
    cb, _ = small_breaker(tripper=FailureStreak(2))
    fail(cb)
    cb.reset()
    fail(cb)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_streak_seen_by_the_tripper() -> None:
    streaks: list[tuple[str, int]] = []

    def tripper(ctx: CallContext) -> bool:
        streaks.append((ctx.state, ctx.consecutive_failures))
        return ctx.consecutive_failures >= 2

    cb, _ = small_breaker(retry=Always(), tripper=tripper)
    fail(cb)
    succeed(cb)
    fail(cb, 2)  # OPEN
    fail(cb)  # HALF_OPEN, streak 1
    succeed(cb)  # a False verdict after a success closes
    assert streaks == [
        ("closed", 1),
        ("closed", 0),
        ("closed", 1),
        ("closed", 2),
        ("half_open", 1),
        ("half_open", 0),
    ]
    assert cb.info().state == "closed"


# ---- METRICS_ONLY, DISABLED, FORCED_OPEN -------------------------------------


def test_metrics_only_records_and_never_trips() -> None:
    evaluated: list[CallContext] = []

    def tripper(ctx: CallContext) -> bool:
        evaluated.append(ctx)
        return True

    cb, signals = small_breaker(tripper=tripper, window=CountWindow(10))
    cb.metrics_only()
    fail(cb, 3)
    succeed(cb, 2)
    assert cb.info().state == "metrics_only"
    assert counts(cb) == (5, 3)
    assert evaluated == []
    assert transitions(signals) == [("closed", "metrics_only")]


def test_metrics_only_with_a_built_in_tripper() -> None:
    cb, signals = small_breaker(tripper=MinRequests(1))
    cb.metrics_only()
    fail(cb, 3)
    succeed(cb)
    assert cb.info().state == "metrics_only"
    assert counts(cb) == (4, 3)
    assert len(signals) == 1


def test_disabled_runs_calls_and_records_nothing() -> None:
    cb, signals = small_breaker(tripper=MinRequests(1))
    cb.disable()
    succeed(cb, 3)
    fail(cb, 3)
    assert cb.info().state == "disabled"
    assert cb.info().metrics == EMPTY
    assert transitions(signals) == [("closed", "disabled")]


def test_forced_open_refuses_every_call() -> None:
    asked: list[float] = []

    def retry(changed_at: float, reopens: int) -> bool:
        asked.append(changed_at)
        return True

    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker(retry=retry)
        cb.force_open()
        for _ in range(3):
            frozen.tick(3600)
            refused(cb, FORCED_OPEN)
        assert cb.info().state == "forced_open"
        cb.reset()
        succeed(cb)
    assert asked == []
    assert transitions(signals) == [("closed", "forced_open"), ("forced_open", "closed")]


# ---- commands and window resets ----------------------------------------------

COMMANDS: dict[str, State] = {
    "reset": "closed",
    "disable": "disabled",
    "metrics_only": "metrics_only",
    "force_open": "forced_open",
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_is_a_transition_even_to_the_current_state(command: str) -> None:
    target = COMMANDS[command]
    with freeze_time(FROZEN_AT) as frozen:
        cb, signals = small_breaker(tripper=MinRequests(100))
        succeed(cb, 3)
        frozen.tick(10)
        assert getattr(cb, command)() is None
        assert cb.info() == CircuitBreakerInfo(target, T0 + 10, 0, EMPTY)
        frozen.tick(10)
        getattr(cb, command)()
        assert cb.info() == CircuitBreakerInfo(target, T0 + 20, 0, EMPTY)
    assert signals == [Signal("closed", target, T0 + 10), Signal(target, target, T0 + 20)]


def test_reset_while_closed_clears_the_window() -> None:
    cb, signals = small_breaker(tripper=FailureStreak(2))
    succeed(cb)
    fail(cb)
    cb.reset()
    assert cb.info().metrics == EMPTY
    fail(cb)  # the streak was cleared too
    assert cb.info().state == "closed"
    assert transitions(signals) == [("closed", "closed")]


def test_metrics_only_again_clears_the_window() -> None:
    cb, signals = small_breaker()
    cb.metrics_only()
    fail(cb, 3)
    assert cb.info().metrics == metric(3, 3)
    cb.metrics_only()
    assert cb.info().metrics == EMPTY
    assert transitions(signals) == [("closed", "metrics_only"), ("metrics_only", "metrics_only")]


def breaker_in(state: str) -> tuple[CircuitBreaker, list[Signal]]:
    """A breaker in `state`, with no signal recorded yet."""
    allow = [False]
    cb, signals = small_breaker(
        tripper=FailureStreak(1),
        retry=lambda changed_at, reopens: allow[0],
        permit=lambda changed_at: False,
    )
    if state in ("open", "half_open"):
        fail(cb)
    if state == "half_open":
        allow[0] = True
        refused(cb, HALF_OPEN)
    for command, target in COMMANDS.items():
        if target == state:
            getattr(cb, command)()
    assert cb.info().state == state
    signals.clear()
    return cb, signals


STATES: list[State] = ["closed", "open", "half_open", "metrics_only", "disabled", "forced_open"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("state", STATES)
def test_every_command_from_every_state(state: State, command: str) -> None:
    cb, signals = breaker_in(state)
    with freeze_time(FROZEN_AT):
        getattr(cb, command)()
    target = COMMANDS[command]
    assert cb.info() == CircuitBreakerInfo(target, T0, 0, EMPTY)
    assert signals == [Signal(state, target, T0)]


def test_every_automatic_transition_clears_the_window() -> None:
    seen: list[tuple[str, Metric]] = []
    cb = CircuitBreaker(
        window=CountWindow(4),
        tripper=FailureStreak(2),
        retry=Always(),
        permit=permits.All(),
        listeners=[lambda signal: seen.append((signal.new_state, cb.info().metrics))],
    )
    succeed(cb)
    fail(cb, 2)  # OPEN
    fail(cb)  # HALF_OPEN, one failure recorded there
    fail(cb)  # OPEN again
    succeed(cb)  # HALF_OPEN, then CLOSED
    assert seen == [
        ("open", EMPTY),
        ("half_open", EMPTY),
        ("open", EMPTY),
        ("half_open", EMPTY),
        ("closed", EMPTY),
    ]
    assert cb.info().metrics == EMPTY
