"""A small Slack-compatible HTTP server on 127.0.0.1, started inside a test."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


# Upper bounds so a broken test can never leave the server running.
SOCKET_TIMEOUT = 5.0
SERVER_LIFETIME = 120.0


@dataclass
class Posted:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeSlack:
    """Records every post and answers like Slack's ``chat.postMessage``.

    Answers queued with ``reply`` are used first, in order; otherwise the
    server answers ``{"ok": true, "ts": ...}`` with a fresh ``ts``.
    """

    url: str
    posts: list[Posted] = field(default_factory=list)
    replies: deque[tuple[int, Any]] = field(default_factory=deque)
    issued_ts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, body: Any, status: int = 200) -> None:
        with self.lock:
            self.replies.append((status, body))

    def answer(self, post: Posted) -> tuple[int, Any]:
        with self.lock:
            self.posts.append(post)
            if self.replies:
                return self.replies.popleft()
            ts = f"1700000000.{len(self.issued_ts) + 1:06d}"
            self.issued_ts.append(ts)
            return 200, {"ok": True, "channel": post.body.get("channel"), "ts": ts}

    @property
    def bodies(self) -> list[Any]:
        with self.lock:
            return [post.body for post in self.posts]


def _handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, answer = slack.answer(Posted(self.path, headers, body))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_fake_slack() -> Iterator[FakeSlack]:
    """Serve a ``FakeSlack`` in a thread until the block ends."""
    fake = FakeSlack(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    host, port = server.server_address[:2]
    fake.url = f"http://{host}:{port}/api/chat.postMessage"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    watchdog = threading.Timer(SERVER_LIFETIME, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield fake
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(SOCKET_TIMEOUT)
