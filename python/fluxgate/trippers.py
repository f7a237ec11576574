"""Trippers: the conditions under which the circuit breaker opens.

A tripper is called with a ``CallContext`` (the window's metric, the state
and the failure streak) and returns ``True`` when the breaker should open.
``&`` and ``|`` combine trippers, and any callable taking a ``CallContext``
may be an operand. Iterating a tripper yields its leaves, depth-first.

The built-in trippers are implemented in C and registered with ``Tripper``;
subclass ``Tripper`` (or a built-in) to write your own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from fluxgate._fluxgate import (
    AvgLatency,
    Closed,
    FailureRate,
    FailureStreak,
    HalfOpened,
    MinRequests,
    SlowRate,
    _And as _And,
    _Or as _Or,
)
from fluxgate._operators import Combinable
from fluxgate._values import CallContext
from fluxgate._values import Metric as Metric
from fluxgate.state import State as State

__all__ = [
    "CallContext",
    "Tripper",
    "Closed",
    "HalfOpened",
    "MinRequests",
    "FailureRate",
    "AvgLatency",
    "SlowRate",
    "FailureStreak",
]


class Tripper(ABC, Combinable[CallContext, "Tripper"]):
    """Base class for tripper conditions.

    Subclasses implement ``__call__``. A leaf yields itself when iterated;
    ``&`` and ``|`` build short-circuiting composites with any callable.
    """

    _and_type = _And
    _or_type = _Or

    @abstractmethod
    def __call__(self, ctx: CallContext) -> bool: ...

    def __iter__(self) -> Iterator[Tripper]:
        yield self


for _builtin in (
    Closed,
    HalfOpened,
    MinRequests,
    FailureRate,
    AvgLatency,
    SlowRate,
    FailureStreak,
    _And,
    _Or,
):
    Tripper.register(_builtin)
del _builtin
