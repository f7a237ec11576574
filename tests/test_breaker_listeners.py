"""Listeners of the synchronous CircuitBreaker (SPEC.md section 8): notified
after each transition, exactly once, in order; failures and coroutines
logged on the ``fluxgate`` logger; listeners may call back into the breaker."""

from __future__ import annotations

import functools
import gc
import logging
import threading
import warnings
from typing import Any

import pytest
from freezegun import freeze_time

from fluxgate import CircuitBreaker, permits
from fluxgate.retries import Always
from fluxgate.signal import Signal
from fluxgate.trippers import FailureStreak
from fluxgate.windows import CountWindow

FROZEN_AT = "2024-01-01 00:00:00"
T0 = 1704067200.0
COROUTINE_MESSAGE = (
    "Listener {} returned a coroutine; async listeners require AsyncCircuitBreaker. "
    "The notification was dropped."
)


class Boom(Exception):
    """What the protected function raises."""


def boom() -> None:
    raise Boom("boom")


def fail(cb: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            cb.call(boom)


def make_breaker(*listeners: Any) -> CircuitBreaker:
    """Trips on one failure, retries at once, admits every HALF_OPEN call."""
    return CircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=Always(),
        permit=permits.All(),
        listeners=listeners,
    )


def cycle(cb: CircuitBreaker) -> None:
    """closed -> open -> half_open -> open -> half_open -> closed."""
    fail(cb)
    fail(cb)
    cb.call(lambda: None)


CYCLE = [
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
]


def transitions(signals: list[Signal]) -> list[tuple[str, str]]:
    return [(s.old_state, s.new_state) for s in signals]


def fluxgate_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fluxgate" and r.levelno == logging.ERROR]


# ---- delivery ------------------------------------------------------------------


def test_each_transition_once_in_order_with_changed_at() -> None:
    signals: list[Signal] = []
    with freeze_time(FROZEN_AT) as frozen:
        cb = make_breaker(signals.append)
        frozen.tick(1)
        fail(cb)
        frozen.tick(1)
        fail(cb)
        frozen.tick(1)
        cb.call(lambda: None)
        frozen.tick(1)
        cb.disable()
        cb.metrics_only()
        cb.force_open()
        cb.reset()
        cb.reset()
    assert signals == [
        Signal("closed", "open", T0 + 1),
        Signal("open", "half_open", T0 + 2),
        Signal("half_open", "open", T0 + 2),
        Signal("open", "half_open", T0 + 3),
        Signal("half_open", "closed", T0 + 3),
        Signal("closed", "disabled", T0 + 4),
        Signal("disabled", "metrics_only", T0 + 4),
        Signal("metrics_only", "forced_open", T0 + 4),
        Signal("forced_open", "closed", T0 + 4),
        Signal("closed", "closed", T0 + 4),
    ]
    assert all(type(s) is Signal for s in signals)


def test_the_timestamp_is_changed_at() -> None:
    pairs: list[tuple[float, float]] = []

    def listener(signal: Signal) -> None:
        pairs.append((signal.timestamp, cb.info().changed_at))

    cb = make_breaker(listener)
    cycle(cb)
    cb.force_open()
    assert len(pairs) == 6
    assert all(timestamp == changed_at for timestamp, changed_at in pairs)


def test_listeners_run_in_order_for_each_signal() -> None:
    calls: list[tuple[str, str]] = []
    cb = make_breaker(
        lambda signal: calls.append(("first", signal.new_state)),
        lambda signal: calls.append(("second", signal.new_state)),
        lambda signal: calls.append(("third", signal.new_state)),
    )
    fail(cb)
    cb.reset()
    assert calls == [
        ("first", "open"),
        ("second", "open"),
        ("third", "open"),
        ("first", "closed"),
        ("second", "closed"),
        ("third", "closed"),
    ]


def test_listeners_run_after_the_transition_is_complete() -> None:
    seen: list[tuple[str, str, int]] = []

    def listener(signal: Signal) -> None:
        info = cb.info()
        seen.append((signal.new_state, info.state, info.metrics.total_count))

    cb = make_breaker(listener)
    cb.call(lambda: None)
    cycle(cb)
    assert seen == [(new, new, 0) for _, new in CYCLE]


def test_no_transition_no_signal() -> None:
    signals: list[Signal] = []
    cb = CircuitBreaker(listeners=[signals.append])
    for _ in range(10):
        cb.call(lambda: None)
    assert signals == []


def test_positional_only_listener_and_any_iterable() -> None:
    received: list[Signal] = []

    def positional(signal: Signal, /) -> None:
        received.append(signal)

    cb = make_breaker(*(listener for listener in [positional]))
    cb.force_open()
    assert transitions(received) == [("closed", "forced_open")]


def test_a_listener_result_is_ignored() -> None:
    cb = make_breaker(lambda signal: 42)
    cb.force_open()
    assert cb.info().state == "forced_open"


# ---- listeners that raise ------------------------------------------------------


class Broken:
    def __call__(self, signal: Signal) -> None:
        raise RuntimeError(f"broken on {signal.new_state}")


def broken_function(signal: Signal) -> None:
    raise RuntimeError(f"broken on {signal.new_state}")


@pytest.mark.parametrize(
    ("listener", "name"),
    [
        (Broken(), "Broken"),
        (broken_function, "function"),
        (lambda signal: 1 / 0, "function"),
        (functools.partial(broken_function), "partial"),
    ],
    ids=["instance", "function", "lambda", "partial"],
)
def test_a_raising_listener_is_logged_and_the_next_still_runs(
    listener: Any, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[Signal] = []
    cb = make_breaker(listener, after.append)
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        fail(cb)  # the call is not affected
        cb.reset()
    assert transitions(after) == [("closed", "open"), ("open", "closed")]
    errors = fluxgate_errors(caplog)
    assert [r.getMessage() for r in errors] == [f"Listener {name} failed"] * 2
    for record in errors:
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], (RuntimeError, ZeroDivisionError))
        assert record.exc_info[2] is not None
        assert record.exc_text or "Traceback" in caplog.text
    assert cb.info().state == "closed"


def test_a_raising_listener_reaches_the_root_logger(caplog: pytest.LogCaptureFixture) -> None:
    cb = make_breaker(Broken())
    with caplog.at_level(logging.ERROR):
        cb.force_open()
    assert "Listener Broken failed" in caplog.text
    assert "RuntimeError: broken on forced_open" in caplog.text


# ---- coroutine listeners -------------------------------------------------------


def test_an_async_function_listener_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[Signal] = []
    after: list[Signal] = []

    async def on_signal(signal: Signal) -> None:
        ran.append(signal)

    cb = make_breaker(on_signal, after.append)  # accepted at construction
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.ERROR, logger="fluxgate"):
            cb.force_open()
            cb.reset()
        gc.collect()
    assert ran == []
    assert transitions(after) == [("closed", "forced_open"), ("forced_open", "closed")]
    assert [r.getMessage() for r in fluxgate_errors(caplog)] == [
        COROUTINE_MESSAGE.format(on_signal.__qualname__)
    ] * 2
    assert on_signal.__qualname__.endswith("<locals>.on_signal")
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_a_class_with_async_call_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[Signal] = []
    coroutines: list[Any] = []

    class AsyncCallListener:
        def __call__(self, signal: Signal) -> Any:
            coroutine = self.notify(signal)
            coroutines.append(coroutine)
            return coroutine

        async def notify(self, signal: Signal) -> None:
            ran.append(signal)

    cb = make_breaker(AsyncCallListener())
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        cb.force_open()
    assert ran == []
    assert [r.getMessage() for r in fluxgate_errors(caplog)] == [
        COROUTINE_MESSAGE.format("AsyncCallListener")
    ]
    assert len(coroutines) == 1
    assert coroutines[0].cr_frame is None  # closed without running


def test_a_class_with_async_dunder_call_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[Signal] = []

    class AsyncListener:
        async def __call__(self, signal: Signal) -> None:
            ran.append(signal)

    cb = make_breaker(AsyncListener())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.ERROR, logger="fluxgate"):
            cb.force_open()
        gc.collect()
    assert ran == []
    assert [r.getMessage() for r in fluxgate_errors(caplog)] == [
        COROUTINE_MESSAGE.format("AsyncListener")
    ]
    assert not [w for w in caught if "never awaited" in str(w.message)]


# ---- listeners calling back into the breaker ----------------------------------


def test_a_listener_may_call_info_and_reset() -> None:
    first: list[Signal] = []
    second: list[Signal] = []
    states: list[str] = []

    def resetting(signal: Signal) -> None:
        first.append(signal)
        states.append(cb.info().state)
        if signal.new_state == "open":
            cb.reset()
            states.append(cb.info().state)

    cb = make_breaker(resetting, second.append)

    def run() -> None:
        fail(cb)
        fail(cb)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "deadlocked"
    expected = [("closed", "open"), ("open", "closed")] * 2
    assert transitions(first) == expected
    assert transitions(second) == expected
    assert states == ["open", "closed", "closed"] * 2
    assert cb.info().state == "closed"


def test_a_listener_may_command_during_a_command() -> None:
    received: list[Signal] = []

    def chain(signal: Signal) -> None:
        received.append(signal)
        following = {"disabled": cb.metrics_only, "metrics_only": cb.force_open}
        if signal.new_state in following:
            following[signal.new_state]()

    cb = make_breaker(chain)
    cb.disable()
    assert transitions(received) == [
        ("closed", "disabled"),
        ("disabled", "metrics_only"),
        ("metrics_only", "forced_open"),
    ]
    assert cb.info().state == "forced_open"
