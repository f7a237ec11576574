"""Misuse of the synchronous CircuitBreaker caught early (SPEC.md section 12,
DESIGN.md D9): async functions, coroutine results, non-callables, and bad
constructor or call arguments."""

from __future__ import annotations

import gc
import inspect
import warnings
from collections.abc import Coroutine
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker, CircuitBreaker, permits
from fluxgate.metric import Metric
from fluxgate.retries import Always
from fluxgate.trackers import All, TypeOf
from fluxgate.trippers import FailureStreak, MinRequests
from fluxgate.windows import CountWindow


class Boom(Exception):
    """What the protected function raises."""


def boom() -> None:
    raise Boom("boom")


def counts(cb: CircuitBreaker) -> tuple[int, int]:
    m = cb.info().metrics
    return m.total_count, m.failure_count


def make_breaker(**config: Any) -> CircuitBreaker:
    config.setdefault("window", CountWindow(10))
    config.setdefault("tripper", MinRequests(1_000_000))
    return CircuitBreaker(**config)


async def fetch(x: int) -> int:
    return x


# ---- async functions -----------------------------------------------------------


@pytest.mark.parametrize(
    "decorate",
    [
        pytest.param(lambda cb, f: cb(f), id="@cb"),
        pytest.param(lambda cb, f: cb()(f), id="@cb()"),
        pytest.param(lambda cb, f: cb(fallback=print)(f), id="@cb(fallback=f)"),
        pytest.param(lambda cb, f: cb(f, fallback=print), id="cb(func, fallback=f)"),
        pytest.param(lambda cb, f: cb(func=f), id="cb(func=f)"),
    ],
)
def test_decorating_an_async_function_names_async_circuit_breaker(decorate: Any) -> None:
    cb = make_breaker()
    with pytest.raises(TypeError, match="AsyncCircuitBreaker"):
        decorate(cb, fetch)


def test_decorating_an_async_method_is_refused() -> None:
    cb = make_breaker()
    with pytest.raises(TypeError, match="AsyncCircuitBreaker"):

        class Client:
            @cb
            async def get(self) -> None: ...


def returns_coroutine(holder: list[Any], ran: list[int]) -> Any:
    """A plain function returning a coroutine object."""

    async def body() -> None:
        ran.append(1)

    coroutine = body()
    holder.append(coroutine)
    return coroutine


@pytest.mark.parametrize("state", ["closed", "open", "metrics_only", "disabled"])
def test_a_coroutine_result_is_closed_and_refused(state: str) -> None:
    asked: list[BaseException] = []

    def tracker(exception: BaseException) -> bool:
        asked.append(exception)
        return True

    cb = make_breaker(
        tracker=tracker, tripper=FailureStreak(1), retry=Always(), permit=permits.All()
    )
    if state == "open":
        with pytest.raises(Boom):
            cb.call(boom)
        asked.clear()
    elif state == "metrics_only":
        cb.metrics_only()
    elif state == "disabled":
        cb.disable()
    before = cb.info()
    holder: list[Any] = []
    ran: list[int] = []
    with pytest.raises(TypeError):
        cb.call(returns_coroutine, holder, ran)
    assert ran == []
    assert inspect.getcoroutinestate(holder[0]) == inspect.CORO_CLOSED
    assert asked == []
    after = cb.info()
    if state == "open":
        # The call moved the breaker to HALF_OPEN, ran there, and left no record.
        assert after.state == "half_open"
        assert after.metrics == Metric.empty()
    else:
        assert after == before


def test_calling_an_async_function_is_refused_without_a_warning() -> None:
    cb = make_breaker()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError):
            cb.call(fetch, 1)  # type: ignore[unused-coroutine]
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert counts(cb) == (0, 0)


def test_a_decorated_function_returning_a_coroutine_is_refused() -> None:
    cb = make_breaker()
    holder: list[Coroutine[Any, Any, None]] = []
    ran: list[int] = []
    protected = cb(returns_coroutine)
    with pytest.raises(TypeError):
        protected(holder, ran)
    assert ran == []
    assert inspect.getcoroutinestate(holder[0]) == inspect.CORO_CLOSED
    assert counts(cb) == (0, 0)


# ---- calling what is not callable ----------------------------------------------


def test_calling_a_non_callable_is_a_tracked_failure() -> None:
    cb = make_breaker(tracker=All())
    with pytest.raises(TypeError, match="'int' object is not callable"):
        cb.call(42)  # type: ignore[arg-type]
    assert counts(cb) == (1, 1)


def test_calling_a_non_callable_is_up_to_the_tracker() -> None:
    cb = make_breaker(tracker=TypeOf(Boom))
    with pytest.raises(TypeError, match="'int' object is not callable"):
        cb.call(42)  # type: ignore[arg-type]
    assert counts(cb) == (0, 0)


def test_a_non_callable_fallback_target_goes_to_the_fallback() -> None:
    cb = make_breaker()
    received: list[Exception] = []
    assert cb.call_with_fallback(42, received.append) is None  # type: ignore[arg-type]
    assert [type(e) for e in received] == [TypeError]


def test_decorating_a_non_callable_names_func() -> None:
    cb = make_breaker()
    with pytest.raises(TypeError, match="func"):
        cb(42)  # type: ignore[call-overload]


def test_a_non_callable_fallback_is_named() -> None:
    cb = make_breaker()
    with pytest.raises(TypeError, match="fallback"):
        cb(fallback=42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="fallback"):
        cb(print, fallback=42)  # type: ignore[call-overload]


# ---- bad arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("window", object()),
        ("window", 42),
        ("tracker", 42),
        ("tripper", 42),
        ("retry", 42),
        ("permit", 42),
        ("listeners", [42]),
        ("listeners", [print, "not callable"]),
        ("listeners", 42),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_bad_constructor_arguments_name_the_argument(argument: str, value: Any) -> None:
    with pytest.raises(TypeError, match=argument):
        CircuitBreaker(**{argument: value})


def test_a_window_missing_a_method_is_refused() -> None:
    class HalfWindow:
        def record(self, record: Any) -> None: ...

        def get_metric(self) -> Any: ...

    with pytest.raises(TypeError, match="window"):
        CircuitBreaker(window=HalfWindow())


def test_unknown_constructor_arguments() -> None:
    with pytest.raises(TypeError):
        CircuitBreaker(name="payments")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CircuitBreaker(None, None, None, None, None, (), None)  # type: ignore[call-arg]


def test_bad_call_arguments() -> None:
    cb = make_breaker()
    with pytest.raises(TypeError):
        cb.call()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cb.call_with_fallback(print)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cb(print, unknown=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        cb(print, print)  # type: ignore[call-overload]  # fallback is keyword-only
    assert counts(cb) == (0, 0)


def test_commands_take_no_arguments() -> None:
    cb = make_breaker()
    for command in (cb.reset, cb.disable, cb.metrics_only, cb.force_open, cb.info):
        with pytest.raises(TypeError):
            command(1)  # type: ignore[call-arg]
    assert cb.info().state == "closed"


class MetriclessWindow(CountWindow):
    """A user window whose get_metric() returns something else."""

    def get_metric(self) -> Any:
        return 42


def test_a_window_metric_that_is_not_a_metric_is_refused_by_calls_and_info() -> None:
    message = "window.get_metric() must return a Metric, not int"
    cb = CircuitBreaker(window=MetriclessWindow(10), tripper=MinRequests(1))
    with pytest.raises(TypeError) as raised:
        cb.call(int, "1")
    assert str(raised.value) == message
    with pytest.raises(TypeError) as raised:
        cb.info()
    assert str(raised.value) == message
    with pytest.raises(TypeError) as raised:
        AsyncCircuitBreaker(window=MetriclessWindow(10)).info()
    assert str(raised.value) == message
