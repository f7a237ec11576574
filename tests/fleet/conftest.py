"""A real redis-server for the fleet tests, and members in processes of
their own standing for hosts.

The server is Debian's (or any) ``redis-server`` on 127.0.0.1, on a free
port, with persistence off, stopped at teardown. Without ``redis-server``
or redis-py the tests skip with the reason, unless
``FLUXGATE_REQUIRE_REDIS=1`` (set by ``.ci/run``), which makes that a
failure.

``RedisFleet.sync_now()`` is the test hook that forces a sync now: the
tests move the fleet by it instead of waiting for the sync thread, except
where the thread itself is under test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "FLUXGATE_REQUIRE_REDIS"
MEMBER = Path(__file__).with_name("member.py")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 forbids skipping the fleet tests")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; can be stopped, resumed, killed, restarted."""

    def __init__(self, executable: str, tmp: Path) -> None:
        self.executable = executable
        self.tmp = tmp
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.executable,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # The server is not under test: no sanitizer runtime preloaded
            # into it (tools/with-sanitizers).
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
        )
        client = self.client()
        for _ in range(500):
            try:
                if client.ping():
                    return
            except Exception:
                if self.process.poll() is not None:
                    raise RuntimeError("redis-server exited at start") from None
                time.sleep(0.01)
        raise RuntimeError("redis-server did not answer")

    def client(self, **kwargs: Any) -> Any:
        import redis

        kwargs.setdefault("socket_timeout", 2)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("redis-server is not installed")
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("redis-py is not installed (pip install 'fluxgate[redis]')")
    assert executable is not None
    server = RedisServer(executable, tmp_path)
    try:
        yield server
    finally:
        server.stop()


class Member:
    """A fleet member in its own process (a host)."""

    def __init__(self, port: int, name: str, interval: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), str(port), name, repr(interval)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.ask_line() == "ready"

    def ask_line(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the member process exited")
        return json.loads(line)

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.ask_line()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def members(redis_server: RedisServer) -> Iterator[Any]:
    made: list[Member] = []

    def make(n: int, name: str = "payments", interval: float = 60.0) -> list[Member]:
        new = [Member(redis_server.port, name, interval) for _ in range(n)]
        made.extend(new)
        return new

    try:
        yield make
    finally:
        for member in made:
            member.close()
