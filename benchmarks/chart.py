"""Draws benchmarks/compare.py's bar chart (log scale) with matplotlib.

    python benchmarks/chart.py RESULTS.json CHART.png

Run by compare.py in a venv of its own that has matplotlib; RESULTS.json is
what compare.chart_data() returns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TIMINGS = ("closed", "async", "open")


def label_bars(axis: Any, bars: Any, values: list[float | None], unit: str) -> None:
    for bar, value in zip(bars, values):
        if value is None:
            continue
        text = f"{value / 1000:.2g} µs" if unit == "ns" and value >= 1000 else f"{value:.0f}"
        if unit == "ns" and value < 1000:
            text += " ns"
        axis.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6,
            rotation=90,
        )


def draw(data: dict[str, Any], path: Path) -> None:
    series: dict[str, dict[str, float | None]] = data["series"]
    headings: dict[str, str] = data["headings"]
    baseline_of: dict[str, str] = data["baseline_of"]
    baselines: dict[str, float | None] = data["baselines"]
    names = ["baseline", *series]
    colours = [
        "#9e9e9e",
        "#1f77b4",
        "#aec7e8",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
    ]

    figure, (times, memory) = plt.subplots(
        1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [3, 1.4]}
    )
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        if name == "baseline":
            values = [baselines.get(baseline_of[workload]) for workload in TIMINGS]
        else:
            values = [series[name].get(workload) for workload in TIMINGS]
        positions = [group + (index - (len(names) - 1) / 2) * width for group in range(len(TIMINGS))]
        heights = [value if value is not None else 0.0 for value in values]
        bars = times.bar(
            positions,
            heights,
            width,
            label=name if name != "baseline" else "no breaker (bare call / await / raise + except)",
            color=colours[index % len(colours)],
        )
        label_bars(times, bars, values, "ns")
        for position, value in zip(positions, values):
            if value is None:
                times.annotate(
                    "n/a",
                    (position, 0.02),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                )
    times.set_yscale("log")
    times.set_ylabel("time per call, ns (log scale; lower is better)")
    times.set_xticks(range(len(TIMINGS)), [headings[workload] for workload in TIMINGS])
    times.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    times.set_ylim(top=times.get_ylim()[1] * 3)
    times.grid(axis="y", which="major", alpha=0.3)

    libraries = list(series)
    sizes = [series[name].get("memory") for name in libraries]
    bars = memory.bar(
        range(len(libraries)),
        [size if size is not None and size > 0 else 0.0 for size in sizes],
        0.7,
        color=[colours[(index + 1) % len(colours)] for index in range(len(libraries))],
    )
    label_bars(memory, bars, sizes, "bytes")
    memory.set_yscale("log")
    memory.set_ylabel("bytes per breaker after 100 calls (log scale)")
    memory.set_xticks(range(len(libraries)), libraries, rotation=30, ha="right", fontsize=7)
    memory.set_ylim(top=memory.get_ylim()[1] * 3)
    memory.grid(axis="y", which="major", alpha=0.3)

    figure.suptitle(data["title"], fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    source, target = sys.argv[1:3]
    draw(json.loads(Path(source).read_text()), Path(target))


if __name__ == "__main__":
    main()
