"""What the httpx transport and the breaker registry cost.

Prints figures; asserts nothing (these machines are noisy: compare the
ratios, and rerun). Needs httpx. Run from an environment where fluxgate is
installed:

    python benchmarks/httpx_transport.py

Measured, best of 7 repeats in one process:

- a GET through ``httpx.Client`` to a local HTTP/1.1 server on 127.0.0.1
  (keep-alive), with ``BreakerTransport`` around ``httpx.HTTPTransport``
  against the bare ``httpx.HTTPTransport``;
- the same with ``httpx.MockTransport`` as the inner transport (no network),
  where the transport's own cost is not hidden by the socket's;
- ``transport.handle_request(request)`` straight, with a ``MockTransport``
  inside, against the ``MockTransport`` alone, and the breaker's own
  ``cb.call`` of the same function, for what the transport adds on top;
- the same for ``AsyncBreakerTransport.handle_async_request`` in an event
  loop (each figure is one awaited request of a loop of them);
- ``registry[key]`` for an existing key against ``d[key]`` on a plain dict
  of the same 1,000 breakers, and ``registry.get(key)``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from fluxgate import AsyncCircuitBreaker, BreakerRegistry, CircuitBreaker
from fluxgate.integrations.httpx import AsyncBreakerTransport, BreakerTransport

REPEAT = 7


def best_ns(stmt: str, namespace: dict[str, object], number: int) -> float:
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=REPEAT, number=number)) / number * 1e9


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one write per response: no delayed-ACK stalls

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def through_clients(url: str, inner: Any, number: int) -> tuple[float, float]:
    bare = httpx.Client(transport=inner(), trust_env=False)
    guarded = httpx.Client(transport=BreakerTransport(transport=inner()), trust_env=False)
    with bare, guarded:
        namespace = {"bare": bare, "guarded": guarded, "url": url}
        return (
            best_ns("bare.get(url)", namespace, number),
            best_ns("guarded.get(url)", namespace, number),
        )


def handle_request() -> tuple[float, float, float]:
    response = httpx.Response(200)
    mock = httpx.MockTransport(lambda request: response)
    transport = BreakerTransport(transport=httpx.MockTransport(lambda request: response))
    request = httpx.Request("GET", "http://api.test/")
    cb = CircuitBreaker()
    namespace = {"mock": mock, "transport": transport, "request": request, "cb": cb}
    return (
        best_ns("mock.handle_request(request)", namespace, 200_000),
        best_ns("cb.call(mock.handle_request, request)", namespace, 200_000),
        best_ns("transport.handle_request(request)", namespace, 200_000),
    )


def handle_async_request() -> tuple[float, float, float]:
    response = httpx.Response(200)

    async def answer(request: httpx.Request) -> httpx.Response:
        return response

    mock = httpx.MockTransport(answer)
    transport = AsyncBreakerTransport(transport=httpx.MockTransport(answer))
    request = httpx.Request("GET", "http://api.test/")
    cb = AsyncCircuitBreaker()
    number = 100_000

    async def mock_alone() -> None:
        for _ in range(number):
            await mock.handle_async_request(request)

    async def breaker_call() -> None:
        for _ in range(number):
            await cb.call(mock.handle_async_request, request)

    async def through_transport() -> None:
        for _ in range(number):
            await transport.handle_async_request(request)

    async def best(loop: Any) -> float:
        times = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            await loop()
            times.append(time.perf_counter() - start)
        return min(times) / number * 1e9

    async def measure() -> tuple[float, float, float]:
        return (await best(mock_alone), await best(breaker_call), await best(through_transport))

    return asyncio.run(measure())


def registry_lookup() -> tuple[float, float, float]:
    registry = BreakerRegistry(lambda key: CircuitBreaker(), max_breakers=1000)
    plain = {}
    for number in range(1000):
        key = f"host-{number}.example:443"
        plain[key] = registry[key]
    key = "host-500.example:443"
    namespace = {"registry": registry, "plain": plain, "key": key}
    return (
        best_ns("plain[key]", namespace, 1_000_000),
        best_ns("registry[key]", namespace, 1_000_000),
        best_ns("registry.get(key)", namespace, 1_000_000),
    )


def main() -> None:
    with local_server() as url:
        bare, guarded = through_clients(url, httpx.HTTPTransport, 2_000)
    print("GET through httpx.Client to a local server (keep-alive):")
    print(f"  bare HTTPTransport              {bare / 1000:9.1f} us")
    print(f"  BreakerTransport(HTTPTransport) {guarded / 1000:9.1f} us  ({guarded - bare:+,.0f} ns)")

    response_url = "http://api.test/"
    bare, guarded = through_clients(
        response_url,
        lambda: httpx.MockTransport(lambda request: httpx.Response(200)),
        10_000,
    )
    print("GET through httpx.Client, MockTransport inside (no network):")
    print(f"  bare MockTransport              {bare / 1000:9.1f} us")
    print(f"  BreakerTransport(MockTransport) {guarded / 1000:9.1f} us  ({guarded - bare:+,.0f} ns)")

    mock, call, transport = handle_request()
    print("handle_request(request), MockTransport inside:")
    print(f"  MockTransport alone             {mock:9.0f} ns")
    print(f"  cb.call(mock.handle_request, r) {call:9.0f} ns  (the breaker: {call - mock:+,.0f} ns)")
    print(f"  BreakerTransport                {transport:9.0f} ns  (the transport: {transport - call:+,.0f} ns over cb.call)")

    mock, call, transport = handle_async_request()
    print("handle_async_request(request), MockTransport inside:")
    print(f"  MockTransport alone             {mock:9.0f} ns")
    print("  await cb.call(mock.handle_async_request, r)")
    print(f"                                  {call:9.0f} ns  (the breaker: {call - mock:+,.0f} ns)")
    print(f"  AsyncBreakerTransport           {transport:9.0f} ns  (the transport: {transport - call:+,.0f} ns over cb.call)")

    plain, item, get = registry_lookup()
    print("lookup of an existing key among 1,000:")
    print(f"  dict[key]                       {plain:9.0f} ns")
    print(f"  registry[key]                   {item:9.0f} ns  ({item - plain:+,.0f} ns)")
    print(f"  registry.get(key)               {get:9.0f} ns  ({get - plain:+,.0f} ns)")


if __name__ == "__main__":
    main()
