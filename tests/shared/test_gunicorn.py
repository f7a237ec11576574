"""gunicorn with four sync workers, each calling a failing upstream through a
breaker: with ``shared=HostMemory(...)`` the host stops calling it after
``MinRequests`` failures (plus the calls already under way), without it
every worker needs its own ``MinRequests`` failures first. Shared by name
(each worker attaches when it imports the app), or unnamed and built in the
master before it forks the workers (``--preload``)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from upstream import Upstream, running_upstream

from .workers import DEADLINE, ON_WINDOWS

pytestmark = [
    pytest.mark.skipif(ON_WINDOWS, reason="gunicorn does not run on Windows"),
    pytest.mark.heavy,
    pytest.mark.no_leakcheck("the breakers run in gunicorn's workers"),
]

gunicorn_config = pytest.importorskip("gunicorn.config", reason="gunicorn is not installed")

WORKERS = 4
MIN_REQUESTS = 20
CLIENTS = 8
# Far more requests than either run needs; reaching it fails the test.
MAX_REQUESTS = 5_000

APP = textwrap.dedent(
    '''
    """A WSGI app calling one upstream through a circuit breaker."""

    import http.client
    import os
    import urllib.parse

    from fluxgate import CallNotPermittedError, CircuitBreaker
    from fluxgate.retries import Never
    from fluxgate.trippers import FailureRate, MinRequests
    from fluxgate.windows import CountWindow

    UPSTREAM = urllib.parse.urlsplit(os.environ["FLUXGATE_TEST_UPSTREAM"])
    NAME = os.environ["FLUXGATE_TEST_SHARED_NAME"]
    if NAME == "-":  # per process
        SHARED = None
    elif NAME == "":  # unnamed: the master builds the breaker (--preload)
        from fluxgate.shared import HostMemory

        SHARED = HostMemory()
    else:
        from fluxgate.shared import HostMemory

        SHARED = HostMemory(NAME, directory=os.environ["FLUXGATE_TEST_SHARED_DIR"])

    breaker = CircuitBreaker(
        window=CountWindow(100),
        tripper=MinRequests(int(os.environ["FLUXGATE_TEST_MIN_REQUESTS"])) & FailureRate(0.5),
        retry=Never(),
        shared=SHARED,
    )


    class UpstreamError(Exception):
        pass


    def fetch():
        connection = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=30)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status >= 500:
            raise UpstreamError(response.status)


    def app(environ, start_response):
        if environ["PATH_INFO"] == "/ping":
            status, body = "200 OK", b"pong"
        else:
            try:
                breaker.call(fetch)
                status, body = "200 OK", b"ok"
            except CallNotPermittedError:
                status, body = "503 Service Unavailable", b"refused"
            except UpstreamError:
                status, body = "502 Bad Gateway", b"failed"
        start_response(
            status,
            [
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
                ("X-Worker", str(os.getpid())),
            ],
        )
        return [body]


    # This process (a worker, or the master with --preload) has built its breaker.
    open(os.path.join(os.environ["FLUXGATE_TEST_READY_DIR"], f"ready-{os.getpid()}"), "w").close()
    '''
)


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_gunicorn(
    tmp_path: Path, upstream: Upstream, shared_name: str | None, preload: bool = False
) -> Iterator[Gunicorn]:
    """gunicorn serving the app above with four sync workers on a free port
    of 127.0.0.1; yields once every worker is up and the app built its
    breaker. ``shared_name`` None: per process; "": unnamed (with
    ``preload``, built in the master before the workers are forked)."""
    (tmp_path / "fluxgate_shared_app.py").write_text(APP)
    ready = tmp_path / "ready"
    ready.mkdir()
    env = dict(os.environ)
    env.update(
        FLUXGATE_TEST_UPSTREAM=upstream.url,
        FLUXGATE_TEST_MIN_REQUESTS=str(MIN_REQUESTS),
        FLUXGATE_TEST_READY_DIR=str(ready),
        FLUXGATE_TEST_SHARED_DIR=str(tmp_path),
    )
    env["FLUXGATE_TEST_SHARED_NAME"] = "-" if shared_name is None else shared_name
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(WORKERS),
        "--worker-class", "sync",
        "--bind", "127.0.0.1:0",  # gunicorn picks the port and logs it
        "--chdir", str(tmp_path),
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--log-level", "info",
    ]  # fmt: skip
    if preload:
        command.append("--preload")
    if "control_socket_disable" in gunicorn_config.Config().settings:
        command.append("--no-control-socket")
    command.append("fluxgate_shared_app:app")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers form a group of their own
        )
    server = Gunicorn(process, log)
    try:
        deadline = time.monotonic() + DEADLINE
        apps = 1 if preload else WORKERS
        while True:
            log_text = server.log_text()
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log_text)
            booted = len(re.findall(r"Booting worker with pid", log_text))
            if found and booted >= WORKERS and len(list(ready.iterdir())) >= apps:
                server.port = int(found[1])
                break
            if process.poll() is not None:
                raise AssertionError(f"gunicorn exited early:\n{log_text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{log_text}")
            time.sleep(0.05)
        assert get(server.port, "/ping")[0] == 200
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group gunicorn led (a worker that outlived
    # its master) goes too.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(DEADLINE)


def get(port: int, path: str = "/") -> tuple[int, int]:
    """(status, pid of the worker that answered)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status, int(response.getheader("X-Worker", "0"))
    finally:
        connection.close()


@dataclass
class Load:
    """Requests from several client threads until every worker has refused
    one, that is until every worker's breaker is open."""

    port: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    refused_by: set[int] = field(default_factory=set)
    errors: list[BaseException] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def client(self) -> None:
        try:
            while not self.done.is_set():
                with self.lock:
                    if self.sent >= MAX_REQUESTS:
                        self.done.set()
                        return
                    self.sent += 1
                status, pid = get(self.port)
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if status == 503:
                        self.refused_by.add(pid)
                        if len(self.refused_by) >= WORKERS:
                            self.done.set()
        except BaseException as error:  # noqa: BLE001 - re-raised by run()
            self.errors.append(error)
            self.done.set()

    def run(self) -> None:
        threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        if self.errors:
            raise self.errors[0]
        assert len(self.refused_by) >= WORKERS, (
            f"after {self.sent} requests only workers {sorted(self.refused_by)} refused; "
            f"statuses {self.statuses}"
        )
        assert set(self.statuses) <= {502, 503}, self.statuses


@pytest.fixture
def failing_upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstream]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with running_upstream(status=500) as upstream:
        yield upstream


@pytest.mark.parametrize(
    "shared_name, preload",
    [("gunicorn-upstream", False), ("", True)],
    ids=["named", "unnamed-preload"],
)
def test_shared_breaker_stops_the_host_after_min_requests(
    tmp_path, failing_upstream, shared_name, preload
) -> None:
    with running_gunicorn(tmp_path, failing_upstream, shared_name, preload) as server:
        Load(server.port).run()
        reached = failing_upstream.requests
    # When the MIN_REQUESTS-th failure is recorded, each other worker can
    # have one call under way or about to be admitted; its own next outcome
    # sees the open breaker. So at most one call per worker beyond the
    # MIN_REQUESTS that opened it.
    assert MIN_REQUESTS <= reached <= MIN_REQUESTS + WORKERS


def test_unshared_breakers_each_need_their_own_failures(tmp_path, failing_upstream) -> None:
    with running_gunicorn(tmp_path, failing_upstream, shared_name=None) as server:
        Load(server.port).run()
        reached = failing_upstream.requests
    # Every worker refused, so every worker's breaker saw MIN_REQUESTS
    # failures of its own.
    assert reached >= 3 * MIN_REQUESTS
    assert not list(tmp_path.glob("fluxgate-*"))
