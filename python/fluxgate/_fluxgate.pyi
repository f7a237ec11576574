# Type information for the native core, fluxgate._fluxgate.
# One section per unit; the public modules re-export these names.

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar, final, overload

from fluxgate._values import CircuitBreakerInfo, Record, Signal
from fluxgate.state import State

_P = ParamSpec("_P")
_R = TypeVar("_R")

# ---- core ----

class CallNotPermittedError(Exception): ...

class Metric:
    def __init__(
        self,
        *,
        total_count: int,
        total_duration: float,
        failure_count: int,
        slow_counts: Mapping[float, int],
    ) -> None: ...
    @property
    def total_count(self) -> int: ...
    @property
    def total_duration(self) -> float: ...
    @property
    def failure_count(self) -> int: ...
    @property
    def slow_counts(self) -> Mapping[float, int]: ...
    @property
    def avg_duration(self) -> float | None: ...
    @property
    def failure_rate(self) -> float | None: ...
    def slow_rate(self, threshold: float) -> float | None: ...
    @classmethod
    def empty(cls) -> Metric: ...
    @classmethod
    def from_record(cls, record: Record, /) -> Metric: ...
    def __add__(self, other: Metric) -> Metric: ...
    def __sub__(self, other: Metric) -> Metric: ...

def _bind(
    *,
    record: type[Any],
    call_context: type[Any],
    signal: type[Any],
    info: type[Any],
    report_listener_error: Callable[[object, BaseException], None],
    report_async_listener: Callable[[object, Any], None],
) -> None: ...
def _monotonic() -> float: ...
def _wall_time() -> float: ...

# ---- breaker ----

_Window = Any  # a fluxgate.windows.Window, or any object with its three methods
_Listener = Callable[[Signal], object]

class CircuitBreaker:
    def __init__(
        self,
        window: _Window | None = None,
        tracker: Callable[[Exception], object] | None = None,
        tripper: Callable[[Any], object] | None = None,
        retry: Callable[[float, int], object] | None = None,
        permit: Callable[[float], object] | None = None,
        listeners: Iterable[_Listener] = (),
    ) -> None: ...
    def call(self, func: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    def call_with_fallback(
        self,
        func: Callable[_P, _R],
        fallback: Callable[[Exception], _R],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R: ...
    @overload
    def __call__(
        self, func: Callable[_P, _R], *, fallback: Callable[[Exception], _R] | None = None
    ) -> Callable[_P, _R]: ...
    @overload
    def __call__(
        self, func: None = None, *, fallback: Callable[[Exception], Any] | None = None
    ) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...
    def info(self) -> CircuitBreakerInfo: ...
    def reset(self) -> None: ...
    def disable(self) -> None: ...
    def metrics_only(self) -> None: ...
    def force_open(self) -> None: ...

@final
class _AsyncCore:
    listeners: tuple[Callable[..., Any], ...]
    def __init__(
        self,
        window: Any,
        tracker: Any,
        tripper: Any,
        retry: Any,
        permit: Any,
        listeners: Iterable[Callable[..., Any]],
    ) -> None: ...
    def begin(self, holding_slot: bool, /) -> object | None: ...
    def succeed(self, ticket: object, /) -> bool: ...
    def fail(self, ticket: object, error: BaseException, /) -> bool: ...
    def command(self, state: State, /) -> bool: ...
    def take_signals(self) -> list[Signal]: ...
    def info(self) -> CircuitBreakerInfo: ...
