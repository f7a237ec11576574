"""``python -m fluxgate demo``: a flaky service behind a circuit breaker.

Everything runs in one process, in simulated time: ``time.time`` and
``time.perf_counter`` are replaced (the breaker honours replacements) by a
clock that the simulation moves forward, so a minute of service life takes a
fraction of a second, paced for reading on a terminal. Given the same seed,
the sync and async breakers tell the same story call for call.

``python -m fluxgate demo --workers N`` tells the story with N worker
processes, as a pre-fork server runs them: the same calls, handed round robin
to the workers one at a time, first with a breaker per worker
(``shared=None``), then with one breaker for all of them
(``shared=HostMemory(...)``, a named segment in a temporary directory,
removed at the end). Every worker replaces its clocks with the same
simulated time, and the calls are handed out one at a time, so a seed gives
the same run every time.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import signal as signals
import sys
import tempfile
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Literal, TextIO
from unittest import mock

import fluxgate
from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.listeners.log import LogListener
from fluxgate.permits import RampUp
from fluxgate.retries import Backoff
from fluxgate.signal import Signal
from fluxgate.state import State
from fluxgate.trackers import TypeOf
from fluxgate.trippers import FailureRate, HalfOpened, MinRequests, SlowRate
from fluxgate.windows import CountWindow

if TYPE_CHECKING:
    from fluxgate.shared import HostMemory

__all__ = ["run", "run_workers"]

CALLS_PER_SECOND = 20
SLOW = 0.5  # seconds: a successful call this long counts as slow
WINDOW = 40
MIN_REQUESTS = 20
RATIO = 0.5
BACKOFF = (2.0, 2.0, 8.0, 0.1)  # initial, multiplier, max_duration, jitter_ratio
RAMP_UP = (0.1, 1.0, 5.0)  # initial, final, duration
DEFAULT_SEED = 7
TERMINAL_PACE = 0.2  # real seconds per simulated second on a terminal
WORKERS_TERMINAL_PACE = 0.1  # the same with --workers, which tells the story twice
MAX_WORKERS = 16

Outcome = Literal["ok", "slow", "failed", "rejected"]


class ServiceError(Exception):
    """The simulated service answered with an error."""


@dataclass(frozen=True)
class Phase:
    """A stretch of the service's life; chances move linearly across it."""

    name: str
    start: int
    end: int
    story: str
    error: tuple[float, float] = (0.01, 0.01)
    slow: tuple[float, float] = (0.0, 0.0)
    timeout: float = 0.0

    def chances(self, now: float) -> tuple[float, float, float]:
        """(error, slow, timeout) chances at ``now`` seconds into the run."""
        done = (now - self.start) / (self.end - self.start)
        error = self.error[0] + (self.error[1] - self.error[0]) * done
        slow = self.slow[0] + (self.slow[1] - self.slow[0]) * done
        return error, slow, self.timeout


PHASES = (
    Phase("healthy", 0, 12, "fast answers, 1% errors"),
    Phase("degraded", 12, 24, "65% of answers take over 0.5 s, 10% time out",
          error=(0.0, 0.0), slow=(0.65, 0.65), timeout=0.10),
    Phase("failing", 24, 36, "90% of calls get 503 Service Unavailable",
          error=(0.9, 0.9)),
    Phase("recovering", 36, 46, "errors fall from 40% to 2%, slow answers fade",
          error=(0.4, 0.02), slow=(0.15, 0.0)),
    Phase("healthy", 46, 60, "fast answers, 1% errors"),
)
DURATION = PHASES[-1].end


class SimClock:
    """Simulated wall and monotonic clocks.

    Calls arrive on a fixed schedule of wall time, as from many independent
    clients; the service's latency moves only the monotonic clock, which is
    what the breaker times calls with.
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self.wall = start
        self.perf = 1000.0

    def time(self) -> float:
        return self.wall

    def perf_counter(self) -> float:
        return self.perf

    def elapsed(self) -> float:
        return self.wall - self.start


class FlakyService:
    """The service behind the breaker, following ``PHASES``."""

    def __init__(self, clock: SimClock, rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng
        self.latency = 0.0

    def phase(self) -> Phase:
        now = self._clock.elapsed()
        return next((p for p in PHASES if p.start <= now < p.end), PHASES[-1])

    def respond(self) -> str:
        error, slow, timeout = self.phase().chances(self._clock.elapsed())
        draw = self._rng.random()
        if draw < timeout:
            self._take(2.0)
            raise TimeoutError("no answer within 2.0 s")
        if draw < timeout + error:
            self._take(self._rng.uniform(0.002, 0.01))
            raise ServiceError("503 Service Unavailable")
        if draw < timeout + error + slow:
            self._take(self._rng.uniform(0.6, 1.8))
        else:
            self._take(self._rng.uniform(0.02, 0.12))
        return "200 OK"

    async def respond_async(self) -> str:
        await asyncio.sleep(0)
        return self.respond()

    def _take(self, seconds: float) -> None:
        self.latency = seconds
        self._clock.perf += seconds


class Timeline:
    """The listener that feeds the timeline: it queues each signal."""

    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def __call__(self, signal: Signal, /) -> None:
        self.signals.append(signal)


class _QueueHandler(logging.Handler):
    """Holds the LogListener's lines until the timeline prints them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname}: {record.getMessage()}")


@dataclass
class Counts:
    calls: int = 0
    admitted: int = 0
    rejected: int = 0
    failed: int = 0
    slow: int = 0

    def add(self, outcome: Outcome) -> None:
        self.calls += 1
        if outcome == "rejected":
            self.rejected += 1
            return
        self.admitted += 1
        if outcome == "failed":
            self.failed += 1
        elif outcome == "slow":
            self.slow += 1


class Style:
    """Plain text, or colour and live redraws on a terminal."""

    _CODES = {"closed": "32", "open": "31", "half_open": "33", "dim": "2", "bold": "1"}

    def __init__(self, out: TextIO, live: bool) -> None:
        tty = out.isatty()
        self.colour = (
            tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        )
        self.live = tty and live
        utf8 = (getattr(out, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self.arrow = "\u2192" if tty and utf8 else "->"

    def paint(self, text: str, key: str) -> str:
        code = self._CODES.get(key)
        if not self.colour or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


class Printer:
    def __init__(self, out: TextIO, style: Style) -> None:
        self._out = out
        self._style = style
        self._partial = False

    def line(self, text: str = "") -> None:
        self._clear()
        self._out.write(text + "\n")
        self._out.flush()

    def partial(self, text: str) -> None:
        if self._style.live:
            self._clear()
            self._out.write(text)
            self._out.flush()
            self._partial = True

    def _clear(self) -> None:
        if self._partial:
            self._out.write("\r\x1b[K")
            self._partial = False


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _components(logger: logging.Logger, timeline: Timeline) -> dict[str, Any]:
    """The breaker's arguments, the same in every run of the demo."""
    rates = FailureRate(RATIO) | SlowRate(RATIO, threshold=SLOW)
    initial, multiplier, max_duration, jitter = BACKOFF
    return {
        "window": CountWindow(WINDOW),
        "tracker": TypeOf(ServiceError, TimeoutError),
        "tripper": MinRequests(MIN_REQUESTS) & rates | HalfOpened() & rates,
        "retry": Backoff(
            initial, multiplier, max_duration=max_duration, jitter_ratio=jitter
        ),
        "permit": RampUp(*RAMP_UP),
        "listeners": [LogListener("checkout", logger=logger), timeline],
    }


def _describe(name: str) -> list[str]:
    """``_components`` as the header shows it."""
    rates = f"(FailureRate({RATIO}) | SlowRate({RATIO}, threshold={SLOW}))"
    initial, multiplier, max_duration, jitter = BACKOFF
    return [
        f"    breaker = {name}(",
        f"        window=CountWindow({WINDOW}),",
        "        tracker=TypeOf(ServiceError, TimeoutError),",
        f"        tripper=MinRequests({MIN_REQUESTS}) & {rates}",
        f"        | HalfOpened() & {rates},",
        f"        retry=Backoff({initial}, {multiplier}, max_duration={max_duration}, "
        f"jitter_ratio={jitter}),",
        "        permit=RampUp({}, {}, {}),".format(*RAMP_UP),
        '        listeners=[LogListener("checkout"), timeline],',
        "    )",
    ]


class Story:
    """The simulation and its telling, whichever breaker runs the calls."""

    def __init__(self, out: TextIO, seed: int, pace: float, use_async: bool) -> None:
        self.clock = SimClock(float(int(time.time())))
        self.service = FlakyService(self.clock, random.Random(seed))
        self.timeline = Timeline()
        self._logs = _QueueHandler()
        self.logger = logging.Logger("fluxgate.demo")
        self.logger.addHandler(self._logs)
        self._seed = seed
        self._pace = pace
        self._async = use_async
        self._style = Style(out, live=pace > 0)
        self._print = Printer(out, self._style)
        self._second = Counts()
        self.totals = Counts()
        self._phase: Phase | None = None
        self._window: deque[Outcome] = deque(maxlen=WINDOW)
        self._reopens = 0
        self._transitions: Counter[tuple[State, State]] = Counter()
        self._time_in: dict[State, float] = {}
        self._state: State = "closed"
        self._since = 0.0

    # ---- the breaker's configuration --------------------------------------

    def components(self) -> dict[str, Any]:
        return _components(self.logger, self.timeline)

    def _describe(self) -> list[str]:
        return _describe("AsyncCircuitBreaker" if self._async else "CircuitBreaker")

    # ---- the simulation ---------------------------------------------------

    def run(self, drive: Callable[[Story], None]) -> None:
        """Tell the story, ``drive`` making the calls through a breaker."""
        saved = random.getstate()
        random.seed(self._seed)  # the permit's and the retry's draws
        try:
            with mock.patch("time.time", self.clock.time), mock.patch(
                "time.perf_counter", self.clock.perf_counter
            ):
                self._header()
                drive(self)
                self._summary()
        finally:
            random.setstate(saved)

    def calls(self) -> Iterator[int]:
        """The schedule: moves the clock to each call's arrival time."""
        for number in range(DURATION * CALLS_PER_SECOND):
            self.clock.wall = self.clock.start + number / CALLS_PER_SECOND
            phase = self.service.phase()
            if phase is not self._phase:
                self._phase = phase
                self._print.line(
                    f"{self._stamp(phase.start)}  "
                    + self._style.paint(f"service {phase.name}: {phase.story}", "bold")
                )
            yield number

    def outcome(self, refused: bool, failed: bool) -> Outcome:
        if refused:
            return "rejected"
        if failed:
            return "failed"
        return "slow" if self.service.latency >= SLOW else "ok"

    def observe(self, outcome: Outcome, info: CircuitBreakerInfo) -> float:
        """Account for one call; returns how long to pause, in real seconds."""
        self._second.add(outcome)
        self.totals.add(outcome)
        self._report_transitions(outcome)
        if self._second.calls < CALLS_PER_SECOND:
            self._print.partial(self._row(info))
        else:
            self._print.line(self._row(info))
            self._second = Counts()
        return self._pace / CALLS_PER_SECOND

    # ---- telling ------------------------------------------------------------

    def _stamp(self, seconds: float) -> str:
        return f"{seconds:7.2f}s"

    def _header(self) -> None:
        mode = "asyncio, " if self._async else ""
        self._print.line(
            f"fluxgate {fluxgate.__version__} demo: a flaky service behind a circuit "
            f"breaker ({mode}simulated time, seed {self._seed})"
        )
        self._print.line()
        for text in self._describe():
            self._print.line(text)
        self._print.line()
        self._print.line(
            f"{CALLS_PER_SECOND} calls a second for {DURATION} simulated seconds; "
            f"a call of {SLOW} s or more is slow."
        )
        self._print.line(
            "One row per second; fail% and slow% are the breaker's window at its end."
        )
        self._print.line()
        self._print.line(
            "  second  state      calls  admitted  rejected  failed  slow  fail%  slow%"
        )

    def _row(self, info: CircuitBreakerInfo) -> str:
        second = int(self.clock.elapsed())
        counts = self._second
        metrics = info.metrics
        state = self._style.paint(f"{info.state:<9}", info.state)
        return (
            f"{second:7d}s  {state}  {counts.calls:5d}  {counts.admitted:8d}  "
            f"{counts.rejected:8d}  {counts.failed:6d}  {counts.slow:4d}  "
            f"{_percent(metrics.failure_rate):>5}  {_percent(metrics.slow_rate(SLOW)):>5}"
        )

    def _report_transitions(self, outcome: Outcome) -> None:
        """Print the transitions this call caused, each with its log line.

        ``_window`` mirrors the breaker's window: the outcomes of the calls
        admitted since the last transition, the one that caused it included.
        """
        signals = self.timeline.signals
        admitted = outcome != "rejected"
        logs = iter(self._logs.lines)
        for signal in signals:
            if signal.old_state == "open":
                reason = f"probing after {signal.timestamp - self._since_wall():.1f} s open"
            else:
                if admitted:
                    self._window.append(outcome)
                    admitted = False
                reason = self._why(signal)
            self._window.clear()
            self._transition(signal, reason)
            for text in logs:
                self._print.line(self._style.paint(f"          log {text}", "dim"))
                break
        if admitted:
            self._window.append(outcome)
        signals.clear()
        self._logs.lines.clear()

    def _since_wall(self) -> float:
        return self.clock.start + self._since

    def _why(self, signal: Signal) -> str:
        calls = len(self._window)
        failed = self._window.count("failed")
        slow = self._window.count("slow")
        if signal.old_state == "half_open":
            among = f"of {calls} probe call{'s' if calls != 1 else ''}"
        else:
            among = f"of the last {calls} calls"
        seen = f"{among} {failed} failed, {slow} slow"
        if signal.new_state == "closed":
            return f"recovered: {seen}"
        if signal.new_state != "open":
            return seen
        if signal.old_state == "half_open":
            self._reopens += 1
        initial, multiplier, max_duration, _ = BACKOFF
        wait = min(initial * multiplier**self._reopens, max_duration)
        verb = "reopened" if signal.old_state == "half_open" else "tripped"
        return f"{verb}: {seen}; next probe in ~{wait:g} s"

    def _transition(self, signal: Signal, reason: str) -> None:
        old, new = signal.old_state, signal.new_state
        at = signal.timestamp - self.clock.start
        self._spend(old, at - self._since)
        self._since = at
        self._state = new
        if new == "closed":
            self._reopens = 0
        self._transitions[old, new] += 1
        padding = " " * (len("half_open") - len(new))
        change = f"{old:>9} {self._style.arrow} {self._style.paint(new, new)}{padding}"
        self._print.line(f"{self._stamp(at)}  {change}  {reason}")

    def _spend(self, state: State, seconds: float) -> None:
        self._time_in[state] = self._time_in.get(state, 0.0) + seconds

    def _summary(self) -> None:
        self._spend(self._state, DURATION - self._since)
        totals = self.totals
        succeeded = totals.admitted - totals.failed
        arrow = self._style.arrow
        moves = ", ".join(
            f"{old} {arrow} {new} {count}" for (old, new), count in self._transitions.items()
        )
        spent = ", ".join(
            f"{state} {seconds:.1f} s" for state, seconds in self._time_in.items() if seconds
        )
        self._print.line()
        self._print.line(
            self._style.paint(
                f"Summary: {DURATION} simulated seconds, {totals.calls} calls", "bold"
            )
        )
        self._print.line(
            f"  admitted {totals.admitted:5d}  (succeeded {succeeded}, {totals.slow} of "
            f"them slow; failed {totals.failed})"
        )
        self._print.line(
            f"  rejected {totals.rejected:5d}  (refused at once while the service "
            "was given time to recover)"
        )
        self._print.line(
            f"  total calls {totals.calls} = admitted {totals.admitted} "
            f"+ rejected {totals.rejected}"
        )
        self._print.line(f"  transitions {sum(self._transitions.values())}: {moves}")
        self._print.line(f"  time per state: {spent}")
        self._print.line(f"  final state: {self._state}")


def _drive_sync(story: Story) -> None:
    breaker = CircuitBreaker(**story.components())
    respond = story.service.respond
    for _ in story.calls():
        refused = failed = False
        try:
            breaker.call(respond)
        except CallNotPermittedError:
            refused = True
        except (ServiceError, TimeoutError):
            failed = True
        pause = story.observe(story.outcome(refused, failed), breaker.info())
        if pause:
            time.sleep(pause)


async def _drive_async(story: Story) -> None:
    breaker = AsyncCircuitBreaker(**story.components())
    respond = story.service.respond_async
    for _ in story.calls():
        refused = failed = False
        try:
            await breaker.call(respond)
        except CallNotPermittedError:
            refused = True
        except (ServiceError, TimeoutError):
            failed = True
        pause = story.observe(story.outcome(refused, failed), breaker.info())
        if pause:
            await asyncio.sleep(pause)


def run(out: TextIO, *, seed: int = DEFAULT_SEED, pace: float | None = None,
        use_async: bool = False) -> int:
    """Run the demo, writing to ``out``; returns the exit code.

    ``pace`` is how many real seconds one simulated second takes; by default
    ``TERMINAL_PACE`` on a terminal and 0 (as fast as possible) otherwise.
    """
    if pace is None:
        pace = TERMINAL_PACE if out.isatty() else 0.0
    story = Story(out, seed, pace, use_async)
    if use_async:
        story.run(lambda s: asyncio.run(_drive_async(s)))
    else:
        story.run(_drive_sync)
    return 0


# ---- python -m fluxgate demo --workers N --------------------------------------

Answer = Literal["ok", "slow", "error", "timeout"]
StateReply = tuple[Literal["state"], State]
CallReply = tuple[Literal["call"], Outcome, list[tuple[State, State, float]], list[str]]

TROUBLE = tuple(i for i, phase in enumerate(PHASES) if phase.name in ("degraded", "failing"))
TROUBLE_SPAN = f"{PHASES[TROUBLE[0]].start}-{PHASES[TROUBLE[-1]].end} s"
_LETTERS: dict[State, str] = {
    "closed": "C", "open": "O", "half_open": "H", "disabled": "D",
    "metrics_only": "M", "forced_open": "F",
}  # fmt: skip


def _phase_at(now: float) -> Phase:
    return next((p for p in PHASES if p.start <= now < p.end), PHASES[-1])


def _answers(seed: int) -> list[tuple[Answer, float]]:
    """What the service answers to each call of the schedule, drawn up front,
    so that both runs face the same calls and the same answers."""
    rng = random.Random(seed)
    answers: list[tuple[Answer, float]] = []
    for number in range(DURATION * CALLS_PER_SECOND):
        now = number / CALLS_PER_SECOND
        error, slow, timeout = _phase_at(now).chances(now)
        draw = rng.random()
        if draw < timeout:
            answers.append(("timeout", 2.0))
        elif draw < timeout + error:
            answers.append(("error", rng.uniform(0.002, 0.01)))
        elif draw < timeout + error + slow:
            answers.append(("slow", rng.uniform(0.6, 1.8)))
        else:
            answers.append(("ok", rng.uniform(0.02, 0.12)))
    return answers


def _worker(
    conn: Connection, index: int, seed: int, start: float, shared: HostMemory | None
) -> None:
    """One worker process: builds its breaker, then makes the calls it is handed."""
    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the parent stops the workers
    try:
        _serve(conn, index, seed, start, shared)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _serve(
    conn: Connection, index: int, seed: int, start: float, shared: HostMemory | None
) -> None:
    random.seed(f"{seed}/{index}")  # this worker's permit and retry draws
    clock = SimClock(start)
    timeline = Timeline()
    logs = _QueueHandler()
    logger = logging.Logger(f"fluxgate.demo.worker{index}")
    logger.addHandler(logs)

    def respond(answer: Answer, latency: float) -> str:
        clock.perf += latency
        if answer == "timeout":
            raise TimeoutError(f"no answer within {latency} s")
        if answer == "error":
            raise ServiceError("503 Service Unavailable")
        return "200 OK"

    # Every process of a shared breaker reads the same (simulated) time.
    with mock.patch("time.time", clock.time), mock.patch(
        "time.perf_counter", clock.perf_counter
    ):
        extra: dict[str, Any] = {} if shared is None else {"shared": shared}
        breaker = CircuitBreaker(**_components(logger, timeline), **extra)
        conn.send(("state", breaker.info().state))
        while True:
            message = conn.recv()
            if message[0] == "stop":
                return
            if message[0] == "state":
                conn.send(("state", breaker.info().state))
                continue
            _, clock.wall, answer, latency = message
            outcome: Outcome
            try:
                breaker.call(respond, answer, latency)
                outcome = "slow" if answer == "slow" else "ok"
            except CallNotPermittedError:
                outcome = "rejected"
            except (ServiceError, TimeoutError):
                outcome = "failed"
            moves = [(s.old_state, s.new_state, s.timestamp) for s in timeline.signals]
            conn.send(("call", outcome, moves, logs.lines[:]))
            timeline.signals.clear()
            logs.lines.clear()


@dataclass
class _Run:
    """What one run of the workers showed."""

    label: str
    counts: Counts = field(default_factory=Counts)
    phases: list[Counts] = field(default_factory=lambda: [Counts() for _ in PHASES])
    transitions: int = 0
    log_lines: int = 0

    def trouble(self) -> int:
        """Calls that reached the service while it was degraded or failing."""
        return sum(self.phases[i].admitted for i in TROUBLE)


class _Workers:
    """The worker processes of one run, and the protocol to talk to them."""

    def __init__(
        self, context: multiprocessing.context.BaseContext, count: int, seed: int,
        start: float, shared: HostMemory | None,
    ) -> None:
        self._processes: list[BaseProcess] = []
        self._conns: list[Connection] = []
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(  # type: ignore[attr-defined]
                target=_worker, args=(child, index, seed, start, shared),
                name=f"fluxgate-demo-worker-{index + 1}", daemon=True,
            )
            process.start()
            child.close()
            self._processes.append(process)
            self._conns.append(parent)

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self._conns:
            try:
                conn.send(("stop",))
            except OSError:
                pass
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
        for conn in self._conns:
            conn.close()

    def receive(self, index: int) -> Any:
        conn, process = self._conns[index], self._processes[index]
        while not conn.poll(0.5):
            if not process.is_alive():
                raise RuntimeError(f"worker {index + 1} stopped (exit code {process.exitcode})")
        try:
            reply = conn.recv()
        except EOFError:
            process.join()
            raise RuntimeError(
                f"worker {index + 1} stopped (exit code {process.exitcode})"
            ) from None
        if reply[0] == "error":
            raise RuntimeError(f"worker {index + 1} failed:\n{reply[1]}")
        return reply

    def call(self, index: int, wall: float, answer: Answer, latency: float) -> CallReply:
        self._conns[index].send(("call", wall, answer, latency))
        reply: CallReply = self.receive(index)
        return reply

    def states(self) -> list[State]:
        for conn in self._conns:
            conn.send(("state",))
        return [self.state(index) for index in range(len(self._conns))]

    def state(self, index: int) -> State:
        reply: StateReply = self.receive(index)
        return reply[1]


class _HostStory:
    """``demo --workers``: the story told twice by a host of worker processes."""

    def __init__(self, out: TextIO, workers: int, seed: int, pace: float,
                 start_method: str) -> None:
        self._workers = workers
        self._seed = seed
        self._pace = pace
        self._method = start_method
        self._context = multiprocessing.get_context(start_method)
        self._style = Style(out, live=pace > 0)
        self._print = Printer(out, self._style)
        self._answers = _answers(seed)
        self._start = float(int(time.time()))

    def header(self, shared: HostMemory) -> None:
        line = self._print.line
        line(
            f"fluxgate {fluxgate.__version__} demo: a flaky service behind a circuit "
            f"breaker, called by {self._workers} worker processes "
            f"(simulated time, seed {self._seed})"
        )
        line()
        line("Each worker builds the breaker of the one-process demo, and passes it shared=:")
        line()
        for text in _describe("CircuitBreaker")[:-1]:
            line(text)
        line("        shared=shared,")
        line("    )")
        line()
        calls = DURATION * CALLS_PER_SECOND
        line(
            f"The same {calls} calls ({CALLS_PER_SECOND} a second for {DURATION} simulated "
            "seconds, the same answers from the service)"
        )
        line(
            "are played twice, handed round robin to the workers one at a time "
            f"(processes started with {self._method}):"
        )
        line("  1. shared=None: each worker has a breaker of its own;")
        line(
            f'  2. shared=HostMemory("{shared.name}", directory=...): one breaker for '
            "the host,"
        )
        line(f"     a segment at {shared.path}.")
        line(
            "One row per second; states: each worker's info().state at its end "
            "(C closed, O open, H half_open)."
        )

    def play(self, label: str, shared: HostMemory | None) -> _Run:
        run = _Run(label)
        line = self._print.line
        line()
        line(self._style.paint(label, "bold"))
        width = max(len("states"), 2 * self._workers - 1)
        line(f"  second  {'states':<{width}}  calls  reached  rejected  failed  slow")
        phase: Phase | None = None
        second = Counts()
        with _Workers(self._context, self._workers, self._seed, self._start, shared) as hosts:
            for index in range(self._workers):  # each has built its breaker
                hosts.state(index)
            for number, (answer, latency) in enumerate(self._answers):
                now = number / CALLS_PER_SECOND
                if _phase_at(now) is not phase:
                    phase = _phase_at(now)
                    line(
                        f"{phase.start:7.2f}s  "
                        + self._style.paint(f"service {phase.name}: {phase.story}", "bold")
                    )
                index = number % self._workers
                _, outcome, moves, logs = hosts.call(
                    index, self._start + now, answer, latency
                )
                for counts in (second, run.counts, run.phases[PHASES.index(phase)]):
                    counts.add(outcome)
                for (old, new, stamp), text in zip(moves, logs + [""] * len(moves)):
                    run.transitions += 1
                    arrow, painted = self._style.arrow, self._style.paint(new, new)
                    line(
                        f"{stamp - self._start:7.2f}s  worker {index + 1}  "
                        f"{old:>9} {arrow} {painted}"
                    )
                    if text:
                        line(self._style.paint(f"          log {text}", "dim"))
                run.log_lines += len(logs)
                if second.calls == CALLS_PER_SECOND:
                    states = " ".join(
                        self._style.paint(_LETTERS.get(state, "?"), state)
                        for state in hosts.states()
                    )
                    states += " " * (width - (2 * self._workers - 1))
                    line(
                        f"{int(now):7d}s  {states}  {second.calls:5d}  {second.admitted:7d}  "
                        f"{second.rejected:8d}  {second.failed:6d}  {second.slow:4d}"
                    )
                    second = Counts()
                    if self._pace:
                        time.sleep(self._pace)
        counts = run.counts
        line(
            f"  {counts.calls} calls: {counts.admitted} reached the service "
            f"({counts.failed} failed, {counts.slow} slow), {counts.rejected} rejected; "
            f"{run.transitions} transitions, {run.log_lines} log lines"
        )
        return run

    def conclude(self, unshared: _Run, shared: _Run, path: str) -> None:
        line = self._print.line
        line()
        line(self._style.paint("Calls that reached the service, of the same calls:", "bold"))
        line("  phase                   calls  unshared  shared")
        for index, phase in enumerate(PHASES):
            where = f"{phase.name} ({phase.start}-{phase.end} s)"
            line(
                f"  {where:<22}  {shared.phases[index].calls:5d}  "
                f"{unshared.phases[index].admitted:8d}  {shared.phases[index].admitted:6d}"
            )
        line(
            f"  {'all':<22}  {shared.counts.calls:5d}  {unshared.counts.admitted:8d}  "
            f"{shared.counts.admitted:6d}"
        )
        line(f"  {'of them failed':<22}  {'':5}  {unshared.counts.failed:8d}  "
             f"{shared.counts.failed:6d}")
        line(f"  {'transitions':<22}  {'':5}  {unshared.transitions:8d}  "
             f"{shared.transitions:6d}")
        line()
        many, few = unshared.trouble(), shared.trouble()
        line(
            f"Calls that reached the service while it was degraded or failing "
            f"({TROUBLE_SPAN}): unshared {many}, shared {few}"
        )
        if few < many:
            conclusion = (
                f"Conclusion: one breaker for the host let {many - few} fewer calls reach "
                f"the service in trouble ({few} against {many}): the {self._workers} "
                "workers backed off as one, where each alone had to see the failures "
                "for itself."
            )
        else:
            conclusion = (
                "Conclusion: with this seed, sharing did not spare the service in "
                f"trouble any calls ({few} shared against {many} unshared)."
            )
        line(self._style.paint(conclusion, "bold"))
        line(f"The segment {path} was removed (HostMemory.unlink).")


def run_workers(
    out: TextIO, *, workers: int, seed: int = DEFAULT_SEED, pace: float | None = None,
    start_method: str | None = None,
) -> int:
    """``demo --workers``: the story with ``workers`` processes, unshared then
    shared; returns the exit code.

    ``start_method`` is multiprocessing's: by default ``fork`` where the
    platform has it, else ``spawn``.
    """
    if pace is None:
        pace = WORKERS_TERMINAL_PACE if out.isatty() else 0.0
    if start_method is None:
        methods = multiprocessing.get_all_start_methods()
        start_method = "fork" if "fork" in methods else "spawn"
    from fluxgate.shared import HostMemory

    story = _HostStory(out, workers, seed, pace, start_method)
    with tempfile.TemporaryDirectory(prefix="fluxgate-demo-") as directory:
        name = f"demo-{os.getpid()}"
        try:
            shared = HostMemory(name, directory=directory)
        except NotImplementedError as exc:  # Windows
            print(f"demo --workers: {exc}", file=sys.stderr)
            return 1
        path = str(shared.path)
        try:
            story.header(shared)
            unshared_run = story.play("1. shared=None: a breaker per worker", None)
            shared_run = story.play("2. shared=HostMemory(...): one breaker for the host", shared)
        finally:
            try:
                HostMemory.unlink(name, directory=directory)
            except FileNotFoundError:
                pass
    story.conclude(unshared_run, shared_run, path)
    return 0
