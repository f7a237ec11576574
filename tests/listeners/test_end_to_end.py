"""End to end: a real breaker with the three shipped listeners attached.

Both breakers go through the same story in frozen time: they trip, refuse
calls, fail one probe, recover on the next, and are then commanded through
every state, twice more from ``open`` so that each way of ending a Slack
thread is seen. The log records, the Prometheus exposition and the messages
a local Slack-compatible server receives must tell that story exactly.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, get_args

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.listeners.log import LogListener
from fluxgate.listeners.prometheus import PrometheusListener
from fluxgate.listeners.slack import AsyncSlackListener, SlackListener
from fluxgate.permits import All as AllPermits
from fluxgate.retries import Cooldown
from fluxgate.state import State
from fluxgate.trippers import Closed, FailureRate, HalfOpened, MinRequests
from fluxgate.windows import CountWindow

from .slack_server import FakeSlack

NAME = "payments"
CHANNEL = "C0123"
TOKEN = "xoxb-1234-secret-token"
T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
FROZEN_AT = "2023-11-14 22:13:20"
COOLDOWN = 60.0
LOG_NAME = "fluxgate.listeners.log"
STATES: tuple[State, ...] = get_args(State)

Freezer = FrozenDateTimeFactory | StepTickTimeFactory | TickingDateTimeFactory

# Every transition of the story: seconds after T0, old state, new state, and
# the Slack thread the message must reply in, given as the index of the post
# whose response opened it (None: the message carries no thread_ts).
STORY: list[tuple[int, State, State, int | None]] = [
    (0, "closed", "open", None),  # two failures; opens thread 0
    (61, "open", "half_open", 0),  # cooldown over: a probe is admitted...
    (61, "half_open", "open", 0),  # ...and fails; the thread goes on
    (121, "open", "half_open", 0),  # cooldown over again: a probe...
    (121, "half_open", "closed", 0),  # ...succeeds; broadcast, thread ends
    (122, "closed", "forced_open", None),
    (123, "forced_open", "closed", None),
    (124, "closed", "metrics_only", None),
    (125, "metrics_only", "disabled", None),
    (126, "disabled", "closed", None),
    (127, "closed", "open", None),  # trips again; opens thread 10
    (128, "open", "forced_open", 10),  # forced_open keeps the thread
    (129, "forced_open", "metrics_only", 10),  # metrics_only ends it
    (130, "metrics_only", "closed", None),
    (131, "closed", "open", None),  # trips again; opens thread 14
    (132, "open", "disabled", 14),  # disabled ends it
    (133, "disabled", "closed", None),
]

FALLBACK = ("ℹ️ Circuit Breaker State Changed", "#808080")
TEMPLATES: dict[tuple[State, State], tuple[str, str]] = {
    ("closed", "open"): ("🚨 Circuit Breaker Triggered", "#FF4C4C"),
    ("open", "half_open"): ("🔄 Attempting Circuit Breaker Recovery", "#FFA500"),
    ("half_open", "open"): ("⚠️ Circuit Breaker Re-triggered", "#FF4C4C"),
    ("half_open", "closed"): ("✅ Circuit Breaker Recovered", "#36a64f"),
}


def local_time(timestamp: float) -> str:
    """How the listeners print ``timestamp``, local time being UTC here."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC for the test.

    Under freezegun, ``datetime.fromtimestamp`` gives UTC shifted by its
    ``tz_offset`` while ``time.localtime(t)`` uses the system's zone; with
    the system's zone at UTC both readings of local time agree.
    """
    tzset: Callable[[], None] | None = getattr(time, "tzset", None)
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    if tzset is not None:
        tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        if tzset is not None:
            tzset()


def components() -> dict[str, Any]:
    """Opens on half the calls failing out of at least two; one probe decides."""
    return dict(
        window=CountWindow(4),
        tripper=(Closed() & MinRequests(2) & FailureRate(0.5))
        | (HalfOpened() & FailureRate(0.5)),
        retry=Cooldown(COOLDOWN),
        permit=AllPermits(),
    )


class Breaker(Protocol):
    """One breaker, sync or async, driven the same way."""

    async def fail(self) -> None: ...
    async def succeed(self) -> str: ...
    async def command(self, name: str) -> None: ...
    def info(self) -> CircuitBreakerInfo: ...


def boom() -> None:
    raise ValueError("boom")


async def aboom() -> None:
    raise ValueError("boom")


async def aok() -> str:
    return "ok"


class SyncBreaker:
    """A CircuitBreaker called directly; only the script around it is async."""

    def __init__(self, listeners: list[Callable[..., Any]]) -> None:
        self.cb = CircuitBreaker(**components(), listeners=listeners)

    async def fail(self) -> None:
        self.cb.call(boom)

    async def succeed(self) -> str:
        return self.cb.call(lambda: "ok")

    async def command(self, name: str) -> None:
        getattr(self.cb, name)()

    def info(self) -> CircuitBreakerInfo:
        return self.cb.info()


class AsyncBreaker:
    """An AsyncCircuitBreaker, its calls and commands awaited."""

    def __init__(self, listeners: list[Callable[..., Any]]) -> None:
        self.cb = AsyncCircuitBreaker(**components(), listeners=listeners)

    async def fail(self) -> None:
        await self.cb.call(aboom)

    async def succeed(self) -> str:
        return await self.cb.call(aok)

    async def command(self, name: str) -> None:
        await getattr(self.cb, name)()

    def info(self) -> CircuitBreakerInfo:
        return self.cb.info()


@asynccontextmanager
async def sync_breaker(
    registry: CollectorRegistry, slack: FakeSlack
) -> AsyncIterator[Breaker]:
    with SlackListener(NAME, CHANNEL, TOKEN, api_url=slack.url) as poster:
        yield SyncBreaker([LogListener(NAME), PrometheusListener(NAME, registry), poster])


@asynccontextmanager
async def async_breaker(
    registry: CollectorRegistry, slack: FakeSlack
) -> AsyncIterator[Breaker]:
    async with AsyncSlackListener(NAME, CHANNEL, TOKEN, api_url=slack.url) as poster:
        yield AsyncBreaker([LogListener(NAME), PrometheusListener(NAME, registry), poster])


MakeBreaker = Callable[[CollectorRegistry, FakeSlack], Any]


# ---- what the listeners must show ----


def assert_state(cb: Breaker, state: State, offset: int) -> None:
    info = cb.info()
    assert (info.state, info.changed_at) == (state, T0 + offset)


def assert_logged(caplog: pytest.LogCaptureFixture, story: list[Any]) -> None:
    logged = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.name == LOG_NAME
    ]
    assert logged == [
        (
            "WARNING" if new in ("open", "forced_open") else "INFO",
            f"[{local_time(T0 + offset)}] Circuit Breaker '{NAME}' "
            f"transitioned from {old} to {new}",
        )
        for offset, old, new, _ in story
    ]


def assert_exported(registry: CollectorRegistry, story: list[Any]) -> None:
    text = generate_latest(registry).decode()
    lines = text.splitlines()
    assert "# HELP circuit_breaker_state Current state of the circuit breaker" in lines
    assert "# TYPE circuit_breaker_state gauge" in lines
    assert (
        "# HELP circuit_breaker_state_transition_total "
        "Count of state transitions for circuit breakers"
    ) in lines
    assert "# TYPE circuit_breaker_state_transition_total counter" in lines
    # Parsed rather than compared line by line: the order of the labels
    # within a line differs between prometheus_client versions.
    gauge: dict[str, float] = {}
    counter: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "circuit_breaker_state":
                assert set(labels) == {"circuit_name", "state"}
                assert labels["circuit_name"] == NAME
                gauge[labels["state"]] = sample.value
            elif sample.name == "circuit_breaker_state_transition_total":
                assert set(labels) == {"circuit_name", "old_state", "new_state"}
                assert labels["circuit_name"] == NAME
                counter[labels["old_state"], labels["new_state"]] = sample.value
    current = story[-1][2]
    assert gauge == {state: 1.0 if state == current else 0.0 for state in STATES}
    assert counter == dict(Counter((old, new) for _, old, new, _ in story))


def assert_posted(slack: FakeSlack, story: list[Any]) -> None:
    assert len(slack.posts) == len(story)
    for post, (offset, old, new, thread) in zip(slack.posts, story):
        body = post.body
        title, color = TEMPLATES.get((old, new), FALLBACK)
        [attachment] = body["attachments"]
        heading, details = attachment["blocks"]
        assert body["channel"] == CHANNEL
        assert post.headers["authorization"] == f"Bearer {TOKEN}"
        assert attachment["color"] == color
        assert heading["text"]["text"] == f"*{title}*"
        assert [field["text"] for field in details["fields"][:3]] == [
            f"*Circuit Breaker:*\n{NAME}",
            f"*State Transition:*\n{old} → {new}",
            f"*Transition Time:*\n{local_time(T0 + offset)}",
        ]
        if thread is None:
            assert "thread_ts" not in body
        else:
            assert body["thread_ts"] == slack.issued_ts[thread]
        if new == "closed":
            assert body["reply_broadcast"] is True
        else:
            assert "reply_broadcast" not in body


def assert_told(
    caplog: pytest.LogCaptureFixture,
    registry: CollectorRegistry,
    slack: FakeSlack,
    cb: Breaker,
    story: list[Any],
) -> None:
    assert_logged(caplog, story)
    assert_exported(registry, story)
    assert_posted(slack, story)
    assert cb.info().state == story[-1][2]
    # Nothing went wrong in a listener (the breaker would log it at ERROR).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ---- the story ----


async def trip(cb: Breaker) -> None:
    with pytest.raises(ValueError, match="^boom$"):
        await cb.fail()
    assert cb.info().state == "closed"  # one call is below MinRequests(2)
    with pytest.raises(ValueError, match="^boom$"):
        await cb.fail()


async def refused(cb: Breaker, message: str) -> None:
    with pytest.raises(CallNotPermittedError, match=f"^{message}$"):
        await cb.succeed()


async def tell_the_story(
    cb: Breaker,
    freezer: Freezer,
    caplog: pytest.LogCaptureFixture,
    registry: CollectorRegistry,
    slack: FakeSlack,
) -> None:
    def tick(seconds: float = 1.0) -> None:
        freezer.tick(seconds)

    assert_state(cb, "closed", 0)
    await trip(cb)
    assert_state(cb, "open", 0)
    assert_told(caplog, registry, slack, cb, STORY[:1])

    await refused(cb, "Circuit breaker is open")
    tick(30)
    await refused(cb, "Circuit breaker is open")
    tick(31)
    with pytest.raises(ValueError, match="^boom$"):
        await cb.fail()  # the probe fails
    assert_state(cb, "open", 61)
    assert cb.info().reopens == 1
    await refused(cb, "Circuit breaker is open")
    tick(COOLDOWN)
    assert await cb.succeed() == "ok"  # the probe succeeds
    assert_state(cb, "closed", 121)
    assert cb.info().reopens == 0
    assert_told(caplog, registry, slack, cb, STORY[:5])

    tick()
    await cb.command("force_open")
    assert_state(cb, "forced_open", 122)
    await refused(cb, "Circuit breaker is forced open")
    tick()
    await cb.command("reset")
    assert_state(cb, "closed", 123)
    tick()
    await cb.command("metrics_only")
    for _ in range(3):  # recorded, never tripping
        with pytest.raises(ValueError):
            await cb.fail()
    assert cb.info().metrics.failure_count == 3
    assert_state(cb, "metrics_only", 124)
    tick()
    await cb.command("disable")
    with pytest.raises(ValueError):
        await cb.fail()
    assert cb.info().metrics.total_count == 0
    assert_state(cb, "disabled", 125)
    tick()
    await cb.command("reset")
    assert_state(cb, "closed", 126)
    assert_told(caplog, registry, slack, cb, STORY[:10])

    tick()
    await trip(cb)
    assert_state(cb, "open", 127)
    tick()
    await cb.command("force_open")
    tick()
    await cb.command("metrics_only")
    tick()
    await cb.command("reset")
    tick()
    await trip(cb)
    tick()
    await cb.command("disable")
    tick()
    await cb.command("reset")
    assert_state(cb, "closed", 133)
    assert_told(caplog, registry, slack, cb, STORY)


@pytest.mark.asyncio
@pytest.mark.usefixtures("utc")
@pytest.mark.parametrize("make", [sync_breaker, async_breaker], ids=["sync", "async"])
async def test_breaker_story_is_told_by_log_prometheus_and_slack(
    make: MakeBreaker, caplog: pytest.LogCaptureFixture, slack: FakeSlack
) -> None:
    caplog.set_level(logging.INFO, logger=LOG_NAME)
    registry = CollectorRegistry()
    with freeze_time(FROZEN_AT, real_asyncio=True) as freezer:
        assert time.time() == T0
        async with make(registry, slack) as cb:
            await tell_the_story(cb, freezer, caplog, registry, slack)
