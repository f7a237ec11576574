"""The native fast path: with built-in components only, a CLOSED success, a
tracked failure and an OPEN rejection enter no Python-level frame besides the
user's own function. Python frames announce themselves to ``sys.setprofile``
with "call" events (C functions give "c_call", which are not counted)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import pytest

from fluxgate import CallNotPermittedError, CircuitBreaker, permits, trackers
from fluxgate.retries import Cooldown, Never
from fluxgate.trippers import FailureRate, FailureStreak, MinRequests, SlowRate
from fluxgate.windows import CountWindow, TimeWindow

REPEAT = 2000


def start_probe(user_code: CodeType) -> list[str]:
    """Collect every Python frame entered from now on, other than
    `user_code`'s, with the garbage collector off so that no finalizer runs
    meanwhile. Stop with `sys.setprofile(None)` inline (a call to a Python
    helper would be counted) and turn the collector back on."""
    entered: list[str] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is not user_code:
            code = frame.f_code
            name = getattr(code, "co_qualname", code.co_name)
            entered.append(f"{name} ({code.co_filename}:{code.co_firstlineno})")

    gc.disable()
    sys.setprofile(profile)
    return entered


# Breakers made of built-in components only that never trip on their own.
CONFIGS: dict[str, Callable[[], dict[str, Any]]] = {
    "defaults": lambda: {"window": CountWindow(10)},
    "explicit": lambda: {
        "window": CountWindow(10),
        "tracker": trackers.All(),
        "tripper": MinRequests(100) & FailureRate(0.5),
        "retry": Cooldown(60),
        "permit": permits.RampUp(0.1, 1.0, 60),
    },
    "time-window": lambda: {"window": TimeWindow(60), "tripper": MinRequests(1_000_000)},
    "slow-rate": lambda: {
        "window": CountWindow(10),
        "tripper": MinRequests(100) & (SlowRate(0.5, threshold=1.0) | FailureStreak(1_000_000)),
    },
    "type-of": lambda: {
        "window": CountWindow(10),
        "tracker": trackers.TypeOf(ValueError) | trackers.TypeOf(KeyError),
        "tripper": MinRequests(100),
    },
}


@pytest.mark.parametrize("config", CONFIGS)
def test_closed_success_enters_no_library_frame(config: str) -> None:
    cb = CircuitBreaker(**CONFIGS[config]())

    def work(x: int) -> int:
        return x

    protected = cb(work)
    assert protected(1) == 1 and cb.call(work, 1) == 1  # warm up
    entered = start_probe(work.__code__)
    try:
        for i in range(REPEAT):
            protected(i)
            cb.call(work, i)
    finally:
        sys.setprofile(None)
        gc.enable()
    assert entered == []
    assert cb.info().state == "closed"


@pytest.mark.parametrize("config", CONFIGS)
def test_tracked_failure_enters_no_library_frame(config: str) -> None:
    cb = CircuitBreaker(**CONFIGS[config]())

    def work() -> None:
        raise ValueError("failed")

    protected = cb(work)
    with pytest.raises(ValueError):
        protected()
    entered = start_probe(work.__code__)
    try:
        for _ in range(REPEAT):
            try:
                protected()
            except ValueError:
                pass
            try:
                cb.call(work)
            except ValueError:
                pass
    finally:
        sys.setprofile(None)
        gc.enable()
    assert entered == []
    assert cb.info().state == "closed"
    metrics = cb.info().metrics
    assert metrics.failure_count == metrics.total_count > 0


@pytest.mark.parametrize("config", CONFIGS)
def test_open_rejection_enters_no_library_frame(config: str) -> None:
    cb = CircuitBreaker(**{**CONFIGS[config](), "tripper": MinRequests(1), "retry": Never()})

    def work() -> None:
        raise ValueError("failed")

    protected = cb(work)
    with pytest.raises(ValueError):
        protected()
    assert cb.info().state == "open"
    with pytest.raises(CallNotPermittedError):
        protected()
    entered = start_probe(work.__code__)
    try:
        for _ in range(REPEAT):
            try:
                protected()
            except CallNotPermittedError:
                pass
            try:
                cb.call(work)
            except CallNotPermittedError:
                pass
    finally:
        sys.setprofile(None)
        gc.enable()
    assert entered == []


def test_the_probe_sees_python_frames() -> None:
    """The probe itself works: a Python tripper is seen."""
    cb = CircuitBreaker(window=CountWindow(10), tripper=lambda ctx: False)

    def work() -> int:
        return 1

    entered = start_probe(work.__code__)
    try:
        cb.call(work)
    finally:
        sys.setprofile(None)
        gc.enable()
    assert len(entered) >= 1
    assert any("<lambda>" in name for name in entered)
