"""A named segment's file: a corrupt, truncated or foreign file is a
ValueError naming its path and is left as it was; one that others may read
or write, or that another user owns, is a PermissionError naming its path;
unlinking it while in use leaves the attached processes sharing the old
segment and gives later ones a new, empty one; and the command line lists,
resets and unlinks segments."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fluxgate import AsyncCircuitBreaker, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.shared import HostMemory
from fluxgate.trippers import FailureStreak, MinRequests, SlowRate
from fluxgate.windows import CountWindow, TimeWindow

from .workers import ON_WINDOWS, SKIP_REASON, run_in_fork

pytestmark = pytest.mark.skipif(ON_WINDOWS, reason=SKIP_REASON)


def segment_made_elsewhere(tmp_path: Path, name: str = "svc", calls: int = 3) -> Path:
    """The path of a segment another process made and recorded into (this
    process has never attached to it)."""
    memory = HostMemory(name, directory=tmp_path)

    def make() -> int:
        breaker = CircuitBreaker(shared=memory)
        for _ in range(calls):
            breaker.call(lambda: None)
        return breaker.info().metrics.total_count

    assert run_in_fork(make) == calls
    assert memory.path is not None
    return Path(memory.path)


def attach(tmp_path: Path, name: str = "svc") -> CircuitBreaker:
    return CircuitBreaker(shared=HostMemory(name, directory=tmp_path))


def test_a_segment_made_elsewhere_is_attached_with_its_records(tmp_path) -> None:
    segment_made_elsewhere(tmp_path)
    assert attach(tmp_path).info().metrics.total_count == 3


# ---- damaged and foreign files -------------------------------------------------------------


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(data)


CORRUPTIONS = {
    "magic": lambda path: overwrite(path, 0, b"NOTMAGIC"),
    "identity fields": lambda path: overwrite(path, 8, b"\xa5" * 16),
    "whole header": lambda path: overwrite(path, 0, b"\xa5" * 256),
    "truncated to half": lambda path: os.truncate(path, path.stat().st_size // 2),
    "truncated in the header": lambda path: os.truncate(path, 20),
}


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_segment_is_a_value_error_naming_its_path(tmp_path, damage) -> None:
    path = segment_made_elsewhere(tmp_path)
    CORRUPTIONS[damage](path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        attach(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        AsyncCircuitBreaker(shared=HostMemory("svc", directory=tmp_path))
    assert path.read_bytes() == before  # left for its owner to look at


@pytest.mark.parametrize("size", [8, 4096, 1 << 20])
def test_a_foreign_file_is_a_value_error_naming_its_path(tmp_path, size) -> None:
    path = Path(HostMemory("svc", directory=tmp_path).path)  # type: ignore[arg-type]
    content = random.Random(size).randbytes(size)
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        attach(tmp_path)
    assert path.read_bytes() == content


def test_a_symlink_in_place_of_the_segment_is_refused(tmp_path) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    target.chmod(0o600)
    link = Path(HostMemory("svc", directory=tmp_path).path)  # type: ignore[arg-type]
    link.symlink_to(target)
    with pytest.raises((OSError, ValueError)):
        attach(tmp_path)
    assert target.read_bytes() == b"keep me"
    assert link.is_symlink()


@pytest.mark.heavy
@pytest.mark.no_leakcheck("each attach runs in a forked child")
@pytest.mark.parametrize("window", [CountWindow(50), TimeWindow(10)], ids=repr)
def test_a_segment_corrupted_anywhere_never_crashes_or_hangs_a_process(tmp_path, window) -> None:
    # Each 8-byte word of a segment in use, overwritten in turn with a large
    # number: a process that attaches to the damaged copy and calls through
    # it gets a ValueError or a working breaker, never a crash or a hang.
    # (This process never attaches to a damaged copy: a child does.)
    tripper = MinRequests(10**6) & SlowRate(0.5, threshold=0.001)
    memory = HostMemory("svc", directory=tmp_path / "original")
    (tmp_path / "original").mkdir()

    def use(memory: HostMemory) -> int:
        breaker = CircuitBreaker(window=window, tripper=tripper, shared=memory)
        breaker.info()
        for i in range(120):
            try:
                breaker.call(lambda: 1 / (i % 3))
            except ZeroDivisionError:
                pass
        breaker.reset()
        breaker.call(lambda: None)
        return breaker.info().metrics.total_count

    assert run_in_fork(lambda: use(memory)) == 1
    assert memory.path is not None
    original = Path(memory.path).read_bytes()
    failures = []
    for offset in range(0, len(original), 8):
        for value in (2**62,):
            damaged = bytearray(original)
            damaged[offset : offset + 8] = value.to_bytes(8, "little")
            directory = tmp_path / f"at-{offset}-{value}"
            directory.mkdir()
            copy = HostMemory("svc", directory=directory)
            path = Path(copy.path)  # type: ignore[arg-type]
            path.write_bytes(bytes(damaged))
            path.chmod(0o600)
            outcome = attach_in_child(lambda: use(copy))
            if outcome not in ("ok", "ValueError"):
                failures.append(f"word at offset {offset} set to {value:#x}: {outcome}")
            shutil.rmtree(directory)
    assert not failures, f"{len(original)} byte segment:\n" + "\n".join(failures)


def attach_in_child(body: Any) -> str:
    """Run ``body`` in a forked child: "ok", the name of the exception it
    raised, "killed by signal N", or "hung" (more than 5 s)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            signal.alarm(5)
            body()
        except ValueError:
            code = 3
        except BaseException:  # noqa: BLE001 - reported by the exit code
            code = 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return "hung" if number == signal.SIGALRM else f"killed by signal {number}"
    return {0: "ok", 3: "ValueError"}.get(os.WEXITSTATUS(status), "another exception")


# ---- permissions ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_segment_others_may_use_is_a_permission_error_naming_its_path(tmp_path, mode) -> None:
    path = segment_made_elsewhere(tmp_path)
    path.chmod(mode)
    with pytest.raises(PermissionError, match=re.escape(str(path))):
        attach(tmp_path)
    path.chmod(0o600)
    assert attach(tmp_path).info().metrics.total_count == 3


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_segment_another_user_owns_is_a_permission_error_naming_its_path(tmp_path) -> None:
    path = segment_made_elsewhere(tmp_path)
    os.chown(path, 65534, -1)
    with pytest.raises(PermissionError, match=re.escape(str(path))):
        attach(tmp_path)


# ---- unlink ----------------------------------------------------------------------------


def test_unlink_removes_the_file_and_a_missing_one_is_file_not_found(tmp_path) -> None:
    path = segment_made_elsewhere(tmp_path)
    HostMemory.unlink("svc", directory=tmp_path)
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        HostMemory.unlink("svc", directory=tmp_path)
    with pytest.raises(FileNotFoundError):
        HostMemory.unlink("never-made", directory=str(tmp_path))


@pytest.mark.parametrize("name", ["../svc", "", "a/b"])
def test_unlink_checks_the_name(tmp_path, name) -> None:
    with pytest.raises(ValueError, match="name"):
        HostMemory.unlink(name, directory=tmp_path)


@pytest.mark.no_leakcheck("the breakers run in other processes")
def test_unlink_while_in_use_across_processes(tmp_path, remotes) -> None:
    kwargs: dict[str, Any] = dict(
        tripper=FailureStreak(3), retry=Never(), shared=HostMemory("svc", directory=tmp_path)
    )
    a, b = remotes(**kwargs), remotes(**kwargs)
    assert a.calls(2) == (2, 0, 0)
    HostMemory.unlink("svc", directory=tmp_path)
    assert not os.path.exists(kwargs["shared"].path)

    # a and b stay on the old segment, together.
    assert b.calls(2) == (2, 0, 0)
    assert a.info().total_count == 4

    # A process attaching now gets a new, empty segment of its own.
    c = remotes(**kwargs)
    assert c.info().total_count == 0
    assert c.info().state == "closed"
    assert os.path.exists(kwargs["shared"].path)
    assert [a.call("fail") for _ in range(3)] == ["failed"] * 3
    assert b.info().state == "open"
    assert b.call("ok").startswith("refused")
    assert c.info().state == "closed"
    assert c.call("ok") == "ok"
    assert c.info().total_count == 1
    assert a.info().total_count == 0  # emptied by its transition; c's call is elsewhere


def test_unlink_while_in_use_in_this_process(tmp_path) -> None:
    memory = HostMemory("svc", directory=tmp_path)
    before = [CircuitBreaker(shared=memory) for _ in range(2)]
    before[0].call(lambda: None)
    HostMemory.unlink("svc", directory=tmp_path)
    after = CircuitBreaker(shared=HostMemory("svc", directory=tmp_path))
    assert after.info().metrics.total_count == 0
    before[1].call(lambda: None)
    assert before[0].info().metrics.total_count == 2
    after.call(lambda: None)
    assert after.info().metrics.total_count == 1
    assert before[1].info().metrics.total_count == 2


# ---- the command line ------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fluxgate", "shared", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def line_naming(output: str, name: str) -> str:
    lines = [line for line in output.splitlines() if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", line)]
    assert len(lines) == 1, output
    return lines[0]


def test_cli_list(tmp_path) -> None:
    alpha = CircuitBreaker(shared=HostMemory("alpha", directory=tmp_path))
    alpha.force_open()
    AsyncCircuitBreaker(shared=HostMemory("beta", directory=tmp_path))
    (tmp_path / "notes.txt").write_text("not a segment")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    CircuitBreaker(shared=HostMemory("gamma", directory=elsewhere))

    result = cli("list", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "forced_open" in line_naming(result.stdout, "alpha")
    assert "closed" in line_naming(result.stdout, "beta")
    assert "gamma" not in result.stdout
    assert "notes" not in result.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("list", "--directory", str(empty))
    assert result.returncode == 0, result.stderr
    assert "alpha" not in result.stdout


def test_cli_reset(tmp_path) -> None:
    breaker = CircuitBreaker(
        tripper=FailureStreak(2), retry=Never(), shared=HostMemory("svc", directory=tmp_path)
    )
    breaker.call(lambda: None)
    assert breaker.info().metrics.total_count == 1
    result = cli("reset", "svc", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert breaker.info().metrics.total_count == 0
    assert breaker.info().state == "closed"

    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    assert breaker.info().state == "open"
    changed_at = breaker.info().changed_at
    result = cli("reset", "svc", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert breaker.info().state == "closed"
    assert breaker.info().changed_at >= changed_at
    assert breaker.call(lambda: 5) == 5


def test_cli_unlink(tmp_path) -> None:
    path = segment_made_elsewhere(tmp_path)
    result = cli("unlink", "svc", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert not path.exists()
    result = cli("unlink", "svc", "--directory", str(tmp_path))
    assert result.returncode != 0
    assert "svc" in result.stderr


def test_cli_reset_of_a_missing_segment_fails(tmp_path) -> None:
    result = cli("reset", "missing", "--directory", str(tmp_path))
    assert result.returncode != 0
    assert "missing" in result.stderr
    assert not list(tmp_path.iterdir())  # and made none
