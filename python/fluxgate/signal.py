"""The value listeners receive on every state transition."""

from fluxgate._values import Signal
from fluxgate.state import State as State

__all__ = ["Signal"]
