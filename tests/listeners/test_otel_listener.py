"""OTelListener: the Prometheus listener's metrics, through OpenTelemetry."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.metrics")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
sdk_export = pytest.importorskip("opentelemetry.sdk.metrics.export")

from opentelemetry import metrics  # noqa: E402

from fluxgate import AsyncCircuitBreaker, BreakerRegistry, CircuitBreaker  # noqa: E402
from fluxgate.listeners import Listener  # noqa: E402
from fluxgate.listeners.otel import OTelListener  # noqa: E402
from fluxgate.retries import Never  # noqa: E402
from fluxgate.trippers import FailureStreak  # noqa: E402

pytestmark = pytest.mark.no_leakcheck(
    "each test makes an OpenTelemetry SDK MeterProvider, which registers an at-fork "
    "hook that is never removed; test_otel_listener_leaks.py checks the listener alone"
)

STATES = ("closed", "open", "half_open", "metrics_only", "disabled", "forced_open")


class Reader:
    """An SDK meter provider with an in-memory reader, read as plain dicts."""

    def __init__(self) -> None:
        self.reader = sdk_export.InMemoryMetricReader()
        self.provider = sdk_metrics.MeterProvider(
            metric_readers=[self.reader], shutdown_on_exit=False
        )

    def read(self) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
        data = self.reader.get_metrics_data()
        found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name == "fluxgate"
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, {})
                    for point in metric.data.data_points:
                        points[tuple(sorted(point.attributes.items()))] = point.value
        return found

    def described(self) -> dict[str, str]:
        data = self.reader.get_metrics_data()
        return {
            metric.name: metric.description
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    def gauge(self, name: str) -> dict[str, Any]:
        points = self.read().get("circuit_breaker_state", {})
        return {
            dict(attributes)["state"]: value
            for attributes, value in points.items()
            if dict(attributes)["circuit_name"] == name
        }

    def transitions(self, name: str) -> dict[tuple[str, str], Any]:
        points = self.read().get("circuit_breaker_state_transition", {})
        return {
            (dict(attributes)["old_state"], dict(attributes)["new_state"]): value
            for attributes, value in points.items()
            if dict(attributes)["circuit_name"] == name
        }


@pytest.fixture
def otel() -> Iterator[Reader]:
    reader = Reader()
    yield reader
    reader.provider.shutdown()


def fail() -> None:
    raise RuntimeError("down")


def opening(listener: OTelListener) -> CircuitBreaker:
    return CircuitBreaker(tripper=FailureStreak(1), retry=Never(), listeners=[listener])


def test_the_gauge_shows_the_state_and_the_counter_counts_transitions(otel: Reader) -> None:
    breaker = opening(OTelListener("payments", meter_provider=otel.provider))
    with pytest.raises(RuntimeError):
        breaker.call(fail)

    assert otel.gauge("payments") == {state: int(state == "open") for state in STATES}
    assert otel.transitions("payments") == {("closed", "open"): 1}

    breaker.reset()
    breaker.force_open()
    breaker.force_open()
    assert otel.gauge("payments") == {state: int(state == "forced_open") for state in STATES}
    assert otel.transitions("payments") == {
        ("closed", "open"): 1,
        ("open", "closed"): 1,
        ("closed", "forced_open"): 1,
        ("forced_open", "forced_open"): 1,
    }


def test_names_and_descriptions_are_the_prometheus_listeners(otel: Reader) -> None:
    OTelListener("a", meter_provider=otel.provider)(_signal("closed", "open"))
    assert otel.described() == {
        "circuit_breaker_state": "Current state of the circuit breaker",
        "circuit_breaker_state_transition": "Count of state transitions for circuit breakers",
    }
    prometheus = pytest.importorskip("fluxgate.listeners.prometheus")
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    prometheus.PrometheusListener("a", registry=registry)(_signal("closed", "open"))
    exported = {family.name: family.documentation for family in registry.collect()}
    assert exported == otel.described()


def _signal(old: str, new: str) -> Any:
    from fluxgate.signal import Signal

    return Signal(old, new, 1.0)  # type: ignore[arg-type]


def test_a_listener_reports_nothing_before_its_first_signal(otel: Reader) -> None:
    OTelListener("quiet", meter_provider=otel.provider)
    assert otel.read() == {}


def test_listeners_of_one_provider_share_the_instruments(otel: Reader) -> None:
    first = OTelListener("a", meter_provider=otel.provider)
    second = OTelListener("b", meter_provider=otel.provider)
    first(_signal("closed", "open"))
    second(_signal("closed", "disabled"))
    assert otel.gauge("a")["open"] == 1 and otel.gauge("b")["disabled"] == 1
    other = Reader()
    try:
        OTelListener("a", meter_provider=other.provider)(_signal("closed", "metrics_only"))
        assert other.gauge("a")["metrics_only"] == 1
        assert otel.gauge("a")["open"] == 1  # each provider its own
    finally:
        other.provider.shutdown()


def test_close_stops_the_gauge_and_is_idempotent(otel: Reader) -> None:
    listener = OTelListener("tenant-7", meter_provider=otel.provider)
    listener(_signal("closed", "open"))
    OTelListener("tenant-8", meter_provider=otel.provider)(_signal("closed", "open"))
    listener.close()
    listener.close()
    assert otel.gauge("tenant-7") == {}
    assert otel.gauge("tenant-8")["open"] == 1
    # OpenTelemetry cannot remove a counter's series: the count stays.
    assert otel.transitions("tenant-7") == {("closed", "open"): 1}
    OTelListener("never-signalled", meter_provider=otel.provider).close()


def test_eviction_from_a_registry_closes_the_listener(otel: Reader) -> None:
    registry = BreakerRegistry(
        lambda host: CircuitBreaker(listeners=[OTelListener(host, meter_provider=otel.provider)]),
        max_breakers=1,
        idle_after=0,
    )
    registry["a.example"].reset()
    assert otel.gauge("a.example")["closed"] == 1
    registry["b.example"].reset()
    assert otel.gauge("a.example") == {}
    assert otel.gauge("b.example")["closed"] == 1


def test_works_with_the_async_breaker(otel: Reader) -> None:
    breaker = AsyncCircuitBreaker(
        tripper=FailureStreak(1),
        retry=Never(),
        listeners=[OTelListener("async", meter_provider=otel.provider)],
    )

    async def failing() -> None:
        raise RuntimeError("down")

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await breaker.call(failing)

    asyncio.run(main())
    assert otel.gauge("async")["open"] == 1
    assert otel.transitions("async") == {("closed", "open"): 1}


def test_the_default_is_the_global_meter_provider(
    otel: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: otel.provider)
    listener = OTelListener("global")
    listener(_signal("closed", "open"))
    assert otel.gauge("global")["open"] == 1
    assert repr(listener) == "OTelListener(name='global', meter_provider=None)"


def test_is_a_listener_and_checks_its_arguments(otel: Reader) -> None:
    listener = OTelListener("x", meter_provider=otel.provider)
    assert isinstance(listener, Listener)
    with pytest.raises(TypeError, match="name must be a str"):
        OTelListener(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="meter_provider must be an opentelemetry MeterProvider"):
        OTelListener("x", meter_provider=object())  # type: ignore[arg-type]


def test_import_without_opentelemetry_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "fluxgate.listeners.otel")
    with pytest.raises(ImportError, match=r"pip install fluxgate\[otel\]"):
        importlib.import_module("fluxgate.listeners.otel")
