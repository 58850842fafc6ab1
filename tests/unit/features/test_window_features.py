"""The prep job's features, on small series worked out by hand (pure numpy: no Spark needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from glue_scripts.features.window_features import (
    DAILY,
    FEATURE_DIM,
    FEATURE_NAMES,
    NO_SEASONALITY,
    WEEKLY,
    FeatureInputError,
    rolling_median,
    series_features,
    slots_per_day,
)

MONDAY = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
HALF_HOUR = 1800.0
DEVIATION = FEATURE_NAMES.index("deviation")
DAY_DEVIATION = FEATURE_NAMES.index("day_deviation")


def daily_rhythm(days: int, spacing: float = HALF_HOUR, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A day-shaped series (busy 8:00-20:00) with a little noise, starting on a Monday."""
    rows = int(days * 86_400 / spacing)
    times = MONDAY + spacing * np.arange(rows)
    hours = (times % 86_400) / 3600
    values = 100 + 200 * ((hours >= 8) & (hours < 20)) + np.random.default_rng(seed).normal(0, 5, rows)
    return times, values


def test_the_features_are_the_documented_ones() -> None:
    assert FEATURE_DIM == len(FEATURE_NAMES) == 7
    assert FEATURE_NAMES[:3] == ("deviation", "deviation_2h", "day_deviation")


@pytest.mark.parametrize(
    ("days", "spacing", "seasonality"),
    [(28, HALF_HOUR, WEEKLY), (14, HALF_HOUR, DAILY), (14, 300.0, DAILY), (2, HALF_HOUR, NO_SEASONALITY)],
)
def test_the_pattern_follows_the_series_own_span_and_spacing(days: int, spacing: float, seasonality: str) -> None:
    times, values = daily_rhythm(days, spacing)

    features = series_features(times, values)

    assert features.seasonality == seasonality
    assert features.spacing_seconds == spacing
    assert features.vectors.shape == (len(values), FEATURE_DIM)
    assert np.all(np.isfinite(features.vectors))


def test_a_spacing_that_does_not_divide_a_day_has_no_slots() -> None:
    assert slots_per_day(HALF_HOUR) == 48
    assert slots_per_day(300.0) == 288
    assert slots_per_day(7 * 60.0) == 0  # 205.7 slots a day
    assert slots_per_day(86_400.0) == 0


def test_expected_follows_the_daily_rhythm_and_an_odd_afternoon_deviates() -> None:
    # Given two weeks of a daily rhythm with one afternoon at a fifth of its usual level
    times, values = daily_rhythm(14)
    odd = slice(9 * 48 + 28, 9 * 48 + 36)  # Wednesday of week 2, 14:00-18:00
    values[odd] = values[odd] / 5

    # When the features are computed
    features = series_features(times, values)

    # Then what was expected of that afternoon is the usual daytime level, not the odd day's
    assert np.all(np.abs(features.expected[odd] - 300) < 15)
    # And its deviation is large and negative, while ordinary rows stay within a few spreads
    assert np.all(features.deviation[odd] < -10)
    ordinary = np.ones(len(values), dtype=bool)
    ordinary[odd] = False
    assert np.percentile(np.abs(features.deviation[ordinary]), 99) < 4
    # And the day's deviation marks that calendar day, and only it
    day_deviation = features.vectors[:, DAY_DEVIATION]
    other_days = np.ones(len(values), dtype=bool)
    other_days[9 * 48 : 10 * 48] = False
    assert np.all(day_deviation[9 * 48 : 10 * 48] == day_deviation[odd.start])
    assert day_deviation[odd.start] < 5 * day_deviation[other_days].min() < 0


def test_a_weekday_with_the_weekend_shape_deviates_at_its_rush_hours() -> None:
    # Given four weeks where weekends have no daytime peak, and one Wednesday behaves like a weekend
    times, values = daily_rhythm(28)
    weekday = ((times // 86_400).astype(int) + 3) % 7
    hours = (times % 86_400) / 3600
    weekend_like = (weekday >= 5) | ((times >= MONDAY + 16 * 86_400) & (times < MONDAY + 17 * 86_400))
    values = np.where(weekend_like & (hours >= 8) & (hours < 20), values - 200, values)

    # When the features are computed on the weekly pattern
    features = series_features(times, values)

    # Then the holiday's daytime rows are far below what a Wednesday is expected to carry
    holiday_day = slice(16 * 48 + 16, 16 * 48 + 40)
    assert features.seasonality == WEEKLY
    assert np.all(features.vectors[holiday_day, DEVIATION] < -2)
    # while ordinary weekend days, which always look like that, do not deviate
    saturday = slice(5 * 48 + 16, 5 * 48 + 40)
    assert np.all(np.abs(features.deviation[saturday]) < 4)


def test_a_constant_series_deviates_nowhere() -> None:
    times = MONDAY + HALF_HOUR * np.arange(500)

    features = series_features(times, np.full(500, 42.0))

    np.testing.assert_allclose(features.expected, 42.0)
    assert not np.any(features.deviation)


def test_a_repeated_timestamp_is_another_row_but_time_cannot_go_back() -> None:
    times = np.array([MONDAY, MONDAY + HALF_HOUR, MONDAY + HALF_HOUR, MONDAY + 2 * HALF_HOUR])

    assert series_features(times, [1.0, 2.0, 3.0, 4.0]).vectors.shape == (4, FEATURE_DIM)
    with pytest.raises(FeatureInputError, match="in time order"):
        series_features(times[::-1], [1.0, 2.0, 3.0, 4.0])


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [([], [], "empty"), ([1.0, 2.0], [1.0], "2 timestamps for 1 values"), ([1.0, 2.0], [1.0, np.nan], "finite")],
)
def test_unusable_series_are_refused(times: list[float], values: list[float], message: str) -> None:
    with pytest.raises(FeatureInputError, match=message):
        series_features(times, values)


def test_the_rolling_median_keeps_a_step_sharp_and_ignores_a_short_pulse() -> None:
    step = np.array([0.0] * 10 + [5.0] * 10)
    np.testing.assert_array_equal(rolling_median(step, 3), step)
    pulse = np.zeros(21)
    pulse[10:12] = 9.0
    np.testing.assert_array_equal(rolling_median(pulse, 3), np.zeros(21))
