"""The bench's detection-quality section on a tiny stand-in for the shared benchmark (no timing asserted)."""

from __future__ import annotations

import gzip
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench import detection_quality
from bench.reporting import BenchReport, render_markdown

T0 = datetime(2024, 1, 1)


def make_benchmark(root: Path) -> Path:
    rng = random.Random(3)
    stamps = [T0 + i * timedelta(minutes=5) for i in range(400)]
    values = [50 + 10 * math.sin(i / 20) + rng.gauss(0, 1) + (60 if i == 300 else 0) for i in range(400)]
    (root / "data" / "real").mkdir(parents=True)
    (root / "data" / "real" / "a.csv").write_text(
        "timestamp,value\n" + "".join(f"{t:%Y-%m-%d %H:%M:%S},{v}\n" for t, v in zip(stamps, values, strict=True))
    )
    window = [f"{stamps[290]:%Y-%m-%d %H:%M:%S}.000000", f"{stamps[320]:%Y-%m-%d %H:%M:%S}.000000"]
    (root / "labels.json").write_text(json.dumps({"real/a.csv": [window]}))
    published = root / "published" / "numenta" / "real"
    published.mkdir(parents=True)
    scores = [0.9 if i == 300 else 0.1 for i in range(400)]
    with gzip.open(published / "a.csv.gz", "wt") as handle:
        handle.write(
            "timestamp,anomaly_score\n"
            + "".join(f"{t:%Y-%m-%d %H:%M:%S},{s}\n" for t, s in zip(stamps, scores, strict=True))
        )
    return root


def test_without_the_benchmark_data_the_section_is_skipped_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANOMALY_BENCHMARK_DIR", raising=False)
    monkeypatch.setattr(detection_quality, "REPOSITORY_ROOT", tmp_path / "repo")
    report = BenchReport(started_at="now", environment={})
    detection_quality.run(report, lambda _: None, quick=True, benchmark=tmp_path / "nowhere")
    [(what, why)] = report.skipped
    assert what == detection_quality.SECTION and "no benchmark data" in why
    assert not report.tables


def test_the_table_shows_both_detectors_beside_the_published_figures(tmp_path: Path) -> None:
    # Given a one-file benchmark with a published numenta result
    folder = make_benchmark(tmp_path / "bench-data")
    report = BenchReport(started_at="now", environment={})

    # When the section runs (full form: targets are set)
    detection_quality.run(report, lambda _: None, quick=False, benchmark=folder)

    # Then the table has the published rows, both detectors' scores and the targets with verdicts
    [table] = report.tables
    first_column = [row[0] for row in table.rows]
    assert "numenta (HTM)" in first_column and "randomCutForest (NAB's RCF)" in first_column
    streaming = [row for row in table.rows if row[0].startswith("streaming")]
    assert [row[0].split(", ", 1)[1] for row in streaming] == ["own threshold", "best, own rule", "best, score column"]
    assert streaming[0][5] == "> 74.0" and streaming[1][5] == "> 80.0"
    assert streaming[0][6].startswith(("met by", "missed by"))
    pipeline = [row for row in table.rows if row[0].startswith("pipeline")]
    assert pipeline and all(row[2] for row in pipeline)
    # And the scorer check on published/ is a target, and the markdown carries the table
    assert any(target.name.startswith("Scorer reproduces the published numenta") for target in report.targets)
    assert "NAB standard-profile scores" in render_markdown(report)
