"""Fleet breakers across processes (each one a host) on a real Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.no_leakcheck("starts a redis-server and member processes")


def sync_all(members: list[Any]) -> None:
    for member in members:
        assert member.ask("sync") is True


def test_three_members_trip_together_though_none_would_alone(members: Any) -> None:
    fleet = members(3)
    for member in fleet:
        assert member.ask("fail 10") == 10
    # MinRequests(25) & FailureRate(0.5): 10 failures each trip no one alone.
    assert [m.ask("state") for m in fleet] == ["closed"] * 3
    # Each sync publishes a member's metric and evaluates the tripper on the
    # fleet's (30 calls, all failed): two rounds reach every member.
    sync_all(fleet)
    sync_all(fleet)
    assert [m.ask("state") for m in fleet] == ["open"] * 3
    assert [m.ask("call") for m in fleet] == ["refused"] * 3
    # The fleet settles on one state key; later syncs change nothing.
    sync_all(fleet)
    assert [m.ask("state") for m in fleet] == ["open"] * 3


def test_one_members_trip_refuses_calls_in_the_others(members: Any) -> None:
    first, second, third = members(3)
    sync_all([first, second, third])
    assert first.ask("fail 30") == 25
    assert first.ask("state") == "open"
    assert second.ask("call") == "ran"
    # Interval 1: the tripping member pushes its trip; interval 2 at the
    # latest: the others adopt it.
    assert first.ask("sync") is True
    sync_all([second, third])
    assert second.ask("call") == "refused"
    assert third.ask("call") == "refused"
    assert second.ask("state") == third.ask("state") == "open"
    # One signal for the fleet transition: the others adopt without one.
    assert first.ask("signals") == [["closed", "open"]]
    assert second.ask("signals") == third.ask("signals") == []


def test_the_sync_thread_spreads_a_trip_by_itself(members: Any) -> None:
    first, second = members(2, interval=0.05)
    assert first.ask("fail 30") == 25
    deadline = time.monotonic() + 30
    while second.ask("call") == "ran":
        assert time.monotonic() < deadline, "the trip never reached the other member"
        time.sleep(0.02)
    assert second.ask("state") == "open"


def test_commands_go_to_the_fleet(members: Any) -> None:
    first, second = members(2)
    sync_all([first, second])
    assert first.ask("force_open") is True
    sync_all([first, second])
    assert second.ask("state") == "forced_open"
    assert first.ask("reset") is True
    sync_all([first, second])
    assert second.ask("state") == "closed"
    assert second.ask("call") == "ran"


def test_a_command_wins_over_a_trip_its_member_had_not_seen(members: Any) -> None:
    first, second = members(2)
    sync_all([first, second])
    assert first.ask("fail 30") == 25
    assert first.ask("sync") is True  # the fleet is OPEN
    # The second member has not synced since: its command was given on the
    # CLOSED state it knew, and still goes to the fleet.
    assert second.ask("force_open") is True
    sync_all([second, first])
    assert first.ask("state") == second.ask("state") == "forced_open"
    assert second.ask("signals") == [["closed", "forced_open"]]


def test_redis_stopped_and_killed_never_delays_a_call(members: Any, redis_server: Any) -> None:
    first, second = members(2, interval=0.05)
    sync_all([first, second])
    redis_server.pause()  # SIGSTOP: connections hang, nothing answers
    try:
        # Calls complete while Redis is stopped: no call waits on it.
        assert first.ask("ok 1000") == 1000
        # Local breaking goes on: failures open this member alone (half of
        # its CountWindow(100)).
        assert first.ask("fail 60") == 50
        assert first.ask("state") == "open"
        assert first.ask("call") == "refused"
        assert second.ask("call") == "ran"
        assert second.ask("sync") is False
        assert first.ask("sync") is False
        assert first.ask("call") == "refused"
    finally:
        redis_server.resume()
    # The fleet resyncs: the trip made while cut off is pushed (the fleet
    # generation did not move meanwhile) and reaches the other member.
    assert first.ask("sync") is True
    assert second.ask("sync") is True
    assert second.ask("state") == "open"
    log = first.ask("log")
    assert sum("lost Redis" in line for line in log) == 1
    assert sum("reached Redis again" in line for line in log) == 1

    # Killed mid-load: calls go on, every member on its own state.
    second.ask("reset")
    redis_server.kill()
    assert second.ask("ok 1000") == 1000
    assert second.ask("sync") is False
    redis_server.start()  # a restarted server: every key is gone
    sync_all([first, second])
    sync_all([first, second])
    # Both members made the fleet state again; one won, the other adopted.
    states = {first.ask("state"), second.ask("state")}
    assert len(states) == 1


def test_commands_per_interval_are_bounded(members: Any, redis_server: Any) -> None:
    (member,) = members(1)
    client = redis_server.client()
    assert member.ask("sync") is True

    def commands(calls_between: int, syncs: int = 5) -> dict[str, int]:
        client.config_resetstat()
        for _ in range(syncs):
            if calls_between:
                assert member.ask(f"ok {calls_between}") == calls_between
            assert member.ask("sync") is True
        stats = client.info("commandstats")
        return {
            name: value["calls"]
            for name, value in stats.items()
            if name not in ("cmdstat_config", "cmdstat_info")
        }

    busy = commands(2000)
    idle = commands(0)
    # One script call per sync (the commands it runs inside counted too),
    # the same whether the member made 10000 calls meanwhile or none.
    assert busy["cmdstat_eval"] == 5
    assert busy == idle
    assert sum(busy.values()) <= 5 * 8


def test_three_members_trip_together_on_their_sync_threads(members: Any) -> None:
    fleet = members(3, interval=0.1)
    for member in fleet:
        assert member.ask("fail 10") == 10
    deadline = time.monotonic() + 30
    while [m.ask("state") for m in fleet] != ["open"] * 3:
        assert time.monotonic() < deadline, "the fleet never opened"
        time.sleep(0.02)
    assert [m.ask("call") for m in fleet] == ["refused"] * 3
