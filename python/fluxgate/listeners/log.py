"""A listener that writes one log record per state transition."""

from __future__ import annotations

import logging
from typing import ClassVar

from fluxgate.listeners._time import format_timestamp
from fluxgate.listeners.base import Listener as Listener
from fluxgate.signal import Signal as Signal
from fluxgate.state import State

__all__ = ["LogListener"]


class LogListener(Listener):
    """Log each transition of the breaker called ``name``.

    Records go to ``logger`` (default ``logging.getLogger("fluxgate.listeners.log")``)
    at the level ``level_map`` gives for the new state; its entries are merged
    over ``DEFAULT_LEVEL_MAP`` and a state missing from both logs at INFO.
    Being a plain callable, it works with both breakers.
    """

    DEFAULT_LEVEL_MAP: ClassVar[dict[State, int]] = {
        "closed": logging.INFO,
        "open": logging.WARNING,
        "half_open": logging.INFO,
        "metrics_only": logging.INFO,
        "disabled": logging.INFO,
        "forced_open": logging.WARNING,
    }

    def __init__(
        self,
        name: str,
        logger: logging.Logger | None = None,
        level_map: dict[State, int] | None = None,
    ) -> None:
        self._name = name
        self._logger = (
            logger if logger is not None else logging.getLogger("fluxgate.listeners.log")
        )
        self._level_map: dict[State, int] = {**self.DEFAULT_LEVEL_MAP, **(level_map or {})}

    def __call__(self, signal: Signal) -> None:
        self._logger.log(
            self._level_map.get(signal.new_state, logging.INFO),
            "[%s] Circuit Breaker '%s' transitioned from %s to %s",
            format_timestamp(signal.timestamp),
            self._name,
            signal.old_state,
            signal.new_state,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, logger={self._logger!r})"
