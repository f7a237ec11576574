"""AsyncCircuitBreaker under adverse conditions (SPEC.md sections 9 and 12,
DESIGN.md D7 and D8): several event loops in several threads, cancelled
commands, listeners that command their breaker on every signal.

Every wait is bounded: a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker
from fluxgate.permits import All as AllPermit
from fluxgate.retries import Always
from fluxgate.signal import Signal
from fluxgate.trippers import FailureStreak
from fluxgate.windows import CountWindow

WAIT = 30.0  # an upper bound for what should take milliseconds


async def boom() -> None:
    raise ValueError("boom")


def half_open_breaker(**options: Any) -> AsyncCircuitBreaker:
    """Opens on the first failure; the next call moves it to HALF_OPEN."""
    return AsyncCircuitBreaker(
        window=CountWindow(10),
        tripper=FailureStreak(1),
        retry=Always(),
        permit=AllPermit(),
        **options,
    )


class LoopThread:
    """An event loop running in its own (daemon) thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        if not self.thread.is_alive():
            self.loop.close()


# ---- item: a slot freed in one loop wakes a waiter of another ---------------


def test_a_half_open_slot_freed_in_one_loop_wakes_a_waiter_of_another() -> None:
    cb = half_open_breaker(max_half_open_calls=1)
    first, second = LoopThread(), LoopThread()
    try:
        with pytest.raises(ValueError):
            first.submit(cb.call(boom)).result(WAIT)
        assert cb.info().state == "open"

        holding = threading.Event()
        release = threading.Event()

        async def hold() -> str:
            holding.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, WAIT)
            return "held"

        async def probe() -> str:
            return "probed"

        # The first loop's call moves OPEN to HALF_OPEN and takes the only slot.
        held = first.submit(cb.call(hold))
        assert holding.wait(WAIT)
        assert cb.info().state == "half_open"
        # The second loop's call waits for that slot.
        waiting = second.submit(cb.call(probe))
        for _ in range(100):
            # Let the second loop reach its wait (bounded by a count of turns).
            second.submit(asyncio.sleep(0)).result(WAIT)
        assert not waiting.done()
        release.set()
        assert held.result(WAIT) == "held"
        # Nothing else wakes the second loop: only the slot's hand-over does.
        assert waiting.result(WAIT) == "probed"
    finally:
        release.set()
        first.close()
        second.close()


def test_many_loops_share_the_half_open_slots_without_losing_one() -> None:
    # Calls of four loops contend for two slots; every call finishes, and
    # afterwards both slots are free again (two calls can hold them at once).
    cb = half_open_breaker(max_half_open_calls=2)
    loops = [LoopThread() for _ in range(4)]
    try:
        with pytest.raises(ValueError):
            loops[0].submit(cb.call(boom)).result(WAIT)

        async def quick() -> int:
            await asyncio.sleep(0)
            return 1

        futures = [
            loop.submit(cb.call(quick)) for loop in loops for _ in range(25)
        ]
        assert sum(f.result(WAIT) for f in futures) == 100
    finally:
        for loop in loops:
            loop.close()


def test_a_module_level_breaker_serves_one_loop_after_another() -> None:
    cb = half_open_breaker(max_half_open_calls=1)

    async def probe() -> str:
        return "ok"

    for _ in range(3):
        with pytest.raises(ValueError):
            asyncio.run(cb.call(boom))
        assert asyncio.run(cb.call(probe)) == "ok"
        assert cb.info().state == "closed"


def test_a_slot_waiter_cancelled_after_the_hand_over_passes_the_slot_on() -> None:
    cb = half_open_breaker(max_half_open_calls=1)
    first, second = LoopThread(), LoopThread()
    try:
        with pytest.raises(ValueError):
            first.submit(cb.call(boom)).result(WAIT)
        release = threading.Event()
        holding = threading.Event()

        async def hold() -> str:
            holding.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait, WAIT)
            return "held"

        async def probe() -> str:
            return "probed"

        held = first.submit(cb.call(hold))
        assert holding.wait(WAIT)
        doomed = second.submit(cb.call(probe))
        for _ in range(100):
            second.submit(asyncio.sleep(0)).result(WAIT)
        doomed.cancel()
        later = first.submit(cb.call(probe))
        release.set()
        assert held.result(WAIT) == "held"
        assert later.result(WAIT) == "probed"
    finally:
        release.set()
        first.close()
        second.close()


@pytest.mark.asyncio
async def test_a_waiter_cancelled_as_its_slot_is_freed_is_just_cancelled() -> None:
    cb = half_open_breaker(max_half_open_calls=1)
    with pytest.raises(ValueError):
        await cb.call(boom)
    release = asyncio.Event()

    async def hold() -> str:
        await release.wait()
        return "held"

    async def probe() -> str:
        return "probed"

    held = asyncio.create_task(cb.call(hold))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(cb.call(probe))
    await asyncio.sleep(0)
    release.set()  # the holder frees its slot first ...
    doomed.cancel()  # ... to a waiter cancelled in the same turn
    assert await asyncio.wait_for(held, WAIT) == "held"
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await asyncio.wait_for(cb.call(probe), WAIT) == "probed"


# ---- item: signals survive the cancellation of the task that caused them ----


@pytest.mark.asyncio
async def test_a_cancelled_command_still_reaches_async_listeners() -> None:
    heard_sync: list[tuple[str, str]] = []
    heard_async: list[tuple[str, str]] = []
    done = asyncio.Event()

    def sync_listener(signal: Signal, /) -> None:
        heard_sync.append((signal.old_state, signal.new_state))

    async def async_listener(signal: Signal, /) -> None:
        await asyncio.sleep(0)
        heard_async.append((signal.old_state, signal.new_state))
        done.set()

    cb = AsyncCircuitBreaker(listeners=[sync_listener, async_listener])
    task = asyncio.create_task(cb.force_open())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(done.wait(), WAIT)
    assert cb.info().state == "forced_open"
    assert heard_sync == [("closed", "forced_open")]
    assert heard_async == [("closed", "forced_open")]


@pytest.mark.asyncio
async def test_signals_queued_behind_a_cancelled_delivery_arrive_in_order() -> None:
    heard: list[tuple[str, str]] = []
    gate = asyncio.Event()

    async def slow_listener(signal: Signal, /) -> None:
        if signal.new_state == "forced_open":
            await gate.wait()
        heard.append((signal.old_state, signal.new_state))

    cb = AsyncCircuitBreaker(listeners=[slow_listener])
    forcing = asyncio.create_task(cb.force_open())
    await asyncio.sleep(0)  # its delivery is now waiting at the gate
    resetting = asyncio.create_task(cb.reset())
    disabling = asyncio.create_task(cb.disable())
    await asyncio.sleep(0)
    forcing.cancel()
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(asyncio.gather(resetting, disabling), WAIT)
    assert heard == [
        ("closed", "forced_open"),
        ("forced_open", "closed"),
        ("closed", "disabled"),
    ]


@pytest.mark.asyncio
async def test_chain_holds_under_wait_for_timeouts() -> None:
    # Many commands, each given a timeout that cancels some of them in the
    # middle of their delivery: the async listener still sees one unbroken
    # old -> new chain, each transition once.
    heard: list[Signal] = []
    heard_sync: list[Signal] = []

    async def listener(signal: Signal, /) -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        heard.append(signal)

    cb = AsyncCircuitBreaker(listeners=[heard_sync.append, listener])
    commands = [cb.force_open, cb.reset, cb.disable, cb.metrics_only]

    async def command(i: int) -> None:
        try:
            await asyncio.wait_for(commands[i % 4](), 0.001 if i % 3 == 0 else WAIT)
        except asyncio.TimeoutError:
            pass

    await asyncio.gather(*(command(i) for i in range(200)))
    # Let deliveries whose callers gave up finish (bounded by a count).
    for _ in range(10_000):
        if heard and heard[-1].new_state == cb.info().state:
            break
        await asyncio.sleep(0)
    assert len(heard) > 100
    assert heard == heard_sync
    assert heard[0].old_state == "closed"
    for before, after in zip(heard, heard[1:]):
        assert after.old_state == before.new_state
    assert heard[-1].new_state == cb.info().state


def _start_a_delivery_that_stalls(cb: AsyncCircuitBreaker) -> Any:
    """A coroutine that forces `cb` open and returns while the async
    listener's delivery of that signal is still waiting."""

    async def main() -> None:
        asyncio.create_task(cb.force_open())
        for _ in range(5):
            await asyncio.sleep(0)

    return main()


def _stalling_breaker() -> tuple[AsyncCircuitBreaker, list[str]]:
    heard: list[str] = []

    async def listener(signal: Signal, /) -> None:
        if signal.new_state == "forced_open":
            await asyncio.Event().wait()  # never set
        heard.append(signal.new_state)

    return AsyncCircuitBreaker(listeners=[listener]), heard


def test_a_delivery_cut_short_by_asyncio_run_leaves_the_rest_to_the_next_loop() -> None:
    cb, heard = _stalling_breaker()
    asyncio.run(_start_a_delivery_that_stalls(cb))  # cancels what is left
    asyncio.run(asyncio.wait_for(cb.reset(), WAIT))
    assert heard == ["closed"]
    assert cb.info().state == "closed"


def test_a_delivery_whose_loop_was_closed_is_taken_over() -> None:
    cb, heard = _stalling_breaker()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_start_a_delivery_that_stalls(cb))
    loop.close()  # the delivering task is left pending, never to run again
    asyncio.run(asyncio.wait_for(cb.reset(), WAIT))
    assert heard == ["closed"]


# ---- item: a listener that commands on every signal ends --------------------


def _recursion_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for r in caplog.records
        if r.getMessage().startswith("Listener")
        and r.exc_info is not None
        and isinstance(r.exc_info[1], RecursionError)
    )


@pytest.mark.asyncio
async def test_an_async_listener_resetting_on_every_signal_ends_with_recursion_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = sys.getrecursionlimit()
    heard: list[Signal] = []

    async def listener(signal: Signal, /) -> None:
        heard.append(signal)
        if len(heard) < 20 * limit:
            await cb.reset()

    cb = AsyncCircuitBreaker(listeners=[listener])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        await asyncio.wait_for(cb.force_open(), WAIT)
    assert len(heard) < 2 * limit
    assert _recursion_failures(caplog) == 1
    assert cb.info().state == "closed"


@pytest.mark.asyncio
async def test_a_sync_listener_of_an_async_breaker_commanding_through_tasks_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = sys.getrecursionlimit()
    heard: list[Signal] = []
    tasks: list[asyncio.Task[None]] = []

    def listener(signal: Signal, /) -> None:
        heard.append(signal)
        if len(heard) < 20 * limit:
            tasks.append(asyncio.ensure_future(cb.reset()))

    cb = AsyncCircuitBreaker(listeners=[listener])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        await cb.force_open()
        for _ in range(40 * limit):
            if tasks and all(t.done() for t in tasks):
                break
            await asyncio.sleep(0)
    assert len(heard) < 2 * limit
    failed = [t for t in tasks if t.exception() is not None]
    assert len(failed) == 1
    assert isinstance(failed[0].exception(), RecursionError)


@pytest.mark.asyncio
async def test_a_listener_commanding_another_breaker_does_not_wait_for_itself() -> None:
    # Two breakers whose listeners command each other once: no deadlock.
    heard: list[str] = []

    async def on_a(signal: Signal, /) -> None:
        heard.append(f"a:{signal.new_state}")
        if signal.new_state == "forced_open":
            await b.force_open()

    async def on_b(signal: Signal, /) -> None:
        heard.append(f"b:{signal.new_state}")
        if signal.new_state == "forced_open":
            await a.reset()

    a = AsyncCircuitBreaker(listeners=[on_a])
    b = AsyncCircuitBreaker(listeners=[on_b])
    await asyncio.wait_for(a.force_open(), WAIT)
    assert heard[:2] == ["a:forced_open", "b:forced_open"]
    for _ in range(100):
        if "a:closed" in heard:
            break
        await asyncio.sleep(0)
    assert "a:closed" in heard
    assert a.info().state == "closed"

