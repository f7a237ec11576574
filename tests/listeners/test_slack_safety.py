"""The Slack listeners never hold a transition beyond ``timeout`` and never show the token.

A Slack endpoint (or a proxy in front of it) that answers one byte at a time
keeps every read of httpx within its timeout, which httpx applies per read;
the local server's trickle mode plays that endpoint. The bounds on how long
a call may take are deliberately loose: they catch a hang, not a slow call.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
import traceback
import types
import warnings
from typing import Any

import httpx
import pytest

import fluxgate.listeners.slack as slack_module
from fluxgate import AsyncCircuitBreaker, CircuitBreaker
from fluxgate.listeners.slack import AsyncSlackListener, SlackListener
from fluxgate.permits import All
from fluxgate.retries import Always
from fluxgate.signal import Signal
from fluxgate.trippers import FailureStreak

from .slack_server import FakeSlack

TOKEN = "xoxb-1234-secret-token"
T0 = 1_700_000_000.0
LISTENERS = [SlackListener, AsyncSlackListener]
SlackClass = type[SlackListener] | type[AsyncSlackListener]

TIMEOUT = 0.5
# A generous bound for "returned at about TIMEOUT": far below the time the
# trickled answer takes (SLOW_TRICKLE seconds for each of its ~230 bytes).
HANG_BOUND = TIMEOUT + 3.0
SLOW_TRICKLE = 0.05
# Short enough that the trickled answer ends within the test (~2-5 s).
FAST_TRICKLE = 0.01


def make(cls: SlackClass, slack: FakeSlack, timeout: float = TIMEOUT) -> Any:
    return cls("payments", "C0123", TOKEN, api_url=slack.url, timeout=timeout)


async def send(listener: Any, signal: Signal) -> None:
    result = listener(signal)
    if inspect.isawaitable(result):
        await result


def shown(error: BaseException) -> str:
    """Everything a log handler prints for ``error``: messages and traceback."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


# ---- a total deadline ----


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_trickling_slack_holds_a_call_for_at_most_timeout(
    cls: SlackClass, slack: FakeSlack
) -> None:
    listener = make(cls, slack)
    slack.trickle(SLOW_TRICKLE)

    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError) as raised:
            await send(listener, Signal("closed", "open", T0))
    finally:
        # The abandoned connection goes with the client.
        closing = listener.aclose() if hasattr(listener, "aclose") else listener.close()
        if inspect.isawaitable(closing):
            await closing

    assert time.monotonic() - started < HANG_BOUND
    assert len(slack.posts) == 1
    assert not slack.trickled.is_set()
    message = str(raised.value)
    assert "payments" in message and "closed → open" in message and "0.5 s" in message
    assert TOKEN not in shown(raised.value)


def test_trickling_slack_holds_a_sync_transition_for_at_most_timeout(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    listener = make(SlackListener, slack)
    heard: list[str] = []
    cb = CircuitBreaker(
        tripper=FailureStreak(1),
        retry=Always(),
        permit=All(),
        listeners=[listener, lambda signal: heard.append(signal.new_state)],
    )
    slack.trickle(SLOW_TRICKLE)

    started = time.monotonic()
    with caplog.at_level(logging.ERROR), pytest.raises(ZeroDivisionError):
        cb.call(lambda: 1 / 0)

    assert time.monotonic() - started < HANG_BOUND
    assert cb.info().state == "open"
    assert heard == ["open"]  # the next listener was not held up either
    [record] = [r for r in caplog.records if r.name == "fluxgate"]
    assert record.exc_info is not None and record.exc_info[0] is TimeoutError
    assert TOKEN not in caplog.text


@pytest.mark.asyncio
async def test_trickling_slack_holds_an_async_transition_for_at_most_timeout(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    listener = make(AsyncSlackListener, slack)
    cb = AsyncCircuitBreaker(tripper=FailureStreak(1), listeners=[listener])
    slack.trickle(SLOW_TRICKLE)

    started = time.monotonic()
    with caplog.at_level(logging.ERROR), pytest.raises(ZeroDivisionError):
        await cb.call(_fail)

    assert time.monotonic() - started < HANG_BOUND
    assert cb.info().state == "open"
    [record] = [r for r in caplog.records if r.name == "fluxgate"]
    assert record.exc_info is not None and record.exc_info[0] is TimeoutError
    assert TOKEN not in caplog.text


async def _fail() -> None:
    raise ZeroDivisionError


def test_abandoned_post_is_still_sent_in_order_and_logged_once(
    slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # The post reporting "open" is abandoned; when its answer finally comes,
    # it still opens the thread the next message replies in.
    listener = make(SlackListener, slack, timeout=1.0)
    cb = CircuitBreaker(
        tripper=FailureStreak(1), retry=Always(), permit=All(), listeners=[listener]
    )
    slack.trickle(FAST_TRICKLE)

    with caplog.at_level(logging.ERROR), pytest.raises(ZeroDivisionError):
        cb.call(lambda: 1 / 0)
    assert slack.trickled.wait(30)
    with caplog.at_level(logging.ERROR):
        cb.call(lambda: None)  # open -> half_open -> closed

    bodies = slack.wait_for_posts(3)
    assert [body.get("thread_ts") for body in bodies] == [None] + [slack.issued_ts[0]] * 2
    errors = [r for r in caplog.records if r.name == "fluxgate"]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert errors[0].exc_info[0] is TimeoutError
    assert TOKEN not in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_messages_after_an_abandoned_post_keep_the_thread(
    cls: SlackClass, slack: FakeSlack
) -> None:
    listener = make(cls, slack, timeout=1.0)
    await send(listener, Signal("closed", "open", T0))
    slack.trickle(FAST_TRICKLE)

    with pytest.raises(TimeoutError):
        await send(listener, Signal("open", "half_open", T0 + 1))
    if cls is SlackListener:  # the post goes on in the background: let it end
        assert slack.trickled.wait(30)
    await send(listener, Signal("half_open", "closed", T0 + 2))
    await send(listener, Signal("closed", "open", T0 + 3))

    bodies = slack.wait_for_posts(4)
    assert [body.get("thread_ts") for body in bodies] == [None, *[slack.issued_ts[0]] * 2, None]
    assert bodies[2]["reply_broadcast"] is True


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_a_quick_answer_is_seen_right_after_the_call(
    cls: SlackClass, slack: FakeSlack
) -> None:
    listener = make(cls, slack)
    slack.reply({"ok": False, "error": "channel_not_found"})

    with pytest.raises(RuntimeError, match="^Failed to send message: channel_not_found$"):
        await send(listener, Signal("closed", "open", T0))
    await send(listener, Signal("closed", "open", T0 + 1))

    assert len(slack.posts) == 2  # no waiting needed: the call returned after its post


@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.parametrize(
    ("timeout", "error"),
    [("5", TypeError), (None, TypeError), (True, TypeError), (0, ValueError),
     (-1.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError)],
)
def test_timeout_must_be_a_positive_number(
    cls: SlackClass, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="^timeout must be"):
        cls("payments", "C0123", TOKEN, timeout=timeout)


# ---- the token ----


@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (TOKEN + "\n", "a line break at index 22"),
        (TOKEN + "\r\n", "a line break at index 22"),
        ("xoxb-1234\nsecret-token", "a line break at index 9"),
        (TOKEN + "\x00", "a control character"),
        (TOKEN + "\x7f", "a control character"),
        (TOKEN + "é", "a non-ASCII character"),
        (TOKEN + " ", "whitespace"),
        (TOKEN + "\t", "whitespace"),
    ],
)
def test_token_an_http_header_cannot_carry_is_refused_without_showing_it(
    cls: SlackClass, token: str, problem: str
) -> None:
    with pytest.raises(ValueError) as raised:
        cls("payments", "C0123", token)

    assert str(raised.value).startswith("token ")
    assert problem in str(raised.value)
    assert "xoxb" not in shown(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None


@pytest.mark.parametrize("cls", LISTENERS)
def test_token_must_be_a_non_empty_str(cls: SlackClass) -> None:
    with pytest.raises(ValueError, match="^token must not be empty$"):
        cls("payments", "C0123", "")
    with pytest.raises(TypeError, match="^token must be a str, not bytes$"):
        cls("payments", "C0123", TOKEN.encode())  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_token_with_inner_spaces_is_sent_as_given(cls: SlackClass, slack: FakeSlack) -> None:
    listener = cls("payments", "C0123", "xoxb 1234\tsecret", api_url=slack.url)
    await send(listener, Signal("closed", "open", T0))

    assert slack.posts[0].headers["authorization"] == "Bearer xoxb 1234\tsecret"


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_http_error_carries_no_token(cls: SlackClass, slack: FakeSlack) -> None:
    listener = make(cls, slack)
    slack.reply({"ok": False, "error": "internal_error"}, status=500)

    with pytest.raises(httpx.HTTPStatusError) as raised:
        await send(listener, Signal("closed", "open", T0))

    assert raised.value.response.status_code == 500
    assert TOKEN not in str(raised.value.request.headers.get("authorization"))
    assert TOKEN not in shown(raised.value)
    # The client still sends the token.
    await send(listener, Signal("closed", "open", T0 + 1))
    assert slack.posts[1].headers["authorization"] == f"Bearer {TOKEN}"


def _echoing_transport(request: httpx.Request) -> httpx.Response:
    # A failure whose message quotes the header, as h11 does for an illegal one.
    raise httpx.LocalProtocolError(
        f"Illegal header value {request.headers['authorization'].encode()!r}", request=request
    )


async def _async_echoing_transport(request: httpx.Request) -> httpx.Response:
    return _echoing_transport(request)


@pytest.fixture
def echoing_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    real_client, real_async_client = httpx.Client, httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(_echoing_transport), **kwargs)

    def async_client(**kwargs: Any) -> httpx.AsyncClient:
        return real_async_client(
            transport=httpx.MockTransport(_async_echoing_transport), **kwargs
        )

    monkeypatch.setattr(httpx, "Client", client)
    monkeypatch.setattr(httpx, "AsyncClient", async_client)


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.usefixtures("echoing_clients")
async def test_error_quoting_the_token_is_raised_without_it(cls: SlackClass) -> None:
    listener = cls("payments", "C0123", TOKEN)

    with pytest.raises(Exception) as raised:
        await send(listener, Signal("closed", "open", T0))

    text = shown(raised.value)
    assert TOKEN not in text
    assert "httpx.LocalProtocolError" in text and "Illegal header value" in text
    assert raised.value.__context__ is None and raised.value.__cause__ is None


@pytest.mark.usefixtures("echoing_clients")
def test_error_quoting_the_token_is_logged_without_it(caplog: pytest.LogCaptureFixture) -> None:
    cb = CircuitBreaker(listeners=[SlackListener("payments", "C0123", TOKEN)])

    with caplog.at_level(logging.ERROR):
        cb.force_open()

    assert [r.getMessage() for r in caplog.records] == ["Listener SlackListener failed"]
    assert "Illegal header value" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.asyncio
@pytest.mark.usefixtures("echoing_clients")
async def test_async_error_quoting_the_token_is_logged_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cb = AsyncCircuitBreaker(listeners=[AsyncSlackListener("payments", "C0123", TOKEN)])

    with caplog.at_level(logging.ERROR):
        await cb.force_open()

    assert [r.getMessage() for r in caplog.records] == ["Listener AsyncSlackListener failed"]
    assert "Illegal header value" in caplog.text
    assert TOKEN not in caplog.text


def _chaining_transport(request: httpx.Request) -> httpx.Response:
    # Only the cause quotes the header: a traceback would print both.
    try:
        raise ValueError(f"cannot send {request.headers['authorization']!r}")
    except ValueError as cause:
        raise httpx.ConnectError("connection failed", request=request) from cause


def test_error_whose_cause_quotes_the_token_is_raised_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_client = httpx.Client
    monkeypatch.setattr(
        httpx,
        "Client",
        lambda **kwargs: real_client(transport=httpx.MockTransport(_chaining_transport), **kwargs),
    )
    listener = SlackListener("payments", "C0123", TOKEN)

    with pytest.raises(RuntimeError) as raised:
        listener(Signal("closed", "open", T0))

    assert str(raised.value) == "Slack post failed with httpx.ConnectError: connection failed"
    assert TOKEN not in shown(raised.value)


# ---- where the worker thread cannot help ----


def test_posts_in_the_calling_thread_when_no_thread_can_start(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = make(SlackListener, slack)

    class Refused(threading.Thread):
        def start(self) -> None:
            raise RuntimeError("can't create new thread at interpreter shutdown")

    shutting_down = types.SimpleNamespace(
        Thread=Refused, Lock=threading.Lock, Event=threading.Event
    )
    monkeypatch.setattr(slack_module, "threading", shutting_down)
    listener(Signal("closed", "open", T0))
    monkeypatch.undo()
    listener(Signal("open", "half_open", T0 + 1))

    assert [body.get("thread_ts") for body in slack.bodies] == [None, slack.issued_ts[0]]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_forked_while_a_post_is_stuck_posts_on_its_own(slack: FakeSlack) -> None:
    listener = make(SlackListener, slack, timeout=2.0)
    slack.trickle(SLOW_TRICKLE)
    with pytest.raises(TimeoutError):
        listener(Signal("closed", "open", T0))  # the worker is now stuck

    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
        pid = os.fork()
    if pid == 0:
        report = "crashed"
        try:
            listener(Signal("closed", "forced_open", T0 + 1))
            report = "posted"
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            report = type(error).__name__
        finally:
            os.write(write_end, report.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)

    assert report == "posted"
    assert slack.bodies[1]["attachments"][0]["blocks"][1]["fields"][1]["text"] == (
        "*State Transition:*\nclosed → forced_open"
    )

