"""Hostile input to every public constructor and method (SPEC.md section 12):
wrong types, out-of-range values, and objects whose __index__, __float__,
__eq__, __hash__, __bool__ or __iter__ raise or lie. Each one raises a
TypeError or ValueError (the exact one SPEC or the changelog names, or the
hostile object's own exception when its conversion raises, as float() and
operator.index() would), never a SystemError or a crash, and never leaves a
half-built or half-changed object behind; what SPEC calls valid is accepted.

The per-component files check SPEC's messages for the usual bad values
(test_windows.py, test_trippers.py, test_retries.py, test_permits.py,
test_trackers.py, test_values.py, test_breaker_misuse.py); this file is the
breadth: a model of what each numeric argument accepts, checked against a
fixed list of awkward values and against values hypothesis generates."""

from __future__ import annotations

import asyncio
import dataclasses
import decimal
import fractions
import logging
import math
import operator
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.metric import Metric, Record
from fluxgate.permits import All as PermitAll
from fluxgate.permits import RampUp, Random
from fluxgate.retries import Always, Backoff, Cooldown, Never
from fluxgate.signal import Signal
from fluxgate.trackers import All as TrackAll
from fluxgate.trackers import Custom, TypeOf
from fluxgate.trippers import (
    AvgLatency,
    CallContext,
    Closed,
    FailureRate,
    FailureStreak,
    HalfOpened,
    MinRequests,
    SlowRate,
)
from fluxgate.windows import CountWindow, TimeWindow

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


# ---- hostile values ----------------------------------------------------------------


class Hostile(Exception):
    """What a hostile object's special methods raise."""


class BadIndex:
    def __index__(self) -> int:
        raise Hostile("__index__")


class BadFloat:
    def __float__(self) -> float:
        raise Hostile("__float__")


class IndexNotInt:
    def __index__(self) -> Any:
        return "3"


class FloatNotFloat:
    def __float__(self) -> Any:
        return "3"


class IndexHuge:
    def __index__(self) -> int:
        return 2**200


class IndexFive:
    def __index__(self) -> int:
        return 5


class FloatNaN:
    def __float__(self) -> float:
        return math.nan


class FloatHalf:
    def __float__(self) -> float:
        return 0.5


class IntSub(int):
    pass


class FloatSub(float):
    pass


class BadBool:
    def __bool__(self) -> bool:
        raise Hostile("__bool__")


class BadEqHash:
    def __eq__(self, other: object) -> bool:
        raise Hostile("__eq__")

    def __hash__(self) -> int:
        raise Hostile("__hash__")


class BadEverything(BadEqHash):
    def __index__(self) -> int:
        raise Hostile("__index__")

    def __float__(self) -> float:
        raise Hostile("__float__")

    def __bool__(self) -> bool:
        raise Hostile("__bool__")

    def __iter__(self) -> Iterator[Any]:
        raise Hostile("__iter__")

    def __lt__(self, other: object) -> bool:
        raise Hostile("__lt__")

    __le__ = __gt__ = __ge__ = __lt__


class LyingMeta(type):
    """A metaclass whose isinstance and issubclass checks raise."""

    def __instancecheck__(cls, instance: object) -> bool:
        raise Hostile("__instancecheck__")

    def __subclasscheck__(cls, subclass: type) -> bool:
        raise Hostile("__subclasscheck__")


class LyingError(Exception, metaclass=LyingMeta):
    pass


class BadIter:
    def __iter__(self) -> Iterator[Any]:
        yield print
        raise Hostile("__iter__")


def _hostile_list() -> list[Any]:
    return [
        None, True, False, 0, 1, -1, 7, INT64_MAX, INT64_MAX + 1, INT64_MIN,
        INT64_MIN - 1, 2**200, -(2**200), 2**2000, -(2**2000),
        0.0, -0.0, 0.5, 1.0, 1.5, 5e-324, 1e308, math.inf, -math.inf, math.nan,
        -math.nan, "1", "", b"1", bytearray(b"1"), [], [1], (), (1.0,), {}, {1.0: 1},
        object(), 1 + 2j, decimal.Decimal("0.5"), decimal.Decimal("NaN"),
        decimal.Decimal("sNaN"), fractions.Fraction(1, 3), BadIndex(), BadFloat(),
        IndexNotInt(), FloatNotFloat(), IndexHuge(), IndexFive(), FloatNaN(), FloatHalf(),
        IntSub(3), FloatSub(0.5), BadBool(), BadEqHash(), BadEverything(), LyingError,
        LyingError(), ValueError, print, int, BadIter(),
    ]  # fmt: skip


HOSTILE = _hostile_list()


def _id(value: Any) -> str:
    text = repr(value) if isinstance(value, (int, float, str, bytes)) else type(value).__name__
    return text if len(text) <= 24 else text[:21] + "..."


def sweep(check: Callable[[Any], None], values: list[Any] = HOSTILE) -> None:
    """Run check on each value; report every value that failed, not just the
    first. (One test per value would multiply the items the leak check
    reruns.)"""
    failures = []
    for i, value in enumerate(values):
        try:
            check(value)
        except (Exception, pytest.fail.Exception) as error:  # noqa: BLE001 - reported below
            failures.append(f"[{i}] {_id(value)}: {type(error).__name__}: {error}")
    if failures:
        pytest.fail(f"{len(failures)} of {len(values)} values failed:\n" + "\n".join(failures))


def _hostile_strategy() -> st.SearchStrategy[Any]:
    # Decimals and fractions made here: st.decimals() and st.fractions() build
    # new strategies at every draw, which the leak check sees growing.
    decimals = st.one_of(
        st.floats().map(decimal.Decimal),
        st.sampled_from(["sNaN", "-NaN", "1e400", "-1e-400", "0.1"]).map(decimal.Decimal),
    )
    fractions_ = st.tuples(st.integers(), st.integers(1, 10**30)).map(
        lambda pair: fractions.Fraction(*pair)
    )
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=INT64_MAX - 2, max_value=2**80),
        st.integers(min_value=-(2**80), max_value=INT64_MIN + 2),
        st.floats(),
        decimals,
        fractions_,
        st.text(max_size=3),
        st.binary(max_size=3),
        st.lists(st.integers(), max_size=2),
        st.tuples(st.floats()),
        # By index: sampled_from would hash its elements, and some refuse.
        st.integers(0, len(HOSTILE) - 1).map(HOSTILE.__getitem__),
    )


# Built once: hypothesis caches every strategy built during a test.
HOSTILE_VALUES = _hostile_strategy()


# ---- models of what SPEC accepts -------------------------------------------------------


def as_real(value: Any) -> float:
    """What a real-valued argument becomes: the number CPython's float
    conversion gives (through __float__ or __index__), an integer beyond a
    double saturating to an infinity; raises what that conversion raises."""
    try:
        return math.ldexp(value, 0)  # the "d" conversion: PyFloat_AsDouble
    except OverflowError:
        return math.inf if operator.index(value) > 0 else -math.inf


def tp_names(value: Any) -> set[str]:
    """The type names the C code may put in its messages (tp_name): a class
    written in Python has its bare name there, a static type its dotted
    name, and a type built from a C spec (such as decimal.Decimal from 3.13
    on) its dotted name too, which Python does not expose; so a heap type
    may show either."""
    cls = type(value)
    dotted = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "builtins":
        return {cls.__name__}
    if cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE
        return {cls.__name__, dotted}
    return {dotted}


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except Exception:  # noqa: BLE001 - an unhashable or hostile key
        return False
    return True


def as_count(value: Any) -> int:
    """What an integer argument becomes; bool is not a count."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError
    return operator.index(value)


def as_trip_count(value: Any) -> int:
    """What a tripper's count becomes: any real number, as in 0.9.4 (bool
    included), a fractional one rounded up to the first integer counter that
    reaches it; NaN and infinities become numbers the range check handles."""
    if hasattr(type(value), "__index__"):
        return operator.index(value)
    real = as_real(value)
    if math.isnan(real):
        return 0
    if math.isinf(real):
        return 2**64 if real > 0 else 0
    return math.ceil(real)


RAMP = "Initial must be > 0.0 and <= final, and final must be <= 1.0"
JITTER = "Jitter ratio must be between 0.0 and 1.0"

# name: (build from the value, attribute holding it or None, valid range,
#        ValueError message)
REAL_PARAMETERS: dict[str, tuple[Callable[[Any], Any], str | None, Callable[[float], bool], str]] = {
    "FailureRate.ratio": (FailureRate, "ratio", lambda x: 0 < x <= 1, "Ratio must be between 0 and 1"),
    "AvgLatency.threshold": (AvgLatency, "threshold", lambda x: x > 0, "Threshold must be greater than 0"),
    "SlowRate.ratio": (lambda v: SlowRate(v, threshold=1.0), "ratio", lambda x: 0 < x <= 1,
                       "Ratio must be between 0 and 1"),
    "SlowRate.threshold": (lambda v: SlowRate(0.5, threshold=v), "threshold", lambda x: x > 0,
                           "Threshold must be greater than 0"),
    "Cooldown.duration": (Cooldown, "duration", lambda x: x > 0, "Duration must be greater than zero"),
    "Cooldown.jitter_ratio": (lambda v: Cooldown(1.0, v), "jitter_ratio", lambda x: 0 <= x < 1, JITTER),
    "Backoff.initial": (lambda v: Backoff(v, 2.0, math.inf), "initial", lambda x: x > 0,
                        "Initial duration must be greater than zero"),
    "Backoff.multiplier": (lambda v: Backoff(1.0, v), "multiplier", lambda x: x > 1,
                           "Multiplier must be greater than 1.0"),
    "Backoff.max_duration": (lambda v: Backoff(1.0, 2.0, v), "max_duration", lambda x: x >= 1,
                             "Max duration must be >= initial duration"),
    "Backoff.jitter_ratio": (lambda v: Backoff(1.0, 2.0, 300.0, v), "jitter_ratio",
                             lambda x: 0 <= x < 1, JITTER),
    "Random.ratio": (Random, "ratio", lambda x: 0 <= x <= 1, "Ratio must be between 0.0 and 1.0"),
    "RampUp.initial": (lambda v: RampUp(v, 1.0, 60.0), "initial", lambda x: 0 < x <= 1, RAMP),
    "RampUp.final": (lambda v: RampUp(0.25, v, 60.0), "final", lambda x: 0.25 <= x <= 1, RAMP),
    "RampUp.duration": (lambda v: RampUp(0.25, 1.0, v), "duration", lambda x: x > 0,
                        "Duration must be greater than zero"),
}  # fmt: skip


def check_real_parameter(name: str, value: Any) -> None:
    build, attribute, valid, message = REAL_PARAMETERS[name]
    argument = attribute or name
    try:
        expected = as_real(value)
    except Exception as error:  # noqa: BLE001 - the error the library must give too
        with pytest.raises(type(error)) as caught:
            build(value)
        if type(error) is TypeError and not (
            hasattr(type(value), "__float__") or hasattr(type(value), "__index__")
        ):
            assert str(caught.value).startswith(f"{argument} must be a real number, not ")
        return
    if math.isnan(expected) or not valid(expected):
        with pytest.raises(ValueError) as caught:
            build(value)
        assert str(caught.value) == message
        return
    component = build(value)
    if attribute is not None:
        got = getattr(component, attribute)
        assert type(got) is float
        assert got == expected


@pytest.mark.parametrize("name", REAL_PARAMETERS)
def test_real_parameters(name: str) -> None:
    def check(value: Any) -> None:
        check_real_parameter(name, value)

    sweep(check)


@settings(max_examples=60)
@given(name=st.sampled_from(sorted(REAL_PARAMETERS)), value=HOSTILE_VALUES)
def test_real_parameters_generated(name: str, value: Any) -> None:
    check_real_parameter(name, value)


COUNT_PARAMETERS: dict[
    str, tuple[Callable[[Any], Any], str, Callable[[Any], int], int, int | None, str]
] = {
    # name: (build, attribute, model of the conversion, least valid,
    #        most valid or None, ValueError message)
    "CountWindow.size": (CountWindow, "size", as_count, 1, INT64_MAX,
                         "size must be greater than zero"),
    "TimeWindow.size": (TimeWindow, "size", as_count, 1, INT64_MAX,
                        "size must be greater than zero"),
    "MinRequests.count": (MinRequests, "count", as_trip_count, 1, None,
                          "Count must be greater than zero"),
    "FailureStreak.count": (FailureStreak, "count", as_trip_count, 1, None,
                            "Count must be greater than zero"),
}  # fmt: skip


def check_count_parameter(name: str, value: Any) -> None:
    build, attribute, convert, least, most, message = COUNT_PARAMETERS[name]
    try:
        expected = convert(value)
    except Exception as error:  # noqa: BLE001 - the error the library must give too
        with pytest.raises(type(error)) as caught:
            build(value)
        if type(error) is TypeError and not hasattr(type(value), "__index__"):
            kind = "an integer" if convert is as_count else "a real number"
            if convert is as_count or not hasattr(type(value), "__float__"):
                assert str(caught.value) in {
                    f"{attribute} must be {kind}, not {name}" for name in tp_names(value)
                }
        return
    if most is not None and not INT64_MIN <= expected <= INT64_MAX:
        # CHANGELOG: a window size beyond 64 bits, either way.
        with pytest.raises(ValueError, match=f"^{attribute} is out of range$"):
            build(value)
        return
    if expected < least:
        with pytest.raises(ValueError) as caught:
            build(value)
        assert str(caught.value) == message
        return
    if name == "TimeWindow.size" and expected > 100_000:
        # A TimeWindow allocates its buckets up front: one too large to
        # allocate at all is a MemoryError; sizes in between are not tried.
        if expected > sys.maxsize // 64:
            with pytest.raises(MemoryError):
                build(value)
        return
    component = build(value)
    # CHANGELOG: counts beyond 64 bits are accepted and can never be reached.
    assert getattr(component, attribute) == min(expected, INT64_MAX)


@pytest.mark.parametrize("name", COUNT_PARAMETERS)
def test_count_parameters(name: str) -> None:
    def check(value: Any) -> None:
        check_count_parameter(name, value)

    sweep(check)


@settings(max_examples=40)
@given(name=st.sampled_from(sorted(COUNT_PARAMETERS)), value=HOSTILE_VALUES)
def test_count_parameters_generated(name: str, value: Any) -> None:
    check_count_parameter(name, value)


def test_max_half_open_calls() -> None:
    def check(value: Any) -> None:
        # CHANGELOG: an int (a subclass too, never bool) of at least 1.
        if isinstance(value, bool) or not isinstance(value, int):
            with pytest.raises(TypeError) as caught:
                AsyncCircuitBreaker(max_half_open_calls=value)
            assert str(caught.value) == (
                f"max_half_open_calls must be an integer, not {type(value).__name__}"
            )
        elif value < 1:
            with pytest.raises(ValueError, match="^max_half_open_calls must be at least 1$"):
                AsyncCircuitBreaker(max_half_open_calls=value)
        else:
            assert AsyncCircuitBreaker(max_half_open_calls=value).info().state == "closed"

    sweep(check)


def test_typeof_arguments() -> None:
    def check(value: Any) -> None:
        # SPEC 4: exception classes only (a metaclass that lies included: the
        # class is taken, and its checks raise only when an exception is tested).
        if isinstance(value, type) and issubclass(value, BaseException):
            tracker = TypeOf(ValueError, value)
            assert tracker(ValueError()) is True
            return
        with pytest.raises(TypeError, match=r"^TypeOf\(\) argument 2 must be an exception class, not "):
            TypeOf(ValueError, value)

    sweep(check)


def test_typeof_with_a_lying_metaclass_raises_its_error_when_used() -> None:
    tracker = TypeOf(LyingError)
    with pytest.raises(Hostile):
        tracker(KeyError())
    cb = CircuitBreaker(tracker=tracker, tripper=MinRequests(10))
    original = KeyError("x")

    def raiser() -> None:
        raise original

    with pytest.raises(Hostile) as caught:
        cb.call(raiser)
    assert caught.value.__context__ is original
    assert cb.info().metrics == Metric.empty()
    assert cb.call(lambda: 1) == 1


# ---- component calls ------------------------------------------------------------------


# ArithmeticError: a user's own numbers may refuse arithmetic (a signalling
# Decimal NaN raises decimal.InvalidOperation); that error passes through.
SAFE = (TypeError, ValueError, AttributeError, ArithmeticError, Hostile)


def _call_outcome(func: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "returned", func()
    except SAFE as error:
        return "raised", error


CONTEXT = CallContext(
    metric=Metric(total_count=4, total_duration=1.0, failure_count=2, slow_counts={1.0: 1}),
    state="closed",
    consecutive_failures=2,
)

PREDICATES: dict[str, Callable[[Any], Any]] = {
    "TrackAll": lambda v: TrackAll()(v),
    "TypeOf": lambda v: TypeOf(ValueError)(v),
    "Custom": lambda v: Custom(lambda e: e)(v),
    "~TypeOf": lambda v: (~TypeOf(ValueError))(v),
    "TypeOf|Custom": lambda v: (TypeOf(KeyError) | Custom(lambda e: e))(v),
    "TypeOf&Custom": lambda v: (TypeOf(Exception) & Custom(lambda e: e))(v),
    "Closed": lambda v: Closed()(v),
    "HalfOpened": lambda v: HalfOpened()(v),
    "MinRequests": lambda v: MinRequests(2)(v),
    "FailureRate": lambda v: FailureRate(0.5)(v),
    "AvgLatency": lambda v: AvgLatency(0.25)(v),
    "SlowRate": lambda v: SlowRate(0.25, threshold=1.0)(v),
    "FailureStreak": lambda v: FailureStreak(2)(v),
    "MinRequests&FailureRate": lambda v: (MinRequests(2) & FailureRate(0.5))(v),
    "Closed|HalfOpened": lambda v: (Closed() | HalfOpened())(v),
    "Always.changed_at": lambda v: Always()(v, 0),
    "Never.reopens": lambda v: Never()(time.time(), v),
    "Cooldown.changed_at": lambda v: Cooldown(1.0)(v, 0),
    "Cooldown.reopens": lambda v: Cooldown(1.0)(time.time(), v),
    "Backoff.changed_at": lambda v: Backoff(1.0)(v, 3),
    "Backoff.reopens": lambda v: Backoff(1.0)(time.time() - 10, v),
    "PermitAll": lambda v: PermitAll()(v),
    "Random": lambda v: Random(0.5)(v),
    "RampUp": lambda v: RampUp(0.25, 1.0, 60.0)(v),
}

# Values the predicates take for what they are given: any object is an
# exception argument to a tracker, and a context's fields are read as
# attributes (a plain object lacks them).
CONTEXT_LIKE = [
    CONTEXT,
    SimpleNamespace(metric=CONTEXT.metric, state=BadEqHash(), consecutive_failures=2),
    SimpleNamespace(metric=CONTEXT.metric, state="closed", consecutive_failures=BadEverything()),
    SimpleNamespace(metric=42, state="closed", consecutive_failures=2),
    SimpleNamespace(metric=None, state=None, consecutive_failures=None),
]


@pytest.mark.parametrize("name", PREDICATES)
def test_predicates_answer_a_bool_or_raise_cleanly(name: str) -> None:
    def check(value: Any) -> None:
        kind, result = _call_outcome(lambda: PREDICATES[name](value))
        if kind == "returned":
            assert result is True or result is False

    sweep(check, HOSTILE + CONTEXT_LIKE)


def test_composite_operands() -> None:
    def check(value: Any) -> None:
        # DESIGN D4: any callable may be an operand; anything else is a TypeError.
        for left in (TrackAll(), MinRequests(1)):
            for build in (
                lambda: left & value, lambda: value & left,
                lambda: left | value, lambda: value | left,
            ):  # fmt: skip
                if callable(value):
                    assert callable(build())
                else:
                    with pytest.raises(TypeError):
                        build()

    sweep(check)


def test_a_tripper_tree_with_a_hostile_leaf_is_iterable() -> None:
    def check(value: Any) -> None:
        if not callable(value):
            return
        tree = (MinRequests(1) & value) | SlowRate(0.5, threshold=2.0)
        leaves = list(tree)
        assert isinstance(leaves[0], MinRequests)
        assert isinstance(leaves[-1], SlowRate)

    sweep(check)


RECORD = {"success": True, "duration": 0.5, "slow_at": (1.0,), "timestamp": 1_700_000_123.5}
RECORD_VALUES = HOSTILE + [
    [BadFloat()], [math.nan], [BadEqHash()], [2**2000], iter([1.0]),
    (x for x in [1.0, BadFloat()]), [float(i) for i in range(70)], BadIter(),
]  # fmt: skip


def assert_recorded(window: Any, before: Metric) -> None:
    """An accepted record is in the window: a CountWindow of three adds it;
    a TimeWindow adds it to its bucket, which it first empties when that
    bucket held another second."""
    after = window.get_metric()
    if isinstance(window, CountWindow):
        assert after.total_count == before.total_count + 1
    else:
        assert 1 <= after.total_count <= before.total_count + 1


@pytest.mark.parametrize("field", sorted(RECORD))
@pytest.mark.parametrize("window_type", [CountWindow, TimeWindow])
def test_a_refused_record_leaves_the_window_unchanged(window_type: Any, field: str) -> None:
    for value in RECORD_VALUES:
        window = window_type(3)
        window.record(Record(success=False, duration=0.25))
        before = window.get_metric()
        fields = dict(RECORD, **{field: value})
        kind, _ = _call_outcome(lambda: window.record(SimpleNamespace(**fields)))
        if kind == "raised":
            assert window.get_metric() == before, (field, value)
        else:
            assert_recorded(window, before)


@settings(max_examples=60)
@given(
    window_type=st.sampled_from([CountWindow, TimeWindow]),
    fields=st.fixed_dictionaries(
        {},
        optional={
            "success": HOSTILE_VALUES,
            "duration": HOSTILE_VALUES,
            "slow_at": st.one_of(HOSTILE_VALUES, st.lists(HOSTILE_VALUES, max_size=3)),
            "timestamp": HOSTILE_VALUES,
        },
    ),
)
def test_a_refused_record_leaves_the_window_unchanged_generated(
    window_type: Any, fields: dict[str, Any]
) -> None:
    window = window_type(3)
    window.record(Record(success=True, duration=0.125))
    window.record(Record(success=False))
    before = window.get_metric()
    kind, _ = _call_outcome(lambda: window.record(SimpleNamespace(**{**RECORD, **fields})))
    if kind == "raised":
        assert window.get_metric() == before
    else:
        assert_recorded(window, before)
    window.reset()
    assert window.get_metric() == Metric.empty()


def test_window_methods_take_no_extra_arguments() -> None:
    def check(value: Any) -> None:
        for window in (CountWindow(2), TimeWindow(2)):
            for call in (lambda: window.get_metric(value), lambda: window.reset(value),
                         lambda: window.record(Record(success=True), value)):  # fmt: skip
                with pytest.raises(TypeError):
                    call()
            assert window.get_metric() == Metric.empty()

    sweep(check)


# ---- value types --------------------------------------------------------------------


METRIC_FIELDS = {"total_count": 1, "total_duration": 0.5, "failure_count": 0, "slow_counts": {}}


def check_metric_field(field: str, value: Any) -> None:
    fields = dict(METRIC_FIELDS, **{field: value})
    if field in ("total_count", "failure_count"):
        try:
            count = as_count(value)
        except Exception as error:  # noqa: BLE001 - the error the library must give too
            with pytest.raises(type(error)):
                Metric(**fields)
            return
        if not INT64_MIN <= count <= INT64_MAX:
            with pytest.raises(ValueError, match=f"^{field} is out of range$"):
                Metric(**fields)
            return
        assert getattr(Metric(**fields), field) == count
    elif field == "total_duration":
        try:
            duration = as_real(value)
        except Exception as error:  # noqa: BLE001 - the error the library must give too
            with pytest.raises(type(error)):
                Metric(**fields)
            return
        got = Metric(**fields).total_duration
        assert got == duration or (math.isnan(got) and math.isnan(duration))
    elif not isinstance(value, Mapping):
        with pytest.raises(TypeError, match=f"^slow_counts must be a mapping, not "):
            Metric(**fields)
    else:
        kind, metric = _call_outcome(lambda: Metric(**fields))
        if kind == "returned":
            # Arithmetic on what was accepted raises cleanly or works.
            for operation in (lambda: metric + metric, lambda: metric - metric,
                              lambda: metric.slow_rate(1.0), lambda: repr(metric)):  # fmt: skip
                _call_outcome(operation)


@pytest.mark.parametrize("field", METRIC_FIELDS)
def test_metric_fields(field: str) -> None:
    def check(value: Any) -> None:
        check_metric_field(field, value)

    sweep(check)


@settings(max_examples=40)
@given(
    field=st.sampled_from(sorted(METRIC_FIELDS)),
    value=st.one_of(
        HOSTILE_VALUES,
        st.dictionaries(HOSTILE_VALUES.filter(_is_hashable), HOSTILE_VALUES, max_size=3),
    ),
)
def test_metric_fields_generated(field: str, value: Any) -> None:
    check_metric_field(field, value)


class BrokenMapping(Mapping[Any, Any]):
    def __init__(self, broken: str) -> None:
        self.broken = broken
        self.data = {1.0: 1}

    def __getitem__(self, key: Any) -> Any:
        if self.broken == "getitem":
            raise Hostile("__getitem__")
        return self.data[key]

    def __iter__(self) -> Iterator[Any]:
        if self.broken == "iter":
            raise Hostile("__iter__")
        return iter(self.data)

    def __len__(self) -> int:
        return 10**6 if self.broken == "len" else len(self.data)

    def keys(self) -> Any:
        if self.broken == "keys":
            raise Hostile("keys")
        return super().keys()


@pytest.mark.parametrize("broken", ["getitem", "iter", "len", "keys"])
def test_metric_with_a_broken_mapping(broken: str) -> None:
    fields = dict(METRIC_FIELDS, slow_counts=BrokenMapping(broken))
    kind, metric = _call_outcome(lambda: Metric(**fields))
    if kind == "returned":
        assert metric.slow_counts == {1.0: 1}


def test_metric_arithmetic_at_the_edges_of_64_bits() -> None:
    top = Metric(total_count=INT64_MAX, total_duration=0.5, failure_count=INT64_MIN, slow_counts={})
    with pytest.raises(OverflowError, match="^total_count is out of range$"):
        top + top
    with pytest.raises(OverflowError, match="^failure_count is out of range$"):
        Metric.empty() - top
    assert top - top == Metric(
        total_count=0, total_duration=0.0, failure_count=0, slow_counts={}
    )


def test_metric_operations_with_hostile_operands() -> None:
    def check(value: Any) -> None:
        metric = Metric(**METRIC_FIELDS)
        for operation in (lambda: metric + value, lambda: value + metric,
                          lambda: metric - value, lambda: value - metric):  # fmt: skip
            with pytest.raises((TypeError, Hostile)):
                operation()
        kind, rate = _call_outcome(lambda: metric.slow_rate(value))
        if kind == "returned":
            assert rate == 0.0  # a threshold never seen
        kind, _ = _call_outcome(lambda: Metric.from_record(value))
        assert kind == "raised"
        kind, equal = _call_outcome(lambda: metric == value)
        if kind == "returned":
            assert equal is False
        assert metric == Metric(**METRIC_FIELDS)

    sweep(check)


def test_dataclass_values_take_what_they_are_given() -> None:
    def check(value: Any) -> None:
        # SPEC 2: plain frozen dataclasses apart from Metric; they do not
        # validate, and hash only what they hold.
        for build, field in (
            (lambda: Record(success=value), "success"),
            (lambda: Record(success=True, duration=value, slow_at=value), "duration"),
            (lambda: Signal(value, "open", value), "timestamp"),
            (lambda: CallContext(metric=value, state=value, consecutive_failures=value), "state"),
            (lambda: CircuitBreakerInfo(value, value, value, value), "metrics"),
        ):
            built = build()
            _call_outcome(lambda: repr(built))
            _call_outcome(lambda: hash(built))
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(built, field, 1.0)

    sweep(check)


# ---- breakers --------------------------------------------------------------------------


BREAKER_COMPONENTS = ["tracker", "tripper", "retry", "permit"]


def _is_window(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("record", "get_metric", "reset"))


@pytest.mark.parametrize("breaker_type", [CircuitBreaker, AsyncCircuitBreaker])
def test_breaker_components(breaker_type: Any) -> None:
    def check(value: Any) -> None:
        for name in BREAKER_COMPONENTS:
            if value is None or callable(value):
                try:
                    cb = breaker_type(**{name: value})
                except Hostile:
                    assert name == "tripper"  # its leaves are walked at construction
                    continue
                assert cb.info().state == "closed"
            else:
                with pytest.raises(TypeError) as caught:
                    breaker_type(**{name: value})
                assert str(caught.value) in {
                    f"{name} must be callable, not {type_name}" for type_name in tp_names(value)
                }
        if value is None or _is_window(value):
            breaker_type(window=value)
        else:
            with pytest.raises(TypeError, match="^window must be a Window"):
                breaker_type(window=value)

    sweep(check)


@pytest.mark.parametrize("breaker_type", [CircuitBreaker, AsyncCircuitBreaker])
def test_breaker_listeners_argument(breaker_type: Any) -> None:
    def check(value: Any) -> None:
        try:
            items = list(value)
        except Exception:  # noqa: BLE001 - not an iterable, or a hostile one
            with pytest.raises((TypeError, Hostile)) as caught:
                breaker_type(listeners=value)
            if caught.type is TypeError:
                assert str(caught.value) in {
                    f"listeners must be an iterable of callables, not {name}"
                    for name in tp_names(value)
                }
            return
        bad = [i for i, item in enumerate(items) if not callable(item)]
        if bad:
            with pytest.raises(TypeError) as caught:
                breaker_type(listeners=value)
            assert str(caught.value).startswith(f"listeners[{bad[0]}] must be callable, not ")
        else:
            breaker_type(listeners=value)
        # Whatever else it holds, a listener list may not be hostile either.
        with pytest.raises((TypeError, Hostile)):
            breaker_type(listeners=[print, value] if not callable(value) else BadIter())

    sweep(check)


def test_sync_breaker_calls_with_hostile_arguments() -> None:
    def check(value: Any) -> None:
        cb = CircuitBreaker(window=CountWindow(10), tripper=MinRequests(100))
        # DESIGN D9: calling a non-callable is a failure of the protected call.
        if not callable(value):
            with pytest.raises(TypeError):
                cb.call(value)
            if value is not None:  # cb(None) is cb(): a decorator
                with pytest.raises(TypeError, match="^func must be callable"):
                    cb(value)
                with pytest.raises(TypeError, match="^fallback must be callable"):
                    cb(print, fallback=value)
            assert cb.call_with_fallback(value, type) is TypeError
            assert cb.info().metrics.failure_count == 2
        # An argument passed on to the protected function is just passed on.
        assert cb.call(lambda x: x, value) is value
        assert cb.call(lambda **kw: kw["x"], x=value) is value
        assert cb.call_with_fallback(lambda x: x, print, value) is value

    sweep(check)


def test_async_breaker_calls_with_hostile_arguments() -> None:
    def check(value: Any) -> None:
        cb = AsyncCircuitBreaker(window=CountWindow(10), tripper=MinRequests(100))

        async def identity(x: Any) -> Any:
            return x

        async def scenario() -> None:
            if not callable(value):
                with pytest.raises(TypeError):
                    await cb.call(value)
                if value is not None:  # cb(None) is cb(): a decorator
                    with pytest.raises(TypeError, match="^func must be callable"):
                        cb(value)
                    with pytest.raises(TypeError, match="^fallback must be callable"):
                        cb(identity, fallback=value)
            else:
                # Each callable here returns something that is not awaitable:
                # misuse (DESIGN D9), nothing recorded.
                with pytest.raises(TypeError, match="not an awaitable"):
                    await cb.call(value)
            assert cb.info().metrics.total_count == (0 if callable(value) else 1)
            assert await cb.call(identity, value) is value
            assert await cb.call_with_fallback(identity, print, value) is value

        asyncio.run(scenario())

    sweep(check)


class BrokenAttributes:
    """A callable whose attribute lookups (all but __call__) raise."""

    def __call__(self) -> int:
        return 1

    def __getattribute__(self, name: str) -> Any:
        if name in ("__call__", "__class__"):
            return object.__getattribute__(self, name)
        raise Hostile(name)


@pytest.mark.parametrize("breaker_type", [CircuitBreaker, AsyncCircuitBreaker])
def test_decorating_a_callable_whose_attributes_raise(breaker_type: Any) -> None:
    # As functools.wraps: an AttributeError means "absent", anything else propagates.
    with pytest.raises(Hostile):
        breaker_type()(BrokenAttributes())


def test_commands_and_info_take_no_arguments() -> None:
    def check(value: Any) -> None:
        cb = CircuitBreaker()
        acb = AsyncCircuitBreaker()
        for breaker in (cb, acb):
            for name in ("reset", "disable", "metrics_only", "force_open", "info"):
                with pytest.raises(TypeError):
                    getattr(breaker, name)(value)
        assert cb.info().state == acb.info().state == "closed"

    sweep(check)


# ---- shipped listeners -------------------------------------------------------------------


def _signal_all_states(cb: CircuitBreaker) -> None:
    cb.force_open()
    cb.disable()
    cb.metrics_only()
    cb.reset()


def test_log_listener_with_hostile_arguments() -> None:
    """The shipped listeners validate as 0.9.4 did (barely); whatever they
    accept, a breaker using them keeps working and logs their failures."""
    def check(value: Any) -> None:
        from fluxgate.listeners.log import LogListener

        logger = logging.getLogger("fluxgate.tests.hostile")
        for build in (
            lambda: LogListener(value, logger),
            lambda: LogListener("payments", value),
            lambda: LogListener("payments", logger, value),
        ):
            kind, listener = _call_outcome(build)
            if kind == "raised":
                continue
            _call_outcome(lambda: repr(listener))
            cb = CircuitBreaker(listeners=[listener])
            with FluxgateLoggerSilenced():
                _signal_all_states(cb)
            assert cb.info().state == "closed"

    sweep(check)


def test_prometheus_listener_with_hostile_arguments() -> None:
    def check(value: Any) -> None:
        prometheus_client = pytest.importorskip("prometheus_client")
        from fluxgate.listeners.prometheus import PrometheusListener

        registry = prometheus_client.CollectorRegistry()
        for build in (lambda: PrometheusListener(value, registry), lambda: PrometheusListener("p", value)):
            kind, listener = _call_outcome(build)
            if kind == "raised":
                continue
            cb = CircuitBreaker(listeners=[listener])
            with FluxgateLoggerSilenced():
                _signal_all_states(cb)
            assert cb.info().state == "closed"
            _call_outcome(listener.close)

    sweep(check)


class FakeClient:
    """Stands in for httpx.Client and httpx.AsyncClient (a real one builds an
    SSL context, far too slow to make hundreds of)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.closed = False

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def test_slack_listeners_with_hostile_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    httpx = pytest.importorskip("httpx")
    from fluxgate.listeners.slack import AsyncSlackListener, SlackListener

    monkeypatch.setattr(httpx, "Client", FakeClient)
    monkeypatch.setattr(httpx, "AsyncClient", FakeClient)

    def check(value: Any) -> None:
        for position in range(3):
            arguments = ["payments", "#alerts", "xoxb-token"]
            arguments[position] = value
            for listener_type in (SlackListener, AsyncSlackListener):
                kind, listener = _call_outcome(lambda: listener_type(*arguments))
                if kind == "returned":
                    # SPEC 10: the token lives only in the client.
                    assert "xoxb-token" not in repr(listener)
                    assert "xoxb-token" not in repr(vars(listener))

    sweep(check)


class FluxgateLoggerSilenced:
    """Silence the fluxgate logger for a block (listener failures are logged)."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("fluxgate")
        self.disabled = self.logger.disabled
        self.logger.disabled = True

    def __exit__(self, *exc_info: object) -> None:
        self.logger.disabled = self.disabled


def test_the_fixed_values_keep_their_awkward_members() -> None:
    """The sweeps above pass vacuously if the list loses what makes it hostile."""
    kinds = {type(v) for v in HOSTILE}
    assert {BadIndex, BadFloat, BadBool, BadEqHash, LyingMeta, float, int, str, bytes} <= kinds
    assert any(isinstance(v, float) and math.isnan(v) for v in HOSTILE)
    assert any(isinstance(v, int) and v > sys.maxsize for v in HOSTILE)
