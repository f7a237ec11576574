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
    # Seconds between the bytes of each of the next answers (see ``trickle``).
    trickles: deque[float] = field(default_factory=deque)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Set once a trickled answer has been sent in full.
    trickled: threading.Event = field(default_factory=threading.Event)
    received: threading.Condition = field(default_factory=threading.Condition)

    def reply(self, body: Any, status: int = 200) -> None:
        with self.lock:
            self.replies.append((status, body))

    def trickle(self, seconds_per_byte: float, answers: int = 1) -> None:
        """Send the next ``answers`` answers one byte at a time, like a stuck proxy.

        Each read of the client gets a byte well within its timeout, so only
        a total deadline stops the wait. The answer is abandoned when the
        server stops.
        """
        with self.lock:
            self.trickles.extend([seconds_per_byte] * answers)

    def next_trickle(self) -> float | None:
        with self.lock:
            return self.trickles.popleft() if self.trickles else None

    def wait_for_posts(self, count: int, timeout: float = 30.0) -> list[Any]:
        """Wait until ``count`` posts arrived (or ``timeout``), then return the bodies."""
        with self.received:
            self.received.wait_for(lambda: len(self.posts) >= count, timeout)
        return self.bodies

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
            with slack.received:
                slack.received.notify_all()
            data = json.dumps(answer).encode()
            delay = slack.next_trickle()
            if delay is not None:
                self._trickle(status, data, delay)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _trickle(self, status: int, data: bytes, delay: float) -> None:
            head = (
                f"HTTP/1.1 {status} {self.responses[status][0]}\r\n"
                "Content-Type: application/json; charset=utf-8\r\n"
                "Connection: close\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            # Said in the head too, so that the client does not reuse the
            # connection and race the server closing it.
            self.close_connection = True
            try:
                for byte in head + data:
                    if slack.stopping.wait(delay):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                slack.trickled.set()
            except OSError:  # the client gave up and closed the connection
                pass

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
        fake.stopping.set()
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(SOCKET_TIMEOUT)
