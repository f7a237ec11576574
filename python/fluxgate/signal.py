"""The value listeners receive on every state transition."""

from fluxgate._values import Signal

__all__ = ["Signal"]
