"""Compare fluxgate with fluxgate 0.9.4 and other circuit breakers for Python.

Run from the repository root, with network access to PyPI the first time:

    python benchmarks/compare.py            # 5 rounds, about 4 minutes
    python benchmarks/compare.py --quick    # a rough smoke run, about 10 seconds

(The first run also creates the venvs and builds this tree: add a minute.)

Each library is installed into a venv of its own under ``--cache``
(``benchmarks/.venvs`` by default, ignored by git), with the interpreter
running this script: fluxgate 0.9.4 (pure Python), pybreaker, circuitbreaker,
aiobreaker, interlock-cb (Python 3.11 or newer) and purgatory from PyPI, and
this tree's fluxgate, built from the repository (Release build, rebuilt when
its sources change; ``--fluxgate-from here`` uses the fluxgate installed for
the running interpreter instead).  A library that no longer installs is
skipped and the output says so.

Each round runs ``benchmarks/workloads.py`` once per library, in a process
of its own, the order rotating from round to round so that the machine's
noise spreads over all of them; the tables give the median over the rounds.
The workloads and what each column means are described in workloads.py and
in docs/performance.md.  The script prints a markdown table, writes it with
the machine's description to ``--output-markdown`` if given, and draws a bar
chart (log scale) to ``--chart`` (docs/performance.png by default; not in
``--quick`` runs unless asked) with matplotlib, installed into a venv of its
own under the cache.  Nothing here is part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads.py"
CHART = HERE / "chart.py"


@dataclass(frozen=True)
class Library:
    key: str  # the venv's directory under the cache
    label: str  # the table's row label
    requirement: str  # what pip installs; "" for this tree
    adapter: str  # workloads.py's adapter


THIS_TREE = Library("fluxgate", "fluxgate (this tree)", "", "fluxgate")
LIBRARIES = (
    THIS_TREE,
    Library("fluxgate-0.9.4", "fluxgate 0.9.4", "fluxgate==0.9.4", "fluxgate"),
    Library("pybreaker", "pybreaker", "pybreaker", "pybreaker"),
    Library("circuitbreaker", "circuitbreaker", "circuitbreaker", "circuitbreaker"),
    Library("aiobreaker", "aiobreaker", "aiobreaker", "aiobreaker"),
    Library("interlock-cb", "interlock-cb", "interlock-cb", "interlock-cb"),
    Library("purgatory", "purgatory", "purgatory", "purgatory"),
)
PLOTTING = "matplotlib"

TIMINGS = ("closed", "async", "open")
HEADINGS = {
    "closed": "CLOSED call",
    "async": "async await",
    "open": "OPEN rejection",
    "memory": "bytes per breaker",
    "threads": "counts lost, 8 threads",
}
BASELINES = {"closed": "bare call", "async": "bare await", "open": "raise + except"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Statistics and formatting (no I/O: tests/test_compare_script.py runs them)


def median(values: Iterable[float]) -> Optional[float]:
    """The median of ``values``, None when there are none."""
    listed = list(values)
    return statistics.median(listed) if listed else None


def spread(values: Iterable[float]) -> Optional[float]:
    """The interquartile range of ``values`` over their median: how far apart
    the middle half of the rounds lie.  0.0 for one value, None for none."""
    listed = list(values)
    middle = median(listed)
    if not listed or not middle:
        return None
    if len(listed) == 1:
        return 0.0
    first, _, third = statistics.quantiles(listed, n=4, method="inclusive")
    return (third - first) / middle


def rotated(items: Sequence[Any], turn: int) -> list[Any]:
    """``items`` rotated left by ``turn``: each round starts with another one."""
    if not items:
        return []
    turn %= len(items)
    return list(items[turn:]) + list(items[:turn])


def format_ns(ns: float) -> str:
    """Nanoseconds, three significant figures: ``101 ns``, ``1.44 µs``."""
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns" if ns < 100 else f"{ns:.0f} ns"


def format_int(value: float) -> str:
    """A count, thousands separated by a thin space as in the docs: ``1 234``."""
    return f"{round(value):,}".replace(",", "\u202f")


def format_ratio(ratio: float) -> str:
    if ratio >= 10:
        return f"{ratio:.0f}x"
    return f"{ratio:.1f}x" if ratio >= 2 else f"{ratio:.2f}x"


@dataclass
class Cell:
    """One library's figure for one workload over the rounds."""

    text: str  # the table's text
    value: Optional[float] = None  # the median (ns, bytes or counts lost)
    spread: Optional[float] = None  # relative spread of the rounds' values
    note: str = ""  # why there is no figure
    ratio_spread: Optional[float] = None  # relative spread of the rounds' ratios


def summarize(runs: Sequence[dict[str, Any]], workload: str) -> Cell:
    """One cell from the rounds' results of one library."""
    results = [run[workload] for run in runs if workload in run]
    errors = [result["error"] for result in results if "error" in result]
    unavailable = [result["na"] for result in results if "na" in result]
    measured = [result for result in results if "error" not in result and "na" not in result]
    if not measured:
        if unavailable:
            return Cell("n/a", note=unavailable[0])
        return Cell("failed", note=errors[0] if errors else "not run")
    if workload in TIMINGS:
        ns = [result["ns"] for result in measured]
        ratios = [result["ns"] / result["bare_ns"] for result in measured]
        ratio = median(ratios)
        value = median(ns)
        assert value is not None and ratio is not None
        text = f"{format_ns(value)} ({format_ratio(ratio)})"
        return Cell(text, value, spread(ns), ratio_spread=spread(ratios))
    if workload == "memory":
        sizes = [result["bytes"] for result in measured]
        value = median(sizes)
        assert value is not None
        return Cell(format_int(value), value, spread(sizes))
    if workload == "threads":
        lost = [result["lost"] for result in measured]
        value = median(lost)
        assert value is not None
        text = f"{format_int(value)} of {format_int(measured[0]['calls'])}"
        if min(lost) != max(lost):
            text += f" ({format_int(min(lost))}–{format_int(max(lost))})"
        raised = sum(result["errors"] for result in measured)
        note = f"{raised} unexpected exceptions" if raised else ""
        return Cell(text, value, note=note)
    raise ValueError(f"unknown workload {workload!r}")


def baseline(runs_by_library: Mapping[str, Sequence[dict[str, Any]]], workload: str) -> Optional[float]:
    """The median bare figure of a timing over every library's rounds."""
    return median(
        run[workload]["bare_ns"]
        for runs in runs_by_library.values()
        for run in runs
        if "bare_ns" in run.get(workload, {})
    )


def version_of(runs: Sequence[dict[str, Any]]) -> str:
    versions = sorted({str(run.get("version", "?")) for run in runs})
    return ", ".join(versions)


def markdown_table(
    labels: dict[str, str], runs_by_library: Mapping[str, Sequence[dict[str, Any]]]
) -> tuple[str, list[str]]:
    """The results table and its footnotes (why a cell is n/a or failed)."""
    columns = list(HEADINGS)
    lines = [
        "| library | version | " + " | ".join(HEADINGS[c] for c in columns) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    bare = [baseline(runs_by_library, workload) for workload in TIMINGS]
    lines.append(
        "| *baseline* | | "
        + " | ".join(
            f"{format_ns(value)} ({BASELINES[workload]})" if value is not None else ""
            for workload, value in zip(TIMINGS, bare)
        )
        + " | | |"
    )
    notes: list[str] = []
    for key, runs in runs_by_library.items():
        cells = []
        for column in columns:
            cell = summarize(runs, column)
            text = cell.text
            if cell.note:
                if cell.note not in notes:
                    notes.append(cell.note)
                text += f" [{notes.index(cell.note) + 1}]"
            cells.append(text)
        lines.append(f"| {labels[key]} | {version_of(runs)} | " + " | ".join(cells) + " |")
    footnotes = [f"[{number}] {note}" for number, note in enumerate(notes, 1)]
    return "\n".join(lines), footnotes


def spread_table(labels: dict[str, str], runs_by_library: Mapping[str, Sequence[dict[str, Any]]]) -> str:
    """How far apart the rounds' figures lie: interquartile range / median,
    of the times and, in brackets, of the ratios to the bare baseline."""
    columns = [*TIMINGS, "memory"]
    lines = [
        "| library | " + " | ".join(HEADINGS[c] for c in columns) + " |",
        "| --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for key, runs in runs_by_library.items():
        cells = []
        for column in columns:
            cell = summarize(runs, column)
            text = "" if cell.spread is None else f"{cell.spread:.0%}"
            if cell.ratio_spread is not None:
                text += f" ({cell.ratio_spread:.0%})"
            cells.append(text)
        lines.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart_data(
    labels: dict[str, str], runs_by_library: Mapping[str, Sequence[dict[str, Any]]], title: str
) -> dict[str, Any]:
    """What chart.py draws: medians per library, None where there is none."""
    series = {}
    for key, runs in runs_by_library.items():
        series[labels[key]] = {
            workload: summarize(runs, workload).value for workload in (*TIMINGS, "memory")
        }
    return {
        "title": title,
        "headings": {workload: HEADINGS[workload] for workload in (*TIMINGS, "memory")},
        "baselines": {
            BASELINES[workload]: baseline(runs_by_library, workload) for workload in TIMINGS
        },
        "baseline_of": BASELINES,
        "series": series,
    }


README_START = "<!-- performance:start"
README_END = "<!-- performance:end -->"
README_HEADINGS = {
    "closed": "a call, CLOSED",
    "async": "an `await`, CLOSED",
    "open": "a refusal, OPEN",
    "memory": "bytes per breaker",
    "threads": "counts lost, 8 threads",
}


def readme_table(labels: dict[str, str], runs_by_library: Mapping[str, Sequence[dict[str, Any]]]) -> str:
    """The README's short table: this tree's row in bold, versions in the
    labels, no footnotes or ranges."""
    columns = list(README_HEADINGS)
    lines = [
        "| library | " + " | ".join(README_HEADINGS[c] for c in columns) + " |",
        "| --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    bare = [baseline(runs_by_library, workload) for workload in TIMINGS]
    texts = [format_ns(value) if value is not None else "" for value in bare]
    if texts[2]:
        texts[2] += " (raise + except)"
    lines.append("| *no breaker* | " + " | ".join(texts) + " | | |")
    for key, runs in runs_by_library.items():
        cells = []
        for column in columns:
            cell = summarize(runs, column)
            text = cell.text.split(" (")[0] if column == "threads" else cell.text
            cells.append(text)
        version = version_of(runs).replace(" (native)", "")
        label = labels[key]
        if key == THIS_TREE.key:
            label = f"fluxgate {version}"
            cells = [f"**{cell}**" if cell else cell for cell in cells]
            lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
            continue
        if not label.endswith(version):
            label += f" {version}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_section(
    labels: dict[str, str],
    runs_by_library: Mapping[str, Sequence[dict[str, Any]]],
    rounds: int,
    chart: str,
    quick: bool = False,
) -> str:
    """What goes between the README's performance markers."""

    def fill(text: str) -> str:
        return textwrap.fill(text, width=78, break_long_words=False, break_on_hyphens=False)

    parts = [
        fill(
            f"Measured on {datetime.date.today().isoformat()} with "
            f"{platform.python_implementation()} {platform.python_version()} on "
            f"{platform.system()} {platform.machine()} ({cpu_model()}, "
            f"{os.cpu_count()} logical cores), by `python benchmarks/compare.py "
            f"{'--quick ' if quick else ''}--rounds {rounds}`: each library in its own "
            "venv and processes, the same workloads, each figure the median of "
            f"{rounds} round{'s' if rounds != 1 else ''} (in brackets, the "
            "ratio to the same work without a breaker). Every library is configured "
            "as close as it allows to a window of 100 calls and a 50% failure rate."
        ),
        readme_table(labels, runs_by_library),
    ]
    if chart:
        parts.append(f"![Time per call and bytes per breaker for each library, log scales]({chart})")
    ours = runs_by_library.get(THIS_TREE.key, [])
    closed = summarize(ours, "closed").value if ours else None
    bare = baseline(runs_by_library, "closed")
    added = ""
    if closed is not None and bare is not None:
        added = f"fluxgate adds about {max(5, round((closed - bare) / 5) * 5)} ns to a call. "
    parts.append(
        fill(
            added + "[Performance](docs/performance.md) describes the workloads, the "
            "configurations, the noise, and how to rerun the comparison; "
            "`python -m fluxgate bench` measures fluxgate alone on your machine."
        )
    )
    return "\n\n".join(parts) + "\n"


def replace_between_markers(text: str, section: str) -> str:
    """``text`` with the lines between the performance markers replaced."""
    start = text.index(README_START)
    start = text.index("\n", start) + 1
    end = text.index(README_END, start)
    return text[:start] + "\n" + section + text[end:]


# --------------------------------------------------------------------------
# The machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_lines() -> list[str]:
    lines = [
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {platform.platform()}, {platform.machine()}, {cpu_model()}, "
        f"{os.cpu_count()} logical cores",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
    ]
    if hasattr(os, "getloadavg"):
        lines.append("- load average at the start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return lines


# --------------------------------------------------------------------------
# Venvs


def venv_python(venv: Path) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def tree_digest() -> str:
    """A digest of what a build of this tree is made from."""
    digest = hashlib.sha256()
    paths = [REPO / "pyproject.toml", REPO / "CMakeLists.txt"]
    for folder in (REPO / "src", REPO / "python"):
        paths.extend(
            path
            for path in folder.rglob("*")
            if path.is_file() and path.suffix in {".c", ".h", ".py", ".pyi", ".typed"}
        )
    for path in sorted(paths):
        if path.exists():
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_quiet(command: Sequence[str | Path], timeout: float) -> tuple[bool, str]:
    try:
        completed = subprocess.run(
            [str(part) for part in command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    return completed.returncode == 0, completed.stdout


def tail(text: str, lines: int = 4) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:])


def ensure_venv(cache: Path, key: str, requirement: str, stamp: str, refresh: bool) -> tuple[Optional[Path], str]:
    """The venv's interpreter, or None and why it could not be made."""
    venv = cache / key
    marker = venv / "fluxgate-compare-installed"
    python = venv_python(venv)
    wanted = f"{sys.version}\n{requirement}\n{stamp}"
    if not refresh and marker.exists() and python.exists() and marker.read_text() == wanted:
        return python, ""
    shutil.rmtree(venv, ignore_errors=True)
    log(f"installing {requirement} into {venv}")
    made, output = run_quiet([sys.executable, "-m", "venv", venv], timeout=300)
    if not made:
        return None, "could not create a venv: " + tail(output)
    installed, output = run_quiet(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
        timeout=1800,
    )
    if not installed:
        return None, f"pip install {requirement} failed: " + tail(output)
    marker.write_text(wanted)
    return python, ""


def prepare(
    libraries: Sequence[Library], cache: Path, fluxgate_from: str, refresh: bool
) -> tuple[dict[str, Path], dict[str, str]]:
    """Interpreters of the libraries that installed; reasons for the others."""
    ready: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for library in libraries:
        if library is THIS_TREE and fluxgate_from == "here":
            found, output = run_quiet([sys.executable, "-c", "import fluxgate._fluxgate"], 60)
            if found:
                ready[library.key] = Path(sys.executable)
            else:
                skipped[library.key] = "fluxgate is not installed for this interpreter: " + tail(output, 1)
            continue
        if library is THIS_TREE:
            python, reason = ensure_venv(cache, library.key, str(REPO), tree_digest(), refresh)
        else:
            python, reason = ensure_venv(cache, library.key, library.requirement, "", refresh)
        if python is None:
            skipped[library.key] = reason
        else:
            ready[library.key] = python
    return ready, skipped


# --------------------------------------------------------------------------
# Running


def run_worker(python: Path, library: Library, quick: bool) -> dict[str, Any]:
    command = [str(python), str(WORKLOADS), library.adapter] + (["--quick"] if quick else [])
    try:
        completed = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return {"failed": "timed out"}
    if completed.returncode != 0:
        return {"failed": tail(completed.stderr)}
    try:
        result = json.loads(completed.stdout)
    except ValueError:
        return {"failed": "unreadable output: " + tail(completed.stdout)}
    return result  # type: ignore[no-any-return]


def run_rounds(
    libraries: Sequence[Library], ready: dict[str, Path], rounds: int, quick: bool
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    runs: dict[str, list[dict[str, Any]]] = {library.key: [] for library in libraries if library.key in ready}
    failed: dict[str, str] = {}
    available = [library for library in libraries if library.key in ready]
    for turn in range(rounds):
        timings = []
        for library in rotated(available, turn):
            start = time.monotonic()
            result = run_worker(ready[library.key], library, quick)
            if "failed" in result:
                failed[library.key] = result["failed"]
                timings.append(f"{library.label} failed")
            else:
                runs[library.key].append(result)
                timings.append(f"{library.label} {time.monotonic() - start:.1f}s")
        log(f"round {turn + 1}/{rounds}: " + ", ".join(timings))
    return {key: value for key, value in runs.items() if value}, failed


def draw_chart(cache: Path, data: dict[str, Any], path: Path, refresh: bool) -> str:
    """Draws the chart; returns "" or why it was not drawn."""
    python, reason = ensure_venv(cache, "plotting", PLOTTING, "", refresh)
    if python is None:
        return reason
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "results.json"
        source.write_text(json.dumps(data))
        drawn, output = run_quiet([python, CHART, source, path], timeout=300)
    return "" if drawn else "the chart failed: " + tail(output)


def report(
    labels: dict[str, str],
    runs: dict[str, list[dict[str, Any]]],
    skipped: dict[str, str],
    failed: dict[str, str],
    header: Sequence[str],
) -> str:
    table, footnotes = markdown_table(labels, runs)
    parts = ["\n".join(header), table]
    if footnotes:
        parts.append("\n".join(footnotes))
    if skipped or failed:
        parts.append(
            "\n".join(
                [f"- {labels[key]}: skipped, {reason}" for key, reason in skipped.items()]
                + [f"- {labels[key]}: a run failed, {reason}" for key, reason in failed.items()]
            )
        )
    if any(len(rounds) > 1 for rounds in runs.values()):
        parts.append(
            "Spread of the rounds, interquartile range / median "
            "(of the ratios in brackets):\n\n" + spread_table(labels, runs)
        )
    return "\n\n".join(parts) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare fluxgate with other circuit breakers, each in its own venv."
    )
    parser.add_argument("--quick", action="store_true", help="a rough smoke run (about 10 seconds once the venvs exist)")
    parser.add_argument("--rounds", type=int, help="processes per library (default 5, 1 with --quick)")
    parser.add_argument("--cache", type=Path, default=HERE / ".venvs", help="where the venvs live")
    parser.add_argument("--refresh", action="store_true", help="reinstall every venv")
    parser.add_argument(
        "--fluxgate-from",
        choices=("repo", "here"),
        default="repo",
        help="build this tree into its own venv (default), or use the fluxgate of this interpreter",
    )
    parser.add_argument(
        "--libraries",
        nargs="+",
        choices=[library.key for library in LIBRARIES],
        help="only these (default: all)",
    )
    parser.add_argument("--output-markdown", type=Path, metavar="FILE", help="write the report there too")
    parser.add_argument("--output-json", type=Path, metavar="FILE", help="write every round's raw results there")
    parser.add_argument("--chart", type=Path, metavar="FILE", help="the chart (default docs/performance.png)")
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="rewrite README.md's performance section (between its markers) with the results",
    )
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.chart is None and not args.quick:
        args.chart = REPO / "docs" / "performance.png"
    if args.no_chart:
        args.chart = None
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    libraries = [lib for lib in LIBRARIES if args.libraries is None or lib.key in args.libraries]
    labels = {library.key: library.label for library in LIBRARIES}
    header = ["# Circuit breakers compared", ""] + machine_lines()
    log("\n".join(header[2:]))
    args.cache.mkdir(parents=True, exist_ok=True)
    ready, skipped = prepare(libraries, args.cache, args.fluxgate_from, args.refresh)
    for key, reason in skipped.items():
        log(f"skipped {labels[key]}: {reason}")
    runs, failed = run_rounds(libraries, ready, args.rounds, args.quick)
    budget = "quick" if args.quick else "full"
    fluxgate_note = (
        "this tree built into its own venv" if args.fluxgate_from == "repo" else "the running interpreter's fluxgate"
    )
    header += [
        f"- rounds: {args.rounds} ({budget} budget), median over the rounds; "
        f"fluxgate (this tree): {fluxgate_note}",
        "",
    ]
    text = report(labels, runs, skipped, failed, header)
    print(text)
    if args.output_markdown is not None:
        args.output_markdown.write_text(text)
    if args.output_json is not None:
        raw = {"header": header, "labels": labels, "runs": runs, "skipped": skipped, "failed": failed}
        args.output_json.write_text(json.dumps(raw, indent=1) + "\n")
    if args.chart is not None and runs:
        title = (
            f"{datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, median of {args.rounds}"
        )
        problem = draw_chart(args.cache, chart_data(labels, runs, title), args.chart.resolve(), args.refresh)
        log(problem or f"chart written to {args.chart}")
    if args.update_readme and runs:
        readme = REPO / "README.md"
        chart = ""
        if args.chart is not None:
            try:
                chart = args.chart.resolve().relative_to(REPO).as_posix()
            except ValueError:
                chart = ""
        section = readme_section(labels, runs, args.rounds, chart, args.quick)
        readme.write_text(replace_between_markers(readme.read_text(), section))
        log("README.md's performance section rewritten")
    log(f"took {time.monotonic() - started:.0f}s")
    return 0 if runs else 1


if __name__ == "__main__":
    sys.exit(main())
