"""One breaker for a fleet of hosts: ``shared=RedisFleet(name, client)``.

The protected call never touches the network. Each process is a member: a
background thread (one per process, started when the first fleet breaker is
built, and again in a forked child with a new member id) syncs every fleet
breaker of the process each ``sync_interval`` with one script call per
breaker. The script, run atomically by Redis, writes this member's
``{generation, metric}`` with an expiry decided by Redis's own clock, drops
expired members, compare-and-sets the fleet state when this member has a
transition to push, and returns the fleet state and the live members'
metrics. The breaker adds the other members' metrics (those published for
the current fleet generation) to its own, as C numbers, and its tripper
decides on that sum after every outcome and after each sync. See
``docs/fleet.md``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable
from typing import Any, cast

from fluxgate import _fluxgate

__all__ = ["RedisFleet"]

logger = logging.getLogger("fluxgate")

_NAME = re.compile(r"[^{}\s]{1,200}")

# The fleet state's numbers, as the extension numbers the states.
_STATES = ("closed", "open", "half_open", "metrics_only", "disabled", "forced_open")

# Members' metrics count for this many sync intervals after they were sent.
_TTL_INTERVALS = 3
# The fleet state key lives this long after the last sync of any member.
_STATE_TTL_MS = 24 * 3600 * 1000

# KEYS[1] the fleet state (a hash), KEYS[2] the members (a hash of
# member id -> "expires_ms|generation|probes|metric").
# ARGV: member, generation, metric, ttl_ms, push (0/1), state, changed_at,
# reopens, state_ttl_ms, probes wanted, probes held, probe budget,
# commanded (0/1: a command made this member's state).
# Returns {won (0; 1 made the state; 2 joined it as it is), state,
# changed_at, reopens, generation, {"generation|probes|metric" of each other
# live member}, probes leased to this member}.
#
# A transition pushed from the fleet generation it was made in wins. One
# pushed from an older generation (made before this member saw the fleet's
# latest) loses, unless a command made it: a command wins over a transition
# it did not see, except over a later command (by changed_at).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local gen = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local push = ARGV[5] == '1'
local cur = redis.call('HMGET', KEYS[1], 'state', 'changed_at', 'reopens', 'generation',
                       'command')
local fgen = tonumber(cur[4])
local won = 0
local command = push and ARGV[13] == '1' and (
  cur[5] ~= '1' or (tonumber(cur[2]) or 0) <= tonumber(ARGV[7]))
if fgen == nil or (push and fgen == gen) or command then
  -- A lost key (expired, or a restarted server) is made again in the
  -- generation its members were in, so that they need not adopt it.
  if fgen == nil and not push then
    fgen = math.max(gen, 1)
  else
    fgen = math.max(fgen or 0, gen) + 1
  end
  redis.call('HSET', KEYS[1], 'state', ARGV[6], 'changed_at', ARGV[7],
             'reopens', ARGV[8], 'generation', tostring(fgen), 'command', ARGV[13])
  cur = {ARGV[6], ARGV[7], ARGV[8], tostring(fgen)}
  won = 1
end
-- A member that never joined, in the fleet's state, joins it as it is.
if won == 0 and gen == 0 and not push and cur[1] == ARGV[6] then
  won = 2
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[9]))
local mine = gen
if won > 0 then
  mine = fgen
elseif push then
  mine = -1
end
-- The other live members; expired ones are dropped.
local all = redis.call('HGETALL', KEYS[2])
local out = {}
local leased = 0
local current = 1
for i = 1, #all, 2 do
  local v = all[i + 1]
  local bar = string.find(v, '|', 1, true)
  local expires = bar and tonumber(string.sub(v, 1, bar - 1))
  if expires == nil or expires < now then
    redis.call('HDEL', KEYS[2], all[i])
  elseif all[i] ~= member then
    local rest = string.sub(v, bar + 1)
    out[#out + 1] = rest
    local g, p = string.match(rest, '^(-?%d+)|(%d+)|')
    if tonumber(g) == fgen then
      current = current + 1
      leased = leased + tonumber(p)
    end
  end
end
-- HALF_OPEN probes: a share of the fleet's budget that others do not hold,
-- and never less than what this member holds now.
local held = tonumber(ARGV[11])
local probes = held
if mine == fgen and cur[1] == 'half_open' and tonumber(ARGV[10]) > 0 then
  local budget = tonumber(ARGV[12])
  local share = math.ceil(budget / current)
  probes = math.max(held, math.min(tonumber(ARGV[10]), share, budget - leased))
end
redis.call('HSET', KEYS[2], member,
           string.format('%d|%d|%d|%s', now + ttl, mine, probes, ARGV[3]))
redis.call('PEXPIRE', KEYS[2], ttl)
return {won, cur[1], cur[2], cur[3], cur[4], out, probes}
"""


class NoSocketTimeoutWarning(UserWarning, RuntimeWarning):
    """A RedisFleet's client has no socket_timeout: a hung server can stall
    the process's fleet sync (never its calls) indefinitely."""


def _check_name(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} must be 1 to 200 characters without braces or spaces, not {value!r}"
        )
    return value


def _redis() -> Any:
    try:
        import redis
    except ImportError as error:
        raise ImportError(
            "RedisFleet needs redis-py: install fluxgate with the redis extra, "
            "pip install 'fluxgate[redis]'"
        ) from error
    return redis


class RedisFleet:
    """Where a breaker shared by a fleet of hosts keeps its state: Redis (6+)
    or Valkey, through a synchronous ``redis.Redis`` client, or a
    ``redis.cluster.RedisCluster`` (the breaker's keys share one hash tag,
    so one slot).

    Every process that builds a breaker with ``shared=RedisFleet(name,
    client)`` and the same ``name`` and ``prefix`` is a member of one fleet
    breaker. ``sync_interval`` (seconds) is how often each member syncs.
    Give the client a ``socket_timeout``: the sync thread waits at most that
    long on a hung server (calls never wait on it).
    """

    __slots__ = ("_name", "_client", "_interval", "_prefix", "__weakref__")

    def __init__(
        self,
        name: str,
        client: Any,
        *,
        sync_interval: float = 1.0,
        prefix: str = "fluxgate",
    ) -> None:
        redis = _redis()
        self._name = _check_name("name", name)
        self._prefix = _check_name("prefix", prefix)
        if isinstance(sync_interval, bool) or not isinstance(sync_interval, (int, float)):
            raise TypeError(
                f"sync_interval must be a number, not {type(sync_interval).__name__}"
            )
        interval = float(sync_interval)
        if not (math.isfinite(interval) and 0.01 <= interval <= 3600):
            raise ValueError(
                f"sync_interval must be between 0.01 and 3600 seconds, not {sync_interval!r}"
            )
        self._interval = interval
        clients: tuple[type, ...] = (redis.Redis,)
        cluster = getattr(getattr(redis, "cluster", None), "RedisCluster", None)
        if isinstance(cluster, type):
            clients += (cluster,)
        if not isinstance(client, clients):
            raise TypeError(
                "client must be a synchronous redis.Redis (or redis.Redis.from_url(...), "
                "or a redis.cluster.RedisCluster), not "
                f"{type(client).__module__}.{type(client).__qualname__}"
            )
        self._client: Any = cast(Any, client)
        try:
            kwargs = self._client.get_connection_kwargs() or {}
        except Exception:
            kwargs = {}
        if kwargs.get("socket_timeout") is None:
            warnings.warn(
                f"RedisFleet({name!r}): the Redis client has no socket_timeout, so a "
                "hung server can stall this process's fleet sync (never its calls) "
                "indefinitely; pass socket_timeout= (and socket_connect_timeout=) "
                "to redis.Redis",
                NoSocketTimeoutWarning,
                stacklevel=2,
            )

    @property
    def name(self) -> str:
        return self._name

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def sync_interval(self) -> float:
        return self._interval

    @property
    def client(self) -> Any:
        return self._client

    @property
    def keys(self) -> tuple[str, str]:
        """The fleet's two keys (state, members): one hash tag, so one slot
        of a Redis Cluster."""
        tag = f"{{{self._prefix}:{self._name}}}"
        return (f"{tag}:state", f"{tag}:members")

    def __repr__(self) -> str:
        return (
            f"RedisFleet({self._name!r}, sync_interval={self._interval!r}, "
            f"prefix={self._prefix!r})"
        )

    def sync_now(self) -> bool:
        """Sync every breaker of this process built with this RedisFleet now,
        in the calling thread, as the sync thread does each interval (a hook
        for tests and for a process about to exit). True when Redis answered
        for each of them."""
        return _syncer().sync_fleet(self)

    # ---- what the breakers call ----------------------------------------

    def _fluxgate_fleet(self, breaker: Any) -> None:
        _syncer().join(self, breaker)

    def _fluxgate_probe_lease(self, breaker: Any, budget: int) -> _Lease:
        """The HALF_OPEN probes an AsyncCircuitBreaker's core may run, leased
        from the fleet's budget of ``budget`` by the sync thread."""
        return _syncer().lease(breaker, budget)

    def _fluxgate_signals(self, breaker: Any, deliver: Callable[[], None]) -> None:
        """An AsyncCircuitBreaker's core queues the signals of a transition
        made by the sync thread: ``deliver`` (a bound method, held weakly)
        has them delivered on the breaker's event loop."""
        _syncer().on_signals(breaker, deliver)


class _Lease:
    """The HALF_OPEN probes this member may run at once: the sync thread
    sets ``granted`` from the fleet's budget; the asyncio breaker takes and
    gives back probes. While Redis is lost, the member's own slots alone
    bound its probes."""

    __slots__ = ("granted", "held", "connected", "lock", "member")

    def __init__(self, member: _Member) -> None:
        self.granted = 0
        self.held = 0
        self.connected = False
        self.lock = threading.Lock()
        self.member = member

    def take(self) -> bool:
        with self.lock:
            if self.held < self.granted or not self.connected:
                self.held += 1
                return True
        breaker = self.member.ref()
        if breaker is None or _fluxgate._fleet_snapshot(breaker)[0] != 2:
            # Not HALF_OPEN any more: the call goes on to be admitted again
            # (and gives its slot back).
            with self.lock:
                self.held += 1
            return True
        _syncer().hurry(self.member)
        return False

    def release(self) -> None:
        with self.lock:
            self.held = max(self.held - 1, 0)


class _Member:
    """One fleet breaker of this process, as its sync sees it."""

    __slots__ = (
        "fleet",
        "ref",
        "member_id",
        "thresholds",
        "generation",
        "synced_period",
        "connected",
        "ever_connected",
        "due",
        "budget",
        "lease",
        "hurried",
        "deliver",
    )

    def __init__(self, fleet: RedisFleet, breaker: Any, member_id: str) -> None:
        self.fleet = fleet
        self.ref: weakref.ref[Any] = weakref.ref(breaker)
        self.member_id = member_id
        self.thresholds: tuple[float, ...] = _fluxgate._fleet_thresholds(breaker)
        self.generation = 0
        self.synced_period: int = _fluxgate._fleet_snapshot(breaker)[1]
        self.connected = False
        self.ever_connected = False
        self.due = 0.0
        self.budget = 0
        self.lease = _Lease(self)
        self.hurried = 0.0
        # An AsyncCircuitBreaker's: delivers the signals of a transition
        # made by this thread.
        self.deliver: weakref.WeakMethod[Callable[[], None]] | None = None


def _encode(count: int, failures: int, duration: float, slow: dict[float, int]) -> str:
    parts = [str(count), str(failures), repr(duration)]
    parts += [f"{threshold!r}={n}" for threshold, n in slow.items() if n]
    return ",".join(parts)


def _decode(text: str) -> tuple[int, int, float, dict[float, int]]:
    parts = text.split(",")
    slow: dict[float, int] = {}
    for part in parts[3:]:
        threshold, _, n = part.partition("=")
        slow[float(threshold)] = int(n)
    return int(parts[0]), int(parts[1]), float(parts[2]), slow


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Syncer:
    """This process's sync thread and the fleet breakers it syncs."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.process_id = uuid.uuid4().hex[:16]
        self.members: list[_Member] = []
        self.lock = threading.Lock()  # the list of members
        self.round = threading.RLock()  # one sync of a member at a time
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.joined = 0

    def join(self, fleet: RedisFleet, breaker: Any) -> None:
        with self.lock:
            self.joined += 1
            member = _Member(fleet, breaker, f"{self.process_id}-{self.joined}")
            self.members.append(member)
            self._start()
        self.wake.set()

    def lease(self, breaker: Any, budget: int) -> _Lease:
        with self.lock:
            for member in self.members:
                if member.ref() is breaker:
                    member.budget = budget
                    return member.lease
        raise ValueError("the breaker is not a member of a fleet")

    def on_signals(self, breaker: Any, deliver: Callable[[], None]) -> None:
        with self.lock:
            for member in self.members:
                if member.ref() is breaker:
                    member.deliver = weakref.WeakMethod(deliver)
                    return
        raise ValueError("the breaker is not a member of a fleet")

    def hurry(self, member: _Member) -> None:
        """Sync this member soon, a probe waiting for its lease: at most once
        an interval besides the regular syncs."""
        now = time.monotonic()
        if now - member.hurried >= member.fleet._interval:
            member.hurried = now
            member.due = 0.0
            self.wake.set()

    def _start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(
                target=self._run, name="fluxgate-fleet-sync", daemon=True
            )
            self.thread.start()

    def _live(self) -> list[_Member]:
        with self.lock:
            self.members = [m for m in self.members if m.ref() is not None]
            return list(self.members)

    def _let_go(self) -> bool:
        """Whether the thread may end, no fleet breaker being left; join()
        then starts another."""
        with self.lock:
            if self.members or self.thread is not threading.current_thread():
                return False
            self.thread = None
            return True

    def _run(self) -> None:
        while True:
            # Cleared before the round: a wake-up asked during it is kept.
            self.wake.clear()
            members = self._live()
            if os.getpid() != self.pid:
                return  # a forked child runs its own thread
            if not members and self._let_go():
                return
            now = time.monotonic()
            wait = 1.0
            for member in members:
                if member.due <= now:
                    self.sync(member)
                    member.due = now + member.fleet._interval
                wait = min(wait, max(member.due - time.monotonic(), 0.0))
            self.wake.wait(wait)

    def sync_fleet(self, fleet: RedisFleet) -> bool:
        ok = True
        for member in self._live():
            if member.fleet is fleet:
                ok = self.sync(member) and ok
        return ok

    def sync(self, member: _Member) -> bool:
        """One sync of one member: True when Redis answered."""
        with self.round:
            breaker = member.ref()
            if breaker is None:
                return True
            try:
                return self._sync(member, breaker)
            except Exception:  # never let one breaker stop the thread
                logger.exception(
                    "fluxgate: the fleet sync of %r failed", member.fleet._name
                )
                return False

    def _sync(self, member: _Member, breaker: Any) -> bool:
        fleet = member.fleet
        snapshot = _fluxgate._fleet_snapshot(breaker)
        state, period, changed_at, reopens, count, failures, duration, slow, commanded = (
            snapshot
        )
        push = period != member.synced_period
        # A command wins over a transition it did not see, unless it was
        # given while this member was cut off: then, as any transition made
        # meanwhile, it goes only if the fleet has not moved.
        command_wins = commanded and (member.connected or not member.ever_connected)
        metric = _encode(count, failures, duration, dict(zip(member.thresholds, slow)))
        ttl_ms = int(fleet._interval * _TTL_INTERVALS * 1000)
        lease = member.lease
        wanted = member.budget if state == 2 else 0
        try:
            reply = fleet._client.eval(
                _SCRIPT,
                2,
                *fleet.keys,
                member.member_id,
                member.generation,
                metric,
                ttl_ms,
                1 if push else 0,
                _STATES[state],
                repr(changed_at),
                reopens,
                _STATE_TTL_MS,
                wanted,
                lease.held,
                member.budget,
                1 if command_wins else 0,
            )
        except Exception as error:  # redis-py's errors, OSError, timeouts
            if member.connected or not member.ever_connected:
                logger.warning(
                    "fluxgate: fleet breaker %r lost Redis (%s); deciding on this "
                    "process's own metric and state until it answers again",
                    fleet._name,
                    type(error).__name__,
                )
            member.connected = False
            member.ever_connected = True
            with lease.lock:
                lease.connected = False
            return False
        if not member.connected and member.ever_connected:
            logger.warning(
                "fluxgate: fleet breaker %r reached Redis again; resyncing", fleet._name
            )
        member.connected = member.ever_connected = True
        with lease.lock:
            lease.connected = True
            lease.granted = int(reply[6])
        won, f_state, f_changed, f_reopens, f_gen = (_text(v) for v in reply[:5])
        generation = int(f_gen)
        if won in ("1", "2"):
            # This member's state is the fleet's: it made the key, or joins
            # a fleet in the state it is in, window and all.
            member.generation = generation
            member.synced_period = period
        elif generation != member.generation or push:
            # Another member moved the fleet: its state becomes this one's,
            # as a new period without a signal.
            target = _STATES.index(f_state) if f_state in _STATES else 0
            if _fluxgate._fleet_adopt(
                breaker, period, target, float(f_changed), int(f_reopens)
            ):
                member.generation = generation
                member.synced_period = period + 1
                period += 1
            else:
                return True  # a local transition meanwhile: pushed next time
        # The other members' metrics of the current fleet generation.
        total = [0, 0, 0.0]
        counts = [0] * len(member.thresholds)
        for item in reply[5]:
            gen_text, _, text = _text(item).partition("|")
            text = text.partition("|")[2]  # after the probes leased
            if int(gen_text) != generation:
                continue
            c, f, d, s = _decode(text)
            total[0] += c
            total[1] += f
            total[2] += d
            for i, threshold in enumerate(member.thresholds):
                counts[i] += s.get(threshold, 0)
        _fluxgate._fleet_set_remote(
            breaker,
            period,
            int(total[0]),
            int(total[1]),
            float(total[2]),
            tuple(counts),
            fleet._interval * _TTL_INTERVALS,
        )
        try:
            tripped = _fluxgate._fleet_evaluate(breaker)
        except Exception:
            logger.exception(
                "fluxgate: the tripper of fleet breaker %r raised after a sync",
                fleet._name,
            )
            tripped = False
        if tripped and member.deliver is not None:
            # An asyncio breaker queued the trip's signal: its listeners
            # hear of it on its event loop now, not at its next call.
            deliver = member.deliver()
            if deliver is not None:
                deliver()
        return True

    def after_fork(self) -> None:
        """In a forked child: a new member id for each breaker, fresh locks,
        and a thread of its own."""
        self.pid = os.getpid()
        self.process_id = uuid.uuid4().hex[:16]
        self.lock = threading.Lock()
        self.round = threading.RLock()
        self.wake = threading.Event()
        self.thread = None
        for member in self.members:
            self.joined += 1
            member.member_id = f"{self.process_id}-{self.joined}"
            member.connected = False
            member.due = 0.0
            # The parent's probes are the parent's; the lease is asked anew.
            member.lease.lock = threading.Lock()
            member.lease.held = member.lease.granted = 0
            member.lease.connected = False
        if any(m.ref() is not None for m in self.members):
            self._start()


_the_syncer: _Syncer | None = None
_syncer_lock = threading.Lock()


def _syncer() -> _Syncer:
    global _the_syncer
    with _syncer_lock:
        if _the_syncer is None:
            _the_syncer = _Syncer()
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(
                    before=_before_fork,
                    after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork,
                )
        return _the_syncer


# How long a fork waits for a sync under way to end (bounded: Redis may hang).
_FORK_WAIT = 2.0
_fork_held = False


def _before_fork() -> None:
    """No Redis call is under way when the process forks (every one runs
    holding the round lock): a child would otherwise inherit the client's
    connection pool lock held by a thread it does not have, which redis-py
    does not renew after a fork."""
    global _fork_held
    if _the_syncer is not None:
        _fork_held = _the_syncer.round.acquire(timeout=_FORK_WAIT)


def _after_fork_in_parent() -> None:
    global _fork_held
    if _fork_held and _the_syncer is not None:
        _fork_held = False
        _the_syncer.round.release()


def _after_fork() -> None:
    global _syncer_lock, _fork_held
    _syncer_lock = threading.Lock()
    _fork_held = False
    if _the_syncer is not None:
        _the_syncer.after_fork()
