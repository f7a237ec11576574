"""The listener protocols: what a breaker calls on every state transition."""

from typing import Protocol, runtime_checkable

from fluxgate.signal import Signal as Signal

__all__ = ["AsyncListener", "Listener"]


@runtime_checkable
class Listener(Protocol):
    """Protocol for synchronous circuit breaker listeners.

    Any callable taking one ``Signal`` positionally satisfies it: a plain
    function, a lambda, a bound method or a class implementing ``__call__``.
    """

    def __call__(self, signal: Signal, /) -> None: ...


@runtime_checkable
class AsyncListener(Protocol):
    """Protocol for asynchronous circuit breaker listeners.

    ``__call__`` is a coroutine function; only ``AsyncCircuitBreaker`` awaits it.
    """

    async def __call__(self, signal: Signal, /) -> None: ...
