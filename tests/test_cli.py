"""The command line, run as a user runs it: ``python -m fluxgate ...``.

Output goes to a pipe here, so it must be plain lines. No assertion on how
long anything takes.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.no_leakcheck("runs the command line in a child process")

TIMEOUT = 300  # generous: sanitizer builds run many times slower

ROW = re.compile(
    r"^\s+(\d+)s\s+([a-z_]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)$",
    re.MULTILINE,
)
EVENT = re.compile(r"^\s*\d+\.\d\ds\s+([a-z_]+) -> ([a-z_]+)\s+[a-z]", re.MULTILINE)
TOTALS = re.compile(r"total calls (\d+) = admitted (\d+) \+ rejected (\d+)")
ADMITTED = re.compile(r"admitted\s+(\d+)\s+\(succeeded (\d+), \d+ of them slow; failed (\d+)\)")
REJECTED = re.compile(r"^\s+rejected\s+(\d+)\s+\(", re.MULTILINE)


def fluxgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxgate", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def assert_plain(output: str) -> None:
    assert "\x1b" not in output
    assert "\r" not in output


def check_story(output: str) -> list[tuple[str, str]]:
    """Checks the timeline and the summary agree; returns the transitions."""
    assert_plain(output)
    transitions = EVENT.findall(output)
    assert ("closed", "open") in transitions
    assert ("open", "half_open") in transitions
    assert ("half_open", "closed") in transitions
    assert "Circuit Breaker 'checkout' transitioned from closed to open" in output

    rows = [tuple(int(n) for n in row[2:7]) for row in ROW.findall(output)]
    assert rows
    for calls, admitted, rejected, failed, slow in rows:
        assert calls == admitted + rejected
        assert failed + slow <= admitted

    totals = TOTALS.search(output)
    assert totals is not None, output
    total, admitted, rejected = map(int, totals.groups())
    assert total == admitted + rejected
    assert rejected > 0
    assert sum(row[0] for row in rows) == total
    assert sum(row[1] for row in rows) == admitted
    assert sum(row[2] for row in rows) == rejected

    outcomes = ADMITTED.search(output)
    assert outcomes is not None, output
    assert int(outcomes[1]) == admitted
    assert int(outcomes[2]) + int(outcomes[3]) == admitted
    assert sum(row[3] for row in rows) == int(outcomes[3])
    refused = REJECTED.search(output)
    assert refused is not None, output
    assert int(refused[1]) == rejected
    assert "final state: closed" in output
    return transitions


def timeline(output: str) -> list[str]:
    """The rows and the transitions, without the header and the log lines
    (which carry the time of day)."""
    return [
        line
        for line in output.splitlines()
        if ROW.fullmatch(line) or EVENT.match(line)
    ]


@pytest.fixture(scope="module")
def sync_demo() -> str:
    result = fluxgate("demo")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_tells_the_story(sync_demo: str) -> None:
    check_story(sync_demo)
    assert "CircuitBreaker(" in sync_demo


def test_demo_async_tells_the_same_story(sync_demo: str) -> None:
    result = fluxgate("demo", "--async")
    assert result.returncode == 0, result.stderr
    check_story(result.stdout)
    assert "AsyncCircuitBreaker(" in result.stdout
    assert timeline(result.stdout) == timeline(sync_demo)


def test_demo_seed_changes_the_run_not_the_story(sync_demo: str) -> None:
    result = fluxgate("demo", "--seed", "12345", "--pace", "0")
    assert result.returncode == 0, result.stderr
    check_story(result.stdout)
    assert "seed 12345" in result.stdout
    assert timeline(result.stdout) != timeline(sync_demo)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_demo_on_a_terminal_uses_colour_and_redraws() -> None:
    import pty

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    child = subprocess.Popen(
        [sys.executable, "-m", "fluxgate", "demo", "--pace", "0.001"],
        stdout=terminal,
        env=env,
    )
    os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
        returncode = child.wait(timeout=TIMEOUT)
    assert returncode == 0
    text = output.decode()
    assert "\x1b[31mopen" in text
    assert "\r\x1b[K" in text
    assert "total calls 1200" in text


def test_demo_rejects_a_negative_pace() -> None:
    result = fluxgate("demo", "--pace", "-1")
    assert result.returncode == 2
    assert "--pace" in result.stderr


def test_bench_quick_prints_a_table() -> None:
    result = fluxgate("bench", "--quick")
    assert result.returncode == 0, result.stderr
    assert_plain(result.stdout)
    for what in (
        "sync call, CLOSED",
        "async await, CLOSED",
        "OPEN rejection",
        "memory per breaker",
    ):
        row = next(line for line in result.stdout.splitlines() if what in line)
        assert re.search(r"-?\d+\.\d\dx$", row), row


def test_no_command_prints_usage_and_fails() -> None:
    result = fluxgate()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: python -m fluxgate" in result.stderr


def test_help_lists_the_commands() -> None:
    result = fluxgate("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout
    assert "bench" in result.stdout


def test_demo_help_lists_its_options() -> None:
    result = fluxgate("demo", "--help")
    assert result.returncode == 0
    for option in ("--async", "--seed", "--pace", "--workers"):
        assert option in result.stdout


# ---- demo --workers ---------------------------------------------------------

WORKER_ROW = re.compile(
    r"^\s+(\d+)s\s+((?:[COH] )*[COH])\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$",
    re.MULTILINE,
)
WORKER_EVENT = re.compile(
    r"^\s*(\d+\.\d\d)s\s+worker (\d+)\s+([a-z_]+) -> ([a-z_]+)$", re.MULTILINE
)
UNSHARED_RUN = "1. shared=None: a breaker per worker"
SHARED_RUN = "2. shared=HostMemory(...): one breaker for the host"
TABLE = "Calls that reached the service, of the same calls:"
TROUBLE = re.compile(
    r"^Calls that reached the service while it was degraded or failing \(12-36 s\): "
    r"unshared (\d+), shared (\d+)$",
    re.MULTILINE,
)
RUN_TOTALS = re.compile(
    r"^  (\d+) calls: (\d+) reached the service \((\d+) failed, \d+ slow\), "
    r"(\d+) rejected; (\d+) transitions, (\d+) log lines$",
    re.MULTILINE,
)
SEGMENT = re.compile(r"^The segment (.+) was removed \(HostMemory\.unlink\)\.$", re.MULTILINE)

needs_host_memory = pytest.mark.skipif(
    sys.platform == "win32", reason="HostMemory is POSIX only"
)


def check_run(text: str, workers: int) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """One run of ``demo --workers``: its rows add up; returns rows and events."""
    rows = WORKER_ROW.findall(text)
    assert len(rows) == 60, text
    for _, states, calls, reached, rejected, failed, slow in rows:
        assert len(states.split()) == workers
        assert int(calls) == int(reached) + int(rejected) == 20
        assert int(failed) + int(slow) <= int(reached)
    totals = RUN_TOTALS.search(text)
    assert totals is not None, text
    total, reached, _, rejected, transitions, log_lines = map(int, totals.groups())
    assert total == 1200 == reached + rejected
    assert reached == sum(int(row[3]) for row in rows)
    events = WORKER_EVENT.findall(text)
    assert transitions == log_lines == len(events)
    assert {int(event[1]) for event in events} <= set(range(1, workers + 1))
    return rows, events


@pytest.fixture(scope="module")
def workers_demo() -> str:
    result = fluxgate("demo", "--workers", "4")
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_host_memory
def test_demo_workers_tells_the_story_unshared_then_shared(workers_demo: str) -> None:
    assert_plain(workers_demo)
    assert "called by 4 worker processes" in workers_demo
    assert "shared=shared," in workers_demo
    before, _, rest = workers_demo.partition(UNSHARED_RUN)
    unshared, _, rest = rest.partition(SHARED_RUN)
    shared, _, conclusion = rest.partition(TABLE)
    assert unshared and shared and conclusion, workers_demo

    unshared_rows, unshared_events = check_run(unshared, 4)
    shared_rows, shared_events = check_run(shared, 4)

    # Shared, every worker's info() shows the one state of the host, and the
    # transitions form one chain: each made by exactly one worker.
    for row in shared_rows:
        assert len(set(row[1].split())) == 1, row
    state = "closed"
    for _, _, old, new in shared_events:
        assert old == state
        state = new
    assert ("closed", "open") in {(old, new) for _, _, old, new in shared_events}
    # Unshared, each worker trips on its own: more than one worker opens.
    tripped = {worker for _, worker, old, new in unshared_events if new == "open"}
    assert len(tripped) > 1
    assert any(len(set(row[1].split())) > 1 for row in unshared_rows)


@needs_host_memory
def test_demo_workers_shared_reaches_the_service_less(workers_demo: str) -> None:
    """Sharing lets fewer calls reach the service while it is in trouble.

    The claim is deterministic: the calls are handed to the workers one at a
    time, the service's answers are drawn up front from the seed, every
    worker seeds its own random draws from it and reads the same simulated
    clock, so the run does not depend on how the processes are scheduled.
    And it follows from the tripper: MinRequests(20) over a CountWindow(40)
    that starts the degraded phase full of healthy calls. A worker's own
    breaker sees a quarter of the calls, so each of the four must admit some
    twenty slow or failed calls of its own before it opens (about 80 for the
    host) and then probes on its own schedule (four sets of half-open
    probes), where the shared breaker opens after some twenty calls of the
    host's and probes once for all of them.
    """
    trouble = TROUBLE.search(workers_demo)
    assert trouble is not None, workers_demo
    unshared, shared = map(int, trouble.groups())
    assert shared < unshared
    assert f"Conclusion: one breaker for the host let {unshared - shared} fewer calls" in (
        workers_demo
    )

    table = workers_demo.partition(TABLE)[2]
    phases = re.findall(r"^  ([a-z]+) \((\d+)-(\d+) s\)\s+(\d+)\s+(\d+)\s+(\d+)$",
                        table, re.MULTILINE)
    assert [phase[0] for phase in phases] == [
        "healthy", "degraded", "failing", "recovering", "healthy"
    ]
    everything = re.search(r"^  all\s+(\d+)\s+(\d+)\s+(\d+)$", table, re.MULTILINE)
    assert everything is not None
    assert int(everything[1]) == 1200
    assert int(everything[2]) == sum(int(phase[4]) for phase in phases)
    assert int(everything[3]) == sum(int(phase[5]) for phase in phases)
    in_trouble = [phase for phase in phases if phase[0] in ("degraded", "failing")]
    assert sum(int(phase[4]) for phase in in_trouble) == unshared
    assert sum(int(phase[5]) for phase in in_trouble) == shared


@needs_host_memory
def test_demo_workers_removes_its_segment(workers_demo: str) -> None:
    segment = SEGMENT.search(workers_demo)
    assert segment is not None, workers_demo
    assert f"fluxgate-{os.getuid()}-demo-" in segment[1]
    assert not os.path.exists(segment[1])
    assert not os.path.exists(os.path.dirname(segment[1]))


@needs_host_memory
@pytest.mark.skipif(sys.platform != "linux", reason="fork is the default on Linux only")
def test_demo_workers_spawned_tell_the_same_run_as_forked() -> None:
    """With spawn, the named HostMemory is pickled to the workers; the run is
    the same call for call."""

    def workers_run(method: str) -> str:
        code = (
            "import sys\n"
            "from fluxgate import _demo\n"
            "if __name__ == '__main__':\n"
            f"    sys.exit(_demo.run_workers(sys.stdout, workers=2, start_method={method!r}))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"(processes started with {method})" in result.stdout
        return result.stdout

    def story(output: str) -> list[str]:
        return [
            line for line in output.splitlines()
            if WORKER_ROW.fullmatch(line) or WORKER_EVENT.fullmatch(line)
            or line.startswith("Calls that reached")
        ]

    forked, spawned = workers_run("fork"), workers_run("spawn")
    check_run(spawned.partition(SHARED_RUN)[2].partition(TABLE)[0], 2)
    assert story(spawned) == story(forked)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--workers", "1"), "from 2 to 16"),
        (("--workers", "17"), "from 2 to 16"),
        (("--workers", "four"), "whole number"),
        (("--workers", "4", "--async"), "--workers runs CircuitBreaker only"),
    ],
)
def test_demo_workers_rejects_bad_arguments(arguments: tuple[str, ...], message: str) -> None:
    result = fluxgate("demo", *arguments)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr
