# mypy: disable-error-code="empty-body"
"""The Python signatures of the classes and methods implemented in C.

Each stub below is a Python function with the signature fluxgate 0.9.4 gave
the same method: parameter names, kinds, defaults and annotations (strings,
as 0.9.4's ``from __future__ import annotations`` made them). They serve two
purposes:

- Argument errors: the native code parses its arguments itself and, only when
  they do not bind, calls :func:`bind_error`, which calls the stub with the
  same arguments so that the interpreter raises the ``TypeError`` a Python
  method raises, word for word (``CircuitBreaker.__init__() got an
  unexpected keyword argument 'name'``).
- Introspection: :func:`install` gives the native classes a ``__signature__``
  (and the native methods a descriptor carrying one) built from the stubs.

A stub never runs its body: binding either fails or the native parser's own
error stands.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names the stubs' annotations use (strings at runtime)
    from collections.abc import Awaitable, Iterable, Mapping
    from typing import ParamSpec, TypeVar

    from fluxgate._values import CallContext, CircuitBreakerInfo, Metric, Record
    from fluxgate.listeners.base import AsyncListener, Listener
    from fluxgate.permits import Permit
    from fluxgate.retries import Retry
    from fluxgate.shared import HostMemory
    from fluxgate.trackers import Tracker
    from fluxgate.trippers import Tripper
    from fluxgate.windows import Window

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["bind_error", "install", "signature"]

_STUBS: dict[str, Callable[..., Any]] = {}


def _stub(key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a stub under ``module.Class.method``; its qualname becomes
    ``Class.method``, which is what Python's own messages name."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        parts = key.split(".")
        func.__qualname__ = ".".join(parts[-2:])
        func.__module__ = ".".join(parts[:-2])
        _STUBS[key] = func
        return func

    return register


def _no_init(key: str) -> None:
    """A class without ``__init__``: calling it with arguments raises
    ``Name() takes no arguments``, as object's constructor does."""
    parts = key.split(".")
    cls = type(parts[-2], (), {"__module__": ".".join(parts[:-2])})

    def construct(self: object, /, *args: Any, **kwargs: Any) -> None:
        cls(*args, **kwargs)

    _STUBS[key] = construct
    _NO_INIT.add(key)


_NO_INIT: set[str] = set()

# ---- fluxgate.circuitbreaker ------------------------------------------------

_CB = "fluxgate.circuitbreaker.CircuitBreaker"


@_stub(f"{_CB}.__init__")
def _cb_init(
    self: Any,
    window: Window | None = None,
    tracker: Tracker | None = None,
    tripper: Tripper | None = None,
    retry: Retry | None = None,
    permit: Permit | None = None,
    listeners: Iterable[Listener] = (),
    *,
    shared: HostMemory | None = None,
) -> None: ...


@_stub(f"{_CB}.__call__")
def _cb_decorate(
    self: Any,
    func: Callable[P, R] | None = None,
    *,
    fallback: Callable[[Exception], R] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]: ...


@_stub(f"{_CB}.call")
def _cb_call(
    self: Any,
    func: Callable[P, R],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R: ...


@_stub(f"{_CB}.call_with_fallback")
def _cb_call_with_fallback(
    self: Any,
    func: Callable[P, R],
    fallback: Callable[[Exception], R],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R: ...


@_stub(f"{_CB}.info")
def _cb_info(self: Any) -> CircuitBreakerInfo: ...


@_stub(f"{_CB}.reset")
def _cb_reset(self: Any) -> None: ...


@_stub(f"{_CB}.disable")
def _cb_disable(self: Any) -> None: ...


@_stub(f"{_CB}.metrics_only")
def _cb_metrics_only(self: Any) -> None: ...


@_stub(f"{_CB}.force_open")
def _cb_force_open(self: Any) -> None: ...


# AsyncCircuitBreaker is a Python class: its functions take these stubs'
# annotations (0.9.4's), while the code keeps the ones its type checking needs.
_ANNOTATIONS_ONLY: dict[str, Callable[..., Any]] = {}


def _async_init(
    self: Any,
    window: Window | None = None,
    tracker: Tracker | None = None,
    tripper: Tripper | None = None,
    retry: Retry | None = None,
    permit: Permit | None = None,
    max_half_open_calls: int = 10,
    listeners: Iterable[Listener | AsyncListener] = (),
    *,
    shared: HostMemory | None = None,
) -> None: ...


def _async_decorate(
    self: Any,
    func: Callable[P, Awaitable[R]] | None = None,
    *,
    fallback: Callable[[Exception], R] | None = None,
) -> Callable[P, Awaitable[R]] | Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...  # noqa: E501


_ANNOTATIONS_ONLY["fluxgate.circuitbreaker.AsyncCircuitBreaker.__init__"] = _async_init
_ANNOTATIONS_ONLY["fluxgate.circuitbreaker.AsyncCircuitBreaker.__call__"] = _async_decorate


# ---- fluxgate.metric --------------------------------------------------------

_METRIC = "fluxgate.metric.Metric"


@_stub(f"{_METRIC}.__init__")
def _metric_init(
    self: Any,
    *,
    total_count: int,
    total_duration: float,
    failure_count: int,
    slow_counts: Mapping[float, int],
) -> None: ...


@_stub(f"{_METRIC}.empty")
def _metric_empty(cls: Any) -> Metric: ...


@_stub(f"{_METRIC}.from_record")
def _metric_from_record(cls: Any, record: Record) -> Metric: ...


@_stub(f"{_METRIC}.slow_rate")
def _metric_slow_rate(self: Any, threshold: float) -> float | None: ...


# ---- fluxgate.windows -------------------------------------------------------

for _window in ("CountWindow", "TimeWindow"):
    _W = f"fluxgate.windows.{_window}"

    @_stub(f"{_W}.__init__")
    def _window_init(self: Any, size: int) -> None: ...

    @_stub(f"{_W}.record")
    def _window_record(self: Any, record: Record) -> None: ...

    @_stub(f"{_W}.get_metric")
    def _window_get_metric(self: Any) -> Metric: ...

    @_stub(f"{_W}.reset")
    def _window_reset(self: Any) -> None: ...


# ---- fluxgate.trackers ------------------------------------------------------

for _tracker in ("All", "TypeOf", "Custom"):

    @_stub(f"fluxgate.trackers.{_tracker}.__call__")
    def _tracker_call(self: Any, exception: Exception) -> bool: ...


_no_init("fluxgate.trackers.All.__init__")


@_stub("fluxgate.trackers.TypeOf.__init__")
def _typeof_init(self: Any, *types: type[Exception]) -> None: ...


@_stub("fluxgate.trackers.Custom.__init__")
def _custom_init(self: Any, func: Callable[[Exception], bool]) -> None: ...


# ---- fluxgate.trippers ------------------------------------------------------

_TRIPPERS = ("Closed", "HalfOpened", "MinRequests", "FailureRate", "AvgLatency",
             "SlowRate", "FailureStreak")  # fmt: skip
for _tripper in _TRIPPERS:

    @_stub(f"fluxgate.trippers.{_tripper}.__call__")
    def _tripper_call(self: Any, ctx: CallContext) -> bool: ...


_no_init("fluxgate.trippers.Closed.__init__")
_no_init("fluxgate.trippers.HalfOpened.__init__")


@_stub("fluxgate.trippers.MinRequests.__init__")
def _min_requests_init(self: Any, count: int) -> None: ...


@_stub("fluxgate.trippers.FailureRate.__init__")
def _failure_rate_init(self: Any, ratio: float) -> None: ...


@_stub("fluxgate.trippers.AvgLatency.__init__")
def _avg_latency_init(self: Any, threshold: float) -> None: ...


@_stub("fluxgate.trippers.SlowRate.__init__")
def _slow_rate_init(self: Any, ratio: float, *, threshold: float) -> None: ...


@_stub("fluxgate.trippers.FailureStreak.__init__")
def _failure_streak_init(self: Any, count: int) -> None: ...


# ---- fluxgate.retries -------------------------------------------------------

for _retry in ("Always", "Never", "Cooldown", "Backoff"):

    @_stub(f"fluxgate.retries.{_retry}.__call__")
    def _retry_call(self: Any, changed_at: float, reopens: int) -> bool: ...


_no_init("fluxgate.retries.Always.__init__")
_no_init("fluxgate.retries.Never.__init__")


@_stub("fluxgate.retries.Cooldown.__init__")
def _cooldown_init(self: Any, duration: float, jitter_ratio: float = 0.0) -> None: ...


@_stub("fluxgate.retries.Backoff.__init__")
def _backoff_init(
    self: Any,
    initial: float,
    multiplier: float = 2.0,
    max_duration: float = 300.0,
    jitter_ratio: float = 0.0,
) -> None: ...


# ---- fluxgate.permits -------------------------------------------------------

for _permit in ("All", "Random", "RampUp"):

    @_stub(f"fluxgate.permits.{_permit}.__call__")
    def _permit_call(self: Any, changed_at: float) -> bool: ...


_no_init("fluxgate.permits.All.__init__")


@_stub("fluxgate.permits.Random.__init__")
def _random_init(self: Any, ratio: float) -> None: ...


@_stub("fluxgate.permits.RampUp.__init__")
def _ramp_up_init(self: Any, initial: float, final: float, duration: float) -> None: ...


class _SignatureAttribute:
    """A native class's ``__signature__``.

    On the class (or a subclass that keeps its ``__new__`` and ``__init__``)
    it is the constructor's signature; on an instance whose type keeps the
    class's ``__call__``, the call's. Anywhere else it is absent, and
    :func:`inspect.signature` looks further (a subclass's own ``__init__`` or
    ``__call__``), as for a Python class.
    """

    def __init__(self, cls: type, init: inspect.Signature, call: inspect.Signature | None):
        self._cls = cls
        self._init = init
        self._call = call

    def __get__(self, obj: object, owner: type | None = None) -> inspect.Signature:
        cls = self._cls
        if obj is None:
            if owner is cls or (
                owner is not None
                and getattr(owner, "__init__", None) is getattr(cls, "__init__")
                and getattr(owner, "__new__", None) is getattr(cls, "__new__")
            ):
                return self._init
        elif self._call is not None and getattr(type(obj), "__call__", None) is getattr(cls, "__call__"):
            return self._call
        raise AttributeError("__signature__")


# Methods left as CPython's own descriptors, without annotations. None now:
# cb.call and cb.call_with_fallback carry the seeds' annotations too (their
# descriptor costs cb.call about 2 ns; the functions @cb returns do not go
# through it).
_KEPT_NATIVE: frozenset[str] = frozenset()


def install() -> None:
    """Give each native class a ``__signature__`` and each of its plain
    methods a descriptor carrying one, from the stubs."""
    import importlib

    from fluxgate import _fluxgate

    for key, stub in _ANNOTATIONS_ONLY.items():
        owner, _, name = key.rpartition(".")
        module_name, _, class_name = owner.rpartition(".")
        function = getattr(importlib.import_module(module_name), class_name).__dict__[name]
        function.__annotations__ = dict(stub.__annotations__)
        del function.__annotations__["self"]

    method_descriptor = type(_fluxgate.CircuitBreaker.__dict__["call"])
    classmethod_descriptor = type(_fluxgate.Metric.__dict__["empty"])
    by_class: dict[str, list[str]] = {}
    for key in _STUBS:
        owner, _, name = key.rpartition(".")
        by_class.setdefault(owner, []).append(name)
    for owner, names in by_class.items():
        module_name, _, class_name = owner.rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        init_key = f"{owner}.__init__"
        if init_key in _STUBS and init_key not in _NO_INIT:
            init = signature(init_key, bound=True)
        else:  # no __init__ of its own: object's signature
            init = inspect.Signature()
        call = signature(f"{owner}.__call__", bound=True) if "__call__" in names else None
        _fluxgate._set_class_attribute(cls, "__signature__", _SignatureAttribute(cls, init, call))
        for name in names:
            if name in ("__init__", "__call__") or f"{owner}.{name}" in _KEPT_NATIVE:
                continue
            descriptor = cls.__dict__.get(name)
            if type(descriptor) is method_descriptor:
                signed = _fluxgate._SignedMethod(descriptor, signature(f"{owner}.{name}"))
                _fluxgate._set_class_attribute(cls, name, signed)
            elif type(descriptor) is classmethod_descriptor:
                _fluxgate._set_class_attribute(
                    cls, name, _signed_classmethod(descriptor, signature(f"{owner}.{name}"))
                )


def _signed_classmethod(native: Any, sig: inspect.Signature) -> classmethod[Any, Any, Any]:
    """A classmethod calling the native one, carrying the signature ``sig``
    (first parameter the class). Only for methods off the hot path."""

    def method(cls: type, /, *args: Any, **kwargs: Any) -> Any:
        return native.__get__(None, cls)(*args, **kwargs)

    method.__name__ = native.__name__
    method.__qualname__ = native.__qualname__
    method.__doc__ = native.__doc__
    method.__signature__ = sig  # type: ignore[attr-defined]
    return classmethod(method)


def bind_error(key: str, self: object, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> None:
    """Raise the ``TypeError`` the stub ``key`` raises for these arguments.

    Called by the native code when its own parsing failed; returns (and the
    native error stands) when the arguments bind.
    """
    stub = _STUBS[key]
    try:
        stub(self, *args, **(kwargs or {}))
    except TypeError as error:
        raise error.with_traceback(None) from None


def signature(key: str, *, bound: bool = False) -> inspect.Signature:
    """The signature of the stub ``key``; ``bound`` drops its first parameter."""
    sig = inspect.signature(_STUBS[key])
    params = list(sig.parameters.values())
    if bound:
        params = params[1:]
    elif params:  # `self` is unannotated, as in a Python method
        params[0] = params[0].replace(annotation=inspect.Parameter.empty)
    return sig.replace(parameters=params)


del _window, _tracker, _tripper, _retry, _permit
