"""The gauge and counter each Prometheus registry holds for fluxgate.

Kept apart from ``prometheus.py`` so that reloading that module finds the
metrics it registered before instead of registering duplicates, without
reading prometheus_client's private attributes.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

GAUGE_NAME = "circuit_breaker_state"
GAUGE_LABELS = ("circuit_name", "state")
COUNTER_NAME = "circuit_breaker_state_transition"
COUNTER_LABELS = ("circuit_name", "old_state", "new_state")

_lock = threading.Lock()
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Gauge, Counter]] = (
    weakref.WeakKeyDictionary()
)


def shared_metrics(registry: CollectorRegistry) -> tuple[Gauge, Counter]:
    """The gauge and counter of ``registry``, created on first use."""
    with _lock:
        metrics = _by_registry.get(registry)
        if metrics is None:
            gauge = Gauge(
                GAUGE_NAME,
                "Current state of the circuit breaker",
                GAUGE_LABELS,
                registry=registry,
            )
            counter = Counter(
                COUNTER_NAME,
                "Count of state transitions for circuit breakers",
                COUNTER_LABELS,
                registry=registry,
            )
            metrics = _by_registry[registry] = (gauge, counter)
        return metrics
