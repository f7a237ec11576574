"""User components that raise, in both breakers (SPEC.md sections 4, 8, 9
and 12): a tracker, tripper, retry, permit, each window method, a fallback,
a listener (sync and async), and BaseExceptions from the protected function
or a component. The exception reaches the caller (a listener's Exception is
logged and the other listeners still run), and the breaker stays consistent:
no record lost or half-applied, no transition half-made, every transition
signalled once, in order, before the call or command returns, and the next
call works. test_breaker_recording.py has the basic synchronous cases; this
file runs every case through both breakers, with an Exception, a custom
BaseException and SystemExit.

In the asynchronous breaker HALF_OPEN admits one call at a time here, so a
slot left taken by an error would make the next HALF_OPEN call wait forever
(each call has a timeout)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.metric import Metric, Record
from fluxgate.permits import All as PermitAll
from fluxgate.permits import Permit
from fluxgate.retries import Always, Never, Retry
from fluxgate.signal import Signal
from fluxgate.trackers import Tracker
from fluxgate.trippers import CallContext, FailureStreak, MinRequests, Tripper
from fluxgate.windows import CountWindow, Window


class Boom(Exception):
    """What a failing protected call raises."""


class Oops(Exception):
    """What a broken component raises."""


class Halt(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


ERRORS = [Oops, Halt, SystemExit]


def make_error(error_type: type[BaseException]) -> BaseException:
    return error_type(f"{error_type.__name__} from a component")


class Arm:
    """Raises its error from wherever fire() is called, while armed."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.armed = False
        self.fired = 0

    def fire(self) -> None:
        if self.armed:
            self.fired += 1
            raise self.error


# ---- driving both breakers the same way ------------------------------------------


class Driver:
    """A breaker of either kind, driven synchronously, with a listener
    recording every signal."""

    def __init__(self, kind: str, **config: Any) -> None:
        self.kind = kind
        self.signals: list[Signal] = []
        listeners = [*config.pop("listeners", ()), self.signals.append]
        self.cb: Any
        if kind == "sync":
            self.cb = CircuitBreaker(listeners=listeners, **config)
            self.loop = None
        else:
            self.cb = AsyncCircuitBreaker(listeners=listeners, max_half_open_calls=1, **config)
            self.loop = asyncio.new_event_loop()

    def _run(self, awaitable: Any) -> Any:
        """Await in this driver's loop; a call still waiting after 10 s is
        cancelled. What the awaitable raises is caught inside the task and
        raised here: asyncio lets a SystemExit or KeyboardInterrupt escape
        from the task that raised it and out of the loop, leaving the loop's
        other work pending."""
        loop = self.loop
        assert loop is not None

        async def guarded() -> tuple[bool, Any]:
            task = asyncio.current_task()
            assert task is not None
            timeout = loop.call_later(10, task.cancel)
            try:
                return True, await awaitable
            except BaseException as error:  # noqa: BLE001 - raised below
                return False, error
            finally:
                timeout.cancel()

        returned, value = loop.run_until_complete(guarded())
        if not returned:
            raise value
        return value

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.loop is None:
            return self.cb.call(func, *args)

        async def protected() -> Any:
            return func(*args)

        return self._run(self.cb.call(protected))

    def call_with_fallback(
        self, func: Callable[..., Any], fallback: Callable[[Exception], Any]
    ) -> Any:
        if self.loop is None:
            return self.cb.call_with_fallback(func, fallback)

        async def protected() -> Any:
            return func()

        return self._run(self.cb.call_with_fallback(protected, fallback))

    def decorated(self, func: Callable[[], Any], fallback: Callable[[Exception], Any]) -> Any:
        if self.loop is None:
            return self.cb(fallback=fallback)(func)()

        async def protected() -> Any:
            return func()

        return self._run(self.cb(fallback=fallback)(protected)())

    def command(self, name: str) -> None:
        result = getattr(self.cb, name)()
        if self.loop is not None:
            self._run(result)

    def info(self) -> Any:
        return self.cb.info()

    def state(self) -> str:
        state: str = self.cb.info().state
        return state

    def transitions(self) -> list[tuple[str, str]]:
        return [(s.old_state, s.new_state) for s in self.signals]

    def counts(self) -> tuple[int, int]:
        metrics = self.cb.info().metrics
        return metrics.total_count, metrics.failure_count

    def assert_consistent(self) -> None:
        """Every transition was signalled, in order, ending where the breaker is."""
        info = self.cb.info()
        if not self.signals:
            assert info.state == "closed"
            return
        assert self.signals[0].old_state == "closed"
        for previous, current in zip(self.signals, self.signals[1:]):
            assert current.old_state == previous.new_state
        assert self.signals[-1].new_state == info.state
        assert self.signals[-1].timestamp == info.changed_at

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ERRORS, ids=lambda t: t.__name__)
def error(request: pytest.FixtureRequest) -> BaseException:
    return make_error(request.param)


@pytest.fixture
def drivers(kind: str) -> Iterator[Callable[..., Driver]]:
    made: list[Driver] = []

    def make(**config: Any) -> Driver:
        driver = Driver(kind, **config)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


def ok(value: object = "ok") -> object:
    return value


def boom() -> None:
    raise Boom("boom")


def fail(d: Driver) -> None:
    with pytest.raises(Boom):
        d.call(boom)


def trip(d: Driver) -> None:
    """Open a breaker whose tripper opens after two failures in a row."""
    fail(d)
    fail(d)
    assert d.state() == "open"


# ---- trackers ----------------------------------------------------------------------


class ArmedTracker(Tracker):
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def __call__(self, exception: Exception) -> bool:
        self.arm.fire()
        return isinstance(exception, Boom)


@pytest.mark.parametrize("state", ["closed", "half_open", "metrics_only"])
def test_a_raising_tracker_records_nothing_and_keeps_the_streak(
    drivers: Callable[..., Driver], error: BaseException, state: str
) -> None:
    arm = Arm(error)
    d = drivers(
        tracker=ArmedTracker(arm), tripper=FailureStreak(2),
        retry=Always(), permit=PermitAll(),
    )  # fmt: skip
    if state == "half_open":
        trip(d)  # the next call moves OPEN to HALF_OPEN, with a streak of zero
    else:
        if state == "metrics_only":
            d.command("metrics_only")
        fail(d)  # a streak of one
    before = d.counts()
    arm.armed = True
    original = Boom("original")

    def raiser() -> None:
        raise original

    with pytest.raises(type(error)) as caught:
        d.call(raiser)
    assert caught.value is error
    assert caught.value.__context__ is original
    assert d.state() == state
    assert d.counts() == ((0, 0) if state == "half_open" else before)
    d.assert_consistent()
    arm.armed = False
    # The streak was neither extended nor reset by the raising call.
    if state == "half_open":
        fail(d)
        assert d.state() == "half_open"  # a streak of one
        fail(d)
        assert d.state() == "open"
        assert d.info().reopens == 1
    elif state == "closed":
        fail(d)
        assert d.state() == "open"  # a streak of two
    else:
        fail(d)
        assert d.state() == "metrics_only"
        assert d.counts() == (before[0] + 1, before[1] + 1)
    d.assert_consistent()


# ---- trippers ----------------------------------------------------------------------


class ArmedTripper(Tripper):
    """Opens after two failures in a row; raises while armed."""

    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.seen: list[CallContext] = []

    def __call__(self, ctx: CallContext) -> bool:
        self.seen.append(ctx)
        self.arm.fire()
        return ctx.consecutive_failures >= 2


@pytest.mark.parametrize("outcome", ["success", "failure"])
@pytest.mark.parametrize("composite", [False, True], ids=["alone", "composite"])
def test_a_raising_tripper_keeps_the_record_and_makes_no_transition(
    drivers: Callable[..., Driver], error: BaseException, outcome: str, composite: bool
) -> None:
    arm = Arm(error)
    tripper = ArmedTripper(arm)
    d = drivers(tripper=MinRequests(1) & tripper if composite else tripper)
    fail(d)
    arm.armed = True
    with pytest.raises(type(error)) as caught:
        d.call(ok) if outcome == "success" else d.call(boom)
    assert caught.value is error
    assert arm.fired == 1
    # The outcome was recorded before the tripper ran, and stays recorded.
    assert d.counts() == ((2, 2) if outcome == "failure" else (2, 1))
    assert tripper.seen[-1].consecutive_failures == (2 if outcome == "failure" else 0)
    assert d.state() == "closed"
    assert d.signals == []
    arm.armed = False
    assert d.call(ok, 1) == 1
    fail(d)
    fail(d)
    assert d.state() == "open"
    d.assert_consistent()


def test_a_raising_tripper_in_half_open_leaves_it_half_open(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    arm = Arm(error)
    d = drivers(tripper=ArmedTripper(arm), retry=Always(), permit=PermitAll())
    trip(d)
    arm.armed = True
    with pytest.raises(type(error)) as caught:
        d.call(ok)  # OPEN -> HALF_OPEN, runs, then the tripper raises
    assert caught.value is error
    assert d.state() == "half_open"
    assert d.counts() == (1, 0)
    arm.armed = False
    assert d.call(ok, 2) == 2  # the slot was given back; this one closes it
    assert d.state() == "closed"
    assert d.transitions() == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    d.assert_consistent()


# ---- retries and permits -------------------------------------------------------------


class ArmedRetry(Retry):
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def __call__(self, changed_at: float, reopens: int) -> bool:
        self.arm.fire()
        return True


class ArmedPermit(Permit):
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def __call__(self, changed_at: float) -> bool:
        self.arm.fire()
        return True


def test_a_raising_retry_keeps_the_breaker_open(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    arm = Arm(error)
    d = drivers(tripper=FailureStreak(2), retry=ArmedRetry(arm), permit=PermitAll())
    trip(d)
    arm.armed = True
    ran: list[int] = []
    with pytest.raises(type(error)) as caught:
        d.call(ran.append, 1)
    assert caught.value is error
    assert ran == []
    assert d.state() == "open"
    assert d.transitions() == [("closed", "open")]
    arm.armed = False
    assert d.call(ok, 3) == 3
    assert d.state() == "closed"
    d.assert_consistent()


def test_a_raising_permit_admits_nothing_and_frees_the_slot(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    arm = Arm(error)
    d = drivers(tripper=FailureStreak(2), retry=Always(), permit=ArmedPermit(arm))
    trip(d)
    arm.armed = True
    ran: list[int] = []
    for _ in range(2):  # a slot kept by the first would hang the second
        with pytest.raises(type(error)) as caught:
            d.call(ran.append, 1)
        assert caught.value is error
    assert ran == []
    # The move to HALF_OPEN came before the permit, and was signalled.
    assert d.state() == "half_open"
    assert d.transitions() == [("closed", "open"), ("open", "half_open")]
    assert d.counts() == (0, 0)
    arm.armed = False
    assert d.call(ok, 4) == 4
    assert d.state() == "closed"
    d.assert_consistent()


# ---- window methods ----------------------------------------------------------------


class ArmedWindow(Window):
    """A CountWindow behind the Window interface; each method can be armed."""

    def __init__(self, error: BaseException) -> None:
        self.inner = CountWindow(100)
        self.arms = {name: Arm(error) for name in ("record", "get_metric", "reset")}

    def record(self, record: Record) -> None:
        self.arms["record"].fire()
        self.inner.record(record)

    def get_metric(self) -> Metric:
        self.arms["get_metric"].fire()
        return self.inner.get_metric()

    def reset(self) -> None:
        self.inner.reset()  # the records are gone even when reset() then fails
        self.arms["reset"].fire()


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_a_raising_window_record_records_nothing(
    drivers: Callable[..., Driver], error: BaseException, outcome: str
) -> None:
    window = ArmedWindow(error)
    d = drivers(window=window, tripper=FailureStreak(2))
    fail(d)
    window.arms["record"].armed = True
    with pytest.raises(type(error)) as caught:
        d.call(ok) if outcome == "success" else d.call(boom)
    assert caught.value is error
    window.arms["record"].armed = False
    assert d.counts() == (1, 1)
    assert d.state() == "closed"
    # Not recorded at all: the streak is still one, neither reset nor extended.
    fail(d)
    assert d.state() == "open"
    d.assert_consistent()


def test_a_raising_window_get_metric_keeps_the_record(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    window = ArmedWindow(error)
    d = drivers(window=window, tripper=FailureStreak(2) & MinRequests(1))
    fail(d)
    window.arms["get_metric"].armed = True
    with pytest.raises(type(error)) as caught:
        d.call(boom)  # recorded, then the tripper needs the metric
    assert caught.value is error
    with pytest.raises(type(error)):
        d.info()
    window.arms["get_metric"].armed = False
    assert d.counts() == (2, 2)
    assert d.state() == "closed"
    assert d.call(ok, 5) == 5
    fail(d)
    fail(d)
    assert d.state() == "open"
    d.assert_consistent()


def test_a_raising_window_reset_in_a_command_still_transitions_and_signals(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    window = ArmedWindow(error)
    d = drivers(window=window, tripper=FailureStreak(2))
    fail(d)
    window.arms["reset"].armed = True
    for command, state in [("force_open", "forced_open"), ("metrics_only", "metrics_only"),
                           ("disable", "disabled"), ("reset", "closed")]:  # fmt: skip
        with pytest.raises(type(error)) as caught:
            d.command(command)
        assert caught.value is error
        assert d.state() == state
        # The listeners heard of it before the command raised.
        assert d.transitions()[-1][1] == state
        assert d.counts() == (0, 0)
    window.arms["reset"].armed = False
    assert len(d.signals) == 4
    assert d.call(ok, 6) == 6
    assert d.counts() == (1, 0)
    d.assert_consistent()


def test_a_raising_window_reset_in_automatic_transitions(
    drivers: Callable[..., Driver], error: BaseException
) -> None:
    window = ArmedWindow(error)
    d = drivers(window=window, tripper=FailureStreak(2), retry=Always(), permit=PermitAll())
    fail(d)
    window.arms["reset"].armed = True
    original = Boom("tripping")

    def raiser() -> None:
        raise original

    # CLOSED -> OPEN after the call's failure: the reset's error replaces it.
    with pytest.raises(type(error)) as caught:
        d.call(raiser)
    assert caught.value is error
    assert caught.value.__context__ is original
    assert d.state() == "open"
    assert d.transitions() == [("closed", "open")]
    # OPEN -> HALF_OPEN on admission: the call does not run.
    ran: list[int] = []
    with pytest.raises(type(error)):
        d.call(ran.append, 1)
    assert ran == []
    assert d.state() == "half_open"
    assert d.transitions() == [("closed", "open"), ("open", "half_open")]
    # HALF_OPEN -> CLOSED after a success: the result is lost to the error.
    with pytest.raises(type(error)):
        d.call(ok)
    assert d.state() == "closed"
    assert d.info().reopens == 0
    window.arms["reset"].armed = False
    assert d.counts() == (0, 0)
    assert d.call(ok, 7) == 7
    assert d.counts() == (1, 0)
    d.assert_consistent()


# ---- the protected function ------------------------------------------------------------


@pytest.mark.parametrize("error_type", [Halt, SystemExit, KeyboardInterrupt])
@pytest.mark.parametrize("state", ["closed", "half_open", "metrics_only", "disabled"])
def test_a_base_exception_from_the_protected_function_passes_through_unrecorded(
    drivers: Callable[..., Driver], error_type: type[BaseException], state: str
) -> None:
    error = error_type()
    d = drivers(tripper=FailureStreak(2), retry=Always(), permit=PermitAll())
    fail(d)
    if state == "half_open":
        fail(d)
    elif state != "closed":
        d.command("disable" if state == "disabled" else "metrics_only")
    before = d.counts()

    def raiser() -> None:
        raise error

    for _ in range(2):  # a HALF_OPEN slot kept by the first would hang the second
        with pytest.raises(type(error)) as caught:
            d.call(raiser)
        assert caught.value is error
    assert d.state() == state
    assert d.counts() == ((0, 0) if state == "half_open" else before)
    # Not a failure: the streak (one, or zero in HALF_OPEN) was not extended.
    fail(d)
    if state == "half_open":
        assert d.state() == "half_open"
        fail(d)
    assert d.state() == {"closed": "open", "half_open": "open"}.get(state, state)
    d.assert_consistent()


# ---- fallbacks ---------------------------------------------------------------------


@pytest.mark.parametrize("via", ["call_with_fallback", "decorator"])
def test_a_raising_fallback_reaches_the_caller_after_the_outcome_is_recorded(
    drivers: Callable[..., Driver], error: BaseException, via: str
) -> None:
    d = drivers(tripper=FailureStreak(2), retry=Never())
    received: list[Exception] = []

    def fallback(exception: Exception) -> Any:
        received.append(exception)
        raise error

    run = d.call_with_fallback if via == "call_with_fallback" else d.decorated
    with pytest.raises(type(error)) as caught:
        run(boom, fallback)
    assert caught.value is error
    assert isinstance(received[0], Boom)
    assert caught.value.__context__ is received[0]
    assert d.counts() == (1, 1)
    with pytest.raises(type(error)):
        run(boom, fallback)  # the second failure in a row trips it
    assert d.state() == "open"
    with pytest.raises(type(error)) as caught:
        run(ok, fallback)
    assert isinstance(received[-1], CallNotPermittedError)
    assert str(received[-1]) == "Circuit breaker is open"
    # A success never reaches the fallback.
    d.command("reset")
    assert run(ok, fallback) == "ok"
    assert len(received) == 3
    d.assert_consistent()


# ---- listeners -----------------------------------------------------------------------


class Raising:
    """A listener that raises for every signal."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, signal: Signal, /) -> None:
        raise self.error


class AsyncRaising:
    """A listener whose coroutine raises for every signal."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __call__(self, signal: Signal, /) -> None:
        await asyncio.sleep(0)
        raise self.error


def fluxgate_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "fluxgate" and r.levelno == logging.ERROR
    ]


@pytest.mark.parametrize(
    ("kind", "listener_kind"),
    [("sync", "sync"), ("async", "sync"), ("async", "async")],
    ids=["sync-breaker", "async-breaker-sync-listener", "async-breaker-async-listener"],
)  # a sync breaker drops async listeners: test_breaker_listeners.py
def test_a_listener_raising_an_exception_is_logged_and_the_others_run(
    drivers: Callable[..., Driver], listener_kind: str, kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    error = Oops("listener failed")
    before: list[Signal] = []
    listener = Raising(error) if listener_kind == "sync" else AsyncRaising(error)
    d = drivers(tripper=FailureStreak(1), retry=Never(), listeners=[before.append, listener])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        fail(d)  # CLOSED -> OPEN
        d.command("force_open")
        d.command("reset")
    name = type(listener).__name__
    assert fluxgate_errors(caplog) == [f"Listener {name} failed"] * 3
    records = [r for r in caplog.records if r.name == "fluxgate"]
    assert all(r.exc_info is not None and r.exc_info[1] is error for r in records)
    assert before == d.signals
    assert d.transitions() == [("closed", "open"), ("open", "forced_open"), ("forced_open", "closed")]
    assert d.call(ok, 8) == 8
    d.assert_consistent()


@pytest.mark.parametrize(
    ("kind", "listener_kind"),
    [("sync", "sync"), ("async", "sync"), ("async", "async")],
    ids=["sync-breaker", "async-breaker-sync-listener", "async-breaker-async-listener"],
)  # a sync breaker drops async listeners: test_breaker_listeners.py
def test_a_listener_raising_a_base_exception_propagates_after_the_transition(
    drivers: Callable[..., Driver], kind: str, listener_kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    error = Halt("listener halted")
    arm = Arm(error)
    heard: list[Signal] = []

    def sync_listener(signal: Signal, /) -> None:
        heard.append(signal)
        arm.fire()

    async def async_listener(signal: Signal, /) -> None:
        heard.append(signal)
        await asyncio.sleep(0)
        arm.fire()

    d = drivers(
        tripper=FailureStreak(1), retry=Never(),
        listeners=[sync_listener if listener_kind == "sync" else async_listener],
    )  # fmt: skip
    arm.armed = True
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        with pytest.raises(Halt) as caught:
            d.command("force_open")
    assert caught.value is error
    assert fluxgate_errors(caplog) == []  # not swallowed, so not logged
    assert d.state() == "forced_open"
    assert [s.new_state for s in heard] == ["forced_open"]
    arm.armed = False
    # Later transitions are signalled as usual, in order.
    d.command("reset")
    fail(d)
    assert [(s.old_state, s.new_state) for s in heard] == [
        ("closed", "forced_open"), ("forced_open", "closed"), ("closed", "open"),
    ]  # fmt: skip
    assert d.transitions()[-2:] == [("forced_open", "closed"), ("closed", "open")]
    assert d.state() == "open"
