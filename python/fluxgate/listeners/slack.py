"""Listeners that post each state transition to a Slack channel.

Needs the ``slack`` extra: ``pip install fluxgate[slack]``.

Messages about one failure cycle share a Slack thread: the message that
reports entering ``open`` starts it, later messages reply in it, and the one
that reports entering ``closed``, ``disabled`` or ``metrics_only`` ends it
(entering ``closed`` is also broadcast to the channel).
"""

from __future__ import annotations

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


def _auth_headers(token: str) -> dict[str, str]:
    # The token lives only in the client's headers, never on the listener.
    return {"Authorization": f"Bearer {token}"}


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

    def __init__(self, name: str, channel: str, api_url: str) -> None:
        self._name = name
        self._channel = channel
        self._api_url = api_url
        self._thread_ts: str | None = None

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


_Sync = TypeVar("_Sync", bound="SlackListener")
_Async = TypeVar("_Async", bound="AsyncSlackListener")


class SlackListener(_SlackBase, Listener):
    """Post each transition of the breaker called ``name`` to a Slack channel.

    Uses an ``httpx.Client`` authorised with the bot ``token``; ``api_url``
    lets a Slack-compatible server receive the messages. ``close()`` (or use
    as a context manager) releases the client.
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
        super().__init__(name, channel, api_url)
        self._client = httpx.Client(headers=_auth_headers(token), timeout=timeout)

    def __call__(self, signal: Signal, /) -> None:
        response = self._client.post(self._api_url, json=self._payload(signal))
        self._handle_response(signal, response)

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
        super().__init__(name, channel, api_url)
        self._client = httpx.AsyncClient(headers=_auth_headers(token), timeout=timeout)

    async def __call__(self, signal: Signal, /) -> None:
        response = await self._client.post(self._api_url, json=self._payload(signal))
        self._handle_response(signal, response)

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
