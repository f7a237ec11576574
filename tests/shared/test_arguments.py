"""HostMemory's arguments and attributes, ``shared=`` on both breakers, and
the segment header's fixed shape: a breaker that differs from the segment's
window, slow thresholds, breaker kind or ``max_half_open_calls`` is a
ValueError naming both values; what stays per process may differ."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker, CircuitBreaker
from fluxgate.metric import Metric, Record
from fluxgate.permits import All as PermitAll
from fluxgate.retries import Always, Cooldown, Never
from fluxgate.shared import HostMemory
from fluxgate.trackers import TypeOf
from fluxgate.trippers import FailureRate, FailureStreak, MinRequests, SlowRate
from fluxgate.windows import CountWindow, TimeWindow, Window

from .workers import ON_WINDOWS, SKIP_REASON

pytestmark = pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON)

BREAKERS = [CircuitBreaker, AsyncCircuitBreaker]


# ---- HostMemory --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "0", "a" * 100, "svc.v1_2-3", "Z9"])
def test_valid_names(tmp_path, name) -> None:
    memory = HostMemory(name, directory=tmp_path)
    assert memory.name == name
    assert memory.directory == str(tmp_path)
    assert memory.path == os.path.join(str(tmp_path), f"fluxgate-{os.getuid()}-{name}")


@pytest.mark.parametrize(
    "name",
    ["", "a" * 101, "a/b", "../up", ".hidden", "-dash", "_under", "a b", "caf\u00e9", "a\x00b", "a\nb"],
)
def test_a_bad_name_is_a_value_error_naming_it(tmp_path, name) -> None:
    with pytest.raises(ValueError, match="name"):
        HostMemory(name, directory=tmp_path)


@pytest.mark.parametrize("name", [5, b"svc", ["svc"], 1.5])
def test_a_name_that_is_not_a_str_is_a_type_error_naming_it(tmp_path, name) -> None:
    with pytest.raises(TypeError, match="name"):
        HostMemory(name, directory=tmp_path)


def test_the_default_directory() -> None:
    memory = HostMemory("svc")
    expected = "/dev/shm" if sys.platform.startswith("linux") else tempfile.gettempdir()
    assert memory.directory == expected
    assert memory.path == os.path.join(expected, f"fluxgate-{os.getuid()}-svc")


def test_an_unnamed_memory_has_no_name_and_no_path() -> None:
    memory = HostMemory()
    assert memory.name is None
    assert memory.path is None


def test_a_named_segment_is_a_file_of_this_user_with_mode_0600(tmp_path) -> None:
    memory = HostMemory("svc", directory=tmp_path)
    old = os.umask(0)  # even when the user's umask would let others read it
    try:
        CircuitBreaker(shared=memory)
    finally:
        os.umask(old)
    assert memory.path is not None
    status = os.stat(memory.path)
    assert status.st_mode & 0o777 == 0o600
    assert status.st_uid == os.getuid()
    assert os.listdir(tmp_path) == [f"fluxgate-{os.getuid()}-svc"]


def test_import_fluxgate_does_not_import_fluxgate_shared() -> None:
    program = (
        "import sys, fluxgate\n"
        "assert 'fluxgate.shared' not in sys.modules, 'imported'\n"
        "import fluxgate.shared\n"
        "assert fluxgate.shared.HostMemory.__module__ == 'fluxgate.shared'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# ---- shared= ---------------------------------------------------------------------------


@pytest.mark.parametrize("breaker", BREAKERS)
@pytest.mark.parametrize(
    "value, type_name", [(object(), "object"), ("svc", "str"), (1, "int"), (HostMemory, "type")]
)
def test_shared_must_be_a_host_memory_or_none(breaker, value, type_name) -> None:
    with pytest.raises(TypeError, match=f"shared must be a HostMemory, a RedisFleet or None, not {type_name}"):
        breaker(shared=value)


@pytest.mark.parametrize("breaker", BREAKERS)
def test_shared_none_is_a_breaker_of_this_process_alone(breaker) -> None:
    first, second = breaker(shared=None), breaker(shared=None)
    if breaker is CircuitBreaker:
        first.call(lambda: None)
        assert first.info().metrics.total_count == 1
    assert second.info().metrics.total_count == 0


class ListWindow(Window):
    """A window written in Python."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def record(self, record: Record) -> None:
        self.records.append(record)

    def get_metric(self) -> Metric:
        metric = Metric.empty()
        for record in self.records:
            metric = metric + Metric.from_record(record)
        return metric

    def reset(self) -> None:
        self.records.clear()


@pytest.mark.parametrize("breaker", BREAKERS)
def test_a_python_window_cannot_be_shared(tmp_path, breaker) -> None:
    memory = HostMemory("svc", directory=tmp_path)
    with pytest.raises(TypeError, match="window"):
        breaker(window=ListWindow(), shared=memory)
    with pytest.raises(TypeError, match="window"):
        breaker(window=ListWindow(), shared=HostMemory())


# ---- the segment's shape ---------------------------------------------------------------


def assert_names_both(error: pytest.ExceptionInfo[ValueError], first: str, second: str) -> None:
    message = str(error.value)
    assert first in message and second in message, message


def mismatch(tmp_path: Any, first: dict[str, Any], second: dict[str, Any]) -> pytest.ExceptionInfo[ValueError]:
    kind_1 = first.pop("kind", CircuitBreaker)
    kind_2 = second.pop("kind", CircuitBreaker)
    made = kind_1(shared=HostMemory("svc", directory=tmp_path), **first)
    with pytest.raises(ValueError) as error:
        kind_2(shared=HostMemory("svc", directory=tmp_path), **second)
    # The breaker already there is untouched.
    assert made.info().state == "closed"
    if kind_1 is CircuitBreaker:
        assert made.call(lambda: 7) == 7
        assert made.info().metrics.total_count == 1
    return error


@pytest.mark.parametrize(
    "first, second, names",
    [
        (CountWindow(100), TimeWindow(60), ("CountWindow(100)", "TimeWindow(60)")),
        (TimeWindow(60), CountWindow(100), ("TimeWindow(60)", "CountWindow(100)")),
        (CountWindow(100), CountWindow(50), ("CountWindow(100)", "CountWindow(50)")),
        (TimeWindow(60), TimeWindow(30), ("TimeWindow(60)", "TimeWindow(30)")),
        (None, CountWindow(99), ("CountWindow(100)", "CountWindow(99)")),
    ],
    ids=["count-time", "time-count", "count-sizes", "time-sizes", "default-count"],
)
def test_a_different_window_is_a_value_error_naming_both(tmp_path, first, second, names) -> None:
    error = mismatch(tmp_path, {"window": first}, {"window": second})
    assert_names_both(error, *names)


def test_the_default_window_is_count_window_100(tmp_path) -> None:
    first = CircuitBreaker(shared=HostMemory("svc", directory=tmp_path))
    second = CircuitBreaker(window=CountWindow(100), shared=HostMemory("svc", directory=tmp_path))
    first.call(lambda: None)
    assert second.info().metrics.total_count == 1


@pytest.mark.parametrize(
    "first, second, names",
    [
        (SlowRate(0.5, threshold=0.25), SlowRate(0.5, threshold=0.75), ("0.25", "0.75")),
        (FailureRate(0.5), SlowRate(0.5, threshold=0.75), ("0.75", "")),
        (
            SlowRate(0.5, threshold=0.25) | SlowRate(0.5, threshold=0.75),
            SlowRate(0.5, threshold=0.25),
            ("0.25", "0.75"),
        ),
    ],
    ids=["different", "none-one", "two-one"],
)
def test_different_slow_thresholds_are_a_value_error_naming_both(tmp_path, first, second, names) -> None:
    error = mismatch(tmp_path, {"tripper": first}, {"tripper": second})
    assert_names_both(error, *names)


def test_slow_thresholds_compare_sorted_and_distinct(tmp_path) -> None:
    # A call sleeping a millisecond is slow for the first threshold and not
    # for the second.
    small, large = 1e-9, 1000.0
    first = CircuitBreaker(
        tripper=MinRequests(5) & (SlowRate(0.5, threshold=large) | SlowRate(0.5, threshold=small)),
        shared=HostMemory("svc", directory=tmp_path),
    )
    second = CircuitBreaker(
        tripper=MinRequests(5)
        & (
            SlowRate(0.9, threshold=small)
            | SlowRate(0.5, threshold=large)
            | SlowRate(0.1, threshold=small)
        ),
        shared=HostMemory("svc", directory=tmp_path),
    )
    alone = CircuitBreaker(
        tripper=MinRequests(5) & (SlowRate(0.9, threshold=small) | SlowRate(0.5, threshold=large))
    )
    second.call(time.sleep, 0.001)
    alone.call(time.sleep, 0.001)
    metrics = first.info().metrics
    assert metrics.total_count == 1
    assert metrics.slow_counts == alone.info().metrics.slow_counts
    assert metrics.slow_counts.get(small) == 1
    assert metrics.slow_counts.get(large, 0) == 0


@pytest.mark.parametrize("order", ["sync-async", "async-sync"])
def test_a_different_breaker_kind_is_a_value_error_naming_both(tmp_path, order) -> None:
    kinds = [CircuitBreaker, AsyncCircuitBreaker]
    if order == "async-sync":
        kinds.reverse()
    error = mismatch(tmp_path, {"kind": kinds[0]}, {"kind": kinds[1]})
    message = str(error.value)
    assert "AsyncCircuitBreaker" in message, message
    assert re.search(r"(?<!Async)CircuitBreaker", message), message


def test_a_different_max_half_open_calls_is_a_value_error_naming_both(tmp_path) -> None:
    error = mismatch(
        tmp_path,
        {"kind": AsyncCircuitBreaker, "max_half_open_calls": 7},
        {"kind": AsyncCircuitBreaker, "max_half_open_calls": 13},
    )
    assert_names_both(error, "7", "13")


def test_what_stays_per_process_may_differ(tmp_path) -> None:
    first = CircuitBreaker(
        window=CountWindow(10),
        tracker=TypeOf(KeyError),
        tripper=MinRequests(2) & FailureRate(0.5),
        retry=Never(),
        shared=HostMemory("svc", directory=tmp_path),
    )
    second = CircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=Cooldown(5.0),
        permit=PermitAll(),
        listeners=[print],
        shared=HostMemory("svc", directory=tmp_path),
    )
    with pytest.raises(ValueError):
        first.call(int, "not a number")  # untracked by first's tracker
    assert second.info().metrics.total_count == 0
    with pytest.raises(KeyError):
        first.call({}.__getitem__, "missing")  # tracked: one failure
    assert first.info().state == "closed"
    assert second.info().metrics.failure_count == 1


def test_two_async_breakers_with_the_same_shape_share(tmp_path) -> None:
    import asyncio

    async def run() -> int:
        first = AsyncCircuitBreaker(
            max_half_open_calls=4, retry=Always(), shared=HostMemory("svc", directory=tmp_path)
        )
        second = AsyncCircuitBreaker(
            max_half_open_calls=4, shared=HostMemory("svc", directory=tmp_path)
        )
        await first.call(asyncio.sleep, 0)
        return second.info().metrics.total_count

    assert asyncio.run(run()) == 1


@pytest.mark.no_leakcheck("the other breaker is built in another process")
def test_a_breaker_of_another_shape_in_another_process_is_a_value_error(tmp_path, remotes) -> None:
    here = CircuitBreaker(window=TimeWindow(60), shared=HostMemory("svc", directory=tmp_path))
    with pytest.raises(ValueError) as error:
        remotes(window=CountWindow(100), shared=HostMemory("svc", directory=tmp_path))
    assert_names_both(error, "TimeWindow(60)", "CountWindow(100)")
    with pytest.raises(ValueError) as error:
        remotes("async", window=TimeWindow(60), shared=HostMemory("svc", directory=tmp_path))
    assert "AsyncCircuitBreaker" in str(error.value)
    same = remotes(window=TimeWindow(60), shared=HostMemory("svc", directory=tmp_path))
    assert same.call("ok") == "ok"
    assert here.info().metrics.total_count == 1
