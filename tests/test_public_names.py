"""Every public class reports its public home (DESIGN.md D1), and both
breakers describe themselves the same way."""

from __future__ import annotations

import importlib
import re

import pytest

from fluxgate import AsyncCircuitBreaker, CircuitBreaker

PUBLIC_CLASSES = {
    "fluxgate.circuitbreaker": ["CircuitBreaker", "AsyncCircuitBreaker", "CircuitBreakerInfo"],
    "fluxgate.metric": ["Record", "Metric"],
    "fluxgate.windows": ["Window", "CountWindow", "TimeWindow"],
    "fluxgate.trackers": ["Tracker", "All", "TypeOf", "Custom"],
    "fluxgate.trippers": ["CallContext", "Tripper", "Closed", "HalfOpened", "MinRequests",
                          "FailureRate", "AvgLatency", "SlowRate", "FailureStreak"],
    "fluxgate.retries": ["Retry", "Always", "Never", "Cooldown", "Backoff"],
    "fluxgate.permits": ["Permit", "All", "Random", "RampUp"],
    "fluxgate.signal": ["Signal"],
    "fluxgate.errors": ["CallNotPermittedError"],
    "fluxgate.listeners.base": ["Listener", "AsyncListener"],
    "fluxgate.listeners.log": ["LogListener"],
}


@pytest.mark.parametrize(
    ("module", "name"),
    [(module, name) for module, names in PUBLIC_CLASSES.items() for name in names],
)
def test_a_public_class_names_its_public_module(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert (cls.__module__, cls.__qualname__) == (module, name)


@pytest.mark.parametrize("breaker_class", [CircuitBreaker, AsyncCircuitBreaker])
def test_a_breaker_repr_names_its_class_and_state(breaker_class: type) -> None:
    breaker = breaker_class()
    assert re.fullmatch(
        rf"<fluxgate\.circuitbreaker\.{breaker_class.__name__} state='closed' at 0x[0-9a-f]+>",
        repr(breaker),
    )
