"""AsyncCircuitBreaker: the coroutine surface over the native state machine.

Admission, timing, recording, evaluation and transitions are the C core's
(``_AsyncCore``); this module only awaits. A CLOSED call uses no asyncio
primitive. HALF_OPEN calls share ``max_half_open_calls`` slots, which wait on
futures of whichever loop is running, so a breaker can serve one event loop
after another, or several at once from several threads (a slot freed in one
loop wakes a waiter of another thread-safely). Listeners are notified by the
call or command that caused a transition, before it returns: sync ones
inline, async ones gathered, one delivery at a time and in order, shielded
from the cancellation of that call or command. That holds when it raises
too: a user window's reset() may fail after the transition is made, and the
transition is still signalled first.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import inspect
import os
import sys
import threading
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


class _Waiter:
    """A call waiting for a HALF_OPEN slot, on its own event loop."""

    __slots__ = ("future", "handed")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.handed = False  # a slot is this waiter's, whether it woke yet or not


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _HalfOpenSlots:
    """At most ``limit`` holders; others wait in arrival order.

    Thread-safe: the breaker may serve several event loops at once, one per
    thread (DESIGN.md D8). A slot freed in one loop wakes a waiter of another
    through that loop's ``call_soon_threadsafe``; waiters of a closed loop are
    passed over.
    """

    __slots__ = ("_free", "_waiters", "_lock")

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._lock = threading.Lock()

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            waiter = _Waiter(loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                handed = waiter.handed
                if not handed and waiter in self._waiters:
                    self._waiters.remove(waiter)
            if handed:
                self._release()  # the slot was handed over: pass it on
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        current = _running_loop()
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                loop = waiter.future.get_loop()
                if loop.is_closed():
                    continue
                if loop is current:
                    if waiter.future.done():
                        continue  # cancelled: it will not take the slot
                    waiter.future.set_result(None)
                else:
                    try:
                        loop.call_soon_threadsafe(_wake, waiter.future)
                    except RuntimeError:  # closed meanwhile
                        continue
                waiter.handed = True
                return
            self._free += 1


# The host-wide slots a shared segment holds at most.
_MAX_SHARED_SLOTS = 1_000_000


class _SharedHalfOpenSlots:
    """The HALF_OPEN slots of a breaker shared beyond this process.

    A call first takes one of this process's slots (a release here wakes a
    waiter here at once), then one of the shared ones with ``take()``,
    polling with a backoff capped at 50 ms while none is free: a host-wide
    slot of a ``HostMemory`` segment, or a probe this member leased from a
    ``RedisFleet``'s budget (its sync thread leases them in the background,
    so no probe waits on Redis itself).
    """

    __slots__ = ("_take", "_release", "_local")

    def __init__(
        self, take: Callable[[], bool], release: Callable[[], object], local: _HalfOpenSlots
    ) -> None:
        self._take = take
        self._release = release
        self._local = local

    async def __aenter__(self) -> None:
        await self._local.__aenter__()
        try:
            delay = 0.001
            while not self._take():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        except BaseException:
            self._local._release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()
        self._local._release()


# Which breakers' deliveries the current task is part of (a listener, or a
# task it started), each with the depth of the signal being delivered.
_delivering: contextvars.ContextVar[dict[_Delivery, int]] = contextvars.ContextVar(
    "fluxgate_delivering"
)


_Waiting = list[tuple[Callable[..., Any], Awaitable[Any]]]


class _Delivery:
    """Delivers one breaker's signals to its listeners: each exactly once, in
    the order of the transitions, by one deliverer at a time whichever loop
    or thread it runs on. The deliverer calls the sync listeners inline;
    from the first async listener on, a task carries on, shielded from the
    cancellation of the call or command that started it (one that ends early
    anyway, its loop shutting down, leaves the rest to the next caller).
    Every caller waits until the signals queued before it are delivered,
    except a listener's own command, which the delivery under way picks up.
    A delivery whose loop was closed without ending it (its task destroyed
    pending) is taken over by the next caller; each delivery has its own
    generation, so that such a task, finalised later, ends nothing.

    A fleet breaker's transitions may also be made by the fleet's sync
    thread (its tripper firing on the fleet metric): ``deliver_soon()``,
    called there, starts a delivery on the event loop of the breaker's last
    call or command (``remember()``), so that its listeners hear of it
    without waiting for the next one. With no such loop, or a closed one,
    the next call or command delivers it.
    """

    __slots__ = (
        "_core", "_listeners", "_lock", "_backlog", "_running", "_generation",
        "_loop", "_tasks", "_waiters", "_home", "_home_pid", "__weakref__",
    )  # fmt: skip

    def __init__(self, core: Any, listeners: tuple[Callable[..., Any], ...]) -> None:
        self._core = core
        self._listeners = listeners
        self._lock = threading.Lock()
        self._backlog: collections.deque[tuple[Any, int]] = collections.deque()
        self._running = False
        self._generation = 0  # of the delivery running, or the last one
        self._loop: asyncio.AbstractEventLoop | None = None  # where it runs
        # The delivering tasks, held here: the event loop keeps only a weak
        # reference, and their callers may have been cancelled.
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        # The loop of the last call or command, in the process it ran in.
        self._home: asyncio.AbstractEventLoop | None = None
        self._home_pid = 0

    def remember(self) -> None:
        """Note the running loop as the one to deliver on from elsewhere."""
        loop = asyncio.get_running_loop()
        if loop is not self._home:
            self._home = loop
            self._home_pid = os.getpid()

    def deliver_soon(self) -> None:
        """Thread-safe: deliver the waiting signals on the loop of the last
        call or command, if it is open (else the next caller will)."""
        loop = self._home
        if (
            not self._listeners
            or loop is None
            or loop.is_closed()
            or self._home_pid != os.getpid()
        ):
            return
        try:
            loop.call_soon_threadsafe(self._deliver_here)
        except RuntimeError:  # closed meanwhile
            pass

    def _deliver_here(self) -> None:
        # A callback of the loop: a task of it delivers, held as ours are.
        task = asyncio.get_running_loop().create_task(self.notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def depth(self) -> int | None:
        """The depth of the signal whose delivery the caller is part of."""
        return _delivering.get({}).get(self)

    def _collect(self, depth: int) -> None:
        # Under self._lock: the core's queue moves here in order.
        for signal in self._core.take_signals():
            self._backlog.append((signal, depth))

    async def notify(self) -> None:
        if not self._listeners:
            return
        depth = self.depth()
        if depth is not None:
            with self._lock:
                self._collect(depth + 1)
                if self._running:
                    return  # the delivery this listener is part of goes on
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                self._collect(0)
                start = False
                abandoned = self._loop is not None and self._loop.is_closed()
                if self._running and not abandoned:
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._waiters.append(waiter)
                elif self._backlog:
                    self._running = start = True
                    self._generation += 1
                    generation = self._generation
                    self._loop = loop
                else:
                    self._running = False
                    return
            if start:
                try:
                    rest = self._deliver_sync(generation)
                except BaseException:
                    self._finish(generation)
                    raise
                if rest is None:
                    return
                # Outside the lock: an eager task factory runs it at once.
                waiter = loop.create_task(self._deliver(generation, *rest))
                self._tasks.add(waiter)
                waiter.add_done_callback(self._tasks.discard)
            await asyncio.shield(waiter)

    def _deliver_sync(self, generation: int) -> tuple[_Waiting, int] | None:
        """Deliver signals while their listeners return no awaitable. The
        awaitables of the first signal that has some (and its depth), or
        None when every signal is delivered and the delivery is over (or
        was taken over)."""
        while True:
            with self._lock:
                if self._generation != generation:
                    return None
                self._collect(0)
                if not self._backlog:
                    self._running = False
                    waiters, self._waiters = self._waiters, []
                    break
                signal, depth = self._backlog.popleft()
            token = _delivering.set({**_delivering.get({}), self: depth})
            try:
                waiting = self._call_listeners(signal)
            finally:
                _delivering.reset(token)
            if waiting:
                return waiting, depth
        _wake_all(waiters)
        return None

    def _call_listeners(self, signal: Any) -> _Waiting:
        waiting: _Waiting = []
        for listener in self._listeners:
            try:
                result = listener(signal)
            except Exception as error:
                report_listener_error(listener, error)
                continue
            if inspect.isawaitable(result):
                waiting.append((listener, result))
        return waiting

    def _finish(self, generation: int) -> None:
        """End a delivery cut short: the next caller carries on."""
        with self._lock:
            if self._generation != generation or not self._running:
                return
            self._running = False
            waiters, self._waiters = self._waiters, []
        _wake_all(waiters)

    async def _deliver(self, generation: int, waiting: _Waiting, depth: int) -> None:
        rest: tuple[_Waiting, int] | None = (waiting, depth)
        try:
            while rest is not None:
                await self._gather(*rest)
                rest = self._deliver_sync(generation)
        except BaseException:
            self._finish(generation)
            raise

    async def _gather(self, waiting: _Waiting, depth: int) -> None:
        # Tasks the gathering starts copy this context: a listener's command
        # knows it is part of this delivery, and how deep. (The delivering
        # task's own context, so it is not reset: a task finalised by the
        # garbage collector would reset it from another.)
        _delivering.set({**_delivering.get({}), self: depth})
        outcomes = await asyncio.gather(
            *(awaitable for _, awaitable in waiting), return_exceptions=True
        )
        for (listener, _), outcome in zip(waiting, outcomes):
            if isinstance(outcome, Exception):
                report_listener_error(listener, outcome)
            elif isinstance(outcome, asyncio.CancelledError):
                pass  # that listener was cancelled; the others were heard
            elif isinstance(outcome, BaseException):
                raise outcome


def _wake_all(waiters: list[asyncio.Future[None]]) -> None:
    current = _running_loop()
    for waiter in waiters:
        loop = waiter.get_loop()
        if loop is current:
            _wake(waiter)
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # closed meanwhile
                pass


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


class _Admitted:
    """The core as a call that holds its ticket already (a HALF_OPEN slot)
    sees it: begin() hands over that ticket."""

    __slots__ = ("_ticket", "fail", "succeed")

    def __init__(self, core: Any, ticket: object) -> None:
        self._ticket = ticket
        self.fail = core.fail
        self.succeed = core.succeed

    def begin(self) -> object:
        return self._ticket


def _guarded(
    breaker: AsyncCircuitBreaker,
    func: Callable[..., Awaitable[Any]],
    core: Any = None,
) -> Callable[..., Awaitable[Any]]:
    """The one body of a protected call, as a coroutine function of the
    call's arguments: admission, the call, and its outcome applied, with the
    listeners notified of any transition. `core` is the breaker's, or an
    _Admitted one for a call that holds its ticket already. A decorated
    function is this function itself, so that a decorated call awaits no
    coroutine but the one it creates."""
    if core is None:
        core = breaker._core
    notify = breaker._notify
    protected_half_open = breaker._protected_half_open
    remember = breaker._remember  # a fleet breaker's only

    async def protected(*args: Any, **kwargs: Any) -> Any:
        if remember is not None:
            remember()
        try:
            ticket = core.begin()
        except BaseException:
            await notify()  # a transition made before the error
            raise
        if ticket is None:
            return await protected_half_open(func, args, kwargs)
        awaitable = _NOT_CALLED
        try:
            # Without keywords, no dict is built for the call.
            awaitable = func(*args, **kwargs) if kwargs else func(*args)
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

    return protected


class AsyncCircuitBreaker:
    """Circuit breaker for asyncio code.

    Defaults (for ``None``): ``CountWindow(100)``, ``All()``,
    ``MinRequests(100) & FailureRate(0.5)``, ``Cooldown(60.0)``,
    ``RampUp(0.1, 1.0, 60.0)``; at most ``max_half_open_calls`` calls run at
    once in HALF_OPEN.
    """

    __module__ = "fluxgate.circuitbreaker"  # its public home (DESIGN.md D1)
    __slots__ = ("_core", "_listeners", "_slots", "_delivery", "_remember", "__weakref__")

    def __init__(
        self,
        window: Any = None,
        tracker: Any = None,
        tripper: Any = None,
        retry: Any = None,
        permit: Any = None,
        max_half_open_calls: int = 10,
        listeners: Iterable[Callable[..., Any]] = (),
        *,
        shared: Any = None,
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
        if shared is not None and max_half_open_calls > _MAX_SHARED_SLOTS:
            raise ValueError(
                f"max_half_open_calls must be at most {_MAX_SHARED_SLOTS} with shared="
            )
        self._core = _AsyncCore(
            window,
            tracker,
            tripper,
            retry,
            permit,
            listeners,
            shared,
            max_half_open_calls if shared is not None else 0,
        )
        self._listeners: tuple[Callable[..., Any], ...] = self._core.listeners
        self._delivery = _Delivery(self._core, self._listeners)
        self._remember: Callable[[], None] | None = None
        self._slots: _HalfOpenSlots | _SharedHalfOpenSlots = (
            _HalfOpenSlots(max_half_open_calls)
        )
        if self._core.shared:
            self._slots = _SharedHalfOpenSlots(
                self._core.take_host_slot, self._core.release_host_slot, self._slots
            )
        elif hasattr(shared, "_fluxgate_probe_lease"):
            lease = shared._fluxgate_probe_lease(self._core, max_half_open_calls)
            self._slots = _SharedHalfOpenSlots(lease.take, lease.release, self._slots)
            # The fleet's sync thread may trip it: its listeners hear of that
            # on the loop of its last call or command, at once.
            self._remember = self._delivery.remember
            shared._fluxgate_signals(self._core, self._delivery.deliver_soon)
            if _running_loop() is not None:  # built in a coroutine
                self._remember()

    def __repr__(self) -> str:
        cls = type(self)
        state = self._core.info().state
        return f"<{cls.__module__}.{cls.__qualname__} state={state!r} at {id(self):#x}>"

    # ---- calling ---------------------------------------------------------

    async def call(
        self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``func(*args, **kwargs)`` under the breaker's protection."""
        result: R = await _guarded(self, func)(*args, **kwargs)
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
        protected = _guarded(self, func)
        if fallback is not None:
            call = protected

            async def protected(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await (call(*args, **kwargs) if kwargs else call(*args))
                except Exception as error:
                    return fallback(error)

        return functools.wraps(func)(protected)

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
                    return await _guarded(self, func, _Admitted(core, ticket))(*args, **kwargs)
            # The state changed while this call waited: the slot is given back
            # and the call is handled by the current state.
            try:
                ticket = core.begin()
            except BaseException:
                await self._notify()
                raise
            if ticket is not None:
                return await _guarded(self, func, _Admitted(core, ticket))(*args, **kwargs)
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
        depth = self._delivery.depth()
        if depth is not None and depth + 1 >= sys.getrecursionlimit():
            # A listener commanding on every signal it hears: end the chain
            # as the recursion it is (SPEC.md section 12).
            raise RecursionError(
                "maximum recursion depth exceeded in a circuit breaker listener"
            )
        if self._remember is not None:
            self._remember()
        try:
            pending = self._core.command(state)
        except BaseException:
            await self._notify()
            raise
        if pending:
            await self._notify()

    async def _notify(self) -> None:
        await self._delivery.notify()
