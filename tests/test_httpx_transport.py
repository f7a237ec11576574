"""fluxgate.integrations.httpx: each request through the breaker of its host."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

from upstream import Upstream, running_upstream  # noqa: E402

from fluxgate import AsyncCircuitBreaker, BreakerRegistry, CallNotPermittedError, CircuitBreaker  # noqa: E402
from fluxgate.integrations.httpx import (  # noqa: E402
    DEFAULT_FAILURE_STATUSES,
    AsyncBreakerTransport,
    BreakerTransport,
    FailedResponse,
    RequestNotPermitted,
    host_key,
)
from fluxgate.retries import Never  # noqa: E402
from fluxgate.trackers import TypeOf  # noqa: E402
from fluxgate.trippers import FailureRate, FailureStreak, MinRequests  # noqa: E402


def opens_after_three(_key: object = None) -> CircuitBreaker:
    return CircuitBreaker(tripper=MinRequests(3) & FailureRate(0.5), retry=Never())


def async_opens_after_three(_key: object = None) -> AsyncCircuitBreaker:
    return AsyncCircuitBreaker(tripper=MinRequests(3) & FailureRate(0.5), retry=Never())


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def failing() -> Iterator[Upstream]:
    with running_upstream(503) as upstream:
        yield upstream


@pytest.fixture
def healthy() -> Iterator[Upstream]:
    with running_upstream(200) as upstream:
        yield upstream


def key_of(upstream: Upstream) -> str:
    return upstream.url.removeprefix("http://")


# ---- two hosts, one failing ------------------------------------------------------


def test_the_failing_hosts_breaker_opens_and_the_healthy_one_keeps_serving(
    failing: Upstream, healthy: Upstream
) -> None:
    transport = BreakerTransport(BreakerRegistry(opens_after_three))
    with httpx.Client(transport=transport) as client:
        for _ in range(3):
            response = client.get(failing.url + "/orders")
            assert response.status_code == 503  # a failed response still reaches the caller
            assert response.text == "status 503\n"
        for _ in range(3):
            with pytest.raises(RequestNotPermitted) as refused:
                client.get(failing.url + "/orders")
            assert isinstance(refused.value, CallNotPermittedError)
            assert isinstance(refused.value, httpx.TransportError)
            assert str(refused.value) == f"Circuit breaker is open: {key_of(failing)}"
            assert refused.value.key == key_of(failing)
            assert refused.value.request.url == failing.url + "/orders"
        for _ in range(10):
            assert client.get(healthy.url + "/orders").status_code == 200

    assert failing.requests == 3  # the refused requests were never sent
    assert healthy.requests == 10
    states = {key: breaker.info().state for key, breaker in transport.breakers.items()}
    assert states == {key_of(failing): "open", key_of(healthy): "closed"}


@pytest.mark.asyncio
async def test_async_the_failing_hosts_breaker_opens_and_the_healthy_one_keeps_serving(
    failing: Upstream, healthy: Upstream
) -> None:
    transport = AsyncBreakerTransport(async_opens_after_three)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            assert (await client.get(failing.url)).status_code == 503
        with pytest.raises(RequestNotPermitted, match="Circuit breaker is open"):
            await client.get(failing.url)
        for _ in range(5):
            assert (await client.get(healthy.url)).status_code == 200
    assert (failing.requests, healthy.requests) == (3, 5)
    assert transport.breakers[key_of(failing)].info().state == "open"
    assert transport.breakers[key_of(healthy)].info().state == "closed"


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more


def test_transport_errors_count_as_failures() -> None:
    url = f"http://127.0.0.1:{_refused_port()}/"
    transport = BreakerTransport(opens_after_three)
    with httpx.Client(transport=transport) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                client.get(url)
        with pytest.raises(RequestNotPermitted):
            client.get(url)


@pytest.mark.asyncio
async def test_async_transport_errors_count_as_failures() -> None:
    url = f"http://127.0.0.1:{_refused_port()}/"
    transport = AsyncBreakerTransport(async_opens_after_three)
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get(url)
        with pytest.raises(RequestNotPermitted):
            await client.get(url)


# ---- what counts as a failure --------------------------------------------------------


def _mock(statuses: list[int]) -> httpx.MockTransport:
    answers = iter(statuses)
    return httpx.MockTransport(lambda request: httpx.Response(next(answers), text="body"))


def test_5xx_and_429_are_failures_by_default_and_4xx_are_not() -> None:
    assert DEFAULT_FAILURE_STATUSES == frozenset([*range(500, 600), 429])
    transport = BreakerTransport(
        lambda key: CircuitBreaker(tripper=FailureStreak(1), retry=Never()),
        transport=_mock([404, 400, 200, 429]),
    )
    with httpx.Client(transport=transport) as client:
        for status in (404, 400, 200):
            assert client.get("http://api.test/").status_code == status
        assert transport.breakers["api.test:80"].info().state == "closed"
        assert transport.breakers["api.test:80"].info().metrics.failure_count == 0
        assert client.get("http://api.test/").status_code == 429
        assert transport.breakers["api.test:80"].info().state == "open"


def test_failure_statuses_are_configurable() -> None:
    transport = BreakerTransport(
        lambda key: CircuitBreaker(tripper=FailureStreak(1), retry=Never()),
        transport=_mock([503, 404]),
        failure_statuses=[404],
    )
    assert transport.failure_statuses == frozenset([404])
    with httpx.Client(transport=transport) as client:
        assert client.get("http://api.test/").status_code == 503
        assert transport.breakers["api.test:80"].info().state == "closed"
        assert client.get("http://api.test/").status_code == 404
        assert transport.breakers["api.test:80"].info().state == "open"


def test_a_custom_tracker_sees_failed_responses_and_transport_errors() -> None:
    seen: list[BaseException] = []

    def tracker(error: BaseException) -> bool:
        seen.append(error)
        return isinstance(error, httpx.TransportError)  # statuses do not count here

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(502)

    transport = BreakerTransport(
        lambda key: CircuitBreaker(tracker=tracker, tripper=FailureStreak(1), retry=Never()),
        transport=httpx.MockTransport(handler),
    )
    with httpx.Client(transport=transport) as client:
        response = client.get("http://api.test/")
        assert response.status_code == 502
        assert isinstance(seen[0], FailedResponse) and seen[0].response is response
        assert str(seen[0]) == "HTTP 502"
        assert transport.breakers["api.test:80"].info().state == "closed"
        with pytest.raises(httpx.ConnectError):
            client.get("http://api.test/down")
        assert isinstance(seen[1], httpx.ConnectError)
        assert transport.breakers["api.test:80"].info().state == "open"

    typed = BreakerTransport(
        lambda key: CircuitBreaker(tracker=TypeOf(FailedResponse), tripper=FailureStreak(1)),
        transport=_mock([500]),
    )
    with httpx.Client(transport=typed) as client:
        client.get("http://api.test/")
        assert typed.breakers["api.test:80"].info().state == "open"


# ---- keys and breakers ------------------------------------------------------------------


def test_the_default_key_is_host_and_port() -> None:
    def key(url: str) -> str:
        return host_key(httpx.Request("GET", url))

    assert key("https://api.example.com/x?y=1") == "api.example.com:443"
    assert key("http://api.example.com/") == "api.example.com:80"
    assert key("http://API.example.com:8080/") == "api.example.com:8080"
    assert key("http://[::1]:8000/") == "[::1]:8000"
    assert key("http://xn--fiqs8s.icom.museum/") == "xn--fiqs8s.icom.museum:80"
    assert key("http://中国.icom.museum/") == "xn--fiqs8s.icom.museum:80"


def test_a_custom_key_gives_one_breaker_per_tenant() -> None:
    transport = BreakerTransport(
        lambda key: CircuitBreaker(tripper=FailureStreak(1), retry=Never()),
        transport=httpx.MockTransport(
            lambda request: httpx.Response(500 if request.headers["X-Tenant"] == "a" else 200)
        ),
        key=lambda request: request.headers["X-Tenant"],
    )
    with httpx.Client(transport=transport) as client:
        client.get("http://api.test/", headers={"X-Tenant": "a"})
        with pytest.raises(RequestNotPermitted) as refused:
            client.get("http://api.test/", headers={"X-Tenant": "a"})
        assert refused.value.key == "a"
        assert client.get("http://api.test/", headers={"X-Tenant": "b"}).status_code == 200
    assert sorted(key for key, _ in transport.breakers.items()) == ["a", "b"]


def test_breakers_come_from_a_registry_a_factory_or_the_default() -> None:
    registry = BreakerRegistry(opens_after_three, max_breakers=5)
    assert BreakerTransport(registry, transport=_mock([])).breakers is registry
    made = BreakerTransport(opens_after_three, transport=_mock([])).breakers
    assert isinstance(made, BreakerRegistry)
    default = BreakerTransport(transport=_mock([200]))
    with httpx.Client(transport=default) as client:
        client.get("http://api.test/")
    assert isinstance(default.breakers["api.test:80"], CircuitBreaker)
    async_default = AsyncBreakerTransport(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert isinstance(async_default.breakers["x"], AsyncCircuitBreaker)


def test_a_breaker_of_the_wrong_kind_is_a_type_error() -> None:
    transport = BreakerTransport(lambda key: AsyncCircuitBreaker(), transport=_mock([200]))
    with httpx.Client(transport=transport) as client:
        with pytest.raises(TypeError, match="use AsyncBreakerTransport"):
            client.get("http://api.test/")


@pytest.mark.asyncio
async def test_async_a_breaker_of_the_wrong_kind_is_a_type_error() -> None:
    transport = AsyncBreakerTransport(
        lambda key: CircuitBreaker(), transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TypeError, match="use BreakerTransport"):
            await client.get("http://api.test/")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"breakers": 42}, "breakers must be a BreakerRegistry or a factory"),
        ({"transport": object()}, "transport must be an httpx.BaseTransport"),
        ({"key": "host"}, "key must be a callable"),
        ({"failure_statuses": 500}, "failure_statuses must be an iterable"),
        ({"failure_statuses": ["500"]}, "failure_statuses must hold ints"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        BreakerTransport(**arguments)  # type: ignore[arg-type]


def test_closing_the_transport_closes_the_inner_one() -> None:
    closed: list[str] = []

    class Inner(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

        def close(self) -> None:
            closed.append("inner")

    with httpx.Client(transport=BreakerTransport(transport=Inner())) as client:
        client.get("http://api.test/")
    assert closed == ["inner"]


@pytest.mark.asyncio
async def test_async_closing_the_transport_closes_the_inner_one() -> None:
    closed: list[str] = []

    class Inner(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

        async def aclose(self) -> None:
            closed.append("inner")

    async with httpx.AsyncClient(transport=AsyncBreakerTransport(transport=Inner())) as client:
        await client.get("http://api.test/")
    assert closed == ["inner"]


def test_importing_fluxgate_imports_no_integration() -> None:
    code = textwrap.dedent(
        """
        import sys
        import fluxgate
        fluxgate.BreakerRegistry
        print(sorted({"httpx", "opentelemetry", "fluxgate.integrations",
                      "fluxgate.integrations.httpx", "fluxgate.listeners.otel"} & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_import_without_httpx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "fluxgate.integrations.httpx")
    with pytest.raises(ImportError, match=r"pip install httpx"):
        importlib.import_module("fluxgate.integrations.httpx")


def test_the_default_key_tells_origins_apart_however_many_a_transport_sees() -> None:
    answered = httpx.Response(200)
    transport = BreakerTransport(transport=httpx.MockTransport(lambda request: answered))
    urls = [
        "http://a.example/", "http://a.example:8080/", "https://a.example/",
        "http://user:secret@a.example/x", "http://[::1]:8000/", "http://b.example/",
    ]
    # More origins than a transport remembers keys for, then the first ones again.
    urls += [f"http://h{i}.example/" for i in range(1100)] + urls
    for url in urls:
        request = httpx.Request("GET", url)
        transport.handle_request(request)
        assert transport.breakers.get_existing(host_key(request)) is not None
    assert {key for key, _ in transport.breakers.items()} >= {
        "a.example:80", "a.example:8080", "a.example:443", "[::1]:8000", "b.example:80",
    }
    assert len(transport.breakers) == 1105


# ---- what the breaker and the caller see, whichever way the transport does it ------


def test_the_inner_response_object_is_returned_and_only_failure_statuses_reach_the_tracker() -> (
    None
):
    seen: list[BaseException] = []
    answers = {"/ok": httpx.Response(200), "/gone": httpx.Response(404), "/busy": httpx.Response(503)}

    def tracker(error: BaseException) -> bool:
        seen.append(error)
        return True

    transport = BreakerTransport(
        lambda key: CircuitBreaker(tracker=tracker, retry=Never()),
        transport=httpx.MockTransport(lambda request: answers[request.url.path]),
    )
    for path in ("/ok", "/gone", "/busy"):
        response = transport.handle_request(httpx.Request("GET", "http://api.test" + path))
        assert response is answers[path]
    assert len(seen) == 1
    assert type(seen[0]) is FailedResponse and seen[0].response is answers["/busy"]
    metrics = transport.breakers["api.test:80"].info().metrics
    assert (metrics.total_count, metrics.failure_count) == (3, 1)


@pytest.mark.asyncio
async def test_async_a_custom_tracker_sees_failed_responses_and_the_response_is_returned() -> None:
    seen: list[BaseException] = []
    answers = {"/ok": httpx.Response(200), "/gone": httpx.Response(404), "/busy": httpx.Response(503)}

    def tracker(error: BaseException) -> bool:
        seen.append(error)
        return True

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return answers[request.url.path]

    transport = AsyncBreakerTransport(
        lambda key: AsyncCircuitBreaker(tracker=tracker, retry=Never()),
        transport=httpx.MockTransport(answer),
    )
    for path in ("/ok", "/gone", "/busy"):
        response = await transport.handle_async_request(
            httpx.Request("GET", "http://api.test" + path)
        )
        assert response is answers[path]
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(httpx.Request("GET", "http://api.test/down"))
    assert [type(error) for error in seen] == [FailedResponse, httpx.ConnectError]
    assert seen[0].response is answers["/busy"]  # type: ignore[attr-defined]
    metrics = transport.breakers["api.test:80"].info().metrics
    assert (metrics.total_count, metrics.failure_count) == (4, 2)


def test_the_inner_transport_is_used_as_it_is_at_each_request() -> None:
    class Inner(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    inner = Inner()
    transport = BreakerTransport(
        lambda key: CircuitBreaker(tripper=FailureStreak(1), retry=Never()), transport=inner
    )
    request = httpx.Request("GET", "http://api.test/")
    assert transport.handle_request(request).status_code == 200
    # A method replaced after the transport was made (as a mocking library
    # patches a class) is the one called.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Inner, "handle_request", lambda self, request: httpx.Response(201))
        assert transport.handle_request(request).status_code == 201
    assert transport.handle_request(request).status_code == 200
    # So is an inner transport assigned later, failure statuses included.
    transport.transport = _mock([502])
    assert transport.handle_request(request).status_code == 502
    assert transport.breakers["api.test:80"].info().state == "open"


def test_the_default_key_tells_schemes_and_ports_of_one_host_apart() -> None:
    transport = BreakerTransport(
        transport=httpx.MockTransport(lambda request: httpx.Response(200))
    )
    urls = ["http://a.example/", "https://a.example/", "http://a.example:8080/"]
    # More ports of one host than a transport remembers, then the first ones again.
    urls += [f"http://a.example:{port}/" for port in range(9000, 9020)] + urls
    for url in urls * 2:
        request = httpx.Request("GET", url)
        before = transport.breakers[host_key(request)].info().metrics.total_count
        transport.handle_request(request)
        assert transport.breakers[host_key(request)].info().metrics.total_count == before + 1
    assert len(transport.breakers) == 23


@pytest.mark.asyncio
async def test_async_a_breaker_made_again_for_a_key_is_the_one_used() -> None:
    made: list[AsyncCircuitBreaker] = []

    def factory(key: object) -> AsyncCircuitBreaker:
        made.append(AsyncCircuitBreaker())
        return made[-1]

    # A bound of one: the breaker of a.example goes when b.example comes.
    transport = AsyncBreakerTransport(
        BreakerRegistry(factory, max_breakers=1, idle_after=0.0),
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
    )
    for url in ("http://a.example/", "http://b.example/", "http://a.example/"):
        await transport.handle_async_request(httpx.Request("GET", url))
    assert [breaker.info().metrics.total_count for breaker in made] == [1, 1, 1]
    assert transport.breakers.get_existing("a.example:80") is made[2]


@pytest.mark.asyncio
async def test_async_a_subclass_call_is_used() -> None:
    calls: list[object] = []

    class Counting(AsyncCircuitBreaker):
        async def call(self, func, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            calls.append(args)
            return await super().call(func, *args, **kwargs)

    transport = AsyncBreakerTransport(
        lambda key: Counting(),
        transport=httpx.MockTransport(lambda request: httpx.Response(503)),
    )
    request = httpx.Request("GET", "http://api.test/")
    assert (await transport.handle_async_request(request)).status_code == 503
    assert calls == [(request,)]
    assert transport.breakers["api.test:80"].info().metrics.failure_count == 1


# ---- the request path ----------------------------------------------------------------


def test_requests_mark_their_breaker_used_so_a_sweep_keeps_it() -> None:
    from freezegun import freeze_time

    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=2, idle_after=60)
    transport = BreakerTransport(registry, transport=_mock([200] * 4))
    with freeze_time("2026-01-01 00:00:00") as frozen:
        transport.handle_request(httpx.Request("GET", "http://a.example/"))
        transport.handle_request(httpx.Request("GET", "http://b.example/"))
        kept = registry.get_existing("a.example:80")
        frozen.tick(61)  # both idle now
        transport.handle_request(httpx.Request("GET", "http://a.example/"))
        registry["c"]  # one has to go: b.example's, the idle one
    assert sorted(key for key, _ in registry.items()) == ["a.example:80", "c"]
    assert registry.get_existing("a.example:80") is kept
    assert kept is not None and kept.info().metrics.total_count == 2


def test_a_new_key_is_made_once_and_its_breaker_used_by_every_request() -> None:
    made: list[object] = []

    def factory(key: object) -> CircuitBreaker:
        made.append(key)
        return CircuitBreaker()

    transport = BreakerTransport(factory, transport=_mock([200] * 6))
    for url in ("http://a.example/", "https://a.example/", "http://a.example/") * 2:
        transport.handle_request(httpx.Request("GET", url))
    assert made == ["a.example:80", "a.example:443"]
    counts = {key: breaker.info().metrics.total_count for key, breaker in transport.breakers.items()}
    assert counts == {"a.example:80": 4, "a.example:443": 2}


def test_a_subclass_overriding_handle_request_can_call_super() -> None:
    seen: list[str] = []

    class Logging(BreakerTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            response = super().handle_request(request)
            seen.append(str(response.status_code))
            return response

    transport = Logging(opens_after_three, transport=_mock([503, 503, 503]))
    with httpx.Client(transport=transport) as client:
        for _ in range(3):
            assert client.get("http://api.test/x").status_code == 503
        with pytest.raises(RequestNotPermitted) as refused:
            client.get("http://api.test/x")
    assert refused.value.key == "api.test:80"
    assert seen == ["http://api.test/x", "503"] * 3 + ["http://api.test/x"]
    assert transport.breakers["api.test:80"].info().state == "open"


def test_a_subclass_of_circuit_breaker_has_its_own_call_used() -> None:
    calls: list[object] = []

    class Counting(CircuitBreaker):
        def call(self, func, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            calls.append(args)
            return super().call(func, *args, **kwargs)

    transport = BreakerTransport(lambda key: Counting(), transport=_mock([503, 200]))
    request = httpx.Request("GET", "http://api.test/")
    assert transport.handle_request(request).status_code == 503
    assert transport.handle_request(request).status_code == 200
    assert calls == [(request,), (request,)]
    metrics = transport.breakers["api.test:80"].info().metrics
    assert (metrics.total_count, metrics.failure_count) == (2, 1)


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (lambda: object(), r"needs a CircuitBreaker for 'api.test:80', got object \(use"),
        (lambda: AsyncCircuitBreaker(), "got AsyncCircuitBreaker"),
        (lambda: CircuitBreaker.__new__(CircuitBreaker), "not initialised"),
    ],
)
def test_a_factory_giving_no_usable_circuit_breaker_is_a_type_error(
    made: Any, message: str
) -> None:
    sent: list[object] = []
    inner = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    transport = BreakerTransport(lambda key: made(), transport=inner)
    with pytest.raises(TypeError, match=message):
        transport.handle_request(httpx.Request("GET", "http://api.test/"))
    assert sent == []


def test_a_refusal_names_the_key_and_hides_the_breakers_error() -> None:
    transport = BreakerTransport(opens_after_three, transport=_mock([500] * 3))
    request = httpx.Request("GET", "http://api.test/")
    for _ in range(3):
        transport.handle_request(request)
    with pytest.raises(RequestNotPermitted) as refused:
        transport.handle_request(request)
    error = refused.value
    assert (error.key, error.request, str(error)) == (
        "api.test:80",
        request,
        "Circuit breaker is open: api.test:80",
    )
    # as `raise ... from None` in an except clause
    assert error.__cause__ is None and error.__suppress_context__
    assert type(error.__context__) is CallNotPermittedError


def test_a_refusal_by_an_inner_breaker_transport_is_raised_as_it_is() -> None:
    inner = BreakerTransport(opens_after_three, transport=_mock([500] * 3))
    outer = BreakerTransport(key=lambda request: "outer", transport=inner)
    request = httpx.Request("GET", "http://api.test/")
    for _ in range(3):
        assert outer.handle_request(request).status_code == 500
    with pytest.raises(RequestNotPermitted) as refused:
        outer.handle_request(request)
    assert refused.value.key == "api.test:80"  # the inner transport's key
    assert str(refused.value) == "Circuit breaker is open: api.test:80"
    # The outer breaker counted the inner refusal as a failure of its own call.
    assert outer.breakers["outer"].info().metrics.failure_count == 4


def test_a_custom_key_that_raises_sends_nothing() -> None:
    def key(request: httpx.Request) -> str:
        raise LookupError("no tenant")

    transport = BreakerTransport(key=key, transport=_mock([]))
    with pytest.raises(LookupError, match="no tenant"):
        transport.handle_request(httpx.Request("GET", "http://api.test/"))
    assert len(transport.breakers) == 0


def test_a_transport_not_initialised_is_a_type_error_not_a_crash() -> None:
    class Lazy(BreakerTransport):
        def __init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="not initialised"):
        Lazy().handle_request(httpx.Request("GET", "http://api.test/"))
    transport = BreakerTransport(transport=_mock([]))
    with pytest.raises(TypeError, match="already initialised"):
        transport.__init__()  # type: ignore[misc]


def test_a_transport_in_a_reference_cycle_is_collected() -> None:
    import gc
    import weakref

    transport = BreakerTransport(transport=_mock([200]))
    transport.handle_request(httpx.Request("GET", "http://api.test/"))
    transport.itself = transport  # type: ignore[attr-defined]
    gone = weakref.ref(transport)
    del transport
    gc.collect()
    assert gone() is None


def test_a_registry_and_an_httpx_transport_while_keys_come_and_go() -> None:
    """Lookups and requests (no lock: a dict lookup and the entry's touched
    flag, in C) while new keys sweep the registry and the transport's inner
    transport is replaced: every request answered, the bound kept. (Not in
    the ThreadSanitizer subset: it reports CPython's own publication of a
    key stored by one thread to another's lock-free dict lookup, inside
    CPython's dict code: the lookup dict.get does from Python too.)"""
    import threading

    from conftest import run_threads

    threads, calls = 4, 300

    # A bound of 4 with idle_after=0: each new key sweeps the registry.
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=4, idle_after=0)
    transport = BreakerTransport(
        registry, transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    urls = [f"http://host-{number}.example/" for number in range(3)]
    answered: list[int] = []
    looked_up: list[bool] = []
    lock = threading.Lock()

    def send() -> None:
        statuses = [
            transport.handle_request(httpx.Request("GET", urls[i % len(urls)])).status_code
            for i in range(calls)
        ]
        found = [
            type(registry[f"host-{i % 3}.example:80"]) is CircuitBreaker
            for i in range(calls)
        ]
        with lock:
            answered.extend(statuses)
            looked_up.extend(found)

    def churn() -> None:
        for number in range(calls):
            registry.get(f"new-{number}")
            if number % 50 == 0:
                transport.transport = httpx.MockTransport(lambda r: httpx.Response(200))

    run_threads([send] * (threads - 1) + [churn])
    assert answered == [200] * (calls * (threads - 1))
    assert looked_up == [True] * (calls * (threads - 1))
    assert len(registry) <= 4 + len(urls)
