"""The extension module as a module: independent copies, and their clean-up.

A multi-phase-init extension can be loaded more than once (a reload, a
subinterpreter); each copy has its own types and state, and a copy nobody
uses any more must be collectable, default components included.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from types import ModuleType

import fluxgate._fluxgate as extension


def load_copy() -> ModuleType:
    spec = importlib.util.find_spec("fluxgate._fluxgate")
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


def test_a_copy_has_its_own_types() -> None:
    copy = load_copy()
    assert copy is not extension
    assert copy.CountWindow is not extension.CountWindow
    assert repr(copy.CountWindow(3)) == repr(extension.CountWindow(3))


# The check below, as a script: on 3.13's free-threaded build it must run in
# a fresh interpreter (see the test).
COLLECTED_CHECK = """
import gc
import importlib.util
import weakref

spec = importlib.util.find_spec("fluxgate._fluxgate")
assert spec is not None and spec.loader is not None
copy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(copy)
# An instance of each component type that holds nothing but its type,
# kept alive only by one another and the copy.
components = [
    copy.CountWindow(5), copy.TimeWindow(5), copy.TrackerAll(), copy.Closed(),
    copy.HalfOpened(), copy.MinRequests(1) & copy.FailureRate(0.5),
    copy.FailureStreak(2), copy.Always(), copy.Never(), copy.Cooldown(1.0),
    copy.Backoff(1.0), copy.PermitAll(), copy.Random(0.5), copy.RampUp(0.1, 1.0, 1.0),
]
copy.components = components
module_ref = weakref.ref(copy)
type_refs = [weakref.ref(type(component)) for component in components]
del copy, components
gc.collect()
assert module_ref() is None, "the copy of the module was not collected"
assert [ref() for ref in type_refs] == [None] * len(type_refs), "a type was not collected"
"""

# CPython 3.13's free-threaded build makes every module, module dict and heap
# type created after the first thread other than the main one has started
# immortal, instead of giving it deferred reference counting (CPython
# gh-117783; 3.14 counts them per thread instead).  Such a copy can never be
# collected in a process that has run threads, as this test run has, so there
# the check runs in a fresh interpreter that starts none.
IMMORTALIZES_AFTER_THREADS = bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and (
    sys.version_info[:2] == (3, 13)
)


def test_an_unused_copy_is_collected_with_its_components() -> None:
    if IMMORTALIZES_AFTER_THREADS:
        result = subprocess.run(
            [sys.executable, "-c", COLLECTED_CHECK],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    else:
        exec(COLLECTED_CHECK, {})


def test_a_breaker_takes_a_window_of_another_copy() -> None:
    from fluxgate import CircuitBreaker

    copy = load_copy()
    cb = CircuitBreaker(window=copy.CountWindow(5))
    assert cb.call(lambda: "ok") == "ok"
    metrics = cb.info().metrics
    assert (metrics.total_count, metrics.failure_count) == (1, 0)


def test_a_user_window_may_return_a_metric_of_another_copy() -> None:
    from fluxgate import CircuitBreaker
    from fluxgate.metric import Record
    from fluxgate.trippers import FailureRate, MinRequests
    from fluxgate.windows import Window

    copy = load_copy()

    class Wrapped(Window):
        def __init__(self) -> None:
            self.inner = copy.CountWindow(5)

        def record(self, record: Record) -> None:
            self.inner.record(record)

        def get_metric(self) -> object:
            return self.inner.get_metric()

        def reset(self) -> None:
            self.inner.reset()

    cb = CircuitBreaker(window=Wrapped(), tripper=MinRequests(1) & FailureRate(1.0))
    assert cb.call(lambda: "ok") == "ok"
    assert cb.info().metrics.total_count == 1
    assert cb.info().state == "closed"
