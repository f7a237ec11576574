"""Windows: which recent calls a breaker's metric covers.

A window receives one :class:`~fluxgate.metric.Record` per recorded call and
reports the totals of the records it still holds as a
:class:`~fluxgate.metric.Metric`. The built-ins are implemented natively and
registered with :class:`Window`; subclass :class:`Window` to write your own.
"""

from abc import ABC, abstractmethod

from fluxgate._fluxgate import CountWindow, TimeWindow
from fluxgate._values import Metric as Metric
from fluxgate._values import Record as Record

__all__ = ["Window", "CountWindow", "TimeWindow"]


class Window(ABC):
    """Base class for windows: override ``record``, ``get_metric`` and ``reset``."""

    @abstractmethod
    def record(self, record: Record) -> None:
        """Add the record of one call."""

    @abstractmethod
    def get_metric(self) -> Metric:
        """The totals of the records the window holds."""

    @abstractmethod
    def reset(self) -> None:
        """Forget every record."""


for _builtin in (CountWindow, TimeWindow):
    Window.register(_builtin)
del _builtin
