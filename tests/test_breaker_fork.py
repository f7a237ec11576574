"""Breakers keep working in a child process after os.fork() (DESIGN.md D7)."""

from __future__ import annotations

import os
import signal
import threading
import warnings
from collections.abc import Callable

import pytest
from conftest import GatedWindow

from fluxgate import CircuitBreaker
from fluxgate.signal import Signal
from fluxgate.retries import Never
from fluxgate.trippers import MinRequests

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def run_in_child(body: Callable[[], str]) -> str:
    """Fork, run body in the child, return what it reported."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Forking a process that has threads is what this test is about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        report = "crashed"
        try:
            report = body()
        finally:
            os.write(write_end, report.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    return report


def test_child_keeps_state_and_calls_work() -> None:
    cb = CircuitBreaker(tripper=MinRequests(3), retry=Never())
    for _ in range(2):
        cb.call(lambda: None)

    def child() -> str:
        cb.call(lambda: None)
        return cb.info().state

    assert run_in_child(child) == "open"
    assert cb.info().state == "closed"
    assert cb.info().metrics.total_count == 2


def test_child_forked_while_listeners_run_still_notifies() -> None:
    seen: list[str] = []
    reports: list[str] = []

    def listener(signal: Signal, /) -> None:
        seen.append(signal.new_state)
        if signal.new_state == "forced_open":
            # Fork in the middle of a delivery: the child must not wait for
            # a delivering thread that does not exist there.
            def child() -> str:
                cb.reset()
                return ",".join(seen)

            reports.append(run_in_child(child))

    cb = CircuitBreaker(listeners=[listener])
    cb.force_open()
    assert reports == ["forced_open,closed"]
    assert seen == ["forced_open"]


def test_child_forked_while_a_thread_records_into_a_python_window_can_command() -> None:
    # The recording thread holds the window's lock at the fork; it does not
    # exist in the child, which must still be able to transition.
    window = GatedWindow(10)
    cb = CircuitBreaker(window=window, tripper=MinRequests(1_000))
    caller = threading.Thread(target=cb.call, args=(lambda: None,))
    caller.start()
    try:
        assert window.entered.wait(30)

        def child() -> str:
            signal.alarm(20)  # a deadlock here ends the child, not the suite
            cb.force_open()
            cb.reset()
            cb.call(lambda: None)
            return f"{cb.info().state} {cb.info().metrics.total_count}"

        assert run_in_child(child) == "closed 1"
    finally:
        window.opened.set()
        caller.join(30)
    assert cb.info().metrics.total_count == 1
