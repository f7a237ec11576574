"""A listener that exports each breaker's state and transitions to Prometheus.

Needs the ``prometheus`` extra: ``pip install fluxgate[prometheus]``.
"""

from __future__ import annotations

from typing import get_args

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Gauge
except ImportError as error:
    raise ImportError(
        "PrometheusListener requires prometheus_client; "
        "install it with `pip install fluxgate[prometheus]`"
    ) from error

from fluxgate.listeners._prometheus_metrics import (
    COUNTER_LABELS,
    GAUGE_LABELS,
    shared_metrics,
)
from fluxgate.listeners.base import Listener as Listener
from fluxgate.signal import Signal as Signal
from fluxgate.state import State

__all__ = ["PrometheusListener"]

_STATES: tuple[State, ...] = get_args(State)


def _remove_series(
    metric: Gauge | Counter, labelnames: tuple[str, ...], circuit_name: str
) -> None:
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
        self._gauge, self._counter = shared_metrics(self._registry)

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
        _remove_series(self._gauge, GAUGE_LABELS, self._name)
        _remove_series(self._counter, COUNTER_LABELS, self._name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, registry={self._registry!r})"
