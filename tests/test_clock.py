"""The clock unit the breaker reads (SPEC section 11, DESIGN.md D6): native
clocks while the time module holds its own functions, and whatever replaced
them (freezegun, unittest.mock) otherwise."""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from collections.abc import Callable
from types import ModuleType
from unittest import mock

import pytest
from freezegun import freeze_time

from fluxgate import _fluxgate

FROZEN_AT = "2024-01-01 00:00:00"
FROZEN_TS = 1704067200.0

CLOCKS = [
    pytest.param(_fluxgate._monotonic, time.perf_counter, "perf_counter", id="monotonic"),
    pytest.param(_fluxgate._wall_time, time.time, "time", id="wall"),
    pytest.param(_fluxgate._bucket_time, time.time, "time", id="bucket"),
]
Clock = Callable[[], float]

# Where the breaker reads its clocks from the CPU's time-stamp counter, a
# reading is within this of the clock's own (docs/design.md, "Clocks").
COUNTER_CLOCK_ERROR = 100e-9


def assert_native(ours: Clock, reference: Clock) -> None:
    """`ours` reads the same clock as `reference`: it falls between two
    readings of it taken just before and just after."""
    before = reference()
    now = ours()
    after = reference()
    assert isinstance(now, float)
    # A wall-clock second as a float is a multiple of ~240 ns: one step of
    # rounding either way.
    error = COUNTER_CLOCK_ERROR + math.ulp(now)
    assert before - error <= now <= after + error


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_agrees_with_the_time_module(ours: Clock, reference: Clock, name: str) -> None:
    assert getattr(time, name) is reference
    for _ in range(100):
        assert_native(ours, reference)


def test_monotonic_never_goes_back_beyond_its_error() -> None:
    readings = [_fluxgate._monotonic() for _ in range(100_000)]
    assert all(b >= a - COUNTER_CLOCK_ERROR for a, b in zip(readings, readings[1:]))


def test_follows_freeze_time() -> None:
    with freeze_time(FROZEN_AT):
        assert _fluxgate._wall_time() == FROZEN_TS
        assert _fluxgate._monotonic() == time.perf_counter()
        first = _fluxgate._monotonic()
        assert _fluxgate._monotonic() == first


def test_follows_tick() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        start = _fluxgate._monotonic()
        frozen.tick(61)
        assert _fluxgate._wall_time() == FROZEN_TS + 61
        assert _fluxgate._monotonic() == start + 61
        frozen.tick(0.25)
        assert _fluxgate._wall_time() == FROZEN_TS + 61.25
        assert _fluxgate._monotonic() == start + 61.25


def test_follows_move_to() -> None:
    with freeze_time(FROZEN_AT) as frozen:
        frozen.move_to("2030-01-01 00:00:00")
        assert _fluxgate._wall_time() == 1893456000.0
        assert _fluxgate._wall_time() == time.time()
        assert _fluxgate._monotonic() == time.perf_counter()


def test_follows_freeze_time_as_a_decorator() -> None:
    @freeze_time(FROZEN_AT)
    def frozen() -> tuple[float, float]:
        return _fluxgate._wall_time(), time.time()

    assert frozen() == (FROZEN_TS, FROZEN_TS)


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_returns_to_the_native_clocks(ours: Clock, reference: Clock, name: str) -> None:
    with freeze_time(FROZEN_AT) as frozen:
        ours()
        frozen.tick(3600)
        ours()
    assert getattr(time, name) is reference
    assert_native(ours, reference)


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_follows_mock_patch(ours: Clock, reference: Clock, name: str) -> None:
    with mock.patch(f"time.{name}", return_value=123.5) as patched:
        assert ours() == 123.5
        assert patched.call_count == 1
    assert_native(ours, reference)


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_follows_each_new_replacement(ours: Clock, reference: Clock, name: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, name, lambda: 1.0)
    assert ours() == 1.0
    monkeypatch.setattr(time, name, lambda: 2.0)
    assert ours() == 2.0
    monkeypatch.undo()
    assert_native(ours, reference)


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_replacement_results_become_floats(ours: Clock, reference: Clock, name: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, name, lambda: 7)
    value = ours()
    assert value == 7.0
    assert type(value) is float


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_a_failing_replacement_propagates(ours: Clock, reference: Clock, name: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> float:
        raise RuntimeError("clock is broken")

    monkeypatch.setattr(time, name, broken)
    with pytest.raises(RuntimeError, match="clock is broken"):
        ours()
    monkeypatch.setattr(time, name, lambda: "noon")
    with pytest.raises(TypeError):
        ours()


@pytest.mark.parametrize(("ours", "reference", "name"), CLOCKS)
def test_a_deleted_clock_falls_back_to_native(ours: Clock, reference: Clock, name: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(time, name)
    assert_native(ours, reference)


def fresh_module() -> ModuleType:
    """A second, independent instance of the extension module."""
    spec = importlib.util.find_spec("fluxgate._fluxgate")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imported_while_frozen_still_detects_the_native_clocks() -> None:
    with freeze_time(FROZEN_AT):
        module = fresh_module()
        assert module is not _fluxgate
        assert module._wall_time() == FROZEN_TS
    assert_native(module._wall_time, time.time)
    assert_native(module._monotonic, time.perf_counter)
    with freeze_time(FROZEN_AT):
        assert module._wall_time() == FROZEN_TS


def test_time_machine_is_honoured_after_native_readings() -> None:
    time_machine = pytest.importorskip("time_machine")
    _fluxgate._wall_time()
    _fluxgate._wall_time()  # the native clock has been seen and remembered
    with time_machine.travel(1_000_000.0, tick=False):
        assert _fluxgate._wall_time() == 1_000_000.0
    assert _fluxgate._wall_time() > 1_000_000_000


def test_every_copy_of_the_module_follows_a_replacement() -> None:
    module = fresh_module()
    module._wall_time()
    _fluxgate._wall_time()
    with mock.patch("time.time", return_value=5.0):
        assert module._wall_time() == 5.0
        assert _fluxgate._wall_time() == 5.0
        later = fresh_module()
        assert later._wall_time() == 5.0
    for each in (module, _fluxgate, later):
        assert_native(each._wall_time, time.time)


def test_a_replacement_made_in_another_thread_is_followed() -> None:
    _fluxgate._monotonic()
    patched = threading.Event()
    restore = threading.Event()

    def patcher() -> None:
        with mock.patch("time.perf_counter", return_value=42.0):
            patched.set()
            restore.wait(30)

    thread = threading.Thread(target=patcher)
    thread.start()
    try:
        assert patched.wait(30)
        assert _fluxgate._monotonic() == 42.0
    finally:
        restore.set()
        thread.join(30)
    assert not thread.is_alive()
    assert_native(_fluxgate._monotonic, time.perf_counter)
