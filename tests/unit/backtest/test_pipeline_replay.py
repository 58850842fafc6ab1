"""The pipeline replay: the prep job's features, the pipeline's forest and cut-off, on a series of any spacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from backtest.detector_api import load_detector
from backtest.pipeline_replay import detect_series

START = datetime(2014, 4, 1, tzinfo=UTC)


def rhythm(rows: int, step: timedelta, seed: int = 5) -> tuple[list[datetime], np.ndarray]:
    """A daily rhythm with noise, like the benchmark's CPU and request-count series."""
    timestamps = [START + index * step for index in range(rows)]
    hours = np.array([moment.hour + moment.minute / 60 for moment in timestamps])
    values = 40 + 25 * np.sin(2 * np.pi * hours / 24) + np.random.default_rng(seed).normal(0, 2, rows)
    return timestamps, values


def test_the_backtest_finds_the_pipeline_replay_by_its_name() -> None:
    assert load_detector("pipeline") is detect_series


def test_an_hourly_series_gets_its_drop_flagged_and_scored_on_the_shared_scale() -> None:
    # Given six weeks of hourly values with six hours at a fifth of the usual level
    timestamps, values = rhythm(42 * 24, timedelta(hours=1))
    drop = slice(30 * 24 + 9, 30 * 24 + 15)
    values[drop] = values[drop] / 5

    # When the pipeline replay scores the series
    detection = detect_series(timestamps, values.tolist())

    # Then the drop is one decision, on a flagged row near it, and nothing far from it is flagged
    decided = np.flatnonzero(detection.is_anomaly)
    assert len(decided) == 1
    flagged = np.flatnonzero(detection.extra_columns["is_flagged"])
    assert set(flagged) & set(range(drop.start, drop.stop))
    assert decided[0] in flagged
    assert all(abs(index - drop.start) < 24 for index in flagged)
    # And scores are on the 0..1 scale where 0.5 is the cut-off: the decision is at 0.5 or above, and the
    # sweep's score is the relative score where it is the day's new high
    scores = np.array(detection.scores)
    relative = np.array(detection.extra_columns["relative_score"], dtype=float)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[decided[0]] >= 0.5
    assert np.all((scores == 0) | np.isclose(scores, relative, atol=1e-6))
    assert np.array_equal(relative >= 0.5, np.array(detection.extra_columns["is_flagged"], dtype=bool))
    # And the extra columns say what was expected, the raw forest score and the event of each flagged row
    assert set(detection.extra_columns) == {"expected", "rcf_score", "relative_score", "is_flagged", "event_id"}
    expected = np.array(detection.extra_columns["expected"], dtype=float)
    assert np.all(values[drop] < expected[drop] / 2)
    assert all(detection.extra_columns["event_id"][index] != "" for index in flagged)


def test_a_five_minute_series_with_a_spike_is_scored_at_its_own_spacing() -> None:
    # Given ten days of five-minute values with one fifteen-minute spike
    timestamps, values = rhythm(10 * 288, timedelta(minutes=5))
    values[7 * 288 + 100 : 7 * 288 + 103] += 200

    # When scored
    detection = detect_series(timestamps, values.tolist())

    # Then the spike is where the flags are
    flagged = np.flatnonzero(detection.is_anomaly)
    assert len(flagged) > 0 and all(abs(index - (7 * 288 + 101)) <= 36 for index in flagged)


def test_a_series_without_anomaly_gets_no_flag() -> None:
    timestamps, values = rhythm(42 * 24, timedelta(hours=1), seed=11)

    detection = detect_series(timestamps, values.tolist())

    assert not any(detection.is_anomaly)


def test_repeated_timestamps_and_an_empty_series_are_handled() -> None:
    timestamps, values = rhythm(10 * 24, timedelta(hours=1))
    timestamps[50] = timestamps[49]  # an export that repeats the hour a clock was set back

    assert len(detect_series(timestamps, values.tolist()).scores) == len(values)
    assert detect_series([], []).scores == ()
    with pytest.raises(ValueError, match="3 timestamps for 2 values"):
        detect_series(timestamps[:3], [1.0, 2.0])
