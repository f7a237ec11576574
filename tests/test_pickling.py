"""Pickle and copy: every built-in component round-trips at every pickle
protocol and through copy.copy and copy.deepcopy, with its parameters, its
records (windows) and a Python subclass's class and attributes, and behaves
the same afterwards."""

from __future__ import annotations

import copy
import math
import pickle
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxgate import CircuitBreaker
from fluxgate.metric import Metric, Record
from fluxgate.permits import All as PermitAll
from fluxgate.permits import Permit, Random, RampUp
from fluxgate.retries import Always, Backoff, Cooldown, Never, Retry
from fluxgate.trackers import All, Custom, Tracker, TypeOf
from fluxgate.trippers import (
    AvgLatency,
    CallContext,
    Closed,
    FailureRate,
    FailureStreak,
    HalfOpened,
    MinRequests,
    SlowRate,
    Tripper,
)
from fluxgate.windows import CountWindow, TimeWindow

NOW = 1000.0


def pickled(protocol: int) -> Callable[[Any], Any]:
    def round_trip(obj: Any) -> Any:
        return pickle.loads(pickle.dumps(obj, protocol))

    return round_trip


ROUND_TRIPS: dict[str, Callable[[Any], Any]] = {
    f"pickle{protocol}": pickled(protocol)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1)
}
ROUND_TRIPS["copy"] = copy.copy
ROUND_TRIPS["deepcopy"] = copy.deepcopy


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """time.time() stays at NOW, so verdicts depend on the inputs only."""
    monkeypatch.setattr(time, "time", lambda: NOW)


def same_clone(obj: Any, how: str) -> Any:
    clone = ROUND_TRIPS[how](obj)
    assert clone is not obj
    assert type(clone) is type(obj)
    assert repr(clone) == repr(obj)
    return clone


def verdicts(
    component: Callable[..., bool], calls: Iterable[tuple[Any, ...]]
) -> list[bool]:
    """The verdicts on `calls`, from the same random draws each time."""
    random.seed(20240611)
    return [component(*args) for args in calls]


# ---- retries -------------------------------------------------------------------

RETRIES: list[Retry] = [
    Always(),
    Never(),
    Cooldown(2.5),
    Cooldown(2.5, jitter_ratio=0.3),
    Backoff(1.5),
    Backoff(0.5, multiplier=3.0, max_duration=40.0, jitter_ratio=0.1),
]
RETRY_CALLS = [
    (NOW - elapsed, reopens)
    for elapsed in (-5.0, 0.0, 0.4, 1.4, 2.0, 2.4, 2.6, 3.0, 4.5, 13.0, 41.0, 1e4)
    for reopens in (0, 1, 2, 5, 10**6)
]


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("retry", RETRIES, ids=repr)
def test_retries(retry: Retry, how: str) -> None:
    clone = same_clone(retry, how)
    assert verdicts(clone, RETRY_CALLS) == verdicts(retry, RETRY_CALLS)


def test_retry_parameters_survive_exactly() -> None:
    backoff = Backoff(0.1, multiplier=1.1, max_duration=0.7, jitter_ratio=0.3)
    clone = pickle.loads(pickle.dumps(backoff))
    values = (clone.initial, clone.multiplier, clone.max_duration, clone.jitter_ratio)
    assert values == (0.1, 1.1, 0.7, 0.3)
    cooldown = copy.deepcopy(Cooldown(1 / 3, jitter_ratio=0.1))
    assert (cooldown.duration, cooldown.jitter_ratio) == (1 / 3, 0.1)


# ---- permits -------------------------------------------------------------------

PERMITS: list[Permit] = [
    PermitAll(),
    Random(0.0),
    Random(0.25),
    Random(1.0),
    RampUp(0.2, 0.9, 30.0),
]
PERMIT_CALLS = [
    (NOW - elapsed,)
    for elapsed in (-3.0, 0.0, 5.0, 15.0, 29.0, 60.0)
    for _ in range(10)
]


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("permit", PERMITS, ids=repr)
def test_permits(permit: Permit, how: str) -> None:
    clone = same_clone(permit, how)
    assert verdicts(clone, PERMIT_CALLS) == verdicts(permit, PERMIT_CALLS)


def test_the_permit_all_keeps_its_public_home() -> None:
    assert pickle.loads(pickle.dumps(PermitAll)) is PermitAll
    assert b"fluxgate.permits" in pickle.dumps(PermitAll(), 0)


# ---- trackers ------------------------------------------------------------------


def is_transient(exception: Exception) -> bool:
    return "transient" in str(exception)


TRACKERS: list[Tracker] = [
    All(),
    TypeOf(ValueError, KeyError),
    Custom(is_transient),
    ~TypeOf(KeyError),
    TypeOf(KeyError) & ~Custom(is_transient) | TypeOf(LookupError) & All(),
]
EXCEPTIONS = [
    (ValueError("transient"),),
    (KeyError("x"),),
    (IndexError("transient"),),
    (RuntimeError(),),
]


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("tracker", TRACKERS, ids=repr)
def test_trackers(tracker: Tracker, how: str) -> None:
    clone = same_clone(tracker, how)
    assert verdicts(clone, EXCEPTIONS) == verdicts(tracker, EXCEPTIONS)


# ---- trippers ------------------------------------------------------------------

TRIPPERS: list[Tripper] = [
    Closed(),
    HalfOpened(),
    MinRequests(3),
    FailureRate(0.5),
    AvgLatency(0.75),
    SlowRate(0.25, threshold=1.5),
    FailureStreak(2),
    MinRequests(4) & (AvgLatency(0.5) | FailureStreak(3)),
    Closed() & MinRequests(2) & (FailureRate(0.5) | SlowRate(0.3, threshold=1.5))
    | HalfOpened() & FailureStreak(2),
]
CONTEXTS = [
    (CallContext(metric=metric, state=state, consecutive_failures=streak),)
    for metric in (
        Metric.empty(),
        Metric(
            total_count=4, total_duration=3.0, failure_count=2, slow_counts={1.5: 1}
        ),
        Metric(total_count=2, total_duration=0.5, failure_count=0, slow_counts={}),
    )
    for state in ("closed", "half_open")
    for streak in (0, 2, 5)
]


def tripper_param(tripper: Tripper, how: str) -> Any:
    return pytest.param(tripper, how, id=f"{tripper!r}-{how}")


@pytest.mark.parametrize(
    ("tripper", "how"), [tripper_param(t, how) for t in TRIPPERS for how in ROUND_TRIPS]
)
def test_trippers(tripper: Tripper, how: str) -> None:
    clone = same_clone(tripper, how)
    assert verdicts(clone, CONTEXTS) == verdicts(tripper, CONTEXTS)
    assert [repr(leaf) for leaf in clone] == [repr(leaf) for leaf in tripper]


# ---- windows -------------------------------------------------------------------


def rec(
    success: bool, duration: float, slow_at: tuple[float, ...] = (), at: float = NOW
) -> Record:
    record = Record(success=success, duration=duration, slow_at=slow_at)
    object.__setattr__(record, "timestamp", at)
    return record


W = TypeVar("W", bound=CountWindow | TimeWindow)


def filled(window: W, records: Iterable[Record]) -> W:
    for record in records:
        window.record(record)
    return window


def reduced(window: object) -> tuple[Any, ...]:
    result = window.__reduce__()
    assert isinstance(result, tuple)
    return result


def set_state(window: Any, state: object) -> None:
    """window.__setstate__(state), which the stubs do not declare."""
    window.__setstate__(state)


def shown(window: CountWindow | TimeWindow) -> str:
    """The metric as repr shows it: exact floats, slow keys in order."""
    return repr(window.get_metric())


# Size 3: 0.5 stays live while its first record leaves, so get_metric() lists
# 0.5 before 0.7 although the oldest live record counts only 0.7; and the
# running total (subtract the leaving record, then add) differs in its last
# bit from adding up the live records again.
EVICTING = [
    rec(True, 0.1, (0.5,)),
    rec(False, 0.2, (0.7,)),
    rec(True, 0.3, (0.5,)),
    rec(True, 0.4, (0.9,)),
]
# More than 7 distinct thresholds live at once.
MANY_THRESHOLDS = [
    rec(i % 3 != 0, i / 10, tuple(j / 4 for j in range(i))) for i in range(12)
]
# Size 4: seconds 100 and 104 share bucket 0, -2 and 106 bucket 2.
SECONDS = [
    rec(True, 0.3, (0.5,), at=-2.5),
    rec(True, 0.2, (), at=100.2),
    rec(False, 0.3, (0.5, 0.25), at=100.7),
    rec(True, 0.7, (0.25,), at=101.5),
    rec(True, 0.6, (0.5,), at=103.1),
    rec(False, 0.1, (), at=104.9),
    rec(True, 0.7, (0.75, 0.5), at=106.0),
]


def count_after_reset() -> CountWindow:
    window: CountWindow = filled(CountWindow(3), EVICTING)
    window.reset()
    return filled(window, EVICTING[1:])


def time_after_reset() -> TimeWindow:
    window: TimeWindow = filled(TimeWindow(4), SECONDS)
    window.reset()
    return filled(window, SECONDS[4:])


def time_many_thresholds() -> TimeWindow:
    window = TimeWindow(3)
    for i, record in enumerate(MANY_THRESHOLDS):
        window.record(
            rec(record.success, record.duration, record.slow_at, at=50.0 + i / 3)
        )
    return window


def count_timed_by_a_breaker() -> CountWindow:
    # Durations the native clock measured: whole nanoseconds, kept in 32
    # bits; then one that is not (a record of its own).
    window = CountWindow(5)
    cb = CircuitBreaker(window=window, tripper=MinRequests(10**6))
    for i in range(7):
        cb.call(sum, range(i * 50))
    window.record(rec(True, 0.1 + 0.2))
    return window


WINDOWS: dict[str, Callable[[], CountWindow | TimeWindow]] = {
    "count-timed-by-a-breaker": count_timed_by_a_breaker,
    "count-empty": lambda: CountWindow(3),
    "count-partly-filled": lambda: filled(CountWindow(5), EVICTING),
    "count-after-evictions": lambda: filled(CountWindow(3), EVICTING),
    "count-many-thresholds": lambda: filled(CountWindow(9), MANY_THRESHOLDS),
    "count-after-reset": count_after_reset,
    "time-empty": lambda: TimeWindow(4),
    "time-overwritten-buckets": lambda: filled(TimeWindow(4), SECONDS),
    "time-many-thresholds": time_many_thresholds,
    "time-after-reset": time_after_reset,
}

FURTHER_COUNT = [
    rec(i % 2 == 0, 0.1 * i, (0.5,) if i % 3 else (0.9, 0.25)) for i in range(1, 12)
]
FURTHER_TIME = [
    rec(i % 2 == 0, 0.1 * i, (0.5,) if i % 3 else (0.9,), at=104.5 + 0.7 * i)
    for i in range(1, 12)
] + [rec(True, 0.3, at=250.0)]


def further_records(window: CountWindow | TimeWindow) -> list[Record]:
    return FURTHER_COUNT if isinstance(window, CountWindow) else FURTHER_TIME


def metrics_while_recording(
    window: CountWindow | TimeWindow, records: Iterable[Record]
) -> list[str]:
    shown_metrics = []
    for record in records:
        window.record(record)
        shown_metrics.append(shown(window))
    return shown_metrics


def test_the_running_total_differs_from_summing_the_live_records() -> None:
    # What makes the total_duration checks below meaningful.
    metric = filled(CountWindow(3), EVICTING).get_metric()
    assert metric.total_duration != 0.2 + 0.3 + 0.4
    assert list(metric.slow_counts) == [0.5, 0.7, 0.9]
    metric = filled(TimeWindow(4), SECONDS).get_metric()
    assert metric.total_duration != 0.7 + 0.6 + 0.1 + 0.7


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("name", WINDOWS)
def test_windows(name: str, how: str) -> None:
    window = WINDOWS[name]()
    before = shown(window)
    clone = same_clone(window, how)
    assert clone.size == window.size
    assert clone.get_metric() == window.get_metric()
    assert shown(clone) == before
    # The same later behaviour (evictions, bucket reuse), and no sharing.
    later = metrics_while_recording(clone, further_records(window))
    assert shown(window) == before
    assert metrics_while_recording(window, further_records(window)) == later
    clone.reset()
    assert clone.get_metric() == Metric.empty()
    assert shown(window) == later[-1]


@pytest.mark.parametrize("name", WINDOWS)
def test_a_copy_of_an_unpickled_window_reduces_the_same(name: str) -> None:
    window = WINDOWS[name]()
    twice = copy.copy(pickle.loads(pickle.dumps(window)))
    assert reduced(twice) == reduced(window)


def test_windows_reduce_to_their_size_and_plain_values() -> None:
    func, args, state = reduced(filled(CountWindow(3), EVICTING))
    assert func is CountWindow and args == (3,)
    records, total_duration, thresholds = state
    assert records == [(False, 0.2, (0.7,)), (True, 0.3, (0.5,)), (True, 0.4, (0.9,))]
    assert (
        total_duration == filled(CountWindow(3), EVICTING).get_metric().total_duration
    )
    assert thresholds == (0.5, 0.7, 0.9)
    func, args, state = reduced(filled(TimeWindow(4), SECONDS[1:4]))
    assert func is TimeWindow and args == (4,)
    assert state == (
        [(100, 2, 1, 0.5, {0.5: 1, 0.25: 1}), (101, 1, 0, 0.7, {0.25: 1})],
        0.2 + 0.3 + 0.7,
        (0.5, 0.25),
    )


@pytest.mark.parametrize("cls", [CountWindow, TimeWindow])
def test_an_uninitialised_window_refuses(
    cls: type[CountWindow] | type[TimeWindow],
) -> None:
    window = cls.__new__(cls)
    message = (
        f"^window is not initialised: {cls.__name__}.__init__\\(\\) was not called$"
    )
    with pytest.raises(RuntimeError, match=message):
        window.__reduce__()
    with pytest.raises(RuntimeError, match=message):
        set_state(window, ([], 0.0, ()))


# ---- unpickling validates as the constructors do -------------------------------


class Forged:
    """Pickles as a call of `func` with arguments no constructor accepts."""

    def __init__(self, func: object, *args: object) -> None:
        self.reduced = (func, args)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.reduced


@pytest.mark.parametrize(
    ("forged", "error", "message"),
    [
        (Forged(Cooldown, -1.0, 0.0), ValueError, "Duration must be greater than zero"),
        (
            Forged(Backoff, 2.0, 2.0, 1.0, 0.0),
            ValueError,
            "Max duration must be >= initial duration",
        ),
        (Forged(Random, 1.5), ValueError, "Ratio must be between 0.0 and 1.0"),
        (
            Forged(RampUp, 0.5, 0.2, 1.0),
            ValueError,
            "Initial must be > 0.0 and <= final, and final must be <= 1.0",
        ),
        (Forged(Always, 1), TypeError, None),
        (Forged(CountWindow, 0), ValueError, "size must be greater than zero"),
        (Forged(TimeWindow, "3"), TypeError, "size must be an integer, not str"),
    ],
)
def test_unpickling_validates_the_arguments(
    forged: Forged, error: type[Exception], message: str | None
) -> None:
    with pytest.raises(error, match=None if message is None else f"^{message}$"):
        pickle.loads(pickle.dumps(forged))


# ---- subclasses ----------------------------------------------------------------


class PaymentsCooldown(Cooldown):
    pass


class PaymentsNever(Never):
    pass


class PaymentsRampUp(RampUp):
    pass


class PaymentsAll(PermitAll):
    pass


class PaymentsWindow(CountWindow):
    pass


class PaymentsTimeWindow(TimeWindow):
    pass


class SlottedWindow(TimeWindow):
    __slots__ = ()


class PaymentsTypeOf(TypeOf):
    pass


class PaymentsFailureRate(FailureRate):
    pass


SUBCLASSED: dict[str, Callable[[], Any]] = {
    "retry": lambda: PaymentsCooldown(3.0, jitter_ratio=0.1),
    "retry-no-args": PaymentsNever,
    "permit": lambda: PaymentsRampUp(0.1, 0.5, 20.0),
    "permit-no-args": PaymentsAll,
    "count-window": lambda: filled(PaymentsWindow(3), EVICTING),
    "time-window": lambda: filled(PaymentsTimeWindow(4), SECONDS),
    "tracker": lambda: PaymentsTypeOf(KeyError),
    "tripper": lambda: PaymentsFailureRate(0.5),
}


def subclass_param(name: str, how: str) -> Any:
    return pytest.param(name, how, id=f"{name}-{how}")


@pytest.mark.parametrize(
    ("name", "how"),
    [subclass_param(name, how) for name in SUBCLASSED for how in ROUND_TRIPS],
)
def test_subclasses_keep_their_class_and_attributes(name: str, how: str) -> None:
    obj = SUBCLASSED[name]()
    obj.owner = "payments"
    obj.limits = [1, 2]
    clone = same_clone(obj, how)
    assert vars(clone) == {"owner": "payments", "limits": [1, 2]}
    if how == "deepcopy":
        assert clone.limits is not obj.limits
    if isinstance(obj, (CountWindow, TimeWindow)):
        assert shown(clone) == shown(obj)
        later = further_records(obj)
        assert metrics_while_recording(clone, later) == metrics_while_recording(
            obj, later
        )


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_a_subclass_without_instance_dict(how: str) -> None:
    window = filled(SlottedWindow(4), SECONDS)
    assert len(reduced(window)[2]) == 3
    clone = same_clone(window, how)
    assert shown(clone) == shown(window)


# ---- malformed window states ---------------------------------------------------


class LikeOne:
    """A dict key apart from 1 that still reads as the threshold 1.0."""

    def __float__(self) -> float:
        return 1.0


def thresholds(first: int, count: int) -> tuple[float, ...]:
    return tuple(float(i) for i in range(first, first + count))


COUNT_MALFORMED = [
    pytest.param(
        [[], 0.0, ()],
        TypeError,
        "^CountWindow state must be a tuple of 3 or 4 items, not list$",
        id="not-a-tuple",
    ),
    pytest.param(
        ([], 0.0),
        TypeError,
        "must be a tuple of 3 or 4 items, not tuple",
        id="two-items",
    ),
    pytest.param(
        ([], 0.0, (), {}, None), TypeError, "of 3 or 4 items", id="five-items"
    ),
    pytest.param(
        ("abc", 0.0, ()),
        TypeError,
        "^CountWindow state: records must be a list or tuple, not str$",
        id="records-not-a-list",
    ),
    pytest.param(
        ([[True, 0.1, ()]], 0.1, ()),
        TypeError,
        r"^CountWindow state: each record must be a \(success, duration, slow_at\) tuple "
        "with a bool success$",
        id="record-not-a-tuple",
    ),
    pytest.param(
        ([(True, 0.1)], 0.1, ()),
        TypeError,
        "each record must be",
        id="record-too-short",
    ),
    pytest.param(
        ([(1, 0.1, ())], 0.1, ()),
        TypeError,
        "with a bool success",
        id="success-not-a-bool",
    ),
    pytest.param(
        ([(True, "0.1", ())], 0.1, ()),
        TypeError,
        "^CountWindow state: record duration must be a real number, not str$",
        id="duration-not-a-number",
    ),
    pytest.param(
        ([(True, 0.1, 1.0)], 0.1, ()),
        TypeError,
        "^CountWindow state: record slow_at must be a list or tuple, not float$",
        id="slow-at-not-a-list",
    ),
    pytest.param(
        ([(True, 0.1, (None,))], 0.1, ()),
        TypeError,
        "^CountWindow state: record slow_at item must be a real number, not NoneType$",
        id="slow-at-item-not-a-number",
    ),
    pytest.param(
        ([(True, 0.1, (math.nan,))], 0.1, (math.nan,)),
        ValueError,
        "^record.slow_at must not contain NaN$",
        id="slow-at-nan",
    ),
    pytest.param(
        ([(True, 0.1, ())] * 4, 0.4, ()),
        ValueError,
        "^CountWindow state: 4 records do not fit in size 3$",
        id="too-many-records",
    ),
    pytest.param(
        ([], "0", ()),
        TypeError,
        "^CountWindow state: total_duration must be a real number, not str$",
        id="total-not-a-number",
    ),
    pytest.param(
        ([], 10**400, ()),
        ValueError,
        "^CountWindow state: total_duration is out of range$",
        id="total-out-of-range",
    ),
    pytest.param(
        ([], 0.0, None),
        TypeError,
        "^CountWindow state: thresholds must be a list or tuple, not NoneType$",
        id="thresholds-not-a-list",
    ),
    pytest.param(
        ([(True, 0.5, (1.0, 2.0))], 0.5, (2.0,)),
        ValueError,
        "^CountWindow state: thresholds must list each live slow threshold once$",
        id="threshold-missing",
    ),
    pytest.param(
        ([(True, 0.5, (1.0,))], 0.5, (1.0, 1.0)),
        ValueError,
        "each live slow threshold once",
        id="threshold-twice",
    ),
    pytest.param(
        ([], 0.0, (1.0,)),
        ValueError,
        "each live slow threshold once",
        id="threshold-dead",
    ),
    pytest.param(
        ([], 0.0, (), [("owner", "x")]),
        TypeError,
        "^CountWindow state: attributes must be a dict, not list$",
        id="attributes-not-a-dict",
    ),
    pytest.param(
        ([], 0.0, (), {"owner": "x"}),
        TypeError,
        "^CountWindow state: attributes given to an object without a __dict__$",
        id="attributes-without-dict",
    ),
]

TIME_MALFORMED = [
    pytest.param(
        ({}, 0.0, ()),
        TypeError,
        "^TimeWindow state: buckets must be a list or tuple, not dict$",
        id="buckets-not-a-list",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5)], 0.5, ()),
        TypeError,
        r"^TimeWindow state: each bucket must be a \(second, count, failures, duration, "
        r"slow_counts\) tuple$",
        id="bucket-too-short",
    ),
    pytest.param(
        ([("7", 1, 0, 0.5, {})], 0.5, ()),
        TypeError,
        "^TimeWindow state: bucket second must be a real number, not str$",
        id="second-not-a-number",
    ),
    pytest.param(
        ([(7.5, 1, 0, 0.5, {})], 0.5, ()),
        ValueError,
        "^TimeWindow state: a bucket's second must be a whole number$",
        id="second-fractional",
    ),
    pytest.param(
        ([(math.inf, 1, 0, 0.5, {})], 0.5, ()),
        ValueError,
        "second must be a whole number",
        id="second-infinite",
    ),
    pytest.param(
        ([(10**400, 1, 0, 0.5, {})], 0.5, ()),
        ValueError,
        "^TimeWindow state: bucket second is out of range$",
        id="second-out-of-range",
    ),
    pytest.param(
        ([(7, 1.0, 0, 0.5, {})], 0.5, ()),
        TypeError,
        "^TimeWindow state: bucket count must be an integer, not float$",
        id="count-not-an-integer",
    ),
    pytest.param(
        ([(7, 0, 0, 0.0, {})], 0.0, ()),
        ValueError,
        "^TimeWindow state: a bucket must count at least one record and at most that many "
        "failures$",
        id="count-zero",
    ),
    pytest.param(
        ([(7, 2**63, 0, 0.0, {})], 0.0, ()),
        ValueError,
        "^TimeWindow state: bucket count is out of range$",
        id="count-out-of-range",
    ),
    pytest.param(
        ([(7, 2**62, 0, 0.0, {}), (8, 2**62, 0, 0.0, {})], 0.0, ()),
        ValueError,
        "a bucket must count at least one record",
        id="counts-overflow",
    ),
    pytest.param(
        ([(7, 1, 2, 0.5, {})], 0.5, ()),
        ValueError,
        "at most that many failures",
        id="too-many-failures",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5, {}), (10, 1, 0, 0.5, {})], 1.0, ()),
        ValueError,
        "^TimeWindow state: two buckets fall in the same slot$",
        id="same-slot",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5, [(1.0, 1)])], 0.5, (1.0,)),
        TypeError,
        "^TimeWindow state: a bucket's slow counts must be a dict, not list$",
        id="slow-counts-not-a-dict",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5, {1.0: 2})], 0.5, (1.0,)),
        ValueError,
        "^TimeWindow state: a bucket's slow counts must be between 1 and its count, for "
        "thresholds that are not NaN$",
        id="slow-count-above-count",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5, {1.0: 0})], 0.5, (1.0,)),
        ValueError,
        "between 1 and its count",
        id="slow-count-zero",
    ),
    pytest.param(
        ([(7, 1, 0, 0.5, {math.nan: 1})], 0.5, (math.nan,)),
        ValueError,
        "not NaN",
        id="slow-threshold-nan",
    ),
    pytest.param(
        ([(7, 2, 0, 0.5, {1: 1, LikeOne(): 1})], 0.5, (1.0,)),
        ValueError,
        "^TimeWindow state: a bucket counts a slow threshold twice$",
        id="slow-threshold-twice",
    ),
    pytest.param(
        ([(7, 2, 0, 0.5, {1.0: 1, 2.0: 2})], 0.5, (1.0,)),
        ValueError,
        "^TimeWindow state: thresholds must list each live slow threshold once$",
        id="threshold-missing",
    ),
    pytest.param(
        ([], 0.0, (), {"owner": "x"}),
        TypeError,
        "attributes given to an object without",
        id="attributes-without-dict",
    ),
]


def assert_refused(
    make: Callable[[], Any], state: object, error: type[Exception], message: str
) -> None:
    window, untouched = make(), make()
    before = reduced(window)
    with pytest.raises(error, match=message):
        set_state(window, state)
    assert reduced(window) == before
    # And it goes on exactly as a window that never saw the state.
    later = further_records(window)
    assert metrics_while_recording(window, later) == metrics_while_recording(
        untouched, later
    )


@pytest.mark.parametrize(("state", "error", "message"), COUNT_MALFORMED)
def test_a_malformed_count_state_is_refused(
    state: object, error: type[Exception], message: str
) -> None:
    assert_refused(lambda: filled(CountWindow(3), EVICTING), state, error, message)


@pytest.mark.parametrize(("state", "error", "message"), TIME_MALFORMED)
def test_a_malformed_time_state_is_refused(
    state: object, error: type[Exception], message: str
) -> None:
    assert_refused(lambda: filled(TimeWindow(3), SECONDS), state, error, message)


def test_a_state_replaces_the_records_and_updates_the_attributes() -> None:
    window = filled(PaymentsWindow(3), EVICTING)
    window.owner = "old"  # type: ignore[attr-defined]
    window.kept = True  # type: ignore[attr-defined]
    set_state(window, ([(False, 0.25, (2.0,))], 0.25, (2.0,), {"owner": "new"}))
    assert vars(window) == {"owner": "new", "kept": True}
    assert window.get_metric() == Metric(
        total_count=1, total_duration=0.25, failure_count=1, slow_counts={2.0: 1}
    )


LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=2)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3)
    | st.tuples(inner, inner, inner)
    | st.dictionaries(st.floats() | st.integers(), inner, max_size=2),
    max_leaves=12,
)
NUMBERS = st.floats() | st.integers(-(2**64), 2**64)
NEAR_COUNT_STATES = st.tuples(
    st.lists(
        st.tuples(
            st.booleans() | st.integers(0, 1), NUMBERS, st.lists(NUMBERS, max_size=3)
        ),
        max_size=4,
    ),
    NUMBERS,
    st.lists(NUMBERS, max_size=3),
)
NEAR_TIME_STATES = st.tuples(
    st.lists(
        st.tuples(
            NUMBERS,
            st.integers(-1, 3),
            st.integers(-1, 3),
            NUMBERS,
            st.dictionaries(NUMBERS, st.integers(-1, 3), max_size=2),
        ),
        max_size=4,
    ),
    NUMBERS,
    st.lists(NUMBERS, max_size=3),
)


@given(state=VALUES | NEAR_COUNT_STATES | NEAR_TIME_STATES, size=st.integers(1, 4))
def test_any_state_is_taken_or_refused_cleanly(state: object, size: int) -> None:
    for window in (
        filled(CountWindow(size), EVICTING),
        filled(TimeWindow(size), SECONDS),
    ):
        before = reduced(window)
        try:
            set_state(window, state)
        except (TypeError, ValueError):
            assert reduced(window) == before
            continue
        # Taken: the window works and round-trips as it now is.
        assert shown(copy.copy(window)) == shown(window)
        window.record(rec(False, 0.5, (0.5,), at=NOW))
        assert window.get_metric().failure_count >= 1


@pytest.mark.parametrize("window_type", [CountWindow, TimeWindow])
def test_a_window_with_hundreds_of_thresholds_round_trips(window_type: type[CountWindow]) -> None:
    window = window_type(10)
    for i in range(5):
        window.record(Record(success=i % 2 == 0, duration=0.5,
                             slow_at=thresholds(i * 50, 120)))
    copy = pickle.loads(pickle.dumps(window))
    assert copy.get_metric() == window.get_metric()
    assert list(copy.get_metric().slow_counts) == list(window.get_metric().slow_counts)
    assert len(window.get_metric().slow_counts) == 320


@pytest.mark.parametrize("window_type", [CountWindow, TimeWindow])
def test_a_state_with_hundreds_of_thresholds_keeps_recording(
    window_type: type[CountWindow],
) -> None:
    # The state is taken by a window that has seen no threshold: it must
    # then record, evict and count new thresholds as the original does.
    window = window_type(4)
    for i in range(4):
        window.record(rec(i % 2 == 0, 0.5, thresholds(i * 40, 100), at=NOW + i))
    restored = window_type(4)
    restored.__setstate__(window.__reduce__()[2])
    for i in range(4, 10):
        for target in (window, restored):
            target.record(rec(i % 3 == 0, 0.25, thresholds(i * 70, 130), at=NOW + i))
        assert restored.get_metric() == window.get_metric()
        assert list(restored.get_metric().slow_counts) == list(
            window.get_metric().slow_counts
        )
