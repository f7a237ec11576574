"""Fixtures for the listener tests."""

import threading
from collections.abc import Iterator

import pytest

from .slack_server import FakeSlack, running_fake_slack


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """A Slack-compatible server on 127.0.0.1 for the duration of one test."""
    # Requests to the local server must not be sent through a proxy.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with running_fake_slack() as fake:
        yield fake
    # A post a test abandoned ends once the server is gone; let it end here,
    # so that no test's worker thread runs on into the next test.
    for thread in threading.enumerate():
        if thread.name.startswith("fluxgate-slack-"):
            thread.join(10)
