"""Construction-time checks the native core delegates to Python."""

from __future__ import annotations

from typing import Any

__all__ = ["rebuild", "refuse_component_class"]


def refuse_component_class(name: str, value: type) -> None:
    """Raise ``TypeError`` when ``value``, given as the breaker's argument
    ``name``, is a component class (a subclass of ``Window``, ``Tracker``,
    ``Tripper``, ``Retry`` or ``Permit``, built-ins included) rather than an
    instance of one. Any other class is a callable like any other and stays
    accepted (a class may well be a tracker)."""
    from fluxgate.permits import Permit
    from fluxgate.retries import Retry
    from fluxgate.trackers import Tracker
    from fluxgate.trippers import Tripper
    from fluxgate.windows import Window

    for base in (Window, Tracker, Tripper, Retry, Permit):
        if issubclass(value, base):
            raise TypeError(
                f"{name} must be an instance, not the class {value.__qualname__}: "
                f"pass {value.__qualname__}(...)"
            )


def rebuild(cls: type, builtin: type, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
    """Unpickle (or copy) an instance of ``cls``, a Python subclass of the
    built-in ``builtin`` whose own ``__init__`` takes other arguments: the
    built-in's ``__init__`` runs with the built-in's arguments; the instance
    dict comes back as the pickled state."""
    instance = builtin.__new__(cls)  # type: ignore[call-overload]
    builtin.__init__(instance, *args, **(kwargs or {}))  # type: ignore[misc]
    return instance
