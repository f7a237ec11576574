"""The httpx transport's send step and key lookup in the native core:
``_StatusCheck`` and ``_origin_key`` (private; the transport's own tests show
what users see)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest

from fluxgate import CircuitBreaker
from fluxgate._fluxgate import _origin_key, _StatusCheck
from fluxgate.trackers import Custom


class Response:
    def __init__(self, status_code: object) -> None:
        self.status_code = status_code


class Failed(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response)
        self.response = response


class Sender:
    def __init__(self, status: object = 200) -> None:
        self.status = status
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []

    def send(self, *args: object, **kwargs: object) -> Response:
        self.calls.append((args, kwargs))
        return Response(self.status)


def check(sender: object, statuses: frozenset[int] = frozenset({500, 503})) -> _StatusCheck:
    return _StatusCheck(sender, "send", statuses, Failed)


def test_a_response_with_another_status_is_returned() -> None:
    sender = Sender(200)
    response = check(sender)("request")
    assert isinstance(response, Response) and response.status_code == 200
    assert sender.calls == [(("request",), {})]


def test_a_failure_status_raises_the_exception_with_the_response() -> None:
    sender = Sender(503)
    with pytest.raises(Failed) as failed:
        check(sender)("request")
    assert failed.value.response.status_code == 503
    assert sender.calls == [(("request",), {})]


def test_arguments_of_every_shape_reach_the_method() -> None:
    sender = Sender()
    send = check(sender)
    send()
    send(1, 2, key="value")
    many = tuple(range(12))
    send(*many)  # more than fit on the stack
    send(*many, **{f"k{i}": i for i in range(12)})
    assert sender.calls == [
        ((), {}),
        ((1, 2), {"key": "value"}),
        (many, {}),
        (many, {f"k{i}": i for i in range(12)}),
    ]


def test_a_failure_status_reaches_the_breakers_tracker() -> None:
    seen: list[BaseException] = []
    breaker = CircuitBreaker(tracker=Custom(lambda error: seen.append(error) or True))
    with pytest.raises(Failed):
        breaker.call(check(Sender(500)), "request")
    assert [type(error) for error in seen] == [Failed]
    assert breaker.call(check(Sender(200)), "request").status_code == 200
    assert breaker.info().metrics.failure_count == 1
    assert breaker.info().metrics.total_count == 2


def test_the_method_is_looked_up_at_each_call() -> None:
    sender = Sender(200)
    send = check(sender)
    sender.send = lambda request: Response(500)  # type: ignore[method-assign]
    with pytest.raises(Failed):
        send("request")


def test_errors_of_the_parts_propagate() -> None:
    class Broken:
        def send(self, request: object) -> object:
            raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        check(Broken())("request")
    with pytest.raises(AttributeError, match="send"):
        check(object())("request")
    with pytest.raises(AttributeError, match="status_code"):
        _StatusCheck(Sender(), "__repr__", frozenset(), Failed)()
    with pytest.raises(TypeError, match="unhashable"):
        check(Sender([500]))("request")

    class Refuses(Exception):
        def __init__(self, response: object) -> None:
            raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        _StatusCheck(Sender(500), "send", frozenset({500}), Refuses)("request")

    class NotAnException(Exception):
        def __new__(cls, response: object) -> Any:
            return 42

    with pytest.raises(TypeError, match="should have returned an exception, not int"):
        _StatusCheck(Sender(500), "send", frozenset({500}), NotAnException)("request")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((Sender(), 1, frozenset(), Failed), "name must be a str, not int"),
        ((Sender(), "send", {500}, Failed), "statuses must be a frozenset, not set"),
        ((Sender(), "send", frozenset(), 3), "exception must be an exception class, not int"),
        ((Sender(), "send", frozenset(), int), "exception must be an exception class, not type"),
        ((Sender(), "send", frozenset()), "missing required argument 'exception'"),
    ],
)
def test_bad_arguments_are_named(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        _StatusCheck(*arguments)  # type: ignore[arg-type]


def test_it_is_read_only_and_says_what_it_calls() -> None:
    sender = Sender()
    send = check(sender)
    assert (send.target, send.name, send.statuses, send.exception) == (
        sender, "send", frozenset({500, 503}), Failed
    )
    with pytest.raises(AttributeError):
        send.target = Sender()  # type: ignore[misc]
    assert repr(send).startswith("<_StatusCheck <") and repr(send).endswith(".send>")
    with pytest.raises(TypeError):
        type("Sub", (_StatusCheck,), {})


def test_a_cycle_through_it_is_collected() -> None:
    sender = Sender()
    sender.check = check(sender)  # type: ignore[attr-defined]
    alive = weakref.ref(sender)
    del sender
    gc.collect()
    assert alive() is None
    assert gc.is_tracked(check(Sender()))


# ---- _origin_key ----------------------------------------------------------------


class Url:
    def __init__(self, parts: object) -> None:
        self._uri_reference = parts


class Request:
    def __init__(self, parts: object) -> None:
        self.url = Url(parts)


def test_origin_key_finds_the_key_of_scheme_host_and_port() -> None:
    keys = {"a.example": (("http", None, "a.example:80"), ("https", 8443, "a.example:8443"))}
    assert _origin_key(keys, Request(("http", "", "a.example", None, "/"))) == "a.example:80"
    assert _origin_key(keys, Request(("https", "", "a.example", 8443, "/"))) == "a.example:8443"
    assert _origin_key(keys, Request(("https", "", "a.example", None, "/"))) is None
    assert _origin_key(keys, Request(("http", "", "b.example", None, "/"))) is None
    # A parsed URL of another shape: no key, the caller finds it its own way.
    assert _origin_key(keys, Request(["http", "", "a.example", None])) is None
    assert _origin_key(keys, Request(("http", "", "a.example"))) is None
    assert _origin_key({"a.example": "junk"}, Request(("http", "", "a.example", None))) is None


def test_origin_key_errors() -> None:
    with pytest.raises(TypeError, match="keys must be a dict, not list"):
        _origin_key([], Request(("http", "", "a", None)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        _origin_key({})  # type: ignore[call-arg]
    with pytest.raises(AttributeError, match="url"):
        _origin_key({}, object())
    with pytest.raises(TypeError, match="unhashable"):
        _origin_key({}, Request(("http", "", ["a"], None)))
