"""Trippers (SPEC section 5): validation, semantics, composites, iteration,
user subclasses and plain callables, introspection and static types."""

from __future__ import annotations

import copy
import inspect
import pickle
import typing
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from conftest import TypeCheck
from hypothesis import given
from hypothesis import strategies as st

import fluxgate
import fluxgate.trippers
from fluxgate import CallNotPermittedError, CircuitBreaker
from fluxgate.metric import Metric
from fluxgate.retries import Never
from fluxgate.state import State
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
    _And,
    _Or,
)
from fluxgate.windows import CountWindow

STATES: tuple[str, ...] = typing.get_args(State)
TripperLike = Callable[[CallContext], bool]
BUILTINS = (Closed, HalfOpened, MinRequests, FailureRate, AvgLatency, SlowRate, FailureStreak)


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def metric(
    total: int = 0,
    failures: int = 0,
    duration: float = 0.0,
    slow: dict[float, int] | None = None,
) -> Metric:
    return Metric(
        total_count=total,
        total_duration=duration,
        failure_count=failures,
        slow_counts=slow or {},
    )


def ctx(
    m: Metric | None = None, state: str = "closed", streak: int = 0
) -> CallContext:
    return CallContext(
        metric=m if m is not None else Metric.empty(),
        state=state,  # type: ignore[arg-type]
        consecutive_failures=streak,
    )


class Fixed(Tripper):
    """A user tripper with a fixed verdict that logs its calls."""

    def __init__(self, verdict: object, log: list[object] | None = None) -> None:
        self.verdict = verdict
        self.log = log

    def __call__(self, ctx: CallContext) -> bool:
        if self.log is not None:
            self.log.append(self)
        return self.verdict  # type: ignore[return-value]


class NotMinRequests(MinRequests):
    """A built-in subclass overriding __call__."""

    def __call__(self, ctx: CallContext) -> bool:
        return not super().__call__(ctx)


class PlainMinRequests(MinRequests):
    """A built-in subclass that keeps the built-in __call__."""


class UserAnd(Tripper):
    """A user composite exposing its children through __iter__."""

    def __init__(self, left: TripperLike, right: TripperLike) -> None:
        self.left, self.right = left, right

    def __call__(self, ctx: CallContext) -> bool:
        return self.left(ctx) and self.right(ctx)

    def __iter__(self) -> typing.Iterator[Any]:
        for child in (self.left, self.right):
            if isinstance(child, Iterable):
                yield from child
            else:
                yield child


# ---- construction and validation -----------------------------------------


def misuse(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """Calls `cls` in a way its types forbid (the point of the test)."""
    return cls(*args, **kwargs)


COUNT_MESSAGE = "Count must be greater than zero"
RATIO_MESSAGE = "Ratio must be between 0 and 1"
THRESHOLD_MESSAGE = "Threshold must be greater than 0"
NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MinRequests(0), COUNT_MESSAGE),
        (lambda: MinRequests(-1), COUNT_MESSAGE),
        (lambda: MinRequests(-(2**80)), COUNT_MESSAGE),
        (lambda: FailureStreak(0), COUNT_MESSAGE),
        (lambda: FailureStreak(-5), COUNT_MESSAGE),
        (lambda: FailureRate(0), RATIO_MESSAGE),
        (lambda: FailureRate(-0.1), RATIO_MESSAGE),
        (lambda: FailureRate(1.0000001), RATIO_MESSAGE),
        (lambda: FailureRate(2**2000), RATIO_MESSAGE),
        (lambda: FailureRate(INF), RATIO_MESSAGE),
        (lambda: FailureRate(NAN), RATIO_MESSAGE),
        (lambda: AvgLatency(0), THRESHOLD_MESSAGE),
        (lambda: AvgLatency(-1.5), THRESHOLD_MESSAGE),
        (lambda: AvgLatency(-INF), THRESHOLD_MESSAGE),
        (lambda: AvgLatency(NAN), THRESHOLD_MESSAGE),
        (lambda: SlowRate(0, threshold=1.0), RATIO_MESSAGE),
        (lambda: SlowRate(1.5, threshold=1.0), RATIO_MESSAGE),
        (lambda: SlowRate(NAN, threshold=1.0), RATIO_MESSAGE),
        (lambda: SlowRate(0.5, threshold=0), THRESHOLD_MESSAGE),
        (lambda: SlowRate(0.5, threshold=NAN), THRESHOLD_MESSAGE),
        # Both invalid: the ratio is checked first.
        (lambda: SlowRate(0, threshold=0), RATIO_MESSAGE),
        (lambda: SlowRate(NAN, threshold=NAN), RATIO_MESSAGE),
        (lambda: misuse(SlowRate, 2, threshold="x"), RATIO_MESSAGE),
    ],
)
def test_invalid_values_raise_value_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_nan_gets_the_out_of_range_message() -> None:
    for bad in (NAN, -NAN):
        with pytest.raises(ValueError, match=f"^{RATIO_MESSAGE}$"):
            FailureRate(bad)
        with pytest.raises(ValueError, match=f"^{THRESHOLD_MESSAGE}$"):
            AvgLatency(bad)
        with pytest.raises(ValueError, match=f"^{THRESHOLD_MESSAGE}$"):
            SlowRate(0.5, threshold=bad)


@pytest.mark.parametrize("count_type", [MinRequests, FailureStreak])
@pytest.mark.parametrize(
    ("count", "first_reaching"), [(2.0, 2), (2.5, 3), (0.25, 1), (True, 1)]
)
def test_a_count_may_be_any_real_number_as_in_0_9_4(
    count_type: Callable[[object], Tripper], count: object, first_reaching: int
) -> None:
    tripper = count_type(count)
    for reached in range(1, 5):
        context = ctx(metric(total=reached), streak=reached)
        assert tripper(context) is (reached >= first_reaching)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: misuse(MinRequests, "3"), "count must be a real number, not str"),
        (lambda: misuse(MinRequests, None), "count must be a real number, not NoneType"),
        (lambda: misuse(FailureStreak, "3"), "count must be a real number, not str"),
        (lambda: misuse(FailureRate, "0.5"), "ratio must be a real number, not str"),
        (lambda: misuse(FailureRate, None), "ratio must be a real number, not NoneType"),
        (lambda: misuse(AvgLatency, "1"), "threshold must be a real number, not str"),
        (lambda: misuse(SlowRate, "0.5", threshold=1.0), "ratio must be a real number, not str"),
        (lambda: misuse(SlowRate, 0.5, threshold="1"), "threshold must be a real number, not str"),
        # Both of the wrong type: the ratio is checked first.
        (lambda: misuse(SlowRate, "0.5", threshold="1"), "ratio must be a real number, not str"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "make",
    [
        lambda: misuse(Closed, 1),
        lambda: misuse(HalfOpened, state="closed"),
        lambda: misuse(MinRequests),
        lambda: misuse(MinRequests, 1, 2),
        lambda: misuse(FailureRate, ratio=0.5, extra=1),
        lambda: misuse(SlowRate, 0.5),
        lambda: misuse(SlowRate, 0.5, 1.0),  # threshold is keyword-only
    ],
)
def test_wrong_arity_raises_type_error(make: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        make()


class Five:
    def __index__(self) -> int:
        return 5


def test_valid_arguments_and_read_only_attributes() -> None:
    assert MinRequests(3).count == 3
    assert MinRequests(count=Five()).count == 5
    assert FailureStreak(count=2).count == 2
    assert FailureRate(1).ratio == 1.0
    assert FailureRate(ratio=1e-300).ratio == 1e-300
    assert AvgLatency(threshold=2).threshold == 2.0
    assert AvgLatency(INF).threshold == INF
    slow = SlowRate(ratio=0.25, threshold=0.5)
    assert (slow.ratio, slow.threshold) == (0.25, 0.5)
    assert isinstance(slow.threshold, float)
    # A count no counter can reach is kept as the largest one there is.
    assert MinRequests(2**80).count == 2**63 - 1
    with pytest.raises(AttributeError):
        slow.threshold = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        MinRequests(3).count = 4  # type: ignore[misc]


# ---- semantics of each tripper --------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_closed_and_half_opened_read_the_state(state: str) -> None:
    assert Closed()(ctx(state=state)) is (state == "closed")
    assert HalfOpened()(ctx(state=state)) is (state == "half_open")


@pytest.mark.parametrize(
    ("tripper", "context", "expected"),
    [
        (MinRequests(3), ctx(metric(total=2)), False),
        (MinRequests(3), ctx(metric(total=3)), True),
        (MinRequests(3), ctx(metric(total=4)), True),
        (FailureRate(0.5), ctx(metric(total=2, failures=1)), True),
        (FailureRate(0.5), ctx(metric(total=3, failures=1)), False),
        (FailureRate(1 / 3), ctx(metric(total=3, failures=1)), True),
        (FailureRate(1.0), ctx(metric(total=4, failures=4)), True),
        (FailureRate(1.0), ctx(metric(total=4, failures=3)), False),
        (AvgLatency(0.5), ctx(metric(total=2, duration=1.0)), True),
        (AvgLatency(0.5), ctx(metric(total=2, duration=0.9)), False),
        (AvgLatency(0.1), ctx(metric(total=3, duration=0.3)), 0.3 / 3 >= 0.1),
        (SlowRate(0.5, threshold=1.0), ctx(metric(total=2, slow={1.0: 1})), True),
        (SlowRate(0.5, threshold=1.0), ctx(metric(total=3, slow={1.0: 1})), False),
        (SlowRate(0.5, threshold=1.0), ctx(metric(total=2, slow={2.0: 2})), False),
        # An integer key equal to the threshold is the same dict key.
        (SlowRate(0.5, threshold=1.0), ctx(metric(total=2, slow={1: 2})), True),
        (SlowRate(0.5, threshold=1), ctx(metric(total=2, slow={1.0: 2})), True),
        (FailureStreak(3), ctx(streak=2), False),
        (FailureStreak(3), ctx(streak=3), True),
        (FailureStreak(3), ctx(streak=7), True),
    ],
)
def test_each_tripper_decides_as_spec_says(
    tripper: Tripper, context: CallContext, expected: bool
) -> None:
    assert tripper(context) is expected
    assert tripper(ctx=context) is expected


@pytest.mark.parametrize(
    "tripper",
    [
        MinRequests(1),
        FailureRate(1e-9),
        AvgLatency(1e-9),
        SlowRate(1e-9, threshold=1e-9),
        FailureStreak(1),
        HalfOpened(),
    ],
)
def test_no_calls_never_trips(tripper: Tripper) -> None:
    assert tripper(ctx(Metric.empty())) is False


def test_rates_follow_python_division() -> None:
    # 0.1 + 0.2 style rounding: the verdict is Python's, bit for bit.
    m = metric(total=10, failures=3, duration=3.0000000000000004, slow={0.5: 7})
    c = ctx(m)
    assert FailureRate(0.3)(c) is (3 / 10 >= 0.3)
    assert AvgLatency(0.30000000000000004)(c) is (m.total_duration / 10 >= 0.30000000000000004)
    assert SlowRate(0.7, threshold=0.5)(c) is (7 / 10 >= 0.7)


def test_only_what_a_tripper_needs_is_read_from_ctx() -> None:
    assert Closed()(SimpleNamespace(state="closed")) is True  # type: ignore[arg-type]
    assert FailureStreak(2)(SimpleNamespace(consecutive_failures=2)) is True  # type: ignore[arg-type]
    assert MinRequests(1)(SimpleNamespace(metric=metric(total=1))) is True  # type: ignore[arg-type]


def test_bad_ctx_raises_instead_of_crashing() -> None:
    with pytest.raises(TypeError, match="ctx.metric must be a Metric, not dict"):
        FailureRate(0.5)(SimpleNamespace(metric={}))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        Closed()(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        MinRequests(1)()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        MinRequests(1)(ctx(), ctx())  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        (MinRequests(1) & Closed())(context=ctx())  # type: ignore[call-arg]


# ---- composites ------------------------------------------------------------


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("right", [True, False])
def test_and_or_truth_tables(left: bool, right: bool) -> None:
    c = ctx()
    assert (Fixed(left) & Fixed(right))(c) is (left and right)
    assert (Fixed(left) | Fixed(right))(c) is (left or right)


def test_composites_short_circuit() -> None:
    log: list[object] = []
    first, second = Fixed(False, log), Fixed(True, log)
    assert (first & second)(ctx()) is False
    assert log == [first]
    log.clear()
    first.verdict = True
    assert (first | second)(ctx()) is True
    assert log == [first]
    log.clear()
    assert (MinRequests(1) & second)(ctx()) is False
    assert (Closed() | second)(ctx()) is True
    assert log == []


def test_composites_return_real_bools_from_truthy_results() -> None:
    assert (Fixed(1) & Fixed("yes"))(ctx()) is True
    assert (Fixed(0) | Fixed([]))(ctx()) is False
    answer: Any = lambda c: 42
    assert (Closed() & answer)(ctx()) is True


def test_an_error_in_a_user_tripper_propagates() -> None:
    def broken(c: CallContext) -> bool:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        (Closed() & broken)(ctx())

    class Falsy:
        def __bool__(self) -> bool:
            raise ValueError("no truth")

    with pytest.raises(ValueError, match="no truth"):
        undecided: Any = lambda c: Falsy()
        (Closed() & undecided)(ctx())


def test_python_nodes_receive_the_callers_ctx() -> None:
    seen: list[object] = []

    def spy(c: CallContext) -> bool:
        seen.append(c)
        return True

    c = ctx(metric(total=5))
    assert (MinRequests(5) & (Closed() & spy))(c) is True
    assert seen == [c] and seen[0] is c


@pytest.mark.parametrize("operand", [3, None, "x", 1.5, True])
def test_non_callable_operands_are_rejected(operand: Any) -> None:
    with pytest.raises(TypeError, match="unsupported operand"):
        MinRequests(1) & operand
    with pytest.raises(TypeError, match="unsupported operand"):
        operand | Closed()
    with pytest.raises(TypeError, match="unsupported operand"):
        Fixed(True) & operand
    with pytest.raises(TypeError, match="unsupported operand"):
        operand | Fixed(True)


def test_composite_constructor_requires_callables() -> None:
    with pytest.raises(TypeError, match="^left must be callable, not int$"):
        _And(1, Closed())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^right must be callable, not NoneType$"):
        _Or(Closed(), None)  # type: ignore[arg-type]


def test_plain_callables_compose_on_either_side() -> None:
    def yes(c: CallContext) -> bool:
        return True

    for tripper in (yes & Closed(), Closed() & yes, yes | Fixed(False), Fixed(False) | yes):
        assert isinstance(tripper, (_And, _Or))
        assert isinstance(tripper, Tripper)
        assert tripper(ctx()) is True
    assert list(yes & Fixed(True))[0] is yes


def test_mixed_tree_of_builtins_subclasses_and_callables() -> None:
    c = ctx(metric(total=4, failures=3), state="half_open", streak=3)
    tree = (
        NotMinRequests(10)
        & (PlainMinRequests(4) | Fixed(False))
        & HalfOpened()
        & (lambda x: x.consecutive_failures == 3)
        & (FailureRate(0.75) | AvgLatency(1.0))
    )
    assert tree(c) is True
    assert (NotMinRequests(4) | FailureStreak(4))(c) is False
    assert PlainMinRequests(4)(c) is True and NotMinRequests(4)(c) is False


# ---- iteration ---------------------------------------------------------------


def test_a_leaf_yields_itself() -> None:
    for tripper in (Closed(), MinRequests(2), SlowRate(0.5, threshold=1.0), Fixed(True)):
        assert list(tripper) == [tripper]
        assert list(tripper)[0] is tripper


def test_iteration_is_depth_first_left_to_right() -> None:
    def plain(c: CallContext) -> bool:
        return False

    a, b, c, d = MinRequests(1), FailureRate(0.5), SlowRate(0.3, threshold=1.0), Closed()
    user, sub = Fixed(True), NotMinRequests(2)
    inner = UserAnd(c, user)
    tree = (a & (b | inner)) | ((plain & sub) & d)
    assert [id(leaf) for leaf in tree] == [id(x) for x in (a, b, c, user, plain, sub, d)]
    # Iterating twice gives the same leaves.
    assert [id(leaf) for leaf in tree] == [id(leaf) for leaf in tree]


def test_a_subclass_overriding_iter_is_iterated_through_python() -> None:
    class Pair(Closed):
        def __iter__(self) -> typing.Iterator[Tripper]:
            yield MinRequests(1)
            yield self

    pair = Pair()
    leaves = list(HalfOpened() & pair)
    assert isinstance(leaves[0], HalfOpened)
    assert isinstance(leaves[1], MinRequests) and leaves[2] is pair


def test_an_error_while_iterating_a_child_propagates() -> None:
    class Broken(Fixed):
        def __iter__(self) -> typing.Iterator[Tripper]:
            raise TypeError("cannot iterate")

    with pytest.raises(TypeError, match="cannot iterate"):
        list(Closed() & Broken(True))


# ---- the abstract base and identity ---------------------------------------


def test_builtins_and_composites_are_trippers() -> None:
    for cls in BUILTINS + (_And, _Or):
        assert issubclass(cls, Tripper)
    for tripper in (Closed(), MinRequests(1) & FailureRate(0.5), Closed() | Fixed(True)):
        assert isinstance(tripper, Tripper)
    assert isinstance(NotMinRequests(1), Tripper)
    assert not isinstance(lambda c: True, Tripper)


def test_abstract_base_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        Tripper()  # type: ignore[abstract]

    class Incomplete(Tripper):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


def test_public_names_and_homes() -> None:
    assert fluxgate.trippers.__all__ == [
        "CallContext", "Tripper", "Closed", "HalfOpened", "MinRequests",
        "FailureRate", "AvgLatency", "SlowRate", "FailureStreak",
    ]  # fmt: skip
    for cls in BUILTINS + (Tripper, CallContext):
        assert cls.__module__ == "fluxgate.trippers"
        assert cls.__qualname__ == cls.__name__
        assert getattr(fluxgate.trippers, cls.__name__) is cls
    assert (_And.__module__, _And.__qualname__) == ("fluxgate.trippers", "_And")
    assert (_Or.__module__, _Or.__qualname__) == ("fluxgate.trippers", "_Or")


@pytest.mark.parametrize(
    ("cls", "signature"),
    [
        (Closed, "()"),
        (HalfOpened, "()"),
        (MinRequests, "(count)"),
        (FailureRate, "(ratio)"),
        (AvgLatency, "(threshold)"),
        (SlowRate, "(ratio, *, threshold)"),
        (FailureStreak, "(count)"),
        (_And, "(left, right)"),
    ],
)
def test_signatures(cls: type, signature: str) -> None:
    assert _bare(inspect.signature(cls)) == signature


def test_call_signatures() -> None:
    for tripper in (Closed(), MinRequests(1), Closed() & Fixed(True), Closed() | Closed()):
        assert _bare(inspect.signature(tripper)) == "(ctx)"
    assert _bare(inspect.signature(MinRequests.__call__)) == "(self, /, ctx)"
    assert str(inspect.signature(Tripper.__call__)) == "(self, ctx: 'CallContext') -> 'bool'"


def test_reprs() -> None:
    assert repr(Closed()) == "Closed()"
    assert repr(HalfOpened()) == "HalfOpened()"
    assert repr(MinRequests(100)) == "MinRequests(100)"
    assert repr(FailureRate(0.5)) == "FailureRate(0.5)"
    assert repr(AvgLatency(2)) == "AvgLatency(2.0)"
    assert repr(SlowRate(0.3, threshold=1)) == "SlowRate(0.3, threshold=1.0)"
    assert repr(FailureStreak(5)) == "FailureStreak(5)"
    assert repr(NotMinRequests(3)) == "NotMinRequests(3)"
    tree = MinRequests(10) & (FailureRate(0.5) | SlowRate(0.3, threshold=1.0))
    assert repr(tree) == "MinRequests(10) & (FailureRate(0.5) | SlowRate(0.3, threshold=1.0))"
    assert repr((Closed() & HalfOpened()) & Closed()) == "(Closed() & HalfOpened()) & Closed()"


def test_pickle_and_copy_round_trip() -> None:
    tree = FailureStreak(5) | (MinRequests(10) & SlowRate(0.3, threshold=1.5))
    for clone in (pickle.loads(pickle.dumps(tree)), copy.deepcopy(tree), copy.copy(tree)):
        assert repr(clone) == repr(tree)
        assert type(clone) is _Or
    slow = pickle.loads(pickle.dumps(SlowRate(0.25, threshold=2.0)))
    assert (slow.ratio, slow.threshold) == (0.25, 2.0)


class Tagged(FailureRate):
    tag = ""


def test_subclasses_keep_their_state() -> None:
    tagged = Tagged(0.5)
    tagged.tag = "x"
    clone = pickle.loads(pickle.dumps(tagged))
    assert type(clone) is Tagged and clone.ratio == 0.5 and clone.tag == "x"


def test_multiple_builtin_bases_are_refused() -> None:
    with pytest.raises(TypeError):
        type("Both", (MinRequests, FailureRate), {})


def test_very_deep_trees_raise_instead_of_crashing() -> None:
    tree: Tripper = Closed()
    for _ in range(100_000):
        tree = tree & Closed()
    with pytest.raises(RecursionError):
        tree(ctx())
    with pytest.raises(RecursionError):
        list(tree)
    del tree  # freeing the chain must not overflow the C stack either


# ---- random trees against a pure-Python evaluation -------------------------

THRESHOLDS = (0.5, 1.0, 2.0)
ratios = st.one_of(
    st.sampled_from([1 / 3, 0.25, 0.5, 2 / 3, 0.75, 1.0, 0.1, 0.3]),
    st.floats(min_value=0.0, max_value=1.0, exclude_min=True),
)
durations = st.floats(min_value=1e-6, max_value=5.0)


# Built once: hypothesis caches every strategy built during a test.
counts = st.integers(0, 40)
slow_counts = st.dictionaries(st.sampled_from(THRESHOLDS), counts)
total_durations = st.floats(0.0, 100.0)


@st.composite
def metrics(draw: st.DrawFn) -> Metric:
    total = draw(counts)
    return metric(
        total=total,
        failures=draw(counts) % (total + 1),
        duration=draw(total_durations),
        slow={t: count % (total + 1) for t, count in draw(slow_counts).items()},
    )


leaf_specs = st.one_of(
    st.tuples(st.just("closed")),
    st.tuples(st.just("half_open")),
    st.tuples(st.just("min_requests"), st.integers(1, 45)),
    st.tuples(st.just("failure_rate"), ratios),
    st.tuples(st.just("avg_latency"), durations),
    st.tuples(st.just("slow_rate"), ratios, st.sampled_from(THRESHOLDS + (3.0,))),
    st.tuples(st.just("failure_streak"), st.integers(1, 12)),
    st.tuples(st.just("user"), st.booleans()),
    st.tuples(st.just("plain"), st.booleans()),
    st.tuples(st.just("not_min_requests"), st.integers(1, 45)),
    st.tuples(st.just("plain_min_requests"), st.integers(1, 45)),
)
tree_specs = st.recursive(
    leaf_specs,
    lambda children: st.tuples(st.sampled_from(["&", "|", "user_and"]), children, children),
    max_leaves=10,
)

COMPOSITE_TAGS = ("&", "|", "user_and")


def build(spec: tuple[Any, ...], log: list[object]) -> tuple[Any, list[object]]:
    """The tripper for `spec` and its expected leaves in order."""
    tag = spec[0]
    if tag in COMPOSITE_TAGS:
        left, left_leaves = build(spec[1], log)
        right, right_leaves = build(spec[2], log)
        if tag == "user_and":
            node: Any = UserAnd(left, right)
        elif not isinstance(left, Tripper) and not isinstance(right, Tripper):
            node = (_And if tag == "&" else _Or)(left, right)  # two plain functions
        else:
            node = left & right if tag == "&" else left | right
        return node, left_leaves + right_leaves
    if tag == "user":
        node = Fixed(spec[1], log)
    elif tag == "plain":
        verdict = spec[1]

        def node(c: CallContext) -> bool:
            log.append(node)
            return verdict  # type: ignore[no-any-return]

    else:
        make = {
            "closed": Closed,
            "half_open": HalfOpened,
            "min_requests": MinRequests,
            "failure_rate": FailureRate,
            "avg_latency": AvgLatency,
            "failure_streak": FailureStreak,
            "not_min_requests": NotMinRequests,
            "plain_min_requests": PlainMinRequests,
        }.get(tag)
        node = SlowRate(spec[1], threshold=spec[2]) if make is None else make(*spec[1:])
    return node, [node]


def reference(spec: tuple[Any, ...], node: Any, c: CallContext, log: list[object]) -> bool:
    """What 0.9.4's pure-Python trippers decide, logging the Python leaves."""
    tag, m = spec[0], c.metric
    if tag in COMPOSITE_TAGS:
        left, right = (node.left, node.right) if tag == "user_and" else _operands(node)
        first = reference(spec[1], left, c, log)
        if first == (tag == "|"):
            return first
        return reference(spec[2], right, c, log)
    if tag in ("user", "plain"):
        log.append(node)
        return bool(spec[1])
    n = m.total_count
    if tag == "closed":
        return c.state == "closed"
    if tag == "half_open":
        return c.state == "half_open"
    if tag in ("min_requests", "plain_min_requests"):
        return bool(n >= spec[1])
    if tag == "not_min_requests":
        return not n >= spec[1]
    if tag == "failure_streak":
        return bool(c.consecutive_failures >= spec[1])
    if n == 0:
        return False
    if tag == "failure_rate":
        return bool(m.failure_count / n >= spec[1])
    if tag == "avg_latency":
        return bool(m.total_duration / n >= spec[1])
    return bool(m.slow_counts.get(spec[2], 0) / n >= spec[1])


def _operands(node: Any) -> tuple[Any, Any]:
    # A composite reduces to (type, (left, right), state).
    _, operands, *_ = node.__reduce__()
    return operands[0], operands[1]


@given(
    tree_specs,
    metrics(),
    st.sampled_from(STATES),
    st.integers(0, 12),
)
def test_random_trees_match_a_pure_python_evaluation(
    spec: tuple[Any, ...], m: Metric, state: str, streak: int
) -> None:
    log: list[object] = []
    tripper, leaves = build(spec, log)
    c = ctx(m, state=state, streak=streak)
    expected_log: list[object] = []
    expected = reference(spec, tripper, c, expected_log)
    assert tripper(c) is expected
    assert [id(x) for x in log] == [id(x) for x in expected_log]
    if spec[0] != "plain":  # a plain function is not iterable
        assert [id(x) for x in tripper] == [id(x) for x in leaves]


# ---- a breaker decides as a direct call of its tripper does -----------------

builtin_leaf_specs = st.one_of(
    st.tuples(st.just("closed")),
    st.tuples(st.just("half_open")),
    st.tuples(st.just("min_requests"), st.integers(1, 8)),
    st.tuples(st.just("failure_rate"), ratios),
    st.tuples(st.just("avg_latency"), st.sampled_from([0.5, 1.0, 2.0])),
    st.tuples(st.just("slow_rate"), ratios, st.sampled_from(THRESHOLDS)),
    st.tuples(st.just("failure_streak"), st.integers(1, 4)),
)
builtin_tree_specs = st.recursive(
    builtin_leaf_specs,
    lambda children: st.tuples(st.sampled_from(["&", "|"]), children, children),
    max_leaves=12,
)


class Direct(Tripper):
    """Asks a tripper by a direct call, with the CallContext the breaker builds
    for a Python tripper; iterating it yields the tripper's leaves, so that the
    breaker classifies calls against the same slow thresholds."""

    def __init__(self, inner: Tripper) -> None:
        self.inner = inner

    def __call__(self, ctx: CallContext) -> bool:
        return self.inner(ctx)

    def __iter__(self) -> Any:
        return iter(self.inner)


@given(
    builtin_tree_specs,
    st.lists(st.tuples(st.booleans(), st.sampled_from([0.25, 0.75, 1.5, 3.0])), max_size=25),
)
def test_a_breaker_over_built_in_trippers_trips_as_a_direct_call_decides(
    spec: tuple[Any, ...], outcomes: list[tuple[bool, float]]
) -> None:
    tripper, _ = build(spec, [])
    breakers = [
        CircuitBreaker(window=CountWindow(100), tripper=tripper, retry=Never()),
        CircuitBreaker(window=CountWindow(100), tripper=Direct(tripper), retry=Never()),
    ]
    now = [0.0]

    def work(success: bool, duration: float) -> None:
        now[0] += duration
        if not success:
            raise ValueError("failed")

    with mock.patch("time.perf_counter", lambda: now[0]):
        for success, duration in outcomes:
            for cb in breakers:
                try:
                    cb.call(work, success, duration)
                except (ValueError, CallNotPermittedError):
                    pass
            fast, direct = (cb.info() for cb in breakers)
            assert (fast.state, fast.metrics) == (direct.state, direct.metrics)


def test_a_leaf_initialised_after_the_breaker_was_built_decides_with_its_parameters() -> None:
    late = FailureRate.__new__(FailureRate)
    cb = CircuitBreaker(tripper=MinRequests(2) & late, retry=Never())
    late.__init__(0.6)  # type: ignore[misc]
    cb.call(lambda: None)
    with pytest.raises(ValueError):
        cb.call(lambda: int("x"))
    assert cb.info().state == "closed"  # one failure in two calls: 0.5 < 0.6
    with pytest.raises(ValueError):
        cb.call(lambda: int("x"))
    assert cb.info().state == "open"  # two in three: 0.67 >= 0.6


@pytest.mark.parametrize("composite", [_And, _Or])
def test_a_composite_class_patched_after_the_breaker_was_built_is_asked(
    composite: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # False after a success, whether joined by & or |.
    cb = CircuitBreaker(tripper=composite(HalfOpened(), FailureRate(1.0)))
    cb.call(lambda: None)
    assert cb.info().state == "closed"
    monkeypatch.setattr(composite, "__call__", lambda self, ctx: True)
    cb.call(lambda: None)
    assert cb.info().state == "open"


# ---- static types ------------------------------------------------------------

TYPED_PROGRAM = """\
from fluxgate.trippers import (
    AvgLatency, CallContext, Closed, FailureRate, FailureStreak, HalfOpened,
    MinRequests, SlowRate, Tripper,
)

class Mine(Tripper):
    def __call__(self, ctx: CallContext) -> bool:
        return ctx.metric.total_count > 3 and ctx.state == "closed"

def plain(ctx: CallContext) -> bool:
    return ctx.consecutive_failures > 2

tripper: Tripper = MinRequests(10) & (FailureRate(0.5) | SlowRate(0.3, threshold=1.0))
other: Tripper = Closed() & Mine() | HalfOpened() & plain | FailureStreak(3)
third: Tripper = plain & AvgLatency(threshold=2.0)
thresholds: list[float] = [t.threshold for t in tripper if isinstance(t, SlowRate)]
verdict: bool = tripper(CallContext(metric=..., state="closed", consecutive_failures=0))  # type: ignore[arg-type]
count: int = MinRequests(count=3).count
"""

WRONG_PROGRAM = """\
from fluxgate.trippers import MinRequests, SlowRate, FailureRate
a = MinRequests(1) & 3
b = SlowRate(0.5, 1.0)
c = MinRequests("10")
d = FailureRate(0.5).ratio + "x"
"""


def test_stubs_accept_real_programs_and_reject_wrong_ones(
    mypy_strict: Callable[[str], TypeCheck],
) -> None:
    good = mypy_strict(TYPED_PROGRAM)
    assert good.status == 0, good.output
    wrong = mypy_strict(WRONG_PROGRAM)
    assert wrong.status == 1
    assert wrong.error_lines == [2, 3, 4, 5], wrong.output
    assert 'Unsupported operand types for & ("MinRequests" and "int")' in wrong.output
    assert 'Too many positional arguments for "SlowRate"' in wrong.output
