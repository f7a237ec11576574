"""BreakerRegistry: one breaker per key, made once, in bounded memory."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_threads
from freezegun import freeze_time

import fluxgate
import fluxgate.registry
from fluxgate import AsyncCircuitBreaker, BreakerRegistry, CircuitBreaker
from fluxgate import permits
from fluxgate.retries import Always, Never
from fluxgate.signal import Signal
from fluxgate.trippers import MinRequests


def fail() -> None:
    raise RuntimeError("upstream down")


def tripping_breaker(_key: object = None) -> CircuitBreaker:
    """Opens on its first failure and stays open."""
    return CircuitBreaker(tripper=MinRequests(1), retry=Never())


def open_it(breaker: CircuitBreaker) -> None:
    with pytest.raises(RuntimeError):
        breaker.call(fail)
    assert breaker.info().state == "open"


class ClosingListener:
    def __init__(self, name: str, closed: list[str]) -> None:
        self.name = name
        self.closed = closed

    def __call__(self, signal: Signal, /) -> None:
        pass

    def close(self) -> None:
        self.closed.append(self.name)


# ---- making breakers -------------------------------------------------------------


def test_a_key_gets_one_breaker_made_by_the_factory_on_first_use() -> None:
    made: list[str] = []

    def factory(key: str) -> CircuitBreaker:
        made.append(key)
        return CircuitBreaker()

    registry = BreakerRegistry(factory)
    assert registry.get_existing("a") is None
    assert "a" not in registry and len(registry) == 0

    first = registry["a"]
    assert registry["a"] is first
    assert registry.get("a") is first
    assert registry.get_existing("a") is first
    second = registry.get("b")
    assert second is not first
    assert made == ["a", "b"]
    assert "a" in registry and "c" not in registry and len(registry) == 2
    assert registry.items() == [("a", first), ("b", second)]
    assert made == ["a", "b"]  # inspection makes nothing


def test_the_registry_is_importable_from_fluxgate_but_not_in_all() -> None:
    assert fluxgate.BreakerRegistry is fluxgate.registry.BreakerRegistry
    assert fluxgate.__all__ == [
        "AsyncCircuitBreaker", "CallNotPermittedError", "CircuitBreaker", "State",
    ]  # fmt: skip
    registry = BreakerRegistry(tripping_breaker, max_breakers=5, idle_after=1)
    assert (registry.max_breakers, registry.idle_after) == (5, 1.0)
    assert repr(registry) == "<BreakerRegistry 0 breakers, max_breakers=5, idle_after=1.0>"


def test_async_breakers_work_alike() -> None:
    closed: list[str] = []
    registry: BreakerRegistry[str, AsyncCircuitBreaker] = BreakerRegistry(
        lambda key: AsyncCircuitBreaker(listeners=[ClosingListener(key, closed)]),
        max_breakers=1,
        idle_after=0,
    )
    first = registry["a"]
    assert isinstance(first, AsyncCircuitBreaker) and registry["a"] is first
    registry["b"]
    assert "a" not in registry and closed == ["a"]


def test_eight_threads_asking_for_one_new_key_make_exactly_one_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = 0
    waiting_lock = threading.Lock()
    all_waiting = threading.Event()

    class CountingEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            nonlocal waiting
            with waiting_lock:
                waiting += 1
                if waiting == 7:
                    all_waiting.set()
            return super().wait(timeout)

    class CountingLatch(fluxgate.registry._Latch):
        __slots__ = ()

        def __init__(self) -> None:
            super().__init__()
            self.done = CountingEvent()

    monkeypatch.setattr(fluxgate.registry, "_Latch", CountingLatch)
    made: list[CircuitBreaker] = []

    def factory(key: str) -> CircuitBreaker:
        # Blocks until the seven other threads wait for this very breaker:
        # they really overlap with the factory.
        assert all_waiting.wait(30), "the other threads never waited for the factory"
        made.append(CircuitBreaker())
        return made[-1]

    registry = BreakerRegistry(factory)
    got: list[CircuitBreaker] = []
    run_threads([lambda: got.append(registry["host"])] * 8)

    assert len(made) == 1
    assert got == made * 8
    assert len(registry) == 1


def test_no_common_lock_is_held_while_a_factory_runs() -> None:
    entered, release = threading.Event(), threading.Event()

    def factory(key: str) -> CircuitBreaker:
        if key == "slow":
            entered.set()
            assert release.wait(30)
        return CircuitBreaker()

    registry = BreakerRegistry(factory)
    registry["ready"]
    slow = threading.Thread(target=lambda: registry["slow"])
    slow.start()
    try:
        assert entered.wait(30)
        # Another key, new or not, is served while the slow factory runs.
        assert registry["other"] is registry.get_existing("other")
        assert registry["ready"] is registry.get_existing("ready")
        assert "slow" not in registry
    finally:
        release.set()
        slow.join(30)
    assert "slow" in registry


def test_a_factory_that_raises_makes_nothing_and_the_next_lookup_tries_again() -> None:
    attempts: list[str] = []

    def factory(key: str) -> CircuitBreaker:
        attempts.append(key)
        if len(attempts) == 1:
            raise ConnectionError("configuration service down")
        return CircuitBreaker()

    registry = BreakerRegistry(factory)
    with pytest.raises(ConnectionError):
        registry["a"]
    assert "a" not in registry
    breaker = registry["a"]
    assert registry["a"] is breaker and attempts == ["a", "a"]


def test_a_factory_asking_for_its_own_key_is_an_error_not_a_deadlock() -> None:
    registry: BreakerRegistry[str, CircuitBreaker]

    def factory(key: str) -> CircuitBreaker:
        return registry[key]

    registry = BreakerRegistry(factory)
    with pytest.raises(RuntimeError, match="asked for the key it is making"):
        registry["a"]
    assert len(registry) == 0


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"factory": 42}, TypeError, "factory must be callable"),
        ({"max_breakers": "10"}, TypeError, "max_breakers must be an int"),
        ({"max_breakers": True}, TypeError, "max_breakers must be an int"),
        ({"max_breakers": 0}, ValueError, "max_breakers must be at least 1"),
        ({"idle_after": "1"}, TypeError, "idle_after must be a number"),
        ({"idle_after": -1}, ValueError, "idle_after must be"),
        ({"idle_after": float("nan")}, ValueError, "idle_after must be"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, Any], error: type, message: str) -> None:
    arguments.setdefault("factory", tripping_breaker)
    with pytest.raises(error, match=message):
        BreakerRegistry(**arguments)


# ---- the bound -------------------------------------------------------------------


@pytest.mark.no_leakcheck("tracemalloc and 10,000 breakers; the registry's own test")
def test_ten_thousand_keys_stay_within_a_bound_of_a_thousand_and_open_ones_stay() -> None:
    registry = BreakerRegistry(tripping_breaker, max_breakers=1000, idle_after=0)
    opened: dict[int, CircuitBreaker] = {}
    largest = 0

    def insert(key: int) -> None:
        nonlocal largest
        breaker = registry[key]
        if key % 100 == 0:  # a hundred of them open
            open_it(breaker)
            opened[key] = breaker
        largest = max(largest, len(registry))

    gc.collect()
    tracemalloc.start()
    try:
        for key in range(1000):
            insert(key)
        gc.collect()
        at_bound = tracemalloc.get_traced_memory()[0]
        for key in range(1000, 10_000):
            insert(key)
        gc.collect()
        at_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert largest == 1000 and len(registry) == 1000
    # 9,000 more keys went through, yet memory stayed where it was at the bound
    # (an unbounded registry would take about ten times as much).
    assert at_end < at_bound * 1.25, (at_bound, at_end)
    for key, breaker in opened.items():
        assert registry.get_existing(key) is breaker
        assert breaker.info().state == "open"


def _in_state(state: str) -> CircuitBreaker:
    breaker = CircuitBreaker(tripper=MinRequests(1), retry=Always(), permit=permits.All())
    if state == "open":
        breaker = tripping_breaker()
        open_it(breaker)
    elif state == "half_open":
        with pytest.raises(RuntimeError):
            breaker.call(fail)
        breaker.call(lambda: None)  # OPEN -> HALF_OPEN; the tripper keeps it there
    elif state == "forced_open":
        breaker.force_open()
    elif state == "disabled":
        breaker.disable()
    elif state == "metrics_only":
        breaker.metrics_only()
    assert breaker.info().state == state
    return breaker


@pytest.mark.parametrize("state", ["open", "half_open", "forced_open", "disabled", "metrics_only"])
def test_a_breaker_not_closed_is_never_evicted_and_the_registry_warns_once(state: str) -> None:
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=1, idle_after=0)
    kept = _in_state(state)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry, "_factory", lambda key: kept)
        registry["kept"]
    with pytest.warns(RuntimeWarning, match=r"holds 2 breakers, more than max_breakers=1"):
        registry["new"]
    assert registry.get_existing("kept") is kept and len(registry) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry["newer"]  # "new" goes (CLOSED, unused since); no second warning
    assert registry.get_existing("kept") is kept
    assert sorted(key for key, _ in registry.items()) == ["kept", "newer"]


def test_only_breakers_idle_for_idle_after_go_least_recently_used_first() -> None:
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=2, idle_after=60)
    with freeze_time("2026-01-01 00:00:00") as frozen:
        registry["a"], registry["b"]
        frozen.tick(10)
        with pytest.warns(RuntimeWarning):
            registry["c"]  # a and b were used less than 60 s ago
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            registry["d"]
        assert sorted(key for key, _ in registry.items()) == ["a", "b", "c", "d"]

        frozen.tick(61)
        b = registry["b"]  # used: b is not idle any more
        registry["e"]
        assert sorted(key for key, _ in registry.items()) == ["b", "e"]
        assert registry["b"] is b


def test_eviction_resumes_once_the_kept_breakers_become_idle() -> None:
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=16, idle_after=60)
    with freeze_time("2026-01-01 00:00:00") as frozen:
        with pytest.warns(RuntimeWarning):
            for key in range(17):
                registry[key]
        frozen.tick(30)
        for key in range(17, 20):
            registry[key]
        assert len(registry) == 20
        frozen.tick(31)  # the first 17 are now idle for 61 s
        registry[20]
        assert len(registry) == 16
        assert all(key in registry for key in range(17, 21))


def test_an_evicted_breaker_keeps_working_and_the_key_gets_a_new_one() -> None:
    registry = BreakerRegistry(tripping_breaker, max_breakers=1, idle_after=0)
    old = registry["a"]
    registry["b"]
    assert "a" not in registry
    open_it(old)  # still usable on its own
    new = registry["a"]
    assert new is not old and new.info().state == "closed"


# ---- listeners on eviction ---------------------------------------------------------


def test_eviction_closes_listeners_no_other_breaker_uses() -> None:
    closed: list[str] = []
    shared = ClosingListener("shared", closed)

    def factory(key: str) -> CircuitBreaker:
        return CircuitBreaker(listeners=[ClosingListener(key, closed), shared, print])

    registry = BreakerRegistry(factory, max_breakers=2, idle_after=0)
    registry["a"], registry["b"]
    registry["c"]
    assert closed == ["a"]  # "shared" is still used by b and c
    registry["d"]
    assert closed == ["a", "b"]
    registry["e"], registry["f"]
    assert closed == ["a", "b", "c", "d"]

    # Another registry's breakers do not count: x was the last user here.
    lone = BreakerRegistry(
        lambda key: CircuitBreaker(listeners=[shared] if key == "x" else []),
        max_breakers=1,
        idle_after=0,
    )
    lone["x"], lone["y"]
    assert closed[-1] == "shared"


def test_a_listener_whose_close_raises_is_logged_and_the_lookup_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(ClosingListener):
        def close(self) -> None:
            raise OSError("exporter gone")

    registry = BreakerRegistry(
        lambda key: CircuitBreaker(listeners=[Broken(key, [])]), max_breakers=1, idle_after=0
    )
    registry["a"]
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        b = registry["b"]
    assert registry["b"] is b
    assert "Closing listener Broken of an evicted breaker failed" in caplog.text


def test_eviction_removes_the_prometheus_series_of_the_evicted_breaker() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from fluxgate.listeners.prometheus import PrometheusListener

    metrics = prometheus_client.CollectorRegistry()

    def factory(host: str) -> CircuitBreaker:
        return CircuitBreaker(listeners=[PrometheusListener(host, registry=metrics)])

    registry = BreakerRegistry(factory, max_breakers=1, idle_after=0)
    registry["a.example"].reset()

    def value(name: str) -> float | None:
        got: float | None = metrics.get_sample_value(
            "circuit_breaker_state", {"circuit_name": name, "state": "closed"}
        )
        return got

    assert value("a.example") == 1
    registry["b.example"].reset()
    assert value("a.example") is None
    assert value("b.example") == 1


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_a_registry_under_its_bound_never_sweeps(
    no_warnings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[object] = []
    registry = BreakerRegistry(tripping_breaker, max_breakers=3, idle_after=0)
    monkeypatch.setattr(
        BreakerRegistry, "_is_closed", staticmethod(lambda breaker: looked.append(breaker) or True)
    )
    for key in "abc":
        registry[key]
    assert looked == []
    registry["d"]
    assert len(looked) == 1 and len(registry) == 3


# ---- shared= : one host-shared breaker per key -----------------------------------


_SHARED_CHILD = """
import sys
from fluxgate import BreakerRegistry, CircuitBreaker
from fluxgate.shared import HostMemory
from fluxgate.trippers import MinRequests
registry = BreakerRegistry(
    lambda key, shared: CircuitBreaker(tripper=MinRequests(1), shared=shared),
    shared=HostMemory("svc", directory=sys.argv[1]),
)
try:
    registry[("api.example", 443)].call(lambda: 1 / 0)
except ZeroDivisionError:
    pass
print(registry[("api.example", 443)].info().state)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="HostMemory needs POSIX shared memory")
def test_a_shared_registry_gives_each_key_one_breaker_for_the_host(tmp_path: Path) -> None:
    from fluxgate.shared import HostMemory

    made: list[Any] = []

    def factory(key: tuple[str, int], shared: HostMemory) -> CircuitBreaker:
        made.append(shared)
        return CircuitBreaker(shared=shared)

    registry = BreakerRegistry(factory, shared=HostMemory("svc", directory=tmp_path))
    breaker = registry[("api.example", 443)]
    healthy = registry[("db.example", 5432)]
    # Another process, with another hash seed, names the key's segment alike.
    child = subprocess.run(
        [sys.executable, "-c", _SHARED_CHILD, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "open"
    assert breaker.info().state == "open"
    assert healthy.info().state == "closed"
    assert [m.directory for m in made] == [str(tmp_path)] * 2
    assert all(m.name.startswith("svc-") for m in made)
    assert made[0].name != made[1].name


@pytest.mark.skipif(sys.platform == "win32", reason="HostMemory needs POSIX shared memory")
def test_a_shared_registry_needs_a_named_host_memory(tmp_path: Path) -> None:
    from fluxgate.shared import HostMemory

    with pytest.raises(ValueError, match="named HostMemory"):
        BreakerRegistry(lambda key, shared: CircuitBreaker(), shared=HostMemory())
    with pytest.raises(ValueError, match="named HostMemory"):
        BreakerRegistry(lambda key, shared: CircuitBreaker(), shared=HostMemory("x" * 90))
    with pytest.raises(TypeError, match="shared must be a HostMemory or None, not str"):
        BreakerRegistry(lambda key, shared: CircuitBreaker(), shared="svc")  # type: ignore[arg-type]


# ---- lookups of existing keys ---------------------------------------------------


@pytest.mark.parametrize("lookup", ["item", "get"])
def test_a_lookup_marks_the_breaker_used_so_a_sweep_keeps_it(lookup: str) -> None:
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=2, idle_after=60)

    def use(key: str) -> CircuitBreaker:
        return registry[key] if lookup == "item" else registry.get(key)

    with freeze_time("2026-01-01 00:00:00") as frozen:
        a, b = use("a"), use("b")
        frozen.tick(61)  # both idle now
        assert use("a") is a  # a is used again
        use("c")  # one has to go: b, the idle one
        assert sorted(key for key, _ in registry.items()) == ["a", "c"]
        assert registry.get_existing("a") is a
        assert "b" not in registry and b.info().state == "closed"


def test_each_key_is_made_once_whichever_lookup_asks() -> None:
    made: list[object] = []

    def factory(key: object) -> CircuitBreaker:
        made.append(key)
        return CircuitBreaker()

    registry = BreakerRegistry(factory)
    first = registry["a"]
    assert registry.get("a") is first
    assert registry.get(key="a") is first
    assert registry["a"] is first
    assert registry[1] is registry.get(1.0)  # equal keys are one key, as in a dict
    assert made == ["a", 1]
    with pytest.raises(TypeError, match="unhashable"):
        registry[["a"]]
    with pytest.raises(TypeError, match="unhashable"):
        registry.get(["a"])
    for bad in ((), ("a", "b")):
        with pytest.raises(TypeError, match="takes exactly one argument"):
            registry.get(*bad)
    with pytest.raises(TypeError, match="unexpected keyword argument 'name'"):
        registry.get(name="a")  # type: ignore[call-arg]
    assert made == ["a", 1]


def test_a_subclass_making_breakers_its_own_way_is_asked_for_new_keys_only() -> None:
    asked: list[object] = []

    class Logged(BreakerRegistry[str, CircuitBreaker]):
        __slots__ = ()

        def _make(self, key: str) -> CircuitBreaker:
            asked.append(key)
            return super()._make(key)

    registry = Logged(lambda key: CircuitBreaker())
    assert registry["a"] is registry.get("a") is registry["a"]
    assert asked == ["a"]


def test_a_registry_in_a_reference_cycle_is_collected() -> None:
    import weakref

    registry: BreakerRegistry[str, CircuitBreaker] = BreakerRegistry(
        lambda key: CircuitBreaker(listeners=[lambda signal: registry])
    )
    registry["a"]  # registry -> its entry -> breaker -> listener -> registry
    gone = weakref.ref(registry)
    del registry
    gc.collect()
    assert gone() is None


def test_the_native_entry_keeps_its_breaker_and_a_bool_touched_flag() -> None:
    from fluxgate._fluxgate import _RegistryEntry

    breaker = CircuitBreaker()
    entry = _RegistryEntry(breaker, 5.0, ())
    assert (entry.breaker, entry.seen, entry.listeners, entry.touched) == (breaker, 5.0, (), False)
    entry.touched, entry.seen = True, 6.5
    assert (entry.touched, entry.seen) == (True, 6.5)
    with pytest.raises(TypeError, match="touched must be a bool, not int"):
        entry.touched = 1  # type: ignore[assignment]
    with pytest.raises(TypeError, match="touched must be a bool"):
        del entry.touched
    with pytest.raises(AttributeError):
        entry.breaker = CircuitBreaker()  # type: ignore[misc]
    with pytest.raises(TypeError):
        _RegistryEntry(breaker, "now", ())  # type: ignore[arg-type]
