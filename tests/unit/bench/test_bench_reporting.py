"""The bench's results writer: figures, ratios and target verdicts on fake numbers (no timing here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.reporting import RATIO, TIMES, BenchReport, Figure, Target, ratio_figure, render_markdown, write_results


def test_a_figure_is_the_median_min_and_max_of_its_runs() -> None:
    figure = Figure.of([3.0, 1.0, 2.0, 10.0])
    assert (figure.median, figure.minimum, figure.maximum, figure.runs) == (2.5, 1.0, 10.0, 4)


def test_ratios_pair_run_i_with_run_i() -> None:
    ratio = ratio_figure([10.0, 12.0, 30.0], [2.0, 3.0, 5.0])
    assert ratio.samples == (5.0, 4.0, 6.0)
    assert ratio.median == 5.0
    with pytest.raises(ValueError, match="paired runs"):
        ratio_figure([1.0], [1.0, 2.0])


def test_a_missed_upper_bound_says_by_how_much() -> None:
    target = Target("Spark ÷ DuckDB", 6.0, 7.4, RATIO)
    assert not target.met
    assert target.verdict() == f"target ≤ 6.0{TIMES}, measured 7.4{TIMES} — missed by 23%"


def test_a_missed_lower_bound_says_by_how_much_it_fell_short() -> None:
    target = Target("records/s", 20_000, 15_000, "records/s", higher_is_better=True)
    assert target.verdict() == "target ≥ 20,000 records/s, measured 15,000 records/s — missed by 25%"


def test_a_met_target_says_met() -> None:
    assert Target("callback", 5.0, 1.2, "s").verdict() == "target ≤ 5.00 s, measured 1.20 s — met"


def test_results_are_written_as_a_table_and_as_json(tmp_path: Path) -> None:
    report = BenchReport(started_at="2026-01-01 00:00:00 UTC", environment={"machine": "2 cores"})
    report.add("Prep", "2M rows, CSV", "Spark wall time", "s", [4.0, 5.0, 6.0])
    report.targets.append(Target("Prep ratio", 6.0, 7.4, RATIO))
    report.skipped.append(("test suite", "opt-in"))
    report.wall_seconds = 512.0

    write_results(report, tmp_path / "results.md", tmp_path / "results.json")

    markdown = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert "| 2M rows, CSV | Spark wall time | 5.00 s | 4.00 s | 6.00 s | 3 |  |" in markdown
    assert "missed by 23%" in markdown and "| test suite | opt-in |" in markdown
    assert markdown == render_markdown(report)
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert document["measurements"][0]["median"] == 5.0
    assert document["targets"][0] == {
        "name": "Prep ratio",
        "limit": 6.0,
        "comparison": "<=",
        "measured": 7.4,
        "unit": RATIO,
        "met": False,
        "missed_by_percent": 23.3,
        "verdict": f"target ≤ 6.0{TIMES}, measured 7.4{TIMES} — missed by 23%",
        "note": "",
    }
