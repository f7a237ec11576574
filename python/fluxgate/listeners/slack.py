"""Listeners that post each state transition to a Slack channel.

Needs the ``slack`` extra: ``pip install fluxgate[slack]``.

Messages about one failure cycle share a Slack thread: the message that
reports entering ``open`` starts it, later messages reply in it, and the one
that reports entering ``closed``, ``disabled`` or ``metrics_only`` ends it
(entering ``closed`` is also broadcast to the channel).

A transition never waits for Slack longer than the listener's ``timeout`` in
total, however slowly Slack answers (httpx's own timeouts apply to each read,
so a server trickling one byte at a time would stretch them without end).
``SlackListener`` posts from a worker thread, in order, and stops waiting
when the deadline passes, raising ``TimeoutError``; the message is still
sent, and later ones follow it. ``AsyncSlackListener`` cancels the post.

The token stays in the HTTP client. A token that an HTTP header cannot
carry (a trailing newline from a file, say) is refused at construction
without being shown, and an error raised by a post never shows it.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections import deque
from types import TracebackType
from typing import Any, TypedDict, TypeVar

try:
    import httpx
except ImportError as error:
    raise ImportError(
        "SlackListener requires httpx; install it with `pip install fluxgate[slack]`"
    ) from error

from fluxgate.listeners._time import format_timestamp
from fluxgate.listeners.base import AsyncListener, Listener
from fluxgate.signal import Signal
from fluxgate.state import State

__all__ = ["AsyncSlackListener", "SlackListener", "Template"]

_POST_MESSAGE_URL = "https://slack.com/api/chat.postMessage"

_THREAD_ENDING_STATES = frozenset({"closed", "disabled", "metrics_only"})


_BEARER = "Bearer "
_REDACTED = "[redacted]"


def _auth_headers(token: object) -> dict[str, str]:
    """The client's headers; the token lives only there, never on the listener.

    Every message below describes the token without quoting any of it.
    """
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    if not token:
        raise ValueError("token must not be empty")
    for index, char in enumerate(token):
        if char in "\r\n":
            problem = "a line break"
        elif char == "\t" or " " <= char <= "~":
            continue
        elif char < " " or char == "\x7f":
            problem = "a control character"
        else:
            problem = "a non-ASCII character"
        raise ValueError(
            f"token contains {problem} at index {index}, which an HTTP header cannot "
            "carry (a token read from a file keeps its trailing newline: strip it first)"
        )
    if token[-1] in " \t":
        raise ValueError(
            "token ends with whitespace, which an HTTP header cannot carry "
            "(a token read from a file may keep it: strip it first)"
        )
    return {"Authorization": f"{_BEARER}{token}"}


def _checked_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive finite number of seconds, not {timeout!r}")
    return timeout


def _exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception it carries: causes, contexts, groups."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        members = getattr(current, "exceptions", ())  # an ExceptionGroup's
        pending.extend(e for e in members if isinstance(e, BaseException))
    return seen


def _redact_request(error: BaseException) -> None:
    """Blank the token in the request an httpx error carries (``error.request``)."""
    for name in ("request", "response"):
        try:
            value = getattr(error, name, None)
        except RuntimeError:  # httpx: "The .request property has not been set."
            continue
        request = getattr(value, "request", None) if name == "response" else value
        if isinstance(request, httpx.Request) and "authorization" in request.headers:
            request.headers["Authorization"] = _BEARER + _REDACTED


def _texts(error: BaseException) -> list[str]:
    texts = []
    for part in (error, *error.args, *(getattr(error, "__notes__", None) or ())):
        try:
            texts.append(str(part))
            texts.append(repr(part))
        except Exception:  # noqa: BLE001 - a broken __str__ cannot show the token either
            pass
    for name in ("object", "doc"):  # UnicodeError.object, JSONDecodeError.doc
        value = getattr(error, name, None)
        if isinstance(value, (str, bytes)):
            texts.append(repr(value))
    return texts


def _without_token(error: BaseException, token: str | None) -> BaseException:
    """``error`` if nothing it carries shows ``token``, else a RuntimeError that doesn't.

    The request an httpx error carries has its Authorization header blanked
    either way.
    """
    chain = _exception_chain(error)
    for link in chain:
        _redact_request(link)
    if not token or not any(token in text for link in chain for text in _texts(link)):
        return error
    kind = f"{type(error).__module__}.{type(error).__qualname__}"
    withheld = RuntimeError(f"Slack post failed with {kind}; its message would show the token")
    try:
        message = str(error).replace(token, _REDACTED)
    except Exception:  # noqa: BLE001 - a broken __str__: say what failed, no more
        return withheld
    replacement = RuntimeError(f"Slack post failed with {kind}: {message}")
    return withheld if token in str(replacement) else replacement


class Template(TypedDict):
    """How a transition's message looks: bold title, side colour, description."""

    title: str
    color: str
    description: str


def _transition_templates() -> dict[tuple[State, State], Template]:
    return {
        ("closed", "open"): {
            "title": "🚨 Circuit Breaker Triggered",
            "color": "#FF4C4C",
            "description": "Too many recent calls failed, so calls are now being rejected.",
        },
        ("open", "half_open"): {
            "title": "🔄 Attempting Circuit Breaker Recovery",
            "color": "#FFA500",
            "description": "A few trial calls go through to see whether the service is back.",
        },
        ("half_open", "open"): {
            "title": "⚠️ Circuit Breaker Re-triggered",
            "color": "#FF4C4C",
            "description": "The trial calls failed, so calls are being rejected again.",
        },
        ("half_open", "closed"): {
            "title": "✅ Circuit Breaker Recovered",
            "color": "#36a64f",
            "description": "The trial calls succeeded, so all calls are allowed again.",
        },
    }


def _fallback_template() -> Template:
    return {
        "title": "ℹ️ Circuit Breaker State Changed",
        "color": "#808080",
        "description": "The circuit breaker moved to a new state.",
    }


class _SlackBase:
    """Template lookup, payload and thread tracking shared by both listeners."""

    # Each public class binds its own copies, so changing one never changes another.
    TRANSITION_TEMPLATES: dict[tuple[State, State], Template]
    FALLBACK_TEMPLATE: Template

    _client: Any

    def __init__(self, name: str, channel: str, api_url: str, timeout: float) -> None:
        self._name = name
        self._channel = channel
        self._api_url = api_url
        self._timeout = timeout
        self._thread_ts: str | None = None

    def _token(self) -> str | None:
        """The token, read back from the client (the only place that keeps it)."""
        headers = getattr(self._client, "headers", None)
        try:
            value = headers.get("authorization") if headers is not None else None
        except Exception:  # noqa: BLE001 - a stand-in client without real headers
            return None
        if isinstance(value, str) and value.startswith(_BEARER):
            return value[len(_BEARER) :]
        return None

    def _abandoned(self, signal: Signal, what: str) -> TimeoutError:
        return TimeoutError(
            f"{type(self).__name__} {self._name!r}: Slack did not answer within "
            f"{self._timeout} s about {signal.old_state} → {signal.new_state}; {what}"
        )

    def _payload(self, signal: Signal) -> dict[str, Any]:
        template = self.TRANSITION_TEMPLATES.get(
            (signal.old_state, signal.new_state), self.FALLBACK_TEMPLATE
        )
        fields = [
            f"*Circuit Breaker:*\n{self._name}",
            f"*State Transition:*\n{signal.old_state} → {signal.new_state}",
            f"*Transition Time:*\n{format_timestamp(signal.timestamp)}",
            f"*Description:*\n{template['description']}",
        ]
        payload: dict[str, Any] = {
            "channel": self._channel,
            "attachments": [
                {
                    "color": template["color"],
                    "blocks": [
                        {
                            "type": "section",
                            "text": {"type": "mrkdwn", "text": f"*{template['title']}*"},
                        },
                        {
                            "type": "section",
                            "fields": [{"type": "mrkdwn", "text": text} for text in fields],
                        },
                    ],
                }
            ],
        }
        if self._thread_ts is not None:
            payload["thread_ts"] = self._thread_ts
        if signal.new_state == "closed":
            payload["reply_broadcast"] = True
        return payload

    def _handle_response(self, signal: Signal, response: httpx.Response) -> None:
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            data = {}
        if not data.get("ok") or data.get("ts") is None:
            raise RuntimeError(f"Failed to send message: {data.get('error')}")
        if signal.new_state == "open" and self._thread_ts is None:
            self._thread_ts = data["ts"]
        elif signal.new_state in _THREAD_ENDING_STATES:
            self._thread_ts = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, channel={self._channel!r})"


def _retrieve(post: asyncio.Future[None]) -> None:
    """Collect an abandoned post's outcome, so asyncio does not report it again."""
    if not post.cancelled():
        post.exception()


_Sync = TypeVar("_Sync", bound="SlackListener")
_Async = TypeVar("_Async", bound="AsyncSlackListener")


class _Post:
    """One message waiting for the worker thread, and what became of it."""

    __slots__ = ("done", "error", "signal")

    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.done = threading.Event()
        self.error: BaseException | None = None


class SlackListener(_SlackBase, Listener):
    """Post each transition of the breaker called ``name`` to a Slack channel.

    Uses an ``httpx.Client`` authorised with the bot ``token``; ``api_url``
    lets a Slack-compatible server receive the messages. ``close()`` (or use
    as a context manager) releases the client.

    Posts are made in order by a worker thread; a call waits for its post
    at most ``timeout`` seconds in total, then raises ``TimeoutError`` and
    leaves the post to finish in the background.
    """

    TRANSITION_TEMPLATES = _transition_templates()
    FALLBACK_TEMPLATE = _fallback_template()

    def __init__(
        self,
        name: str,
        channel: str,
        token: str,
        *,
        api_url: str = _POST_MESSAGE_URL,
        timeout: float = 5.0,
    ) -> None:
        headers = _auth_headers(token)
        super().__init__(name, channel, api_url, _checked_timeout(timeout))
        self._client = httpx.Client(headers=headers, timeout=timeout)
        self._reset_worker()

    def _reset_worker(self) -> None:
        self._queue_lock = threading.Lock()
        self._queue: deque[_Post] = deque()
        self._worker: threading.Thread | None = None
        self._worker_pid = os.getpid()

    def __call__(self, signal: Signal) -> None:
        post = _Post(signal)
        if not self._submit(post):
            # No thread can start (the interpreter is shutting down): post here.
            self._post(signal)
            return
        if not post.done.wait(self._timeout):
            raise self._abandoned(signal, "the message is still sent in the background, in order")
        error, post.error = post.error, None
        if error is not None:
            raise error

    def _submit(self, post: _Post) -> bool:
        """Queue ``post`` for the worker, starting it if needed; False if none can start."""
        if self._worker_pid != os.getpid():
            # A forked child: the worker (and any post it held) stayed in the parent.
            self._reset_worker()
        with self._queue_lock:
            self._queue.append(post)
            if self._worker is not None:
                return True
            worker = threading.Thread(
                target=self._drain, name=f"fluxgate-slack-{self._name}", daemon=True
            )
            self._worker = worker
            try:
                worker.start()
            except BaseException as error:
                self._worker = None
                self._queue.remove(post)
                if isinstance(error, RuntimeError):  # "can't create new thread at shutdown"
                    return False
                raise
        return True

    def _drain(self) -> None:
        """The worker: post queued messages in order, then exit when none is left."""
        while True:
            with self._queue_lock:
                if not self._queue:
                    self._worker = None
                    return
                post = self._queue.popleft()
            try:
                self._post(post.signal)
            except BaseException as error:  # handed to the waiting caller, if any
                post.error = error
            finally:
                post.done.set()

    def _post(self, signal: Signal) -> None:
        try:
            response = self._client.post(self._api_url, json=self._payload(signal))
            self._handle_response(signal, response)
        except Exception as error:
            failure = error
        else:
            return
        # Raised outside the handler, so a replacement does not carry the original.
        raise _without_token(failure, self._token())

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self: _Sync) -> _Sync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncSlackListener(_SlackBase, AsyncListener):
    """Post each transition of the breaker called ``name`` to a Slack channel.

    The asynchronous twin of ``SlackListener``, for ``AsyncCircuitBreaker``:
    it uses an ``httpx.AsyncClient``; ``aclose()`` (or use as an async
    context manager) releases it.
    """

    TRANSITION_TEMPLATES = _transition_templates()
    FALLBACK_TEMPLATE = _fallback_template()

    def __init__(
        self,
        name: str,
        channel: str,
        token: str,
        *,
        api_url: str = _POST_MESSAGE_URL,
        timeout: float = 5.0,
    ) -> None:
        headers = _auth_headers(token)
        super().__init__(name, channel, api_url, _checked_timeout(timeout))
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)

    async def __call__(self, signal: Signal) -> None:
        post = asyncio.ensure_future(self._post(signal))
        try:
            done, _ = await asyncio.wait({post}, timeout=self._timeout)
        except BaseException:  # the caller was cancelled: so is the post
            post.cancel()
            raise
        if not done:
            post.cancel()
            post.add_done_callback(_retrieve)
            raise self._abandoned(signal, "the post was cancelled")
        post.result()

    async def _post(self, signal: Signal) -> None:
        try:
            response = await self._client.post(self._api_url, json=self._payload(signal))
            self._handle_response(signal, response)
        except Exception as error:
            failure = error
        else:
            return
        # Raised outside the handler, so a replacement does not carry the original.
        raise _without_token(failure, self._token())

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def __aenter__(self: _Async) -> _Async:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
