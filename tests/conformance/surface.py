"""The public surface of the fluxgate this interpreter imports, as plain data.

Run on both sides (the reference venv with fluxgate 0.9.4, and this package)
by ``test_surface.py``, which compares the two descriptions:

- ``names``: for each public module, the fluxgate names it exposes (classes
  and functions of fluxgate, fluxgate submodules, the ``State`` alias) and
  its ``__all__``;
- ``signatures``: each public class's constructor and methods, as lists of
  (name, kind, default, annotation) plus the return annotation;
- ``misuse``: the exception type and message of a battery of calls whose
  arguments do not bind.

Uses the standard library and fluxgate's public API only. Run as a script it
prints the description as JSON. When prometheus_client or httpx is missing
(the reference venv installs neither), a placeholder module stands in so that
the listener modules import; nothing here calls them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import sys
import types
from typing import Any

MODULES = [
    "fluxgate",
    "fluxgate.circuitbreaker",
    "fluxgate.errors",
    "fluxgate.state",
    "fluxgate.metric",
    "fluxgate.signal",
    "fluxgate.windows",
    "fluxgate.trackers",
    "fluxgate.trippers",
    "fluxgate.retries",
    "fluxgate.permits",
    "fluxgate.listeners",
    "fluxgate.listeners.base",
    "fluxgate.listeners.log",
    "fluxgate.listeners.prometheus",
    "fluxgate.listeners.slack",
]

# SPEC.md section 0, first table: the public classes whose signatures count.
CLASSES = {
    "fluxgate.circuitbreaker": ["CircuitBreaker", "AsyncCircuitBreaker", "CircuitBreakerInfo"],
    "fluxgate.metric": ["Record", "Metric"],
    "fluxgate.windows": ["Window", "CountWindow", "TimeWindow"],
    "fluxgate.trackers": ["Tracker", "All", "TypeOf", "Custom"],
    "fluxgate.trippers": [
        "CallContext", "Tripper", "Closed", "HalfOpened", "MinRequests",
        "FailureRate", "AvgLatency", "SlowRate", "FailureStreak",
    ],
    "fluxgate.retries": ["Retry", "Always", "Never", "Cooldown", "Backoff"],
    "fluxgate.permits": ["Permit", "All", "Random", "RampUp"],
    "fluxgate.signal": ["Signal"],
    "fluxgate.errors": ["CallNotPermittedError"],
    "fluxgate.listeners.base": ["Listener", "AsyncListener"],
    "fluxgate.listeners.log": ["LogListener"],
    "fluxgate.listeners.prometheus": ["PrometheusListener"],
    "fluxgate.listeners.slack": ["SlackListener", "AsyncSlackListener"],
}  # fmt: skip

# An instance of each class whose calls are compared through the instance
# (inspect.signature(instance) is what a user sees of __call__).
INSTANCES = {
    "fluxgate.circuitbreaker.CircuitBreaker": "CircuitBreaker()",
    "fluxgate.circuitbreaker.AsyncCircuitBreaker": "AsyncCircuitBreaker()",
    "fluxgate.windows.CountWindow": "CountWindow(3)",
    "fluxgate.windows.TimeWindow": "TimeWindow(3)",
    "fluxgate.trackers.All": "trackers.All()",
    "fluxgate.trackers.TypeOf": "TypeOf(ValueError)",
    "fluxgate.trackers.Custom": "Custom(bool)",
    "fluxgate.trippers.Closed": "Closed()",
    "fluxgate.trippers.HalfOpened": "HalfOpened()",
    "fluxgate.trippers.MinRequests": "MinRequests(3)",
    "fluxgate.trippers.FailureRate": "FailureRate(0.5)",
    "fluxgate.trippers.AvgLatency": "AvgLatency(1.0)",
    "fluxgate.trippers.SlowRate": "SlowRate(0.5, threshold=1.0)",
    "fluxgate.trippers.FailureStreak": "FailureStreak(3)",
    "fluxgate.retries.Always": "Always()",
    "fluxgate.retries.Never": "Never()",
    "fluxgate.retries.Cooldown": "Cooldown(1.0)",
    "fluxgate.retries.Backoff": "Backoff(1.0)",
    "fluxgate.permits.All": "permits.All()",
    "fluxgate.permits.Random": "Random(0.5)",
    "fluxgate.permits.RampUp": "RampUp(0.1, 0.5, 10.0)",
    "fluxgate.metric.Metric": "Metric.empty()",
    "fluxgate.listeners.log.LogListener": "LogListener('x')",
}

SETUP = """
from fluxgate import CircuitBreaker, AsyncCircuitBreaker
from fluxgate import trackers, permits
from fluxgate.metric import Metric, Record
from fluxgate.signal import Signal
from fluxgate.circuitbreaker import CircuitBreakerInfo
from fluxgate.windows import Window, CountWindow, TimeWindow
from fluxgate.trackers import Tracker, TypeOf, Custom
from fluxgate.trippers import (
    CallContext, Tripper, Closed, HalfOpened, MinRequests, FailureRate,
    AvgLatency, SlowRate, FailureStreak,
)
from fluxgate.retries import Retry, Always, Never, Cooldown, Backoff
from fluxgate.permits import Permit, Random, RampUp
from fluxgate.listeners import Listener, AsyncListener
from fluxgate.listeners.log import LogListener

def f():
    return 1

def fallback(error):
    return 2

cb = CircuitBreaker()
acb = AsyncCircuitBreaker()
r = Record(success=True)
ctx = CallContext(metric=Metric.empty(), state="closed", consecutive_failures=0)

class Strict(FailureRate):
    pass

class StrictCooldown(Cooldown):
    pass
"""

# Calls whose arguments do not bind (and a few other misuses whose message
# 0.9.4 and SPEC.md agree on). Calls naming a parameter SPEC.md renames
# (0.9.4's `_exception`, `_changed_at`, `_reopens`) are not here.
MISUSE = [
    "CircuitBreaker(name='x')",
    "CircuitBreaker(name='x', slow_threshold=1.0)",
    "CircuitBreaker(1, 2, 3, 4, 5, 6, 7)",
    "CircuitBreaker(None, window=None)",
    "cb.call()",
    "cb.call(func=f)",
    "cb.call_with_fallback()",
    "cb.call_with_fallback(f)",
    "cb.call_with_fallback(func=f, fallback=fallback)",
    "cb.info(1)",
    "cb.info(x=1)",
    "cb.reset(1)",
    "cb.disable(1)",
    "cb.metrics_only(x=1)",
    "cb.force_open(1)",
    "cb(f, fallback)",
    "cb(fallbak=fallback)",
    "cb(f, x=1)",
    "AsyncCircuitBreaker(name='x')",
    "AsyncCircuitBreaker(1, 2, 3, 4, 5, 6, 7, 8)",
    "AsyncCircuitBreaker(max_half_open=3)",
    "acb.info(1)",
    "acb.reset(1)",
    "acb(fallbak=fallback)",
    "CountWindow()",
    "CountWindow(1, 2)",
    "CountWindow(sized=1)",
    "CountWindow(3, size=3)",
    "TimeWindow()",
    "CountWindow(3).record()",
    "CountWindow(3).record(r, r)",
    "CountWindow(3).record(rec=r)",
    "CountWindow(3).get_metric(1)",
    "TimeWindow(3).reset(1)",
    "TimeWindow(3).record()",
    "Window()",
    "TypeOf(ValueError, x=1)",
    "Custom()",
    "Custom(bool, bool)",
    "Custom(fn=bool)",
    "trackers.All(1)",
    "Tracker()",
    "Closed(1)",
    "HalfOpened(x=1)",
    "MinRequests()",
    "MinRequests(1, 2)",
    "MinRequests(counts=1)",
    "FailureRate()",
    "FailureRate(ratio=0.5, x=1)",
    "AvgLatency()",
    "SlowRate(0.5)",
    "SlowRate(0.5, 1.0)",
    "SlowRate(threshold=1.0)",
    "FailureStreak()",
    "Strict()",
    "MinRequests(1)()",
    "FailureRate(0.5)(ctx, ctx)",
    "SlowRate(0.5, threshold=1.0)(context=ctx)",
    "Closed()()",
    "Tripper()",
    "Always(1)",
    "Never(x=1)",
    "Cooldown()",
    "Cooldown(1.0, 0.1, 2)",
    "Cooldown(duration=1.0, jitter=0.1)",
    "StrictCooldown()",
    "Backoff()",
    "Backoff(1.0, 2.0, 3.0, 0.1, 5)",
    "Backoff(1.0)(0.0)",
    "Backoff(1.0)()",
    "Retry()",
    "permits.All(1)",
    "Random()",
    "Random(0.5, 0.5)",
    "RampUp(0.1, 0.5)",
    "RampUp(0.1, 0.5, 10.0, 1)",
    "RampUp(0.1, 0.5, 10.0)()",
    "Permit()",
    "Metric(1)",
    "Metric(total_count=1)",
    "Metric.empty(1)",
    "Metric.from_record()",
    "Metric.from_record(r, r)",
    "Metric.from_record(rec=r)",
    "Metric.empty().slow_rate()",
    "Metric.empty().slow_rate(1.0, 2.0)",
    "Record()",
    "Record(True)",
    "CallContext()",
    "Signal()",
    "CircuitBreakerInfo()",
    "LogListener()",
    "LogListener('x', bogus=1)",
    "Listener()",
    "AsyncListener()",
]


def _placeholders() -> None:
    """Stand-ins for the listeners' optional dependencies, when missing."""
    for name in ("prometheus_client", "httpx"):
        if importlib.util.find_spec(name) is not None:
            continue
        module = types.ModuleType(name)

        class Anything:
            """Accepts any construction, attribute and call."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __getattr__(self, attribute: str) -> Any:
                return Anything()

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                return Anything()

        def __getattr__(attribute: str, _module: str = name) -> Any:  # noqa: N807
            return type(attribute, (Anything,), {"__module__": _module})

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        sys.modules[name] = module


_QUALIFIER = re.compile(
    r"\b(?:typing|typing_extensions|collections\.abc|prometheus_client|httpx"
    r"|fluxgate(?:\.\w+)*)\."
)
_STATE = "Literal['closed', 'open', 'half_open', 'metrics_only', 'disabled', 'forced_open']"


def _annotation(value: Any) -> str | None:
    """An annotation as text, the way it reads in the source: a string as is,
    an object as inspect formats it, without module qualifiers, and the
    ``State`` alias by its name (0.9.4 evaluated it in some modules)."""
    if value is inspect.Parameter.empty:
        return None
    text = value if isinstance(value, str) else inspect.formatannotation(value)
    return _QUALIFIER.sub("", text).replace(_STATE, "State")


def _signature(obj: Any) -> Any:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError) as error:
        return {"error": type(error).__name__}
    return {
        "parameters": [
            [
                p.name,
                p.kind.name,
                None if p.default is p.empty else repr(p.default),
                _annotation(p.annotation),
            ]
            for p in sig.parameters.values()
        ],
        "return": _annotation(sig.return_annotation),
    }


def _label(module_name: str, value: Any) -> str | None:
    """What a module-level name is, when it is fluxgate's."""
    state = sys.modules["fluxgate.state"].State
    if value is state:
        return "State"
    if isinstance(value, types.ModuleType):
        return f"module {value.__name__}" if value.__name__.startswith("fluxgate") else None
    if inspect.isclass(value) or inspect.isfunction(value):
        module = getattr(value, "__module__", "") or ""
        if module.startswith("fluxgate"):
            return f"{module}.{value.__qualname__}"
    return None


def _names() -> dict[str, Any]:
    result: dict[str, Any] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        exposed = {}
        for name in dir(module):
            if name.startswith("_"):
                continue
            label = _label(module_name, getattr(module, name))
            if label is not None:
                exposed[name] = label
        all_names = getattr(module, "__all__", None)
        result[module_name] = {
            "exposed": exposed,
            "all": sorted(all_names) if all_names is not None else None,
        }
    return result


def _methods(cls: type) -> list[str]:
    """The public methods a class defines or inherits from fluxgate."""
    names = []
    for name in dir(cls):
        if name.startswith("_") and name != "__call__":
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), object)
        if not owner.__module__.startswith("fluxgate"):
            continue  # object's or BaseException's, which vary by Python version
        value = inspect.getattr_static(cls, name)
        if isinstance(value, (classmethod, staticmethod)) or callable(value):
            if name == "__call__" and not any("__call__" in vars(k) for k in cls.__mro__[:-1]):
                continue
            names.append(name)
    return names


def _signatures(namespace: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for module_name, class_names in CLASSES.items():
        module = importlib.import_module(module_name)
        for class_name in class_names:
            cls = getattr(module, class_name)
            key = f"{module_name}.{class_name}"
            entry: dict[str, Any] = {"class": _signature(cls), "methods": {}}
            if issubclass(cls, BaseException):
                entry["class"] = None  # the exception's own constructor
            instance = eval(INSTANCES[key], namespace) if key in INSTANCES else None
            for name in _methods(cls):
                if name == "__call__" and instance is not None:
                    entry["methods"]["instance()"] = _signature(instance)
                else:
                    entry["methods"][name] = _signature(getattr(cls, name))
            result[key] = entry
    return result


def _misuse(namespace: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for call in MISUSE:
        try:
            outcome = eval(call, namespace)
        except Exception as error:  # noqa: BLE001
            result[call] = [type(error).__name__, str(error)]
        else:
            if inspect.iscoroutine(outcome):
                outcome.close()
            result[call] = ["no error", None]
    return result


def describe() -> dict[str, Any]:
    _placeholders()
    namespace: dict[str, Any] = {}
    exec(SETUP, namespace)  # noqa: S102
    return {
        "python": list(sys.version_info[:2]),
        "names": _names(),
        "signatures": _signatures(namespace),
        "misuse": _misuse(namespace),
    }


if __name__ == "__main__":
    json.dump(describe(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
