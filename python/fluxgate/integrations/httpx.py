"""httpx transports that put each request through the breaker of its host.

``BreakerTransport`` (for ``httpx.Client``) and ``AsyncBreakerTransport``
(for ``httpx.AsyncClient``) wrap any inner transport (default
``httpx.HTTPTransport()`` / ``httpx.AsyncHTTPTransport()``). Each request
goes through the breaker of its key, by default the URL's host and port
(``"api.example.com:443"``), taken from a ``BreakerRegistry`` or made by a
factory. A response whose status is a failure status (by default every 5xx
and 429) counts as a failure as a transport error does, and is still
returned to the caller. A request the breaker refuses raises
``RequestNotPermitted``, which is both a ``CallNotPermittedError`` and an
``httpx.TransportError``.

``BreakerTransport``'s ``handle_request`` is written in C (inherited from the
native core's ``_TransportBase``), as is its send step: a request costs the
breaker's own call plus the lookups of its key and breaker, and runs no
Python frame of this module unless its origin is new (its key is then made
here) or the breaker refuses it.

Needs httpx: ``pip install httpx`` (the ``slack`` extra includes it).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

try:
    import httpx
except ImportError as error:
    raise ImportError(
        "fluxgate.integrations.httpx requires httpx; install it with `pip install httpx` "
        "(or `pip install fluxgate[slack]`)"
    ) from error

from fluxgate._async import AsyncCircuitBreaker, _guarded
from fluxgate._fluxgate import CircuitBreaker, _origin_key, _StatusCheck, _TransportBase
from fluxgate.errors import CallNotPermittedError
from fluxgate.registry import BreakerRegistry

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "AsyncBreakerTransport",
    "BreakerTransport",
    "FailedResponse",
    "RequestNotPermitted",
    "host_key",
]

#: Every 5xx status and 429 (Too Many Requests): the upstream is failing or
#: asks to be left alone.
DEFAULT_FAILURE_STATUSES: frozenset[int] = frozenset(range(500, 600)) | {429}

_DEFAULT_PORTS = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443", "ftp": ":21"}


class FailedResponse(Exception):
    """Raised inside the protected call for a response with a failure status,
    so that the breaker's tracker sees it; the transport catches it and
    returns ``response`` to the caller. A custom tracker sees this exception
    for failure statuses and whatever the inner transport raises (usually an
    ``httpx.TransportError``) for requests that got no response."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class RequestNotPermitted(CallNotPermittedError, httpx.TransportError):
    """The breaker of the request's key refused it; nothing was sent.

    A ``CallNotPermittedError`` (as every refusal of a breaker) and an
    ``httpx.TransportError``, so that code written for httpx, which handles a
    request that could not be sent with ``except httpx.TransportError`` (or
    ``httpx.RequestError``), handles it too. ``request`` is the refused
    request and ``key`` its breaker's key; the message is the breaker's,
    followed by the key."""

    def __init__(self, message: str, *, request: httpx.Request, key: Hashable) -> None:
        httpx.TransportError.__init__(self, message, request=request)
        self.key = key


def host_key(request: httpx.Request) -> str:
    """The default key: the request URL's host and port, as ``"host:port"``
    (``"[::1]:8000"`` for an IPv6 address; an internationalised host in its
    ASCII ``xn--`` form); the scheme's default port when the URL names none."""
    url = request.url
    # httpx's parsed URL, when this version of httpx has it, spares the
    # properties' work; otherwise the same values from the public API.
    try:
        parts = url._uri_reference
        host, port, scheme = parts.host, parts.port, parts.scheme
    except AttributeError:  # pragma: no cover - other httpx versions
        host, port, scheme = url.raw_host.decode("ascii"), url.port, url.scheme
    if ":" in host:
        host = f"[{host}]"
    if port is None:
        return host + _DEFAULT_PORTS.get(scheme, "")
    return f"{host}:{port}"


def _statuses(failure_statuses: Iterable[int]) -> frozenset[int]:
    if isinstance(failure_statuses, (str, bytes)) or not isinstance(failure_statuses, Iterable):
        raise TypeError(
            "failure_statuses must be an iterable of status codes, "
            f"not {type(failure_statuses).__name__}"
        )
    statuses = frozenset(failure_statuses)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(
                f"failure_statuses must hold ints, not {type(status).__name__} ({status!r})"
            )
    return statuses


def _registry(breakers: Any, kind: type, default: Callable[[Any], Any]) -> BreakerRegistry[Any, Any]:
    if breakers is None:
        return BreakerRegistry(default)
    if isinstance(breakers, BreakerRegistry):
        return breakers
    if callable(breakers):
        return BreakerRegistry(breakers)
    raise TypeError(
        f"breakers must be a BreakerRegistry or a factory returning a {kind.__name__}, "
        f"not {type(breakers).__name__}"
    )


def _check_key(key: Any) -> Callable[[httpx.Request], Hashable]:
    if not callable(key):
        raise TypeError(f"key must be a callable taking the request, not {type(key).__name__}")
    return key  # type: ignore[no-any-return]


# The hosts a transport remembers the default key of, and the origins
# (scheme and port) per host; past that it starts again (a client rarely
# talks to more hosts than this).
_REMEMBERED_HOSTS = 1024
_ORIGINS_PER_HOST = 8


def _origin_keys(key: Callable[[httpx.Request], Hashable]) -> dict[Any, Any] | None:
    """For the default key, the dict in which a transport remembers the key
    of each origin it has seen, so that a request costs a lookup in C
    (``_origin_key``) rather than formatting the key again; None for any
    other key. It maps a host to a tuple of ``(scheme, port, key)``."""
    return {} if key is host_key else None


def _new_origin_key(keys: dict[Any, Any], request: httpx.Request) -> Hashable:
    """The default key of a request whose origin ``keys`` does not hold yet
    (``_origin_key`` gave None), remembered in ``keys``."""
    key = host_key(request)
    try:
        parts = request.url._uri_reference
        scheme, host, port = parts[0], parts[2], parts[3]  # read as _origin_key does
    except (AttributeError, IndexError):  # pragma: no cover - other httpx versions
        return key
    known = keys.get(host, ())
    if len(known) >= _ORIGINS_PER_HOST:
        known = ()
    elif not known and len(keys) >= _REMEMBERED_HOSTS:
        keys.clear()
    keys[host] = (*known, (scheme, port, key))
    return key


def _refusal(
    refused: CallNotPermittedError, request: httpx.Request, key: Hashable
) -> BaseException:
    """The exception a refused request raises (``_TransportBase`` raises
    what this returns): ``RequestNotPermitted`` naming the key, as ``raise
    RequestNotPermitted(...) from None`` in ``except CallNotPermittedError``
    would make it, or ``refused`` itself when a breaker of an inner transport
    refused the request already."""
    if isinstance(refused, RequestNotPermitted):
        return refused
    error = RequestNotPermitted(f"{refused}: {key}", request=request, key=key)
    error.__context__ = refused
    error.__cause__ = None
    error.__suppress_context__ = True
    return error


class BreakerTransport(_TransportBase, httpx.BaseTransport):
    """A transport for ``httpx.Client`` guarding each key with a breaker.

    ``breakers``: a ``BreakerRegistry`` of ``CircuitBreaker`` s, or a factory
    ``key -> CircuitBreaker`` (put in a ``BreakerRegistry`` with its default
    bound); default: a registry of ``CircuitBreaker()`` s. ``transport``: the
    inner transport that sends the requests (default
    ``httpx.HTTPTransport()``); closing this transport closes it. ``key``:
    the request's key (default ``host_key``). ``failure_statuses``: the
    response statuses counted as failures (default
    ``DEFAULT_FAILURE_STATUSES``).

    Each request runs as one protected call of its key's breaker: the inner
    transport's exceptions and ``FailedResponse`` (for a failure status) are
    what the breaker's tracker sees. A failed response is still returned; a
    refused request raises ``RequestNotPermitted``. The duration recorded is
    the time to the response's headers (the body is read by the caller,
    after the call).
    """

    def __init__(
        self,
        breakers: BreakerRegistry[Any, CircuitBreaker] | Callable[[Any], CircuitBreaker] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        key: Callable[[httpx.Request], Hashable] = host_key,
        failure_statuses: Iterable[int] = DEFAULT_FAILURE_STATUSES,
    ) -> None:
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError(
                f"transport must be an httpx.BaseTransport, not {type(transport).__name__}"
            )
        self.breakers: BreakerRegistry[Any, CircuitBreaker] = _registry(
            breakers, CircuitBreaker, lambda _key: CircuitBreaker()
        )
        self._key = _check_key(key)
        self._origin_keys = _origin_keys(key)
        self._failure_statuses = _statuses(failure_statuses)
        self._bind(
            self.breakers, self._key, self._origin_keys, FailedResponse, _refusal, _new_origin_key
        )
        self.transport = httpx.HTTPTransport() if transport is None else transport

    @property
    def transport(self) -> httpx.BaseTransport:
        """The inner transport that sends the requests."""
        return self._transport

    @transport.setter
    def transport(self, transport: httpx.BaseTransport) -> None:
        self._transport = transport
        # The protected call: transport.handle_request(request), raising
        # FailedResponse for a failure status; in C, so that a request runs
        # no Python frame of this module inside the breaker's call. A
        # request reads it from _TransportBase, so that a new inner
        # transport is used from the next request on.
        self._protected_send = _StatusCheck(
            transport, "handle_request", self._failure_statuses, FailedResponse
        )

    @property
    def failure_statuses(self) -> frozenset[int]:
        """The response statuses counted as failures."""
        return self._failure_statuses

    # handle_request(request) is _TransportBase's, in C: the request's key
    # (the default key remembered per origin, see _origin_keys), its breaker
    # (the registry's entry, marked as used; registry[key] for a new key),
    # then breaker.call(self._protected_send, request) (for a CircuitBreaker
    # run directly, without the method call; a subclass's own call() is
    # called), returning the response of a FailedResponse and raising
    # _refusal(...) for a refusal. It runs no Python frame of this module
    # unless the key is new or the request is refused.
    if TYPE_CHECKING:

        def handle_request(self, request: httpx.Request) -> httpx.Response: ...

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.breakers!r}, transport={self.transport!r})"


class AsyncBreakerTransport(httpx.AsyncBaseTransport):
    """A transport for ``httpx.AsyncClient`` guarding each key with an
    ``AsyncCircuitBreaker``; otherwise as ``BreakerTransport`` (default inner
    transport ``httpx.AsyncHTTPTransport()``, default breakers
    ``AsyncCircuitBreaker()``). Cancelling a request cancels its protected
    call, which is not recorded."""

    def __init__(
        self,
        breakers: BreakerRegistry[Any, AsyncCircuitBreaker]
        | Callable[[Any], AsyncCircuitBreaker]
        | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        key: Callable[[httpx.Request], Hashable] = host_key,
        failure_statuses: Iterable[int] = DEFAULT_FAILURE_STATUSES,
    ) -> None:
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError(
                f"transport must be an httpx.AsyncBaseTransport, not {type(transport).__name__}"
            )
        self.breakers: BreakerRegistry[Any, AsyncCircuitBreaker] = _registry(
            breakers, AsyncCircuitBreaker, lambda _key: AsyncCircuitBreaker()
        )
        self._entries = self.breakers._entries
        self.transport = httpx.AsyncHTTPTransport() if transport is None else transport
        self._key = _check_key(key)
        self._origin_keys = _origin_keys(key)
        self._failure_statuses = _statuses(failure_statuses)
        self._protected_send = self._send  # bound once, not per request
        # Per key: its breaker and the protected send made for it.
        self._protected: dict[Hashable, tuple[AsyncCircuitBreaker, Callable[..., Any]]] = {}

    @property
    def failure_statuses(self) -> frozenset[int]:
        """The response statuses counted as failures."""
        return self._failure_statuses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        keys = self._origin_keys
        if keys is None:
            key = self._key(request)
        else:  # host_key(request), remembered per origin
            key = _origin_key(keys, request)
            if key is None:
                key = _new_origin_key(keys, request)
        entry = self._entries.get(key)
        if entry is not None:  # registry[key], without the method call
            entry.touched = True
            breaker = entry.breaker
        else:
            breaker = self.breakers[key]
        if type(breaker) is AsyncCircuitBreaker:
            # breaker.call(send, request) is await breaker(send)(request): the
            # protected send is made once per breaker, not per request.
            made = self._protected.get(key)
            if made is None or made[0] is not breaker:
                made = self._protect(key, breaker)
            protected = made[1]
        elif isinstance(breaker, AsyncCircuitBreaker):  # a subclass: its own call()
            call: Any = breaker.call
            protected = functools.partial(call, self._protected_send)
        else:
            raise TypeError(
                f"AsyncBreakerTransport needs an AsyncCircuitBreaker for {key!r}, got "
                f"{type(breaker).__name__} (use BreakerTransport with CircuitBreaker)"
            )
        try:
            response: httpx.Response = await protected(request)
            return response
        except FailedResponse as failed:
            return failed.response
        except CallNotPermittedError as refused:
            if isinstance(refused, RequestNotPermitted):
                raise
            raise RequestNotPermitted(f"{refused}: {key}", request=request, key=key) from None

    def _protect(
        self, key: Hashable, breaker: AsyncCircuitBreaker
    ) -> tuple[AsyncCircuitBreaker, Callable[[httpx.Request], Awaitable[httpx.Response]]]:
        """The protected send of ``breaker``, remembered for ``key`` (as many
        keys as the default key remembers hosts; past that it starts again)."""
        protected = self._protected
        if len(protected) >= _REMEMBERED_HOSTS:
            protected.clear()
        made = protected[key] = (breaker, _guarded(breaker, self._protected_send))
        return made

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.transport.handle_async_request(request)
        if response.status_code in self._failure_statuses:
            raise FailedResponse(response)
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.breakers!r}, transport={self.transport!r})"
