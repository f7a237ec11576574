"""What the host-shared breaker's tests run in other processes.

Everything a child process runs is defined here, at module level, so that the
"spawn" start method can import it by name. No function here measures time:
deadlines only keep a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import builtins
import multiprocessing
import os
import pickle
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.permits import All as PermitAll
from fluxgate.retries import Always, Never
from fluxgate.signal import Signal
from fluxgate.trippers import FailureStreak, HalfOpened, MinRequests
from fluxgate.windows import CountWindow

# How long anything may take before a test gives up on it. Never reached
# when the code under test works; it only turns a hang into a failure.
DEADLINE = 60.0

# A tripper that never opens the breaker: every call is recorded and the
# window's totals can be compared with the calls made.
NEVER_TRIPS = MinRequests(10**9)

ON_WINDOWS = sys.platform == "win32"
SKIP_REASON = "the host-shared breaker needs POSIX shared memory (Linux, macOS)"


def slow_build() -> bool:
    """The debug interpreter (leak check) or a sanitizer build."""
    leakcheck = os.environ.get("FLUXGATE_LEAKCHECK", "") not in ("", "0")
    sanitized = "asan" in os.environ.get("LD_PRELOAD", "")
    return leakcheck or sanitized or hasattr(sys, "gettotalrefcount")


def context(method: str) -> Any:
    """A multiprocessing context for ``method`` ("fork" or "spawn")."""
    return multiprocessing.get_context(method)


def start_process(process: Any) -> None:
    """Start a multiprocessing process; forking a process with threads is
    what some of these tests do on purpose (3.12+ warns about it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()


def stop_process(process: Any) -> None:
    """Make sure a process started by a test has ended."""
    process.join(DEADLINE if process.exitcode is None else 0)
    if process.exitcode is None:
        process.kill()
        process.join(DEADLINE)


def collect(results: Any, processes: list[Any], count: int | None = None) -> list[Any]:
    """``count`` reports (one per process by default) from the queue
    ``results``; fails at once if a process ends with an error instead."""
    import queue

    reports: list[Any] = []
    deadline = time.monotonic() + DEADLINE
    wanted = len(processes) if count is None else count
    while len(reports) < wanted:
        try:
            reports.append(results.get(timeout=0.05))
            continue
        except queue.Empty:
            pass
        codes = [process.exitcode for process in processes]
        if any(code not in (None, 0) for code in codes) or time.monotonic() > deadline:
            raise AssertionError(f"{len(reports)} of {wanted} reports; exit codes {codes}")
    return reports


class Boom(Exception):
    """What a failing protected call raises."""


def succeed() -> str:
    return "ok"


def fail() -> None:
    raise Boom("the upstream failed")


def busy_succeed() -> str:
    """A success that spends a while in Python, so that a kill lands in it."""
    total = 0
    for i in range(300):
        total += i
    return "ok"


def busy_fail() -> None:
    busy_succeed()
    raise Boom("the upstream failed")


def make_calls(breaker: CircuitBreaker, calls: int, fail_every: int = 4) -> tuple[int, int]:
    """``calls`` calls, every ``fail_every``-th failing: (made, failed)."""
    failed = 0
    for i in range(calls):
        if i % fail_every == fail_every - 1:
            try:
                breaker.call(fail)
            except Boom:
                failed += 1
        else:
            breaker.call(succeed)
    return calls, failed


# ---- exact totals ----------------------------------------------------------------


def counting_worker(shared: Any, window: Any, calls: int, barrier: Any, results: Any) -> None:
    """Build a breaker on ``shared``, wait for the others, make ``calls``
    calls (one in four failing) and report what it made."""
    breaker = CircuitBreaker(window=window, tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    barrier.wait(DEADLINE)
    made, failed = make_calls(breaker, calls)
    results.put((os.getpid(), made, failed))


# ---- SIGKILL under load ------------------------------------------------------------


def steady_worker(
    shared: Any, window: Any, allowance: Any, made: Any, failed: Any, stop: Any
) -> None:
    """Call until ``stop`` is set, never beyond ``allowance`` calls: the
    test raises it and then waits for ``made`` to catch up. ``made`` and
    ``failed`` count the calls that returned (so were recorded)."""
    breaker = CircuitBreaker(window=window, tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    count = failures = 0
    while not stop.is_set():
        if count >= allowance.value:
            stop.wait(0.001)
            continue
        if count % 4 == 3:
            try:
                breaker.call(fail)
            except Boom:
                failures += 1
                failed.value = failures
        else:
            breaker.call(succeed)
        count += 1
        made.value = count


def victim_worker(
    shared: Any, window: Any, made: Any, failed: Any, cap: int, busy: bool, reset_every: int = 0
) -> None:
    """Call without pause until killed (or ``cap`` calls). ``failed`` is
    written before ``made``, both after the call returned: whatever instant
    the kill lands at, the calls this process got recorded number ``made``
    or ``made + 1``, its recorded failures ``failed`` or ``failed + 1``.
    With ``reset_every``, it also resets the breaker every so many calls
    (and the counts above mean nothing)."""
    breaker = CircuitBreaker(window=window, tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    ok, bad = (busy_succeed, busy_fail) if busy else (succeed, fail)
    count = failures = 0
    while count < cap:
        if reset_every and count % reset_every == 0:
            breaker.reset()
        if count % 4 == 3:
            try:
                breaker.call(bad)
            except Boom:
                failures += 1
                failed.value = failures
        else:
            breaker.call(ok)
        count += 1
        made.value = count
    while True:  # wait for the kill
        time.sleep(1)


def late_worker(shared: Any, window: Any, calls: int, results: Any) -> None:
    """Attach after the others and make ``calls`` calls at once."""
    breaker = CircuitBreaker(window=window, tripper=NEVER_TRIPS, retry=Never(), shared=shared)
    made, failed = make_calls(breaker, calls)
    results.put((made, failed, breaker.info().metrics.total_count))


# ---- racing to trip ----------------------------------------------------------------


def racing_worker(shared: Any, min_requests: int, rounds: int, barrier: Any, results: Any) -> None:
    """Each round: fail until refused, together with the others; the test
    resets the breaker between rounds. Reports the signals this process's
    listener got and the state it saw at the end of each round."""
    signals: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        window=CountWindow(1_000),
        tripper=MinRequests(min_requests),
        retry=Never(),
        listeners=[lambda signal: signals.append((signal.old_state, signal.new_state))],
        shared=shared,
    )
    states = []
    for _ in range(rounds):
        barrier.wait(DEADLINE)
        for _ in range(100 * min_requests):  # refused long before
            try:
                breaker.call(fail)
            except Boom:
                continue
            except CallNotPermittedError:
                states.append(breaker.info().state)
                break
        else:
            states.append("never refused")
        barrier.wait(DEADLINE)
    results.put((signals, states))


# ---- host-wide HALF_OPEN slots -------------------------------------------------------


def half_open_async_breaker(shared: Any, limit: int) -> AsyncCircuitBreaker:
    """Opens on one failure, retries at once, and once HALF_OPEN stays there
    whatever the probes do (the tripper is true in HALF_OPEN)."""
    return AsyncCircuitBreaker(
        tripper=HalfOpened() | FailureStreak(1),
        retry=Always(),
        permit=PermitAll(),
        max_half_open_calls=limit,
        shared=shared,
    )


@dataclass
class ProbeCounters:
    """Counters shared by every process: probes running now, the most ever
    running at once, probes finished."""

    lock: Any
    running: Any
    peak: Any
    finished: Any

    @classmethod
    def make(cls, ctx: Any) -> ProbeCounters:
        return cls(ctx.Lock(), ctx.RawValue("q", 0), ctx.RawValue("q", 0), ctx.RawValue("q", 0))

    async def probe(self, hold: float) -> None:
        with self.lock:
            self.running.value += 1
            self.peak.value = max(self.peak.value, self.running.value)
        try:
            await asyncio.sleep(hold)
        finally:
            with self.lock:
                self.running.value -= 1
                self.finished.value += 1


def probing_worker(
    shared: Any, limit: int, tasks: int, probes: int, counters: ProbeCounters, barrier: Any,
    results: Any,
) -> None:
    """``tasks`` concurrent tasks, each making ``probes`` calls in a row."""

    async def main() -> tuple[str, int]:
        breaker = half_open_async_breaker(shared, limit)
        barrier.wait(DEADLINE)

        async def task() -> None:
            for _ in range(probes):
                await breaker.call(counters.probe, 0.002)

        await asyncio.gather(*(task() for _ in range(tasks)))
        return breaker.info().state, breaker.info().reopens

    results.put(asyncio.run(main()))


def slot_holding_worker(shared: Any, limit: int, holding: Any) -> None:
    """Take every HALF_OPEN slot with probes that never end; ``holding`` is
    set once all of them run. The test kills this process then."""

    async def main() -> None:
        breaker = half_open_async_breaker(shared, limit)
        entered = 0

        async def hang() -> None:
            nonlocal entered
            entered += 1
            if entered == limit:
                holding.set()
            await asyncio.sleep(10 * DEADLINE)

        await asyncio.gather(*(breaker.call(hang) for _ in range(limit)))

    asyncio.run(main())


def one_probe_worker(shared: Any, limit: int, results: Any) -> None:
    async def main() -> str:
        breaker = half_open_async_breaker(shared, limit)
        await breaker.call(asyncio.sleep, 0)
        return breaker.info().state

    results.put(asyncio.run(main()))


# ---- a breaker in another process, driven step by step ------------------------------------


class Snapshot(NamedTuple):
    """What ``info()`` showed in a process."""

    state: str
    changed_at: float
    reopens: int
    total_count: int
    failure_count: int


def snapshot(breaker: CircuitBreaker | AsyncCircuitBreaker) -> Snapshot:
    info = breaker.info()
    return Snapshot(
        info.state,
        info.changed_at,
        info.reopens,
        info.metrics.total_count,
        info.metrics.failure_count,
    )


def _blocking_body(outcome: str, entered: Any, release: Any) -> Callable[[], Any]:
    def body() -> str:
        if outcome.startswith("block"):
            entered.set()
            if not release.wait(DEADLINE):
                raise RuntimeError("the test never released the call")
        if outcome.endswith("fail"):
            raise Boom("the upstream failed")
        return "ok"

    return body


def _serve(conn: Any, kind: str, kwargs: dict[str, Any], entered: Any, release: Any) -> None:
    """The child side of ``Remote``: one breaker, one request at a time."""
    signals: list[tuple[str, str]] = []

    def listener(signal: Signal, /) -> None:
        signals.append((signal.old_state, signal.new_state))

    try:
        cls = AsyncCircuitBreaker if kind == "async" else CircuitBreaker
        breaker: Any = cls(**kwargs, listeners=[listener])
    except Exception as error:
        conn.send(("error", type(error).__name__, str(error)))
        return
    conn.send(("ok", os.getpid()))
    loop = asyncio.new_event_loop() if kind == "async" else None

    def run(op: str, args: tuple[Any, ...]) -> Any:
        if op == "call":
            body = _blocking_body(args[0], entered, release)
            try:
                if loop is None:
                    breaker.call(body)
                else:

                    async def async_body() -> str:
                        if args[0].startswith("block"):
                            # wait for the release without blocking the loop
                            entered.set()
                            for _ in range(int(DEADLINE / 0.005)):
                                if release.is_set():
                                    break
                                await asyncio.sleep(0.005)
                        return _blocking_body(args[0].replace("block_", ""), entered, release)()

                    loop.run_until_complete(breaker.call(async_body))
            except CallNotPermittedError as error:
                return f"refused: {error}"
            except Boom:
                return "failed"
            return "ok"
        if op == "calls":
            made = failed = refused = 0
            for i in range(args[0]):
                outcome = run("call", ("fail" if i % args[1] == args[1] - 1 else "ok",))
                made += outcome == "ok"
                failed += outcome == "failed"
                refused += outcome.startswith("refused")
            return made, failed, refused
        if op == "info":
            return snapshot(breaker)
        if op == "command":
            result = getattr(breaker, args[0])()
            if loop is not None:
                loop.run_until_complete(result)
            return None
        if op == "signals":
            return list(signals)
        raise ValueError(f"unknown request {op!r}")

    try:
        while conn.poll(10 * DEADLINE):
            op, args = conn.recv()
            if op == "exit":
                break
            try:
                conn.send(("ok", run(op, args)))
            except Exception as error:
                conn.send(("error", type(error).__name__, str(error)))
    finally:
        if loop is not None:
            loop.close()


class Remote:
    """A breaker built in another process, driven one request at a time:
    ``remote.call("ok" | "fail")`` returns "ok", "failed" or "refused: <msg>";
    "block_ok"/"block_fail" wait in the protected function until
    ``remote.release`` is set (``remote.entered`` is set on the way in), so
    send those with ``send`` and collect the outcome with ``receive``.

    A constructor error in the child is raised here with the same type."""

    def __init__(self, kind: str = "sync", *, start: str = "fork", **kwargs: Any) -> None:
        ctx = context(start)
        self.entered = ctx.Event()
        self.release = ctx.Event()
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve,
            args=(child_conn, kind, kwargs, self.entered, self.release),
            daemon=True,
        )
        start_process(self.process)
        child_conn.close()
        self.pid: int = self.receive()

    def send(self, op: str, *args: Any) -> None:
        self.conn.send((op, args))

    def receive(self) -> Any:
        if not self.conn.poll(DEADLINE):
            raise AssertionError("the other process did not answer")
        try:
            reply = self.conn.recv()
        except EOFError:
            raise AssertionError(
                f"the other process died (exit code {self.process.exitcode})"
            ) from None
        if reply[0] == "error":
            raise getattr(builtins, reply[1], RuntimeError)(reply[2])
        return reply[1]

    def request(self, op: str, *args: Any) -> Any:
        self.send(op, *args)
        return self.receive()

    def call(self, outcome: str = "ok") -> str:
        return str(self.request("call", outcome))

    def calls(self, count: int, fail_every: int = 4) -> tuple[int, int, int]:
        """``count`` calls: (succeeded, failed, refused)."""
        made, failed, refused = self.request("calls", count, fail_every)
        return made, failed, refused

    def info(self) -> Snapshot:
        return Snapshot(*self.request("info"))

    def command(self, name: str) -> None:
        self.request("command", name)

    def signals(self) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in self.request("signals")]  # type: ignore[misc]

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(DEADLINE)

    def close(self) -> None:
        if self.process.exitcode is None:
            try:
                self.conn.send(("exit", ()))
            except OSError:
                pass
        stop_process(self.process)
        self.conn.close()


def run_in_fork(body: Callable[[], Any]) -> Any:
    """Fork, run ``body`` in the child, return what it returned (or raise
    what it raised, as a RuntimeError carrying its repr)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            signal.alarm(int(DEADLINE))  # a hang ends the child, not the suite
            try:
                payload = pickle.dumps(("ok", body()))
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                payload = pickle.dumps(("error", f"{type(error).__name__}: {error}"))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise AssertionError(f"the forked child died (wait status {status})")
    outcome, value = pickle.loads(data)
    if outcome == "error":
        raise RuntimeError(f"in the forked child: {value}")
    return value
