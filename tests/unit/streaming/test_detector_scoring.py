"""Pure detector pieces: CSV aggregation, the state document, interval arithmetic, scoring an interval."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from anomaly_detector.scoring import (
    CsvFormatError,
    DetectorState,
    aggregate_csv,
    closed_interval_start,
    intervals_to_catch_up,
    score_interval,
)
from anomaly_detector.series_model import STATE_FORMAT

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def seasonal_series(length: int, seed: int = 1, base: float = 10_000.0) -> list[float]:
    """A daily cycle (5-minute steps) with 3 % multiplicative noise."""
    rng = random.Random(seed)
    return [base * (1 + 0.6 * math.cos(2 * math.pi * i / 288)) * rng.lognormvariate(0, 0.03) for i in range(length)]


def test_aggregate_sums_the_measure_per_dimension_across_files() -> None:
    # Given two CSV parts with a header each, one bad row and one row without a dimension value
    first = "marketplace,event_time,views\nus,2025-03-01 12:00:00,10\nde,2025-03-01 12:00:00,5\n"
    second = "marketplace,event_time,views\nus,2025-03-01 12:01:00,7\nde,2025-03-01 12:01:00,oops\n,x,3\n"

    # When aggregated
    aggregate = aggregate_csv([first, second, ""], "marketplace", "views", "event_time")

    # Then the measure is summed per value and bad rows are counted, not summed
    assert aggregate.totals == {"us": 17.0, "de": 5.0}
    assert aggregate.rows == 3
    assert aggregate.skipped_rows == 2


def test_aggregate_rejects_a_file_without_the_configured_columns() -> None:
    with pytest.raises(CsvFormatError, match="views"):
        aggregate_csv(["marketplace,event_time,clicks\nus,x,1\n"], "marketplace", "views", "event_time")


@pytest.mark.parametrize(
    ("now", "frequency", "expected"),
    [
        (datetime(2025, 3, 1, 19, 22, 5, tzinfo=UTC), 5, datetime(2025, 3, 1, 19, 15, tzinfo=UTC)),
        (datetime(2025, 3, 1, 19, 20, 0, tzinfo=UTC), 5, datetime(2025, 3, 1, 19, 15, tzinfo=UTC)),
        (datetime(2025, 3, 1, 19, 22, tzinfo=UTC), 10, datetime(2025, 3, 1, 19, 10, tzinfo=UTC)),
        (datetime(2025, 3, 2, 0, 3, tzinfo=UTC), 5, datetime(2025, 3, 1, 23, 55, tzinfo=UTC)),
    ],
)
def test_closed_interval_is_the_one_that_ended_at_or_before_now(
    now: datetime, frequency: int, expected: datetime
) -> None:
    assert closed_interval_start(now, frequency) == expected


def test_state_round_trips_and_rejects_what_it_cannot_use() -> None:
    # Given a state that has scored a few intervals of two values
    state = DetectorState(frequency_minutes=5)
    for i in range(20):
        score_interval(state, T0 + timedelta(minutes=5 * i), {"us": 100.0 + i, "de": 50.0}, 48.0, 288)

    # When it is written and read back
    text = state.to_json()
    again = DetectorState.from_json(text, 5)

    # Then it is the same state; another frequency, a damaged or an absent document give an empty state
    assert again.to_json() == text
    assert again.last_interval_start == T0 + timedelta(minutes=95)
    assert set(again.series) == {"us", "de"}
    assert DetectorState.from_json(text, 10) == DetectorState(10)
    assert DetectorState.from_json("{not json", 5) == DetectorState(5)
    assert DetectorState.from_json(text.replace(f'"f":{STATE_FORMAT}', '"f":99', 1), 5) == DetectorState(5)
    assert DetectorState.from_json(None, 5) == DetectorState(5)


def test_a_value_missing_from_an_interval_is_scored_as_zero_then_forgotten_after_a_history() -> None:
    # Given a state that knows "us" and "de"
    state = DetectorState(frequency_minutes=5)
    score_interval(state, T0, {"us": 1.0, "de": 2.0}, 48.0, history_length=3)

    # When "de" is missing from the next three intervals
    verdicts = [
        score_interval(state, T0 + timedelta(minutes=5 * i), {"us": 1.0 + i}, 48.0, history_length=3)
        for i in range(1, 4)
    ]

    # Then it was scored as 0 twice, and forgotten on the third
    assert [[(v.dimension_value, v.value) for v in verdict] for verdict in verdicts] == [
        [("de", 0.0), ("us", 2.0)],
        [("de", 0.0), ("us", 3.0)],
        [("us", 4.0)],
    ]
    assert set(state.series) == {"us"}
    assert state.absent == {}


def test_an_empty_interval_learns_nothing_but_moves_the_clock() -> None:
    state = DetectorState(frequency_minutes=5)
    score_interval(state, T0, {"us": 1.0}, 48.0, 288)
    before = state.series["us"].to_dict()
    assert score_interval(state, T0 + timedelta(minutes=5), {}, 48.0, 288) == []
    assert state.series["us"].to_dict() == before
    assert state.last_interval_start == T0 + timedelta(minutes=5)


@pytest.mark.parametrize("version", [1, 2])
def test_a_state_of_an_older_version_or_another_metric_set_starts_fresh(version: int) -> None:
    # Given the previous detectors' states (keyed by one dimension's values, without saying which)
    document = {"version": version, "frequency_minutes": 5, "last_interval_start": "2025-03-01T12:25:00Z"}
    document["series"] = {"us": [1.0, 2.0]} if version == 1 else {}

    # Then they are not reused: the detector rebuilds the state from the stored interval files
    assert DetectorState.from_json(json.dumps(document), 5) == DetectorState(5)
    # And neither is a current state written for another metric set
    current = DetectorState(5, T0, metric_set="marketplace|views:sum").to_json()
    assert DetectorState.from_json(current, 5, metric_set="marketplace|views:sum").last_interval_start == T0
    fresh = DetectorState.from_json(current, 5, metric_set="platform,marketplace|views:sum")
    assert fresh == DetectorState(5, metric_set="platform,marketplace|views:sum")


def test_catch_up_lists_the_gap_or_the_whole_history_when_there_is_no_state() -> None:
    now = T0 + timedelta(hours=1)
    state = DetectorState(5, now - timedelta(minutes=20))
    gap = intervals_to_catch_up(state, now, 5, max_intervals=288)
    assert gap == [now - timedelta(minutes=15), now - timedelta(minutes=10), now - timedelta(minutes=5)]
    assert len(intervals_to_catch_up(DetectorState(5), now, 5, max_intervals=12)) == 12
    assert intervals_to_catch_up(DetectorState(5, now - timedelta(minutes=5)), now, 5, max_intervals=288) == []


def test_a_new_value_is_warming_up_and_not_judged() -> None:
    state = DetectorState(frequency_minutes=5)
    for i in range(7):
        score_interval(state, T0 + timedelta(minutes=5 * i), {"mx": 100.0}, 48.0, 288)
    [verdict] = score_interval(state, T0 + timedelta(minutes=35), {"mx": 1_000_000.0}, 48.0, 288)
    assert verdict.status == "warming_up"
    assert verdict.severity == 0.0
    assert not verdict.is_anomaly
    assert verdict.history_points == 7
