"""Windows at their limits: many distinct slow thresholds, very large
sizes, and states handed to __setstate__ that no window could have had."""

from __future__ import annotations

import math

import pytest

from fluxgate.windows import CountWindow, TimeWindow

NAN = math.nan


@pytest.mark.parametrize(
    "state",
    [
        ([(True, NAN, ())], 1.0, ()),
        ([(True, -1.0, ())], 1.0, ()),
        ([(True, 1.0, ())], NAN, ()),
        ([(True, 1.0, ())], -1.0, ()),
    ],
    ids=["nan record", "negative record", "nan total", "negative total"],
)
def test_count_window_state_with_a_bad_duration_is_a_value_error(state: tuple) -> None:
    window = CountWindow(3)
    with pytest.raises(ValueError, match="duration"):
        window.__setstate__(state)
    assert window.get_metric().total_count == 0


@pytest.mark.parametrize(
    "state",
    [
        ([(100, 1, 0, NAN, {})], 1.0, ()),
        ([(100, 1, 0, -1.0, {})], 1.0, ()),
        ([(100, 1, 0, 1.0, {})], NAN, ()),
        ([(100, 1, 0, 1.0, {})], -0.5, ()),
    ],
    ids=["nan bucket", "negative bucket", "nan total", "negative total"],
)
def test_time_window_state_with_a_bad_duration_is_a_value_error(state: tuple) -> None:
    window = TimeWindow(3)
    with pytest.raises(ValueError, match="duration"):
        window.__setstate__(state)
    assert window.get_metric().total_count == 0


def many_slow_rates(count: int) -> object:
    from functools import reduce

    from fluxgate.trippers import MinRequests, SlowRate

    leaves = [SlowRate(1.0, threshold=float(i + 1)) for i in range(count)]
    return MinRequests(10**6) & reduce(lambda a, b: a | b, leaves)


@pytest.mark.parametrize("window_type", [CountWindow, TimeWindow])
def test_a_breaker_with_hundreds_of_slow_thresholds_keeps_every_result(
    window_type: type[CountWindow],
) -> None:
    from freezegun import freeze_time

    from fluxgate import CircuitBreaker

    cb = CircuitBreaker(window=window_type(1000), tripper=many_slow_rates(200))

    def slow(seconds: float) -> str:
        frozen.tick(seconds)
        return f"took {seconds}"

    with freeze_time("2024-01-01") as frozen:
        assert cb.call(slow, 150.5) == "took 150.5"
        assert cb.call(slow, 300.0) == "took 300.0"
        assert cb.call(slow, 0.5) == "took 0.5"
    slow_counts = cb.info().metrics.slow_counts
    assert len(slow_counts) == 200
    assert list(slow_counts) == [float(i) for i in range(1, 201)]
    assert slow_counts[1.0] == 2 and slow_counts[150.0] == 2 and slow_counts[151.0] == 1


def test_two_breakers_sharing_a_window_bring_their_thresholds_together() -> None:
    from freezegun import freeze_time

    from fluxgate import CircuitBreaker
    from fluxgate.trippers import MinRequests, SlowRate

    window = CountWindow(20)
    shifted = MinRequests(10**6) & SlowRate(1.0, threshold=1000.0)
    for i in range(60):
        shifted = shifted | SlowRate(1.0, threshold=1000.0 + i)
    first = CircuitBreaker(window=window, tripper=many_slow_rates(60))
    second = CircuitBreaker(window=window, tripper=shifted)
    with freeze_time("2024-01-01") as frozen:
        first.call(frozen.tick, 2000.0)
        second.call(frozen.tick, 2000.0)
    assert len(window.get_metric().slow_counts) == 120


def test_a_time_window_of_many_seconds_takes_memory_as_it_is_used() -> None:
    import tracemalloc

    from fluxgate.metric import Record

    tracemalloc.start()
    try:
        window = TimeWindow(10**8)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 8 * 2**20
        for timestamp in (5.0, 10**7 + 0.5, 9 * 10**7 + 0.5, 10**8 + 5.5):
            record = Record(success=False, duration=1.0, slow_at=(0.5,))
            object.__setattr__(record, "timestamp", timestamp)
            window.record(record)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 16 * 2**20
    finally:
        tracemalloc.stop()
    metric = window.get_metric()
    # 10**8 + 5 falls in the bucket of second 5, which it empties first.
    assert (metric.total_count, metric.failure_count, metric.slow_counts) == (3, 3, {0.5: 3})


def test_a_time_window_of_a_billion_seconds_works() -> None:
    import pickle

    from fluxgate.metric import Record

    window = TimeWindow(10**9)
    record = Record(success=True, duration=2.0, slow_at=())
    object.__setattr__(record, "timestamp", 1.7e9)
    window.record(record)
    copy = pickle.loads(pickle.dumps(window))
    assert copy.get_metric() == window.get_metric()
    assert window.get_metric().total_count == 1


@pytest.mark.parametrize("size", [2**53 + 1, 2**62, 2**63 - 1])
def test_a_time_window_too_large_for_memory_says_so(size: int) -> None:
    with pytest.raises(MemoryError, match=f"^TimeWindow size {size} is too large"):
        TimeWindow(size)
