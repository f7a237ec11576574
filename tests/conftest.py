"""Shared test configuration.

Hypothesis profiles
    ``default`` (loaded here): hypothesis's own, without a deadline: the
    suite asserts behaviour, not speed, and a busy machine must not fail it.
    ``slow``: no deadline, for builds that run far slower than usual
    (sanitizers, the debug interpreter); pick it with
    ``--hypothesis-profile=slow``.
    ``leakcheck``: deterministic and short, loaded by the leak check below.

Reference-leak check (``FLUXGATE_LEAKCHECK=1``, or ``=WARMUPS:RUNS``)
    Needs a debug build of CPython (``sys.gettotalrefcount``).  Each test is
    first run WARMUPS + RUNS times unreported, each time with its own
    function-scoped fixtures, and the total reference count and the number of
    allocated memory blocks are read after each run (after clearing the usual
    interpreter caches and collecting garbage).  A test whose every one of the
    last RUNS runs grows either number leaks consistently and fails; noise
    makes some deltas zero or negative, a real leak makes none of them so.
    The test then runs once more as usual, and that run is the one reported.
    A test that does not pass on a repeat run, or whose first run takes longer
    than ``FLUXGATE_LEAKCHECK_SLOW`` seconds (default 10), is reported as
    usual but not measured; the run's closing summary lists such tests.
    Mark a test ``@pytest.mark.no_leakcheck(reason)`` to exempt it.

GIL check (``FLUXGATE_REQUIRE_NO_GIL=1``)
    For a free-threaded build run with the GIL off: after every fluxgate
    module has been imported, and again when the run ends, the GIL must still
    be off.  The interpreter turns it back on (with a RuntimeWarning) when it
    loads an extension module that does not declare itself free-threading
    safe, and then nothing here would run in parallel.
"""

from __future__ import annotations

import abc
import gc
import importlib
import os
import pkgutil
import re
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.runner import runtestprotocol
from hypothesis import HealthCheck, settings

from fluxgate.metric import Record
from fluxgate.windows import CountWindow

settings.register_profile("default", deadline=None)
settings.load_profile("default")
settings.register_profile(
    "slow", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# The same few examples on every run, so that runs are comparable.
settings.register_profile(
    "leakcheck",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow],
)

LEAKCHECK_ENV = "FLUXGATE_LEAKCHECK"
NO_GIL_ENV = "FLUXGATE_REQUIRE_NO_GIL"


def _gil_enabled() -> bool:
    is_gil_enabled: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return True if is_gil_enabled is None else is_gil_enabled()


class RequireNoGil:
    """Fails the run if the GIL is on once every fluxgate module is imported,
    or at its end (see the module docstring)."""

    def __init__(self) -> None:
        import fluxgate

        for module in pkgutil.walk_packages(fluxgate.__path__, "fluxgate."):
            importlib.import_module(module.name)
        if _gil_enabled():
            raise pytest.UsageError(
                f"{NO_GIL_ENV}: the GIL is enabled after importing every fluxgate "
                "module (run a free-threaded build without PYTHON_GIL=1)"
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if _gil_enabled():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\nerror: {NO_GIL_ENV}: the GIL was enabled during the run", file=sys.stderr)


def _leakcheck_runs(value: str) -> tuple[int, int] | None:
    """``FLUXGATE_LEAKCHECK``'s (warm-ups, measured runs), or None if off."""
    if value in ("", "0"):
        return None
    if value == "1":
        return 3, 3
    match = re.fullmatch(r"(\d+):(\d+)", value)
    if match is None or int(match[1]) < 1 or int(match[2]) < 2:
        raise pytest.UsageError(
            f"{LEAKCHECK_ENV} must be 0, 1 or WARMUPS:RUNS with WARMUPS >= 1 "
            f"and RUNS >= 2, not {value!r}"
        )
    return int(match[1]), int(match[2])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "no_leakcheck(reason): exempt a test from the leak check"
    )
    if os.environ.get(NO_GIL_ENV, "") not in ("", "0"):
        config.pluginmanager.register(RequireNoGil(), "fluxgate-require-no-gil")
    runs = _leakcheck_runs(os.environ.get(LEAKCHECK_ENV, ""))
    if runs is None:
        return
    if not hasattr(sys, "gettotalrefcount"):
        raise pytest.UsageError(
            f"{LEAKCHECK_ENV} needs a debug build of Python "
            "(sys.gettotalrefcount), e.g. python3.11-dbg"
        )
    settings.load_profile("leakcheck")
    slow = float(os.environ.get("FLUXGATE_LEAKCHECK_SLOW", "10"))
    config.pluginmanager.register(LeakCheck(*runs, slow), "fluxgate-leakcheck")


def _abc_classes() -> list[abc.ABCMeta]:
    found = []
    seen: set[type] = set()
    stack: list[type] = [object]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if isinstance(cls, abc.ABCMeta):
            found.append(cls)
        stack.extend(type.__subclasses__(cls))
    return found


def _clear_caches(abcs: list[abc.ABCMeta]) -> None:
    """Empty the caches that fill up on first use, as CPython's own
    ``regrtest -R`` does, so that only what a test keeps is counted."""
    sys._clear_type_cache()
    re.purge()
    for cls in abcs:
        cls._abc_caches_clear()  # type: ignore[attr-defined]
    typing = sys.modules.get("typing")
    for cleanup in getattr(typing, "_cleanups", ()):
        cleanup()
    for module_name, function in (
        ("linecache", "clearcache"),
        ("struct", "_clearcache"),
        ("urllib.parse", "clear_cache"),
    ):
        getattr(sys.modules.get(module_name), function, lambda: None)()
    gc.collect()


def _gc_type_counts() -> Counter[str]:
    gc.collect()
    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


class LeakCheck:
    def __init__(self, warmups: int, runs: int, slow: float) -> None:
        self.warmups = warmups
        self.runs = runs
        self.slow = slow
        self.unmeasured: list[str] = []
        self.unmeasured_because = ""
        self.leak: str | None = None  # found in the test about to be reported
        # Fixtures of wider scope than a function, alive across runs.
        self.shared_fixtures: set[pytest.FixtureDef[object]] = set()
        # The abstract classes whose caches outlive a test (walking all
        # classes before each count would cost more than the tests).
        self.abcs: list[abc.ABCMeta] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # Repeating the same few examples finds a leak as well as many do;
        # cap the tests that ask for more than the profile's.
        cap = settings.get_profile("leakcheck").max_examples
        for item in items:
            test = getattr(item, "obj", None)
            test = getattr(test, "__func__", test)
            chosen = getattr(test, "_hypothesis_internal_use_settings", None)
            if isinstance(chosen, settings) and chosen.max_examples > cap:
                capped = settings(chosen, max_examples=cap)
                setattr(test, "_hypothesis_internal_use_settings", capped)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # What exists before the first test is never garbage worth scanning:
        # keeping it out of the collector's way makes each collection cheap.
        gc.collect()
        gc.freeze()
        self.abcs = _abc_classes()

    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> None:
        if fixturedef.scope != "function":
            self.shared_fixtures.add(fixturedef)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if item.get_closest_marker("no_leakcheck") is not None:
            return None
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        # The unreported runs' captured output and properties are dropped.
        sections, properties = item._report_sections, list(item.user_properties)
        self.unmeasured_because = ""
        try:
            self.leak = self._measure(item)
        finally:
            item._report_sections = sections
            item.user_properties[:] = properties
        reports = runtestprotocol(item, nextitem=nextitem)
        self.leak = None
        # (A test that fails or skips anyway needs no word about it.)
        if self.unmeasured_because and all(report.passed for report in reports):
            self.unmeasured.append(f"{item.nodeid}: {self.unmeasured_because}")
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if self.leak is not None and call.when == "call" and report.passed:
            report.outcome = "failed"
            report.longrepr = self.leak
        return report

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        write = terminalreporter.write_line
        write(f"leak check: {self.warmups} warm-up and {self.runs} measured runs per test")
        if self.unmeasured:
            write(f"leak check: {len(self.unmeasured)} tests were not measured:")
            for line in self.unmeasured:
                write(f"  {line}")

    def _run_once(self, item: pytest.Item) -> bool:
        """One unreported run: setup, call and teardown of the test's own
        fixtures, keeping those of wider scope for the next run."""
        # pytest registers each use of a function fixture that depends on a
        # fixture of wider scope as one more finalizer of the latter, to run
        # when it is torn down (a no-op by then); forget those again.
        finalizers = [
            (fixture, len(fixture._finalizers))
            for fixture in self.shared_fixtures
            if fixture.cached_result is not None
        ]
        item._report_sections = []
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            reports = runtestprotocol(
                item, log=False, nextitem=item.parent  # type: ignore[arg-type]
            )
        for fixture, count in finalizers:
            if fixture.cached_result is not None:
                del fixture._finalizers[count:]
        return all(report.passed for report in reports)

    def _measure(self, item: pytest.Item) -> str | None:
        """The leak found, if every measured run grew a count; else None."""
        ref_deltas = [0] * self.runs
        block_deltas = [0] * self.runs
        refs_before = blocks_before = 0
        refs_steady = blocks_steady = False
        started = time.perf_counter()
        for i in range(self.warmups + self.runs):
            if not self._run_once(item):
                self.unmeasured_because = "it did not pass when repeated"
                return None
            if i == 0 and time.perf_counter() - started > self.slow:
                self.unmeasured_because = f"one run took over {self.slow:g}s"
                return None
            _clear_caches(self.abcs)
            blocks_after = sys.getallocatedblocks()
            refs_after = sys.gettotalrefcount()
            if i >= self.warmups:
                ref_deltas[i - self.warmups] = refs_after - refs_before
                block_deltas[i - self.warmups] = blocks_after - blocks_before
                refs_steady = refs_steady or refs_after <= refs_before
                blocks_steady = blocks_steady or blocks_after <= blocks_before
                if refs_steady and blocks_steady:
                    return None  # neither count can grow on every run now
            refs_before, blocks_before = refs_after, blocks_after
        leaked = [
            f"{what} {deltas}"
            for what, deltas in (("references", ref_deltas), ("memory blocks", block_deltas))
            if all(delta >= 1 for delta in deltas)
        ]
        if not leaked:
            return None
        return (
            f"leak check: each of the last {self.runs} of "
            f"{self.warmups + self.runs} repeated runs leaked "
            + " and ".join(leaked)
            + self._growth(item)
        )

    def _growth(self, item: pytest.Item) -> str:
        """Which objects the garbage collector tracks grew on one more run."""
        # The second count without a run in between measures the counting.
        start = _gc_type_counts()
        before = _gc_type_counts()
        self._run_once(item)
        _clear_caches(self.abcs)
        after = _gc_type_counts()
        grown = sorted(
            ((after[name] - 2 * before[name] + start[name], name) for name in after),
            key=lambda pair: (-pair[0], pair[1]),
        )
        listed = ", ".join(f"{name} +{count}" for count, name in grown[:12] if count > 0)
        return (
            f"\nobjects tracked by the garbage collector that grew on one more run: "
            f"{listed or 'none (the leak is in untracked objects or counts alone)'}"
        )


@dataclass(frozen=True)
class TypeCheck:
    """What mypy --strict said about one program."""

    status: int
    output: str
    error_lines: list[int]


@pytest.fixture
def mypy_strict(tmp_path: Path) -> Callable[[str], TypeCheck]:
    """Type-check a program against the installed fluxgate and its stubs."""
    api = pytest.importorskip("mypy.api")
    import fluxgate

    package_root = Path(fluxgate.__file__).resolve().parent.parent
    # An editable install is found through an import hook mypy cannot follow.
    in_site = package_root.name in ("site-packages", "dist-packages")
    args = [
        "--strict",
        "--follow-imports=silent",
        "--no-error-summary",
        "--show-error-codes",
        "--cache-dir", str(tmp_path / "mypy-cache"),
        "--python-executable", sys.executable,
    ]  # fmt: skip

    def check(source: str) -> TypeCheck:
        path = tmp_path / f"program_{len(list(tmp_path.glob('program_*.py')))}.py"
        path.write_text(source)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MYPYPATH", "" if in_site else str(package_root))
            patch.chdir(tmp_path)
            out, err, status = api.run([*args, path.name])
        lines = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
        return TypeCheck(status, out + err, sorted(lines))

    return check


# ---- threads -------------------------------------------------------------------


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads far more often than usual, to interleave them more."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def wait_for_child(pid: int, timeout: float = 60) -> int | None:
    """The exit code of the forked child `pid`, or None when it did not
    finish within `timeout` seconds: it is then killed, so that a child that
    hangs fails its test instead of stalling the run."""
    deadline = time.monotonic() + timeout
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.002)


def run_threads(targets: Sequence[Callable[[], object]], timeout: float = 120) -> None:
    """Run each target in its own thread, all released at once by a barrier;
    re-raise the first exception any of them raised."""
    start = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], object]) -> None:
        try:
            start.wait(timeout)
            target()
        except BaseException as error:  # noqa: BLE001 - re-raised below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "threads did not finish"
    if errors:
        raise errors[0]


class GatedWindow(CountWindow):
    """A window written in Python whose first record() waits at a gate:
    `entered` is set when a record arrives there, `opened` lets it through."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.gated = True

    def record(self, record: Record) -> None:
        if self.gated:
            self.gated = False
            self.entered.set()
            self.opened.wait(30)
        super().record(record)
