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
from collections.abc import Callable

from fluxgate._fluxgate import Custom, TrackerAll as All, TypeOf
from fluxgate._fluxgate import _TrackerAnd as _And
from fluxgate._fluxgate import _TrackerNot as _Not
from fluxgate._fluxgate import _TrackerOr as _Or

__all__ = ["Tracker", "All", "TypeOf", "Custom"]


class Tracker(ABC):
    """Base class for exception trackers.

    Subclasses implement ``__call__``. ``&``, ``|`` and ``~`` build
    short-circuiting composites with any callable.
    """

    __slots__ = ()

    @abstractmethod
    def __call__(self, exception: Exception) -> bool: ...

    def __and__(self, other: Callable[[Exception], object]) -> Tracker:
        if not callable(other):
            return NotImplemented
        return _And(self, other)

    def __rand__(self, other: Callable[[Exception], object]) -> Tracker:
        if not callable(other):
            return NotImplemented
        return _And(other, self)

    def __or__(self, other: Callable[[Exception], object]) -> Tracker:
        if not callable(other):
            return NotImplemented
        return _Or(self, other)

    def __ror__(self, other: Callable[[Exception], object]) -> Tracker:
        if not callable(other):
            return NotImplemented
        return _Or(other, self)

    def __invert__(self) -> Tracker:
        return _Not(self)


for _builtin in (All, TypeOf, Custom, _And, _Or, _Not):
    Tracker.register(_builtin)
del _builtin
