"""AsyncCircuitBreaker: SPEC.md section 9 and DESIGN.md D8/D9."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from freezegun import freeze_time

from fluxgate import AsyncCircuitBreaker, CallNotPermittedError
from fluxgate.permits import All as AllPermit
from fluxgate.retries import Always, Cooldown, Never
from fluxgate.signal import Signal
from fluxgate.trackers import TypeOf
from fluxgate.trippers import Closed, FailureRate, HalfOpened, MinRequests
from fluxgate.windows import CountWindow

async def ok(value: Any = None) -> Any:
    return value


async def boom() -> None:
    raise ValueError("boom")


def tripping_breaker(**overrides: Any) -> AsyncCircuitBreaker:
    """Opens after two failures out of two calls; probes always admitted."""
    options: dict[str, Any] = dict(
        window=CountWindow(10),
        tripper=MinRequests(2) & FailureRate(0.5),
        retry=Never(),
        permit=AllPermit(),
    )
    options.update(overrides)
    return AsyncCircuitBreaker(**options)


async def trip(cb: AsyncCircuitBreaker) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            await cb.call(boom)
    assert cb.info().state == "open"


class Recorder:
    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def __call__(self, signal: Signal, /) -> None:
        self.signals.append(signal)

    @property
    def transitions(self) -> list[tuple[str, str]]:
        return [(s.old_state, s.new_state) for s in self.signals]


# ---- construction -------------------------------------------------------


@pytest.mark.asyncio
async def test_defaults_and_info() -> None:
    cb = AsyncCircuitBreaker()
    info = cb.info()
    assert info.state == "closed"
    assert info.reopens == 0
    assert info.metrics.total_count == 0
    assert not inspect.iscoroutinefunction(cb.info)


@pytest.mark.parametrize("bad", [0, -1])
@pytest.mark.asyncio
async def test_max_half_open_calls_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_half_open_calls"):
        AsyncCircuitBreaker(max_half_open_calls=bad)


@pytest.mark.asyncio
async def test_max_half_open_calls_must_be_an_integer() -> None:
    with pytest.raises(TypeError, match="max_half_open_calls"):
        AsyncCircuitBreaker(max_half_open_calls="3")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_positional_signature_matches_spec() -> None:
    params = inspect.signature(AsyncCircuitBreaker).parameters
    positional = [
        name for name, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    assert positional == [
        "window", "tracker", "tripper", "retry", "permit",
        "max_half_open_calls", "listeners",
    ]
    # The one addition beyond 0.9.4's signature is keyword-only.
    assert [name for name, p in params.items() if p.kind is p.KEYWORD_ONLY] == ["shared"]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"window": object()}, "window"),
        ({"tracker": 42}, "tracker"),
        ({"listeners": [42]}, "listeners"),
    ],
)
@pytest.mark.asyncio
async def test_bad_components_name_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(TypeError, match=name):
        AsyncCircuitBreaker(**kwargs)


@pytest.mark.asyncio
async def test_commands_are_coroutines() -> None:
    cb = AsyncCircuitBreaker()
    for name in ("call", "call_with_fallback", "reset", "disable", "metrics_only", "force_open"):
        assert inspect.iscoroutinefunction(getattr(cb, name)), name


# ---- calling forms ------------------------------------------------------


@pytest.mark.asyncio
async def test_call_returns_result_and_records() -> None:
    cb = AsyncCircuitBreaker()
    assert await cb.call(ok, 5) == 5
    assert await cb.call(ok, value=6) == 6
    assert cb.info().metrics.total_count == 2


@pytest.mark.asyncio
async def test_decorator_forms_keep_metadata_and_are_coroutine_functions() -> None:
    cb = AsyncCircuitBreaker()

    async def fetch(x: int, *, scale: int = 2) -> int:
        """Doc."""
        return x * scale

    fetch.extra = "kept"  # type: ignore[attr-defined]
    for decorated in (cb(fetch), cb()(fetch), cb(fallback=lambda e: -1)(fetch),
                      cb(fetch, fallback=lambda e: -1)):
        assert inspect.iscoroutinefunction(decorated)
        assert decorated.__name__ == "fetch"
        assert decorated.__doc__ == "Doc."
        assert decorated.__wrapped__ is fetch  # type: ignore[attr-defined]
        assert decorated.extra == "kept"  # type: ignore[attr-defined]
        assert inspect.signature(decorated) == inspect.signature(fetch)
        assert await decorated(3) == 6


@pytest.mark.asyncio
async def test_decorated_method_binds() -> None:
    cb = AsyncCircuitBreaker()

    class Client:
        def __init__(self) -> None:
            self.base = 10

        @cb
        async def get(self, x: int) -> int:
            return self.base + x

    assert await Client().get(1) == 11


@pytest.mark.asyncio
async def test_fallback_receives_call_not_permitted_and_returns_as_is() -> None:
    cb = AsyncCircuitBreaker()
    await cb.force_open()
    seen: list[Exception] = []

    def fallback(error: Exception) -> str:
        seen.append(error)
        return "cached"

    assert await cb.call_with_fallback(ok, fallback, 1) == "cached"
    assert isinstance(seen[0], CallNotPermittedError)
    assert str(seen[0]) == "Circuit breaker is forced open"

    @cb(fallback=fallback)
    async def guarded() -> str:
        return "live"

    assert await guarded() == "cached"


@pytest.mark.asyncio
async def test_fallback_receives_the_call_exception() -> None:
    cb = AsyncCircuitBreaker()
    result = await cb.call_with_fallback(boom, lambda e: type(e).__name__)
    assert result == "ValueError"


# ---- states ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_trips_and_rejects_with_exact_message() -> None:
    cb = tripping_breaker()
    await trip(cb)
    with pytest.raises(CallNotPermittedError, match="^Circuit breaker is open$"):
        await cb.call(ok)
    assert cb.info().metrics.total_count == 0  # the window was reset on opening


@pytest.mark.asyncio
async def test_cooldown_half_open_and_recovery_with_freezegun() -> None:
    recorder = Recorder()
    with freeze_time("2024-01-01 00:00:00", real_asyncio=True) as frozen:
        cb = tripping_breaker(
            retry=Cooldown(60.0),
            tripper=(Closed() & MinRequests(2) & FailureRate(0.5))
            | (HalfOpened() & FailureRate(0.5)),
            listeners=[recorder],
        )
        await trip(cb)
        opened_at = cb.info().changed_at
        frozen.tick(30)
        with pytest.raises(CallNotPermittedError):
            await cb.call(ok)
        frozen.tick(31)
        assert await cb.call(ok, "probe") == "probe"
        assert cb.info().state == "closed"
        assert cb.info().changed_at == opened_at + 61
    assert recorder.transitions == [
        ("closed", "open"), ("open", "half_open"), ("half_open", "closed"),
    ]


@pytest.mark.asyncio
async def test_half_open_failure_reopens_and_counts() -> None:
    cb = tripping_breaker(retry=Always(), tripper=MinRequests(2) & FailureRate(0.5)
                          | (HalfOpened() & MinRequests(1)))
    await trip(cb)
    with pytest.raises(ValueError):
        await cb.call(boom)
    info = cb.info()
    assert info.state == "open"
    assert info.reopens == 1


@pytest.mark.asyncio
async def test_untracked_exceptions_propagate_from_every_state() -> None:
    cb = AsyncCircuitBreaker(tracker=TypeOf(KeyError))

    async def type_error() -> None:
        raise TypeError("untracked")

    for command in (cb.reset, cb.metrics_only, cb.disable):
        await command()
        with pytest.raises(TypeError, match="untracked"):
            await cb.call(type_error)
        assert cb.info().metrics.total_count == 0


@pytest.mark.asyncio
async def test_untracked_exception_in_half_open_propagates_and_records_nothing() -> None:
    cb = tripping_breaker(tracker=TypeOf(ValueError), retry=Always(),
                          tripper=MinRequests(2) & FailureRate(0.5) | HalfOpened())
    await trip(cb)

    async def key_error() -> None:
        raise KeyError("untracked")

    with pytest.raises(KeyError):
        await cb.call(key_error)
    info = cb.info()
    assert info.state == "half_open"
    assert info.metrics.total_count == 0


@pytest.mark.asyncio
async def test_refused_calls_raise_call_not_permitted_in_open_states() -> None:
    cb = tripping_breaker()
    await trip(cb)
    with pytest.raises(CallNotPermittedError, match="^Circuit breaker is open$"):
        await cb.call(ok)
    await cb.force_open()
    with pytest.raises(CallNotPermittedError, match="^Circuit breaker is forced open$"):
        await cb.call(ok)


@pytest.mark.asyncio
async def test_disabled_records_nothing_and_metrics_only_never_trips() -> None:
    cb = tripping_breaker()
    await cb.disable()
    await cb.call(ok)
    with pytest.raises(ValueError):
        await cb.call(boom)
    assert cb.info().metrics.total_count == 0
    await cb.metrics_only()
    for _ in range(5):
        with pytest.raises(ValueError):
            await cb.call(boom)
    info = cb.info()
    assert info.state == "metrics_only"
    assert info.metrics.failure_count == 5


@pytest.mark.asyncio
async def test_non_awaitable_result_is_a_type_error_and_records_nothing() -> None:
    cb = AsyncCircuitBreaker()

    def sync_function() -> int:
        return 1

    with pytest.raises(TypeError, match="AsyncCircuitBreaker"):
        await cb.call(sync_function)  # type: ignore[arg-type]
    assert cb.info().metrics.total_count == 0


# ---- periods --------------------------------------------------------------


@pytest.mark.asyncio
async def test_stale_outcome_is_discarded_across_a_full_cycle() -> None:
    """closed -> open -> half_open -> closed while one call is in flight."""
    cb = tripping_breaker(retry=Always())
    release = asyncio.Event()

    async def slow_failure() -> None:
        await release.wait()
        raise ValueError("late")

    in_flight = asyncio.create_task(cb.call(slow_failure))
    await asyncio.sleep(0)
    await trip(cb)
    assert await cb.call(ok, "probe") == "probe"  # half_open -> closed
    assert cb.info().state == "closed"
    before = cb.info()
    release.set()
    with pytest.raises(ValueError, match="late"):
        await in_flight
    after = cb.info()
    assert after.metrics == before.metrics
    assert after.state == "closed"


@pytest.mark.asyncio
async def test_command_during_in_flight_call_takes_effect_and_discards_outcome() -> None:
    cb = AsyncCircuitBreaker()
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "done"

    task = asyncio.create_task(cb.call(slow))
    await asyncio.sleep(0)
    await cb.reset()
    assert cb.info().state == "closed"
    release.set()
    assert await task == "done"
    assert cb.info().metrics.total_count == 0


@pytest.mark.asyncio
async def test_many_failing_tasks_trip_exactly_once() -> None:
    recorder = Recorder()
    cb = AsyncCircuitBreaker(
        window=CountWindow(20), tripper=MinRequests(5) & FailureRate(0.5),
        retry=Never(), listeners=[recorder],
    )
    gate = asyncio.Event()

    async def fail_later() -> None:
        await gate.wait()
        raise ValueError

    tasks = [asyncio.create_task(cb.call(fail_later)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert recorder.transitions == [("closed", "open")]
    assert cb.info().state == "open"
    assert cb.info().metrics.total_count == 0


# ---- half-open slots -------------------------------------------------------


@pytest.mark.asyncio
async def test_half_open_slots_limit_concurrency_and_others_wait() -> None:
    cb = tripping_breaker(retry=Always(), max_half_open_calls=2,
                          tripper=MinRequests(2) & FailureRate(0.5) | HalfOpened())
    await trip(cb)
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def probe() -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return 1

    tasks = [asyncio.create_task(cb.call(probe)) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert running == 2
    gate.set()
    assert await asyncio.gather(*tasks) == [1] * 5
    assert peak == 2


@pytest.mark.asyncio
async def test_cancelled_half_open_call_frees_its_slot_and_records_nothing() -> None:
    cb = tripping_breaker(retry=Always(), max_half_open_calls=1,
                          tripper=MinRequests(2) & FailureRate(0.5) | HalfOpened())
    await trip(cb)
    forever = asyncio.Event()

    async def hang() -> None:
        await forever.wait()

    task = asyncio.create_task(cb.call(hang))
    for _ in range(3):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cb.info().metrics.total_count == 0
    assert await asyncio.wait_for(cb.call(ok, 7), timeout=5) == 7


@pytest.mark.asyncio
async def test_waiting_call_is_handled_by_the_new_state() -> None:
    cb = tripping_breaker(retry=Always(), max_half_open_calls=1,
                          tripper=MinRequests(2) & FailureRate(0.5) | HalfOpened())
    await trip(cb)
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "held"

    holder = asyncio.create_task(cb.call(held))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cb.call(ok, "waiter"))
    await asyncio.sleep(0)
    await cb.force_open()
    gate.set()
    assert await holder == "held"
    with pytest.raises(CallNotPermittedError, match="forced open"):
        await waiter


def test_breaker_survives_one_event_loop_after_another() -> None:
    cb = tripping_breaker(retry=Always(), max_half_open_calls=1,
                          tripper=MinRequests(2) & FailureRate(0.5) | HalfOpened())

    async def contend() -> list[int]:
        await trip(cb)

        async def probe() -> int:
            await asyncio.sleep(0)
            return 1

        return await asyncio.gather(*(cb.call(probe) for _ in range(3)))

    assert asyncio.run(contend()) == [1, 1, 1]
    asyncio.run(cb.reset())
    assert asyncio.run(contend()) == [1, 1, 1]


# ---- listeners ------------------------------------------------------------


@pytest.mark.asyncio
async def test_sync_and_async_listeners_are_awaited_before_the_call_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def sync_listener(signal: Signal, /) -> None:
        seen.append(f"sync {signal.new_state}")

    async def async_listener(signal: Signal, /) -> None:
        await asyncio.sleep(0)
        seen.append(f"async {signal.new_state}")

    class AsyncCallable:
        async def __call__(self, signal: Signal, /) -> None:
            seen.append(f"callable {signal.new_state}")

    def broken(signal: Signal, /) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(signal: Signal, /) -> None:
        raise RuntimeError("async listener bug")

    cb = AsyncCircuitBreaker(listeners=[sync_listener, broken, async_listener,
                                        broken_async, AsyncCallable()])
    with caplog.at_level(logging.ERROR, logger="fluxgate"):
        await cb.force_open()
    assert sorted(seen) == ["async forced_open", "callable forced_open", "sync forced_open"]
    messages = [r.getMessage() for r in caplog.records if r.name == "fluxgate"]
    assert messages == ["Listener function failed", "Listener function failed"]


@pytest.mark.asyncio
async def test_slow_listener_does_not_block_info_or_other_calls() -> None:
    started = asyncio.Event()
    finish = asyncio.Event()

    async def slow_listener(signal: Signal, /) -> None:
        started.set()
        await finish.wait()

    cb = AsyncCircuitBreaker(listeners=[slow_listener])
    command = asyncio.create_task(cb.metrics_only())
    await started.wait()
    assert cb.info().state == "metrics_only"
    assert await cb.call(ok, 3) == 3
    assert not command.done()
    finish.set()
    await command


@pytest.mark.asyncio
async def test_signals_carry_changed_at() -> None:
    recorder = Recorder()
    cb = AsyncCircuitBreaker(listeners=[recorder])
    await cb.disable()
    assert recorder.signals == [Signal("closed", "disabled", cb.info().changed_at)]
    assert dataclasses.asdict(cb.info())["state"] == "disabled"


@pytest.mark.asyncio
async def test_listener_may_call_back_into_the_breaker() -> None:
    recorder = Recorder()
    cb: AsyncCircuitBreaker

    def resetting(signal: Signal, /) -> None:
        cb.info()
        if signal.new_state == "forced_open":
            asyncio.get_running_loop().create_task(cb.reset())

    cb = AsyncCircuitBreaker(listeners=[resetting, recorder])
    await cb.force_open()
    for _ in range(3):
        await asyncio.sleep(0)
    assert recorder.transitions == [("closed", "forced_open"), ("forced_open", "closed")]


def make_protected(cb: AsyncCircuitBreaker) -> Callable[[], Awaitable[int]]:
    @cb
    async def answer() -> int:
        return 42

    return answer


@pytest.mark.asyncio
async def test_protected_function_can_be_made_in_a_helper() -> None:
    assert await make_protected(AsyncCircuitBreaker())() == 42
