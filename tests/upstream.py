"""Small HTTP upstreams on 127.0.0.1, each served by a thread during a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SOCKET_TIMEOUT = 5.0
SERVER_LIFETIME = 120.0


@dataclass
class Upstream:
    """Answers every request with ``status`` and counts the requests it got."""

    status: int
    url: str = ""
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            self.requests += 1
            return self.status


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per response: no delayed-ACK stalls

        def do_GET(self) -> None:
            status = upstream.answer()
            body = f"status {status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_upstream(status: int = 200) -> Iterator[Upstream]:
    """Serve an ``Upstream`` answering ``status`` until the block ends."""
    upstream = Upstream(status)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    host, port = server.server_address[:2]
    upstream.url = f"http://{host}:{port}"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    watchdog = threading.Timer(SERVER_LIFETIME, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield upstream
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(SOCKET_TIMEOUT)
