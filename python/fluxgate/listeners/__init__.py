"""Listeners: callables a breaker notifies with a ``Signal`` on each transition.

The shipped listeners live in submodules so that their optional dependencies
are imported only when used: ``fluxgate.listeners.log``,
``fluxgate.listeners.prometheus`` (extra ``prometheus``) and
``fluxgate.listeners.slack`` (extra ``slack``).
"""

from fluxgate.listeners.base import AsyncListener, Listener

__all__ = ["AsyncListener", "Listener"]
