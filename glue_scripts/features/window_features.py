"""What Random Cut Forest sees of each window: its deviation from the series' own daily and weekly pattern.

Pure numpy, no Spark and no I/O. The Glue prep job calls it on the driver with the half-hour series (at
most one row per window, so a year is 17,520 rows); the backtest's pipeline replay calls it on series of
any spacing. One implementation, so the replay measures exactly what the pipeline runs.

**Expected value.** The series' spacing is the median gap between its timestamps. When the spacing
divides a day, every row has a *slot*: its time of day, and its day of week when the series spans at
least ``WEEKLY_MIN_DAYS`` days (otherwise only the time of day, when it spans ``DAILY_MIN_DAYS``; a
shorter or coarser series has no seasonal pattern). The seasonal profile is the median, per slot, of the
series minus its moving average over one season; the *level* is a rolling median, over ``LEVEL_DAYS``
days, of the series minus its profile. ``expected = level + profile[slot]``. Medians where it matters:
an anomalous day is one value among the several the profile's median is taken over, so it does not shift
what is expected of it, and a lasting level change is followed at once (a rolling median keeps steps
sharp) while a storm of a day or two is not absorbed into the level.

**Deviation.** ``(observed - expected) / scale``, where ``scale`` is the robust spread (1.4826 x the
median absolute deviation) of the residuals in the same time-of-day slot across all days, averaged over
the slots within ``SCALE_SMOOTH_HOURS`` either side, so a night hour's deviation is measured against
night-time noise. It is floored at a quarter of the series-wide
spread so that a perfectly regular slot cannot make noise look enormous.

**Features** (``FEATURE_NAMES``, one vector per row; heavy-tailed ones go through a signed ``log1p`` so
that one huge spike does not flatten every other difference):

1. ``deviation``: the row itself;
2. ``deviation_2h``: mean deviation of the rows within an hour on either side (a sustained change);
3. ``day_deviation``: mean deviation over the row's calendar day (UTC): a whole day that runs low, or a
   day whose shape is wrong (a holiday), stands out at every one of its rows and only there;
4. ``level_step``: the change in level (median) between the ``STEP_HOURS`` after the row and the ones
   before it (at least ``STEP_MIN_ROWS`` rows each), in units of the series-wide spread: large where a
   lasting shift starts;
5. ``volatility``: log of the mean absolute deviation within ``VOLATILITY_HOURS`` hours either side
   (bursts of spikes in a normally calm series);
6. ``time_of_day_sin``, ``time_of_day_cos``: where in the day the row is, scaled by
   ``TIME_OF_DAY_WEIGHT`` (zero when the series has no daily slots), so that an unusual value is judged
   against rows at the same time of day.

Every feature is a function of the row's own surroundings within a few hours or of its own day, never
of the day before: the scores peak on the windows that are anomalous themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

DAY_SECONDS = 86_400.0
WEEKLY_MIN_DAYS = 21.0  # three of each weekday: a median of three is robust to one odd day
DAILY_MIN_DAYS = 3.0
LEVEL_DAYS = 5.0
SHORT_HOURS = 1.0
STEP_HOURS = 2.0
STEP_MIN_ROWS = 8  # a level is a median of at least this many rows, however coarse the spacing
VOLATILITY_HOURS = 3.0
TIME_OF_DAY_WEIGHT = 0.5
SCALE_FLOOR_FRACTION = 0.25
SCALE_SMOOTH_HOURS = 1.0
_MAD_TO_STANDARD_DEVIATION = 1.4826
# Rolling medians are computed this many rows at a time, which bounds their memory on long series.
_MEDIAN_CHUNK_ROWS = 2048

FEATURE_NAMES: tuple[str, ...] = (
    "deviation",
    "deviation_2h",
    "day_deviation",
    "level_step",
    "volatility",
    "time_of_day_sin",
    "time_of_day_cos",
)
FEATURE_DIM = len(FEATURE_NAMES)

WEEKLY = "weekly"
DAILY = "daily"
NO_SEASONALITY = "none"


class FeatureInputError(ValueError):
    """The series cannot be turned into features; the message says why."""


@dataclass(frozen=True)
class SeriesFeatures:
    """Per row: what was expected, how far the row is from it, and the model's feature vector."""

    expected: np.ndarray  # float, one per row
    deviation: np.ndarray  # (observed - expected) / scale
    vectors: np.ndarray  # (rows, FEATURE_DIM)
    seasonality: str  # WEEKLY, DAILY or NO_SEASONALITY
    spacing_seconds: float


def _robust_spread(values: np.ndarray) -> float:
    if len(values) == 0:
        return 0.0
    return _MAD_TO_STANDARD_DEVIATION * float(np.median(np.abs(values - np.median(values))))


def rolling_median(values: np.ndarray, half_width: int) -> np.ndarray:
    """Centered median over ``2 * half_width + 1`` rows (fewer at the ends)."""
    rows = len(values)
    if half_width <= 0 or rows == 0:
        return values.astype(np.float64, copy=True)
    half_width = min(half_width, rows)
    padded = np.concatenate([np.full(half_width, np.nan), values.astype(np.float64), np.full(half_width, np.nan)])
    windows = sliding_window_view(padded, 2 * half_width + 1)
    result = np.empty(rows)
    for start in range(0, rows, _MEDIAN_CHUNK_ROWS):
        result[start : start + _MEDIAN_CHUNK_ROWS] = np.nanmedian(windows[start : start + _MEDIAN_CHUNK_ROWS], axis=1)
    return result


def rolling_mean(values: np.ndarray, half_width: int) -> np.ndarray:
    """Centered mean over ``2 * half_width + 1`` rows (fewer at the ends)."""
    rows = len(values)
    if half_width <= 0 or rows == 0:
        return values.astype(np.float64, copy=True)
    cumulative = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    index = np.arange(rows)
    low = np.maximum(0, index - half_width)
    high = np.minimum(rows, index + half_width + 1)
    return (cumulative[high] - cumulative[low]) / (high - low)


def _signed_log(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.log1p(np.abs(values))


def _rows_for(hours: float, spacing_seconds: float) -> int:
    return max(1, round(hours * 3600.0 / spacing_seconds))


def slots_per_day(spacing_seconds: float) -> int:
    """How many rows a day has, when the spacing divides a day into at least two slots; else 0."""
    if spacing_seconds <= 0 or spacing_seconds > DAY_SECONDS / 2:
        return 0
    per_day = DAY_SECONDS / spacing_seconds
    return round(per_day) if abs(per_day - round(per_day)) < 1e-6 else 0


def _level_step(deseasonalised: np.ndarray, rows_each_side: int, spread: float) -> np.ndarray:
    """Median of the next rows minus median of the previous rows, in units of ``spread``."""
    rows = len(deseasonalised)
    padded = np.concatenate([np.full(rows_each_side, np.nan), deseasonalised, np.full(rows_each_side, np.nan)])
    windows = sliding_window_view(padded, rows_each_side)
    before = np.empty(rows)
    after = np.empty(rows)
    for start in range(0, rows, _MEDIAN_CHUNK_ROWS):
        stop = min(rows, start + _MEDIAN_CHUNK_ROWS)
        with np.errstate(all="ignore"):
            before[start:stop] = _nanmedian_or_nan(windows[start:stop])
            after[start:stop] = _nanmedian_or_nan(windows[start + rows_each_side : stop + rows_each_side])
    step = (after - before) / spread
    return np.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)


def _nanmedian_or_nan(windows: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN; rows that are all NaN (the series' ends) give NaN without a warning."""
    result = np.full(len(windows), np.nan)
    has_values = ~np.all(np.isnan(windows), axis=1)
    if np.any(has_values):
        result[has_values] = np.nanmedian(windows[has_values], axis=1)
    return result


def series_features(
    epoch_seconds: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
) -> SeriesFeatures:
    """Expected values, deviations and feature vectors for one series, rows in time order.

    A repeated timestamp (real exports repeat the hour a clock is set back) is another row at that time.
    """
    times = np.asarray(epoch_seconds, dtype=np.float64)
    observed = np.asarray(values, dtype=np.float64)
    rows = len(observed)
    if len(times) != rows:
        raise FeatureInputError(f"{len(times)} timestamps for {rows} values")
    if rows == 0:
        raise FeatureInputError("the series is empty")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(observed))):
        raise FeatureInputError("timestamps and values must be finite numbers")
    if np.any(np.diff(times) < 0):
        raise FeatureInputError("timestamps must be in time order")

    gaps = np.diff(times)
    gaps = gaps[gaps > 0]
    spacing = float(np.median(gaps)) if len(gaps) else DAY_SECONDS
    duration_days = (float(times[-1] - times[0]) + spacing) / DAY_SECONDS
    per_day = slots_per_day(spacing)
    slot_of_day = ((times % DAY_SECONDS) // spacing).astype(np.int64) if per_day else np.zeros(rows, np.int64)
    day_number = np.floor(times / DAY_SECONDS).astype(np.int64)
    weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0

    if per_day and duration_days >= WEEKLY_MIN_DAYS:
        seasonality, slot, season_rows = WEEKLY, weekday * per_day + slot_of_day, 7 * per_day
    elif per_day and duration_days >= DAILY_MIN_DAYS:
        seasonality, slot, season_rows = DAILY, slot_of_day, per_day
    else:
        seasonality, slot, season_rows = NO_SEASONALITY, np.zeros(rows, np.int64), 0

    if season_rows:
        # A moving average over one full season averages the pattern out (a median over exactly one period of a
        # two-level pattern flips between the levels); the per-slot medians below make the profile robust.
        detrended = observed - rolling_mean(observed, season_rows // 2)
        profile = np.zeros(int(slot.max()) + 1)
        for key in np.unique(slot):
            profile[key] = np.median(detrended[slot == key])
        seasonal = profile[slot]
    else:
        seasonal = np.zeros(rows)
    deseasonalised = observed - seasonal
    level = rolling_median(deseasonalised, _rows_for(LEVEL_DAYS * 24 / 2, spacing))
    expected = level + seasonal
    residual = observed - expected

    spread = _robust_spread(residual)
    if not spread > 0:
        spread = float(np.std(residual))
    if not spread > 0:
        # A series without any variation: nothing deviates, whatever the unit.
        spread = max(1e-9, 1e-3 * float(np.median(np.abs(observed))))
    if per_day and season_rows:
        slot_spread = np.array(
            [
                _robust_spread(residual[slot_of_day == key]) if np.count_nonzero(slot_of_day == key) >= 3 else spread
                for key in range(per_day)
            ],
            dtype=np.float64,
        )
        # Smoothed around the clock (an hour either side), so one slot's few samples do not set its scale alone.
        reach = min(per_day, round(SCALE_SMOOTH_HOURS * 3600.0 / spacing))
        if reach > 0:
            wrapped = np.concatenate([slot_spread[-reach:], slot_spread, slot_spread[:reach]])
            slot_spread = np.convolve(wrapped, np.ones(2 * reach + 1) / (2 * reach + 1), mode="valid")
        scale = np.maximum(slot_spread[slot_of_day], SCALE_FLOOR_FRACTION * spread)
    else:
        scale = np.full(rows, spread)
    deviation = residual / scale

    _, day_index = np.unique(day_number, return_inverse=True)
    day_mean = (np.bincount(day_index, weights=deviation) / np.bincount(day_index))[day_index]
    columns = [
        _signed_log(deviation),
        _signed_log(rolling_mean(deviation, _rows_for(SHORT_HOURS, spacing))),
        _signed_log(day_mean),
        _signed_log(_level_step(deseasonalised, max(STEP_MIN_ROWS, _rows_for(STEP_HOURS, spacing)), spread)),
        np.log1p(rolling_mean(np.abs(deviation), _rows_for(VOLATILITY_HOURS, spacing))),
    ]
    if per_day:
        angle = 2 * np.pi * (times % DAY_SECONDS) / DAY_SECONDS
        columns += [TIME_OF_DAY_WEIGHT * np.sin(angle), TIME_OF_DAY_WEIGHT * np.cos(angle)]
    else:
        columns += [np.zeros(rows), np.zeros(rows)]
    vectors = np.column_stack(columns)
    return SeriesFeatures(
        expected=expected, deviation=deviation, vectors=vectors, seasonality=seasonality, spacing_seconds=spacing
    )
