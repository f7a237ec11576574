"""Trackers: All, TypeOf, Custom, the Tracker ABC and the & | ~ composites."""

from __future__ import annotations

import copy
import gc
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from conftest import TypeCheck
from hypothesis import given
from hypothesis import strategies as st

import fluxgate.trackers as trackers
from fluxgate.trackers import All, Custom, Tracker, TypeOf


def _bare(sig: inspect.Signature) -> str:
    """A signature as text without its annotations (shown separately by the
    conformance tests, as 0.9.4's)."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


class AppError(Exception):
    pass


class RetryableError(AppError):
    pass


class Always(Tracker):
    """A complete user tracker."""

    def __call__(self, exception: Exception) -> bool:
        return True


class Recorder(Tracker):
    """A user tracker that answers `verdict` and notes each call."""

    def __init__(self, verdict: object, log: list[str], name: str) -> None:
        self.verdict = verdict
        self.log = log
        self.name = name

    def __call__(self, exception: Exception) -> bool:
        self.log.append(self.name)
        return bool(self.verdict)


def recording(verdict: object, log: list[str], name: str) -> Callable[[Exception], object]:
    def predicate(exception: Exception) -> object:
        log.append(name)
        return verdict

    return predicate


def exploding(exception: Exception) -> bool:
    raise AssertionError("the right operand must not be asked")


# ---- the module ----


def test_public_names() -> None:
    assert trackers.__all__ == ["Tracker", "All", "TypeOf", "Custom"]
    for name in trackers.__all__:
        assert getattr(trackers, name).__module__ == "fluxgate.trackers"
        assert getattr(trackers, name).__qualname__ == name


def test_composites_report_their_private_home() -> None:
    a, b = All(), TypeOf(ValueError)
    for composite, name in ((a & b, "_And"), (a | b, "_Or"), (~a, "_Not")):
        assert type(composite).__module__ == "fluxgate.trackers"
        assert type(composite).__qualname__ == name
        assert getattr(trackers, name) is type(composite)


def test_constructor_signatures() -> None:
    assert _bare(inspect.signature(All)) == "()"
    assert _bare(inspect.signature(TypeOf)) == "(*types)"
    assert _bare(inspect.signature(Custom)) == "(func)"


@pytest.mark.parametrize(
    "tracker",
    [All(), TypeOf(ValueError), Custom(bool), All() & All(), All() | All(), ~All()],
    ids=repr,
)
def test_call_signature(tracker: Tracker) -> None:
    assert _bare(inspect.signature(type(tracker).__call__)) == "(self, /, exception)"
    assert _bare(inspect.signature(tracker)) == "(exception)"
    assert _bare(inspect.signature(tracker.__call__)) == "(exception)"


def test_abc_call_signature() -> None:
    assert list(inspect.signature(Tracker.__call__).parameters) == ["self", "exception"]


# ---- the ABC ----


@pytest.mark.parametrize(
    "tracker",
    [All(), TypeOf(ValueError), Custom(bool), All() & All(), All() | All(), ~All()],
    ids=repr,
)
def test_builtins_are_trackers(tracker: object) -> None:
    assert isinstance(tracker, Tracker)
    assert issubclass(type(tracker), Tracker)


def test_tracker_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Tracker()  # type: ignore[abstract]


def test_incomplete_subclass_is_abstract() -> None:
    class Incomplete(Tracker):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_user_subclass_is_a_tracker() -> None:
    assert isinstance(Always(), Tracker)
    assert Always()(ValueError()) is True


# ---- All ----


@pytest.mark.parametrize("exception", [ValueError(), KeyError("k"), AppError(), Exception()])
def test_all_tracks_everything(exception: Exception) -> None:
    assert All()(exception) is True
    assert All()(exception=exception) is True


def test_all_takes_no_arguments() -> None:
    with pytest.raises(TypeError):
        All(ValueError)  # type: ignore[call-arg]


# ---- TypeOf ----


def test_typeof_is_isinstance() -> None:
    tracker = TypeOf(ValueError, AppError)
    assert tracker(ValueError()) is True
    assert tracker(UnicodeDecodeError("utf-8", b"", 0, 1, "bad")) is True
    assert tracker(RetryableError()) is True
    assert tracker(KeyError()) is False
    assert tracker(Exception()) is False
    assert tracker(exception=AppError()) is True


def test_typeof_needs_a_type() -> None:
    with pytest.raises(ValueError) as info:
        TypeOf()
    assert str(info.value) == "At least one exception type is required"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((42,), "TypeOf() argument 1 must be an exception class, not 42"),
        ((ValueError, "x"), "TypeOf() argument 2 must be an exception class, not 'x'"),
        ((int,), "TypeOf() argument 1 must be an exception class, not <class 'int'>"),
        ((ValueError(),), "TypeOf() argument 1 must be an exception class, not ValueError()"),
        (
            ((ValueError, KeyError),),
            "TypeOf() argument 1 must be an exception class, not "
            "(<class 'ValueError'>, <class 'KeyError'>)",
        ),
    ],
)
def test_typeof_rejects_what_is_not_an_exception_class(
    args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(TypeError) as info:
        TypeOf(*args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_typeof_takes_no_keywords() -> None:
    with pytest.raises(TypeError, match="keyword"):
        TypeOf(types=ValueError)  # type: ignore[call-arg]


def test_typeof_repr() -> None:
    assert repr(TypeOf(ValueError, KeyError)) == "TypeOf(ValueError, KeyError)"
    assert repr(TypeOf(AppError)) == f"TypeOf({__name__}.AppError)"


# ---- Custom ----


def test_custom_receives_the_exception() -> None:
    seen: list[Exception] = []
    error = ValueError("boom")
    assert Custom(lambda e: seen.append(e) is None)(error) is True
    assert seen == [error]


@pytest.mark.parametrize(
    ("returned", "expected"),
    [(1, True), ("yes", True), ([0], True), (0, False), ("", False), (None, False), ([], False)],
)
def test_custom_returns_a_real_bool(returned: object, expected: bool) -> None:
    assert Custom(lambda e: returned)(ValueError()) is expected


def test_custom_by_keyword() -> None:
    tracker = Custom(func=lambda e: isinstance(e, KeyError))
    assert tracker(exception=KeyError()) is True
    assert tracker(ValueError()) is False


def test_custom_needs_a_callable() -> None:
    with pytest.raises(TypeError) as info:
        Custom(3)  # type: ignore[arg-type]
    assert str(info.value) == "Custom() argument 'func' must be callable, not int"


def test_custom_needs_func() -> None:
    with pytest.raises(TypeError, match="func"):
        Custom()  # type: ignore[call-arg]


def test_exception_inside_custom_propagates() -> None:
    def broken(exception: Exception) -> bool:
        raise LookupError("inside the tracker")

    with pytest.raises(LookupError, match="inside the tracker"):
        Custom(broken)(ValueError())


def test_exception_from_bool_propagates() -> None:
    class Undecided:
        def __bool__(self) -> bool:
            raise ArithmeticError("no verdict")

    with pytest.raises(ArithmeticError, match="no verdict"):
        Custom(lambda e: Undecided())(ValueError())


def test_custom_repr() -> None:
    assert repr(Custom(callable)) == f"Custom({callable!r})"


# ---- calling ----


@pytest.mark.parametrize("tracker", [All(), TypeOf(ValueError), Custom(bool), ~All()], ids=repr)
def test_call_needs_exactly_one_exception(tracker: Tracker) -> None:
    with pytest.raises(TypeError):
        tracker()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        tracker(ValueError(), ValueError())  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        tracker(error=ValueError())  # type: ignore[call-arg]


# ---- composites ----


def test_and_or_not_truth_tables() -> None:
    yes, no = All(), ~All()
    error = ValueError()
    assert (yes & yes)(error) is True
    assert (yes & no)(error) is False
    assert (no & yes)(error) is False
    assert (yes | no)(error) is True
    assert (no | yes)(error) is True
    assert (no | no)(error) is False
    assert no(error) is False
    assert (~no)(exception=error) is True


def test_composites_of_typeof() -> None:
    tracker = TypeOf(AppError) & ~TypeOf(RetryableError) | TypeOf(KeyError)
    assert tracker(AppError()) is True
    assert tracker(RetryableError()) is False
    assert tracker(KeyError()) is True
    assert tracker(ValueError()) is False


def test_and_short_circuits() -> None:
    log: list[str] = []
    assert (~All() & exploding)(ValueError()) is False
    tracker = Custom(recording(0, log, "left")) & Custom(recording(1, log, "right"))
    assert tracker(ValueError()) is False
    assert log == ["left"]


def test_or_short_circuits() -> None:
    log: list[str] = []
    assert (All() | exploding)(ValueError()) is True
    tracker = Recorder(True, log, "left") | Recorder(False, log, "right")
    assert tracker(ValueError()) is True
    assert log == ["left"]


def test_right_operand_asked_when_left_does_not_decide() -> None:
    log: list[str] = []
    assert (Recorder(True, log, "a") & recording("", log, "b"))(ValueError()) is False
    assert ((lambda e: 0) | Recorder(True, log, "c"))(ValueError()) is True
    assert log == ["a", "b", "c"]


@pytest.mark.parametrize(
    "tracker",
    [All(), TypeOf(ValueError), Custom(bool), All() & All(), All() | All(), Always()],
    ids=repr,
)
def test_double_inversion_is_identity(tracker: Tracker) -> None:
    inverted = ~tracker
    assert inverted is not tracker
    assert isinstance(inverted, Tracker)
    assert ~inverted is tracker


def test_plain_callables_on_either_side() -> None:
    def is_key(e: Exception) -> bool:
        return isinstance(e, KeyError)

    for tracker in (All() & is_key, is_key & All(), TypeOf(KeyError) | is_key):
        assert isinstance(tracker, Tracker)
        assert tracker(KeyError()) is True
    assert (is_key | TypeOf(ValueError))(ValueError()) is True
    assert (is_key & All())(ValueError()) is False


def test_user_subclasses_on_either_side() -> None:
    log: list[str] = []
    user = Recorder(True, log, "user")
    assert (user & TypeOf(KeyError))(KeyError()) is True
    assert (TypeOf(KeyError) & user)(ValueError()) is False
    assert (~user | (lambda e: 1))(ValueError()) is True
    assert ((lambda e: 1) & user)(ValueError()) is True
    assert (user | user)(ValueError()) is True
    assert log == ["user", "user", "user", "user"]


def test_composite_results_are_real_bools_around_callables() -> None:
    error = ValueError()
    assert (All() & (lambda e: 1))(error) is True
    assert (All() & (lambda e: ""))(error) is False
    assert ((lambda e: "x") | All())(error) is True
    assert ((lambda e: None) | (~All()))(error) is False
    assert (~Custom(lambda e: []))(error) is True
    assert (Always() & (lambda e: [1]))(error) is True


@pytest.mark.parametrize("other", [3, None, "x", ValueError()], ids=repr)
def test_operands_must_be_callable(other: object) -> None:
    for tracker in (All(), TypeOf(ValueError), ~All(), All() & All(), Always()):
        with pytest.raises(TypeError, match="unsupported operand"):
            tracker & other  # type: ignore[operator]
        with pytest.raises(TypeError, match="unsupported operand"):
            other & tracker  # type: ignore[operator]
        with pytest.raises(TypeError, match="unsupported operand"):
            tracker | other  # type: ignore[operator]
        with pytest.raises(TypeError, match="unsupported operand"):
            other | tracker  # type: ignore[operator]


def test_composite_constructors_check_operands() -> None:
    with pytest.raises(TypeError) as info:
        trackers._And(All(), 3)  # type: ignore[arg-type]
    assert str(info.value) == "_And() argument 2 must be callable, not int"
    with pytest.raises(TypeError) as info:
        trackers._Not("x")  # type: ignore[arg-type]
    assert str(info.value) == "_Not() argument 1 must be callable, not str"
    with pytest.raises(TypeError):
        trackers._Or(All())  # type: ignore[call-arg]
    assert trackers._Or(~All(), All())(ValueError()) is True


def test_exception_inside_a_composite_propagates() -> None:
    def broken(exception: Exception) -> bool:
        raise LookupError("operand failed")

    with pytest.raises(LookupError, match="operand failed"):
        (All() & broken)(ValueError())
    with pytest.raises(LookupError, match="operand failed"):
        (~Custom(broken))(ValueError())


def test_composite_reprs() -> None:
    tracker = TypeOf(ValueError) & ~All() | Custom(callable)
    assert repr(tracker) == f"((TypeOf(ValueError) & ~All()) | Custom({callable!r}))"
    assert repr(~TypeOf(KeyError)) == "~TypeOf(KeyError)"


def test_composites_are_immutable_and_final() -> None:
    with pytest.raises(TypeError):

        class Sub(trackers._And):  # type: ignore[misc]
            pass

    with pytest.raises((TypeError, AttributeError)):
        trackers._And.__call__ = lambda self, exception: True  # type: ignore[method-assign]


def test_deep_chains_fail_cleanly() -> None:
    tracker: Tracker = All()
    for _ in range(100_000):
        tracker = tracker & All()
    with pytest.raises(RecursionError):
        tracker(ValueError())
    del tracker
    gc.collect()


# ---- subclassing the built-ins ----


def test_subclass_inherits_the_builtin_call() -> None:
    class Mine(TypeOf):
        pass

    tracker = Mine(KeyError)
    assert tracker(KeyError()) is True
    assert (tracker & All())(ValueError()) is False
    assert repr(tracker) == "Mine(KeyError)"
    assert isinstance(tracker, Tracker)


def test_subclass_with_its_own_init() -> None:
    class LookupErrors(TypeOf):
        def __init__(self) -> None:
            super().__init__(KeyError, IndexError)

    class Everything(All):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

    assert LookupErrors()(IndexError()) is True
    assert LookupErrors()(ValueError()) is False
    everything = Everything("x")
    assert everything.label == "x"
    assert (everything & TypeOf(KeyError))(KeyError()) is True


def test_subclass_overriding_call_is_used_in_composites() -> None:
    log: list[Exception] = []

    class Inverted(TypeOf):
        def __call__(self, exception: Exception) -> bool:
            log.append(exception)
            return not super().__call__(exception)

    error = KeyError()
    tracker = Inverted(KeyError)
    assert tracker(error) is False
    assert (All() & tracker)(ValueError()) is True
    assert (~tracker)(error) is True
    assert ((lambda e: True) & tracker)(error) is False
    assert len(log) == 4


def test_subclass_of_custom_overriding_call_returning_non_bool() -> None:
    class Loose(Custom):
        def __call__(self, exception: Exception) -> bool:
            return 1  # type: ignore[return-value]

    assert (Loose(bool) & All())(ValueError()) is True
    assert (~Loose(bool))(ValueError()) is False


def test_uninitialised_builtin_raises() -> None:
    tracker = TypeOf.__new__(TypeOf)
    with pytest.raises(TypeError) as info:
        tracker(ValueError())
    assert str(info.value) == "TypeOf object is not initialised"
    assert "uninitialised" in repr(tracker)

    class Forgetful(Custom):
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="Forgetful object is not initialised"):
        (All() & Forgetful())(ValueError())


def test_reinitialising_during_evaluation_is_refused() -> None:
    def switch(exception: Exception) -> bool:
        with pytest.raises(TypeError, match="already initialised"):
            tracker.__init__(lambda e: False)  # type: ignore[misc]
        gc.collect()
        return True

    tracker = Custom(switch)
    assert tracker(ValueError()) is True
    assert tracker(ValueError()) is True


# ---- copying ----


@pytest.mark.parametrize(
    "tracker",
    [All(), TypeOf(ValueError, AppError), ~All(), TypeOf(KeyError) & ~All() | TypeOf(AppError)],
    ids=repr,
)
def test_pickle_and_copy(tracker: Tracker) -> None:
    for clone in (pickle.loads(pickle.dumps(tracker)), copy.copy(tracker), copy.deepcopy(tracker)):
        assert type(clone) is type(tracker)
        assert repr(clone) == repr(tracker)
        for error in (ValueError(), KeyError(), RetryableError()):
            assert clone(error) is tracker(error)


def test_copy_keeps_custom_func_and_subclass_state() -> None:
    class Tagged(All):
        pass

    tagged = Tagged()
    tagged.tag = "t"  # type: ignore[attr-defined]
    clone = copy.copy(tagged)
    assert type(clone) is Tagged and clone.tag == "t"  # type: ignore[attr-defined]
    custom = Custom(callable)
    assert repr(copy.deepcopy(custom)) == repr(custom)


def test_gc_sees_the_referents() -> None:
    def func(exception: Exception) -> bool:
        return True

    left, right = All(), TypeOf(ValueError)
    assert func in gc.get_referents(Custom(func))
    referents = gc.get_referents(left & right)
    assert left in referents and right in referents
    assert ValueError in gc.get_referents(right)[-1]


def test_cycles_through_custom_are_collected() -> None:
    collected: list[bool] = []

    class Marker:
        def __del__(self) -> None:
            collected.append(True)

    def make() -> None:
        marker = Marker()
        tracker = Custom(lambda e: (marker, tracker) is not None)
        assert tracker(ValueError()) is True

    make()
    gc.collect()
    assert collected == [True]


# ---- random trees against a pure-Python evaluation ----
# A tree is a leaf (kind, value), ("and" | "or", left, right) or ("not", operand).

_VERDICTS = st.sampled_from([True, False, 1, 0, "x", "", None, [1]])
_CLASSES = st.sampled_from([ValueError, KeyError, AppError])
_leaves = st.one_of(
    st.tuples(st.just("all"), st.none()),
    st.tuples(st.just("typeof"), _CLASSES),
    st.tuples(st.just("custom"), _VERDICTS),
    st.tuples(st.just("lambda"), _VERDICTS),
    st.tuples(st.just("user"), _VERDICTS),
    st.tuples(st.just("override"), _CLASSES),
)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), children, children),
        st.tuples(st.just("not"), children),
    ),
    max_leaves=12,
)


class _Override(TypeOf):
    log: list[str]

    def __call__(self, exception: Exception) -> bool:
        self.log.append("override")
        return super().__call__(exception)


def _build(tree: Any, log: list[str]) -> Any:
    kind = tree[0]
    if kind in ("and", "or"):
        a, b = _build(tree[1], log), _build(tree[2], log)
        # Two plain callables have no operator between them: build the
        # composite directly. Otherwise the operator is used, reflected when
        # the plain callable is on the left.
        if not isinstance(a, Tracker) and not isinstance(b, Tracker):
            return (trackers._And if kind == "and" else trackers._Or)(a, b)
        return a & b if kind == "and" else a | b
    if kind == "not":
        operand = _build(tree[1], log)
        return ~operand if isinstance(operand, Tracker) else trackers._Not(operand)
    value = tree[1]
    if kind == "all":
        return All()
    if kind == "typeof":
        return TypeOf(value)
    if kind == "custom":
        return Custom(recording(value, log, "custom"))
    if kind == "lambda":
        return recording(value, log, "lambda")
    if kind == "user":
        return Recorder(value, log, "user")
    override = _Override(value)
    override.log = log
    return override


def _expected(tree: Any, error: Exception, log: list[str]) -> bool:
    kind = tree[0]
    if kind == "and":
        return _expected(tree[1], error, log) and _expected(tree[2], error, log)
    if kind == "or":
        return _expected(tree[1], error, log) or _expected(tree[2], error, log)
    if kind == "not":
        return not _expected(tree[1], error, log)
    value = tree[1]
    if kind == "all":
        return True
    if kind == "typeof":
        return isinstance(error, value)
    log.append(kind)
    if kind == "override":
        return isinstance(error, value)
    return bool(value)


@given(tree=_trees, error=st.sampled_from([ValueError(), KeyError(), RetryableError()]))
def test_random_trees_match_python_semantics(tree: Any, error: Exception) -> None:
    log: list[str] = []
    tracker = _build(tree, log)
    expected_log: list[str] = []
    expected = _expected(tree, error, expected_log)
    result = tracker(error)
    if isinstance(tracker, Tracker):
        assert result is expected
    else:
        assert bool(result) is expected
    assert log == expected_log


# ---- through the breaker (fg_tracker_check) ----


class _ListWindow:
    """A user window, so that these tests depend on the breaker alone."""

    def __init__(self) -> None:
        self.records: list[object] = []

    def record(self, record: object) -> None:
        self.records.append(record)

    def get_metric(self) -> object:
        from fluxgate.metric import Metric

        return Metric.empty()

    def reset(self) -> None:
        self.records.clear()


def _raise(error: Exception) -> None:
    raise error


def _failures_recorded(tracker: Callable[[Exception], object], errors: list[Exception]) -> int:
    from fluxgate import CircuitBreaker

    window = _ListWindow()
    breaker = CircuitBreaker(window=window, tracker=tracker, tripper=lambda ctx: False)
    for error in errors:
        with pytest.raises(type(error)):
            breaker.call(_raise, error)
    return len(window.records)


def test_breaker_evaluates_builtin_trees() -> None:
    errors: list[Exception] = [ValueError(), KeyError(), RetryableError(), OSError()]
    assert _failures_recorded(All(), errors) == 4
    assert _failures_recorded(TypeOf(AppError, KeyError), errors) == 2
    assert _failures_recorded(~TypeOf(AppError) & (TypeOf(KeyError) | TypeOf(OSError)), errors) == 2
    assert _failures_recorded(Custom(lambda e: isinstance(e, OSError)), errors) == 1


def test_breaker_calls_python_nodes_through_python() -> None:
    log: list[Exception] = []

    class Noted(TypeOf):
        def __call__(self, exception: Exception) -> bool:
            log.append(exception)
            return super().__call__(exception)

    errors: list[Exception] = [ValueError(), KeyError()]
    assert _failures_recorded(~Noted(ValueError) & All(), errors) == 1
    assert log == errors
    assert _failures_recorded(Recorder(1, [], "user") | exploding, errors) == 2
    assert _failures_recorded(lambda e: "", errors) == 0


def test_breaker_propagates_tracker_errors() -> None:
    def broken(exception: Exception) -> bool:
        raise LookupError("tracker failed")

    from fluxgate import CircuitBreaker

    window = _ListWindow()
    breaker = CircuitBreaker(window=window, tracker=All() & broken, tripper=lambda ctx: False)
    with pytest.raises(LookupError, match="tracker failed") as info:
        breaker.call(_raise, ValueError("original"))
    assert isinstance(info.value.__context__, ValueError)
    assert window.records == []


# ---- static types ----

TYPED_PROGRAM = """\
from fluxgate.trackers import All, Custom, Tracker, TypeOf

class Mine(Tracker):
    def __call__(self, exception: Exception) -> bool:
        return isinstance(exception, OSError)

def retriable(exception: Exception) -> bool:
    return "retry" in str(exception)

class Narrow(TypeOf):
    def __call__(self, exception: Exception) -> bool:
        return super().__call__(exception) and bool(exception.args)

tracker: Tracker = TypeOf(ConnectionError, TimeoutError) & ~Custom(retriable)
other: Tracker = All() | Mine() & retriable | Narrow(KeyError)
third: Tracker = retriable & All()
fourth: Tracker = ~(retriable | Mine())
by_keyword: Tracker = Custom(func=lambda e: e.args)
verdict: bool = tracker(ValueError()) or other(exception=KeyError())
"""

WRONG_PROGRAM = """\
from fluxgate.trackers import All, Custom, TypeOf
a = All() & 3
b = TypeOf(42)
c = Custom(3)
d = All()(exception="not an exception")
e: str = TypeOf(ValueError)(KeyError())
"""


def test_stubs_accept_real_programs_and_reject_wrong_ones(
    mypy_strict: Callable[[str], TypeCheck],
) -> None:
    good = mypy_strict(TYPED_PROGRAM)
    assert good.status == 0, good.output
    wrong = mypy_strict(WRONG_PROGRAM)
    assert wrong.status == 1
    assert wrong.error_lines == [2, 3, 4, 5, 6], wrong.output
