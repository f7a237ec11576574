"""The stubs: mypy --strict accepts a realistic program and rejects misuse."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from conftest import TypeCheck

PROGRAM = '''
import asyncio
import dataclasses
import logging

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker, State
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.listeners import AsyncListener, Listener
from fluxgate.listeners.log import LogListener
from fluxgate.metric import Metric, Record
from fluxgate.permits import All as AllPermits, Permit, Random, RampUp
from fluxgate.retries import Always, Backoff, Cooldown, Never, Retry
from fluxgate.signal import Signal
from fluxgate.trackers import All, Custom, Tracker, TypeOf
from fluxgate.trippers import (
    AvgLatency, CallContext, Closed, FailureRate, FailureStreak, HalfOpened,
    MinRequests, SlowRate, Tripper,
)
from fluxgate.windows import CountWindow, TimeWindow, Window


class LastN(Window):
    def __init__(self) -> None:
        self.metric = Metric.empty()

    def record(self, record: Record) -> None:
        self.metric = self.metric + Metric.from_record(record)

    def get_metric(self) -> Metric:
        return self.metric

    def reset(self) -> None:
        self.metric = Metric.empty()


class Busy(Tripper):
    def __call__(self, ctx: CallContext) -> bool:
        return ctx.metric.total_count > 1000


def on_change(signal: Signal, /) -> None:
    state: State = signal.new_state
    print(state, signal.timestamp)


cb = CircuitBreaker(
    window=CountWindow(100),
    tracker=TypeOf(ConnectionError, TimeoutError) | Custom(lambda e: "retry" in str(e)),
    tripper=Closed() & MinRequests(10) & (FailureRate(0.5) | SlowRate(0.3, threshold=1.0))
    | HalfOpened() & (FailureStreak(2) | AvgLatency(2.0)) | Busy(),
    retry=Backoff(1.0, multiplier=2.0, max_duration=60.0, jitter_ratio=0.1),
    permit=RampUp(0.1, 1.0, 30.0),
    listeners=[on_change, LogListener("payments", logger=logging.getLogger("x"))],
)
slow = CircuitBreaker(window=TimeWindow(60), tracker=~All(), retry=Cooldown(5.0),
                      permit=Random(0.5))
custom = CircuitBreaker(window=LastN(), retry=Never(), permit=AllPermits())
tracker: Tracker = TypeOf(ValueError)
retry: Retry = Always()
permit: Permit = AllPermits()


def fetch(user_id: int, *, verbose: bool = False) -> str:
    return f"user {user_id}"


@cb
def decorated(x: int) -> int:
    return x


@cb(fallback=lambda e: -1)
def with_fallback(x: int) -> int:
    return x


length: int = decorated(1) + with_fallback(2)
name: str = cb.call(fetch, 3, verbose=True)
other: str = cb.call_with_fallback(fetch, lambda e: "cached", 4)
info: CircuitBreakerInfo = cb.info()
rate: float | None = info.metrics.failure_rate
as_dict = dataclasses.asdict(info)
cb.reset(); cb.disable(); cb.metrics_only(); cb.force_open()
try:
    slow.call(fetch, 5)
except CallNotPermittedError as error:
    print(error)

acb = AsyncCircuitBreaker(max_half_open_calls=3, listeners=[on_change])


@acb
async def async_fetch(user_id: int) -> str:
    return str(user_id)


async def main() -> None:
    text: str = await async_fetch(1)
    again: str = await acb.call(async_fetch, 2)
    fallback: str = await acb.call_with_fallback(async_fetch, lambda e: "x", 3)
    await acb.reset()
    await acb.force_open()
    print(text, again, fallback, acb.info().state)


asyncio.run(main())
listener: Listener = on_change
async_listener: AsyncListener
'''

MISUSE = {
    "window size as text": 'from fluxgate.windows import CountWindow\nCountWindow(size="10")\n',
    "tripper and an int": "from fluxgate.trippers import MinRequests\nMinRequests(1) & 3\n",
    "argument of the wrong type through call": (
        "from fluxgate import CircuitBreaker\n"
        "def f(x: int) -> int:\n    return x\n"
        'CircuitBreaker().call(f, "x")\n'
    ),
    "wrong argument through a decorated function": (
        "from fluxgate import CircuitBreaker\n"
        "cb = CircuitBreaker()\n"
        "@cb\ndef f(x: int) -> int:\n    return x\n"
        'f("x")\n'
    ),
    "async call with a wrong argument": (
        "from fluxgate import AsyncCircuitBreaker\n"
        "async def f(x: int) -> int:\n    return x\n"
        "async def main() -> None:\n"
        '    await AsyncCircuitBreaker().call(f, "x")\n'
    ),
    "cooldown as text": 'from fluxgate.retries import Cooldown\nCooldown("60")\n',
    "slow-rate threshold passed positionally": (
        "from fluxgate.trippers import SlowRate\nSlowRate(0.5, 1.0)\n"
    ),
}


def test_a_realistic_program_type_checks(mypy_strict: Callable[[str], TypeCheck]) -> None:
    result = mypy_strict(PROGRAM)
    assert result.status == 0, result.output


def test_misuse_is_reported(mypy_strict: Callable[[str], TypeCheck]) -> None:
    program = "\n".join(
        f"def case_{i}() -> None:\n" + textwrap.indent(source, "    ")
        for i, source in enumerate(MISUSE.values())
    )
    result = mypy_strict(program)
    assert result.status == 1
    starts = [i for i, line in enumerate(program.splitlines(), 1) if line.startswith("def case_")]
    ends = starts[1:] + [len(program.splitlines()) + 1]
    for name, start, end in zip(MISUSE, starts, ends):
        assert any(start < line < end for line in result.error_lines), (name, result.output)
