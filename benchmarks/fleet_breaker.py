"""What making a breaker fleet-wide (``shared=RedisFleet(...)``) costs.

Starts a redis-server of its own (on 127.0.0.1, a free port, persistence
off) and prints, measured in one run on this machine:

- a CLOSED call (a success) and a failed call on a fleet breaker against the
  same calls on a per-process breaker (CPU time per call, median of rounds),
  with the sync thread running and another member publishing its metric;
- the commands Redis runs per sync interval (``INFO commandstats``: the
  script call and the commands inside it) while the member makes as many
  calls as it can, against an idle member.

Usage: python benchmarks/fleet_breaker.py [--rounds N] [--interval SECONDS]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any, Callable

import redis

from fluxgate import CircuitBreaker
from fluxgate.shared import RedisFleet
from fluxgate.trippers import MinRequests
from fluxgate.windows import TimeWindow


def _trivial() -> None:
    return None


def _boom() -> None:
    raise ValueError


def _per_call_ns(fn: Callable[[], object], calls: int) -> float:
    start = time.process_time_ns()
    for _ in range(calls):
        fn()
    return (time.process_time_ns() - start) / calls


def _failing(protected: Callable[[], object]) -> Callable[[], object]:
    def call() -> None:
        try:
            protected()
        except ValueError:
            pass

    return call


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _breaker(fleet: RedisFleet | None) -> CircuitBreaker:
    # A tripper that never opens: every call runs.
    return CircuitBreaker(window=TimeWindow(60), tripper=MinRequests(10**12), shared=fleet)


def _commands(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name[len("cmdstat_") :]: value["calls"]
        for name, value in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed")
    port = _free_port()
    workdir = tempfile.mkdtemp()
    server = subprocess.Popen(
        [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        fleet = RedisFleet("bench", client, sync_interval=args.interval)
        other = _breaker(fleet)  # another member, publishing its metric
        for _ in range(50):
            other.call(_trivial)
        local = _breaker(None)(_trivial)
        member = _breaker(fleet)(_trivial)
        local_fail = _failing(_breaker(None)(_boom))
        member_fail = _failing(_breaker(fleet)(_boom))
        fleet.sync_now()
        results: dict[str, list[float]] = {k: [] for k in ("bare", "lok", "fok", "lf", "ff")}
        for _ in range(args.rounds):
            results["bare"].append(_per_call_ns(_trivial, 200_000))
            results["lok"].append(_per_call_ns(local, 200_000))
            results["fok"].append(_per_call_ns(member, 200_000))
            results["lf"].append(_per_call_ns(local_fail, 100_000))
            results["ff"].append(_per_call_ns(member_fail, 100_000))
        m = {k: statistics.median(v) for k, v in results.items()}
        print(f"bare call                     {m['bare']:7.0f} ns")
        print(f"per-process breaker, success  {m['lok']:7.0f} ns")
        print(f"fleet breaker, success        {m['fok']:7.0f} ns  ({m['fok'] / m['lok']:.2f}x)")
        print(f"per-process breaker, failure  {m['lf']:7.0f} ns")
        print(f"fleet breaker, failure        {m['ff']:7.0f} ns  ({m['ff'] / m['lf']:.2f}x)")

        # Commands per interval: 3 fleet breakers in this process, busy, then idle.
        seconds = 2.0
        for label, busy in (("busy", True), ("idle", False)):
            client.config_resetstat()
            deadline = time.monotonic() + seconds
            calls = 0
            while time.monotonic() < deadline:
                if busy:
                    for _ in range(1000):
                        member()
                    calls += 1000
                else:
                    time.sleep(0.01)
            counts = _commands(client)
            intervals = seconds / args.interval
            per = sum(counts.values()) / intervals
            print(
                f"{label}: {calls} calls in {seconds:.0f} s; Redis ran {sum(counts.values())} "
                f"commands ({per:.1f} per {args.interval} s interval, for "
                f"3 fleet breakers): {counts}"
            )
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
