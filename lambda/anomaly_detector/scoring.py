"""Pure detection logic: CSV aggregation, per-dimension history, and Random Cut Forest scoring.

Scoring one (dimension value, interval)
---------------------------------------
1. Values are moved to log space (``log1p``) so a x4 spike and a x0.25 drop are equally far from
   normal whatever the dimension's volume.
2. Each point's *deviation* is its log value minus its *level*: the median of the last
   ``level_window`` *normal* points before it (see "After an anomaly"). The rolling median follows
   the daily cycle, so deviations are close to stationary.
3. A one-dimensional krcf forest is warmed up, on every run (Lambda keeps no state), with the last
   ``warmup_points`` deviations of normal history points that lie inside the expected band, so that
   earlier anomalies do not mask new ones. The raw RCF score of the current deviation is divided by the mean raw
   score of the most recent history points (scored just before the forest learnt them): that
   *RCF ratio* is ~1 for ordinary points, whatever krcf's absolute scale.
4. The robust z-score ``|deviation - median| / sigma`` (sigma = 1.4826*MAD of the history deviations, with
   a floor so that very smooth series need a material change) measures the size of the change.
5. **Normalised score = min(RCF ratio, |z|)**; an interval is anomalous when it is at least the
   threshold. Both have "about 1 is normal" scales, so one threshold means the same thing for both:
   the forest finds the point unusual *and* the change is well outside the usual noise.
   The expected range is exactly the band where ``|z| < threshold``, so a flagged value is always
   outside the reported range.

After an anomaly
----------------
Flagged intervals are kept out of the level, of the noise estimate and of the forest, so a spike
of any length neither pulls the level up (which made the first normal intervals after a 30-minute
spike look like a drop) nor becomes "normal" half-way through. While points are skipped, the last
``level_window`` normal points lie further back than usual, so each is first moved along the local
trend (least squares over up to two windows of normal points) to where an unbroken window would
be; otherwise a level frozen for an hour lags the daily cycle and the return to normal looks like a
change. A run of ``max_anomaly_run`` consecutive flagged intervals (24: two hours at 5 minutes,
four at 10) is a new normal: a lasting shift is flagged for that many intervals, then the run counts
as normal and the level follows it. The bound is longer than the spikes that should stay spikes;
the end of a longer run is, consistently, a change from the accepted level and is flagged. Only a value's
flags within its history count; fewer normal points than a level window fall back to all points.

With the default forest size the RCF ratio of even the most extreme point tops out around 5
(see ``RCF_RATIO_CEILING``): thresholds of 2.5-4 are useful, higher ones silence the detector.
Ordinary intervals score below ~2.

State choice: the history is a JSON document (per value, the last ``history_length`` totals, and
the positions of the flagged ones under ``anomalous``); forests are rebuilt from it on every run
because a warm-up of ``warmup_points`` points is cheaper than (de)serialising a forest per value.
A document without ``anomalous`` (written before flags existed) loads with nothing flagged, and
older code ignores the key, so ``STATE_VERSION`` is unchanged. If the document is lost, the history
is rebuilt by re-reading the stored interval files (see ``intervals_to_catch_up``); those intervals
are not scored, so they carry no flags.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
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
    # Consecutive flagged intervals after which the new level is accepted as normal. Longer than
    # the longest spike that should stay a spike (60 minutes at 5-minute intervals), or its end
    # would look like a drop from the accepted level.
    max_anomaly_run: int = 24

    def __post_init__(self) -> None:
        if self.min_history < 4:
            raise ValueError("min_history must be >= 4")
        if self.level_window < 2 or self.warmup_points < 4 or self.baseline_points < 1:
            raise ValueError("level_window >= 2, warmup_points >= 4 and baseline_points >= 1 are required")
        if self.max_anomaly_run <= self.level_window // 2:
            # An accepted run must be most of the level window, or the level stays between old and new.
            raise ValueError("max_anomaly_run must be more than half of level_window")
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

    ``anomalous[v]`` is aligned with ``series[v]``: True where that interval was flagged. Only
    values with at least one flag in their history have an entry (absent means "none flagged").
    """

    frequency_minutes: int
    last_interval_start: datetime | None = None
    series: dict[str, list[float]] = field(default_factory=dict)
    anomalous: dict[str, list[bool]] = field(default_factory=dict)

    def append_interval(
        self,
        interval_start: datetime,
        totals: Mapping[str, float],
        history_length: int,
        anomalous: Collection[str] = (),
    ) -> None:
        """Record one interval's totals and flagged values; values seen recently but absent now count as 0."""
        self.last_interval_start = interval_start
        if not totals:
            return
        for dimension_value in set(self.series) | set(totals):
            values = self.series.setdefault(dimension_value, [])
            values.append(float(totals.get(dimension_value, 0.0)))
            del values[:-history_length]
            self._append_flag(dimension_value, dimension_value in anomalous, len(values))
            if not any(values):
                # Not seen for a whole history: forget it, or a dead value would be tracked forever.
                del self.series[dimension_value]
                self.anomalous.pop(dimension_value, None)

    def _append_flag(self, dimension_value: str, flagged: bool, series_length: int) -> None:
        flags = self.anomalous.get(dimension_value)
        if flags is None:
            if not flagged:
                return
            flags = self.anomalous[dimension_value] = [False] * (series_length - 1)
        flags.append(flagged)
        del flags[:-series_length]
        if not any(flags):
            del self.anomalous[dimension_value]

    def drop_intervals_from(self, interval_start: datetime) -> None:
        """Forget ``interval_start`` and later, so re-running an interval does not score it against itself."""
        if self.last_interval_start is None or self.last_interval_start < interval_start:
            return
        step = timedelta(minutes=self.frequency_minutes)
        surplus = (self.last_interval_start - interval_start) // step + 1
        for values in self.series.values():
            del values[max(0, len(values) - surplus) :]
        for flags in self.anomalous.values():
            del flags[max(0, len(flags) - surplus) :]
        self.series = {k: v for k, v in self.series.items() if v}
        self.anomalous = {k: v for k, v in self.anomalous.items() if any(v)}
        self.last_interval_start = interval_start - step

    def to_json(self, history_length: int) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "frequency_minutes": self.frequency_minutes,
                "history_length": history_length,
                "last_interval_start": format_time(self.last_interval_start) if self.last_interval_start else None,
                "series": self.series,
                # Positions in ``series`` that were flagged: sparse, as flags are rare.
                "anomalous": {k: [i for i, flag in enumerate(v) if flag] for k, v in self.anomalous.items()},
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
            # Documents written before flags existed have no "anomalous": every interval counts as normal.
            anomalous: dict[str, list[bool]] = {}
            for dimension_value, positions in document.get("anomalous", {}).items():
                flagged = {int(i) for i in positions}
                flags = [i in flagged for i in range(len(series.get(str(dimension_value), [])))]
                if any(flags):
                    anomalous[str(dimension_value)] = flags
            return cls(frequency_minutes, parse_time(last) if last else None, series, anomalous)
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
        past = history.series.get(dimension_value, [])
        flags = history.anomalous.get(dimension_value)
        results.append(score_value(dimension_value, past, value, threshold, params, anomalous=flags))
    return results


def score_value(
    dimension_value: str,
    history: Sequence[float],
    value: float,
    threshold: float,
    params: ScoringParams = DEFAULT_PARAMS,
    *,
    anomalous: Sequence[bool] | None = None,
) -> DimensionScore:
    """Score ``value`` against the dimension value's past totals (oldest first).

    ``anomalous`` flags the past totals that were anomalies (aligned with ``history``; None: none were).
    """
    if len(history) < params.min_history:
        return DimensionScore(dimension_value, value, "warming_up", len(history))

    logs = np.log1p(np.maximum(np.asarray([*history, value], dtype=float), 0.0))
    window = min(params.level_window, max(2, len(history) // 2))
    normal = _normal_mask(anomalous, len(history), params.max_anomaly_run)
    if np.count_nonzero(normal) < window:
        normal[:] = True  # too few normal points to define a level: fall back to every point
    levels, has_level = _levels(logs, normal, window)
    deviations = logs[has_level] - levels
    current = float(deviations[-1])
    # Past anomalies describe neither the noise nor "ordinary" for the forest.
    past = deviations[:-1][normal[has_level[:-1]]]
    if len(past) < params.min_history // 2:
        past = deviations[:-1]

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


def _levels(logs: np.ndarray, normal: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected log level of each point that has ``window`` normal points before it, and which points have one.

    The level is the median of the last ``window`` normal points. When flagged points were skipped,
    those lie further back than the ``window`` points right before, so each is first moved along the
    local trend to where an unbroken window would be: a level frozen through a long spike lags the
    daily cycle so far that the return to normal would look like a change.
    """
    positions = np.flatnonzero(normal)
    normal_logs = logs[positions]
    # window_levels[k] is the median of normal points k .. k + window - 1.
    window_levels = np.median(np.lib.stride_tricks.sliding_window_view(normal_logs, window), axis=1)
    normal_before = np.searchsorted(positions, np.arange(len(logs)), side="left")
    has_level = normal_before >= window
    points = np.flatnonzero(has_level)
    first = normal_before[has_level] - window  # first of the point's `window` normal points
    levels = window_levels[first]

    # A window is unbroken when its last normal point is right before the point and it has no gap.
    gapped = np.flatnonzero((positions[first + window - 1] != points - 1) | (positions[first] != points - window))
    if len(gapped):
        # Trend: least squares over up to two windows of normal points (so it spans the gap), from running sums.
        times = positions.astype(float)
        sums = [
            np.concatenate(([0.0], np.cumsum(term)))
            for term in (np.ones_like(times), times, normal_logs, times * times, times * normal_logs)
        ]
        since, until = np.maximum(first[gapped] - window, 0), first[gapped] + window
        n, sx, sy, sxx, sxy = (total[until] - total[since] for total in sums)
        spread = n * sxx - sx * sx
        slope = np.divide(n * sxy - sx * sy, spread, out=np.zeros_like(spread), where=spread > 0)
        # Move each of the window's points to the centre of an unbroken window, then take the median.
        members = first[gapped, None] + np.arange(window)
        unbroken_centre = points[gapped, None] - (window + 1) / 2
        moved = normal_logs[members] + slope[:, None] * (unbroken_centre - times[members])
        levels[gapped] = np.median(moved, axis=1)
    return levels, has_level


def _normal_mask(anomalous: Sequence[bool] | None, length: int, max_anomaly_run: int) -> np.ndarray:
    """True for the past points that may define the level: not flagged, or in an accepted run of flags.

    A run of at least ``max_anomaly_run`` consecutive flagged points is a new normal, not an anomaly.
    """
    normal = np.ones(length, dtype=bool)
    if not anomalous:
        return normal
    flags = np.asarray(anomalous[-length:], dtype=bool)
    normal[length - len(flags) :] = ~flags  # right-aligned, in case the flags are shorter than the history
    # Boundaries of the runs of flags: +1 where a run starts, -1 just after it ends.
    edges = np.diff(np.concatenate(([0], (~normal).astype(np.int8), [0])))
    for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if end - start >= max_anomaly_run:
            normal[start:end] = True
    return normal


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
