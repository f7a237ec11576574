"""The ``&`` and ``|`` operators the Tracker and Tripper ABCs share.

Each ABC names the composite classes its operators build; ``a & b`` and
``a | b`` with any callable ``b`` (on either side) build one, and a
non-callable operand gives ``NotImplemented``, so Python raises its usual
TypeError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

_In = TypeVar("_In", contravariant=True)
_Node = TypeVar("_Node", covariant=True)


class Combinable(Generic[_In, _Node]):
    """``&`` and ``|`` building ``_and_type``/``_or_type`` composites: a
    node of type ``_Node`` from callables taking an ``_In``."""

    __slots__ = ()

    _and_type: ClassVar[type[Any]]
    _or_type: ClassVar[type[Any]]

    def __and__(self, other: Callable[[_In], object]) -> _Node:
        if not callable(other):
            return NotImplemented
        node: _Node = self._and_type(self, other)
        return node

    def __rand__(self, other: Callable[[_In], object]) -> _Node:
        if not callable(other):
            return NotImplemented
        node: _Node = self._and_type(other, self)
        return node

    def __or__(self, other: Callable[[_In], object]) -> _Node:
        if not callable(other):
            return NotImplemented
        node: _Node = self._or_type(self, other)
        return node

    def __ror__(self, other: Callable[[_In], object]) -> _Node:
        if not callable(other):
            return NotImplemented
        node: _Node = self._or_type(other, self)
        return node
