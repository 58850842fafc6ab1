"""Pure detection logic: CSV aggregation, per-dimension history, and Random Cut Forest scoring.

Scoring one (dimension value, interval)
---------------------------------------
1. Values are moved to log space (``log1p``) so a x4 spike and a x0.25 drop are equally far from
   normal whatever the dimension's volume.
2. Each point's *deviation* is its log value minus the median of the ``level_window`` points before
   it. The rolling median follows the daily cycle, so deviations are close to stationary, and one
   anomalous interval does not make the next (normal) interval look anomalous.
3. A one-dimensional krcf forest is warmed up, on every run (Lambda keeps no state), with the last
   ``warmup_points`` history deviations that lie inside the expected band, so that earlier
   anomalies do not mask new ones. The raw RCF score of the current deviation is divided by the mean raw
   score of the most recent history points (scored just before the forest learnt them): that
   *RCF ratio* is ~1 for ordinary points, whatever krcf's absolute scale.
4. The robust z-score ``|deviation - median| / sigma`` (sigma = 1.4826*MAD of the history deviations, with
   a floor so that very smooth series need a material change) measures the size of the change.
5. **Normalised score = min(RCF ratio, |z|)**; an interval is anomalous when it is at least the
   threshold. Both have "about 1 is normal" scales, so one threshold means the same thing for both:
   the forest finds the point unusual *and* the change is well outside the usual noise.
   The expected range is exactly the band where ``|z| < threshold``, so a flagged value is always
   outside the reported range.

With the default forest size the RCF ratio of even the most extreme point tops out around 5
(see ``RCF_RATIO_CEILING``): thresholds of 2.5-4 are useful, higher ones silence the detector.
Ordinary intervals score below ~2.

State choice: the history is a JSON document (per value, the last ``history_length`` totals);
forests are rebuilt from it on every run because a warm-up of ``warmup_points`` points is cheaper
than (de)serialising a forest per value. If the document is lost, the history is rebuilt by
re-reading the stored interval files (see ``intervals_to_catch_up``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from krcf import RandomCutForest

STATE_VERSION = 1
# Roughly the largest RCF ratio the default forest gives; a threshold above it flags nothing.
RCF_RATIO_CEILING = 4.5


@dataclass(frozen=True)
class ScoringParams:
    """Model knobs that are not deployment settings; defaults are tuned for 5/10-minute intervals."""

    min_history: int = 8  # fewer past points than this → "warming up", not scored
    level_window: int = 12  # points in the rolling median that defines the expected level
    warmup_points: int = 48  # history deviations the forest learns on each run (cost is linear)
    baseline_points: int = 16  # recent points whose mean raw score defines "ordinary"
    num_trees: int = 20
    sample_size: int = 64
    sigma_floor: float = 0.05  # in log space: ~5 % relative noise at least
    random_seed: int = 42

    def __post_init__(self) -> None:
        if self.min_history < 4:
            raise ValueError("min_history must be >= 4")
        if self.level_window < 2 or self.warmup_points < 4 or self.baseline_points < 1:
            raise ValueError("level_window >= 2, warmup_points >= 4 and baseline_points >= 1 are required")
        if self.sigma_floor <= 0:
            raise ValueError("sigma_floor must be > 0")


DEFAULT_PARAMS = ScoringParams()

ScoreStatus = Literal["scored", "warming_up"]


@dataclass(frozen=True)
class DimensionScore:
    dimension_value: str
    value: float
    status: ScoreStatus
    history_points: int
    score: float | None = None  # normalised: min(RCF ratio, |z|); None while warming up
    rcf_ratio: float | None = None
    z_score: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    is_anomaly: bool = False

    @property
    def direction(self) -> Literal["high", "low"] | None:
        if self.z_score is None:
            return None
        return "high" if self.z_score > 0 else "low"


# --- Aggregation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalAggregate:
    totals: dict[str, float]
    rows: int
    skipped_rows: int  # rows without a dimension value or with a measure that is not a number


class CsvFormatError(ValueError):
    """A CSV file does not have the configured columns."""


def aggregate_csv(
    csv_texts: Iterable[str], dimension_column: str, measure_column: str, timestamp_column: str | None = None
) -> IntervalAggregate:
    """Sum the measure per dimension value over every CSV (each with its own header row)."""
    totals: dict[str, float] = {}
    rows = skipped = 0
    required = [c for c in (dimension_column, measure_column, timestamp_column) if c]
    for text in csv_texts:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            continue  # empty file: Glue writes these for windows without data
        missing = [c for c in required if c not in reader.fieldnames]
        if missing:
            raise CsvFormatError(f"CSV header {reader.fieldnames} lacks column(s) {missing}")
        for row in reader:
            dimension_value = (row.get(dimension_column) or "").strip()
            try:
                measure = float(row.get(measure_column) or "")
            except ValueError:
                measure = math.nan
            if not dimension_value or not math.isfinite(measure):
                skipped += 1
                continue
            rows += 1
            totals[dimension_value] = totals.get(dimension_value, 0.0) + measure
    return IntervalAggregate(totals=totals, rows=rows, skipped_rows=skipped)


# --- History ---------------------------------------------------------------------------------


@dataclass
class History:
    """Recent per-interval totals per dimension value, right-aligned on ``last_interval_start``.

    ``series[v][-1]`` is the total of ``v`` for ``last_interval_start``, ``series[v][-2]`` the
    interval before, and so on; series of values first seen recently are simply shorter.
    Intervals without any data (pipeline outage) are not observations and append nothing.
    """

    frequency_minutes: int
    last_interval_start: datetime | None = None
    series: dict[str, list[float]] = field(default_factory=dict)

    def append_interval(self, interval_start: datetime, totals: Mapping[str, float], history_length: int) -> None:
        """Record one interval's totals; values seen recently but absent now count as 0."""
        self.last_interval_start = interval_start
        if not totals:
            return
        for dimension_value in set(self.series) | set(totals):
            values = self.series.setdefault(dimension_value, [])
            values.append(float(totals.get(dimension_value, 0.0)))
            del values[:-history_length]
            if not any(values):
                # Not seen for a whole history: forget it, or a dead value would be tracked forever.
                del self.series[dimension_value]

    def drop_intervals_from(self, interval_start: datetime) -> None:
        """Forget ``interval_start`` and later, so re-running an interval does not score it against itself."""
        if self.last_interval_start is None or self.last_interval_start < interval_start:
            return
        step = timedelta(minutes=self.frequency_minutes)
        surplus = (self.last_interval_start - interval_start) // step + 1
        for values in self.series.values():
            del values[max(0, len(values) - surplus) :]
        self.series = {k: v for k, v in self.series.items() if v}
        self.last_interval_start = interval_start - step

    def to_json(self, history_length: int) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "frequency_minutes": self.frequency_minutes,
                "history_length": history_length,
                "last_interval_start": format_time(self.last_interval_start) if self.last_interval_start else None,
                "series": self.series,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None, frequency_minutes: int) -> History:
        """Parse the stored state; anything unusable (absent, corrupt, other frequency) gives an empty history."""
        empty = cls(frequency_minutes=frequency_minutes)
        if not text:
            return empty
        try:
            document = json.loads(text)
            if document.get("version") != STATE_VERSION or document.get("frequency_minutes") != frequency_minutes:
                return empty
            last = document.get("last_interval_start")
            series = {str(k): [float(x) for x in v] for k, v in document.get("series", {}).items()}
            return cls(frequency_minutes, parse_time(last) if last else None, series)
        except (ValueError, TypeError, AttributeError):
            return empty


def intervals_to_catch_up(
    history: History, interval_start: datetime, frequency_minutes: int, max_intervals: int
) -> list[datetime]:
    """Interval starts between the state's last interval and ``interval_start`` (exclusive), oldest first.

    A missing state gives the ``max_intervals`` intervals before ``interval_start``: that is how a
    lost or first-ever state is rebuilt from the stored interval files.
    """
    step = timedelta(minutes=frequency_minutes)
    first = interval_start - max_intervals * step
    if history.last_interval_start is not None:
        first = max(first, history.last_interval_start + step)
    missing = []
    current = first
    while current < interval_start:
        missing.append(current)
        current += step
    return missing


# --- Scoring ---------------------------------------------------------------------------------


def score_interval(
    history: History,
    totals: Mapping[str, float],
    threshold: float,
    params: ScoringParams = DEFAULT_PARAMS,
) -> list[DimensionScore]:
    """Score every dimension value of the interval, plus values in the history that are missing now (as 0)."""
    results = []
    for dimension_value in sorted(set(totals) | set(history.series)):
        value = float(totals.get(dimension_value, 0.0))
        results.append(score_value(dimension_value, history.series.get(dimension_value, []), value, threshold, params))
    return results


def score_value(
    dimension_value: str,
    history: Sequence[float],
    value: float,
    threshold: float,
    params: ScoringParams = DEFAULT_PARAMS,
) -> DimensionScore:
    """Score ``value`` against the dimension value's past totals (oldest first)."""
    if len(history) < params.min_history:
        return DimensionScore(dimension_value, value, "warming_up", len(history))

    logs = np.log1p(np.maximum(np.asarray([*history, value], dtype=float), 0.0))
    window = min(params.level_window, max(2, len(history) // 2))
    # levels[i] is the median of logs[i : i + window]: the level expected for logs[i + window].
    levels = np.median(np.lib.stride_tricks.sliding_window_view(logs[:-1], window), axis=1)
    deviations = logs[window:] - levels
    past, current = deviations[:-1], float(deviations[-1])

    centre = float(np.median(past))
    sigma = max(1.4826 * float(np.median(np.abs(past - centre))), params.sigma_floor)
    z_score = (current - centre) / sigma

    # Past anomalies stay out of the forest, or they would mask the next similar one.
    ordinary_past = past[np.abs(past - centre) < threshold * sigma]
    rcf_ratio = _rcf_ratio(ordinary_past, current, params)
    score = min(rcf_ratio, abs(z_score))
    expected_log = float(levels[-1]) + centre
    return DimensionScore(
        dimension_value=dimension_value,
        value=value,
        status="scored",
        history_points=len(history),
        score=score,
        rcf_ratio=rcf_ratio,
        z_score=z_score,
        expected_low=max(0.0, math.expm1(expected_log - threshold * sigma)),
        expected_high=math.expm1(expected_log + threshold * sigma),
        is_anomaly=score >= threshold,
    )


def _rcf_ratio(past_deviations: np.ndarray, current: float, params: ScoringParams) -> float:
    """Raw RCF score of ``current`` over the mean raw score of the latest past points."""
    warmup = past_deviations[-params.warmup_points :].tolist()
    forest = RandomCutForest(
        {
            "dimensions": 1,
            "shingle_size": 1,
            "num_trees": params.num_trees,
            "sample_size": params.sample_size,
            "output_after": 1,
            "random_seed": params.random_seed,
            # Forests are tiny; thread fan-out per update costs more than it saves.
            "parallel_execution_enabled": False,
        }
    )
    # Skip the first points: scores against a near-empty forest say nothing about "ordinary".
    baseline_from = max(2, len(warmup) - params.baseline_points)
    baseline_scores = []
    for index, deviation in enumerate(warmup):
        point = [deviation]
        if index >= baseline_from:
            baseline_scores.append(forest.score(point))
        forest.update(point)
    raw = forest.score([current])
    baseline = float(np.mean(baseline_scores)) if baseline_scores else 0.0
    if baseline <= 1e-9:
        # All past points identical: anything different is as unusual as it gets.
        return 0.0 if raw <= 1e-9 else math.inf
    return raw / baseline


# --- Time helpers ----------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """ISO 8601 with a Z or offset (EventBridge's ``time``); naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def closed_interval_start(now: datetime, frequency_minutes: int) -> datetime:
    """Start of the latest interval that ended at or before ``now`` (19:22, 5 min → 19:15)."""
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    minutes_into_day = now.hour * 60 + now.minute
    boundary = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        minutes=minutes_into_day - minutes_into_day % frequency_minutes
    )
    return boundary - timedelta(minutes=frequency_minutes)
