"""A listener that exports each breaker's state and transitions to OpenTelemetry.

Needs the ``otel`` extra: ``pip install fluxgate[otel]`` (opentelemetry-api;
an SDK or a distribution configures where the metrics go).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import get_args

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Counter, MeterProvider, Observation
except ImportError as error:
    raise ImportError(
        "OTelListener requires opentelemetry-api; install it with `pip install fluxgate[otel]`"
    ) from error

from fluxgate._version import __version__
from fluxgate.listeners.base import Listener
from fluxgate.signal import Signal
from fluxgate.state import State

__all__ = ["OTelListener"]

_STATES: tuple[State, ...] = get_args(State)
_GAUGE_NAME = "circuit_breaker_state"
_GAUGE_DESCRIPTION = "Current state of the circuit breaker"
_COUNTER_NAME = "circuit_breaker_state_transition"
_COUNTER_DESCRIPTION = "Count of state transitions for circuit breakers"


class _Instruments:
    """The gauge and counter of one meter provider, shared by its listeners.

    The gauge is observed: the reader's callback reports, for every circuit
    name a listener has seen a signal for, 1 for its latest state and 0 for
    the other five, as the Prometheus listener's gauge shows them."""

    def __init__(self, provider: MeterProvider | None) -> None:
        meter = metrics.get_meter("fluxgate", __version__, meter_provider=provider)
        self.lock = threading.Lock()
        self.states: dict[str, State] = {}
        self.counter: Counter = meter.create_counter(
            _COUNTER_NAME, description=_COUNTER_DESCRIPTION
        )
        meter.create_observable_gauge(
            _GAUGE_NAME, callbacks=[self.observe], description=_GAUGE_DESCRIPTION
        )

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        with self.lock:
            states = list(self.states.items())
        return [
            Observation(int(state == current), {"circuit_name": name, "state": state})
            for name, current in states
            for state in _STATES
        ]


_lock = threading.Lock()
_by_provider: weakref.WeakKeyDictionary[MeterProvider, _Instruments] = (
    weakref.WeakKeyDictionary()
)


def _shared_instruments(provider: MeterProvider | None) -> _Instruments:
    """The instruments of ``provider`` (None: the global one), made on first use."""
    key = metrics.get_meter_provider() if provider is None else provider
    with _lock:
        instruments = _by_provider.get(key)
        if instruments is None:
            instruments = _by_provider[key] = _Instruments(key)
        return instruments


class OTelListener(Listener):
    """Export the state and the transitions of the breaker called ``name``.

    The same metrics as ``PrometheusListener``, as OpenTelemetry instruments
    of the meter ``fluxgate``: an observable gauge ``circuit_breaker_state``
    (attributes ``circuit_name``, ``state``) reporting 1 for the breaker's
    latest state and 0 for the other five, and a counter
    ``circuit_breaker_state_transition`` (attributes ``circuit_name``,
    ``old_state``, ``new_state``; Prometheus exporters add ``_total``) that
    goes up by one per signal. The instruments live on ``meter_provider``
    (default: the global one, ``opentelemetry.metrics.get_meter_provider()``)
    and are shared by every listener using it. Before its first signal a
    listener reports nothing, as the Prometheus listener does.
    """

    def __init__(self, name: str, meter_provider: MeterProvider | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if meter_provider is not None and not isinstance(meter_provider, MeterProvider):
            raise TypeError(
                "meter_provider must be an opentelemetry MeterProvider, "
                f"not {type(meter_provider).__name__}"
            )
        self._name = name
        self._meter_provider = meter_provider
        self._instruments = _shared_instruments(meter_provider)

    def __call__(self, signal: Signal, /) -> None:
        instruments = self._instruments
        with instruments.lock:
            instruments.states[self._name] = signal.new_state
        instruments.counter.add(
            1,
            {
                "circuit_name": self._name,
                "old_state": signal.old_state,
                "new_state": signal.new_state,
            },
        )

    def close(self) -> None:
        """Stop reporting the state of this listener's ``circuit_name``.

        For breakers that come and go (per tenant, per host; a
        ``BreakerRegistry`` calls it on eviction). OpenTelemetry offers no
        way to remove a counter's series, so the transition counts already
        exported stay. Calling it again does nothing."""
        instruments = self._instruments
        with instruments.lock:
            instruments.states.pop(self._name, None)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self._name!r}, "
            f"meter_provider={self._meter_provider!r})"
        )
