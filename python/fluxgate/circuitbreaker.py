"""The circuit breakers.

``CircuitBreaker`` is implemented in C (the native core); its state machine,
components and protected-function wrapper run without entering Python when
every component is a built-in.
"""

from fluxgate import _values
from fluxgate._fluxgate import CircuitBreaker
from fluxgate._values import CircuitBreakerInfo

__all__ = ["CircuitBreaker"]

# Keep the value classes handed to the core before any breaker exists.
del _values
