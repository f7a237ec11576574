"""Conformance of the public surface with fluxgate 0.9.4 (SPEC.md section 0).

``surface.py`` describes the fluxgate an interpreter imports: the names each
public module exposes, the signature of each public class and method, and
the exception of a battery of calls whose arguments do not bind. It runs
once in the reference venv (fluxgate 0.9.4, see ``reference.py``) and once
here; every name, signature and message 0.9.4 shows must be the same here,
except where SPEC.md says otherwise:

- the component call signatures name their parameters as SPEC.md section 0
  gives them (``tracker(exception)``, ``retry(changed_at, reopens)``,
  ``permit(changed_at)``), where 0.9.4 had ``_exception``, ``_changed_at``
  and ``_reopens`` on some built-ins;
- documented keyword-only parameters with defaults extend the signatures
  (``shared`` on both breakers, ``api_url`` and ``timeout`` on the Slack
  listeners);
- ``CircuitBreaker.call`` and ``call_with_fallback`` keep CPython's own
  method descriptor, for speed: their parameters match, without
  annotations.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import surface
from .reference import child_env, reference_python

SCRIPT = Path(surface.__file__)

pytestmark = pytest.mark.no_leakcheck("drives a reference interpreter in a child process")

RENAMED = {
    ("fluxgate.trackers.All", "instance()"): {"_exception": "exception"},
    ("fluxgate.permits.All", "instance()"): {"_changed_at": "changed_at"},
    ("fluxgate.permits.Random", "instance()"): {"_changed_at": "changed_at"},
    ("fluxgate.retries.Always", "instance()"): {"_changed_at": "changed_at", "_reopens": "reopens"},
    ("fluxgate.retries.Never", "instance()"): {"_changed_at": "changed_at", "_reopens": "reopens"},
    ("fluxgate.retries.Cooldown", "instance()"): {"_reopens": "reopens"},
}
ADDED_KEYWORD_ONLY = {
    "fluxgate.circuitbreaker.CircuitBreaker": {"shared"},
    "fluxgate.circuitbreaker.AsyncCircuitBreaker": {"shared"},
    "fluxgate.listeners.slack.SlackListener": {"api_url", "timeout"},
    "fluxgate.listeners.slack.AsyncSlackListener": {"api_url", "timeout"},
}
UNANNOTATED = {
    ("fluxgate.circuitbreaker.CircuitBreaker", "call"),
    ("fluxgate.circuitbreaker.CircuitBreaker", "call_with_fallback"),
}
# Known differences being fixed elsewhere: a strict xfail fails once fixed.
@pytest.fixture(scope="module")
def reference() -> Any:
    python = reference_python()
    done = subprocess.run(
        [str(python), "-E", "-s", str(SCRIPT)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=SCRIPT.parent,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"surface.py failed on fluxgate 0.9.4:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def ours() -> Any:
    # Through JSON, as the reference's, so that both are plain lists.
    return json.loads(json.dumps(surface.describe()))


@pytest.mark.parametrize("module", surface.MODULES)
def test_module_exposes_the_names_0_9_4_did(module: str, reference: Any, ours: Any) -> None:
    theirs, mine = reference["names"][module], ours["names"][module]
    missing = {
        name: label
        for name, label in theirs["exposed"].items()
        if mine["exposed"].get(name) != label
    }
    assert not missing, f"{module} lacks (or has another) {missing}"
    if theirs["all"] is not None:
        assert mine["all"] == theirs["all"]


def test_submodules_are_attributes_of_the_package(reference: Any, ours: Any) -> None:
    modules = {
        name: label
        for name, label in reference["names"]["fluxgate"]["exposed"].items()
        if label.startswith("module ")
    }
    assert set(modules) >= {
        "circuitbreaker", "errors", "state", "metric", "signal", "windows",
        "trackers", "trippers", "retries", "permits", "listeners",
    }  # fmt: skip
    for name, label in modules.items():
        assert ours["names"]["fluxgate"]["exposed"].get(name) == label


def _comparable(key: str, method: str | None, description: Any, ours: bool) -> Any:
    """A signature description with the documented differences taken out."""
    if not isinstance(description, dict) or "parameters" not in description:
        return description
    renamed = RENAMED.get((key, method or ""), {})
    added = ADDED_KEYWORD_ONLY.get(key, set()) if method is None else set()
    bare = (key, method) in UNANNOTATED
    parameters = []
    for name, kind, default, annotation in description["parameters"]:
        if ours and kind == "KEYWORD_ONLY" and default is not None and name in added:
            continue
        if not ours:
            name = renamed.get(name, name)
        parameters.append([name, kind, default, None if bare else annotation])
    return {"parameters": parameters, "return": None if bare else description["return"]}


def _signature_cases() -> list[Any]:
    cases = []
    for module, names in surface.CLASSES.items():
        for name in names:
            key = f"{module}.{name}"
            cases.append(pytest.param(key, id=key))
    return cases


@pytest.mark.parametrize("key", _signature_cases())
def test_signatures_match(key: str, reference: Any, ours: Any, request: Any) -> None:
    theirs, mine = reference["signatures"][key], ours["signatures"][key]
    assert _comparable(key, None, mine["class"], True) == _comparable(
        key, None, theirs["class"], False
    ), f"{key}()"
    for method, description in theirs["methods"].items():
        assert method in mine["methods"], f"{key}.{method} is missing"
        assert _comparable(key, method, mine["methods"][method], True) == _comparable(
            key, method, description, False
        ), f"{key}.{method}"


@pytest.mark.parametrize("call", surface.MISUSE)
def test_misuse_raises_what_0_9_4_raised(call: str, reference: Any, ours: Any) -> None:
    if reference["python"] != ours["python"]:
        pytest.skip(
            "the reference venv runs Python {}.{}, these tests {}.{}: messages are "
            "compared on the same version".format(*reference["python"], *ours["python"])
        )
    assert ours["misuse"][call] == reference["misuse"][call]


def test_the_battery_is_of_errors(reference: Any) -> None:
    # Every call of the battery is a misuse on 0.9.4 too.
    assert all(kind != "no error" for kind, _ in reference["misuse"].values())
