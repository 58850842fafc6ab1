"""NAB's standard-profile scoring on small files whose scores were worked out by hand.

Every case uses a 20-row file (probationary period floor(0.15 * 20) = 3 rows) with one labelled
window at rows 10..14 (W = 5) unless it says otherwise. sigma(y) = 2 / (1 + e^(5y)) - 1, so
sigma(-1) = 0.986614, sigma(-0.2) / sigma(-1) = 0.468387, sigma(-0.6) / sigma(-1) = 0.917429,
0.11 * |sigma(0.5)| = 0.093311 and 0.11 * |sigma(1.25)| = 0.109576.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from backtest.nab_scoring import (
    LabelledScores,
    best_threshold,
    load_labels,
    probationary_rows,
    score_corpus,
    score_file,
    score_flags,
    window_rows,
)

WINDOW = ((10, 14),)


def _file(detections: list[int], rows: int = 20, windows: tuple[tuple[int, int], ...] = WINDOW) -> LabelledScores:
    scores = np.zeros(rows)
    scores[detections] = 1.0
    return LabelledScores("f.csv", scores, windows)


def test_probationary_period_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probationary_rows(20) == 3
    assert probationary_rows(4032) == 604
    assert probationary_rows(10_000) == 750


@pytest.mark.parametrize(
    ("detections", "expected_raw"),
    [
        ([], -1.0),  # a missed window costs A_FN
        ([10], 1.0),  # the left edge is worth exactly A_TP
        ([14], 0.468387),  # the right edge: y = -1/5
        ([12, 13], 0.917429),  # only the earliest detection counts: y = -3/5; the later one costs nothing
        ([5, 10], 1.0 - 0.11),  # a detection before any window costs the full A_FP
        ([10, 16], 1.0 - 0.093311),  # just after the window: y = (16 - 14) / (5 - 1) = 0.5
        ([10, 19], 1.0 - 0.109576),  # y = 1.25
        ([1, 2], -1.0),  # probationary rows are never scored
    ],
)
def test_given_detections_then_the_file_scores_as_worked_out_by_hand(
    detections: list[int], expected_raw: float
) -> None:
    assert score_file(_file(detections), 0.5).raw == pytest.approx(expected_raw, abs=1e-6)


def test_a_detection_more_than_three_window_widths_after_a_window_costs_the_full_a_fp() -> None:
    # Window 3..4 (W = 2): row 7 is y = (7 - 4) / 1 = 3 (sigma(3) = -0.999999), row 8 is y = 4 > 3 (cost 0.11).
    near = score_file(_file([3, 7], windows=((3, 4),)), 0.5).raw
    far = score_file(_file([3, 8], windows=((3, 4),)), 0.5).raw
    assert near == pytest.approx(1.0 - 0.11 * (1 - 2 / (1 + np.exp(15))), abs=1e-9)
    assert far == pytest.approx(1.0 - 0.11, abs=1e-12)


def test_normalised_score_maps_detect_nothing_to_0_and_perfect_to_100() -> None:
    assert score_corpus([_file([])], 0.5).normalised == pytest.approx(0.0)
    assert score_corpus([_file([10])], 0.5).normalised == pytest.approx(100.0)
    # Two files, two windows: raw = 1 + (-1) = 0 -> 100 * (0 + 2) / (2 + 2) = 50.
    assert score_corpus([_file([10]), _file([])], 0.5).normalised == pytest.approx(50.0)


def test_counts_windows_false_positives_and_delays() -> None:
    timestamps = tuple(datetime(2024, 1, 1) + timedelta(minutes=5 * i) for i in range(20))
    series = LabelledScores("f.csv", _file([5, 12, 16]).scores, WINDOW, timestamps)
    result = score_corpus([series], 0.5)
    assert (result.windows, result.detected_windows, result.false_positives) == (1, 1, 2)
    assert result.median_delay_rows == 2
    assert result.median_delay_seconds == 600


def test_best_threshold_picks_the_single_corpus_threshold_with_the_highest_total() -> None:
    # Scores: the window's left edge 0.6, a far false positive 0.9, the right edge 0.3.
    scores = np.zeros(20)
    scores[[10, 5, 14]] = [0.6, 0.9, 0.3]
    series = LabelledScores("f.csv", scores, WINDOW)
    # t = 0.9: only the FP -> -1 - 0.11; t = 0.6: FP + left edge -> 1 - 0.11; t = 0.3: the same (right edge ignored).
    best = best_threshold([series])
    assert best.threshold == 0.6
    assert best.raw == pytest.approx(0.89)
    assert best.raw == pytest.approx(score_corpus([series], 0.6).raw)


def test_best_threshold_agrees_with_scoring_every_candidate_on_random_files() -> None:
    random = np.random.default_rng(3)
    files = [LabelledScores(f"{i}.csv", np.round(random.random(60), 2), ((20, 29), (45, 50))) for i in range(4)]
    candidates = sorted({float(s) for series in files for s in series.scores})
    exhaustive = max(score_corpus(files, threshold).raw for threshold in candidates)
    assert best_threshold(files).raw == pytest.approx(max(exhaustive, -8.0))  # -8: detect nothing, 8 windows


def test_flags_are_scored_as_detections() -> None:
    assert score_flags([_file([10])]).raw == pytest.approx(1.0)


def test_windows_are_mapped_to_the_rows_inside_them_on_irregular_timestamps() -> None:
    timestamps = [datetime(2024, 1, 1, 0, minute) for minute in (0, 1, 5, 6, 30, 31)]
    windows = [(datetime(2024, 1, 1, 0, 2), datetime(2024, 1, 1, 0, 30)), (datetime(2024, 1, 1, 0, 40),) * 2]
    assert window_rows(timestamps, windows) == ((2, 4),)


def test_overlapping_windows_are_rejected() -> None:
    with pytest.raises(ValueError, match="overlap"):
        LabelledScores("f.csv", np.zeros(20), ((3, 8), (8, 10)))


def test_labels_file_is_read_in_nab_shape(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a/b.csv": [["2014-04-10 07:15:00.000000", "2014-04-11 16:45:00.000000"]]}))
    assert load_labels(path) == {"a/b.csv": [(datetime(2014, 4, 10, 7, 15), datetime(2014, 4, 11, 16, 45))]}
    path.write_text(json.dumps({"a/b.csv": [["not a time", "x"]]}))
    with pytest.raises(ValueError, match=r"a/b\.csv"):
        load_labels(path)
