"""LogListener: one log record per signal, at a level chosen by the new state."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from typing import get_args

import pytest

from fluxgate.listeners import Listener
from fluxgate.listeners.log import LogListener
from fluxgate.signal import Signal
from fluxgate.state import State

STATES: tuple[State, ...] = get_args(State)
T0 = 1_700_000_000.0
DEFAULT_LOGGER = "fluxgate.listeners.log"


def local_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


@pytest.fixture(autouse=True)
def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def test_logs_the_documented_message(caplog: pytest.LogCaptureFixture) -> None:
    LogListener("payments")(Signal("closed", "open", T0))

    [record] = caplog.records
    assert record.name == DEFAULT_LOGGER
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"[{local_time(T0)}] Circuit Breaker 'payments' transitioned from closed to open"
    )
    assert record.msg == "[%s] Circuit Breaker '%s' transitioned from %s to %s"


@pytest.fixture
def utc() -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("utc")
def test_time_is_formatted_in_local_time(caplog: pytest.LogCaptureFixture) -> None:
    LogListener("payments")(Signal("half_open", "closed", 86_400 + 3_723.9))

    assert caplog.messages == [
        "[1970-01-02 01:02:03] Circuit Breaker 'payments' transitioned from half_open to closed"
    ]


def test_default_level_map() -> None:
    assert LogListener.DEFAULT_LEVEL_MAP == {
        "closed": logging.INFO,
        "open": logging.WARNING,
        "half_open": logging.INFO,
        "metrics_only": logging.INFO,
        "disabled": logging.INFO,
        "forced_open": logging.WARNING,
    }


@pytest.mark.parametrize("new", STATES)
def test_level_follows_the_new_state(caplog: pytest.LogCaptureFixture, new: State) -> None:
    LogListener("payments")(Signal("closed", new, T0))

    [record] = caplog.records
    assert record.levelno == LogListener.DEFAULT_LEVEL_MAP[new]
    assert record.getMessage().endswith(f"transitioned from closed to {new}")


def test_level_map_is_merged_over_the_default(caplog: pytest.LogCaptureFixture) -> None:
    listener = LogListener("payments", level_map={"closed": logging.DEBUG, "open": logging.ERROR})
    for new in STATES:
        listener(Signal("half_open", new, T0))

    levels = {record.getMessage().rsplit(" ", 1)[1]: record.levelno for record in caplog.records}
    assert levels == {
        "closed": logging.DEBUG,
        "open": logging.ERROR,
        "half_open": logging.INFO,
        "metrics_only": logging.INFO,
        "disabled": logging.INFO,
        "forced_open": logging.WARNING,
    }
    assert LogListener.DEFAULT_LEVEL_MAP["open"] == logging.WARNING


def test_state_missing_from_both_maps_logs_at_info(caplog: pytest.LogCaptureFixture) -> None:
    class Quiet(LogListener):
        DEFAULT_LEVEL_MAP = {"closed": logging.DEBUG}

    listener = Quiet("payments", level_map={"disabled": logging.ERROR})
    for new in ("closed", "open", "disabled", "forced_open"):
        listener(Signal("half_open", new, T0))

    assert [record.levelno for record in caplog.records] == [
        logging.DEBUG,
        logging.INFO,
        logging.ERROR,
        logging.INFO,
    ]


def test_custom_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("myapp.breakers")
    LogListener("search", logger=logger)(Signal("open", "half_open", T0))

    [record] = caplog.records
    assert record.name == "myapp.breakers"
    assert record.levelno == logging.INFO
    assert "Circuit Breaker 'search' transitioned from open to half_open" in record.getMessage()


def test_default_logger_is_scoped_under_fluxgate(caplog: pytest.LogCaptureFixture) -> None:
    fluxgate_logger = logging.getLogger("fluxgate")
    level = fluxgate_logger.level
    fluxgate_logger.setLevel(logging.ERROR)
    try:
        LogListener("payments")(Signal("closed", "open", T0))
    finally:
        fluxgate_logger.setLevel(level)

    assert caplog.records == []


def test_is_a_sync_listener() -> None:
    listener = LogListener("payments")

    assert isinstance(listener, Listener)
    assert issubclass(LogListener, Listener)
    assert listener(Signal("closed", "open", T0)) is None
    assert not inspect.iscoroutinefunction(LogListener.__call__)
    parameters = inspect.signature(LogListener).parameters
    assert [(name, p.default) for name, p in parameters.items()] == [
        ("name", inspect.Parameter.empty),
        ("logger", None),
        ("level_map", None),
    ]
