"""The Evaluate job on small transform outputs: the real cut-off and events reach the report, mail and page."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from approval.mail import event_lines, key_figure_lines
from approval.report import parse_report
from evaluation_job.__main__ import REPORT_FILE_NAME, main
from ml_pipeline.evaluation_bundle import write_evaluation_zip

START = datetime(2025, 3, 3, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)
DAYS = 8
# Day 5, 08:00 and 08:30 UTC: a storm (few passengers, far from expected, far above every daily peak).
STORM = (5 * 48 + 16, 5 * 48 + 17)
ORDINARY_DAILY_PEAKS = (1.50, 1.60, 1.40, 1.55, 1.45, 1.50, 1.60, 1.50)


def transform_line(index: int, score: float, observed: float, expected: float) -> str:
    """One line as batch transform writes it (JoinSource Input + OutputFilter, RCF's JSON Lines answer)."""
    record = {
        "window_start": f"{START + index * HALF_HOUR:%Y-%m-%d %H:%M:%S}",
        "passengers": observed,
        "expected": expected,
        "SageMakerOutput": {"score": score},
    }
    return json.dumps(record) + "\n"


def scored_series() -> list[str]:
    lines = []
    for index in range(DAYS * 48):
        day, slot = divmod(index, 48)
        score = ORDINARY_DAILY_PEAKS[day] if slot == 30 else 1.0
        observed, expected = 200.0, 200.0
        if index in STORM:
            score, observed, expected = (5.0 if index == STORM[0] else 4.0), 20.0, 400.0
        lines.append(transform_line(index, score, observed, expected))
    return lines


def write_scores(folder: Path, lines: list[str], parts: int = 2) -> Path:
    """Split over `parts` files, the way batch transform writes one .out file per input object."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // parts)
    for part in range(parts):
        (folder / f"part-{part:05d}.json.out").write_text("".join(lines[part * size : (part + 1) * size]))
    return folder


def run_job(tmp_path: Path, lines: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    scores = write_scores(tmp_path / "scores", lines)
    output = tmp_path / "evaluation"
    code = main(["--scores", str(scores), "--output", str(output), "--execution-arn", "arn:aws:sagemaker:x"])
    report_path = output / REPORT_FILE_NAME
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return code, report, capsys.readouterr().err


def test_the_report_holds_the_cutoff_and_the_one_event_with_observed_vs_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given eight ordinary days whose daily peaks are 1.4..1.6, and a two-window storm scored 5.0 and 4.0
    # When the Evaluate job reads the transform output (two files, out of order across them)
    code, report, _ = run_job(tmp_path, scored_series()[::-1], capsys)
    # Then the cut-off lies above every ordinary day's peak and below the storm
    assert code == 0
    assert report["rows_scored"] == DAYS * 48
    assert report["first_window"] == "2025-03-03 00:00" and report["last_window"] == "2025-03-10 23:30"
    assert 1.60 < report["cutoff"]["value"] < 4.0
    assert report["cutoff"]["blocks"] == DAYS and report["cutoff"]["block_seconds"] == 86_400
    assert "typical highest score per day" in report["cutoff"]["method"]
    # And the storm is one event, its windows summed: 40 passengers seen where 800 were expected
    assert report["anomaly_event_count"] == 1 and report["flagged_windows"] == 2
    (event,) = report["top_events"]
    assert event["start"] == "2025-03-08 08:00" and event["end"] == "2025-03-08 09:00"
    assert event["peak_window"] == "2025-03-08 08:00" and event["peak_score"] == 5.0
    assert (event["windows"], event["observed_passengers"], event["expected_passengers"]) == (2, 40.0, 800.0)
    assert event["direction"] == "below" and event["change"] == pytest.approx(-0.95)
    assert report["events"] == report["top_events"]


def test_the_mail_and_page_lines_show_the_real_cutoff_and_the_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the report of a run with one storm
    _, report, _ = run_job(tmp_path, scored_series(), capsys)
    # When the approval path reads it back (the mail and the page share these lines)
    summary = parse_report(json.dumps(report))
    lines = "\n".join(key_figure_lines(summary) + event_lines(summary))
    # Then the approver sees the computed cut-off and the storm, observed vs expected
    assert f"Cut-off:         {report['cutoff']['value']:.3f} = typical highest score per day " in lines
    (cutoff_line,) = [line for line in lines.splitlines() if line.startswith("Cut-off:")]
    assert cutoff_line.lower().count("cut-off") == 1  # named once, not again by the report's method text
    assert "unavailable" not in lines
    assert "2025-03-08 08:00 to 2025-03-08 09:00 (2 windows), peak 5.000" in lines
    assert "observed 40 vs expected 800 passengers" in lines
    assert "Flagged windows: 2 in 1 anomaly event(s)" in lines


def test_a_run_where_no_day_stands_out_has_no_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given scores that are identical everywhere
    lines = [transform_line(index, 1.0, 100.0, 100.0) for index in range(DAYS * 48)]
    # When evaluated
    code, report, _ = run_job(tmp_path, lines, capsys)
    # Then nothing is flagged and the report says why
    assert code == 0
    assert report["anomaly_event_count"] == 0 and report["top_events"] == [] and report["flagged_windows"] == 0
    assert "no window stands out" in report["cutoff"]["method"]
    assert event_lines(parse_report(json.dumps(report))) == ["  none: no window scored above the cut-off"]


def test_csv_output_fails_naming_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a transform that wrote CSV (RCF documents no CSV response)
    code, report, errors = run_job(tmp_path, ["2025-03-03 00:00:00,200,1.0\n"] * 4, capsys)
    # Then the job fails with the file and line, and writes no report
    assert code == 1 and report == {}
    assert "evaluation failed: part-00000.json.out line 1 is not JSON" in errors


def test_a_window_in_two_files_fails_naming_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = transform_line(0, 1.0, 1.0, 1.0)
    code, _, errors = run_job(tmp_path, [line, transform_line(1, 1.0, 1.0, 1.0), line], capsys)
    assert code == 1
    assert "window 2025-03-03 00:00:00 appears in part-00000.json.out and part-00001.json.out" in errors


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_no_scored_window_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    code, _, errors = run_job(tmp_path, [content], capsys)
    assert code == 1 and "holds no scored window" in errors


def test_the_shipped_zip_runs_on_its_own(tmp_path: Path) -> None:
    # Given the zip the stack uploads, run by python with nothing of this repository on its path
    job = write_evaluation_zip(tmp_path / "evaluation-job.zip")
    scores = write_scores(tmp_path / "scores", scored_series())
    result = subprocess.run(
        [sys.executable, str(job), "--scores", str(scores), "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
        check=False,
        timeout=60,
    )
    # Then it writes the same report as the in-process run
    assert result.returncode == 0, result.stderr
    assert "1 event(s)" in result.stdout
    assert json.loads((tmp_path / "out" / REPORT_FILE_NAME).read_text())["anomaly_event_count"] == 1
