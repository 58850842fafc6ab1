"""`python -m backtest --feedback FILE`: labelled ranges show up as a feedback column; scores do not change."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backtest.__main__ import main

T0 = datetime(2024, 1, 1)
STEP = timedelta(minutes=5)


def write_series(path: Path, length: int = 300) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for index in range(length):
            writer.writerow([f"{T0 + index * STEP:%Y-%m-%d %H:%M:%S}", 50 + 10 * math.sin(index / 20)])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_rows_in_labelled_ranges_carry_the_verdict_and_the_scores_are_unchanged(tmp_path: Path) -> None:
    # Given two series and labels on one of them (overlapping: the later entry wins)
    data = tmp_path / "data"
    write_series(data / "web" / "views.csv")
    write_series(data / "orders.csv")
    feedback = tmp_path / "feedback.json"
    feedback.write_text(
        json.dumps(
            [
                {
                    "series": "web/views.csv",
                    "start": "2024-01-01 01:00:00",
                    "end": "2024-01-01 02:00:00",
                    "verdict": "not_anomaly",
                },
                {
                    "series": "web/views.csv",
                    "start": "2024-01-01T01:50:00Z",
                    "end": "2024-01-01T02:10:00Z",
                    "verdict": "anomaly",
                },
            ]
        )
    )
    plain, labelled = tmp_path / "plain", tmp_path / "labelled"
    # When the backtest runs without and with --feedback
    assert main(["--detector", "streaming", "--series", str(data), "--out", str(plain), "--workers", "1"]) == 0
    arguments = ["--detector", "streaming", "--series", str(data), "--out", str(labelled), "--workers", "1"]
    assert main([*arguments, "--feedback", str(feedback)]) == 0
    # Then the labelled file's rows say the verdict in force, the other file's column is empty
    rows = read_rows(labelled / "web" / "views.csv")
    column = {row["timestamp"]: row["feedback"] for row in rows}
    assert column["2024-01-01 00:55:00"] == ""
    assert column["2024-01-01 01:00:00"] == column["2024-01-01 01:45:00"] == "not_anomaly"
    assert column["2024-01-01 01:50:00"] == column["2024-01-01 02:10:00"] == "anomaly"
    assert column["2024-01-01 02:15:00"] == ""
    assert {row["feedback"] for row in read_rows(labelled / "orders.csv")} == {""}
    # And the detector's output is what it was without labels
    without = read_rows(plain / "web" / "views.csv")
    assert [{k: v for k, v in row.items() if k != "feedback"} for row in rows] == without
    assert "feedback" not in without[0]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"series": "a.csv"}, "feedback labels must be a JSON list"),
        ([{"series": "a.csv", "start": "2024-01-01", "end": "2024-01-02", "verdict": "maybe"}], "verdict must be"),
        ([{"series": "a.csv", "start": "soon", "end": "2024-01-02", "verdict": "anomaly"}], "ISO 8601"),
        ([{"series": "a.csv", "start": "2024-01-02", "end": "2024-01-01", "verdict": "anomaly"}], "is before start"),
        ([{"series": "b.csv", "start": "2024-01-01", "end": "2024-01-02", "verdict": "anomaly"}], "not in --series"),
    ],
)
def test_bad_feedback_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: object, message: str
) -> None:
    write_series(tmp_path / "data" / "a.csv", length=20)
    feedback = tmp_path / "feedback.json"
    feedback.write_text(json.dumps(document))
    arguments = ["--detector", "streaming", "--series", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    assert main([*arguments, "--feedback", str(feedback)]) == 1
    assert message in capsys.readouterr().err
