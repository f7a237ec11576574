"""Trackers: which exceptions count as failures.

A tracker is called with the exception a protected call raised and returns
``True`` when it counts as a failure; an exception it rejects propagates to
the caller unrecorded. ``&``, ``|`` and ``~`` combine trackers and
short-circuit like ``and``, ``or`` and ``not``; any callable taking an
exception may be an operand, and ``~~t is t``.

The built-in trackers are implemented in C and registered with ``Tracker``;
subclass ``Tracker`` (or a built-in) to write your own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from fluxgate._fluxgate import Custom, TrackerAll as All, TypeOf
from fluxgate._fluxgate import _TrackerAnd as _And
from fluxgate._fluxgate import _TrackerNot as _Not
from fluxgate._fluxgate import _TrackerOr as _Or
from fluxgate._operators import Combinable

__all__ = ["Tracker", "All", "TypeOf", "Custom"]


class Tracker(ABC, Combinable[Exception, "Tracker"]):
    """Base class for exception trackers.

    Subclasses implement ``__call__``. ``&``, ``|`` and ``~`` build
    short-circuiting composites with any callable.
    """

    __slots__ = ()
    _and_type = _And
    _or_type = _Or

    @abstractmethod
    def __call__(self, exception: Exception) -> bool: ...

    def __invert__(self) -> Tracker:
        return _Not(self)


for _builtin in (All, TypeOf, Custom, _And, _Or, _Not):
    Tracker.register(_builtin)
del _builtin
