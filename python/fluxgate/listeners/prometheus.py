"""A listener that exports each breaker's state and transitions to Prometheus.

Needs the ``prometheus`` extra: ``pip install fluxgate[prometheus]``.
"""

from __future__ import annotations

import threading
from typing import get_args

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge
except ImportError as error:
    raise ImportError(
        "PrometheusListener requires prometheus_client; "
        "install it with `pip install fluxgate[prometheus]`"
    ) from error

from fluxgate.listeners.base import Listener as Listener
from fluxgate.signal import Signal as Signal
from fluxgate.state import State

__all__ = ["PrometheusListener"]

_STATES: tuple[State, ...] = get_args(State)
_GAUGE_NAME = "circuit_breaker_state"
_GAUGE_LABELS = ("circuit_name", "state")
_COUNTER_NAME = "circuit_breaker_state_transition"
_COUNTER_LABELS = ("circuit_name", "old_state", "new_state")

_lock = threading.Lock()


def _registered(registry: CollectorRegistry, name: str) -> object:
    # The registry itself remembers the metrics, so a reload of this module
    # or a second listener finds them instead of registering duplicates.
    return registry._names_to_collectors.get(name)


def _labelnames(metric: object) -> tuple[str, ...]:
    return tuple(getattr(metric, "_labelnames", ()))


def _shared_metrics(registry: CollectorRegistry) -> tuple[Gauge, Counter]:
    """The gauge and counter of ``registry``, created on first use."""
    with _lock:
        gauge = _registered(registry, _GAUGE_NAME)
        if not (isinstance(gauge, Gauge) and _labelnames(gauge) == _GAUGE_LABELS):
            gauge = Gauge(
                _GAUGE_NAME,
                "Current state of the circuit breaker",
                _GAUGE_LABELS,
                registry=registry,
            )
        counter = _registered(registry, _COUNTER_NAME)
        if not (isinstance(counter, Counter) and _labelnames(counter) == _COUNTER_LABELS):
            counter = Counter(
                _COUNTER_NAME,
                "Count of state transitions for circuit breakers",
                _COUNTER_LABELS,
                registry=registry,
            )
        return gauge, counter


def _remove_series(metric: Gauge | Counter, circuit_name: str) -> None:
    labelnames = _labelnames(metric)
    labelsets = {
        tuple(sample.labels[label] for label in labelnames)
        for family in metric.collect()
        for sample in family.samples
        if sample.labels.get("circuit_name") == circuit_name
    }
    for labelvalues in labelsets:
        try:
            metric.remove(*labelvalues)
        except KeyError:  # removed meanwhile; older prometheus_client raises
            pass


class PrometheusListener(Listener):
    """Export the state and the transitions of the breaker called ``name``.

    On every signal the gauge ``circuit_breaker_state`` (labels
    ``circuit_name``, ``state``) is set to 1 for the new state and 0 for the
    other five, and the counter ``circuit_breaker_state_transition_total``
    (labels ``circuit_name``, ``old_state``, ``new_state``) goes up by one.
    Both live on ``registry`` (default: prometheus_client's global registry);
    they are created once per registry and shared by every listener using it.
    """

    def __init__(self, name: str, registry: CollectorRegistry | None = None) -> None:
        self._name = name
        self._registry = prometheus_client.REGISTRY if registry is None else registry
        self._gauge, self._counter = _shared_metrics(self._registry)

    def __call__(self, signal: Signal) -> None:
        values = dict.fromkeys(_STATES, 0)
        values[signal.new_state] = 1
        for state, value in values.items():
            self._gauge.labels(circuit_name=self._name, state=state).set(value)
        self._counter.labels(
            circuit_name=self._name,
            old_state=signal.old_state,
            new_state=signal.new_state,
        ).inc()

    def close(self) -> None:
        """Remove every series labelled with this listener's ``circuit_name``.

        For breakers that come and go (per tenant, per test) whose series
        would otherwise stay exported. Calling it again does nothing.
        """
        _remove_series(self._gauge, self._name)
        _remove_series(self._counter, self._name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, registry={self._registry!r})"
