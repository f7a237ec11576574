"""The circuit breakers.

``CircuitBreaker`` is implemented in C (the native core): its state machine,
components and protected-function wrapper run without entering Python when
every component is a built-in. ``AsyncCircuitBreaker`` drives the same state
machine from coroutines.
"""

from fluxgate._async import AsyncCircuitBreaker
from fluxgate._fluxgate import CircuitBreaker
from fluxgate._values import CircuitBreakerInfo as CircuitBreakerInfo

# The names fluxgate 0.9.4's module imported, which programs import from here.
from fluxgate.errors import CallNotPermittedError as CallNotPermittedError
from fluxgate.listeners.base import AsyncListener as AsyncListener
from fluxgate.listeners.base import Listener as Listener
from fluxgate.metric import Metric as Metric
from fluxgate.metric import Record as Record
from fluxgate.permits import Permit as Permit
from fluxgate.permits import RampUp as RampUp
from fluxgate.retries import Cooldown as Cooldown
from fluxgate.retries import Retry as Retry
from fluxgate.signal import Signal as Signal
from fluxgate.state import State as State
from fluxgate.trackers import All as All
from fluxgate.trackers import Tracker as Tracker
from fluxgate.trippers import CallContext as CallContext
from fluxgate.trippers import FailureRate as FailureRate
from fluxgate.trippers import MinRequests as MinRequests
from fluxgate.trippers import SlowRate as SlowRate
from fluxgate.trippers import Tripper as Tripper
from fluxgate.windows import CountWindow as CountWindow
from fluxgate.windows import Window as Window

__all__ = ["AsyncCircuitBreaker", "CircuitBreaker"]
