"""Conformance scenarios: a plain-data description of a breaker and of what
is done to it, and one runner that plays it on whichever fluxgate is
importable, returning a trace of everything a user can observe.

This module is imported both by the test suite (running this package) and by
``reference_worker.py`` (running fluxgate 0.9.4 in its own interpreter), so
it depends on nothing but the standard library, fluxgate's public API and
freezegun, and it runs on every Python the reference supports.

A scenario is a JSON-compatible dict::

    {
        "mode": "sync" | "async",
        "window": ["count", size] | ["time", size] | None,
        "tracker": tracker tree | None,
        "tripper": tripper tree | None,
        "retry": ["never"] | ["always"] | ["cooldown", duration, jitter]
                 | ["backoff", initial, multiplier, max_duration, jitter] | None,
        "permit": ["all"] | ["random", ratio] | ["ramp_up", initial, final, duration] | None,
        "max_half_open_calls": int | None,      (async only)
        "start": str,                           (the frozen wall time at the start)
        "seed": int,                            (random.seed before the first step)
        "snapshots": "every" | "asked",         (info() after every step, or at "info" steps)
        "steps": [step, ...],
    }

``None`` selects the breaker's default component.  Trees are nested lists:
trackers ``["all"]``, ``["type_of", [name, ...]]``, ``["custom", predicate]``,
``["and", a, b]``, ``["or", a, b]``, ``["not", a]``; trippers ``["closed"]``,
``["half_opened"]``, ``["min_requests", n]``, ``["failure_rate", ratio]``,
``["avg_latency", threshold]``, ``["slow_rate", ratio, threshold]``,
``["failure_streak", n]``, ``["and", a, b]``, ``["or", a, b]``.  Any
component, or node of a tree, may be ``["spy", inner]``: ``inner`` wrapped in
a user subclass written in Python that logs each call the breaker makes to it
(arguments and answer, or the record and reset of a window).

Steps: ``["ok", duration, style]`` (a call returning its step number after
``duration`` seconds), ``["raise", exception, message, duration, style]`` (a
call raising after ``duration`` seconds: one of ``RAISED``, whose
``Exception``s the tracker counts or not, and ``Halt``, a ``BaseException``), ``["tick", seconds]``, ``["reset"]``, ``["disable"]``,
``["metrics_only"]``, ``["force_open"]``, ``["info"]``.  ``style`` is how the
call is made: ``"call"``, ``"decorated"``, ``"fallback"``
(``call_with_fallback``) or ``"decorated_fallback"``.

Time is frozen at ``start`` (``START`` if absent) for the whole scenario; a
call lasts its duration because the protected function ticks the frozen
clock (wall and monotonic time move together).

Each breaker has a sync listener; an ``AsyncCircuitBreaker`` also has an
async one.  Each entry of the trace gives the signals each received during
the step (``signals``, ``async_signals``), the spies' log (``calls``) and
``info()`` when asked.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Callable, Dict, List, Union

from freezegun import freeze_time

from fluxgate import AsyncCircuitBreaker, CircuitBreaker
from fluxgate import permits, retries, trackers, trippers, windows

START = "2024-01-01 00:00:00"

Json = Any
Trace = List[Dict[str, Json]]
Breaker = Union[CircuitBreaker, AsyncCircuitBreaker]

# The exceptions protected calls raise, by name (ConnectionError is an
# OSError, KeyError a LookupError: TypeOf and the predicates see that).
EXCEPTIONS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "KeyError": KeyError,
    "TypeError": TypeError,
    "OSError": OSError,
    "ConnectionError": ConnectionError,
    "RuntimeError": RuntimeError,
}


class Halt(BaseException):
    """Not an Exception: passes through every breaker unrecorded, past any
    tracker and fallback (SPEC section 4)."""


# What protected calls raise: the exceptions above and Halt.
RAISED: dict[str, type[BaseException]] = {**EXCEPTIONS, "Halt": Halt}


def _odd_length(exc: BaseException) -> int:
    # An int, not a bool: the breaker must use its truth value.
    return len(str(exc)) % 2


# The functions Custom trackers are built from, by name.
PREDICATES: dict[str, Callable[[BaseException], object]] = {
    "is_lookup": lambda exc: isinstance(exc, LookupError),
    "has_x": lambda exc: "x" in str(exc),
    "os_or_runtime": lambda exc: isinstance(exc, (OSError, RuntimeError)),
    "odd_length": _odd_length,
}

COMMANDS = ("reset", "disable", "metrics_only", "force_open")


def metric_json(metric: Any) -> Json:
    return [
        metric.total_count,
        metric.total_duration,
        metric.failure_count,
        list(metric.slow_counts.items()),  # in the mapping's own order
    ]


class SpyWindow(windows.Window):
    """A user window: logs what the breaker records and resets, and
    delegates to a built-in one."""

    def __init__(self, inner: Any, log: list[Json]) -> None:
        self.inner, self.log = inner, log

    def record(self, record: Any) -> None:
        self.log.append(
            ["record", record.success, record.duration, list(record.slow_at), record.timestamp]
        )
        self.inner.record(record)

    def get_metric(self) -> Any:
        return self.inner.get_metric()

    def reset(self) -> None:
        self.log.append(["reset"])
        self.inner.reset()


class SpyTracker(trackers.Tracker):
    def __init__(self, inner: Any, log: list[Json]) -> None:
        self.inner, self.log = inner, log

    def __call__(self, exception: Exception) -> bool:
        verdict = self.inner(exception)
        self.log.append(["tracker", exception_name(exception), str(exception), bool(verdict)])
        return verdict  # type: ignore[no-any-return]


class SpyTripper(trippers.Tripper):
    def __init__(self, inner: Any, log: list[Json]) -> None:
        self.inner, self.log = inner, log

    def __call__(self, ctx: Any) -> bool:
        verdict = self.inner(ctx)
        self.log.append(
            ["tripper", ctx.state, ctx.consecutive_failures, metric_json(ctx.metric), bool(verdict)]
        )
        return verdict  # type: ignore[no-any-return]

    def __iter__(self) -> Any:  # the leaves, SlowRate thresholds included
        return iter(self.inner)


class SpyRetry(retries.Retry):
    def __init__(self, inner: Any, log: list[Json]) -> None:
        self.inner, self.log = inner, log

    def __call__(self, changed_at: float, reopens: int) -> bool:
        verdict = self.inner(changed_at, reopens)
        self.log.append(["retry", changed_at, reopens, bool(verdict)])
        return verdict  # type: ignore[no-any-return]


class SpyPermit(permits.Permit):
    def __init__(self, inner: Any, log: list[Json]) -> None:
        self.inner, self.log = inner, log

    def __call__(self, changed_at: float) -> bool:
        verdict = self.inner(changed_at)
        self.log.append(["permit", changed_at, bool(verdict)])
        return verdict  # type: ignore[no-any-return]


class Builder:
    """Components from their descriptions; ``["spy", inner]`` wraps
    ``inner`` in a user subclass (written in Python, as a user would) that
    logs each call with its arguments and answer into ``log``."""

    def __init__(self, log: list[Json]) -> None:
        self.log = log

    def window(self, node: Json) -> Any:
        if node is None:
            return None
        if node[0] == "spy":
            return SpyWindow(self.window(node[1]), self.log)
        kind, size = node
        return windows.CountWindow(size) if kind == "count" else windows.TimeWindow(size)

    def tracker(self, node: Json) -> Any:
        if node is None:
            return None
        kind = node[0]
        if kind == "all":
            return trackers.All()
        if kind == "type_of":
            return trackers.TypeOf(*(EXCEPTIONS[name] for name in node[1]))
        if kind == "custom":
            return trackers.Custom(PREDICATES[node[1]])
        if kind == "spy":
            return SpyTracker(self.tracker(node[1]), self.log)
        if kind == "not":
            return ~self.tracker(node[1])
        left, right = self.tracker(node[1]), self.tracker(node[2])
        return left & right if kind == "and" else left | right

    def tripper(self, node: Json) -> Any:
        if node is None:
            return None
        kind = node[0]
        if kind == "closed":
            return trippers.Closed()
        if kind == "half_opened":
            return trippers.HalfOpened()
        if kind == "min_requests":
            return trippers.MinRequests(node[1])
        if kind == "failure_rate":
            return trippers.FailureRate(node[1])
        if kind == "avg_latency":
            return trippers.AvgLatency(node[1])
        if kind == "slow_rate":
            return trippers.SlowRate(node[1], threshold=node[2])
        if kind == "failure_streak":
            return trippers.FailureStreak(node[1])
        if kind == "spy":
            return SpyTripper(self.tripper(node[1]), self.log)
        left, right = self.tripper(node[1]), self.tripper(node[2])
        return left & right if kind == "and" else left | right

    def retry(self, node: Json) -> Any:
        if node is None:
            return None
        kind = node[0]
        if kind == "never":
            return retries.Never()
        if kind == "always":
            return retries.Always()
        if kind == "cooldown":
            return retries.Cooldown(node[1], jitter_ratio=node[2])
        if kind == "spy":
            return SpyRetry(self.retry(node[1]), self.log)
        return retries.Backoff(node[1], node[2], node[3], node[4])

    def permit(self, node: Json) -> Any:
        if node is None:
            return None
        kind = node[0]
        if kind == "all":
            return permits.All()
        if kind == "random":
            return permits.Random(node[1])
        if kind == "spy":
            return SpyPermit(self.permit(node[1]), self.log)
        return permits.RampUp(node[1], node[2], node[3])

    def breaker(self, spec: Json, listeners: list[Callable[[Any], Any]]) -> Breaker:
        components: dict[str, Any] = {
            "window": self.window(spec["window"]),
            "tracker": self.tracker(spec["tracker"]),
            "tripper": self.tripper(spec["tripper"]),
            "retry": self.retry(spec["retry"]),
            "permit": self.permit(spec["permit"]),
            "listeners": listeners,
        }
        if spec["mode"] == "sync":
            return CircuitBreaker(**components)
        if spec.get("max_half_open_calls") is not None:
            components["max_half_open_calls"] = spec["max_half_open_calls"]
        return AsyncCircuitBreaker(**components)


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls is Halt:  # this module's name differs between the two sides
        return "Halt"
    return f"{cls.__module__}.{cls.__qualname__}"


def fallback(exc: Exception) -> Json:
    return ["fallback", exception_name(exc), str(exc)]


def snapshot(cb: Breaker) -> Json:
    info = cb.info()
    return {
        "state": info.state,
        "changed_at": info.changed_at,
        "reopens": info.reopens,
        "metric": metric_json(info.metrics),
    }


class _Run:
    """One scenario being played; the sync and async drivers share it."""

    def __init__(self, spec: Json, frozen: Any) -> None:
        self.spec = spec
        self.frozen = frozen
        self.signals: list[Json] = []
        self.async_signals: list[Json] = []
        self.trace: Trace = []
        listeners: list[Callable[[Any], Any]] = [self.listen]
        if spec["mode"] == "async":
            listeners.append(self.listen_async)
        self.calls: list[Json] = []  # what the spies saw
        self.cb = Builder(self.calls).breaker(spec, listeners)

    def listen(self, signal: Any) -> None:
        self.signals.append([signal.old_state, signal.new_state, signal.timestamp])

    async def listen_async(self, signal: Any) -> None:
        await asyncio.sleep(0)
        self.async_signals.append([signal.old_state, signal.new_state, signal.timestamp])

    def protected(self, index: int, step: Json) -> Callable[[], Any]:
        frozen = self.frozen
        if step[0] == "ok":
            duration = step[1]

            def succeed() -> int:
                frozen.tick(duration)
                return index

            return succeed
        cls, message, duration = RAISED[step[1]], step[2], step[3]

        def fail() -> None:
            frozen.tick(duration)
            raise cls(message)

        return fail

    def protected_async(self, index: int, step: Json) -> Callable[[], Any]:
        function = self.protected(index, step)

        async def run() -> Any:
            await asyncio.sleep(0)  # suspend once, as real work would
            return function()

        return run

    def record(self, index: int, step: Json, outcome: Json) -> None:
        entry: dict[str, Json] = {"step": index, "outcome": outcome}
        entry["signals"], self.signals = self.signals, []
        if self.spec["mode"] == "async":
            entry["async_signals"], self.async_signals = self.async_signals, []
        if self.calls:
            entry["calls"] = self.calls[:]
            del self.calls[:]
        if self.spec["snapshots"] == "every" or step[0] == "info":
            entry["info"] = snapshot(self.cb)
        self.trace.append(entry)

    def finish(self) -> Trace:
        self.record(len(self.trace), ["info"], None)
        # Through JSON, so that both sides compare in the same plain types.
        result: Trace = json.loads(json.dumps(self.trace))
        return result

    def play_sync(self) -> Trace:
        cb = self.cb
        assert isinstance(cb, CircuitBreaker)
        for index, step in enumerate(self.spec["steps"]):
            kind = step[0]
            outcome: Json = None
            try:
                if kind in ("ok", "raise"):
                    function, style = self.protected(index, step), step[-1]
                    if style == "call":
                        value = cb.call(function)
                    elif style == "decorated":
                        value = cb(function)()
                    elif style == "fallback":
                        value = cb.call_with_fallback(function, fallback)
                    else:
                        value = cb(fallback=fallback)(function)()
                    outcome = ["returned", value]
                elif kind == "tick":
                    self.frozen.tick(step[1])
                elif kind in COMMANDS:
                    getattr(cb, kind)()
            except (Exception, Halt) as exc:
                outcome = ["raised", exception_name(exc), str(exc)]
            self.record(index, step, outcome)
        return self.finish()

    async def play_async(self) -> Trace:
        cb = self.cb
        assert isinstance(cb, AsyncCircuitBreaker)
        for index, step in enumerate(self.spec["steps"]):
            kind = step[0]
            outcome: Json = None
            try:
                if kind in ("ok", "raise"):
                    function, style = self.protected_async(index, step), step[-1]
                    if style == "call":
                        value = await cb.call(function)
                    elif style == "decorated":
                        value = await cb(function)()
                    elif style == "fallback":
                        value = await cb.call_with_fallback(function, fallback)
                    else:
                        value = await cb(fallback=fallback)(function)()
                    outcome = ["returned", value]
                elif kind == "tick":
                    self.frozen.tick(step[1])
                elif kind in COMMANDS:
                    await getattr(cb, kind)()
            except (Exception, Halt) as exc:
                outcome = ["raised", exception_name(exc), str(exc)]
            self.record(index, step, outcome)
        return self.finish()


def run(spec: Json) -> Trace:
    """Play one scenario on the fluxgate this interpreter imports."""
    with freeze_time(spec.get("start", START), real_asyncio=True) as frozen:
        state = random.getstate()
        try:
            if spec["mode"] == "sync":
                play = _Run(spec, frozen)
                random.seed(spec["seed"])
                return play.play_sync()

            async def main() -> Trace:
                play = _Run(spec, frozen)
                random.seed(spec["seed"])
                return await play.play_async()

            return asyncio.run(main())
        finally:
            random.setstate(state)
