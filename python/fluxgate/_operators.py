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
        return self.__compose(self._and_type, self, other)

    def __rand__(self, other: Callable[[_In], object]) -> _Node:
        return self.__compose(self._and_type, other, self)

    def __or__(self, other: Callable[[_In], object]) -> _Node:
        return self.__compose(self._or_type, self, other)

    def __ror__(self, other: Callable[[_In], object]) -> _Node:
        return self.__compose(self._or_type, other, self)

    def __compose(self, node_type: type[Any], left: object, right: object) -> _Node:
        """node_type(left, right), or NotImplemented when an operand is not
        callable (self, the other one, always is)."""
        node: _Node = NotImplemented
        if callable(left) and callable(right):
            node = node_type(left, right)
        return node
