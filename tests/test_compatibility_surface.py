"""What a 0.9.4 program sees of the API besides behaviour (SPEC.md sections 0
and 12): the names each module exposes, argument errors word for word,
runtime signatures, subclassing the built-ins, and misuse caught at
construction. (tests/conformance/test_surface.py compares the same against
0.9.4 itself.)"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from typing import Any

import pytest

import fluxgate
from fluxgate import AsyncCircuitBreaker, CircuitBreaker
from fluxgate import permits, retries, trackers, trippers, windows
from fluxgate.metric import Metric, Record
from fluxgate.permits import Random, RampUp
from fluxgate.retries import Always, Backoff, Cooldown, Never
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

BREAKERS = [CircuitBreaker, AsyncCircuitBreaker]

# ---- names (SPEC section 0, both tables) ----------------------------------------------

ALSO_IMPORTABLE = {
    "fluxgate.circuitbreaker": [
        "All", "AsyncListener", "CallContext", "CallNotPermittedError", "Cooldown",
        "CountWindow", "FailureRate", "Listener", "Metric", "MinRequests", "Permit",
        "RampUp", "Record", "Retry", "Signal", "SlowRate", "State", "Tracker",
        "Tripper", "Window", "CircuitBreakerInfo",
    ],
    "fluxgate.windows": ["Metric", "Record"],
    "fluxgate.trippers": ["Metric", "State"],
    "fluxgate.signal": ["State"],
    "fluxgate.listeners.base": ["Signal"],
    "fluxgate.listeners.log": ["Listener", "Signal"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("module", "name"),
    [(module, name) for module, names in ALSO_IMPORTABLE.items() for name in names],
)
def test_names_0_9_4_modules_imported_stay_importable(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name)


def test_the_tracker_all_is_the_one_circuitbreaker_exposes() -> None:
    from fluxgate.circuitbreaker import All

    assert All is trackers.All


def test_submodules_are_attributes_of_the_package() -> None:
    program = (
        "import fluxgate\n"
        "for name in ('circuitbreaker', 'errors', 'state', 'metric', 'signal', 'windows',\n"
        "             'trackers', 'trippers', 'retries', 'permits', 'listeners'):\n"
        "    assert getattr(fluxgate, name).__name__ == 'fluxgate.' + name, name\n"
        "import sys\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "assert 'httpx' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_package_all_is_unchanged() -> None:
    assert sorted(fluxgate.__all__) == [
        "AsyncCircuitBreaker", "CallNotPermittedError", "CircuitBreaker", "State",
    ]  # fmt: skip


# ---- argument errors, word for word ------------------------------------------------------


def _fallback(error: Exception) -> int:
    return 0


MESSAGES = [
    (lambda: CircuitBreaker(name="x"), "CircuitBreaker.__init__() got an unexpected keyword argument 'name'"),
    (lambda: CircuitBreaker(name="x", slow_threshold=1.0), "CircuitBreaker.__init__() got an unexpected keyword argument 'name'"),
    (lambda: CircuitBreaker(1, 2, 3, 4, 5, 6, 7), "CircuitBreaker.__init__() takes from 1 to 7 positional arguments but 8 were given"),
    (lambda: CircuitBreaker(None, window=None), "CircuitBreaker.__init__() got multiple values for argument 'window'"),
    (lambda: CircuitBreaker().call(), "CircuitBreaker.call() missing 1 required positional argument: 'func'"),
    (lambda: CircuitBreaker().call_with_fallback(print), "CircuitBreaker.call_with_fallback() missing 1 required positional argument: 'fallback'"),
    (lambda: CircuitBreaker().call_with_fallback(), "CircuitBreaker.call_with_fallback() missing 2 required positional arguments: 'func' and 'fallback'"),
    (lambda: CircuitBreaker().info(1), "CircuitBreaker.info() takes 1 positional argument but 2 were given"),
    (lambda: CircuitBreaker().reset(x=1), "CircuitBreaker.reset() got an unexpected keyword argument 'x'"),
    (lambda: CircuitBreaker()(print, _fallback), "CircuitBreaker.__call__() takes from 1 to 2 positional arguments but 3 were given"),
    (lambda: CountWindow(), "CountWindow.__init__() missing 1 required positional argument: 'size'"),
    (lambda: TimeWindow(3).record(), "TimeWindow.record() missing 1 required positional argument: 'record'"),
    (lambda: CountWindow(3).get_metric(1), "CountWindow.get_metric() takes 1 positional argument but 2 were given"),
    (lambda: TypeOf(ValueError, x=1), "TypeOf.__init__() got an unexpected keyword argument 'x'"),
    (lambda: Custom(), "Custom.__init__() missing 1 required positional argument: 'func'"),
    (lambda: trackers.All(1), "All() takes no arguments"),
    (lambda: Closed(1), "Closed() takes no arguments"),
    (lambda: MinRequests(), "MinRequests.__init__() missing 1 required positional argument: 'count'"),
    (lambda: SlowRate(0.5), "SlowRate.__init__() missing 1 required keyword-only argument: 'threshold'"),
    (lambda: SlowRate(0.5, 1.0), "SlowRate.__init__() takes 2 positional arguments but 3 were given"),
    (lambda: FailureRate(0.5)(), "FailureRate.__call__() missing 1 required positional argument: 'ctx'"),
    (lambda: Cooldown(), "Cooldown.__init__() missing 1 required positional argument: 'duration'"),
    (lambda: Backoff(1.0, 2.0, 3.0, 0.1, 5), "Backoff.__init__() takes from 2 to 5 positional arguments but 6 were given"),
    (lambda: Always(1), "Always() takes no arguments"),
    (lambda: Random(), "Random.__init__() missing 1 required positional argument: 'ratio'"),
    (lambda: RampUp(0.1, 0.5), "RampUp.__init__() missing 1 required positional argument: 'duration'"),
    (lambda: RampUp(0.1, 0.5, 1.0)(), "RampUp.__call__() missing 1 required positional argument: 'changed_at'"),
    (lambda: Metric(1), "Metric.__init__() takes 1 positional argument but 2 were given"),
    (lambda: Metric.empty(1), "Metric.empty() takes 1 positional argument but 2 were given"),
    (lambda: Metric.from_record(), "Metric.from_record() missing 1 required positional argument: 'record'"),
    (lambda: Metric.empty().slow_rate(), "Metric.slow_rate() missing 1 required positional argument: 'threshold'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "message"), MESSAGES, ids=[m for _, m in MESSAGES])
def test_argument_errors_read_as_python_words_them(call: Any, message: str) -> None:
    with pytest.raises(TypeError) as raised:
        call()
    assert str(raised.value) == message


def test_a_subclass_reports_the_builtin_method() -> None:
    class Strict(FailureRate):
        pass

    with pytest.raises(TypeError, match=r"^FailureRate.__init__\(\) missing 1 required"):
        Strict()


def test_a_value_error_is_not_replaced() -> None:
    with pytest.raises(ValueError, match="Count must be greater than zero"):
        MinRequests(0)
    with pytest.raises(TypeError, match="size must be"):
        CountWindow("10")  # type: ignore[arg-type]


# ---- signatures ----------------------------------------------------------------------------


def test_class_signatures_carry_0_9_4_annotations() -> None:
    assert str(inspect.signature(CircuitBreaker)) == (
        "(window: 'Window | None' = None, tracker: 'Tracker | None' = None, "
        "tripper: 'Tripper | None' = None, retry: 'Retry | None' = None, "
        "permit: 'Permit | None' = None, listeners: 'Iterable[Listener]' = (), "
        # The one documented addition, keyword-only (SPEC section 0).
        "*, shared: 'HostMemory | None' = None) -> 'None'"
    )
    assert str(inspect.signature(SlowRate)) == "(ratio: 'float', *, threshold: 'float') -> 'None'"
    assert str(inspect.signature(Backoff)) == (
        "(initial: 'float', multiplier: 'float' = 2.0, max_duration: 'float' = 300.0, "
        "jitter_ratio: 'float' = 0.0) -> 'None'"
    )
    assert str(inspect.signature(Closed)) == "()"
    assert "max_half_open_calls: 'int' = 10" in str(inspect.signature(AsyncCircuitBreaker))


def test_method_signatures_carry_0_9_4_annotations() -> None:
    cb = CircuitBreaker()
    assert str(inspect.signature(cb.info)) == "() -> 'CircuitBreakerInfo'"
    assert str(inspect.signature(CircuitBreaker.reset)) == "(self) -> 'None'"
    assert str(inspect.signature(CountWindow.record)) == "(self, record: 'Record') -> 'None'"
    assert str(inspect.signature(TimeWindow(2).get_metric)) == "() -> 'Metric'"
    assert str(inspect.signature(Metric.from_record)) == "(record: 'Record') -> 'Metric'"
    assert str(inspect.signature(Metric.empty().slow_rate)) == (
        "(threshold: 'float') -> 'float | None'"
    )
    assert str(inspect.signature(MinRequests(2))) == "(ctx: 'CallContext') -> 'bool'"
    assert str(inspect.signature(cb)) == (
        "(func: 'Callable[P, R] | None' = None, *, "
        "fallback: 'Callable[[Exception], R] | None' = None) -> "
        "'Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]'"
    )


def test_from_record_takes_its_record_by_keyword() -> None:
    record = Record(success=False, duration=2.0)
    assert Metric.from_record(record=record) == Metric.from_record(record)


def test_a_subclass_shows_its_own_signature() -> None:
    class Strict(FailureRate):
        def __init__(self, name: str) -> None:
            super().__init__(0.1)

        def __call__(self, ctx: CallContext, /) -> bool:
            return True

    class Plain(FailureRate):
        pass

    assert str(inspect.signature(Strict)) == "(name: 'str') -> 'None'"
    assert str(inspect.signature(Strict("x"))) == "(ctx: 'CallContext', /) -> 'bool'"
    assert str(inspect.signature(Plain)) == "(ratio: 'float') -> 'None'"


def test_signed_methods_behave_as_the_native_ones() -> None:
    window = CountWindow(2)
    record = window.record
    record(Record(success=True))
    window.record(record=Record(success=False))
    assert window.get_metric().total_count == 2
    assert CountWindow.get_metric(window) == window.get_metric()
    assert window.record.__name__ == "record"
    assert CountWindow.reset.__qualname__ == "CountWindow.reset"
    with pytest.raises(TypeError):
        CountWindow.reset(TimeWindow(1))


# ---- subclassing ---------------------------------------------------------------------------

SUBCLASS_CASES = [
    (CountWindow, (5,)), (TimeWindow, (5,)),
    (trackers.All, ()), (TypeOf, (ValueError,)), (Custom, (bool,)),
    (Closed, ()), (HalfOpened, ()), (MinRequests, (3,)), (FailureRate, (0.1,)),
    (AvgLatency, (1.0,)), (FailureStreak, (3,)),
    (Always, ()), (Never, ()), (Cooldown, (1.0,)), (Backoff, (1.0,)),
    (permits.All, ()), (Random, (0.5,)), (RampUp, (0.1, 0.5, 10.0)),
]  # fmt: skip


@pytest.mark.parametrize(("base", "args"), SUBCLASS_CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_a_subclass_init_of_any_signature_works(base: type, args: tuple[Any, ...]) -> None:
    class Strict(base):  # type: ignore[misc, valid-type]
        def __init__(self, label: str, *, flag: bool = False) -> None:
            self.label = label
            super().__init__(*args)

    instance = Strict("x", flag=True)
    assert instance.label == "x"
    assert isinstance(instance, base)
    assert "uninitialised" not in repr(instance)


def test_a_slow_rate_subclass_takes_its_own_arguments() -> None:
    class Slow(SlowRate):
        def __init__(self) -> None:
            super().__init__(0.5, threshold=2.0)

    assert (Slow().ratio, Slow().threshold) == (0.5, 2.0)


@pytest.mark.parametrize("breaker_class", BREAKERS)
def test_a_breaker_subclass_init_of_any_signature_works(breaker_class: type) -> None:
    class Named(breaker_class):  # type: ignore[misc, valid-type]
        def __init__(self, name: str) -> None:
            self.name = name
            super().__init__(window=CountWindow(5), tripper=FailureStreak(1))

    cb = Named("payments")
    assert cb.name == "payments"
    assert cb.info().state == "closed"


def test_a_breaker_built_from_subclasses_uses_their_parameters() -> None:
    class Strict(FailureStreak):
        def __init__(self) -> None:
            super().__init__(2)

    cb = CircuitBreaker(tripper=Strict())

    def fail() -> None:
        raise ValueError

    for _ in range(2):
        with pytest.raises(ValueError):
            cb.call(fail)
    assert cb.info().state == "open"


@pytest.mark.parametrize(("base", "args"), SUBCLASS_CASES + [(SlowRate, (0.5,))], ids=lambda v: getattr(v, "__name__", ""))
def test_init_again_is_a_type_error(base: type, args: tuple[Any, ...]) -> None:
    kwargs = {"threshold": 1.0} if base is SlowRate else {}
    instance = base(*args, **kwargs)
    before = repr(instance)
    with pytest.raises(TypeError, match="already initialised"):
        instance.__init__(*args, **kwargs)
    assert repr(instance) == before


@pytest.mark.parametrize("breaker_class", BREAKERS)
def test_init_again_on_a_breaker_is_a_type_error(breaker_class: type) -> None:
    cb = breaker_class(window=CountWindow(3))
    with pytest.raises(TypeError, match="CircuitBreaker object is already initialised"):
        cb.__init__(window=CountWindow(5))  # type: ignore[misc]
    assert cb.info().metrics == Metric.empty()


# ---- uninitialised built-ins (SPEC section 12) --------------------------------------------


@pytest.mark.parametrize(
    ("base", "call"),
    [
        (Cooldown, lambda r: r(0.0, 0)),
        (Backoff, lambda r: r(0.0, 0)),
        (Random, lambda p: p(0.0)),
        (RampUp, lambda p: p(0.0)),
        (MinRequests, lambda t: t(CallContext(metric=Metric.empty(), state="closed", consecutive_failures=0))),
        (SlowRate, lambda t: t(CallContext(metric=Metric.empty(), state="closed", consecutive_failures=0))),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)  # fmt: skip
def test_a_subclass_that_forgot_super_init_says_so(base: type, call: Any) -> None:
    class Forgetful(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            pass

    for instance in (Forgetful(), base.__new__(base)):
        assert repr(instance).startswith("<uninitialised ")
        with pytest.raises(TypeError, match="object is not initialised"):
            call(instance)
        with pytest.raises(TypeError, match="object is not initialised"):
            instance.__reduce__()


def test_a_parameterless_subclass_need_not_call_super_init() -> None:
    class Quiet(Closed):
        def __init__(self, x: int) -> None:
            self.x = x

    ctx = CallContext(metric=Metric.empty(), state="closed", consecutive_failures=0)
    assert Quiet(1)(ctx) is True


def test_a_breaker_with_an_uninitialised_component_fails_clearly() -> None:
    class Forgetful(Cooldown):
        def __init__(self) -> None:
            pass

    cb = CircuitBreaker(retry=Forgetful(), tripper=FailureStreak(1))
    with pytest.raises(ValueError):
        cb.call(_raise)
    with pytest.raises(TypeError, match="Forgetful object is not initialised"):
        cb.call(print)

    class ForgetfulSlow(SlowRate):
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="ForgetfulSlow object is not initialised"):
        CircuitBreaker(tripper=ForgetfulSlow())


def _raise() -> None:
    raise ValueError


def test_an_uninitialised_breaker_says_so() -> None:
    cb = CircuitBreaker.__new__(CircuitBreaker)
    assert repr(cb).startswith("<uninitialised ")
    for use in (lambda: cb.call(print), lambda: cb.info(), lambda: cb.reset(), lambda: cb(print)):
        with pytest.raises(TypeError, match="object is not initialised"):
            use()


def test_a_failed_init_leaves_the_breaker_uninitialised_and_ready_for_another() -> None:
    cb = CircuitBreaker.__new__(CircuitBreaker)
    # Every component is accepted before the listeners are refused.
    with pytest.raises(TypeError, match=r"listeners\[0\] must be callable"):
        cb.__init__(window=CountWindow(2), tripper=SlowRate(0.5, threshold=1.0), listeners=[5])  # type: ignore[misc]
    assert repr(cb).startswith("<uninitialised ")
    with pytest.raises(TypeError, match="object is not initialised"):
        cb.call(print)
    cb.__init__(window=CountWindow(2), tripper=FailureStreak(1))  # type: ignore[misc]
    with pytest.raises(ValueError):
        cb.call(_raise)
    assert cb.info().state == "open"


# ---- classes where instances belong (SPEC section 12) -------------------------------------


class _MyTripper(FailureRate):
    pass


@pytest.mark.parametrize("breaker_class", BREAKERS)
@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("window", CountWindow), ("window", TimeWindow), ("window", windows.Window),
        ("tracker", trackers.All), ("tracker", TypeOf), ("tracker", trackers.Tracker),
        ("tripper", Closed), ("tripper", FailureStreak), ("tripper", _MyTripper),
        ("tripper", trippers.Tripper),
        ("retry", Always), ("retry", Cooldown), ("retry", retries.Retry),
        ("permit", permits.All), ("permit", RampUp), ("permit", permits.Permit),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)  # fmt: skip
def test_a_component_class_is_refused_at_construction(
    breaker_class: type, argument: str, value: type
) -> None:
    with pytest.raises(TypeError, match=rf"^{argument} must be an instance, not the class"):
        breaker_class(**{argument: value})


@pytest.mark.parametrize("breaker_class", BREAKERS)
def test_other_classes_stay_accepted(breaker_class: type) -> None:
    class IsTimeout:
        def __init__(self, exception: Exception) -> None:
            self.verdict = isinstance(exception, TimeoutError)

        def __bool__(self) -> bool:
            return self.verdict

    breaker_class(tracker=IsTimeout)


class _Labelled(FailureRate):
    def __init__(self, label: str) -> None:
        self.label = label
        super().__init__(0.25)


class _Fixed(SlowRate):
    def __init__(self) -> None:
        super().__init__(0.5, threshold=2.0)


class _Named(TypeOf):
    def __init__(self) -> None:
        super().__init__(KeyError, ValueError)


@pytest.mark.parametrize("instance", [_Labelled("x"), _Fixed(), _Named()], ids=repr)
def test_a_subclass_with_its_own_init_pickles_and_copies(instance: Any) -> None:
    import copy
    import pickle

    for clone in (pickle.loads(pickle.dumps(instance)), copy.copy(instance), copy.deepcopy(instance)):
        assert type(clone) is type(instance)
        assert repr(clone) == repr(instance)
        assert vars(clone) == vars(instance)
