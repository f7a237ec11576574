"""fluxgate: a composable circuit breaker for Python, with a native core."""

from fluxgate._version import __version__ as __version__
from fluxgate.circuitbreaker import AsyncCircuitBreaker, CircuitBreaker
from fluxgate.errors import CallNotPermittedError
from fluxgate.registry import BreakerRegistry as BreakerRegistry
from fluxgate.state import State

# The submodules are attributes of the package after `import fluxgate`, as in
# fluxgate 0.9.4 (none of them imports an optional dependency).
from fluxgate import (  # noqa: E402
    circuitbreaker as circuitbreaker,
    errors as errors,
    listeners as listeners,
    metric as metric,
    permits as permits,
    retries as retries,
    signal as signal,
    state as state,
    trackers as trackers,
    trippers as trippers,
    windows as windows,
)
import os as _os  # noqa: E402

from fluxgate import _fluxgate  # noqa: E402
from fluxgate._signatures import install as _install_signatures  # noqa: E402

_install_signatures()
del _install_signatures

# A child forked while threads used a breaker frees the breaker locks that
# went to threads it does not have (free-threaded builds; see fork.h).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_fluxgate._release_after_fork)
del _os

__all__ = ["AsyncCircuitBreaker", "CallNotPermittedError", "CircuitBreaker", "State"]
