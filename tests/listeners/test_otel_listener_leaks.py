"""OTelListener's life cycle on the API's no-op provider, which (unlike the
SDK's) keeps nothing per instance: under the leak check, a listener made,
signalled, evicted from a registry and closed leaves nothing behind."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.metrics")

from opentelemetry.metrics import NoOpMeterProvider  # noqa: E402

from fluxgate import BreakerRegistry, CircuitBreaker  # noqa: E402
from fluxgate.listeners.otel import OTelListener  # noqa: E402


def test_a_listener_made_used_and_closed_on_eviction() -> None:
    provider = NoOpMeterProvider()
    registry = BreakerRegistry(
        lambda host: CircuitBreaker(listeners=[OTelListener(host, meter_provider=provider)]),
        max_breakers=1,
        idle_after=0,
    )
    registry["a.example"].force_open()
    registry["a.example"].reset()
    registry["b.example"].reset()
    assert "a.example" not in registry
    listener = OTelListener("c.example", meter_provider=provider)
    listener.close()
    listener.close()
