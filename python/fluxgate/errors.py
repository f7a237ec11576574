"""Exceptions raised by circuit breakers."""

from fluxgate._fluxgate import CallNotPermittedError

__all__ = ["CallNotPermittedError"]
