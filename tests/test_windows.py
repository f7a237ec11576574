"""Windows: CountWindow, TimeWindow and the Window base (SPEC.md section 3)."""

from __future__ import annotations

import inspect
import math
import sys
import threading
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import TypeCheck
from hypothesis import given
from hypothesis import strategies as st

import fluxgate
import fluxgate.windows
from fluxgate import CircuitBreaker
from fluxgate.metric import Metric, Record
from fluxgate.trippers import MinRequests
from fluxgate.windows import CountWindow, TimeWindow, Window

WindowType = type[CountWindow] | type[TimeWindow]
WINDOWS: list[WindowType] = [CountWindow, TimeWindow]
NAN = math.nan
INF = math.inf


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def rec(
    success: bool = True,
    duration: float = 0.0,
    slow_at: tuple[float, ...] = (),
    timestamp: float | None = None,
) -> Record:
    record = Record(success=success, duration=duration, slow_at=slow_at)
    if timestamp is not None:
        object.__setattr__(record, "timestamp", timestamp)
    return record


def duck(**fields: object) -> Any:
    """A record-like object that is not a Record."""
    return SimpleNamespace(**fields)


def total(records: Iterable[Record]) -> Metric:
    result = Metric.empty()
    for record in records:
        result = result + Metric.from_record(record)
    return result


def items(metric: Metric) -> list[tuple[float, int]]:
    return list(metric.slow_counts.items())


# ---- pure-Python references of SPEC.md section 3 ---------------------------


class CountReference:
    """The records a CountWindow holds, and its running metric as Metric
    arithmetic computes it (subtract the evicted record, then add)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.records: deque[Record] = deque()
        self.metric = Metric.empty()

    def record(self, record: Record) -> None:
        if len(self.records) == self.size:
            self.metric = self.metric - Metric.from_record(self.records.popleft())
        self.records.append(record)
        self.metric = self.metric + Metric.from_record(record)

    def held(self) -> list[Record]:
        return list(self.records)


class TimeReference:
    """Buckets keyed by Python's ``int(timestamp) % size``, and the running
    metric: a bucket that held another second is subtracted and emptied
    first, then the record is added to the bucket and to the total."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buckets: dict[int, tuple[int, list[Record], Metric]] = {}
        self.metric = Metric.empty()

    def record(self, record: Record) -> None:
        second = int(record.timestamp)
        index = second % self.size
        held, records, bucket = self.buckets.get(index, (second, [], Metric.empty()))
        if held != second:
            self.metric = self.metric - bucket
            records, bucket = [], Metric.empty()
        one = Metric.from_record(record)
        self.buckets[index] = (second, [*records, record], bucket + one)
        self.metric = self.metric + one

    def held(self) -> list[Record]:
        return [r for _, records, _ in self.buckets.values() for r in records]


def check(window: Window, reference: CountReference | TimeReference) -> None:
    metric = window.get_metric()
    # Bit for bit, keys in the same order, as the running arithmetic gives.
    assert metric == reference.metric
    assert items(metric) == items(reference.metric)
    # And the totals of exactly the records still held.
    summed = total(reference.held())
    assert metric.total_count == summed.total_count
    assert metric.failure_count == summed.failure_count
    assert metric.slow_counts == summed.slow_counts
    assert math.isclose(
        metric.total_duration, summed.total_duration, rel_tol=1e-9, abs_tol=1e-6
    )


# ---- names, signatures, validation --------------------------------------------


def test_module_exports() -> None:
    assert fluxgate.windows.__all__ == ["Window", "CountWindow", "TimeWindow"]


@pytest.mark.parametrize("cls", WINDOWS)
def test_public_identity(cls: WindowType) -> None:
    assert cls.__module__ == "fluxgate.windows"
    assert cls.__qualname__ == cls.__name__
    assert issubclass(cls, Window)
    assert isinstance(cls(3), Window)


@pytest.mark.parametrize("cls", WINDOWS)
def test_signatures(cls: WindowType) -> None:
    assert _bare(inspect.signature(cls)) == "(size)"
    assert _bare(inspect.signature(cls.record)) == "(self, record)"
    assert _bare(inspect.signature(cls.get_metric)) == "(self)"
    assert _bare(inspect.signature(cls.reset)) == "(self)"
    assert _bare(inspect.signature(cls(2).record)) == "(record)"


@pytest.mark.parametrize("cls", WINDOWS)
def test_size_and_repr(cls: WindowType) -> None:
    window = cls(size=7)
    assert window.size == 7
    assert type(window.size) is int
    assert repr(window) == f"{cls.__name__}(size=7)"
    with pytest.raises(AttributeError):
        window.size = 8  # type: ignore[misc]
    assert window.size == 7


@pytest.mark.parametrize("cls", WINDOWS)
@pytest.mark.parametrize("size", [0, -1, -(2**63)])
def test_size_below_one(cls: WindowType, size: int) -> None:
    with pytest.raises(ValueError, match="^size must be greater than zero$"):
        cls(size)


@pytest.mark.parametrize("cls", WINDOWS)
@pytest.mark.parametrize(
    ("size", "type_name"),
    [("10", "str"), (10.0, "float"), (True, "bool"), (None, "NoneType")],
)
def test_size_not_an_integer(cls: WindowType, size: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=f"^size must be an integer, not {type_name}$"):
        cls(size)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", WINDOWS)
def test_size_beyond_64_bits(cls: WindowType) -> None:
    with pytest.raises(ValueError, match="^size is out of range$"):
        cls(2**64)


@pytest.mark.parametrize("cls", WINDOWS)
def test_size_through_index(cls: WindowType) -> None:
    class Five:
        def __index__(self) -> int:
            return 5

    assert cls(Five()).size == 5  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", WINDOWS)
def test_wrong_arity(cls: WindowType) -> None:
    with pytest.raises(TypeError):
        cls()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cls(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cls(3).record()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cls(3).get_metric(1)  # type: ignore[call-arg]


# ---- the Window base -----------------------------------------------------------


def test_window_is_abstract() -> None:
    with pytest.raises(TypeError):
        Window()  # type: ignore[abstract]

    class Incomplete(Window):
        def record(self, record: Record) -> None:
            pass

        def get_metric(self) -> Metric:
            return Metric.empty()

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


def test_user_window() -> None:
    class ListWindow(Window):
        def __init__(self) -> None:
            self.records: list[Record] = []

        def record(self, record: Record) -> None:
            self.records.append(record)

        def get_metric(self) -> Metric:
            return total(self.records)

        def reset(self) -> None:
            self.records.clear()

    window = ListWindow()
    window.record(rec(False, 0.5, (1.0,)))
    assert window.get_metric() == Metric(
        total_count=1, total_duration=0.5, failure_count=1, slow_counts={1.0: 1}
    )
    window.reset()
    assert window.get_metric() == Metric.empty()


# ---- CountWindow ---------------------------------------------------------------


def test_count_window_evicts_the_oldest() -> None:
    window = CountWindow(3)
    durations = [1.0, 2.0, 4.0, 8.0, 16.0]
    expected = [1.0, 3.0, 7.0, 14.0, 28.0]
    for i, (duration, total_duration) in enumerate(zip(durations, expected)):
        window.record(rec(success=i % 2 == 1, duration=duration))
        metric = window.get_metric()
        assert metric.total_duration == total_duration
        assert metric.total_count == min(i + 1, 3)
    assert window.get_metric().failure_count == 2  # 4.0 and 16.0 failed, 8.0 did not


def test_count_window_of_one() -> None:
    window = CountWindow(1)
    window.record(rec(False, 0.5, (0.5,)))
    window.record(rec(True, 2.0, (1.0, 2.0)))
    assert window.get_metric() == Metric(
        total_count=1, total_duration=2.0, failure_count=0, slow_counts={1.0: 1, 2.0: 1}
    )


def test_record_by_keyword_and_duck_typed() -> None:
    window = CountWindow(5)
    window.record(record=duck(success=0, duration=1, slow_at=[2]))
    assert window.get_metric() == Metric(
        total_count=1, total_duration=1.0, failure_count=1, slow_counts={2.0: 1}
    )
    assert list(window.get_metric().slow_counts) == [2.0]
    assert type(list(window.get_metric().slow_counts)[0]) is float


def test_duplicate_thresholds_in_one_record_count_once() -> None:
    window = CountWindow(2)
    window.record(rec(slow_at=(1.0, 1.0, 2.0, 1.0)))
    assert window.get_metric().slow_counts == {1.0: 1, 2.0: 1}
    window.record(rec())
    window.record(rec())
    assert window.get_metric().slow_counts == {}


def test_keys_follow_metric_arithmetic_order() -> None:
    # 1.0 leaves with the first record and comes back with the third: Metric
    # arithmetic drops it and appends it again after 2.0.
    window, reference = CountWindow(2), CountReference(2)
    for slow_at in [(1.0,), (2.0,), (1.0,), (3.0, 2.0)]:
        record = rec(slow_at=slow_at)
        window.record(record)
        reference.record(record)
        check(window, reference)
    assert items(window.get_metric()) == [(1.0, 1), (3.0, 1), (2.0, 1)]


def test_total_duration_matches_running_arithmetic_bit_for_bit() -> None:
    window, reference = CountWindow(3), CountReference(3)
    for duration in [0.1, 0.2, 0.7, 1e-9, 0.3, 1e9, 0.1, 0.2, 0.3, 0.4]:
        record = rec(duration=duration)
        window.record(record)
        reference.record(record)
        assert window.get_metric().total_duration == reference.metric.total_duration


def whole_nanoseconds(duration: float) -> bool:
    """Whether `duration` is what a native-clock reading of whole
    nanoseconds gives (``ns * 1e-9``)."""
    return round(duration * 1e9) * 1e-9 == duration


# Whole nanoseconds under 4 s, and durations that are not: fractions of a
# nanosecond, differences of clock readings, -0.0, the edges of 4 s, hours.
DURATION_FORMS = [
    0.0, 1e-9, 37 * 1e-9, 123456789 * 1e-9, 3999999999 * 1e-9,
    0.1, 0.1 + 0.2, 1e-10, 5e-324, -0.0, 4.0, 4.294967295, 4.5, 3600.0, 1e300,
]


def test_every_form_of_duration_is_kept_exactly() -> None:
    window, reference = CountWindow(4), CountReference(4)
    for duration in DURATION_FORMS * 2:
        record = rec(duration=duration)
        window.record(record)
        reference.record(record)
        metric = window.get_metric()
        assert repr(metric.total_duration) == repr(reference.metric.total_duration)
    state = window.__reduce__()[2]
    held = [duration for _, duration, _ in state[0]]
    assert [repr(d) for d in held] == [repr(d) for d in DURATION_FORMS[-4:]]


def test_native_clock_durations_are_whole_nanoseconds() -> None:
    window = CountWindow(50)
    cb = CircuitBreaker(window=window)
    for i in range(50):
        cb.call(sum, range(i * 100))
    durations = [duration for _, duration, _ in window.__reduce__()[2][0]]
    assert len(durations) == 50
    assert all(whole_nanoseconds(d) for d in durations), durations


def test_whole_nanosecond_durations_take_four_bytes_each() -> None:
    def window_of(durations: list[float]) -> CountWindow:
        window = CountWindow(len(durations))
        for i, duration in enumerate(durations):
            window.record(rec(i % 2 == 0, duration))
        return window

    def bytes_per_record(duration: Callable[[int], float]) -> float:
        # Two windows, 1000 records apart: what does not grow with the
        # records (the objects, the interpreter's free lists) cancels out.
        small = [duration(k) for k in range(1000)]
        large = [duration(k) for k in range(2000)]
        window_of(small)  # whatever a first use allocates for good
        small_bytes, _ = traced(lambda: window_of(small))
        large_bytes, _ = traced(lambda: window_of(large))
        return (large_bytes - small_bytes) / 1000

    # Four bytes of duration and one of flags per record, against eight more
    # for the durations that need their double.
    assert 4.5 <= bytes_per_record(lambda k: k * 1e-9) <= 5.5
    assert 12.5 <= bytes_per_record(lambda k: k / 7) <= 13.5


def test_many_distinct_thresholds_widen_the_slots() -> None:
    window, reference = CountWindow(3), CountReference(3)
    batches = [tuple(float(10 * b + i) for i in range(10)) for b in range(6)]
    for slow_at in batches:
        record = rec(slow_at=slow_at)
        window.record(record)
        reference.record(record)
        check(window, reference)
    assert len(window.get_metric().slow_counts) == 30
    for _ in range(3):
        record = rec(slow_at=(0.5,))
        window.record(record)
        reference.record(record)
        check(window, reference)
    assert window.get_metric().slow_counts == {0.5: 3}


def test_freed_thresholds_are_reused() -> None:
    window, reference = CountWindow(2), CountReference(2)
    for round_ in range(200):
        record = rec(slow_at=(float(round_), float(round_ + 1)))
        window.record(record)
        reference.record(record)
        check(window, reference)


def test_any_number_of_distinct_live_thresholds() -> None:
    # Up to 0.9.x of this library a window held at most 63; there is no limit.
    window, reference = CountWindow(300), CountReference(300)
    for i in range(500):
        record = rec(i % 7 != 0, float(i % 13), tuple(float(t) for t in range(i % 150, i % 150 + i % 5)))
        window.record(record)
        reference.record(record)
        if i % 50 == 0:
            check(window, reference)
    check(window, reference)
    assert len(window.get_metric().slow_counts) > 140


def test_one_record_with_hundreds_of_thresholds() -> None:
    window, reference = CountWindow(3), CountReference(3)
    for first in (0, 1000, 0, 2000, 3000):
        record = rec(slow_at=tuple(float(i) for i in range(first, first + 400)))
        window.record(record)
        reference.record(record)
        check(window, reference)
    window.reset()
    assert window.get_metric() == Metric.empty()
    window.record(rec(slow_at=(5.0,)))
    assert window.get_metric().slow_counts == {5.0: 1}


def test_eviction_makes_room_for_a_new_threshold() -> None:
    window, reference = CountWindow(63), CountReference(63)
    for i in range(70):
        record = rec(slow_at=(float(i),))
        window.record(record)
        reference.record(record)
    check(window, reference)
    assert len(window.get_metric().slow_counts) == 63


def test_large_count_window_grows_as_it_fills() -> None:
    window, reference = CountWindow(3000), CountReference(3000)
    for i in range(4500):
        record = rec(i % 3 != 0, (i % 16) / 8, (1.0,) if i % 5 == 0 else ())
        window.record(record)
        reference.record(record)
    check(window, reference)


def test_huge_count_window_costs_only_what_it_holds() -> None:
    window = CountWindow(2**62)
    window.record(rec(duration=1.0))
    assert window.get_metric().total_count == 1


# ---- TimeWindow ----------------------------------------------------------------


def test_records_are_placed_by_their_timestamp() -> None:
    window, reference = TimeWindow(3), TimeReference(3)
    for t in [100.0, 100.9, 101.5, 102.2, 103.0, 104.99, 104.0, 111.5]:
        record = rec(duration=1.0, timestamp=t)
        window.record(record)
        reference.record(record)
        check(window, reference)
    # 111 % 3 == 0 replaced 103; 104's bucket still holds both of its records.
    assert window.get_metric().total_count == 4


def test_a_bucket_reused_for_another_second_is_emptied_first() -> None:
    window = TimeWindow(2)
    window.record(rec(False, 1.0, (1.0,), timestamp=10.0))
    window.record(rec(False, 2.0, (1.0,), timestamp=10.5))
    window.record(rec(True, 4.0, (2.0,), timestamp=11.0))
    assert window.get_metric() == Metric(
        total_count=3, total_duration=7.0, failure_count=2, slow_counts={1.0: 2, 2.0: 1}
    )
    window.record(rec(True, 8.0, (), timestamp=12.0))  # wraps onto second 10
    assert window.get_metric() == Metric(
        total_count=2, total_duration=12.0, failure_count=0, slow_counts={2.0: 1}
    )


def test_stale_buckets_count_until_overwritten() -> None:
    window = TimeWindow(5)
    window.record(rec(timestamp=0.0))
    window.record(rec(timestamp=1.0))
    # Long after, one record reuses one bucket; the other keeps its record.
    window.record(rec(timestamp=1000.0))
    assert window.get_metric().total_count == 2
    window.record(rec(timestamp=1001.0))
    assert window.get_metric().total_count == 2
    window.record(rec(timestamp=1002.0))
    assert window.get_metric().total_count == 3


def test_going_back_in_time_uses_the_same_rule() -> None:
    window = TimeWindow(4)
    window.record(rec(timestamp=8.0))
    window.record(rec(timestamp=4.0))  # bucket 0, another second
    window.record(rec(timestamp=4.5))
    assert window.get_metric().total_count == 2


@pytest.mark.parametrize("size", [1, 2, 3, 7, 60, 1000])
@pytest.mark.parametrize(
    "t",
    [
        -0.5, -0.0, 0.5, -1.0, -1.5, -7.0, -59.99, -1e6 - 0.5, 1e15 + 0.5,
        2.0**52 + 1, 2.0**53, 2.0**63, 2.0**63 + 2048, -(2.0**63) - 4096,
        2.0**64 * 3, 1e300, -1e300, sys.float_info.max, -sys.float_info.max,
        sys.float_info.min, 5e-324, -5e-324,
    ],
)  # fmt: skip
def test_bucket_follows_python_int_and_modulo(size: int, t: float) -> None:
    window = TimeWindow(size)
    window.record(rec(timestamp=t))
    target = int(t) % size
    # A record in the same bucket but another second empties it; a record in
    # any other bucket does not.
    for other in {target, (target + 1) % size, (target - 1) % size}:
        probe = TimeWindow(size)
        probe.record(rec(timestamp=t))
        probe.record(rec(timestamp=float(other + size * 10)))
        assert probe.get_metric().total_count == (1 if other == target else 2)
    # The same second, however written, shares the bucket.
    window.record(rec(timestamp=float(int(t)) if abs(t) >= 1 else 0.0))
    assert window.get_metric().total_count == 2


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_non_finite_timestamp(bad: float) -> None:
    window = TimeWindow(3)
    window.record(rec(False, 1.0, (1.0,), timestamp=5.0))
    before = window.get_metric()
    with pytest.raises(ValueError, match=f"^record.timestamp must be finite, not {bad!r}$"):
        window.record(rec(True, 2.0, (2.0,), timestamp=bad))
    assert window.get_metric() == before
    assert items(window.get_metric()) == items(before)


def test_time_window_takes_any_number_of_thresholds() -> None:
    window, reference = TimeWindow(3), TimeReference(3)
    for i in range(40):
        record = rec(slow_at=tuple(float(t) for t in range(i * 7, i * 7 + 90)), timestamp=float(i // 2))
        window.record(record)
        reference.record(record)
        check(window, reference)
    assert len(window.get_metric().slow_counts) > 63

def test_time_window_does_not_read_the_clock() -> None:
    window = TimeWindow(10)
    for t in (3, 13):
        window.record(duck(success=True, duration=0.5, slow_at=(), timestamp=t))
    assert window.get_metric().total_count == 1


# ---- random streams --------------------------------------------------------------

THRESHOLDS = [0.5, 1.0, 2.0, 3.0]
MANY_THRESHOLDS = [k / 4 for k in range(1, 13)]


def records(
    durations: st.SearchStrategy[float],
    thresholds: list[float],
    timestamps: st.SearchStrategy[float],
) -> st.SearchStrategy[Record]:
    return st.builds(
        rec,
        success=st.booleans(),
        duration=durations,
        slow_at=st.lists(st.sampled_from(thresholds), max_size=5).map(tuple),
        timestamp=timestamps,
    )


any_durations = st.one_of(
    st.floats(min_value=0, max_value=1e4),
    st.integers(0, 2**32).map(lambda ns: ns * 1e-9),  # whole nanoseconds
    st.just(-0.0),
)
eighths = st.integers(0, 800).map(lambda k: k / 8)
near_timestamps = st.builds(
    lambda second, fraction: second + fraction,
    st.integers(-40, 40).map(float),
    st.sampled_from([0.0, 0.25, 0.5, 0.999]),
)
wide_timestamps = st.one_of(
    near_timestamps, st.floats(allow_nan=False, allow_infinity=False)
)


def run(window: Window, reference: CountReference | TimeReference, stream: list[Record]) -> None:
    for record in stream:
        window.record(record)
        reference.record(record)
        check(window, reference)


@given(
    st.integers(1, 12),
    st.lists(records(any_durations, THRESHOLDS, near_timestamps), max_size=60),
)
def test_count_window_matches_the_reference(size: int, stream: list[Record]) -> None:
    run(CountWindow(size), CountReference(size), stream)


@given(
    st.integers(1, 20),
    st.lists(records(eighths, MANY_THRESHOLDS, near_timestamps), max_size=60),
)
def test_count_window_with_many_thresholds(size: int, stream: list[Record]) -> None:
    window = CountWindow(size)
    reference = CountReference(size)
    run(window, reference, stream)
    # With durations in eighths the sum is exact whatever the order.
    assert window.get_metric().total_duration == total(reference.held()).total_duration


@given(
    st.integers(1, 12),
    st.lists(records(any_durations, THRESHOLDS, wide_timestamps), max_size=60),
)
def test_time_window_matches_the_reference(size: int, stream: list[Record]) -> None:
    run(TimeWindow(size), TimeReference(size), stream)


@given(
    st.integers(1, 6),
    st.lists(records(eighths, MANY_THRESHOLDS, near_timestamps), max_size=60),
)
def test_time_window_with_many_thresholds(size: int, stream: list[Record]) -> None:
    window = TimeWindow(size)
    reference = TimeReference(size)
    run(window, reference, stream)
    assert window.get_metric().total_duration == total(reference.held()).total_duration


@given(
    st.sampled_from(WINDOWS),
    st.lists(records(eighths, THRESHOLDS, near_timestamps), max_size=20),
    st.lists(records(eighths, THRESHOLDS, near_timestamps), max_size=20),
)
def test_reset_empties_the_window(
    cls: WindowType, before: list[Record], after: list[Record]
) -> None:
    window = cls(4)
    for record in before:
        window.record(record)
    window.reset()
    assert window.get_metric() == Metric.empty()
    reference = CountReference(4) if cls is CountWindow else TimeReference(4)
    run(window, reference, after)


# ---- bad records -------------------------------------------------------------------


class Explodes:
    def __bool__(self) -> bool:
        raise ZeroDivisionError("no truth")


@pytest.mark.parametrize("cls", WINDOWS)
@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"duration": "x"}, TypeError, "record.duration must be a real number, not str"),
        ({"duration": None}, TypeError, "record.duration must be a real number, not NoneType"),
        ({"slow_at": 5}, TypeError, "record.slow_at must be an iterable of real numbers, not int"),
        ({"slow_at": ("a",)}, TypeError, "record.slow_at item must be a real number, not str"),
        ({"slow_at": (1.0, None)}, TypeError, "record.slow_at item must be a real number, not NoneType"),
        ({"slow_at": (1.0, NAN)}, ValueError, "record.slow_at must not contain NaN"),
        ({"success": Explodes()}, ZeroDivisionError, "no truth"),
    ],
)  # fmt: skip
def test_bad_records_leave_the_window_unchanged(
    cls: WindowType, changes: dict[str, object], error: type[Exception], message: str
) -> None:
    window = cls(2)
    for t in (1.0, 2.0):
        window.record(rec(False, 1.0, (1.0,), timestamp=t))
    before = window.get_metric()
    fields: dict[str, object] = {
        "success": True, "duration": 1.0, "slow_at": (2.0,), "timestamp": 3.0,
    }  # fmt: skip
    fields.update(changes)
    with pytest.raises(error, match=f"^{message}$"):
        window.record(duck(**fields))
    assert window.get_metric() == before


@pytest.mark.parametrize("cls", WINDOWS)
@pytest.mark.parametrize("missing", ["success", "duration", "slow_at"])
def test_missing_attribute(cls: WindowType, missing: str) -> None:
    fields: dict[str, object] = {
        "success": True, "duration": 1.0, "slow_at": (), "timestamp": 3.0,
    }  # fmt: skip
    del fields[missing]
    window = cls(2)
    with pytest.raises(AttributeError, match=missing):
        window.record(duck(**fields))
    assert window.get_metric() == Metric.empty()


def test_time_window_needs_a_numeric_timestamp() -> None:
    window = TimeWindow(2)
    bad = duck(success=True, duration=1.0, slow_at=(), timestamp="now")
    with pytest.raises(TypeError, match="^record.timestamp must be a real number, not str$"):
        window.record(bad)
    with pytest.raises(AttributeError, match="timestamp"):
        window.record(duck(success=True, duration=1.0, slow_at=()))
    assert window.get_metric() == Metric.empty()


def test_count_window_ignores_the_timestamp() -> None:
    window = CountWindow(2)
    window.record(duck(success=True, duration=1.0, slow_at=()))
    window.record(rec(timestamp=NAN))
    assert window.get_metric().total_count == 2


def test_slow_at_may_be_any_iterable() -> None:
    window = CountWindow(3)
    window.record(duck(success=True, duration=0, slow_at=iter([1, 2.5])))
    window.record(duck(success=True, duration=0, slow_at=[float(i) for i in range(40)]))
    assert window.get_metric().slow_counts[1.0] == 2
    assert window.get_metric().slow_counts[2.5] == 1


def test_the_metric_is_a_copy() -> None:
    window = CountWindow(3)
    window.record(rec(slow_at=(1.0,)))
    metric = window.get_metric()
    metric.slow_counts[1.0] = 99  # type: ignore[index]
    object.__setattr__(metric, "total_count", 42)
    assert window.get_metric() == Metric(
        total_count=1, total_duration=0.0, failure_count=0, slow_counts={1.0: 1}
    )


# ---- subclasses --------------------------------------------------------------------


@pytest.mark.parametrize("cls", WINDOWS)
def test_subclass_overriding_record(cls: WindowType) -> None:
    class Logged(cls):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__(size=2)
            self.seen: list[Record] = []

        def record(self, record: Record) -> None:
            self.seen.append(record)
            super().record(record)

    window = Logged()
    assert isinstance(window, Window) and window.size == 2
    first, second = rec(duration=1.0, timestamp=1.0), rec(duration=2.0, timestamp=2.0)
    window.record(first)
    window.record(second)
    assert window.seen == [first, second]
    assert window.get_metric().total_duration == 3.0
    assert repr(window).endswith("Logged(size=2)")


def test_subclass_overriding_get_metric() -> None:
    class Doubled(CountWindow):
        def get_metric(self) -> Metric:
            metric = super().get_metric()
            return metric + metric

    window = Doubled(3)
    window.record(rec(False))
    assert window.get_metric().failure_count == 2
    window.reset()
    assert window.get_metric() == Metric.empty()


@pytest.mark.parametrize("cls", WINDOWS)
def test_a_breaker_calls_an_overriding_subclass(cls: WindowType) -> None:
    class Counting(cls):  # type: ignore[misc,valid-type]
        records = 0

        def record(self, record: Record) -> None:
            type(self).records += 1
            super().record(record)

    window = Counting(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    cb.call(lambda: None)
    assert Counting.records == 1
    assert cb.info().metrics.total_count == 1


@pytest.mark.parametrize("cls", WINDOWS)
def test_a_breaker_records_into_a_builtin(cls: WindowType) -> None:
    window = cls(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    cb.call(lambda: None)
    with pytest.raises(ZeroDivisionError):
        cb.call(lambda: 1 / 0)
    metric = window.get_metric()
    assert (metric.total_count, metric.failure_count) == (2, 1)
    assert cb.info().metrics == metric


@pytest.mark.parametrize("cls", WINDOWS)
def test_uninitialised_instance_does_not_crash(cls: WindowType) -> None:
    class Lazy(cls):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            pass

    window = Lazy()
    with pytest.raises(RuntimeError, match=f"{cls.__name__}.__init__\\(\\) was not called"):
        window.record(rec(timestamp=1.0))
    assert window.get_metric() == Metric.empty()
    window.reset()
    window.__init__()  # type: ignore[misc]
    cls.__init__(window, 2)
    window.record(rec(timestamp=1.0))
    assert window.get_metric().total_count == 1


@pytest.mark.parametrize("cls", WINDOWS)
def test_init_again_is_refused_and_changes_nothing(cls: WindowType) -> None:
    window = cls(3)
    window.record(rec(slow_at=(1.0,), timestamp=1.0))
    before = window.get_metric()
    with pytest.raises(TypeError, match=f"{cls.__name__} object is already initialised"):
        window.__init__(5)  # type: ignore[misc]
    assert window.size == 3
    assert window.get_metric() == before
    window.record(rec(timestamp=1.0))
    assert window.get_metric().total_count == 2


# ---- threads and memory --------------------------------------------------------------


@pytest.mark.parametrize("cls", WINDOWS)
def test_concurrent_records_are_all_counted(cls: WindowType) -> None:
    window = cls(1_000_000)
    threads, per_thread = 4, 500
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            window.record(rec(i % 2 == 0, 0.5, (float(n),), timestamp=float(n)))
            window.get_metric()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    metric = window.get_metric()
    assert metric.total_count == threads * per_thread
    assert metric.failure_count == threads * per_thread // 2
    assert metric.slow_counts == {float(n): per_thread for n in range(threads)}


def traced(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated by `build` when it returns, and its result."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def test_a_full_count_window_is_far_smaller_than_its_records() -> None:
    def full_window() -> CountWindow:
        window = CountWindow(1000)
        for i in range(1000):
            window.record(rec(i % 2 == 0, i / 8, (1.0, 2.0)))
        return window

    def record_objects() -> list[Record]:
        return [rec(i % 2 == 0, i / 8, (1.0, 2.0)) for i in range(1000)]

    window_bytes, window = traced(full_window)
    records_bytes, kept = traced(record_objects)
    assert window.get_metric().total_count == 1000  # type: ignore[attr-defined]
    assert len(kept) == 1000  # type: ignore[arg-type]
    assert window_bytes * 5 < records_bytes


# ---- static types --------------------------------------------------------------------

TYPED_PROGRAM = """\
from fluxgate import CircuitBreaker
from fluxgate.metric import Metric, Record
from fluxgate.windows import CountWindow, TimeWindow, Window

class ListWindow(Window):
    def __init__(self) -> None:
        self.records: list[Record] = []
    def record(self, record: Record) -> None:
        self.records.append(record)
    def get_metric(self) -> Metric:
        return Metric.empty()
    def reset(self) -> None:
        self.records.clear()

windows: list[Window] = [CountWindow(100), TimeWindow(size=60), ListWindow()]
for w in windows:
    w.record(Record(success=True))
    metric: Metric = w.get_metric()
    w.reset()
size: int = CountWindow(5).size + TimeWindow(5).size
cb = CircuitBreaker(window=CountWindow(10))
"""

WRONG_PROGRAM = """\
from fluxgate.windows import CountWindow, TimeWindow, Window
a = CountWindow(size="10")
b = TimeWindow(2.5)
CountWindow(3).size = 4
d = Window()
e: int = CountWindow(3).get_metric()
"""


def test_stubs_accept_real_programs_and_reject_wrong_ones(
    mypy_strict: Callable[[str], TypeCheck],
) -> None:
    good = mypy_strict(TYPED_PROGRAM)
    assert good.status == 0, good.output
    wrong = mypy_strict(WRONG_PROGRAM)
    assert wrong.status == 1
    assert wrong.error_lines == [2, 3, 4, 5, 6], wrong.output
