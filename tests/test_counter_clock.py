"""The monotonic and wall clocks read from the CPU's time-stamp counter
(src/_fluxgate/tsc.h): where the system allows it, the breaker derives both
from the counter, and every reading, and so every recorded duration, stays
within 100 ns of what time.perf_counter() and time.time() give. Elsewhere the
clocks are read directly and these tests check the same bounds."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest
from conftest import wait_for_child
from hypothesis import given
from hypothesis import strategies as st

from fluxgate import CircuitBreaker
from fluxgate.trippers import MinRequests
from fluxgate.windows import CountWindow, TimeWindow
from fluxgate import _fluxgate

ERROR = 100e-9


def wait_until_calibrated() -> None:
    """Readings spread over more than the rate's measuring span (100 ms),
    for at most 2 s: where the clock reads too slowly to anchor the counter
    (a sanitizer build), every reading reads the clock, within the same
    bounds."""
    deadline = time.perf_counter() + 2
    while time.perf_counter() < deadline:
        _fluxgate._monotonic()
        usable, ns_per_tick = _fluxgate._counter_clock()
        if not usable or ns_per_tick > 0:
            return
        time.sleep(0.01)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# Pauses between readings: none (readings of one anchor), some beyond an
# anchor's 200 us (a fresh anchor), and idle spans.
PAUSES = [0.0] * 50 + [5e-6, 100e-6, 250e-6, 1e-3, 3e-3]


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        pytest.param(_fluxgate._monotonic, time.perf_counter, id="monotonic"),
        pytest.param(_fluxgate._bucket_time, time.time, id="bucket"),
    ],
)
def test_every_reading_is_within_100ns_of_the_clock(
    ours: Callable[[], float], reference: Callable[[], float]
) -> None:
    wait_until_calibrated()
    outside = []
    for round_ in range(40):
        for pause in PAUSES:
            if pause:
                spin(pause) if round_ % 2 else time.sleep(pause)
            before = reference()
            now = ours()
            after = reference()
            # Wall-clock seconds as floats are multiples of ~240 ns: one
            # step of rounding either way.
            error = ERROR + math.ulp(now)
            if not before - error <= now <= after + error:
                outside.append((before, now, after))
    assert outside == []


def test_the_rate_is_measured_where_the_counter_is_usable() -> None:
    wait_until_calibrated()
    usable, ns_per_tick = _fluxgate._counter_clock()
    if usable:
        # Between 100 MHz and 10 GHz.
        assert 0.1 < ns_per_tick < 10
    else:
        assert ns_per_tick == 0.0


@pytest.mark.parametrize("seconds", [0.0, 1e-6, 50e-6, 300e-6, 5e-3, 0.15])
def test_a_recorded_duration_is_within_100ns_of_the_calls_own_clock(seconds: float) -> None:
    wait_until_calibrated()
    cb = CircuitBreaker(window=CountWindow(1000), tripper=MinRequests(10**6))
    inner: list[float] = []

    def work() -> None:
        started = time.perf_counter()
        spin(seconds)
        inner.append(time.perf_counter() - started)

    outer = []
    for _ in range(20 if seconds < 0.01 else 2):
        before = time.perf_counter()
        total = cb.info().metrics.total_duration
        cb.call(work)
        outer.append(time.perf_counter() - before)
        duration = cb.info().metrics.total_duration - total
        # The breaker's readings enclose the function's and are enclosed by
        # the caller's.
        assert inner[-1] - ERROR <= duration <= outer[-1] + ERROR


def test_a_time_window_records_in_the_second_the_call_ended() -> None:
    # Calls that end within microseconds of a second's boundary, on both
    # sides: each lands in the bucket of the wall-clock second between the
    # function's last reading and the caller's next.
    wait_until_calibrated()
    misplaced = []
    for offset in [-5e-6, 0.5e-6, 2e-6, 10e-6, 50e-6]:
        window = TimeWindow(3600)
        cb = CircuitBreaker(window=window, tripper=MinRequests(10**6))
        ends: list[float] = []

        def work() -> None:
            target = math.floor(time.time()) + 1 + offset
            while time.time() < target:
                pass
            ends.append(time.time())

        cb.call(work)
        after = time.time()
        [(second, count, *_)] = window.__reduce__()[2][0]
        assert count == 1
        error = ERROR + math.ulp(after)
        if not math.floor(ends[0] - error) <= second <= math.floor(after + error):
            misplaced.append((ends[0], second, after))
    assert misplaced == []


def test_the_environment_can_turn_the_counter_clock_off() -> None:
    script = (
        "import time\n"
        "from fluxgate import _fluxgate\n"
        "assert _fluxgate._counter_clock() == (False, 0.0)\n"
        "for _ in range(10000):\n"
        "    a = time.perf_counter(); b = _fluxgate._monotonic(); c = time.perf_counter()\n"
        "    assert a <= b <= c, (a, b, c)\n"
    )
    env = dict(os.environ, FLUXGATE_TSC="0")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_reads_the_clock_within_100ns() -> None:
    wait_until_calibrated()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            for _ in range(20000):
                before = time.perf_counter()
                now = _fluxgate._monotonic()
                after = time.perf_counter()
                if not before - ERROR <= now <= after + ERROR:
                    code = 1
        finally:
            os._exit(code)
    assert wait_for_child(pid) == 0


def test_threads_reading_at_once_stay_within_100ns() -> None:
    wait_until_calibrated()
    outside: list[tuple[float, float, float]] = []

    def read() -> None:
        for round_ in range(200):
            # Pauses past an anchor's age, so that threads re-anchor at once.
            spin(250e-6 if round_ % 3 else 0.0)
            for _ in range(50):
                before = time.perf_counter()
                now = _fluxgate._monotonic()
                after = time.perf_counter()
                if not before - ERROR <= now <= after + ERROR:
                    outside.append((before, now, after))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outside == []


@given(
    st.one_of(
        st.integers(0, 2**63 - 1),
        # Readings close to a second's boundary, today and far ahead.
        st.builds(
            lambda second, offset: max(0, second * 10**9 + offset),
            st.one_of(st.integers(0, 2 * 10**9), st.integers(0, 9 * 10**9)),
            st.integers(-5000, 5000),
        ),
    ).filter(lambda ns: ns < 2**63)
)
def test_a_readings_second_is_taken_as_from_the_double(ns: int) -> None:
    assert _fluxgate._second_of_ns(ns) == math.trunc(ns / 1e9)
