"""Instructions per protected call, counted by valgrind's callgrind.

Wall-clock timings on a shared machine vary by tens of percent; the number of
instructions the CPU executes for a call does not.  This script runs each
scenario below in a fresh interpreter under ``valgrind --tool=callgrind``
twice, once with a short loop and once with a long one, and divides the
difference in total instructions by the difference in calls.  Everything
outside the loop (start-up, imports, building the breaker, warm-up) cancels
out, leaving the instructions of one loop iteration: the protected call, the
function it protects and the loop itself. The same run twice gives the same
count; another checkout or venv moves it by under 1%.

    python benchmarks/instruction_counts.py            # print the counts
    python benchmarks/instruction_counts.py --check    # compare with the baseline
    python benchmarks/instruction_counts.py --update   # rewrite the baseline

``--check`` fails (exit 1) when a protected scenario needs more than 10% more
instructions per call than ``instruction_counts.json`` records for this
interpreter.  The baseline is keyed by Python version and machine, since a
different interpreter executes a different number of instructions for the
same call; it was recorded with the extension built as ``pip install .``
builds it (CMake's Release configuration).  Update it deliberately, and say why in the commit message.

The ``bare_*`` scenarios run the same loops without a breaker.  They are
reported, not checked: they show what the interpreter itself costs, so a jump
in every scenario at once points at the interpreter or the compiler, not at
fluxgate.

The counts are of the clock_gettime path (``FLUXGATE_TSC=0``): under valgrind
the counter clock cannot anchor itself and would take its slow path on every
reading. The counter path reads the counter and five words instead of the
kernel's clock, fewer instructions than the path counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

BASELINE = Path(__file__).with_name("instruction_counts.json")
TOLERANCE = 0.10
SHORT, LONG = 2_000, 12_000

# Each scenario is a program that reads the number of loop iterations from
# argv[1], builds what it needs, warms up, then runs the loop.
COMMON = """\
import asyncio, sys
from fluxgate import AsyncCircuitBreaker, CallNotPermittedError, CircuitBreaker
from fluxgate.retries import Never
from fluxgate.trippers import AvgLatency, FailureRate, FailureStreak, MinRequests, SlowRate
from fluxgate.windows import TimeWindow
n = int(sys.argv[1])
"""

SCENARIOS: dict[str, str] = {
    "bare_call": """
def f(x):
    return x
for i in range(100):
    f(i)
for i in range(n):
    f(i)
""",
    "closed_success": """
cb = CircuitBreaker()
@cb
def f(x):
    return x
for i in range(100):
    f(i)
for i in range(n):
    f(i)
""",
    "time_window": """
cb = CircuitBreaker(window=TimeWindow(60))
@cb
def f(x):
    return x
for i in range(100):
    f(i)
for i in range(n):
    f(i)
""",
    "six_leaves": """
cb = CircuitBreaker(tripper=MinRequests(100) & FailureRate(0.5) | FailureStreak(10**6)
                    | AvgLatency(100.0) | FailureRate(0.9) | FailureStreak(10**7))
@cb
def f(x):
    return x
for i in range(100):
    f(i)
for i in range(n):
    f(i)
assert cb.info().state == "closed"
""",
    "slow_thresholds": """
slow = [SlowRate(0.5, threshold=k * 1e-12) for k in range(1, 11)]
tripper = MinRequests(100) & FailureRate(0.5)
for s in slow:
    tripper = tripper | (MinRequests(10**9) & s)
cb = CircuitBreaker(tripper=tripper)
@cb
def f(x):
    return x
for i in range(100):
    f(i)
for i in range(n):
    f(i)
assert len(cb.info().metrics.slow_counts) == 10
""",
    "bare_failure": """
def f(x):
    raise ValueError(x)
for i in range(n + 100):
    try:
        f(i)
    except ValueError:
        pass
""",
    "tracked_failure": """
cb = CircuitBreaker(tripper=MinRequests(10**9) & FailureRate(0.5))
@cb
def f(x):
    raise ValueError(x)
for i in range(n + 100):
    try:
        f(i)
    except ValueError:
        pass
assert cb.info().state == "closed"
""",
    "open_rejection": """
cb = CircuitBreaker(retry=Never())
cb.force_open()
@cb
def f(x):
    return x
for i in range(n + 100):
    try:
        f(i)
    except CallNotPermittedError:
        pass
""",
    "bare_await": """
async def f(x):
    return x
async def main():
    for i in range(n + 100):
        await f(i)
asyncio.run(main())
""",
    "async_await": """
acb = AsyncCircuitBreaker()
@acb
async def f(x):
    return x
async def main():
    for i in range(n + 100):
        await f(i)
asyncio.run(main())
""",
}
CHECKED = [name for name in SCENARIOS if not name.startswith("bare_")]


class Measurement(NamedTuple):
    name: str
    per_call: float


def baseline_key() -> str:
    """The interpreter and machine a count is valid for."""
    implementation = sys.implementation.name
    version = ".".join(map(str, sys.version_info[:3]))
    free_threaded = "t" if "free-threading" in sys.version else ""
    return f"{implementation}-{version}{free_threaded}-{platform.system().lower()}-{platform.machine()}"


def total_instructions(program: str, iterations: int, workdir: Path) -> int:
    out = workdir / "callgrind.out"
    # Under valgrind a call lasts microseconds and two reads of the
    # time-stamp counter lie too far apart to anchor the counter clock, so
    # every reading would take its slow path: count the clock_gettime path
    # instead, the one the baseline was recorded with.
    env = dict(os.environ, PYTHONHASHSEED="0", FLUXGATE_TSC="0")
    env.pop("LD_PRELOAD", None)
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            program,
            str(iterations),
        ],
        check=True,
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in callgrind's output {out}")


def measure(name: str, workdir: Path) -> Measurement:
    program = COMMON + SCENARIOS[name]
    short = total_instructions(program, SHORT, workdir)
    long = total_instructions(program, LONG, workdir)
    return Measurement(name, (long - short) / (LONG - SHORT))


def load_baseline() -> dict[str, dict[str, float]]:
    if not BASELINE.exists():
        return {}
    loaded: dict[str, dict[str, float]] = json.loads(BASELINE.read_text())
    return loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail on a count >10%% over the baseline")
    mode.add_argument("--update", action="store_true", help="record the counts as the new baseline")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})")
    args = parser.parse_args()
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if shutil.which("valgrind") is None:
        print("error: valgrind is not installed", file=sys.stderr)
        return 2

    key = baseline_key()
    baselines = load_baseline()
    baseline = baselines.get(key, {})
    if args.check and not baseline:
        print(f"error: {BASELINE.name} has no baseline for {key}; run with --update", file=sys.stderr)
        return 2

    names = args.scenarios or list(SCENARIOS)
    failures = []
    print(f"instructions per call on {key} (callgrind, {LONG - SHORT} calls)")
    print(f"{'scenario':<16} {'count':>9} {'baseline':>9} {'change':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        measurements = [measure(name, Path(tmp)) for name in names]
    for m in measurements:
        recorded = baseline.get(m.name)
        if recorded is None:
            print(f"{m.name:<16} {m.per_call:>9.0f} {'-':>9} {'':>8}")
            continue
        change = m.per_call / recorded - 1
        flag = ""
        if m.name in CHECKED and change > TOLERANCE:
            flag = f"  over the {TOLERANCE:.0%} tolerance"
            failures.append(m.name)
        print(f"{m.name:<16} {m.per_call:>9.0f} {recorded:>9.0f} {change:>+8.1%}{flag}")

    if args.update:
        baselines[key] = {**baseline, **{m.name: round(m.per_call, 1) for m in measurements}}
        BASELINE.write_text(json.dumps(baselines, indent=2, sort_keys=True) + "\n")
        print(f"baseline for {key} written to {BASELINE.name}")
    if args.check and failures:
        print(f"error: more instructions per call than the baseline allows: {', '.join(failures)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
