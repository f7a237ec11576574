"""The value types that cross the boundary between the native core and Python.

``Record``, ``CallContext``, ``Signal`` and ``CircuitBreakerInfo`` are frozen,
slotted dataclasses, built only when Python code needs them (a user
component, a listener, ``info()``). ``Metric`` is a C type; this module gives
it the dataclass protocol and frozen assignment. Each class reports its public
module. Importing this module hands the classes to the native core.
"""

import copyreg
import dataclasses
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxgate import _fluxgate, _reporting
from fluxgate._fluxgate import Metric
from fluxgate.state import State

__all__ = ["CallContext", "CircuitBreakerInfo", "Metric", "Record", "Signal"]


def _wall_time() -> float:
    # Looked up at each call so that freezegun and mocks are honoured.
    return time.time()


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """The outcome of one protected call, stamped with the wall time."""

    success: bool
    duration: float = 0.0
    slow_at: tuple[float, ...] = ()
    timestamp: float = field(init=False, default_factory=_wall_time)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What a tripper decides on: the window's metric, the state, the streak."""

    metric: Metric
    state: "State"  # a string, as 0.9.4's annotations were
    consecutive_failures: int


@dataclass(frozen=True, slots=True)
class Signal:
    """A state transition, as listeners receive it."""

    old_state: State
    new_state: State
    timestamp: float


@dataclass(frozen=True, slots=True)
class CircuitBreakerInfo:
    """A snapshot of a breaker: state, when it changed, reopens, metrics."""

    state: "State"  # a string, as 0.9.4's annotations were
    changed_at: float
    reopens: int
    metrics: Metric


Record.__module__ = "fluxgate.metric"
CallContext.__module__ = "fluxgate.trippers"
Signal.__module__ = "fluxgate.signal"
CircuitBreakerInfo.__module__ = "fluxgate.circuitbreaker"


@dataclass(frozen=True, kw_only=True)
class _MetricFields:
    total_count: int
    total_duration: float
    failure_count: int
    slow_counts: Mapping[float, int]


_FROZEN_CLASSES = (Record, CallContext, Signal, CircuitBreakerInfo, Metric)


# Frozen assignment as dataclasses mean it: any name on an instance of the
# class itself, a field name on an instance of a subclass. The methods that
# dataclasses generate for a frozen slotted class reach super() for names
# that are not fields, and fail there with an unrelated TypeError (the class
# was replaced to add slots), so every class gets these instead.
def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    if type(self) in _FROZEN_CLASSES or name in self.__dataclass_fields__:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _frozen_delattr(self: Any, name: str) -> None:
    if type(self) in _FROZEN_CLASSES or name in self.__dataclass_fields__:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _metric_replace(self: Metric, /, **changes: Any) -> Metric:
    return dataclasses.replace(self, **changes)


def _metric_reduce(self: Metric) -> tuple[Any, ...]:
    # Rebuilt by keyword at every pickle protocol, as a dataclass is
    # (protocols 0 and 1 would otherwise refuse a C type). Protocols 2+ turn
    # __newobj_ex__ into their own opcodes, naming only the public class.
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(_MetricFields)}
    newobj_ex = copyreg.__newobj_ex__  # type: ignore[attr-defined]  # not in typeshed
    return newobj_ex, (type(self), (), fields)


for _name in ("__dataclass_fields__", "__dataclass_params__", "__match_args__"):
    setattr(Metric, _name, getattr(_MetricFields, _name))
setattr(Metric, "__annotations__", dict(_MetricFields.__annotations__))
for _cls in _FROZEN_CLASSES:
    setattr(_cls, "__setattr__", _frozen_setattr)
    setattr(_cls, "__delattr__", _frozen_delattr)
setattr(Metric, "__reduce__", _metric_reduce)
if sys.version_info >= (3, 13):
    setattr(Metric, "__replace__", _metric_replace)

_fluxgate._bind(
    record=Record,
    call_context=CallContext,
    signal=Signal,
    info=CircuitBreakerInfo,
    report_listener_error=_reporting.report_listener_error,
    report_async_listener=_reporting.report_async_listener,
)
