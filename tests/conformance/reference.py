"""fluxgate 0.9.4 in a venv of its own, and a worker process playing
scenarios on it.

The venv is cached outside the work tree (``FLUXGATE_REFERENCE_VENV``, by
default ``$XDG_CACHE_HOME/fluxgate-tests/reference-0.9.4-pyX.Y`` or
``~/.cache/fluxgate-tests/reference-0.9.4-pyX.Y``, one per Python version of
the tests, since messages such as argument errors differ between versions)
and reused when it imports the
pinned versions.  It is built in a temporary directory beside it and renamed
into place only once complete, so an interrupted build is never reused.

An install that fails because the package index cannot be reached skips the
tests (``pytest.skip``, reported by ``-ra``); any other failure fails them.
``FLUXGATE_REQUIRE_REFERENCE=1`` turns the skip into a failure too, for a
CI machine that is known to be online.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest

REFERENCE = "fluxgate==0.9.4"
FREEZEGUN = "freezegun==1.5.5"
VERSIONS = "0.9.4 1.5.5"  # what a usable venv reports for the two
VENV_ENV = "FLUXGATE_REFERENCE_VENV"
REQUIRE_ENV = "FLUXGATE_REQUIRE_REFERENCE"
INSTALL_TIMEOUT = 60.0
REPLY_TIMEOUT = 60.0
WORKER = Path(__file__).with_name("reference_worker.py")

# What pip prints when the index cannot be reached.
NETWORK_TROUBLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Read timed out",
    "ProxyError",
    "SSLError",
    "No route to host",
    "Max retries exceeded",
    "Could not fetch URL",
)


def child_env() -> dict[str, str]:
    """The environment for the reference interpreter: none of the sanitizer
    preloading, allocator choice or paths of the interpreter under test."""
    env = dict(os.environ)
    for name in (
        "LD_PRELOAD",
        "DYLD_INSERT_LIBRARIES",
        "PYTHONMALLOC",
        "ASAN_OPTIONS",
        "UBSAN_OPTIONS",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "VIRTUAL_ENV",
        "FLUXGATE_LEAKCHECK",
    ):
        env.pop(name, None)
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def venv_dir() -> Path:
    chosen = os.environ.get(VENV_ENV)
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    version = "{}.{}".format(*sys.version_info[:2])
    return Path(cache) / "fluxgate-tests" / f"reference-0.9.4-py{version}"


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def usable(venv: Path) -> bool:
    python = venv_python(venv)
    if not python.exists():
        return False
    probe = (
        "from importlib import metadata as m; import fluxgate, freezegun; "
        "print(m.version('fluxgate'), m.version('freezegun'))"
    )
    try:
        done = subprocess.run(
            [str(python), "-E", "-s", "-c", probe],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == VERSIONS


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(reason)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _build(venv: Path, staging: Path) -> None:
    """Create the venv in ``staging`` and install the reference into it."""
    created = subprocess.run(
        [sys.executable, "-m", "venv", str(staging)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    if created.returncode != 0:
        pytest.fail(f"could not create the reference venv:\n{_tail(created.stderr)}")
    install = [
        str(venv_python(staging)), "-m", "pip", "install", "--quiet",
        "--timeout", "15", "--retries", "1", REFERENCE, FREEZEGUN,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            install, capture_output=True, text=True, env=child_env(), timeout=INSTALL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"installing {REFERENCE} took over {INSTALL_TIMEOUT:g}s (no index?)")
    output = done.stdout + done.stderr
    if done.returncode != 0:
        trouble = [sign for sign in NETWORK_TROUBLE if sign in output]
        if trouble:
            _unavailable(f"the package index is unreachable ({trouble[0]}): {REFERENCE} not installed")
        pytest.fail(f"pip could not install {REFERENCE} {FREEZEGUN}:\n{_tail(output)}")
    if not usable(staging):
        pytest.fail(f"the reference venv was built but does not import {REFERENCE}")


def reference_python() -> Path:
    """The interpreter of a venv holding fluxgate 0.9.4, built if need be."""
    venv = venv_dir()
    if usable(venv):
        return venv_python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{venv.name}-", dir=venv.parent))
    try:
        _build(venv, staging)
        if venv.exists() or venv.is_symlink():
            # Broken (or just built by a concurrent run): set it aside first.
            if usable(venv):
                return venv_python(venv)
            old = Path(tempfile.mkdtemp(prefix=f".{venv.name}-old-", dir=venv.parent))
            venv.rename(old / "venv")
            shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(venv)
        except OSError:
            if not usable(venv):  # anything but a concurrent run's venv
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return venv_python(venv)


class ReferenceWorker:
    """One long-lived fluxgate 0.9.4 interpreter playing scenarios."""

    def __init__(self, python: Path) -> None:
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [str(python), "-E", "-s", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env(),
            cwd=WORKER.parent,
            text=True,
            encoding="utf-8",
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self._receive()
        self.version: str = ready.get("ready", "")
        if self.version != "0.9.4":
            self._broken(f"the reference worker runs fluxgate {self.version!r}, not 0.9.4")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put("")  # end of output: the worker has exited

    def _broken(self, what: str) -> NoReturn:
        self._stop()
        self._stderr.seek(0)
        errors = _tail(self._stderr.read().decode("utf-8", "replace"), 30)
        self._stderr.close()
        raise RuntimeError(f"{what}; its stderr:\n{errors}")

    def _receive(self) -> Any:
        try:
            line = self._lines.get(timeout=REPLY_TIMEOUT)
        except queue.Empty:
            self._broken(f"the reference worker did not answer in {REPLY_TIMEOUT:g}s")
        if not line:
            self._broken("the reference worker exited")
        return json.loads(line)

    def run(self, spec: Any) -> Any:
        """The trace of one scenario as fluxgate 0.9.4 plays it."""
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps({"scenario": spec}) + "\n")
            stdin.flush()
        except OSError:
            self._broken("the reference worker stopped reading")
        reply = self._receive()
        if "error" in reply:
            raise RuntimeError(f"the scenario runner failed on 0.9.4:\n{reply['error']}")
        return reply["trace"]

    def _stop(self) -> None:
        try:
            if self._process.stdin is not None:
                self._process.stdin.close()  # end of requests: the worker exits
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def close(self) -> None:
        self._stop()
        self._stderr.close()
