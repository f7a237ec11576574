"""SlackListener and AsyncSlackListener against a local Slack-compatible server."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
import typing
from typing import Any

import httpx
import pytest

from fluxgate.listeners import AsyncListener, Listener
from fluxgate.listeners.slack import AsyncSlackListener, SlackListener, Template
from fluxgate.signal import Signal
from fluxgate.state import State

from .slack_server import FakeSlack

TOKEN = "xoxb-1234-secret-token"
T0 = 1_700_000_000.0
LISTENERS = [SlackListener, AsyncSlackListener]
SlackClass = type[SlackListener] | type[AsyncSlackListener]


def local_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def make(cls: SlackClass, slack: FakeSlack, name: str = "payments") -> Any:
    return cls(name, "C0123", TOKEN, api_url=slack.url)


async def send(listener: Any, signal: Signal) -> None:
    result = listener(signal)
    if inspect.isawaitable(result):
        await result


async def send_all(listener: Any, transitions: list[tuple[State, State]]) -> None:
    for offset, (old, new) in enumerate(transitions):
        await send(listener, Signal(old, new, T0 + offset))


# ---- payload and headers ----


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_posts_the_documented_payload(cls: SlackClass, slack: FakeSlack) -> None:
    await send(make(cls, slack), Signal("closed", "open", T0))

    [posted] = slack.posts
    assert posted.path == "/api/chat.postMessage"
    assert posted.body == {
        "channel": "C0123",
        "attachments": [
            {
                "color": "#FF4C4C",
                "blocks": [
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": "*🚨 Circuit Breaker Triggered*"},
                    },
                    {
                        "type": "section",
                        "fields": [
                            {"type": "mrkdwn", "text": "*Circuit Breaker:*\npayments"},
                            {"type": "mrkdwn", "text": "*State Transition:*\nclosed → open"},
                            {"type": "mrkdwn", "text": f"*Transition Time:*\n{local_time(T0)}"},
                            {
                                "type": "mrkdwn",
                                "text": "*Description:*\n"
                                + SlackListener.TRANSITION_TEMPLATES[("closed", "open")][
                                    "description"
                                ],
                            },
                        ],
                    },
                ],
            }
        ],
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_sends_the_token_as_a_bearer_header_and_json(
    cls: SlackClass, slack: FakeSlack
) -> None:
    await send(make(cls, slack), Signal("closed", "open", T0))

    [posted] = slack.posts
    assert posted.headers["authorization"] == f"Bearer {TOKEN}"
    assert posted.headers["content-type"] == "application/json"


TEMPLATES = [
    ("closed", "open", "🚨 Circuit Breaker Triggered", "#FF4C4C"),
    ("open", "half_open", "🔄 Attempting Circuit Breaker Recovery", "#FFA500"),
    ("half_open", "open", "⚠️ Circuit Breaker Re-triggered", "#FF4C4C"),
    ("half_open", "closed", "✅ Circuit Breaker Recovered", "#36a64f"),
    ("open", "closed", "ℹ️ Circuit Breaker State Changed", "#808080"),
    ("closed", "disabled", "ℹ️ Circuit Breaker State Changed", "#808080"),
    ("closed", "forced_open", "ℹ️ Circuit Breaker State Changed", "#808080"),
    ("metrics_only", "closed", "ℹ️ Circuit Breaker State Changed", "#808080"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.parametrize(("old", "new", "title", "color"), TEMPLATES)
async def test_template_follows_the_transition(
    cls: SlackClass, slack: FakeSlack, old: State, new: State, title: str, color: str
) -> None:
    await send(make(cls, slack), Signal(old, new, T0))

    [attachment] = slack.bodies[0]["attachments"]
    assert attachment["color"] == color
    assert attachment["blocks"][0]["text"]["text"] == f"*{title}*"
    fields = [field["text"] for field in attachment["blocks"][1]["fields"]]
    assert fields[1] == f"*State Transition:*\n{old} → {new}"
    description = fields[3].removeprefix("*Description:*\n")
    assert description.strip() and description != fields[3]


# ---- threads ----

THREAD_CASES = [
    pytest.param(
        [
            ("closed", "open"),
            ("open", "half_open"),
            ("half_open", "open"),
            ("open", "half_open"),
            ("half_open", "closed"),
            ("closed", "open"),
            ("open", "half_open"),
        ],
        [None, 0, 0, 0, 0, None, 5],
        id="trip-retrip-recover-trip",
    ),
    pytest.param(
        [
            ("closed", "open"),
            ("open", "forced_open"),
            ("forced_open", "closed"),
            ("closed", "forced_open"),
            ("forced_open", "open"),
            ("open", "half_open"),
        ],
        [None, 0, 0, None, None, 4],
        id="forced_open-keeps-but-never-starts",
    ),
    pytest.param(
        [
            ("closed", "open"),
            ("open", "disabled"),
            ("disabled", "open"),
            ("open", "metrics_only"),
            ("metrics_only", "half_open"),
        ],
        [None, 0, None, 2, None],
        id="disabled-and-metrics_only-end",
    ),
    pytest.param(
        [("closed", "half_open"), ("half_open", "closed"), ("closed", "closed")],
        [None, None, None],
        id="no-thread-without-open",
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.parametrize(("transitions", "threads"), THREAD_CASES)
async def test_thread_handling(
    cls: SlackClass,
    slack: FakeSlack,
    transitions: list[tuple[State, State]],
    threads: list[int | None],
) -> None:
    await send_all(make(cls, slack), transitions)

    bodies = slack.bodies
    assert len(bodies) == len(transitions)
    for body, thread, (_, new) in zip(bodies, threads, transitions):
        if thread is None:
            assert "thread_ts" not in body
        else:
            assert body["thread_ts"] == slack.issued_ts[thread]
        if new == "closed":
            assert body["reply_broadcast"] is True
        else:
            assert "reply_broadcast" not in body


# ---- errors ----


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_ok_false_raises_and_does_not_open_a_thread(
    cls: SlackClass, slack: FakeSlack
) -> None:
    listener = make(cls, slack)
    slack.reply({"ok": False, "error": "channel_not_found"})

    with pytest.raises(RuntimeError) as raised:
        await send(listener, Signal("closed", "open", T0))
    assert str(raised.value) == "Failed to send message: channel_not_found"

    await send(listener, Signal("open", "half_open", T0 + 1))
    assert "thread_ts" not in slack.bodies[1]


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_failed_post_does_not_end_the_thread(cls: SlackClass, slack: FakeSlack) -> None:
    listener = make(cls, slack)
    await send_all(listener, [("closed", "open"), ("open", "half_open")])
    slack.reply({"ok": False, "error": "ratelimited"})

    with pytest.raises(RuntimeError, match="^Failed to send message: ratelimited$"):
        await send(listener, Signal("half_open", "closed", T0 + 2))

    await send(listener, Signal("half_open", "closed", T0 + 3))
    assert [body.get("thread_ts") for body in slack.bodies] == [None] + [slack.issued_ts[0]] * 3


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"ok": True}, "Failed to send message: None"),
        ({"ok": False}, "Failed to send message: None"),
        ({"error": "not_authed"}, "Failed to send message: not_authed"),
    ],
)
async def test_answer_without_ok_or_ts_raises(
    cls: SlackClass, slack: FakeSlack, answer: dict[str, Any], message: str
) -> None:
    slack.reply(answer)

    with pytest.raises(RuntimeError) as raised:
        await send(make(cls, slack), Signal("closed", "open", T0))
    assert str(raised.value) == message


@pytest.mark.asyncio
@pytest.mark.parametrize("cls", LISTENERS)
async def test_http_error_is_raised_before_reading_the_body(
    cls: SlackClass, slack: FakeSlack
) -> None:
    listener = make(cls, slack)
    await send(listener, Signal("closed", "open", T0))
    slack.reply({"ok": False, "error": "internal_error"}, status=500)

    with pytest.raises(httpx.HTTPStatusError) as raised:
        await send(listener, Signal("open", "closed", T0 + 1))
    assert raised.value.response.status_code == 500

    await send(listener, Signal("open", "half_open", T0 + 2))
    assert slack.bodies[2]["thread_ts"] == slack.issued_ts[0]


# ---- the token and the client ----


@pytest.mark.parametrize("cls", LISTENERS)
def test_token_lives_only_in_the_client(cls: SlackClass, slack: FakeSlack) -> None:
    listener = make(cls, slack)

    assert hasattr(listener, "__dict__")
    assert TOKEN not in repr(listener)
    assert TOKEN not in repr(vars(listener))
    assert all(TOKEN not in str(value) for value in vars(listener).values())
    assert repr(listener) == f"{cls.__name__}(name='payments', channel='C0123')"


class FakeResponse:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def raise_for_status(self) -> FakeResponse:
        self.calls.append("raise_for_status")
        return self

    def json(self) -> dict[str, Any]:
        self.calls.append("json")
        return {"ok": True, "ts": "1.000001"}


class FakeClient:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[Any] = []
        created.append(self)

    def post(self, url: str, *, json: Any) -> FakeResponse:
        self.calls.append(("post", url, json))
        return FakeResponse(self.calls)

    def close(self) -> None:
        self.calls.append("close")


class FakeAsyncClient(FakeClient):
    async def post(self, url: str, *, json: Any) -> FakeResponse:  # type: ignore[override]
        return super().post(url, json=json)

    async def aclose(self) -> None:
        self.calls.append("aclose")


created: list[FakeClient] = []


@pytest.fixture
def fake_clients(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    created.clear()
    monkeypatch.setattr(httpx, "Client", FakeClient)
    monkeypatch.setattr(httpx, "AsyncClient", FakeAsyncClient)
    return created


def test_client_patched_before_construction_is_used(fake_clients: list[FakeClient]) -> None:
    with SlackListener("payments", "C0123", TOKEN) as listener:
        [client] = fake_clients
        assert type(client) is FakeClient
        assert client.kwargs == {"headers": {"Authorization": f"Bearer {TOKEN}"}, "timeout": 5.0}

        listener(Signal("closed", "open", T0))

    post, *rest = client.calls
    assert post[:2] == ("post", "https://slack.com/api/chat.postMessage")
    assert post[2]["channel"] == "C0123"
    assert rest == ["raise_for_status", "json", "close"]


@pytest.mark.asyncio
async def test_async_client_patched_before_construction_is_used(
    fake_clients: list[FakeClient],
) -> None:
    async with AsyncSlackListener("payments", "C0123", TOKEN, timeout=1.5) as listener:
        [client] = fake_clients
        assert type(client) is FakeAsyncClient
        assert client.kwargs == {"headers": {"Authorization": f"Bearer {TOKEN}"}, "timeout": 1.5}

        await listener(Signal("closed", "open", T0))

    post, *rest = client.calls
    assert post[:2] == ("post", "https://slack.com/api/chat.postMessage")
    assert rest == ["raise_for_status", "json", "aclose"]


def test_api_url_and_timeout_are_passed_to_the_client(fake_clients: list[FakeClient]) -> None:
    listener = SlackListener(
        "payments", "C0123", TOKEN, api_url="https://chat.example/post", timeout=2.0
    )
    listener(Signal("closed", "open", T0))

    [client] = fake_clients
    assert client.kwargs["timeout"] == 2.0
    assert client.calls[0][1] == "https://chat.example/post"


def test_context_manager_closes_the_client(slack: FakeSlack) -> None:
    with make(SlackListener, slack) as listener:
        listener(Signal("closed", "open", T0))

    with pytest.raises(RuntimeError):
        listener(Signal("open", "half_open", T0 + 1))
    assert len(slack.posts) == 1


def test_close_closes_the_client(slack: FakeSlack) -> None:
    listener = make(SlackListener, slack)
    listener.close()
    listener.close()

    with pytest.raises(RuntimeError):
        listener(Signal("closed", "open", T0))
    assert slack.posts == []


@pytest.mark.asyncio
async def test_async_context_manager_and_aclose_close_the_client(slack: FakeSlack) -> None:
    async with make(AsyncSlackListener, slack) as listener:
        await listener(Signal("closed", "open", T0))

    with pytest.raises(RuntimeError):
        await listener(Signal("open", "half_open", T0 + 1))

    other = make(AsyncSlackListener, slack)
    await other.aclose()
    with pytest.raises(RuntimeError):
        await other(Signal("closed", "open", T0))
    assert len(slack.posts) == 1


# ---- templates, protocols and signatures ----


class CustomSlackListener(SlackListener):
    TRANSITION_TEMPLATES: dict[tuple[State, State], Template] = {
        ("closed", "open"): {"title": "Alert", "color": "#000000", "description": "Opened."},
    }
    FALLBACK_TEMPLATE: Template = {"title": "Moved", "color": "#111111", "description": "Moved."}


@pytest.mark.asyncio
async def test_subclass_templates_do_not_leak(slack: FakeSlack) -> None:
    await send_all(make(CustomSlackListener, slack), [("closed", "open"), ("open", "half_open")])
    await send_all(make(SlackListener, slack), [("closed", "open"), ("open", "half_open")])
    await send_all(make(AsyncSlackListener, slack), [("closed", "open"), ("open", "half_open")])

    attachments = [body["attachments"][0] for body in slack.bodies]
    titles = [attachment["blocks"][0]["text"]["text"] for attachment in attachments]
    assert titles == [
        "*Alert*",
        "*Moved*",
        "*🚨 Circuit Breaker Triggered*",
        "*🔄 Attempting Circuit Breaker Recovery*",
        "*🚨 Circuit Breaker Triggered*",
        "*🔄 Attempting Circuit Breaker Recovery*",
    ]
    assert [attachment["color"] for attachment in attachments[:2]] == ["#000000", "#111111"]
    description = attachments[0]["blocks"][1]["fields"][3]["text"]
    assert description == "*Description:*\nOpened."


def test_each_listener_class_owns_its_templates() -> None:
    assert SlackListener.TRANSITION_TEMPLATES == AsyncSlackListener.TRANSITION_TEMPLATES
    assert SlackListener.TRANSITION_TEMPLATES is not AsyncSlackListener.TRANSITION_TEMPLATES
    assert SlackListener.FALLBACK_TEMPLATE is not AsyncSlackListener.FALLBACK_TEMPLATE
    assert set(SlackListener.TRANSITION_TEMPLATES) == {
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("half_open", "closed"),
    }


def test_template_is_a_typed_dict() -> None:
    assert typing.is_typeddict(Template)
    assert Template.__required_keys__ == {"title", "color", "description"}


def test_listeners_satisfy_their_protocols(slack: FakeSlack) -> None:
    assert issubclass(SlackListener, Listener)
    assert issubclass(AsyncSlackListener, AsyncListener)
    assert isinstance(make(SlackListener, slack), Listener)
    assert inspect.iscoroutinefunction(AsyncSlackListener.__call__)
    assert not inspect.iscoroutinefunction(SlackListener.__call__)


@pytest.mark.parametrize("cls", LISTENERS)
def test_signature(cls: SlackClass) -> None:
    parameters = inspect.signature(cls).parameters
    assert [(p.name, p.kind, p.default) for p in parameters.values()] == [
        ("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("channel", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("token", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("api_url", inspect.Parameter.KEYWORD_ONLY, "https://slack.com/api/chat.postMessage"),
        ("timeout", inspect.Parameter.KEYWORD_ONLY, 5.0),
    ]
    # As in 0.9.4: `signal` may also be passed by keyword.
    call = inspect.signature(cls.__call__).parameters["signal"]
    assert call.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_import_without_httpx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    monkeypatch.delitem(sys.modules, "fluxgate.listeners.slack")

    with pytest.raises(ImportError, match=r"pip install fluxgate\[slack\]"):
        importlib.import_module("fluxgate.listeners.slack")
