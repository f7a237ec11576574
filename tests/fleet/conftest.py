"""A real redis-server for the fleet tests, and members in processes of
their own standing for hosts.

The server is Debian's (or any) ``redis-server`` on 127.0.0.1, on a free
port, with persistence off, stopped at teardown. ``redis_cluster`` is a
Redis Cluster of three masters made of the same ``redis-server`` (and
``redis-cli --cluster create``), started once per test module. Without
``redis-server``, ``redis-cli`` or redis-py the tests skip with the reason,
unless ``FLUXGATE_REQUIRE_REDIS=1`` (set by ``.ci/run``), which makes that
a failure.

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


def _redis_server_executable() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        _unavailable("redis-server is not installed")
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("redis-py is not installed (pip install 'fluxgate[redis]')")
    assert executable is not None
    return executable


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(_redis_server_executable(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


def _free_cluster_port(taken: list[int]) -> int:
    """A free port whose cluster bus port (the port + 10000) is free too,
    neither of them one of `taken`'s (nor their bus ports)."""
    used = set(taken) | {port + 10000 for port in taken}
    for _ in range(200):
        port = _free_port()
        if port + 10000 > 65535 or {port, port + 10000} & used:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """A Redis Cluster of three masters (no replicas) on 127.0.0.1, each
    node a redis-server in a directory of its own, persistence off."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def start(self, executable: str, cli: str, tmp: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        for i in range(3):
            directory = tmp / f"node{i}"
            directory.mkdir()
            port = _free_cluster_port(self.ports)
            self.ports.append(port)
            self.processes.append(
                subprocess.Popen(
                    [
                        executable,
                        "--bind", "127.0.0.1",
                        "--port", str(port),
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(directory / "nodes.conf"),
                        # Long: a node stopped by a test (SIGSTOP) is not
                        # failed by the others meanwhile.
                        "--cluster-node-timeout", "60000",
                        "--save", "",
                        "--appendonly", "no",
                        "--dir", str(directory),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
            )
        nodes = [self.node(port) for port in self.ports]
        for node, process in zip(nodes, self.processes):
            self._wait(node.ping, process, "answer")
        created = subprocess.run(
            [cli, "--cluster", "create"]
            + [f"127.0.0.1:{port}" for port in self.ports]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=60,
        )
        if created.returncode != 0:
            output = created.stdout.decode(errors="replace")
            raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
        for node, process in zip(nodes, self.processes):
            self._wait(
                lambda node=node: node.cluster("info")["cluster_state"] == "ok",
                process,
                "reach cluster_state:ok",
            )
            node.close()

    @staticmethod
    def _wait(ready: Any, process: subprocess.Popen[bytes], what: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except Exception:
                pass
            if process.poll() is not None:
                raise RuntimeError("a cluster node exited at start")
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not {what}")

    @property
    def port(self) -> int:
        """The port a cluster client starts from (any node would do)."""
        return self.ports[0]

    def node(self, port: int) -> Any:
        """A plain client of one node."""
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)

    def client(self, **kwargs: Any) -> Any:
        """A redis.cluster.RedisCluster client of the whole cluster."""
        from redis.cluster import RedisCluster

        kwargs.setdefault("socket_timeout", 2)
        return RedisCluster(host="127.0.0.1", port=self.port, **kwargs)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    executable = _redis_server_executable()
    cli = shutil.which("redis-cli")
    if cli is None:
        _unavailable("redis-cli is not installed")
    assert cli is not None
    cluster = RedisCluster()
    try:
        cluster.start(executable, cli, tmp_path_factory.mktemp("cluster"))
        yield cluster
    finally:
        cluster.stop()


class Member:
    """A fleet member in its own process (a host); a client of a Redis
    Cluster with ``cluster=True``."""

    def __init__(self, port: int, name: str, interval: float, cluster: bool = False) -> None:
        command = [sys.executable, str(MEMBER), str(port), name, repr(interval)]
        if cluster:
            command.append("cluster")
        self.process = subprocess.Popen(
            command,
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


@pytest.fixture
def cluster_members(redis_cluster: RedisCluster) -> Iterator[Any]:
    """Members in processes of their own, each a RedisCluster client."""
    made: list[Member] = []

    def make(n: int, name: str, interval: float = 60.0) -> list[Member]:
        new = [Member(redis_cluster.port, name, interval, cluster=True) for _ in range(n)]
        made.extend(new)
        return new

    try:
        yield make
    finally:
        for member in made:
            member.close()
