"""RedisFleet in one process: its arguments, its keys, the fleet metric, the
sync thread's faults and forks. Breakers of one process that share a
RedisFleet are members of one fleet (each its own member), as breakers of
several hosts would be."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import warnings
from typing import Any

import pytest
from conftest import wait_for_child

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.trippers import FailureRate, MinRequests
from fluxgate.windows import CountWindow, TimeWindow

pytestmark = pytest.mark.no_leakcheck("starts a redis-server")


def fleet_of(server: Any, name: str = "payments", **kwargs: Any) -> Any:
    from fluxgate.shared import RedisFleet

    kwargs.setdefault("sync_interval", 60.0)
    client = server.client(socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisFleet(name, client, **kwargs)


def first_syncs_done() -> None:
    """The sync thread syncs each new member at once; wait until it has, so
    that the test decides every later sync (with sync_now)."""
    from fluxgate._fleet import _syncer

    deadline = time.monotonic() + 30
    while any(m.due == 0.0 and m.ref() is not None for m in _syncer().members):
        assert time.monotonic() < deadline, "the sync thread never ran"
        time.sleep(0.001)


def boom() -> None:
    raise ValueError("failure")


def fail(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises((ValueError, CallNotPermittedError)):
            breaker.call(boom)


def test_arguments_are_checked(redis_server: Any) -> None:
    from fluxgate.shared import RedisFleet

    client = redis_server.client()
    with pytest.raises(TypeError, match="client must be a synchronous redis.Redis"):
        RedisFleet("payments", object())
    with pytest.raises(TypeError, match="name must be a str"):
        RedisFleet(1, client)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be"):
        RedisFleet("a{b}", client)
    with pytest.raises(ValueError, match="prefix must be"):
        RedisFleet("payments", client, prefix="")
    with pytest.raises(TypeError, match="sync_interval must be a number"):
        RedisFleet("payments", client, sync_interval="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sync_interval must be between"):
        RedisFleet("payments", client, sync_interval=0)
    with pytest.raises(TypeError, match="window must be a CountWindow or TimeWindow"):
        CircuitBreaker(window=object(), shared=RedisFleet("payments", client))


def test_a_client_without_socket_timeout_is_warned_about(redis_server: Any) -> None:
    import redis

    from fluxgate.shared import RedisFleet

    with pytest.warns(RuntimeWarning, match="no socket_timeout") as warned:
        RedisFleet("payments", redis.Redis(port=redis_server.port))
    assert [w.category.__mro__[1:3] for w in warned] == [(UserWarning, RuntimeWarning)]
    assert warned[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RedisFleet("payments", redis.Redis(port=redis_server.port, socket_timeout=1))


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from fluxgate.shared import RedisFleet

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"fluxgate\[redis\]"):
        RedisFleet("payments", object())


def test_keys_share_a_hash_tag_and_expire(redis_server: Any) -> None:
    fleet = fleet_of(redis_server, prefix="svc")
    assert fleet.keys == ("{svc:payments}:state", "{svc:payments}:members")
    breaker = CircuitBreaker(shared=fleet)
    assert fleet.sync_now() is True
    client = redis_server.client()
    assert sorted(client.keys("*")) == sorted(k.encode() for k in fleet.keys)
    for key in fleet.keys:
        assert client.pttl(key) > 0
    del breaker


def test_the_fleet_metric_sums_the_members(redis_server: Any) -> None:
    fleet = fleet_of(redis_server)
    tripper = MinRequests(100) & FailureRate(0.5)
    a = CircuitBreaker(window=TimeWindow(60), tripper=tripper, shared=fleet)
    b = CircuitBreaker(window=TimeWindow(60), tripper=tripper, shared=fleet)
    first_syncs_done()
    fail(a, 3)
    fail(b, 2)
    assert a.info().metrics.total_count == 3
    assert fleet.sync_now() and fleet.sync_now()
    assert a.info().metrics.total_count == 5
    assert a.info().metrics.failure_count == 5
    assert b.info().metrics.total_count == 5
    # Its own part is always its live one.
    fail(a, 1)
    assert a.info().metrics.total_count == 6


def test_the_other_members_part_expires_when_sync_stops(redis_server: Any) -> None:
    fleet = fleet_of(redis_server, sync_interval=0.05)
    a = CircuitBreaker(shared=fleet)
    b = CircuitBreaker(shared=fleet)
    fail(a, 3)
    fail(b, 2)
    assert fleet.sync_now() and fleet.sync_now()
    assert a.info().metrics.total_count == 5
    redis_server.pause()  # the sync thread hangs; calls do not
    try:
        # Three intervals after the last sync, the other member's part is
        # dropped though no sync could run.
        deadline = time.monotonic() + 30
        while a.info().metrics.total_count != 3:
            assert time.monotonic() < deadline, "the stale part was never dropped"
            time.sleep(0.01)
        fail(a, 1)
        assert a.info().metrics.total_count == 4
    finally:
        redis_server.resume()


def test_a_tripper_raising_after_a_sync_is_logged(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = fleet_of(redis_server)
    armed = []

    def tripper(ctx: Any) -> bool:
        if armed:
            raise RuntimeError("tripper broke")
        return False

    breaker = CircuitBreaker(tripper=tripper, shared=fleet)
    first_syncs_done()
    breaker.call(int)
    armed.append(True)
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        assert fleet.sync_now() is True
    assert any("raised after a sync" in r.getMessage() for r in caplog.records)
    assert breaker.info().state == "closed"


def test_losing_redis_warns_once_and_once_when_back(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = fleet_of(redis_server)
    breaker = CircuitBreaker(shared=fleet)
    assert fleet.sync_now() is True
    with caplog.at_level(logging.WARNING, logger="fluxgate"):
        redis_server.kill()
        assert fleet.sync_now() is False
        assert fleet.sync_now() is False
        breaker.call(int)  # calls go on
        redis_server.start()
        assert fleet.sync_now() is True
        assert fleet.sync_now() is True
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost Redis" in m for m in messages) == 1
    assert sum("reached Redis again" in m for m in messages) == 1
    # Nothing of the connection (host, port) is logged.
    assert not any(str(redis_server.port) in m for m in messages)


def test_a_command_reaches_the_other_members(redis_server: Any) -> None:
    fleet = fleet_of(redis_server)
    a = CircuitBreaker(shared=fleet)
    b = CircuitBreaker(shared=fleet)
    assert fleet.sync_now()
    a.disable()
    assert fleet.sync_now()
    assert b.info().state == "disabled"


def test_the_asyncio_breaker_joins_the_fleet(redis_server: Any) -> None:
    fleet = fleet_of(redis_server)
    tripper = MinRequests(4) & FailureRate(0.5)

    async def run() -> None:
        a = AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)
        b = AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)

        async def aboom() -> None:
            raise ValueError("failure")

        for breaker in (a, b):
            for _ in range(2):
                with pytest.raises(ValueError):
                    await breaker.call(aboom)
        assert fleet.sync_now() and fleet.sync_now()
        assert (await b.info()).state == "open" if asyncio.iscoroutinefunction(
            b.info
        ) else b.info().state == "open"
        with pytest.raises(CallNotPermittedError):
            await a.call(aboom)

    asyncio.run(run())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_children_forked_while_the_sync_thread_talks_to_redis_can_sync(
    redis_server: Any,
) -> None:
    import threading

    fleet = fleet_of(redis_server, name="fork-while-syncing", sync_interval=0.01)
    breaker = CircuitBreaker(window=CountWindow(10), shared=fleet)
    assert fleet.sync_now()
    stop = threading.Event()

    def sync_constantly(fleet: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            fleet.sync_now()

    syncing = threading.Thread(target=sync_constantly, args=(fleet, stop))
    syncing.start()
    try:
        for _ in range(40):
            time.sleep(0.003)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    code = 0 if fleet.sync_now() else 2
                finally:
                    os._exit(code)
            assert wait_for_child(pid, timeout=20) == 0
    finally:
        stop.set()
        syncing.join(30)
    del breaker


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_is_a_member_of_its_own(redis_server: Any) -> None:
    fleet = fleet_of(redis_server, name="forked")
    breaker = CircuitBreaker(window=CountWindow(10), shared=fleet)
    assert fleet.sync_now()
    client = redis_server.client()
    assert client.hlen(fleet.keys[1]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its own member id, its own sync
        code = 0 if fleet.sync_now() else 1
        os._exit(code)
    assert wait_for_child(pid) == 0
    assert client.hlen(fleet.keys[1]) == 2
    del breaker


def test_the_fleet_probe_budget_holds_across_members(redis_server: Any) -> None:
    from fluxgate.permits import All
    from fluxgate.retries import Always

    fleet = fleet_of(redis_server, name="probes", sync_interval=0.05)
    tripper = MinRequests(2) & FailureRate(0.5)

    async def run() -> None:
        members = [
            AsyncCircuitBreaker(
                tripper=tripper, retry=Always(), permit=All(), max_half_open_calls=2,
                shared=fleet,
            )
            for _ in range(2)
        ]
        assert fleet.sync_now()

        async def aboom() -> None:
            raise ValueError("failure")

        for _ in range(2):
            with pytest.raises(ValueError):
                await members[0].call(aboom)
        assert fleet.sync_now()
        running = 0
        most = 0
        release = asyncio.Event()

        async def probe() -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

        # Six probes, three on each member, against a budget of two.
        probes = [
            asyncio.ensure_future(member.call(probe)) for member in members for _ in range(3)
        ]
        deadline = time.monotonic() + 30
        while running < 2:
            assert time.monotonic() < deadline, "no probe ran"
            await asyncio.sleep(0.01)
        for _ in range(40):  # some twenty sync intervals
            await asyncio.sleep(0.025)
            assert running <= 2
        release.set()
        await asyncio.gather(*probes, return_exceptions=True)
        assert most == 2

    asyncio.run(run())


def test_a_transition_made_while_cut_off_is_pushed_only_if_the_fleet_did_not_move(
    redis_server: Any,
) -> None:
    import redis

    from fluxgate.shared import RedisFleet

    def fleet() -> Any:
        return RedisFleet("cut", redis_server.client(socket_timeout=0.5), sync_interval=60)

    fleet_a, fleet_b = fleet(), fleet()
    a, b = CircuitBreaker(shared=fleet_a), CircuitBreaker(shared=fleet_b)
    assert fleet_a.sync_now() and fleet_b.sync_now()
    connected = fleet_a._client
    with socket_closed_port() as port:
        fleet_a._client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
        a.force_open()
        assert fleet_a.sync_now() is False
    fleet_a._client = connected
    # The fleet did not move meanwhile: the member's transition is pushed.
    assert fleet_a.sync_now() and fleet_b.sync_now()
    assert b.info().state == "forced_open"

    with socket_closed_port() as port:
        fleet_a._client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
        a.reset()
        assert fleet_a.sync_now() is False
        b.disable()  # the fleet moves meanwhile
        assert fleet_b.sync_now()
    fleet_a._client = connected
    # It did: the member adopts the fleet's state instead.
    assert fleet_a.sync_now()
    assert a.info().state == "disabled"
    assert fleet_b.sync_now()
    assert b.info().state == "disabled"


def test_a_command_given_while_cut_off_loses_to_a_trip_the_fleet_made_meanwhile(
    redis_server: Any,
) -> None:
    import redis

    from fluxgate.shared import RedisFleet

    def fleet() -> Any:
        return RedisFleet(
            "cut-command", redis_server.client(socket_timeout=0.5), sync_interval=60
        )

    fleet_a, fleet_b = fleet(), fleet()
    tripper = MinRequests(1) & FailureRate(0.5)
    a = CircuitBreaker(tripper=tripper, retry=Never(), shared=fleet_a)
    b = CircuitBreaker(tripper=tripper, retry=Never(), shared=fleet_b)
    assert fleet_a.sync_now() and fleet_b.sync_now()
    connected = fleet_a._client
    with socket_closed_port() as port:
        fleet_a._client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
        a.force_open()
        assert fleet_a.sync_now() is False
        with pytest.raises(ValueError):
            b.call(boom)  # the fleet trips meanwhile
        assert fleet_b.sync_now()
    fleet_a._client = connected
    # What the rest of the fleet decided while the member was away wins.
    assert fleet_a.sync_now()
    assert a.info().state == "open"
    assert fleet_b.sync_now()
    assert b.info().state == "open"


class socket_closed_port:
    """A port on 127.0.0.1 that nothing listens on (while in the block)."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))  # bound, never listening: refused
        port: int = self.socket.getsockname()[1]
        return port

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_syncs_on_a_thread_of_its_own(redis_server: Any) -> None:
    # gunicorn --preload: the breaker is built before the workers fork.
    fleet = fleet_of(redis_server, name="preload", sync_interval=0.05)
    tripper = MinRequests(5) & FailureRate(0.5)
    breaker = CircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)
    assert fleet.sync_now()
    client = redis_server.client()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the worker: it trips; its own sync thread tells the fleet
        try:
            for _ in range(5):
                try:
                    breaker.call(boom)
                except ValueError:
                    pass
            deadline = time.monotonic() + 30
            while client.hget(fleet.keys[0], "state") != b"open":
                if time.monotonic() > deadline:
                    os._exit(1)
                time.sleep(0.01)
            os._exit(0)
        except BaseException:
            os._exit(2)
    assert wait_for_child(pid) == 0
    # The parent's sync thread adopts the worker's trip.
    deadline = time.monotonic() + 30
    while breaker.info().state != "open":
        assert time.monotonic() < deadline, "the parent never adopted the trip"
        time.sleep(0.01)
    with pytest.raises(CallNotPermittedError):
        breaker.call(int)


def test_slow_counts_are_summed_across_members(redis_server: Any) -> None:
    from unittest import mock

    from fluxgate.trippers import SlowRate

    fleet = fleet_of(redis_server, name="slow")
    tripper = MinRequests(4) & SlowRate(1.0, threshold=1.0)
    a = CircuitBreaker(window=TimeWindow(60), tripper=tripper, shared=fleet)
    b = CircuitBreaker(window=TimeWindow(60), tripper=tripper, shared=fleet)
    first_syncs_done()
    for breaker in (a, b):
        with mock.patch("time.perf_counter", side_effect=[10.0, 12.0, 20.0, 22.0]):
            breaker.call(int)
            breaker.call(int)
    # Two slow calls of four in each member: MinRequests(4) holds only on
    # the fleet's metric, where 4 of 4 calls are slow.
    assert fleet.sync_now() and fleet.sync_now()
    assert a.info().state == b.info().state == "open"


def test_an_asyncio_breakers_listeners_hear_of_a_sync_thread_trip_at_once(
    redis_server: Any,
) -> None:
    fleet = fleet_of(redis_server, name="async-signals")
    tripper = MinRequests(4) & FailureRate(0.5)

    async def aboom() -> None:
        raise ValueError("failure")

    async def run() -> None:
        heard: list[tuple[str, str]] = []
        opened = asyncio.Event()

        def listener(signal: Any) -> None:
            heard.append((signal.old_state, signal.new_state))
            opened.set()

        a = AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)
        b = AsyncCircuitBreaker(
            tripper=tripper, retry=Never(), listeners=[listener], shared=fleet
        )
        await asyncio.to_thread(first_syncs_done)
        for breaker in (a, b):
            for _ in range(2):
                with pytest.raises(ValueError):
                    await breaker.call(aboom)
        # Neither saw enough alone; a sync on another thread, as the sync
        # thread's, trips each on the fleet metric. b's listener hears of it
        # with no further call or command on b.
        assert await asyncio.to_thread(fleet.sync_now)
        assert await asyncio.to_thread(fleet.sync_now)
        assert b.info().state == "open"
        await asyncio.wait_for(opened.wait(), timeout=30)
        assert heard == [("closed", "open")]
        # Heard once: the next call refuses without a second signal.
        with pytest.raises(CallNotPermittedError):
            await b.call(aboom)
        assert heard == [("closed", "open")]

    asyncio.run(run())


def test_an_asyncio_breaker_whose_loop_closed_hears_at_its_next_call(
    redis_server: Any,
) -> None:
    fleet = fleet_of(redis_server, name="async-closed-loop")
    tripper = MinRequests(4) & FailureRate(0.5)
    heard: list[tuple[str, str]] = []
    breakers: list[AsyncCircuitBreaker] = []

    async def aboom() -> None:
        raise ValueError("failure")

    async def fail_twice() -> None:
        for breaker in breakers:
            for _ in range(2):
                with pytest.raises(ValueError):
                    await breaker.call(aboom)

    breakers.append(AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet))
    breakers.append(
        AsyncCircuitBreaker(
            tripper=tripper,
            retry=Never(),
            listeners=[lambda s: heard.append((s.old_state, s.new_state))],
            shared=fleet,
        )
    )
    first_syncs_done()
    asyncio.run(fail_twice())  # the breakers' loop, closed when it ends
    assert fleet.sync_now() and fleet.sync_now()
    assert breakers[1].info().state == "open"
    assert heard == []  # no loop to deliver on: kept for the next call

    async def call() -> None:
        with pytest.raises(CallNotPermittedError):
            await breakers[1].call(aboom)

    asyncio.run(call())
    assert heard == [("closed", "open")]


def test_a_command_wins_over_a_transition_its_member_had_not_seen(
    redis_server: Any,
) -> None:
    fleet_a = fleet_of(redis_server, name="command-wins")
    fleet_b = fleet_of(redis_server, name="command-wins")
    tripper = MinRequests(2) & FailureRate(0.5)
    heard_a: list[tuple[str, str]] = []
    heard_b: list[tuple[str, str]] = []
    a = CircuitBreaker(
        tripper=tripper, retry=Never(), shared=fleet_a,
        listeners=[lambda s: heard_a.append((s.old_state, s.new_state))],
    )
    b = CircuitBreaker(
        tripper=tripper, retry=Never(), shared=fleet_b,
        listeners=[lambda s: heard_b.append((s.old_state, s.new_state))],
    )
    first_syncs_done()
    fail(b, 2)
    assert b.info().state == "open"
    assert fleet_b.sync_now()  # the fleet is OPEN; a has not seen it yet
    a.disable()
    assert fleet_a.sync_now()
    # The command stands in its member and reaches the fleet.
    assert a.info().state == "disabled"
    assert fleet_b.sync_now()
    assert b.info().state == "disabled"
    b.call(int)  # DISABLED: runs
    assert heard_a == [("closed", "disabled")]
    assert heard_b == [("closed", "open")]  # the adopted command: no signal


def test_of_two_commands_neither_member_saw_the_later_wins(redis_server: Any) -> None:
    fleet_a = fleet_of(redis_server, name="later-command")
    fleet_b = fleet_of(redis_server, name="later-command")
    a, b = CircuitBreaker(shared=fleet_a), CircuitBreaker(shared=fleet_b)
    assert fleet_a.sync_now() and fleet_b.sync_now()
    # The earlier command pushed first: the later one replaces it.
    a.force_open()
    b.disable()
    assert a.info().changed_at < b.info().changed_at
    assert fleet_a.sync_now() and fleet_b.sync_now() and fleet_a.sync_now()
    assert a.info().state == b.info().state == "disabled"
    # The later command pushed first: the earlier one loses to it.
    a.metrics_only()
    b.force_open()
    assert a.info().changed_at < b.info().changed_at
    assert fleet_b.sync_now() and fleet_a.sync_now() and fleet_b.sync_now()
    assert a.info().state == b.info().state == "forced_open"


def test_an_asyncio_breaker_built_in_a_coroutine_hears_before_its_first_call(
    redis_server: Any,
) -> None:
    fleet = fleet_of(redis_server, name="async-built")
    fleet_b = fleet_of(redis_server, name="async-built")

    async def run() -> None:
        opened = asyncio.Event()
        a = AsyncCircuitBreaker(
            tripper=MinRequests(4) & FailureRate(0.5), retry=Never(),
            listeners=[lambda s: opened.set()], shared=fleet,
        )
        # The other member's metric alone trips a, on a's sync, which has
        # never made a call.
        b = CircuitBreaker(tripper=MinRequests(99), window=TimeWindow(60), shared=fleet_b)
        await asyncio.to_thread(first_syncs_done)
        fail(b, 4)
        assert await asyncio.to_thread(fleet_b.sync_now)
        assert await asyncio.to_thread(fleet.sync_now)
        assert a.info().state == "open"
        await asyncio.wait_for(opened.wait(), timeout=30)

    asyncio.run(run())


def test_a_trip_after_a_command_is_what_goes_and_it_loses_to_a_moved_fleet(
    redis_server: Any,
) -> None:
    fleet_a = fleet_of(redis_server, name="trip-after-command")
    fleet_b = fleet_of(redis_server, name="trip-after-command")
    tripper = MinRequests(2) & FailureRate(0.5)
    a = CircuitBreaker(tripper=tripper, retry=Never(), shared=fleet_a)
    b = CircuitBreaker(tripper=tripper, retry=Never(), shared=fleet_b)
    assert fleet_a.sync_now() and fleet_b.sync_now()
    a.reset()  # a command ...
    fail(a, 2)  # ... then a trip of a's own machine, not yet pushed
    assert a.info().state == "open"
    b.disable()
    assert fleet_b.sync_now()  # the fleet moved meanwhile
    assert fleet_a.sync_now()
    assert a.info().state == "disabled"
    assert fleet_b.sync_now()
    assert b.info().state == "disabled"


def sync_threads() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name == "fluxgate-fleet-sync"]


def test_the_sync_thread_ends_with_the_last_fleet_breaker_and_comes_back(
    redis_server: Any,
) -> None:
    import gc

    fleet = fleet_of(redis_server, name="idle", sync_interval=0.05)
    breaker = CircuitBreaker(retry=Never(), shared=fleet)
    assert len(sync_threads()) == 1
    del breaker
    gc.collect()
    deadline = time.monotonic() + 10
    while sync_threads():
        assert time.monotonic() < deadline, "the sync thread outlived every fleet breaker"
        time.sleep(0.01)
    # A new fleet breaker gets a thread again, which syncs it.
    again = CircuitBreaker(retry=Never(), shared=fleet)
    assert len(sync_threads()) == 1
    first_syncs_done()
    client = redis_server.client()
    assert client.hget(fleet.keys[0], "state") is not None
    again.force_open()
    assert fleet.sync_now()
    assert client.hget(fleet.keys[0], "state") == b"forced_open"
