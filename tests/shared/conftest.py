"""Fixtures for the host-shared breaker's tests: breakers driven in other
processes, each stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .workers import Remote


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "heavy: a load test with real processes (gunicorn, a SIGKILL loop); "
        "part of the normal run, deselect with -m 'not heavy'",
    )


@pytest.fixture
def remotes() -> Iterator[Callable[..., Remote]]:
    """Start breakers in other processes (``Remote``); all stop at the end."""
    started: list[Remote] = []

    def start(*args: Any, **kwargs: Any) -> Remote:
        remote = Remote(*args, **kwargs)
        started.append(remote)
        return remote

    try:
        yield start
    finally:
        for remote in started:
            remote.close()
