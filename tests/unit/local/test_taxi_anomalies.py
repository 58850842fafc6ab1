"""The local taxi data's injected anomalies, and the pipeline model finding each of them and nothing else.

The model path here is the pipeline's, minus Spark and S3: window_features (the prep job's features),
Random Cut Forest as the local mode emulates it, and pipeline_evaluation's cut-off and events, on the
half-hour sums of a generated month (local_mode.taxi_data.passengers_per_window).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from backtest.pipeline_replay import pipeline_hyperparameters
from glue_scripts.features.window_features import series_features
from local_mode.rcf_model import train_forest
from local_mode.taxi_data import (
    _WEEKDAY_HOURLY,
    _WEEKEND_HOURLY,
    ANOMALY_KINDS,
    DEFAULT_MONTH_START,
    HOLIDAY,
    KnownAnomaly,
    default_anomalies,
    expected_trips_per_window,
    passengers_per_window,
)
from pipeline_evaluation import WindowsEvaluation, evaluate_windows

MONTH_TRIPS = 300_000  # what `make local` generates


def evaluate_month(anomalies: tuple[KnownAnomaly, ...], seed: int = 7) -> WindowsEvaluation:
    counts = passengers_per_window(seed=seed, total_trips=MONTH_TRIPS, anomalies=anomalies)
    features = series_features([start.timestamp() for start in counts.window_starts], counts.passengers)
    forest = train_forest(features.vectors, pipeline_hyperparameters())
    scores = [forest.score(point) for point in features.vectors]
    return evaluate_windows(counts.window_starts, counts.passengers.tolist(), features.expected.tolist(), scores)


def test_the_four_kinds_fall_on_different_weekdays_of_the_month() -> None:
    anomalies = default_anomalies()

    assert [anomaly.kind for anomaly in anomalies] == ["spike", "holiday", "storm", "disruption"]
    assert {anomaly.kind for anomaly in anomalies} == set(ANOMALY_KINDS)
    assert all(anomaly.start.weekday() < 5 for anomaly in anomalies)
    assert len({anomaly.start.isocalendar().week for anomaly in anomalies}) == 4
    durations = {anomaly.kind: anomaly.end - anomaly.start for anomaly in anomalies}
    assert durations == {
        "spike": timedelta(hours=1),
        "holiday": timedelta(days=1),
        "storm": timedelta(days=1),
        "disruption": timedelta(hours=5),
    }


def test_a_holiday_runs_on_the_weekend_shape_and_the_others_scale_trips() -> None:
    # Given the expected trips of the month with and without the anomalies
    anomalies = default_anomalies()
    ordinary = expected_trips_per_window(DEFAULT_MONTH_START, 31, MONTH_TRIPS, ())
    injected = expected_trips_per_window(DEFAULT_MONTH_START, 31, MONTH_TRIPS, anomalies)
    counts = passengers_per_window(anomalies=anomalies)

    # Then the holiday (a Wednesday) follows the weekend's hourly shape, not the weekday's
    holiday = next(anomaly for anomaly in anomalies if anomaly.kind == HOLIDAY)
    holiday_windows = counts.window_range(holiday)
    hours = np.arange(48) // 2
    ratio_to_weekend = injected[holiday_windows] / _WEEKEND_HOURLY[hours]
    np.testing.assert_allclose(ratio_to_weekend, ratio_to_weekend.mean(), rtol=0.02)
    ratio_to_weekday = injected[holiday_windows] / _WEEKDAY_HOURLY[hours]
    assert ratio_to_weekday.max() / ratio_to_weekday.min() > 3
    # And the storm, the disruption and the spike scale the windows they cover, and nothing else
    for anomaly in anomalies:
        if anomaly.kind != HOLIDAY:
            covered = counts.window_range(anomaly)
            np.testing.assert_allclose(injected[covered] / ordinary[covered], anomaly.factor)
    untouched = np.ones(len(ordinary), dtype=bool)
    for anomaly in anomalies:
        untouched[counts.window_range(anomaly)] = False
    np.testing.assert_allclose(injected[untouched], ordinary[untouched])


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_alone_is_found_and_nothing_else(kind: str) -> None:
    # Given a month with only this kind injected
    (anomaly,) = [candidate for candidate in default_anomalies() if candidate.kind == kind]

    # When the pipeline model scores it
    evaluation = evaluate_month((anomaly,))

    # Then there is an event and every event overlaps the anomaly (found, no false event)
    assert len(evaluation.events) >= 1
    assert all(event.overlaps(anomaly.start, anomaly.end) for event in evaluation.events), evaluation.events


def test_all_four_kinds_are_found_with_no_false_event_and_each_event_lies_on_its_anomaly() -> None:
    anomalies = default_anomalies()

    evaluation = evaluate_month(anomalies)

    for anomaly in anomalies:
        hits = [event for event in evaluation.events if event.overlaps(anomaly.start, anomaly.end)]
        assert hits, f"{anomaly.describe()} was missed"
        # Attributed to the anomaly's own windows: the peak lies in it, not the day after
        assert any(anomaly.contains(event.peak_window) for event in hits), hits
    assert all(any(event.overlaps(a.start, a.end) for a in anomalies) for event in evaluation.events)


@pytest.mark.parametrize("seed", [2, 7])
def test_a_month_without_anomalies_has_no_event(seed: int) -> None:
    evaluation = evaluate_month((), seed=seed)

    assert evaluation.events == ()
    assert not any(evaluation.is_anomaly)
