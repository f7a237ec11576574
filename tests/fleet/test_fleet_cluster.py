"""Fleet breakers on a real Redis Cluster of three masters, through a
``redis.cluster.RedisCluster`` client: members in processes of their own
(hosts), and breakers of this process (each its own member)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.trippers import FailureRate, MinRequests

pytestmark = pytest.mark.no_leakcheck("starts a Redis Cluster and member processes")


def sync_all(members: list[Any]) -> None:
    for member in members:
        assert member.ask("sync") is True


def fleet_of(cluster: Any, name: str, **kwargs: Any) -> Any:
    from fluxgate.shared import RedisFleet

    kwargs.setdefault("sync_interval", 60.0)
    client = cluster.client(socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisFleet(name, client, **kwargs)


def test_a_cluster_client_is_accepted_and_warned_about_like_any(redis_cluster: Any) -> None:
    from redis.cluster import RedisCluster

    from fluxgate.shared import RedisFleet

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fleet = RedisFleet("accepted", redis_cluster.client(socket_timeout=1))
    assert isinstance(fleet.client, RedisCluster)
    with pytest.warns(RuntimeWarning, match="no socket_timeout"):
        RedisFleet("accepted", RedisCluster(host="127.0.0.1", port=redis_cluster.port))


def test_a_breakers_keys_land_in_one_slot_of_one_node(redis_cluster: Any) -> None:
    # Several names, so that some hash to each of the three masters.
    fleets = [fleet_of(redis_cluster, f"slots-{i}") for i in range(12)]
    breakers = [CircuitBreaker(shared=fleet) for fleet in fleets]
    client = redis_cluster.client()
    nodes = [redis_cluster.node(port) for port in redis_cluster.ports]
    owners = set()
    for fleet in fleets:
        assert fleet.sync_now() is True
        state, members = fleet.keys
        assert client.cluster_keyslot(state) == client.cluster_keyslot(members)
        # Both keys are on one node, and no key of the breaker elsewhere.
        tag = f"{{fluxgate:{fleet.name}}}".encode()
        held = [sorted(k for k in node.keys("*") if k.startswith(tag)) for node in nodes]
        expected = sorted(k.encode() for k in fleet.keys)
        assert sorted(held, key=len) == [[], [], expected]
        owners.add(held.index(expected))
    assert owners == {0, 1, 2}
    del breakers


def test_three_members_trip_together_on_a_cluster(cluster_members: Any) -> None:
    fleet = cluster_members(3, "together")
    for member in fleet:
        assert member.ask("fail 10") == 10
    # MinRequests(25) & FailureRate(0.5): 10 failures each trip no one alone.
    assert [m.ask("state") for m in fleet] == ["closed"] * 3
    sync_all(fleet)
    sync_all(fleet)
    assert [m.ask("state") for m in fleet] == ["open"] * 3
    assert [m.ask("call") for m in fleet] == ["refused"] * 3


def test_one_members_trip_reaches_the_others_on_a_cluster(cluster_members: Any) -> None:
    first, second, third = cluster_members(3, "propagates")
    sync_all([first, second, third])
    assert first.ask("fail 30") == 25
    assert first.ask("state") == "open"
    assert second.ask("call") == "ran"
    assert first.ask("sync") is True
    sync_all([second, third])
    assert second.ask("call") == third.ask("call") == "refused"
    assert second.ask("state") == third.ask("state") == "open"
    assert first.ask("signals") == [["closed", "open"]]
    assert second.ask("signals") == third.ask("signals") == []


def test_commands_reach_the_others_on_a_cluster(cluster_members: Any) -> None:
    first, second = cluster_members(2, "commands")
    sync_all([first, second])
    assert first.ask("force_open") is True
    sync_all([first, second])
    assert second.ask("state") == "forced_open"
    assert second.ask("call") == "refused"
    assert first.ask("reset") is True
    sync_all([first, second])
    assert second.ask("state") == "closed"
    assert second.ask("call") == "ran"


def test_the_asyncio_breaker_on_a_cluster(redis_cluster: Any) -> None:
    fleet = fleet_of(redis_cluster, "async")
    tripper = MinRequests(4) & FailureRate(0.5)

    async def aboom() -> None:
        raise ValueError("failure")

    async def run() -> None:
        a = AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)
        b = AsyncCircuitBreaker(tripper=tripper, retry=Never(), shared=fleet)
        for breaker in (a, b):
            for _ in range(2):
                with pytest.raises(ValueError):
                    await breaker.call(aboom)
        assert fleet.sync_now() and fleet.sync_now()
        assert a.info().state == b.info().state == "open"
        with pytest.raises(CallNotPermittedError):
            await a.call(aboom)

    asyncio.run(run())


def test_a_stopped_master_leaves_its_breakers_local_until_it_is_back(
    redis_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import signal

    fleet = fleet_of(redis_cluster, "stopped-master")
    a = CircuitBreaker(shared=fleet)
    b = CircuitBreaker(shared=fleet)
    assert fleet.sync_now() is True
    client = redis_cluster.client()
    slot = client.cluster_keyslot(fleet.keys[0])
    owner = client.nodes_manager.get_node_from_slot(slot)
    process = redis_cluster.processes[redis_cluster.ports.index(owner.port)]
    with caplog.at_level(logging.WARNING, logger="fluxgate"):
        process.send_signal(signal.SIGSTOP)
        try:
            assert fleet.sync_now() is False
            # Calls and commands go on, on the member's own state.
            a.call(int)
            a.force_open()
            with pytest.raises(CallNotPermittedError):
                a.call(int)
            assert b.info().state == "closed"
        finally:
            process.send_signal(signal.SIGCONT)
        # Back: the command made meanwhile reaches the other member.
        assert fleet.sync_now() is True
        assert fleet.sync_now() is True
    assert b.info().state == "forced_open"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("lost Redis" in m for m in messages) == 2  # one per breaker
    assert sum("reached Redis again" in m for m in messages) == 2
