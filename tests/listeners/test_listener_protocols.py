"""The Listener and AsyncListener protocols, and what importing them costs."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import fluxgate.listeners
import fluxgate.listeners.base
from fluxgate.listeners import AsyncListener, Listener
from fluxgate.signal import Signal


def test_exported_from_the_package_and_base() -> None:
    assert fluxgate.listeners.Listener is fluxgate.listeners.base.Listener
    assert fluxgate.listeners.AsyncListener is fluxgate.listeners.base.AsyncListener
    assert sorted(fluxgate.listeners.__all__) == ["AsyncListener", "Listener"]


def test_any_callable_satisfies_the_protocols() -> None:
    def function(signal: Signal, /) -> None:
        pass

    async def coroutine_function(signal: Signal, /) -> None:
        pass

    class Callable:
        def __call__(self, signal: Signal, /) -> None:
            pass

    for listener in (function, coroutine_function, Callable(), print, lambda signal: None):
        assert isinstance(listener, Listener)
        assert isinstance(listener, AsyncListener)


def test_non_callables_do_not_satisfy_the_protocols() -> None:
    for value in (42, "listener", None, object()):
        assert not isinstance(value, Listener)
        assert not isinstance(value, AsyncListener)


def test_signal_is_positional_only() -> None:
    for protocol in (Listener, AsyncListener):
        parameters = inspect.signature(protocol.__call__).parameters
        assert list(parameters) == ["self", "signal"]
        assert parameters["signal"].kind is inspect.Parameter.POSITIONAL_ONLY
    assert inspect.iscoroutinefunction(AsyncListener.__call__)
    assert not inspect.iscoroutinefunction(Listener.__call__)


def test_explicit_subclass_works() -> None:
    received: list[Signal] = []

    class Recorder(Listener):
        def __call__(self, signal: Signal, /) -> None:
            received.append(signal)

    signal = Signal("closed", "open", 1.0)
    Recorder()(signal)
    assert received == [signal]


def test_importing_the_listeners_imports_no_optional_dependency() -> None:
    code = textwrap.dedent(
        """
        import sys
        import fluxgate
        import fluxgate.listeners
        import fluxgate.listeners.base
        import fluxgate.listeners.log
        print(sorted({"prometheus_client", "httpx"} & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
