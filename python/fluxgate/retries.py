"""Retries: when an OPEN breaker may try HALF_OPEN.

A retry is called as ``retry(changed_at, reopens)``: ``changed_at`` is the
wall-clock time the breaker entered OPEN and ``reopens`` the number of
HALF_OPEN to OPEN returns since it was last CLOSED. The built-ins are
implemented natively and registered with :class:`Retry`.
"""

from abc import ABC, abstractmethod

from fluxgate._fluxgate import Always, Backoff, Cooldown, Never

__all__ = ["Retry", "Always", "Never", "Cooldown", "Backoff"]


class Retry(ABC):
    """Base class for retry strategies; subclasses override ``__call__``."""

    @abstractmethod
    def __call__(self, changed_at: float, reopens: int) -> bool: ...


for _builtin in (Always, Never, Cooldown, Backoff):
    Retry.register(_builtin)
del _builtin
