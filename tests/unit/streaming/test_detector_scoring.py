"""Pure detector pieces: CSV aggregation, history bookkeeping, interval arithmetic, RCF scoring."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from anomaly_detector.scoring import (
    CsvFormatError,
    History,
    aggregate_csv,
    closed_interval_start,
    intervals_to_catch_up,
    score_value,
)

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


def test_history_appends_zero_for_recently_seen_values_and_is_bounded() -> None:
    # Given a history of length 3
    history = History(frequency_minutes=5)

    # When four intervals arrive, "de" missing from the last three
    history.append_interval(T0, {"us": 1, "de": 2}, history_length=3)
    for i in range(1, 4):
        history.append_interval(T0 + timedelta(minutes=5 * i), {"us": 1 + i}, history_length=3)

    # Then "us" keeps only its last three values and "de" was forgotten once it was all zeros
    assert history.series == {"us": [2.0, 3.0, 4.0]}
    assert history.last_interval_start == T0 + timedelta(minutes=15)


def test_an_empty_interval_appends_nothing_but_moves_the_clock() -> None:
    history = History(5, T0, {"us": [1.0, 2.0]})
    history.append_interval(T0 + timedelta(minutes=5), {}, history_length=10)
    assert history.series == {"us": [1.0, 2.0]}
    assert history.last_interval_start == T0 + timedelta(minutes=5)


def test_history_round_trips_and_unusable_state_is_empty() -> None:
    history = History(5, T0, {"us": [1.0, 2.5]})
    assert History.from_json(history.to_json(288), 5) == history
    assert History.from_json(history.to_json(288), 10) == History(10)  # another frequency: not comparable
    assert History.from_json("{not json", 5) == History(5)
    assert History.from_json(None, 5) == History(5)


def test_flags_stay_aligned_with_the_series_and_round_trip() -> None:
    # Given a history of length 4 where "de" was flagged in the second of five intervals
    history = History(frequency_minutes=5)
    for i, flagged in enumerate([set(), {"de"}, set(), set(), set()]):
        history.append_interval(T0 + timedelta(minutes=5 * i), {"us": 1.0 + i, "de": 2.0 + i}, 4, anomalous=flagged)

    # Then the flag sits at its interval's position in the trimmed series, and only values with flags have an entry
    assert history.series["de"] == [3.0, 4.0, 5.0, 6.0]
    assert history.anomalous == {"de": [True, False, False, False]}
    # And the state stores the flagged positions and reads them back
    assert json.loads(history.to_json(4))["anomalous"] == {"de": [0]}
    assert History.from_json(history.to_json(4), 5) == history

    # When one more interval pushes the flagged one out of the history
    history.append_interval(T0 + timedelta(minutes=25), {"us": 7.0, "de": 8.0}, 4)

    # Then no flags are left
    assert history.anomalous == {}


def test_rerunning_an_interval_drops_its_flag_too() -> None:
    history = History(5, T0 + timedelta(minutes=10), {"de": [1.0, 2.0, 9.0]}, {"de": [False, False, True]})
    history.drop_intervals_from(T0 + timedelta(minutes=10))
    assert history.series == {"de": [1.0, 2.0]}
    assert history.anomalous == {}


def test_catch_up_lists_the_gap_or_the_whole_history_when_there_is_no_state() -> None:
    now = T0 + timedelta(hours=1)
    gap = intervals_to_catch_up(History(5, now - timedelta(minutes=20)), now, 5, max_intervals=288)
    assert gap == [now - timedelta(minutes=15), now - timedelta(minutes=10), now - timedelta(minutes=5)]
    assert len(intervals_to_catch_up(History(5), now, 5, max_intervals=12)) == 12
    assert intervals_to_catch_up(History(5, now - timedelta(minutes=5)), now, 5, max_intervals=288) == []


def test_rerunning_an_interval_drops_it_from_the_history_first() -> None:
    history = History(5, T0 + timedelta(minutes=10), {"us": [1.0, 2.0, 3.0], "new": [9.0]})
    history.drop_intervals_from(T0 + timedelta(minutes=10))
    assert history.series == {"us": [1.0, 2.0]}
    assert history.last_interval_start == T0 + timedelta(minutes=5)


def test_short_history_is_warming_up_and_not_scored() -> None:
    result = score_value("mx", [100.0] * 7, 1_000_000.0, threshold=3.0)
    assert result.status == "warming_up"
    assert result.score is None
    assert not result.is_anomaly


def test_normal_value_scores_low_and_lies_in_the_expected_range() -> None:
    # Given a day of seasonal history and the next ordinary value
    series = seasonal_series(289)

    # When the last value is scored
    result = score_value("us", series[:-1], series[-1], threshold=3.0)

    # Then it is ordinary on the normalised scale and inside the expected range
    assert result.status == "scored"
    assert result.score is not None and result.score < 2.0
    assert result.expected_low is not None and result.expected_high is not None
    assert result.expected_low < series[-1] < result.expected_high
    assert not result.is_anomaly


@pytest.mark.parametrize(("factor", "direction"), [(4.0, "high"), (0.1, "low"), (0.0, "low")])
def test_spikes_drops_and_disappearance_cross_the_threshold(factor: float, direction: str) -> None:
    # Given a day of history
    series = seasonal_series(289)

    # When the next value is multiplied by the factor
    result = score_value("de", series[:-1], series[-1] * factor, threshold=3.0)

    # Then it is anomalous in the right direction and outside the expected range
    assert result.is_anomaly
    assert result.score is not None and result.score >= 3.0
    assert result.direction == direction
    assert result.expected_low is not None and result.expected_high is not None
    assert not result.expected_low <= series[-1] * factor <= result.expected_high


def test_a_past_anomaly_neither_masks_the_next_one_nor_flags_the_recovery() -> None:
    # Given a history whose last two intervals were a x4 spike
    series = seasonal_series(292)
    history = [*series[:289], series[289] * 4, series[290] * 4]

    # When a third spiked value and a recovered value are scored
    third = score_value("de", history, series[-1] * 4, threshold=3.0)
    recovered = score_value("de", history, series[-1], threshold=3.0)

    # Then the spike is still flagged and the return to normal is not
    assert third.is_anomaly
    assert not recovered.is_anomaly


def test_threshold_scales_the_decision_and_the_range_consistently() -> None:
    # Given a moderate (x1.5) change
    series = seasonal_series(289)
    value = series[-1] * 1.5

    # When scored with a lenient and a strict threshold
    lenient = score_value("uk", series[:-1], value, threshold=3.0)
    strict = score_value("uk", series[:-1], value, threshold=12.0)

    # Then the score itself does not depend on the threshold, but the decision and range do
    assert lenient.score == pytest.approx(strict.score)
    assert lenient.is_anomaly and not strict.is_anomaly
    assert strict.expected_high is not None and lenient.expected_high is not None
    assert strict.expected_high > lenient.expected_high
    assert strict.expected_high > value
