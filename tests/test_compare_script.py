"""The statistics and table formatting of benchmarks/compare.py.

Only the pure functions: nothing here installs, times or reaches the network.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


compare = _load()


def run(
    closed: float = 100.0,
    bare: float = 20.0,
    *,
    lost: int = 0,
    memory: float = 1000.0,
    async_result: dict[str, Any] | None = None,
    version: str = "1.0",
) -> dict[str, Any]:
    return {
        "version": version,
        "memory": {"bytes": memory, "method": "rss", "breakers": 10},
        "closed": {"bare_ns": bare, "ns": closed},
        "async": async_result if async_result is not None else {"bare_ns": 70.0, "ns": 350.0},
        "open": {"bare_ns": 150.0, "ns": 180.0},
        "threads": {"calls": 80_000, "counted": 80_000 - lost, "lost": lost, "errors": 0},
    }


def test_median_and_spread() -> None:
    assert compare.median([3.0, 1.0, 2.0]) == 2.0
    assert compare.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert compare.median([]) is None
    # Quartiles 95 and 105 of 90, 100, 110: the middle half spans 10% of 100.
    assert compare.spread([90.0, 100.0, 110.0]) == pytest.approx(0.1)
    # An outlier moves the quartiles little.
    assert compare.spread([90.0, 95.0, 100.0, 105.0, 300.0]) == pytest.approx(0.1)
    assert compare.spread([5.0]) == 0.0
    assert compare.spread([]) is None


def test_rotation_starts_each_round_with_the_next_library() -> None:
    items = ["a", "b", "c"]
    assert [compare.rotated(items, turn) for turn in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert compare.rotated([], 3) == []


@pytest.mark.parametrize(
    ("ns", "text"),
    [(25.4, "25.4 ns"), (117.3, "117 ns"), (1330.0, "1.33 µs"), (6_540.0, "6.54 µs"), (2.5e6, "2.5 ms")],
)
def test_format_ns(ns: float, text: str) -> None:
    assert compare.format_ns(ns) == text


def test_format_ratio_and_counts() -> None:
    assert compare.format_ratio(1.2449) == "1.24x"
    assert compare.format_ratio(4.54) == "4.5x"
    assert compare.format_ratio(264.4) == "264x"
    assert compare.format_int(320_000) == "320\u202f000"
    assert compare.format_int(636.4) == "636"


def test_a_timing_cell_is_the_median_with_the_median_of_the_per_round_ratios() -> None:
    runs = [run(100.0, 20.0), run(130.0, 20.0), run(90.0, 30.0)]
    cell = compare.summarize(runs, "closed")
    assert cell.value == 100.0
    # Ratios 5.0, 6.5 and 3.0: their median, not 100 / the median bare call.
    assert cell.text == "100 ns (5.0x)"
    assert cell.spread == pytest.approx((115.0 - 95.0) / 100.0)
    assert cell.ratio_spread == pytest.approx((5.75 - 4.0) / 5.0)


def test_lost_counts_show_their_range_when_rounds_differ() -> None:
    assert compare.summarize([run(lost=0), run(lost=0)], "threads").text == "0 of 80\u202f000"
    text = compare.summarize([run(lost=10), run(lost=30), run(lost=20)], "threads").text
    assert text == "20 of 80\u202f000 (10–30)"


def test_unavailable_and_failed_workloads() -> None:
    na = compare.summarize([run(async_result={"na": "no asyncio breaker"})], "async")
    assert (na.text, na.note, na.value) == ("n/a", "no asyncio breaker", None)
    failed = compare.summarize([run(async_result={"error": "RuntimeError: boom"})], "async")
    assert (failed.text, failed.note) == ("failed", "RuntimeError: boom")
    # One failed round among measured ones: the measured rounds count.
    mixed = [run(), run(async_result={"error": "RuntimeError: boom"})]
    assert compare.summarize(mixed, "async").text == "350 ns (5.0x)"


def test_markdown_table() -> None:
    runs = {
        "fast": [run(100.0, 20.0, memory=1200.0), run(110.0, 20.0, memory=1300.0)],
        "plain": [run(async_result={"na": "no asyncio breaker"}, lost=5, version="2.0")],
    }
    labels = {"fast": "fast lib", "plain": "plain lib"}
    table, notes = compare.markdown_table(labels, runs)
    assert table.splitlines() == [
        "| library | version | CLOSED call | async await | OPEN rejection "
        "| bytes per breaker | counts lost, 8 threads |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        "| *baseline* | | 20 ns (bare call) | 70 ns (bare await) | 150 ns (raise + except) | | |",
        "| fast lib | 1.0 | 105 ns (5.2x) | 350 ns (5.0x) | 180 ns (1.20x) | 1\u202f250 | 0 of 80\u202f000 |",
        "| plain lib | 2.0 | 100 ns (5.0x) | n/a [1] | 180 ns (1.20x) | 1\u202f000 | 5 of 80\u202f000 |",
    ]
    assert notes == ["[1] no asyncio breaker"]


def test_chart_data_leaves_gaps_where_there_is_no_figure() -> None:
    runs = {"plain": [run(async_result={"na": "no asyncio breaker"})]}
    data = compare.chart_data({"plain": "plain lib"}, runs, "title")
    assert data["series"] == {
        "plain lib": {"closed": 100.0, "async": None, "open": 180.0, "memory": 1000.0}
    }
    assert data["baselines"] == {"bare call": 20.0, "bare await": None, "raise + except": 150.0}


def test_readme_table_puts_this_tree_in_bold_with_its_version() -> None:
    runs = {
        "fluxgate": [run(version="0.10.0 (native)", lost=0)],
        "pybreaker": [run(async_result={"na": "no asyncio breaker"}, version="1.4.1", lost=3)],
    }
    labels = {"fluxgate": "fluxgate (this tree)", "pybreaker": "pybreaker"}
    assert compare.readme_table(labels, runs).splitlines()[2:] == [
        "| *no breaker* | 20 ns | 70 ns | 150 ns (raise + except) | | |",
        "| **fluxgate 0.10.0** | **100 ns (5.0x)** | **350 ns (5.0x)** | **180 ns (1.20x)** "
        "| **1\u202f000** | **0 of 80\u202f000** |",
        "| pybreaker 1.4.1 | 100 ns (5.0x) | n/a | 180 ns (1.20x) | 1\u202f000 | 3 of 80\u202f000 |",
    ]


def test_only_the_lines_between_the_markers_are_replaced() -> None:
    text = (
        "# Title\n\n## Performance\n\n"
        "<!-- performance:start (written by the comparison) -->\n\nold figures\n"
        "<!-- performance:end -->\n\n## Next\n"
    )
    assert compare.replace_between_markers(text, "new figures\n") == (
        "# Title\n\n## Performance\n\n"
        "<!-- performance:start (written by the comparison) -->\n\nnew figures\n"
        "<!-- performance:end -->\n\n## Next\n"
    )
