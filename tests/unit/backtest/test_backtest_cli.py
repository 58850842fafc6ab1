"""`python -m backtest`: result files per input file, NAB scores with labels, clear errors for bad input."""

from __future__ import annotations

import csv
import json
import math
import random
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backtest import detector_api
from backtest.__main__ import main
from backtest.runner import DetectorUnavailableError, check_detector

T0 = datetime(2024, 1, 1)
STEP = timedelta(minutes=5)


def write_series(path: Path, length: int = 400, spike_at: int | None = 300, seed: int = 1) -> list[datetime]:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = [T0 + index * STEP for index in range(length)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for index, stamp in enumerate(stamps):
            value = 50 + 10 * math.sin(index / 20) + rng.gauss(0, 1) + (60 if index == spike_at else 0)
            writer.writerow([f"{stamp:%Y-%m-%d %H:%M:%S}", value])
    return stamps


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_folder_is_replayed_file_by_file_into_the_same_relative_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a folder with series in a subfolder and at its top
    data = tmp_path / "data"
    write_series(data / "web" / "views.csv")
    write_series(data / "orders.csv", spike_at=None, seed=2)
    out = tmp_path / "out"

    # When the streaming detector is backtested on it
    exit_code = main(["--detector", "streaming", "--series", str(data), "--out", str(out), "--workers", "2"])

    # Then each file has its result at the same relative path, one row per input row
    assert exit_code == 0
    for name in ("web/views.csv", "orders.csv"):
        rows = read_rows(out / name)
        assert len(rows) == 400
        assert list(rows[0])[:4] == ["timestamp", "value", "score", "is_anomaly"]
        assert {"severity", "expected", "expected_low", "expected_high", "direction"} <= set(rows[0])
        assert all(0.0 <= float(row["score"]) <= 1.0 and row["is_anomaly"] in {"0", "1"} for row in rows)
        assert rows[0]["timestamp"] == "2024-01-01 00:00:00"
    # And the spike was flagged where it is
    assert read_rows(out / "web/views.csv")[300]["is_anomaly"] == "1"
    assert "2 file(s), 800 rows" in capsys.readouterr().out


def test_with_labels_the_nab_scores_are_printed_and_summarised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a series with a spike and a labels file with a window around it (NAB's shape)
    stamps = write_series(tmp_path / "data" / "real" / "views.csv")
    window = [f"{stamps[290]:%Y-%m-%d %H:%M:%S}.000000", f"{stamps[320]:%Y-%m-%d %H:%M:%S}.000000"]
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"real/views.csv": [window]}))

    # When backtested with the labels
    exit_code = main(
        [
            "--detector",
            "streaming",
            "--series",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "out"),
            "--labels",
            str(labels),
            "--workers",
            "1",
        ]
    )

    # Then the window is found with the detector's own flags and at its best threshold
    output = capsys.readouterr().out
    assert exit_code == 0
    assert "NAB standard profile on 1 labelled file(s), 1 window(s)" in output
    assert "own flags (is_anomaly)" in output and "best threshold, own rule" in output
    summary = json.loads((tmp_path / "out" / "backtest_summary.json").read_text())
    assert summary["nab"]["own"]["detected_windows"] == 1
    assert summary["nab"]["own"]["normalised"] > 50
    assert summary["nab"]["best_rule"]["normalised"] >= summary["nab"]["own"]["normalised"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,lots\n", r"line 3: value 'lots' is not a number"),
        ("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n", r"line 3: 'yesterday' is not a timestamp"),
        ("time,amount\n2024-01-01 00:00:00,1\n", r"line 1: the header 'time,amount' lacks timestamp and value"),
        ("timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,2\n", r"line 3: timestamp .* is before"),
        ("timestamp,value\n2024-01-01 00:00:00,inf\n", r"line 2: value 'inf' is not a finite number"),
        ("timestamp,value\n", r"no data rows after the header"),
        ("", r"the file is empty"),
    ],
    ids=["not a number", "not a timestamp", "no such columns", "time goes back", "infinite", "no rows", "empty"],
)
def test_bad_input_is_reported_with_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    # Given one good file and one bad file
    data = tmp_path / "data"
    write_series(data / "good.csv")
    (data / "bad.csv").write_text(content)

    # When backtested
    exit_code = main(
        ["--detector", "streaming", "--series", str(data), "--out", str(tmp_path / "out"), "--workers", "1"]
    )

    # Then the bad file is named with the line and the problem, and the good one is still done
    errors = capsys.readouterr().err
    assert exit_code == 1
    assert f"{data / 'bad.csv'}:" in errors
    assert re.search(message, errors), errors
    assert (tmp_path / "out" / "good.csv").is_file()
    assert not (tmp_path / "out" / "bad.csv").exists()


def test_a_repeated_timestamp_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "repeats.csv"
    path.write_text("timestamp,value\n" + "".join(f"2024-01-01 00:{m:02d}:00,{m}\n" for m in (0, 5, 5, 10)))
    assert main(["--detector", "streaming", "--series", str(path), "--out", str(tmp_path / "out")]) == 0
    assert len(read_rows(tmp_path / "out" / "repeats.csv")) == 4


def test_missing_paths_and_output_inside_the_input_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--detector", "streaming", "--series", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    write_series(tmp_path / "data" / "a.csv")
    assert (
        main(["--detector", "streaming", "--series", str(tmp_path / "data"), "--out", str(tmp_path / "data" / "o")])
        == 2
    )
    assert "inside --series" in capsys.readouterr().err


def test_a_detector_whose_replay_is_not_in_the_checkout_is_named_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a registered detector whose replay module does not exist (as the pipeline's, before it lands)
    monkeypatch.setattr(
        detector_api, "DETECTORS", {**detector_api.DETECTORS, "pipeline": "backtest.no_such_replay:detect_series"}
    )
    write_series(tmp_path / "a.csv")

    # Then the check and the command say so, and nothing runs
    with pytest.raises(DetectorUnavailableError, match=r"backtest/no_such_replay.py\) is not in this checkout yet"):
        check_detector("pipeline")
    assert main(["--detector", "pipeline", "--series", str(tmp_path / "a.csv"), "--out", str(tmp_path / "out")]) == 2
    assert "not in this checkout yet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
