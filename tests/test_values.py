"""The value types (SPEC sections 1-2): State, Record, Metric, CallContext,
Signal, CircuitBreakerInfo, and CallNotPermittedError."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import sys
import time
import typing
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

import fluxgate
import fluxgate.errors
import fluxgate.metric
import fluxgate.signal
import fluxgate.state
from fluxgate._values import CallContext, CircuitBreakerInfo
from fluxgate.errors import CallNotPermittedError
from fluxgate.metric import Metric, Record
from fluxgate.signal import Signal
from fluxgate.state import State

FROZEN_AT = "2024-01-01 00:00:00"
FROZEN_TS = 1704067200.0

M = Metric(total_count=3, total_duration=0.6, failure_count=1, slow_counts={1.0: 2})
M_REPR = "Metric(total_count=3, total_duration=0.6, failure_count=1, slow_counts={1.0: 2})"
M_DICT = {"total_count": 3, "total_duration": 0.6, "failure_count": 1, "slow_counts": {1.0: 2}}


def metric(count: int = 0, duration: float = 0.0, failures: int = 0,
           slow: Mapping[float, int] | None = None) -> Metric:
    return Metric(total_count=count, total_duration=duration, failure_count=failures,
                  slow_counts=slow or {})


def dict_of(m: Metric) -> dict[float, int]:
    """The metric's slow counts, which are a dict (typed as a Mapping)."""
    assert type(m.slow_counts) is dict
    return m.slow_counts


def make_record() -> Record:
    with freeze_time(FROZEN_AT):
        return Record(success=False, duration=0.25, slow_at=(0.1,))


# One sample of each type: (factory, field names, repr, asdict, public module).
SAMPLES: dict[str, tuple[Callable[[], Any], tuple[str, ...], str, dict[str, Any], str]] = {
    "Record": (
        make_record,
        ("success", "duration", "slow_at", "timestamp"),
        f"Record(success=False, duration=0.25, slow_at=(0.1,), timestamp={FROZEN_TS!r})",
        {"success": False, "duration": 0.25, "slow_at": (0.1,), "timestamp": FROZEN_TS},
        "fluxgate.metric",
    ),
    "Metric": (
        lambda: metric(3, 0.6, 1, {1.0: 2}),
        ("total_count", "total_duration", "failure_count", "slow_counts"),
        M_REPR,
        M_DICT,
        "fluxgate.metric",
    ),
    "CallContext": (
        lambda: CallContext(metric=metric(3, 0.6, 1, {1.0: 2}), state="half_open",
                            consecutive_failures=2),
        ("metric", "state", "consecutive_failures"),
        f"CallContext(metric={M_REPR}, state='half_open', consecutive_failures=2)",
        {"metric": M_DICT, "state": "half_open", "consecutive_failures": 2},
        "fluxgate.trippers",
    ),
    "Signal": (
        lambda: Signal("closed", "open", 1700000000.5),
        ("old_state", "new_state", "timestamp"),
        "Signal(old_state='closed', new_state='open', timestamp=1700000000.5)",
        {"old_state": "closed", "new_state": "open", "timestamp": 1700000000.5},
        "fluxgate.signal",
    ),
    "CircuitBreakerInfo": (
        lambda: CircuitBreakerInfo("open", 1700000000.5, 1, metric(3, 0.6, 1, {1.0: 2})),
        ("state", "changed_at", "reopens", "metrics"),
        f"CircuitBreakerInfo(state='open', changed_at=1700000000.5, reopens=1, metrics={M_REPR})",
        {"state": "open", "changed_at": 1700000000.5, "reopens": 1, "metrics": M_DICT},
        "fluxgate.circuitbreaker",
    ),
}
NAMES = list(SAMPLES)
HASHABLE = ["Record", "Signal"]
UNHASHABLE = ["Metric", "CallContext", "CircuitBreakerInfo"]
# A different value for the first field of each sample.
OTHER_FIRST_VALUE = {"Record": True, "Metric": 4, "CallContext": metric(),
                     "Signal": "half_open", "CircuitBreakerInfo": "closed"}


def sample(name: str) -> Any:
    return SAMPLES[name][0]()


# ---- State ------------------------------------------------------------------

def test_state_is_a_literal_of_the_six_states_in_order() -> None:
    assert typing.get_origin(State) is typing.Literal
    assert typing.get_args(State) == (
        "closed", "open", "half_open", "metrics_only", "disabled", "forced_open",
    )
    assert fluxgate.State is State


# ---- the dataclass protocol, for all five ---------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_public_module_and_name(name: str) -> None:
    cls = type(sample(name))
    assert cls.__name__ == cls.__qualname__ == name
    assert cls.__module__ == SAMPLES[name][4]


def test_classes_are_importable_from_their_modules() -> None:
    assert fluxgate.metric.Record is Record
    assert fluxgate.metric.Metric is Metric
    assert fluxgate.signal.Signal is Signal


@pytest.mark.parametrize("name", NAMES)
def test_is_a_dataclass_with_fields_in_order(name: str) -> None:
    obj = sample(name)
    cls = type(obj)
    assert dataclasses.is_dataclass(obj)
    assert dataclasses.is_dataclass(cls)
    assert tuple(f.name for f in dataclasses.fields(obj)) == SAMPLES[name][1]
    assert tuple(f.name for f in dataclasses.fields(cls)) == SAMPLES[name][1]


@pytest.mark.parametrize("name", NAMES)
def test_repr_is_dataclass_style(name: str) -> None:
    assert repr(sample(name)) == SAMPLES[name][2]


def test_metric_repr_exactly() -> None:
    assert repr(M) == M_REPR


@pytest.mark.parametrize("name", NAMES)
def test_asdict_gives_plain_nested_dicts(name: str) -> None:
    as_dict = dataclasses.asdict(sample(name))
    assert as_dict == SAMPLES[name][3]
    for value in as_dict.values():
        assert not dataclasses.is_dataclass(value)


def test_asdict_of_info_holding_a_metric() -> None:
    info = sample("CircuitBreakerInfo")
    as_dict = dataclasses.asdict(info)
    assert type(as_dict["metrics"]) is dict
    assert type(as_dict["metrics"]["slow_counts"]) is dict
    assert as_dict["metrics"]["slow_counts"] is not info.metrics.slow_counts


def test_astuple() -> None:
    assert dataclasses.astuple(M) == (3, 0.6, 1, {1.0: 2})
    assert dataclasses.astuple(sample("Signal")) == ("closed", "open", 1700000000.5)


@pytest.mark.parametrize("name", NAMES)
def test_replace_changes_one_field(name: str) -> None:
    obj = sample(name)
    first, *rest = SAMPLES[name][1]
    with freeze_time(FROZEN_AT):
        changed = dataclasses.replace(obj, **{first: OTHER_FIRST_VALUE[name]})
    assert type(changed) is type(obj)
    assert getattr(changed, first) == OTHER_FIRST_VALUE[name]
    for field_name in rest:
        assert getattr(changed, field_name) == getattr(obj, field_name)
    assert getattr(obj, first) != OTHER_FIRST_VALUE[name]
    assert changed != obj


def test_replace_validates_metric_fields() -> None:
    with pytest.raises(TypeError, match="total_count"):
        dataclasses.replace(M, total_count="4")


@pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in 3.13")
@pytest.mark.parametrize("name", NAMES)
def test_copy_replace(name: str) -> None:
    obj = sample(name)
    first = SAMPLES[name][1][0]
    with freeze_time(FROZEN_AT):
        changed = copy.replace(obj, **{first: OTHER_FIRST_VALUE[name]})  # type: ignore[attr-defined]
    assert getattr(changed, first) == OTHER_FIRST_VALUE[name]


@pytest.mark.parametrize("name", NAMES)
def test_value_equality(name: str) -> None:
    a, b = sample(name), sample(name)
    assert a is not b
    assert a == b
    assert not a != b
    assert a != tuple(SAMPLES[name][3].values())
    assert a != SAMPLES[name][3]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("field_index", [0, -1])
def test_assignment_raises_frozen_instance_error(name: str, field_index: int) -> None:
    obj = sample(name)
    field_name = SAMPLES[name][1][field_index]
    before = getattr(obj, field_name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field_name, OTHER_FIRST_VALUE[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(obj, field_name)
    assert getattr(obj, field_name) == before


@pytest.mark.parametrize("name", NAMES)
def test_new_attributes_are_refused_as_frozen(name: str) -> None:
    # As a frozen dataclass refuses them; CPython's own methods for a frozen
    # slotted dataclass fail with an unrelated TypeError here instead.
    obj = sample(name)
    with pytest.raises(dataclasses.FrozenInstanceError, match="^cannot assign to field 'extra'$"):
        obj.extra = 1
    with pytest.raises(dataclasses.FrozenInstanceError, match="^cannot delete field 'extra'$"):
        del obj.extra
    assert not hasattr(obj, "extra")


@pytest.mark.parametrize("name", NAMES)
def test_a_subclass_keeps_fields_frozen_and_takes_new_attributes(name: str) -> None:
    original = sample(name)
    cls = type(original)
    subclass = type("Sub" + cls.__name__, (cls,), {})
    obj = subclass(**{f.name: getattr(original, f.name) for f in dataclasses.fields(cls) if f.init})
    first = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, first, getattr(obj, first))
    obj.extra = 1
    assert obj.extra == 1


@pytest.mark.parametrize("name", NAMES)
def test_slotted_no_instance_dict(name: str) -> None:
    obj = sample(name)
    assert not hasattr(obj, "__dict__")
    with pytest.raises(TypeError):
        vars(obj)


@pytest.mark.parametrize("name", NAMES)
def test_object_setattr_still_works(name: str) -> None:
    obj = sample(name)
    first = SAMPLES[name][1][0]
    object.__setattr__(obj, first, OTHER_FIRST_VALUE[name])
    assert getattr(obj, first) == OTHER_FIRST_VALUE[name]


def test_object_setattr_places_a_record_in_time() -> None:
    record = Record(success=True)
    object.__setattr__(record, "timestamp", 1000.5)
    assert record.timestamp == 1000.5


def test_object_setattr_on_every_metric_field() -> None:
    m = metric()
    object.__setattr__(m, "total_count", 7)
    object.__setattr__(m, "total_duration", 1.5)
    object.__setattr__(m, "failure_count", 2)
    object.__setattr__(m, "slow_counts", {0.5: 3})
    assert m == metric(7, 1.5, 2, {0.5: 3})


def test_object_setattr_on_metric_still_checks_types() -> None:
    m = metric()
    with pytest.raises(TypeError, match="total_count"):
        object.__setattr__(m, "total_count", "7")
    with pytest.raises(TypeError, match="slow_counts"):
        object.__setattr__(m, "slow_counts", 5)
    assert m == metric()


@pytest.mark.parametrize("name", HASHABLE)
def test_hashable(name: str) -> None:
    a, b = sample(name), sample(name)
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


@pytest.mark.parametrize("name", UNHASHABLE)
def test_unhashable(name: str) -> None:
    with pytest.raises(TypeError):
        hash(sample(name))


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_and_copy_round_trip(name: str) -> None:
    obj = sample(name)
    assert copy.copy(obj) == obj
    deep = copy.deepcopy(obj)
    assert deep == obj
    assert type(deep) is type(obj)


def test_deepcopy_does_not_share_slow_counts() -> None:
    deep = copy.deepcopy(M)
    assert deep.slow_counts is not M.slow_counts
    info = sample("CircuitBreakerInfo")
    assert copy.deepcopy(info).metrics.slow_counts is not info.metrics.slow_counts


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip(name: str, protocol: int) -> None:
    obj = sample(name)
    module = SAMPLES[name][4]
    try:
        importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not written yet")
    restored = pickle.loads(pickle.dumps(obj, protocol))
    assert type(restored) is type(obj)
    assert restored == obj


@pytest.mark.parametrize(
    ("name", "match_args"),
    [
        ("Record", ()),
        ("Metric", ()),
        ("CallContext", ()),
        ("Signal", ("old_state", "new_state", "timestamp")),
        ("CircuitBreakerInfo", ("state", "changed_at", "reopens", "metrics")),
    ],
)
def test_match_args_as_a_dataclass_has_them(name: str, match_args: tuple[str, ...]) -> None:
    assert type(sample(name)).__match_args__ == match_args


def test_structural_pattern_matching() -> None:
    match Signal("closed", "open", 5.0):
        case Signal(old, new, ts):
            assert (old, new, ts) == ("closed", "open", 5.0)
        case _:
            pytest.fail("Signal did not match positionally")
    match M:
        case Metric(total_count=3, failure_count=failures, slow_counts={1.0: slow}):
            assert (failures, slow) == (1, 2)
        case _:
            pytest.fail("Metric did not match by keyword")


# ---- constructors -------------------------------------------------------------

@pytest.mark.parametrize(
    ("cls", "params", "kind"),
    [
        (Record, ["success", "duration", "slow_at"], inspect.Parameter.KEYWORD_ONLY),
        (Metric, ["total_count", "total_duration", "failure_count", "slow_counts"],
         inspect.Parameter.KEYWORD_ONLY),
        (CallContext, ["metric", "state", "consecutive_failures"],
         inspect.Parameter.KEYWORD_ONLY),
        (Signal, ["old_state", "new_state", "timestamp"],
         inspect.Parameter.POSITIONAL_OR_KEYWORD),
        (CircuitBreakerInfo, ["state", "changed_at", "reopens", "metrics"],
         inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ],
)
def test_constructor_signature(cls: type, params: list[str], kind: Any) -> None:
    signature = inspect.signature(cls)
    assert list(signature.parameters) == params
    assert {p.kind for p in signature.parameters.values()} == {kind}


def test_record_defaults() -> None:
    parameters = inspect.signature(Record).parameters
    assert parameters["success"].default is inspect.Parameter.empty
    assert parameters["duration"].default == 0.0
    assert parameters["slow_at"].default == ()
    record = Record(success=True)
    assert (record.success, record.duration, record.slow_at) == (True, 0.0, ())


@pytest.mark.parametrize(
    "build",
    [
        lambda: Record(True),  # type: ignore[call-arg]
        lambda: Record(True, 0.5, ()),  # type: ignore[call-arg]
        lambda: Metric(3, 0.6, 1, {}),  # type: ignore[call-arg]
        lambda: CallContext(M, "closed", 0),  # type: ignore[call-arg]
    ],
)
def test_keyword_only_constructors_refuse_positional_use(build: Callable[[], Any]) -> None:
    with pytest.raises(TypeError):
        build()


def test_signal_and_info_accept_positional_or_keyword() -> None:
    assert Signal("closed", "open", 1.0) == Signal(
        old_state="closed", new_state="open", timestamp=1.0)
    assert CircuitBreakerInfo("closed", 1.0, 0, M) == CircuitBreakerInfo(
        state="closed", changed_at=1.0, reopens=0, metrics=M)


def test_record_constructor_refuses_a_timestamp() -> None:
    with pytest.raises(TypeError):
        Record(success=True, timestamp=1.0)  # type: ignore[call-arg]


def test_record_timestamp_is_the_wall_clock() -> None:
    before = time.time()
    record = Record(success=True)
    after = time.time()
    assert isinstance(record.timestamp, float)
    assert before <= record.timestamp <= after


def test_record_timestamp_follows_freezegun() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        first = Record(success=True)
        frozen.tick(61)
        later = Record(success=True)
    assert first.timestamp == FROZEN_TS
    assert later.timestamp == FROZEN_TS + 61
    with freeze_time(FROZEN_AT):
        assert Record(success=True) == first


def test_record_timestamp_follows_a_patched_time_time() -> None:
    with mock.patch("time.time", return_value=42.5):
        assert Record(success=True).timestamp == 42.5


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("total_count", "3"),
        ("total_count", None),
        ("total_duration", "0.6"),
        ("total_duration", None),
        ("failure_count", "1"),
        ("failure_count", 1.5),
        ("slow_counts", 5),
        ("slow_counts", None),
        ("slow_counts", "1.0"),
    ],
)
def test_metric_rejects_bad_arguments_naming_the_field(field_name: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"total_count": 3, "total_duration": 0.6, "failure_count": 1,
                              "slow_counts": {}}
    kwargs[field_name] = value
    with pytest.raises(TypeError, match=field_name):
        Metric(**kwargs)


@pytest.mark.parametrize("field_name", ["total_count", "failure_count"])
def test_metric_rejects_counts_beyond_64_bits(field_name: str) -> None:
    kwargs: dict[str, Any] = {"total_count": 3, "total_duration": 0.6, "failure_count": 1,
                              "slow_counts": {}}
    kwargs[field_name] = 2**64
    with pytest.raises((ValueError, OverflowError), match=field_name):
        Metric(**kwargs)


def test_metric_requires_every_field() -> None:
    with pytest.raises(TypeError):
        Metric(total_count=1, total_duration=0.0, failure_count=0)  # type: ignore[call-arg]


def test_metric_accepts_any_mapping_and_real_numbers() -> None:
    from types import MappingProxyType

    m = Metric(total_count=2, total_duration=1, failure_count=0,
               slow_counts=MappingProxyType({0.5: 1}))
    assert m == metric(2, 1.0, 0, {0.5: 1})
    assert isinstance(m.total_duration, float)
    assert m.slow_counts == {0.5: 1}


# ---- Metric: the monoid ---------------------------------------------------------

def test_empty() -> None:
    empty = Metric.empty()
    assert empty == metric(0, 0.0, 0, {})
    assert empty.slow_counts == {}
    assert type(empty) is Metric


def test_empty_is_a_fresh_value_each_time() -> None:
    object.__setattr__(Metric.empty(), "total_count", 5)
    dict_of(Metric.empty())[1.0] = 1
    assert Metric.empty() == metric()


def test_from_record() -> None:
    ok = Record(success=True, duration=0.75, slow_at=(0.5, 0.25))
    assert Metric.from_record(ok) == metric(1, 0.75, 0, {0.5: 1, 0.25: 1})
    failed = Record(success=False)
    assert Metric.from_record(failed) == metric(1, 0.0, 1, {})


def test_from_record_counts_each_threshold_once() -> None:
    record = Record(success=True, duration=2.0, slow_at=(1.0, 1.0))
    assert Metric.from_record(record).slow_counts == {1.0: 1}


def test_add_and_subtract() -> None:
    a = metric(3, 0.5, 1, {1.0: 2, 2.0: 1})
    b = metric(2, 0.25, 2, {1.0: 1, 3.0: 1})
    assert a + b == metric(5, 0.75, 3, {1.0: 3, 2.0: 1, 3.0: 1})
    assert a - b == metric(1, 0.25, -1, {1.0: 1, 2.0: 1, 3.0: -1})


def test_results_do_not_share_state_with_operands() -> None:
    a = metric(1, 0.5, 0, {1.0: 1})
    for result in (a + Metric.empty(), a - Metric.empty(), Metric.empty() + a):
        dict_of(result)[9.0] = 9
    assert a == metric(1, 0.5, 0, {1.0: 1})


@pytest.mark.parametrize("other", [1, 0.0, None, "x", {}, M_DICT])
def test_arithmetic_with_other_types_is_a_type_error(other: Any) -> None:
    with pytest.raises(TypeError):
        M + other
    with pytest.raises(TypeError):
        other + M
    with pytest.raises(TypeError):
        M - other
    with pytest.raises(TypeError):
        other - M


def test_arithmetic_refuses_to_wrap_around() -> None:
    top = 2**63 - 1
    with pytest.raises(OverflowError, match="total_count"):
        metric(count=top) + metric(count=1)
    with pytest.raises(OverflowError, match="failure_count"):
        metric(failures=top) + metric(failures=1)
    with pytest.raises(OverflowError, match="total_count"):
        metric(count=-top) - metric(count=2)
    with pytest.raises(OverflowError, match="failure_count"):
        metric(failures=-top) - metric(failures=2)
    assert metric(count=top) - metric(count=top) == metric()


def test_plus_keeps_keys_at_zero() -> None:
    zero = metric(slow={1.0: 0})
    assert (zero + Metric.empty()).slow_counts == {1.0: 0}
    assert (Metric.empty() + zero).slow_counts == {1.0: 0}
    assert (zero + zero).slow_counts == {1.0: 0}


def test_minus_drops_a_key_brought_to_exactly_zero() -> None:
    a = metric(3, 0.0, 0, {1.0: 2, 2.0: 3})
    b = metric(2, 0.0, 0, {1.0: 2, 2.0: 1})
    assert (a - b).slow_counts == {2.0: 2}


def test_minus_keeps_a_zero_key_absent_from_the_right() -> None:
    a = metric(1, 0.0, 0, {1.0: 0, 2.0: 1})
    assert (a - metric(1, 0.0, 0, {2.0: 1})).slow_counts == {1.0: 0}
    assert (a - Metric.empty()).slow_counts == {1.0: 0, 2.0: 1}


def test_minus_keeps_a_negative_key() -> None:
    assert (Metric.empty() - metric(1, 0.0, 0, {1.0: 1})).slow_counts == {1.0: -1}


def test_derived_values() -> None:
    m = metric(4, 1.0, 1, {0.5: 3})
    assert m.avg_duration == 0.25
    assert m.failure_rate == 0.25
    assert m.slow_rate(0.5) == 0.75
    assert m.slow_rate(threshold=0.5) == 0.75
    assert m.slow_rate(2.0) == 0.0
    assert isinstance(m.slow_rate(2.0), float)


def test_derived_values_are_none_without_calls() -> None:
    for m in (Metric.empty(), metric(0, 1.0, 0, {0.5: 3})):
        assert m.avg_duration is None
        assert m.failure_rate is None
        assert m.slow_rate(0.5) is None
        assert m.slow_rate(1.0) is None


def test_slow_rate_signature() -> None:
    assert list(inspect.signature(Metric.slow_rate).parameters) == ["self", "threshold"]
    with pytest.raises(TypeError):
        M.slow_rate()  # type: ignore[call-arg]


# ---- Metric: laws, with hypothesis ---------------------------------------------

THRESHOLDS = st.sampled_from([0.1, 0.25, 1.0, 2.5])
# Durations in eighths of a second add and subtract exactly in binary.
EXACT_DURATIONS = st.integers(min_value=0, max_value=80_000).map(lambda n: n / 8)
COUNTS = st.integers(min_value=0, max_value=10**9)


@st.composite
def metrics(draw: st.DrawFn, durations: st.SearchStrategy[float] = EXACT_DURATIONS,
            min_slow: int = 0) -> Metric:
    return Metric(
        total_count=draw(COUNTS),
        total_duration=draw(durations),
        failure_count=draw(COUNTS),
        slow_counts=draw(st.dictionaries(THRESHOLDS,
                                         st.integers(min_value=min_slow, max_value=10**6))),
    )


ANY_DURATIONS = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
RECORDS = st.builds(Record, success=st.booleans(), duration=EXACT_DURATIONS,
                    slow_at=st.lists(THRESHOLDS, unique=True).map(tuple))


def model_combine(a: Metric, b: Metric, subtract: bool) -> dict[float, int]:
    """slow_counts of a + b or a - b, as SPEC section 2 words it."""
    slow = dict(a.slow_counts)
    for key, value in b.slow_counts.items():
        merged = slow.get(key, 0) + (-value if subtract else value)
        if subtract and merged == 0:
            slow.pop(key, None)
        else:
            slow[key] = merged
    return slow


@given(metrics(ANY_DURATIONS))
def test_empty_is_the_identity(m: Metric) -> None:
    assert m + Metric.empty() == m
    assert Metric.empty() + m == m
    assert m - Metric.empty() == m


@given(metrics(), metrics(), metrics())
def test_plus_is_associative(a: Metric, b: Metric, c: Metric) -> None:
    left, right = (a + b) + c, a + (b + c)
    assert left.total_count == right.total_count
    assert left.failure_count == right.failure_count
    assert left.slow_counts == right.slow_counts
    assert left == right


@given(metrics(), metrics())
def test_plus_is_commutative_on_values(a: Metric, b: Metric) -> None:
    assert a + b == b + a


@given(metrics(min_slow=1), metrics())
def test_adding_then_subtracting_gives_back_the_original(a: Metric, b: Metric) -> None:
    assert (a + b) - b == a


@given(metrics(), metrics())
def test_field_wise_sums_and_differences(a: Metric, b: Metric) -> None:
    total = a + b
    assert total.total_count == a.total_count + b.total_count
    assert total.total_duration == a.total_duration + b.total_duration
    assert total.failure_count == a.failure_count + b.failure_count
    assert total.slow_counts == model_combine(a, b, subtract=False)
    difference = a - b
    assert difference.total_count == a.total_count - b.total_count
    assert difference.total_duration == a.total_duration - b.total_duration
    assert difference.failure_count == a.failure_count - b.failure_count
    assert difference.slow_counts == model_combine(a, b, subtract=True)


@given(st.lists(RECORDS, max_size=20))
def test_summing_records(records: list[Record]) -> None:
    total = sum(map(Metric.from_record, records), Metric.empty())
    assert total.total_count == len(records)
    assert total.failure_count == sum(not r.success for r in records)
    assert total.total_duration == sum(r.duration for r in records)
    for threshold in (0.1, 0.25, 1.0, 2.5):
        count = sum(threshold in r.slow_at for r in records)
        assert total.slow_counts.get(threshold, 0) == count
        if records:
            assert total.slow_rate(threshold) == count / len(records)
    if records:
        assert total.avg_duration == total.total_duration / len(records)
        assert total.failure_rate == total.failure_count / len(records)


# ---- CallNotPermittedError -------------------------------------------------------

def test_call_not_permitted_error() -> None:
    assert fluxgate.CallNotPermittedError is CallNotPermittedError
    assert fluxgate.errors.CallNotPermittedError is CallNotPermittedError
    assert issubclass(CallNotPermittedError, Exception)
    assert CallNotPermittedError.__module__ == "fluxgate.errors"
    assert CallNotPermittedError.__qualname__ == "CallNotPermittedError"
    error = CallNotPermittedError("Circuit breaker is open")
    assert str(error) == "Circuit breaker is open"
    with pytest.raises(Exception, match="^Circuit breaker is open$"):
        raise error


def test_call_not_permitted_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(CallNotPermittedError("Circuit breaker is forced open")))
    assert type(error) is CallNotPermittedError
    assert error.args == ("Circuit breaker is forced open",)
