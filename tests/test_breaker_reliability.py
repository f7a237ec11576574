"""CircuitBreaker under adverse conditions (SPEC.md section 12, DESIGN.md D7):
a window written in Python whose methods wait for other threads using the
breaker, and listeners that command their breaker on every signal.

Every wait is bounded: a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import pytest

from fluxgate import CircuitBreaker
from fluxgate.signal import Signal
from fluxgate.trippers import MinRequests
from fluxgate.windows import CountWindow

WAIT = 10.0  # an upper bound for what should take milliseconds


def _recursion_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.getMessage().startswith("Listener")
        and r.exc_info is not None
        and isinstance(r.exc_info[1], RecursionError)
    )


# ---- a Python window's methods may wait for other threads -------------------


class WaitingWindow(CountWindow):
    """A window written in Python whose next record() (or reset()) runs
    `action` in another thread and waits, bounded, for it to finish."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.on_record: Any = None
        self.on_reset: Any = None
        self.finished: list[bool] = []

    def _run_elsewhere(self, action: Any) -> None:
        thread = threading.Thread(target=action, daemon=True)
        thread.start()
        thread.join(WAIT)
        self.finished.append(not thread.is_alive())

    def record(self, record: Any) -> None:
        action, self.on_record = self.on_record, None
        if action is not None:
            self._run_elsewhere(action)
        super().record(record)

    def reset(self) -> None:
        action, self.on_reset = self.on_reset, None
        if action is not None:
            self._run_elsewhere(action)
        super().reset()


def test_a_window_record_may_wait_for_another_thread_resetting_the_breaker() -> None:
    window = WaitingWindow(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    window.on_record = cb.force_open
    cb.call(lambda: None)
    assert window.finished == [True]
    info = cb.info()
    assert info.state == "forced_open"
    # The record belonged to the CLOSED period: the transition's reset,
    # applied after it, leaves none.
    assert info.metrics.total_count == 0


def test_a_window_record_may_wait_for_another_thread_calling() -> None:
    window = WaitingWindow(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    results: list[int] = []
    window.on_record = lambda: results.append(cb.call(lambda: 2))
    assert cb.call(lambda: 1) == 1
    assert window.finished == [True]
    assert results == [2]
    assert cb.info().metrics.total_count == 2


def test_a_window_reset_may_wait_for_another_thread_calling() -> None:
    window = WaitingWindow(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    results: list[int] = []
    window.on_reset = lambda: results.append(cb.call(lambda: 2))
    cb.reset()
    assert window.finished == [True]
    assert results == [2]
    # The other thread's call was admitted after the transition: its record
    # lands after the reset, not before it.
    assert cb.info().metrics.total_count == 1


def test_a_window_reset_may_wait_for_another_thread_commanding() -> None:
    heard: list[str] = []
    window = WaitingWindow(10)
    cb = CircuitBreaker(
        window=window, tripper=MinRequests(1_000),
        listeners=[lambda s: heard.append(s.new_state)],
    )  # fmt: skip
    window.on_reset = cb.disable
    cb.force_open()
    assert window.finished == [True]
    assert cb.info().state == "disabled"
    assert heard == ["forced_open", "disabled"]


def test_a_record_of_the_next_period_waits_behind_the_reset_not_the_caller() -> None:
    # Thread A records (period 1) at a gate; the breaker is reset (period 2)
    # and thread C calls in period 2: neither waits for A's record. C's
    # record is applied after the reset, once A's record is in: only C's
    # record stays.
    entered, gate = threading.Event(), threading.Event()

    class Gated(CountWindow):
        def record(self, record: Any) -> None:
            if not entered.is_set():
                entered.set()
                gate.wait(3 * WAIT)  # longer than the joins below
            super().record(record)

    cb = CircuitBreaker(window=Gated(10), tripper=MinRequests(1_000))
    first = threading.Thread(target=cb.call, args=(lambda: None,), daemon=True)
    first.start()
    try:
        assert entered.wait(WAIT)
        for action in (cb.reset, lambda: cb.call(lambda: None)):
            other = threading.Thread(target=action, daemon=True)
            other.start()
            other.join(WAIT)
            assert not other.is_alive()
        assert cb.info().metrics.total_count == 0  # A's record not in yet
    finally:
        gate.set()
        first.join(WAIT)
    assert not first.is_alive()
    assert cb.info().metrics.total_count == 1


def test_an_error_from_a_window_record_reaches_its_caller() -> None:
    class Failing(CountWindow):
        def record(self, record: Any) -> None:
            raise LookupError("window full")

    cb = CircuitBreaker(window=Failing(10), tripper=MinRequests(1_000))
    with pytest.raises(LookupError, match="window full"):
        cb.call(lambda: None)
    cb.reset()
    with pytest.raises(LookupError, match="window full"):
        cb.call(lambda: None)


def test_an_error_from_a_record_applied_by_another_thread_is_unraisable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Thread A records at a gate; a reset queues behind it, and thread C's
    # record behind the reset. C returns at once; when A's record ends, A
    # applies the queue, and C's failing record has no caller left to raise
    # to: it goes to sys.unraisablehook, and A's call is unaffected.
    entered, gate = threading.Event(), threading.Event()
    unraisable: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))

    class Picky(CountWindow):
        def record(self, record: Any) -> None:
            if not entered.is_set():
                entered.set()
                gate.wait(3 * WAIT)
            elif not record.success:
                raise LookupError("no failures here")
            super().record(record)

    def fail() -> None:
        raise ValueError("boom")

    cb = CircuitBreaker(window=Picky(10), tripper=MinRequests(1_000))
    results: list[object] = []
    first = threading.Thread(
        target=lambda: results.append(cb.call(lambda: "first")), daemon=True
    )
    first.start()
    try:
        assert entered.wait(WAIT)
        cb.reset()
        with pytest.raises(ValueError, match="boom"):
            cb.call(fail)
    finally:
        gate.set()
        first.join(WAIT)
    assert results == ["first"]
    assert len(unraisable) == 1 and isinstance(unraisable[0], LookupError)
    assert cb.info().metrics.total_count == 0


# ---- a listener that commands on every signal ends --------------------------


def test_a_sync_listener_resetting_on_every_signal_ends_with_recursion_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = sys.getrecursionlimit()
    heard: list[Signal] = []

    def listener(signal: Signal, /) -> None:
        heard.append(signal)
        if len(heard) < 20 * limit:  # the old endless loop, cut short
            cb.reset()

    cb = CircuitBreaker(listeners=[listener])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        cb.force_open()
    assert len(heard) < 2 * limit
    assert _recursion_failures(caplog) == 1
    assert cb.info().state == "closed"
    # The chain is over; the breaker works as before.
    heard.clear()
    caplog.clear()
    cb.call(lambda: None)
    assert cb.info().state == "closed"


def test_recursion_depth_counts_only_commands_made_while_delivering() -> None:
    heard: list[Signal] = []
    cb = CircuitBreaker(listeners=[heard.append])
    for _ in range(3 * sys.getrecursionlimit()):
        cb.reset()
    assert len(heard) == 3 * sys.getrecursionlimit()


def test_a_listener_chain_of_bounded_depth_runs_to_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []

    def listener(signal: Signal, /) -> None:
        heard.append(signal.new_state)
        if len(heard) < 50:
            cb.reset()

    cb = CircuitBreaker(listeners=[listener])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        cb.force_open()
    assert len(heard) == 50
    assert _recursion_failures(caplog) == 0
