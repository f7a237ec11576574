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
    for option in ("--async", "--seed", "--pace"):
        assert option in result.stdout
