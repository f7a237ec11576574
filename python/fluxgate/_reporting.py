"""Log messages for listener failures, called by the native core."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("fluxgate")


def report_listener_error(listener: object, error: BaseException) -> None:
    """Log a listener that raised; the next listener still runs."""
    logger.error("Listener %s failed", type(listener).__name__, exc_info=error)


def listener_name(listener: object) -> str:
    """The listener's ``__qualname__``, else its class name."""
    name = getattr(listener, "__qualname__", None)
    return name if isinstance(name, str) else type(listener).__name__


def report_async_listener(listener: object, awaitable: Any) -> None:
    """Drop an awaitable a listener returned to a synchronous breaker."""
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()
    logger.error(
        "Listener %s returned a coroutine; async listeners require "
        "AsyncCircuitBreaker. The notification was dropped.",
        listener_name(listener),
    )
