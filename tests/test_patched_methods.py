"""A method patched onto a built-in component class, or overridden in a
subclass, is the one the breaker uses (SPEC.md section 0, DESIGN.md D4): the
built-in classes are as mutable as Python classes, and the breaker runs
whatever a direct call of the component would run, also when the patch
comes after the breaker was built and when it is undone again."""

from __future__ import annotations

from typing import Any

import pytest

from fluxgate import CallNotPermittedError, CircuitBreaker, permits, retries, trackers, trippers
from fluxgate.metric import Metric, Record
from fluxgate.windows import CountWindow, TimeWindow

PUBLIC_BUILT_INS = [
    CountWindow, TimeWindow,
    trackers.All, trackers.TypeOf, trackers.Custom,
    trippers.Closed, trippers.HalfOpened, trippers.MinRequests, trippers.FailureRate,
    trippers.AvgLatency, trippers.SlowRate, trippers.FailureStreak,
    retries.Always, retries.Never, retries.Cooldown, retries.Backoff,
    permits.All, permits.Random, permits.RampUp,
]


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom


def ok() -> str:
    return "ok"


def fail(cb: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            cb.call(boom)


@pytest.mark.parametrize("cls", PUBLIC_BUILT_INS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_public_built_in_class_takes_new_attributes(cls: type) -> None:
    cls.extra_attribute = 42  # type: ignore[attr-defined]
    try:
        assert cls.extra_attribute == 42  # type: ignore[attr-defined]
    finally:
        del cls.extra_attribute  # type: ignore[attr-defined]
    assert not hasattr(cls, "extra_attribute")


def test_a_tripper_patched_on_the_class_is_the_one_the_breaker_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cb = CircuitBreaker(tripper=trippers.MinRequests(100))
    fail(cb)
    assert cb.info().state == "closed"
    monkeypatch.setattr(trippers.MinRequests, "__call__", lambda self, ctx: True)
    assert trippers.MinRequests(100)(None) is True  # a direct call
    fail(cb)
    assert cb.info().state == "open"


def test_a_tripper_subclass_patched_after_the_breaker_was_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Streak(trippers.FailureStreak):
        pass

    cb = CircuitBreaker(tripper=trippers.MinRequests(1) & Streak(5))
    fail(cb)
    assert cb.info().state == "closed"
    monkeypatch.setattr(trippers.FailureStreak, "__call__", lambda self, ctx: True)
    fail(cb)
    assert cb.info().state == "open"  # Streak inherits the patch
    monkeypatch.undo()
    monkeypatch.setattr(Streak, "__call__", lambda self, ctx: True)
    other = CircuitBreaker(tripper=trippers.FailureStreak(5))
    fail(other)
    assert other.info().state == "closed"  # the built-in itself is untouched


def test_undoing_a_patch_gives_the_built_in_back(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(trippers.FailureStreak, "__call__", lambda self, ctx: True)
        cb = CircuitBreaker(tripper=trippers.FailureStreak(3))
        fail(cb)
        assert cb.info().state == "open"
    cb = CircuitBreaker(tripper=trippers.FailureStreak(3))
    fail(cb, 2)
    assert cb.info().state == "closed"
    fail(cb)
    assert cb.info().state == "open"


def test_a_patched_leaf_inside_a_composite_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def spy(self: Any, ctx: Any) -> bool:
        seen.append(ctx.metric)
        return True

    cb = CircuitBreaker(tripper=trippers.MinRequests(1) & trippers.FailureRate(1.0))
    monkeypatch.setattr(trippers.FailureRate, "__call__", spy)
    assert cb.call(ok) == "ok"
    assert cb.info().state == "open"  # FailureRate(1.0) itself would say False
    assert seen == [Metric(total_count=1, total_duration=seen[0].total_duration,
                           failure_count=0, slow_counts={})]


def test_a_patched_leaf_the_short_circuit_skips_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    cb = CircuitBreaker(tripper=trippers.MinRequests(5) & trippers.FailureRate(1.0))
    monkeypatch.setattr(trippers.FailureRate, "__call__", lambda self, ctx: seen.append(ctx) or True)
    for _ in range(4):
        assert cb.call(ok) == "ok"
    assert seen == []
    assert cb.info().state == "closed"
    cb.call(ok)
    assert len(seen) == 1
    assert cb.info().state == "open"


def test_a_tracker_patched_on_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    cb = CircuitBreaker(tracker=trackers.TypeOf(Boom), tripper=trippers.FailureStreak(1))
    monkeypatch.setattr(trackers.TypeOf, "__call__", lambda self, exception: False)
    assert trackers.TypeOf(Boom)(Boom()) is False
    fail(cb, 3)
    assert cb.info().state == "closed"
    monkeypatch.undo()
    fail(cb)
    assert cb.info().state == "open"


def test_a_retry_patched_on_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    cb = CircuitBreaker(
        tripper=trippers.FailureStreak(1), retry=retries.Never(), permit=permits.All()
    )
    fail(cb)
    with pytest.raises(CallNotPermittedError):
        cb.call(ok)
    monkeypatch.setattr(retries.Never, "__call__", lambda self, changed_at, reopens: True)
    assert cb.call(ok) == "ok"
    assert cb.info().state == "closed"  # through HALF_OPEN, which the success closed


def test_a_permit_patched_on_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    cb = CircuitBreaker(
        tripper=trippers.FailureStreak(1), retry=retries.Always(), permit=permits.All()
    )
    fail(cb)
    monkeypatch.setattr(permits.All, "__call__", lambda self, changed_at: False)
    with pytest.raises(CallNotPermittedError):
        cb.call(ok)
    monkeypatch.undo()
    assert cb.call(ok) == "ok"


@pytest.mark.parametrize("window_type", [CountWindow, TimeWindow])
def test_window_methods_patched_on_the_class(
    monkeypatch: pytest.MonkeyPatch, window_type: type[CountWindow]
) -> None:
    window = window_type(10)
    cb = CircuitBreaker(window=window, tripper=trippers.MinRequests(1) & trippers.FailureRate(0.5))
    assert cb.call(ok) == "ok"
    records: list[Record] = []
    original_record = window_type.record

    def record(self: CountWindow, record: Record) -> None:
        records.append(record)
        original_record(self, record)

    monkeypatch.setattr(window_type, "record", record)
    assert cb.call(ok) == "ok"
    assert [r.success for r in records] == [True]
    assert cb.info().metrics.total_count == 2

    monkeypatch.setattr(window_type, "get_metric", lambda self: Metric.empty())
    assert cb.info().metrics == Metric.empty()
    fail(cb)
    assert cb.info().state == "closed"  # the tripper saw the patched, empty metric

    resets: list[object] = []
    monkeypatch.setattr(window_type, "reset", lambda self: resets.append(self))
    cb.reset()
    assert resets == [window]
    monkeypatch.undo()
    assert cb.info().metrics.total_count == 3  # the patched reset did not clear it


def test_a_window_subclass_patched_after_the_breaker_was_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Window(CountWindow):
        pass

    cb = CircuitBreaker(window=Window(5))
    cb.call(ok)
    seen: list[Record] = []
    monkeypatch.setattr(Window, "record", lambda self, record: seen.append(record))
    cb.call(ok)
    assert len(seen) == 1
    assert cb.info().metrics.total_count == 1


def test_a_window_method_set_on_the_instance_is_the_one_the_breaker_calls() -> None:
    from unittest import mock

    class Window(CountWindow):
        pass

    window = Window(5)
    cb = CircuitBreaker(window=window)
    cb.call(ok)
    with mock.patch.object(window, "get_metric", return_value=Metric.empty()) as get_metric:
        assert cb.info().metrics == Metric.empty()
    assert get_metric.call_count == 1
    assert cb.info().metrics.total_count == 1
