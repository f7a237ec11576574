"""Permits: which calls a HALF_OPEN breaker admits.

A permit is called as ``permit(changed_at)``, ``changed_at`` being the
wall-clock time the breaker entered HALF_OPEN. The built-ins are implemented
natively and registered with :class:`Permit`.
"""

from abc import ABC, abstractmethod

from fluxgate._fluxgate import PermitAll as All
from fluxgate._fluxgate import Random, RampUp

__all__ = ["Permit", "All", "Random", "RampUp"]


class Permit(ABC):
    """Base class for permit strategies; subclasses override ``__call__``."""

    @abstractmethod
    def __call__(self, changed_at: float) -> bool: ...


for _builtin in (All, Random, RampUp):
    Permit.register(_builtin)
del _builtin
