"""fluxgate: a composable circuit breaker for Python, with a native core."""

from fluxgate._version import __version__ as __version__
from fluxgate.circuitbreaker import AsyncCircuitBreaker, CircuitBreaker
from fluxgate.errors import CallNotPermittedError
from fluxgate.registry import BreakerRegistry as BreakerRegistry
from fluxgate.state import State

__all__ = ["AsyncCircuitBreaker", "CallNotPermittedError", "CircuitBreaker", "State"]
