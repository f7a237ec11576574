"""The circuit breakers.

``CircuitBreaker`` is implemented in C (the native core): its state machine,
components and protected-function wrapper run without entering Python when
every component is a built-in. ``AsyncCircuitBreaker`` drives the same state
machine from coroutines.
"""

from fluxgate._async import AsyncCircuitBreaker
from fluxgate._fluxgate import CircuitBreaker
from fluxgate._values import CircuitBreakerInfo as CircuitBreakerInfo

__all__ = ["AsyncCircuitBreaker", "CircuitBreaker"]
