"""AsyncCircuitBreaker: the coroutine surface over the native state machine.

Admission, timing, recording, evaluation and transitions are the C core's
(``_AsyncCore``); this module only awaits. A CLOSED call uses no asyncio
primitive. HALF_OPEN calls share ``max_half_open_calls`` slots, which wait on
futures of whichever loop is running, so a breaker can serve one event loop
after another. Listeners are notified by the call or command that caused a
transition, before it returns: sync ones inline, async ones gathered. That
holds when it raises too: a user window's reset() may fail after the
transition is made, and the transition is still signalled first.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar, overload

from fluxgate import _values
from fluxgate._fluxgate import _AsyncCore
from fluxgate._reporting import report_listener_error
from fluxgate._values import CircuitBreakerInfo
from fluxgate.state import State

__all__ = ["AsyncCircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")

# What `awaitable` holds until the protected function has returned.
_NOT_CALLED: Any = object()
del _values  # imported for its side effect: the core knows the value classes


class _HalfOpenSlots:
    """At most ``limit`` holders; others wait in arrival order."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __aenter__(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over: pass it on
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(None)
                return
        self._free += 1


def _refuse_non_awaitable(error: Exception, result: object, func: object) -> None:
    """DESIGN.md D9: a function that returned no awaitable is misuse, not a
    failure of the call: raise a TypeError that records nothing."""
    if type(error) is TypeError and result is not _NOT_CALLED and not (
        inspect.isawaitable(result)
    ):
        raise TypeError(
            f"the protected function {func!r} returned {type(result).__name__!r}, "
            "not an awaitable; AsyncCircuitBreaker protects async functions "
            "(use CircuitBreaker for synchronous ones)"
        ) from None


class AsyncCircuitBreaker:
    """Circuit breaker for asyncio code.

    Defaults (for ``None``): ``CountWindow(100)``, ``All()``,
    ``MinRequests(100) & FailureRate(0.5)``, ``Cooldown(60.0)``,
    ``RampUp(0.1, 1.0, 60.0)``; at most ``max_half_open_calls`` calls run at
    once in HALF_OPEN.
    """

    __module__ = "fluxgate.circuitbreaker"  # its public home (DESIGN.md D1)
    __slots__ = ("_core", "_listeners", "_slots", "__weakref__")

    def __init__(
        self,
        window: Any = None,
        tracker: Any = None,
        tripper: Any = None,
        retry: Any = None,
        permit: Any = None,
        max_half_open_calls: int = 10,
        listeners: Iterable[Callable[..., Any]] = (),
    ) -> None:
        if hasattr(self, "_core"):
            # As for the native built-ins: a running breaker never changes under it.
            raise TypeError(
                f"{type(self).__name__} object is already initialised: "
                "__init__() may not be called again"
            )
        if isinstance(max_half_open_calls, bool) or not isinstance(
            max_half_open_calls, int
        ):
            raise TypeError(
                "max_half_open_calls must be an integer, not "
                f"{type(max_half_open_calls).__name__}"
            )
        if max_half_open_calls < 1:
            raise ValueError("max_half_open_calls must be at least 1")
        self._core = _AsyncCore(window, tracker, tripper, retry, permit, listeners)
        self._listeners: tuple[Callable[..., Any], ...] = self._core.listeners
        self._slots = _HalfOpenSlots(max_half_open_calls)

    def __repr__(self) -> str:
        cls = type(self)
        state = self._core.info().state
        return f"<{cls.__module__}.{cls.__qualname__} state={state!r} at {id(self):#x}>"

    # ---- calling ---------------------------------------------------------

    async def call(
        self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``func(*args, **kwargs)`` under the breaker's protection."""
        try:
            ticket = self._core.begin()
        except BaseException:
            await self._notify()  # a transition made before the error
            raise
        if ticket is None:
            result: R = await self._protected_half_open(func, args, kwargs)
        else:
            result = await self._run(ticket, func, args, kwargs)
        return result

    async def call_with_fallback(
        self,
        func: Callable[P, Awaitable[R]],
        fallback: Callable[[Exception], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """As ``call``; any Exception, a refused call included, goes to
        ``fallback``, whose return value is returned instead."""
        try:
            result: R = await self.call(func, *args, **kwargs)
        except Exception as error:
            return fallback(error)
        return result

    @overload
    def __call__(
        self,
        func: Callable[P, Awaitable[R]],
        *,
        fallback: Callable[[Exception], R] | None = None,
    ) -> Callable[P, Awaitable[R]]: ...

    @overload
    def __call__(
        self, func: None = None, *, fallback: Callable[[Exception], Any] | None = None
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...

    def __call__(
        self,
        func: Callable[..., Awaitable[Any]] | None = None,
        *,
        fallback: Callable[[Exception], Any] | None = None,
    ) -> Any:
        """``@cb``, ``@cb()``, ``@cb(fallback=f)`` or ``cb(func, fallback=f)``."""
        if fallback is not None and not callable(fallback):
            raise TypeError(
                f"fallback must be callable, not {type(fallback).__name__}"
            )
        if func is None:
            return functools.partial(self.__call__, fallback=fallback)
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        return self._decorate(func, fallback)

    def _decorate(
        self,
        func: Callable[..., Awaitable[Any]],
        fallback: Callable[[Exception], Any] | None,
    ) -> Callable[..., Awaitable[Any]]:
        core = self._core
        notify = self._notify
        protected_half_open = self._protected_half_open

        # The hot path: admission and the call in this one frame, which is
        # _run's body again so that a decorated call awaits no extra coroutine.
        async def protected(*args: Any, **kwargs: Any) -> Any:
            try:
                ticket = core.begin()
            except BaseException:
                await notify()  # a transition made before the error
                raise
            if ticket is None:
                return await protected_half_open(func, args, kwargs)
            awaitable = _NOT_CALLED
            try:
                awaitable = func(*args, **kwargs)
                result = await awaitable
            except Exception as error:
                _refuse_non_awaitable(error, awaitable, func)
                try:
                    pending = core.fail(ticket, error)
                except BaseException:
                    await notify()
                    raise
                if pending:
                    await notify()
                raise
            try:
                pending = core.succeed(ticket)
            except BaseException:
                await notify()
                raise
            if pending:
                await notify()
            return result

        if fallback is not None:
            call = protected

            async def protected(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await call(*args, **kwargs)
                except Exception as error:
                    return fallback(error)

        return functools.wraps(func)(protected)

    async def _run(
        self,
        ticket: object,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run an admitted call and apply its outcome."""
        core = self._core
        awaitable = _NOT_CALLED
        try:
            awaitable = func(*args, **kwargs)
            result = await awaitable
        except Exception as error:
            _refuse_non_awaitable(error, awaitable, func)
            try:
                pending = core.fail(ticket, error)
            except BaseException:
                await self._notify()
                raise
            if pending:
                await self._notify()
            raise
        try:
            pending = core.succeed(ticket)
        except BaseException:
            await self._notify()
            raise
        if pending:
            await self._notify()
        return result

    async def _protected_half_open(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # This call may have just moved OPEN to HALF_OPEN: notify first.
        await self._notify()
        core = self._core
        while True:
            async with self._slots:
                ticket = core.begin_holding_slot()
                if ticket is not None:
                    return await self._run(ticket, func, args, kwargs)
            # The state changed while this call waited: the slot is given back
            # and the call is handled by the current state.
            try:
                ticket = core.begin()
            except BaseException:
                await self._notify()
                raise
            if ticket is not None:
                return await self._run(ticket, func, args, kwargs)
            await self._notify()

    # ---- commands and inspection ------------------------------------------

    def info(self) -> CircuitBreakerInfo:
        """The breaker's state, when it last changed, reopens and metrics."""
        info: CircuitBreakerInfo = self._core.info()
        return info

    async def reset(self) -> None:
        """Move to CLOSED and clear the metrics."""
        await self._command("closed")

    async def disable(self) -> None:
        """Move to DISABLED: calls run untracked."""
        await self._command("disabled")

    async def metrics_only(self) -> None:
        """Move to METRICS_ONLY: calls are recorded but never trip the breaker."""
        await self._command("metrics_only")

    async def force_open(self) -> None:
        """Move to FORCED_OPEN: every call is refused."""
        await self._command("forced_open")

    async def _command(self, state: State) -> None:
        try:
            pending = self._core.command(state)
        except BaseException:
            await self._notify()
            raise
        if pending:
            await self._notify()

    async def _notify(self) -> None:
        for signal in self._core.take_signals():
            waiting: list[tuple[Callable[..., Any], Awaitable[Any]]] = []
            for listener in self._listeners:
                try:
                    result = listener(signal)
                except Exception as error:
                    report_listener_error(listener, error)
                    continue
                if inspect.isawaitable(result):
                    waiting.append((listener, result))
            if not waiting:
                continue
            outcomes = await asyncio.gather(
                *(awaitable for _, awaitable in waiting), return_exceptions=True
            )
            for (listener, _), outcome in zip(waiting, outcomes):
                if isinstance(outcome, Exception):
                    report_listener_error(listener, outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
