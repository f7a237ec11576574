"""What a CircuitBreaker records (SPEC.md sections 4, 5, 8, 11, 12): durations
from the monotonic clock, slow thresholds from the tripper tree, record stamps,
which exceptions count, and how user components (Python subclasses, plain
callables, falsy objects, components that raise) are used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from freezegun import freeze_time

from fluxgate import CallNotPermittedError, CircuitBreaker, permits, trackers
from fluxgate.metric import Metric, Record
from fluxgate.permits import Permit
from fluxgate.retries import Always, Never, Retry
from fluxgate.signal import Signal
from fluxgate.trackers import Custom, Tracker, TypeOf
from fluxgate.trippers import (
    AvgLatency,
    CallContext,
    FailureRate,
    FailureStreak,
    MinRequests,
    SlowRate,
    Tripper,
)
from fluxgate.windows import CountWindow, TimeWindow, Window

FROZEN_AT = "2024-01-01 00:00:00"
T0 = 1704067200.0
EMPTY = Metric.empty()
NOTHING: dict[str, int] = {}
NEVER_TRIPS = MinRequests(1_000_000)


class Boom(Exception):
    """What the protected function raises."""


def ok(value: object = "ok") -> object:
    return value


def boom() -> None:
    raise Boom("boom")


def fail(cb: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            cb.call(boom)


def transitions(signals: list[Signal]) -> list[tuple[str, str]]:
    return [(s.old_state, s.new_state) for s in signals]


def counts(cb: CircuitBreaker) -> tuple[int, int]:
    m = cb.info().metrics
    return m.total_count, m.failure_count


class ListWindow(Window):
    """A user window keeping every record; any method can be made to raise."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.resets = 0
        self.broken: set[str] = set()

    def _check(self, method: str) -> None:
        if method in self.broken:
            raise RuntimeError(f"{method} failed")

    def record(self, record: Record) -> None:
        self._check("record")
        self.records.append(record)

    def get_metric(self) -> Metric:
        self._check("get_metric")
        total = Metric.empty()
        for record in self.records:
            total = total + Metric.from_record(record)
        return total

    def reset(self) -> None:
        self._check("reset")
        self.records.clear()
        self.resets += 1


# ---- durations -----------------------------------------------------------------


def test_durations_come_from_the_monotonic_clock_under_freezegun() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=CountWindow(10), tripper=NEVER_TRIPS)
        cb.call(frozen.tick, 1.5)
        cb.call(frozen.tick, 0.25)
        assert cb.info().metrics == Metric(
            total_count=2, total_duration=1.75, failure_count=0, slow_counts={}
        )
        assert cb.info().metrics.avg_duration == 0.875


def test_durations_come_from_a_patched_perf_counter() -> None:
    cb = CircuitBreaker(window=CountWindow(10), tripper=NEVER_TRIPS)
    with mock.patch("time.perf_counter", side_effect=[10.0, 12.5]):
        assert cb.call(ok, 1) == 1
    assert cb.info().metrics.total_duration == 2.5


def test_real_durations_are_measured() -> None:
    cb = CircuitBreaker(window=CountWindow(10), tripper=NEVER_TRIPS)
    before = time.perf_counter()
    cb.call(time.sleep, 0.01)
    elapsed = time.perf_counter() - before
    assert 0.01 <= cb.info().metrics.total_duration <= elapsed


@pytest.mark.parametrize("clock", ["freezegun", "mock"])
def test_a_clock_moved_back_records_an_instant_call(clock: str) -> None:
    cb = CircuitBreaker(
        window=CountWindow(10), tripper=MinRequests(100) & SlowRate(0.5, threshold=0.5)
    )
    if clock == "freezegun":
        with freeze_time(FROZEN_AT) as frozen:
            cb.call(frozen.tick, -5)
    else:
        with mock.patch("time.perf_counter", side_effect=[10.0, 9.0]):
            cb.call(ok)
    assert cb.info().metrics == Metric(
        total_count=1, total_duration=0.0, failure_count=0, slow_counts={}
    )


def test_failures_are_recorded_with_no_duration_and_no_thresholds() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(
            window=CountWindow(10), tripper=MinRequests(100) & SlowRate(0.5, threshold=1.0)
        )

        def slow_failure() -> None:
            frozen.tick(5)
            raise Boom

        with pytest.raises(Boom):
            cb.call(slow_failure)
        assert cb.info().metrics == Metric(
            total_count=1, total_duration=0.0, failure_count=1, slow_counts={}
        )


def test_avg_latency_trips_on_measured_durations() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=CountWindow(10), tripper=MinRequests(2) & AvgLatency(1.0))
        cb.call(frozen.tick, 0.5)
        assert cb.info().state == "closed"
        cb.call(frozen.tick, 1.5)
        assert cb.info().state == "open"


# ---- slow thresholds -------------------------------------------------------------


def slow_tree() -> Any:
    """Thresholds 1.0 and 2.0, nested and repeated, under a tripper that
    never trips."""
    return MinRequests(1_000_000) & (
        SlowRate(0.5, threshold=1.0)
        | (FailureStreak(1_000_000) & SlowRate(0.9, threshold=2.0))
        | SlowRate(0.1, threshold=1.0)
    )


def test_successes_are_slow_at_every_threshold_they_reach() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=CountWindow(10), tripper=slow_tree())
        for seconds in (0.5, 1.0, 1.5, 2.0, 3.0):
            cb.call(frozen.tick, seconds)
        assert cb.info().metrics == Metric(
            total_count=5, total_duration=8.0, failure_count=0, slow_counts={1.0: 4, 2.0: 2}
        )


def test_a_fast_call_reaches_no_threshold() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=CountWindow(10), tripper=slow_tree())
        cb.call(frozen.tick, 0.5)
        assert cb.info().metrics.slow_counts == {}


def test_thresholds_reach_a_user_window() -> None:
    window = ListWindow()
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=window, tripper=slow_tree())
        for seconds in (0.5, 1.0, 3.0):
            cb.call(frozen.tick, seconds)
        fail(cb)
    assert [(r.success, r.duration, sorted(r.slow_at)) for r in window.records] == [
        (True, 0.5, []),
        (True, 1.0, [1.0]),
        (True, 3.0, [1.0, 2.0]),
        (False, 0.0, []),
    ]
    assert all(type(r.slow_at) is tuple for r in window.records)


def test_slow_rate_trips_at_its_threshold() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(
            window=CountWindow(10), tripper=MinRequests(2) & SlowRate(0.5, threshold=1.0)
        )
        cb.call(frozen.tick, 0.5)
        assert cb.info().state == "closed"
        cb.call(frozen.tick, 1.0)
        assert cb.info().state == "open"


@pytest.mark.parametrize(
    "tripper",
    [
        pytest.param(lambda ctx: False, id="function"),
        pytest.param(MinRequests(1_000_000) & (lambda ctx: False), id="composite"),
    ],
)
def test_trippers_without_slow_rate_give_no_thresholds(tripper: Any) -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=CountWindow(10), tripper=tripper)
        cb.call(frozen.tick, 5)
        assert cb.info().metrics.slow_counts == {}


# ---- record stamps -------------------------------------------------------------


def test_time_window_records_use_the_frozen_wall_clock() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=TimeWindow(2), tripper=NEVER_TRIPS)
        cb.call(ok)
        cb.call(ok)
        frozen.tick(1)
        cb.call(ok)
        assert counts(cb) == (3, 0)
        frozen.tick(1)  # the bucket of T0 is reused
        cb.call(ok)
        assert counts(cb) == (2, 0)


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_time_window_records_are_stamped_when_the_call_ends(outcome: str) -> None:
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=TimeWindow(2), tripper=NEVER_TRIPS)
        cb.call(ok)  # in the bucket of T0

        def two_seconds() -> None:
            frozen.tick(2)
            if outcome == "failure":
                raise Boom

        # Started at T0 and stamped at T0 + 2: the same bucket, a new second.
        try:
            cb.call(two_seconds)
        except Boom:
            pass
        assert counts(cb) == (1, 1 if outcome == "failure" else 0)


def test_user_window_records_are_stamped_when_the_call_ends() -> None:
    window = ListWindow()
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=window, tripper=NEVER_TRIPS)
        cb.call(frozen.tick, 2)

        def failing() -> None:
            frozen.tick(3)
            raise Boom

        with pytest.raises(Boom):
            cb.call(failing)
    assert [(r.success, r.timestamp) for r in window.records] == [
        (True, T0 + 2),
        (False, T0 + 5),
    ]
    assert all(type(r) is Record for r in window.records)


# ---- which exceptions count ----------------------------------------------------


def test_untracked_exceptions_propagate_untouched_and_record_nothing() -> None:
    cb = CircuitBreaker(tracker=TypeOf(Boom), tripper=MinRequests(1))
    error = KeyError("k")

    def raiser() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        cb.call(raiser)
    assert caught.value is error
    assert error.__context__ is None and error.__cause__ is None
    assert caught.traceback[-1].name == "raiser"
    assert cb.info().metrics == EMPTY
    assert cb.info().state == "closed"


def test_untracked_exceptions_in_half_open_change_nothing() -> None:
    evaluated: list[str] = []

    def tripper(ctx: CallContext) -> bool:
        evaluated.append(ctx.state)
        return True

    cb = CircuitBreaker(tracker=TypeOf(Boom), tripper=tripper, retry=Always(),
                        permit=permits.All())
    fail(cb)
    with pytest.raises(KeyError):
        cb.call(NOTHING.__getitem__, "missing")
    assert cb.info().state == "half_open"
    assert cb.info().metrics == EMPTY
    assert evaluated == ["closed"]


@pytest.mark.parametrize(
    "error_type",
    [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError],
    ids=lambda t: t.__name__,
)
@pytest.mark.parametrize("native", [True, False], ids=["All", "function"])
def test_base_exceptions_pass_through_unrecorded(
    error_type: type[BaseException], native: bool
) -> None:
    error = error_type()
    asked: list[BaseException] = []

    def tracker(exception: BaseException) -> bool:
        asked.append(exception)
        return True

    cb = CircuitBreaker(tracker=trackers.All() if native else tracker, tripper=MinRequests(1))

    def raiser() -> None:
        raise error

    with pytest.raises(error_type) as caught:
        cb.call(raiser)
    assert caught.value is error
    assert asked == []
    assert cb.info().metrics == EMPTY
    assert cb.info().state == "closed"


def raising_function(exception: Exception) -> bool:
    raise RuntimeError("tracker failed")


class RaisingTracker(Tracker):
    def __call__(self, exception: Exception) -> bool:
        raise RuntimeError("tracker failed")


@pytest.mark.parametrize(
    "tracker",
    [
        pytest.param(raising_function, id="function"),
        pytest.param(RaisingTracker(), id="subclass"),
        pytest.param(Custom(raising_function), id="Custom"),
        pytest.param(TypeOf(Boom) & Custom(raising_function), id="composite"),
    ],
)
def test_a_tracker_that_raises_propagates_with_the_call_error_as_context(
    tracker: Any,
) -> None:
    cb = CircuitBreaker(tracker=tracker, tripper=MinRequests(100))
    error = Boom("original")

    def raiser() -> None:
        raise error

    with pytest.raises(RuntimeError, match="^tracker failed$") as caught:
        cb.call(raiser)
    assert caught.value.__context__ is error
    assert cb.info().metrics == EMPTY
    assert cb.call(ok, 5) == 5
    assert counts(cb) == (1, 0)


def test_custom_and_composite_trackers_decide() -> None:
    cb = CircuitBreaker(
        tracker=Custom(lambda e: "count" in str(e)) | TypeOf(KeyError),
        tripper=MinRequests(100),
    )
    for error in (ValueError("count me"), ValueError("skip"), KeyError("x")):

        def raiser(error: Exception = error) -> None:
            raise error

        with pytest.raises(type(error)):
            cb.call(raiser)
    assert counts(cb) == (2, 2)


# ---- only None means default ---------------------------------------------------


class FalsyTracker(Tracker):
    def __len__(self) -> int:
        return 0

    def __call__(self, exception: Exception) -> bool:
        return False


class FalsyTripper(Tripper):
    def __len__(self) -> int:
        return 0

    def __call__(self, ctx: CallContext) -> bool:
        return True


class FalsyRetry(Retry):
    def __len__(self) -> int:
        return 0

    def __call__(self, changed_at: float, reopens: int) -> bool:
        return True


class FalsyPermit(Permit):
    def __len__(self) -> int:
        return 0

    def __call__(self, changed_at: float) -> bool:
        return False


class FalsyWindow(ListWindow):
    def __len__(self) -> int:
        return 0


def test_a_falsy_tracker_is_used() -> None:
    tracker = FalsyTracker()
    assert not tracker
    cb = CircuitBreaker(tracker=tracker)
    fail(cb, 3)
    assert cb.info().metrics == EMPTY


def test_a_falsy_tripper_is_used() -> None:
    cb = CircuitBreaker(tripper=FalsyTripper())
    cb.call(ok)
    assert cb.info().state == "open"


def test_a_falsy_retry_is_used() -> None:
    cb = CircuitBreaker(tripper=FailureStreak(1), retry=FalsyRetry(), permit=permits.All())
    fail(cb)
    cb.call(ok)
    assert cb.info().state == "closed"


def test_a_falsy_permit_is_used() -> None:
    cb = CircuitBreaker(tripper=FailureStreak(1), retry=Always(), permit=FalsyPermit())
    fail(cb)
    with mock.patch("random.random", return_value=0.0):  # RampUp would admit
        with pytest.raises(CallNotPermittedError):
            cb.call(ok)


def test_a_falsy_window_is_used() -> None:
    window = FalsyWindow()
    cb = CircuitBreaker(window=window)
    cb.call(ok)
    assert len(window.records) == 1
    assert counts(cb) == (1, 0)


# ---- user components -----------------------------------------------------------


class UserTracker(Tracker):
    def __call__(self, exception: Exception) -> bool:
        return isinstance(exception, Boom)


class UserTripper(Tripper):
    def __call__(self, ctx: CallContext) -> bool:
        return ctx.metric.failure_count >= 2


class UserRetry(Retry):
    def __call__(self, changed_at: float, reopens: int) -> bool:
        return time.time() - changed_at >= 10


class UserPermit(Permit):
    def __call__(self, changed_at: float) -> bool:
        return time.time() - changed_at < 5


def user_components(kind: str) -> dict[str, Any]:
    if kind == "subclasses":
        return {
            "tracker": UserTracker(),
            "tripper": UserTripper(),
            "retry": UserRetry(),
            "permit": UserPermit(),
        }
    return {
        "tracker": lambda exception: isinstance(exception, Boom),
        "tripper": lambda ctx: ctx.metric.failure_count >= 2,
        "retry": lambda changed_at, reopens: time.time() - changed_at >= 10,
        "permit": lambda changed_at: time.time() - changed_at < 5,
    }


@pytest.mark.parametrize("kind", ["subclasses", "callables"])
@pytest.mark.parametrize("window_kind", ["user", "native"])
def test_user_components_run_a_full_cycle(kind: str, window_kind: str) -> None:
    window = ListWindow() if window_kind == "user" else CountWindow(10)
    signals: list[Signal] = []
    with freeze_time(FROZEN_AT) as frozen:
        cb = CircuitBreaker(window=window, listeners=[signals.append], **user_components(kind))
        with pytest.raises(KeyError):
            cb.call(NOTHING.__getitem__, "untracked")
        fail(cb)
        assert counts(cb) == (1, 1)
        fail(cb)
        assert cb.info().state == "open"
        frozen.tick(9)
        with pytest.raises(CallNotPermittedError, match="^Circuit breaker is open$"):
            cb.call(ok)
        frozen.tick(1)
        fail(cb)  # HALF_OPEN at T0 + 10; one failure is not enough
        assert cb.info().state == "half_open"
        frozen.tick(5)
        with pytest.raises(CallNotPermittedError, match="^Circuit breaker is half-open"):
            cb.call(ok)
    assert transitions(signals) == [("closed", "open"), ("open", "half_open")]
    if isinstance(window, ListWindow):
        assert window.resets == 2
        assert [r.success for r in window.records] == [False]


def test_a_user_window_with_built_in_trippers() -> None:
    window = ListWindow()
    cb = CircuitBreaker(window=window, tripper=MinRequests(2) & FailureRate(0.5))
    cb.call(ok)
    fail(cb)
    assert cb.info().state == "open"
    assert window.records == []
    assert window.resets == 1


def test_a_duck_typed_window() -> None:
    class Duck:
        def __init__(self) -> None:
            self.inner = ListWindow()

        def record(self, record: Record) -> None:
            self.inner.record(record)

        def get_metric(self) -> Metric:
            return self.inner.get_metric()

        def reset(self) -> None:
            self.inner.reset()

    duck = Duck()
    cb = CircuitBreaker(window=duck, tripper=MinRequests(3))
    fail(cb, 2)
    assert counts(cb) == (2, 2)
    fail(cb)
    assert cb.info().state == "open"
    assert duck.inner.resets == 1


@pytest.mark.parametrize(
    "tripper",
    [
        pytest.param(lambda: MinRequests(2) & UserTripper(), id="builtin-and-user"),
        pytest.param(lambda: UserTripper() & MinRequests(2), id="user-and-builtin"),
        pytest.param(lambda: MinRequests(2) & (lambda ctx: ctx.metric.failure_count >= 2),
                     id="builtin-and-function"),
    ],
)
def test_composites_of_built_in_and_user_trippers(tripper: Callable[[], Any]) -> None:
    cb = CircuitBreaker(window=CountWindow(10), tripper=tripper())
    fail(cb)
    cb.call(ok)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_composites_of_built_in_and_user_trackers() -> None:
    cb = CircuitBreaker(tracker=TypeOf(KeyError) | UserTracker(), tripper=MinRequests(100))
    fail(cb)
    with pytest.raises(KeyError):
        cb.call(NOTHING.__getitem__, "x")
    with pytest.raises(ValueError):
        cb.call(int, "x")
    assert counts(cb) == (2, 2)


# ---- user components that raise ------------------------------------------------


def test_a_tripper_that_raises_reaches_the_caller() -> None:
    broken = [True]

    def tripper(ctx: CallContext) -> bool:
        if broken[0]:
            raise RuntimeError("tripper failed")
        return False

    for composite in (False, True):
        broken[0] = True
        cb = CircuitBreaker(
            window=CountWindow(10), tripper=MinRequests(1) & tripper if composite else tripper
        )
        with pytest.raises(RuntimeError, match="^tripper failed$"):
            cb.call(ok)
        assert cb.info().state == "closed"
        broken[0] = False
        assert cb.call(ok, 3) == 3
        assert cb.info().state == "closed"


def test_a_retry_that_raises_reaches_the_caller() -> None:
    broken = [True]

    def retry(changed_at: float, reopens: int) -> bool:
        if broken[0]:
            raise RuntimeError("retry failed")
        return True

    cb = CircuitBreaker(tripper=FailureStreak(1), retry=retry, permit=permits.All())
    fail(cb)
    with pytest.raises(RuntimeError, match="^retry failed$"):
        cb.call(ok)
    assert cb.info().state == "open"
    broken[0] = False
    assert cb.call(ok, 4) == 4
    assert cb.info().state == "closed"


def test_a_permit_that_raises_reaches_the_caller() -> None:
    broken = [True]

    def permit(changed_at: float) -> bool:
        if broken[0]:
            raise RuntimeError("permit failed")
        return True

    ran: list[int] = []
    cb = CircuitBreaker(tripper=FailureStreak(1), retry=Always(), permit=permit)
    fail(cb)
    with pytest.raises(RuntimeError, match="^permit failed$"):
        cb.call(ran.append, 1)
    assert ran == []
    assert cb.info().state == "half_open"
    broken[0] = False
    assert cb.call(ok, 5) == 5
    assert cb.info().state == "closed"


def test_a_window_record_that_raises_reaches_the_caller() -> None:
    window = ListWindow()
    window.broken.add("record")
    cb = CircuitBreaker(window=window, tripper=MinRequests(100))
    with pytest.raises(RuntimeError, match="^record failed$"):
        cb.call(ok)
    with pytest.raises(RuntimeError, match="^record failed$"):
        cb.call(boom)
    window.broken.clear()
    assert cb.call(ok, 6) == 6
    assert counts(cb) == (1, 0)
    assert cb.info().state == "closed"


def test_a_window_get_metric_that_raises_reaches_the_caller() -> None:
    window = ListWindow()
    window.broken.add("get_metric")
    cb = CircuitBreaker(window=window, tripper=MinRequests(100))
    with pytest.raises(RuntimeError, match="^get_metric failed$"):
        cb.call(ok)
    with pytest.raises(RuntimeError, match="^get_metric failed$"):
        cb.info()
    window.broken.clear()
    assert cb.call(ok, 7) == 7
    assert cb.info().state == "closed"


def test_a_window_reset_that_raises_reaches_the_caller() -> None:
    window = ListWindow()
    window.broken.add("reset")
    signals: list[Signal] = []
    cb = CircuitBreaker(window=window, tripper=FailureStreak(1), listeners=[signals.append])
    with pytest.raises(RuntimeError, match="^reset failed$"):
        cb.force_open()
    assert cb.info().state == "forced_open"
    window.broken.clear()
    cb.reset()
    assert cb.call(ok, 8) == 8
    assert cb.info().state == "closed"
    assert transitions(signals) == [("closed", "forced_open"), ("forced_open", "closed")]


def test_a_window_reset_that_raises_still_signals_the_transition() -> None:
    window = ListWindow()
    window.broken.add("reset")
    signals: list[Signal] = []
    cb = CircuitBreaker(window=window, listeners=[signals.append])
    with pytest.raises(RuntimeError, match="^reset failed$"):
        cb.force_open()
    assert transitions(signals) == [("closed", "forced_open")]


def test_never_retry_with_a_user_window() -> None:
    window = ListWindow()
    cb = CircuitBreaker(window=window, tripper=FailureStreak(1), retry=Never())
    fail(cb)
    with pytest.raises(CallNotPermittedError, match="^Circuit breaker is open$"):
        cb.call(ok)
    assert window.records == []
