"""Interval-level detection: the detector's state, and scoring one interval's series.

Each series (one measure at one level of the dimensions, keyed by its series key: see
:mod:`anomaly_detector.metric_set`) is judged by :mod:`anomaly_detector.series_model` (read that module
for how a value gets its severity). This module keeps one model state per series key in one JSON
document (:class:`DetectorState`), and scores an interval's totals with them (:func:`score_interval`):
the code path the detector Lambda, the local mode and the backtest share. Keys are opaque here.

Series that vanish from an interval are scored as 0 (a marketplace that goes silent is news); a series
absent for ``history_length`` intervals in a row is forgotten. An interval without any data at all is
a pipeline problem, not an observation: nothing is scored or learnt.

State document (``STATE_VERSION`` 3)::

    {"version": 3, "frequency_minutes": 5, "metric_set": "platform,marketplace|views:sum,revenue:sum",
     "last_interval_start": "2025-03-01T12:05:00Z",
     "series": {"views|platform=web|marketplace=de": {<SeriesState.to_dict()>}, ...},
     "absent": {"views|platform=web|marketplace=jp": 3},
     "open_groups": {"views|low": {"group_id": "views-low-20250301T1200Z", "opened_at": "...", "alerted": true}}}

A document of another version (version 1 and 2 were keyed by one dimension's values, without saying
which), another frequency or another metric set, or anything corrupt, gives an empty state: the caller
then rebuilds it from the stored interval files (see ``anomaly_detector.logic``). Nothing is migrated.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from anomaly_detector.groups import OpenGroup
from anomaly_detector.metric_set import CsvFormatError, IntervalAggregate
from anomaly_detector.series_model import DEFAULT_MODEL, ModelParams, SeriesResult, SeriesState, update

STATE_VERSION = 3

__all__ = ["CsvFormatError", "DetectorState", "DimensionScore", "IntervalAggregate", "score_interval"]

ScoreStatus = Literal["scored", "warming_up"]


@dataclass(frozen=True)
class DimensionScore:
    """One series' verdict for one interval. ``dimension_value`` is the series key (the name is historical)."""

    dimension_value: str
    value: float
    status: ScoreStatus
    history_points: int  # values the model had learnt before this one
    severity: float = 0.0  # 0-100
    is_anomaly: bool = False  # opens an anomaly (announced); see series_model's "Decision"
    ongoing: bool = False  # part of an anomaly that is open for this value
    expected: float | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    direction: Literal["high", "low"] | None = None
    evidence: str | None = None  # "point", "shift" or "volatility": what made the severity
    forecaster: str | None = None  # "level", "daily" or "weekly"
    mean_shift: float | None = None  # signed mean distance of the last few values from the slow baseline

    @property
    def series_key(self) -> str:
        return self.dimension_value

    @property
    def score(self) -> float:
        """Severity / 100: the backtest's score."""
        return self.severity / 100.0

    @classmethod
    def from_result(
        cls, dimension_value: str, value: float, history_points: int, result: SeriesResult
    ) -> DimensionScore:
        scored = result.status == "scored"
        return cls(
            dimension_value=dimension_value,
            value=value,
            status=result.status,
            history_points=history_points,
            severity=result.severity,
            is_anomaly=result.is_anomaly,
            ongoing=result.ongoing,
            expected=result.expected if scored else None,
            expected_low=result.expected_low if scored else None,
            expected_high=result.expected_high if scored else None,
            direction=result.direction if scored else None,
            evidence=result.evidence if scored else None,
            forecaster=result.forecaster,
            mean_shift=result.mean_shift if scored else None,
        )


# --- Aggregation -----------------------------------------------------------------------------


def aggregate_csv(
    csv_texts: Iterable[str], dimension_column: str, measure_column: str, timestamp_column: str | None = None
) -> IntervalAggregate:
    """Legacy: one measure summed per value of one dimension (keys are the raw values, not series keys).

    The detector uses :func:`anomaly_detector.metric_set.aggregate_intervals`; this stays only for the
    streaming ETL's Spark tests until they move to the metric set.
    """
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


# --- State -----------------------------------------------------------------------------------


@dataclass
class DetectorState:
    """One model state per series key, the interval they have all seen last, and the open anomaly groups."""

    frequency_minutes: int
    last_interval_start: datetime | None = None
    series: dict[str, SeriesState] = field(default_factory=dict)
    absent: dict[str, int] = field(default_factory=dict)  # intervals in a row a known series was missing
    metric_set: str = ""  # MetricSet.signature of the keys ("" where the caller has none, as the backtest)
    open_groups: dict[str, OpenGroup] = field(default_factory=dict)  # by "measure|direction"

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "frequency_minutes": self.frequency_minutes,
                "metric_set": self.metric_set,
                "last_interval_start": format_time(self.last_interval_start) if self.last_interval_start else None,
                "series": {key: state.to_dict() for key, state in self.series.items()},
                "absent": self.absent,
                "open_groups": {key: group.to_dict() for key, group in self.open_groups.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(
        cls, text: str | None, frequency_minutes: int, params: ModelParams = DEFAULT_MODEL, metric_set: str = ""
    ) -> DetectorState:
        """Parse the stored state; anything unusable gives an empty state (see the module docstring)."""
        del params  # the model states carry their own format; kept for callers that pass it
        empty = cls(frequency_minutes=frequency_minutes, metric_set=metric_set)
        if not text:
            return empty
        try:
            document = json.loads(text)
            if document.get("version") != STATE_VERSION or document.get("frequency_minutes") != frequency_minutes:
                return empty
            if document.get("metric_set", "") != metric_set:
                return empty
            last = document.get("last_interval_start")
            last_start = parse_time(last) if last else None
            series = {str(key): SeriesState.from_dict(value) for key, value in document.get("series", {}).items()}
            absent = {str(key): int(value) for key, value in document.get("absent", {}).items() if str(key) in series}
            open_groups = {
                str(key): OpenGroup.from_dict(value) for key, value in document.get("open_groups", {}).items()
            }
            return cls(frequency_minutes, last_start, series, absent, metric_set, open_groups)
        except (ValueError, TypeError, AttributeError, KeyError):
            return empty

    def learn_interval(
        self,
        interval_start: datetime,
        totals: Mapping[str, float],
        history_length: int,
        params: ModelParams = DEFAULT_MODEL,
        *,
        has_data: bool | None = None,
    ) -> None:
        """Take in an interval without judging it (catching up missed intervals, rebuilding a lost state)."""
        score_interval(
            self,
            interval_start,
            totals,
            threshold=100.0,
            history_length=history_length,
            params=params,
            judge=False,
            has_data=has_data,
        )


def intervals_to_catch_up(
    state: DetectorState, interval_start: datetime, frequency_minutes: int, max_intervals: int
) -> list[datetime]:
    """Interval starts between the state's last interval and ``interval_start`` (exclusive), oldest first.

    A missing state gives the ``max_intervals`` intervals before ``interval_start``: that is how a
    lost or first-ever state is rebuilt from the stored interval files.
    """
    step = timedelta(minutes=frequency_minutes)
    first = interval_start - max_intervals * step
    if state.last_interval_start is not None:
        first = max(first, state.last_interval_start + step)
    missing = []
    current = first
    while current < interval_start:
        missing.append(current)
        current += step
    return missing


# --- Scoring ---------------------------------------------------------------------------------


def score_interval(
    state: DetectorState,
    interval_start: datetime,
    totals: Mapping[str, float],
    threshold: float,
    history_length: int,
    params: ModelParams = DEFAULT_MODEL,
    *,
    judge: bool = True,
    has_data: bool | None = None,
) -> list[DimensionScore]:
    """Score every dimension value of the interval, plus known values missing now (as 0), and learn them.

    ``state`` is updated in place (its series and ``last_interval_start``). ``threshold`` is the
    severity at which an anomaly opens. With ``judge=False`` nothing is decided (catch-up). An empty
    ``totals`` (no data at all) scores and learns nothing but moves the clock.

    ``has_data`` says whether the *interval* had data when ``totals`` is only a part of it (one hash partition's
    series, see :mod:`anomaly_detector.partitions`): a partition whose series are all absent from an interval that
    has data scores its known series as 0, as scoring the whole interval at once would. None: ``bool(totals)``.
    """
    state.last_interval_start = interval_start
    if not (bool(totals) if has_data is None else has_data):
        return []
    results = []
    for dimension_value in sorted(set(totals) | set(state.series)):
        present = dimension_value in totals
        if present:
            state.absent.pop(dimension_value, None)
        else:
            missing_for = state.absent.get(dimension_value, 0) + 1
            if missing_for >= history_length:
                # Not seen for a whole history: forget it, or a dead value would be tracked forever.
                del state.series[dimension_value]
                state.absent.pop(dimension_value, None)
                continue
            state.absent[dimension_value] = missing_for
        value = float(totals.get(dimension_value, 0.0))
        previous = state.series.get(dimension_value)
        result, state.series[dimension_value] = update(previous, interval_start, value, threshold, params, judge=judge)
        results.append(DimensionScore.from_result(dimension_value, value, previous.count if previous else 0, result))
    return results


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


def interval_for_event(event: Mapping[str, Any], frequency_minutes: int, clock: datetime | None = None) -> datetime:
    """The interval to process: an explicit ``interval_start``, else the one closed by the event's ``time``."""
    if event.get("interval_start"):
        return parse_time(str(event["interval_start"]))
    now = parse_time(str(event["time"])) if event.get("time") else (clock or datetime.now(UTC))
    return closed_interval_start(now, frequency_minutes)
