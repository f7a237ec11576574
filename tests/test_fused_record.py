"""A breaker of the common shape (a built-in window with no slow threshold,
a tripper of built-in leaves under & and |, at most six of them, without
SlowRate) records and evaluates a CLOSED success in one fused step. These
tests hold that step to the general path's behaviour: the same outcomes run
through a twin whose window is a trivial subclass of the built-in, which the
general path serves, and through shapes that leave the fused step half-way
(a window that grows, gains a threshold, or is shared)."""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgate import CircuitBreaker
from fluxgate.permits import All
from fluxgate.retries import Always
from fluxgate.trippers import AvgLatency, FailureRate, FailureStreak, MinRequests, SlowRate, Tripper
from fluxgate.windows import CountWindow, TimeWindow


class Boom(Exception):
    """What the protected function raises."""


class SubclassedCountWindow(CountWindow):
    """Behaves as CountWindow; a subclass takes the general path."""


class SubclassedTimeWindow(TimeWindow):
    """Behaves as TimeWindow; a subclass takes the general path."""


def ok() -> str:
    return "ok"


def boom() -> None:
    raise Boom


def observe(cb: CircuitBreaker) -> tuple[str, int, int]:
    info = cb.info()
    return info.state, info.metrics.total_count, info.metrics.failure_count


def step(cb: CircuitBreaker, action: str) -> None:
    if action == "ok":
        assert cb.call(ok) == "ok"
    elif action == "fail":
        with pytest.raises(Boom):
            cb.call(boom)
    else:
        cb.reset()


TRIPPERS: list[Callable[[], Tripper]] = [
    lambda: MinRequests(2) & FailureRate(0.5),
    lambda: MinRequests(1) & FailureRate(0.01),
    lambda: MinRequests(3) & FailureRate(1.0),
    lambda: FailureStreak(2) | (MinRequests(4) & FailureRate(0.75)),
]
actions = st.lists(st.sampled_from(["ok", "ok", "ok", "fail", "fail", "reset"]), max_size=60)


@settings(max_examples=100, deadline=None)
@given(
    size=st.sampled_from([1, 2, 3, 5, 8]),
    tripper=st.sampled_from(TRIPPERS),
    steps=actions,
)
def test_count_window_breakers_agree_with_the_general_path(
    size: int, tripper: Callable[[], Tripper], steps: list[str]
) -> None:
    shared_tripper = tripper()
    fused = CircuitBreaker(
        window=CountWindow(size), tripper=shared_tripper, retry=Always(), permit=All()
    )
    general = CircuitBreaker(
        window=SubclassedCountWindow(size), tripper=shared_tripper, retry=Always(), permit=All()
    )
    for action in steps:
        step(fused, action)
        step(general, action)
        assert observe(fused) == observe(general)


@settings(max_examples=100, deadline=None)
@given(
    size=st.sampled_from([1, 2, 3, 60]),
    tripper=st.sampled_from(TRIPPERS),
    steps=st.lists(
        st.one_of(
            st.sampled_from(["ok", "ok", "ok", "fail", "fail", "reset"]),
            st.integers(min_value=1, max_value=130),
            st.sampled_from([0.0, 0.0, 0.5, 0.999]),
        ),
        max_size=60,
    ),
)
def test_time_window_breakers_agree_with_the_general_path(
    size: int, tripper: Callable[[], Tripper], steps: list[str | int | float]
) -> None:
    # The wall clock moves on by whole seconds (an int) or to a point within
    # its second (a float): the native clock's stamps are whole seconds, a
    # replacement's need not be.
    second, fraction = 1_700_000_000, 0.0
    shared_tripper = tripper()
    with mock.patch("time.time", lambda: second + fraction):
        fused = CircuitBreaker(
            window=TimeWindow(size), tripper=shared_tripper, retry=Always(), permit=All()
        )
        general = CircuitBreaker(
            window=SubclassedTimeWindow(size),
            tripper=shared_tripper,
            retry=Always(),
            permit=All(),
        )
        for action in steps:
            if isinstance(action, int):
                second += action
            elif isinstance(action, float):
                fraction = action
            else:
                step(fused, action)
                step(general, action)
                assert observe(fused) == observe(general)


def test_a_count_window_grows_under_the_breaker_as_it_fills() -> None:
    cb = CircuitBreaker(window=CountWindow(3000))
    for i in range(2500):
        if i % 10 == 0:
            with pytest.raises(Boom):
                cb.call(boom)
        else:
            cb.call(ok)
    assert observe(cb) == ("closed", 2500, 250)
    for _ in range(1000):
        cb.call(ok)
    # The oldest 500 records, 50 of them failures, have left.
    assert observe(cb) == ("closed", 3000, 200)


def test_a_success_admitted_before_a_reset_is_discarded() -> None:
    cb = CircuitBreaker()
    cb.call(ok)

    def resets() -> str:
        cb.reset()
        return "ok"

    assert cb.call(resets) == "ok"
    assert observe(cb) == ("closed", 0, 0)


def test_the_fused_step_trips_the_breaker() -> None:
    # Any call takes a nanosecond at least.
    cb = CircuitBreaker(tripper=MinRequests(2) & AvgLatency(1e-9))
    cb.call(ok)
    assert observe(cb) == ("closed", 1, 0)
    cb.call(ok)
    assert cb.info().state == "open"


def test_a_window_shared_with_a_breaker_that_has_a_threshold() -> None:
    window = CountWindow(2)
    plain = CircuitBreaker(window=window)
    slow = CircuitBreaker(window=window, tripper=MinRequests(100) & SlowRate(0.5, threshold=1e-9))
    plain.call(ok)
    slow.call(ok)  # reaches its threshold of 1 ns
    plain.call(ok)  # the oldest leaves; the record of `slow` stays
    assert window.get_metric().total_count == 2
    assert window.get_metric().slow_counts == {1e-9: 1}
    plain.call(ok)  # now the record of `slow` leaves too
    assert window.get_metric().slow_counts == {}
    assert window.get_metric().total_count == 2


def test_a_replaced_wall_clock_is_read_once_per_time_window_call() -> None:
    """Whether the fused step records the call (the second of the last
    record) or hands it to the general path (a fraction of a second, a new
    second), the breaker asks the clock once."""
    reads: list[float] = []
    now = 1_700_000_000.0

    def wall_clock() -> float:
        reads.append(now)
        return now

    with mock.patch("time.time", wall_clock):
        cb = CircuitBreaker(window=TimeWindow(60))
        for offset in [0.0, 0.0, 0.5, 1.0, 1.0, 60.0]:
            now = 1_700_000_000.0 + offset
            reads.clear()
            assert cb.call(ok) == "ok"
            assert reads == [now]
    # The first second's bucket now holds the last call alone.
    assert cb.info().metrics.total_count == 3
