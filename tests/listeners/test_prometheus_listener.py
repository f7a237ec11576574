"""PrometheusListener through real registries and the text exposition format."""

from __future__ import annotations

import importlib
import inspect
import sys
import uuid
from typing import get_args

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import fluxgate.listeners.prometheus
from fluxgate.listeners import Listener
from fluxgate.listeners.prometheus import PrometheusListener
from fluxgate.signal import Signal
from fluxgate.state import State

STATES: tuple[State, ...] = get_args(State)
T0 = 1_700_000_000.0

GaugeSeries = dict[tuple[str, str], float]
CounterSeries = dict[tuple[str, str, str], float]


def exposition(registry: CollectorRegistry | None = None) -> str:
    text = generate_latest() if registry is None else generate_latest(registry)
    return text.decode()


def series(registry: CollectorRegistry | None = None) -> tuple[GaugeSeries, CounterSeries]:
    """Gauge and counter values by label values, as the exposition shows them."""
    gauge: GaugeSeries = {}
    counter: CounterSeries = {}
    for family in text_string_to_metric_families(exposition(registry)):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "circuit_breaker_state":
                gauge[labels["circuit_name"], labels["state"]] = sample.value
            elif sample.name == "circuit_breaker_state_transition_total":
                key = (labels["circuit_name"], labels["old_state"], labels["new_state"])
                counter[key] = sample.value
    return gauge, counter


def of(name: str, values: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    return {key[1:]: value for key, value in values.items() if key[0] == name}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def unique_name() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_exposes_gauge_and_counter_with_help(registry: CollectorRegistry) -> None:
    PrometheusListener("payments", registry=registry)(Signal("closed", "open", T0))

    text = exposition(registry)
    assert "# HELP circuit_breaker_state Current state of the circuit breaker\n" in text
    assert "# TYPE circuit_breaker_state gauge\n" in text
    assert (
        "# HELP circuit_breaker_state_transition_total "
        "Count of state transitions for circuit breakers\n" in text
    )
    assert "# TYPE circuit_breaker_state_transition_total counter\n" in text
    assert 'circuit_breaker_state{circuit_name="payments",state="open"} 1.0\n' in text
    assert 'circuit_breaker_state{circuit_name="payments",state="closed"} 0.0\n' in text
    assert (
        "circuit_breaker_state_transition_total"
        '{circuit_name="payments",new_state="open",old_state="closed"} 1.0\n' in text
    )


@pytest.mark.parametrize("new", STATES)
def test_gauge_is_one_for_the_new_state_only(registry: CollectorRegistry, new: State) -> None:
    listener = PrometheusListener("payments", registry=registry)
    listener(Signal("closed", "forced_open", T0))
    listener(Signal("forced_open", new, T0 + 1))

    gauge, _ = series(registry)
    assert gauge == {("payments", state): float(state == new) for state in STATES}


def test_counter_adds_one_per_transition(registry: CollectorRegistry) -> None:
    listener = PrometheusListener("payments", registry=registry)
    for old, new in [("closed", "open"), ("open", "half_open"), ("half_open", "open")]:
        listener(Signal(old, new, T0))
    listener(Signal("open", "half_open", T0 + 1))

    _, counter = series(registry)
    assert counter == {
        ("payments", "closed", "open"): 1.0,
        ("payments", "open", "half_open"): 2.0,
        ("payments", "half_open", "open"): 1.0,
    }


def test_nothing_is_exposed_before_a_signal(registry: CollectorRegistry) -> None:
    PrometheusListener("payments", registry=registry)

    assert series(registry) == ({}, {})


def test_two_listeners_share_one_registry(registry: CollectorRegistry) -> None:
    payments = PrometheusListener("payments", registry=registry)
    search = PrometheusListener("search", registry=registry)
    again = PrometheusListener("payments", registry=registry)
    payments(Signal("closed", "open", T0))
    search(Signal("closed", "disabled", T0))
    again(Signal("open", "half_open", T0))

    text = exposition(registry)
    assert text.count("# HELP circuit_breaker_state ") == 1
    assert text.count("# HELP circuit_breaker_state_transition_total ") == 1
    gauge, counter = series(registry)
    assert of("payments", gauge)[("half_open",)] == 1.0
    assert of("search", gauge)[("disabled",)] == 1.0
    assert set(counter) == {
        ("payments", "closed", "open"),
        ("payments", "open", "half_open"),
        ("search", "closed", "disabled"),
    }


def test_registries_are_independent(registry: CollectorRegistry) -> None:
    other = CollectorRegistry()
    PrometheusListener("payments", registry=registry)(Signal("closed", "open", T0))
    PrometheusListener("payments", registry=other)(Signal("closed", "disabled", T0))

    assert of("payments", series(registry)[1]) == {("closed", "open"): 1.0}
    assert of("payments", series(other)[1]) == {("closed", "disabled"): 1.0}


def test_default_registry(registry: CollectorRegistry, unique_name: str) -> None:
    first = PrometheusListener(unique_name)
    second = PrometheusListener(unique_name, registry=None)
    try:
        first(Signal("closed", "open", T0))
        second(Signal("open", "half_open", T0))

        gauge, counter = series()
        assert of(unique_name, gauge) == {(s,): float(s == "half_open") for s in STATES}
        assert of(unique_name, counter) == {("closed", "open"): 1.0, ("open", "half_open"): 1.0}
        assert series(registry) == ({}, {})
    finally:
        first.close()

    assert of(unique_name, series()[0]) == {}


def test_module_reload_reuses_the_metrics(
    registry: CollectorRegistry, unique_name: str
) -> None:
    before = fluxgate.listeners.prometheus.PrometheusListener(unique_name)
    before_custom = fluxgate.listeners.prometheus.PrometheusListener("a", registry=registry)

    module = importlib.reload(fluxgate.listeners.prometheus)
    after = module.PrometheusListener(unique_name)
    after_custom = module.PrometheusListener("a", registry=registry)
    try:
        for listener in (before, after):
            listener(Signal("closed", "open", T0))
        for listener in (before_custom, after_custom):
            listener(Signal("closed", "open", T0))

        assert of(unique_name, series()[1]) == {("closed", "open"): 2.0}
        assert of("a", series(registry)[1]) == {("closed", "open"): 2.0}
    finally:
        after.close()


def test_close_removes_only_this_circuit(registry: CollectorRegistry) -> None:
    payments = PrometheusListener("payments", registry=registry)
    search = PrometheusListener("search", registry=registry)
    for old, new in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]:
        payments(Signal(old, new, T0))
    search(Signal("closed", "open", T0))

    payments.close()

    gauge, counter = series(registry)
    assert of("payments", gauge) == {}
    assert of("payments", counter) == {}
    assert of("search", gauge)[("open",)] == 1.0
    assert of("search", counter) == {("closed", "open"): 1.0}
    assert 'circuit_name="payments"' not in exposition(registry)


def test_close_removes_series_written_by_another_listener_of_the_same_circuit(
    registry: CollectorRegistry,
) -> None:
    PrometheusListener("payments", registry=registry)(Signal("closed", "open", T0))

    PrometheusListener("payments", registry=registry).close()

    assert series(registry) == ({}, {})


def test_close_is_idempotent(registry: CollectorRegistry) -> None:
    listener = PrometheusListener("payments", registry=registry)
    listener.close()
    listener(Signal("closed", "open", T0))
    listener.close()
    listener.close()

    assert series(registry) == ({}, {})

    listener(Signal("open", "half_open", T0))
    gauge, counter = series(registry)
    assert gauge[("payments", "half_open")] == 1.0
    assert counter == {("payments", "open", "half_open"): 1.0}


def test_a_foreign_metric_with_the_same_name_is_reported(registry: CollectorRegistry) -> None:
    Gauge("circuit_breaker_state", "Something else", ["service"], registry=registry)

    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusListener("payments", registry=registry)


def test_is_a_listener(registry: CollectorRegistry) -> None:
    listener = PrometheusListener("payments", registry=registry)

    assert isinstance(listener, Listener)
    assert issubclass(PrometheusListener, Listener)
    assert list(inspect.signature(PrometheusListener).parameters) == ["name", "registry"]
    assert inspect.signature(PrometheusListener).parameters["registry"].default is None
    assert repr(listener).startswith("PrometheusListener(name='payments', registry=")


def test_import_without_prometheus_client_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "fluxgate.listeners.prometheus")

    with pytest.raises(ImportError, match=r"pip install fluxgate\[prometheus\]"):
        importlib.import_module("fluxgate.listeners.prometheus")
