"""The registry, the httpx transports and the OpenTelemetry listener under
mypy --strict: a realistic program passes, and misuse is reported."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import TypeCheck

PROGRAM = '''
import httpx

from fluxgate import AsyncCircuitBreaker, BreakerRegistry, CircuitBreaker
from fluxgate.integrations.httpx import (
    DEFAULT_FAILURE_STATUSES, AsyncBreakerTransport, BreakerTransport, FailedResponse,
    RequestNotPermitted, host_key,
)
from fluxgate.listeners.otel import OTelListener
from fluxgate.trackers import TypeOf


def per_host(host: str) -> CircuitBreaker:
    return CircuitBreaker(
        tracker=TypeOf(httpx.TransportError, FailedResponse), listeners=[OTelListener(host)]
    )


registry = BreakerRegistry(per_host, max_breakers=1000, idle_after=300.0)
breaker: CircuitBreaker = registry["api.example:443"]
maybe: CircuitBreaker | None = registry.get_existing("api.example:443")
pairs: list[tuple[str, CircuitBreaker]] = registry.items()
tenants: BreakerRegistry[int, AsyncCircuitBreaker] = BreakerRegistry(
    lambda tenant: AsyncCircuitBreaker()
)
statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES | {408}
client = httpx.Client(
    transport=BreakerTransport(registry, key=host_key, failure_statuses=statuses)
)
async_client = httpx.AsyncClient(
    transport=AsyncBreakerTransport(tenants, key=lambda request: int(request.headers["X-Tenant"]))
)
try:
    client.get("https://api.example/")
except RequestNotPermitted as refused:
    print(refused.key, refused.request.url)
'''

MISUSE = '''
from fluxgate import BreakerRegistry, CircuitBreaker
from fluxgate.integrations.httpx import BreakerTransport
from fluxgate.listeners.otel import OTelListener

def per_host(host: str) -> CircuitBreaker:
    return CircuitBreaker()

registry = BreakerRegistry(per_host)
registry[42]
BreakerRegistry(per_host, max_breakers="10")
OTelListener(42)
'''


def test_a_realistic_program_type_checks(mypy_strict: Callable[[str], TypeCheck]) -> None:
    pytest.importorskip("httpx")
    pytest.importorskip("opentelemetry.metrics")
    result = mypy_strict(PROGRAM)
    assert result.status == 0, result.output


def test_misuse_is_reported(mypy_strict: Callable[[str], TypeCheck]) -> None:
    pytest.importorskip("httpx")
    pytest.importorskip("opentelemetry.metrics")
    result = mypy_strict(MISUSE)
    assert result.error_lines == [10, 11, 12], result.output
