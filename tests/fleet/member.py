"""A fleet member in a process of its own (a host, for the tests).

Run as ``python member.py PORT NAME INTERVAL [cluster]`` (``cluster``: a
``redis.cluster.RedisCluster`` client started from PORT, else a
``redis.Redis``); reads one command a line on stdin and answers one JSON line on stdout:

    fail N      N calls that raise ValueError; answers how many ran
    ok N        N calls that succeed; answers how many ran
    call        one successful call: "ran" or "refused"
    sync        RedisFleet.sync_now(): true when Redis answered
    state       the breaker's state
    count       info().metrics.total_count (the fleet metric's count)
    signals     the signals its listener heard, as [old, new] pairs
    force_open / reset      the commands
    log         the warnings logged on the fluxgate logger so far
"""

from __future__ import annotations

import json
import logging
import sys
import time

import redis
import redis.cluster

from fluxgate import CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.shared import RedisFleet
from fluxgate.trippers import FailureRate, MinRequests

records: list[str] = []


class Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        records.append(record.getMessage())


def main() -> None:
    port, name, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    logging.getLogger("fluxgate").addHandler(Keep())
    logging.getLogger("fluxgate").setLevel(logging.WARNING)
    kind = redis.cluster.RedisCluster if sys.argv[4:] == ["cluster"] else redis.Redis
    client = kind(
        host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    signals: list[list[str]] = []
    fleet = RedisFleet(name, client, sync_interval=interval)
    breaker = CircuitBreaker(
        tripper=MinRequests(25) & FailureRate(0.5),
        retry=Never(),
        listeners=[lambda s: signals.append([s.old_state, s.new_state])],
        shared=fleet,
    )

    def boom() -> None:
        raise ValueError("failure")

    def calls(func: object, n: int) -> int:
        ran = 0
        for _ in range(n):
            try:
                breaker.call(func)  # type: ignore[arg-type]
                ran += 1
            except ValueError:
                ran += 1
            except CallNotPermittedError:
                pass
        return ran

    # The sync thread syncs a new member at once: let that first sync be
    # done, so that the test decides every later one.
    from fluxgate._fleet import _syncer

    while any(member.due == 0.0 for member in _syncer().members):
        time.sleep(0.001)
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        answer: object
        if command == "fail":
            answer = calls(boom, int(args[0]))
        elif command == "ok":
            answer = calls(lambda: None, int(args[0]))
        elif command == "call":
            answer = "ran" if calls(lambda: None, 1) else "refused"
        elif command == "sync":
            answer = fleet.sync_now()
        elif command == "state":
            answer = breaker.info().state
        elif command == "count":
            answer = breaker.info().metrics.total_count
        elif command == "signals":
            answer = signals
        elif command == "force_open":
            breaker.force_open()
            answer = True
        elif command == "reset":
            breaker.reset()
            answer = True
        elif command == "log":
            answer = records
        else:
            answer = f"unknown command {command!r}"
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
