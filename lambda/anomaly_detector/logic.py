"""One detector run: read an interval, score it, write/publish anomalies, emit metrics, save state.

:func:`detect_interval` is what the Lambda handler and the local mode both call. Its collaborators
are small interfaces (:class:`~anomaly_detector.stores.IntervalStore`, :class:`AlertPublisher`,
:class:`MetricsSink`), so a simulation can pass a folder-backed store and collecting fakes. The
judging itself is :func:`anomaly_detector.scoring.score_interval` (one model per dimension value).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools import Logger

from anomaly_detector.config import DetectorSettings
from anomaly_detector.history import Deadline, HistoryReader, IntervalSource, aggregation_signature
from anomaly_detector.scoring import (
    DetectorState,
    DimensionScore,
    IntervalAggregate,
    aggregate_csv,
    format_time,
    intervals_to_catch_up,
    score_interval,
)
from anomaly_detector.series_model import DEFAULT_MODEL, ModelParams
from anomaly_detector.stores import IntervalStore

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef
    from mypy_boto3_sns import SNSClient

logger = Logger(child=True)

MAX_ANOMALIES_IN_MESSAGE = 50  # keeps the SNS message far below its 256 KB limit
_SUBJECT_LIMIT = 100  # SNS rejects longer subjects


class AlertPublisher(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


class MetricsSink(Protocol):
    def put_metrics(self, values: Mapping[str, float], timestamp: datetime) -> None:
        """Emit every value in one call; names ending in ``Severity`` are unitless, the rest counts."""
        ...


@dataclass(frozen=True)
class SnsAlertPublisher:
    sns: SNSClient
    topic_arn: str

    def publish(self, subject: str, message: str) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)


@dataclass(frozen=True)
class CloudWatchMetricsSink:
    cloudwatch: CloudWatchClient
    namespace: str

    def put_metrics(self, values: Mapping[str, float], timestamp: datetime) -> None:
        data: list[MetricDatumTypeDef] = [
            {
                "MetricName": name,
                "Value": float(value),
                "Unit": "None" if name.endswith(("Severity", "Score")) else "Count",
                "Timestamp": timestamp,
            }
            for name, value in values.items()
        ]
        self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data)


@dataclass(frozen=True)
class IntervalReport:
    interval_start: datetime
    interval_end: datetime
    rows: int
    skipped_rows: int
    caught_up_intervals: int
    scores: list[DimensionScore] = field(default_factory=list)
    anomalies: list[DimensionScore] = field(default_factory=list)
    anomalies_location: str | None = None
    # "already processed": the state had this interval already (a repeated delivery); nothing was done.
    # "rebuilt": an older interval, re-run by hand, scored on a history rebuilt from the stored files.
    # "rebuilding": the catch-up ran out of time; what was learnt is saved, nothing was judged (see history.py).
    mode: str = "live"
    intervals_left: int = 0  # "rebuilding": stored intervals still to learn before the next judged one

    @property
    def is_empty(self) -> bool:
        return self.rows == 0

    @property
    def scored(self) -> list[DimensionScore]:
        return [s for s in self.scores if s.status == "scored"]

    @property
    def warming_up(self) -> list[DimensionScore]:
        return [s for s in self.scores if s.status == "warming_up"]

    @property
    def max_severity(self) -> float:
        return max((s.severity for s in self.scored), default=0.0)

    @property
    def ongoing(self) -> list[DimensionScore]:
        return [s for s in self.scores if s.ongoing and not s.is_anomaly]

    def summary(self) -> dict[str, object]:
        return {
            "interval_start": format_time(self.interval_start),
            "interval_end": format_time(self.interval_end),
            "rows": self.rows,
            "dimensions_scored": len(self.scored),
            "dimensions_warming_up": len(self.warming_up),
            "anomalies": len(self.anomalies),
            "ongoing_anomalies": len(self.ongoing),
            "max_severity": round(self.max_severity, 1),
            "anomalies_location": self.anomalies_location,
            "mode": self.mode,
            "caught_up_intervals": self.caught_up_intervals,
            "intervals_left": self.intervals_left,
        }


def detect_interval(
    *,
    store: IntervalStore,
    publisher: AlertPublisher,
    metrics: MetricsSink,
    interval_start: datetime,
    settings: DetectorSettings,
    params: ModelParams = DEFAULT_MODEL,
    history: IntervalSource | None = None,
    deadline: Deadline | None = None,
) -> IntervalReport:
    """Detect anomalies in the interval ``[interval_start, interval_start + frequency)``.

    ``interval_start`` must be aligned to the frequency (UTC; naive means UTC). The state is read
    from and written back to ``store``. Intervals missing from the state since its last run (or the
    last ``history_length`` intervals when there is no state) are first read from ``store`` and
    learnt without being judged: that is how a lost state is rebuilt and missed runs caught up.

    Side effects, in order: anomalies file (only when an anomaly opens), one ``publisher`` message
    (same condition), one ``metrics`` call, the state. The state is written last, so a failure
    anywhere leaves it untouched and a retry redoes the whole interval against the same state.
    Running the interval the state has already taken in again (a repeated delivery) does nothing.
    Running an *older* interval by hand scores it against a history rebuilt from the stored files
    (``history_length`` intervals before it) and leaves the saved state alone.

    ``history`` (optional) holds the per-interval aggregates: intervals are then read from them when
    unchanged, in parallel, and every interval read from CSVs gets one. ``deadline`` bounds the catch-up of a
    live run: when it passes, what was learnt is saved and the run reports mode "rebuilding" without judging
    (the next run continues). See :mod:`anomaly_detector.history`.
    """
    interval_start = _aligned_utc(interval_start, settings.frequency_minutes)
    interval_end = interval_start + timedelta(minutes=settings.frequency_minutes)
    threshold = settings.anomaly_threshold

    state = DetectorState.from_json(store.read_state(), settings.frequency_minutes, params)
    mode = "live"
    if state.last_interval_start is not None and interval_start <= state.last_interval_start:
        if interval_start == state.last_interval_start:
            logger.info(
                "Interval already processed; nothing to do", extra={"interval_start": format_time(interval_start)}
            )
            return IntervalReport(interval_start, interval_end, 0, 0, 0, mode="already processed")
        mode = "rebuilt"
        state = DetectorState(frequency_minutes=settings.frequency_minutes)
    catch_up = intervals_to_catch_up(state, interval_start, settings.frequency_minutes, settings.history_length)
    reader = HistoryReader(
        store, partial(_aggregate_texts, settings=settings), aggregation_signature(settings), history
    )
    if catch_up:
        logger.info("Catching up from stored intervals", extra={"intervals": len(catch_up), "mode": mode})
    # A hand-run older interval never saves its state, so it cannot continue later: no time limit for it.
    budget = deadline if deadline is not None and mode == "live" else Deadline.never()
    learnt = 0
    # No read starts after the deadline; the few already running (at most the source's read_workers) are learnt.
    for missed_start, missed in reader.read_in_order(catch_up, budget):
        state.learn_interval(missed_start, missed.totals, settings.history_length, params)
        learnt += 1
    if learnt < len(catch_up):
        return _save_partial_rebuild(store, state, interval_start, interval_end, learnt, len(catch_up) - learnt)

    aggregate = reader.read(interval_start)
    if not aggregate.totals:
        # No data at all is a pipeline problem (alarmed on via the metric), not a business anomaly.
        logger.warning("Interval has no data", extra={"interval_start": format_time(interval_start)})
    scores = score_interval(state, interval_start, aggregate.totals, threshold, settings.history_length, params)
    anomalies = sorted((s for s in scores if s.is_anomaly), key=lambda s: s.severity, reverse=True)

    anomalies_location = None
    if anomalies:
        lines = [_anomaly_record(a, interval_start, interval_end, settings) for a in anomalies]
        anomalies_location = store.write_anomalies(
            interval_start, "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        )
        subject, message = _alert(anomalies, interval_start, interval_end, settings)
        publisher.publish(subject, message)

    report = IntervalReport(
        interval_start=interval_start,
        interval_end=interval_end,
        rows=aggregate.rows,
        skipped_rows=aggregate.skipped_rows,
        caught_up_intervals=len(catch_up),
        scores=scores,
        anomalies=anomalies,
        anomalies_location=anomalies_location,
        mode=mode,
    )
    metrics.put_metrics(
        {
            "DimensionsScored": len(report.scored),
            "DimensionsWarmingUp": len(report.warming_up),
            "AnomaliesDetected": len(anomalies),
            "OngoingAnomalies": len(report.ongoing),
            "MaxSeverity": report.max_severity,
            "RowsRead": aggregate.rows,
            "SkippedRows": aggregate.skipped_rows,
            "EmptyInterval": 1 if report.is_empty else 0,
        },
        timestamp=interval_start,
    )
    if mode == "live":
        store.write_state(state.to_json())
    logger.info("Interval processed", extra=report.summary())
    return report


def _save_partial_rebuild(
    store: IntervalStore, state: DetectorState, interval_start: datetime, interval_end: datetime, learnt: int, left: int
) -> IntervalReport:
    """The catch-up ran out of time: keep what was learnt (the state's clock is the last learnt interval)."""
    if learnt:
        store.write_state(state.to_json())
    logger.warning(
        "History rebuild continues in the next run; this interval is learnt then, not judged",
        extra={"interval_start": format_time(interval_start), "learnt": learnt, "intervals_left": left},
    )
    return IntervalReport(interval_start, interval_end, 0, 0, learnt, mode="rebuilding", intervals_left=left)


def _aggregate_texts(csv_texts: list[str], settings: DetectorSettings) -> IntervalAggregate:
    return aggregate_csv(
        csv_texts,
        dimension_column=settings.dimension_column,
        measure_column=settings.measure_column,
        timestamp_column=settings.timestamp_column,
    )


def _aligned_utc(moment: datetime, frequency_minutes: int) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment.second or moment.microsecond or moment.minute % frequency_minutes:
        raise ValueError(f"interval_start {moment.isoformat()} is not aligned to {frequency_minutes} minutes")
    return moment


def _anomaly_record(
    anomaly: DimensionScore, interval_start: datetime, interval_end: datetime, settings: DetectorSettings
) -> dict[str, object]:
    return {
        "interval_start": format_time(interval_start),
        "interval_end": format_time(interval_end),
        "dimension_name": settings.dimension_column,
        "dimension_value": anomaly.dimension_value,
        "measure_name": settings.measure_column,
        "value": anomaly.value,
        "severity": round(anomaly.severity, 1),
        "expected": _round(anomaly.expected),
        "expected_low": _round(anomaly.expected_low),
        "expected_high": _round(anomaly.expected_high),
        "direction": anomaly.direction,
        "evidence": anomaly.evidence,
        "forecaster": anomaly.forecaster,
    }


def _alert(
    anomalies: list[DimensionScore], interval_start: datetime, interval_end: datetime, settings: DetectorSettings
) -> tuple[str, str]:
    when = f"{interval_start:%Y-%m-%d %H:%M}-{interval_end:%H:%M} UTC"
    subject = f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'} in {settings.measure_column} by "
    subject = (subject + f"{settings.dimension_column}, {when}")[:_SUBJECT_LIMIT]
    lines = [
        f"{len(anomalies)} {settings.dimension_column} value(s) had an anomalous {settings.measure_column} "
        f"in {when} (severity threshold {settings.anomaly_threshold:g}).",
        "",
    ]
    for anomaly in anomalies[:MAX_ANOMALIES_IN_MESSAGE]:
        lines.append(
            f"- {anomaly.dimension_value}: {anomaly.value:g} ({anomaly.direction}; expected "
            f"{_number(anomaly.expected_low)}-{_number(anomaly.expected_high)}), severity {anomaly.severity:.0f}"
        )
    if len(anomalies) > MAX_ANOMALIES_IN_MESSAGE:
        lines.append(f"... and {len(anomalies) - MAX_ANOMALIES_IN_MESSAGE} more in the anomalies file.")
    return subject, "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _round(value: float | None) -> float | None:
    # JSON has no infinity (a range is unbounded until the model has seen enough values).
    return None if value is None or not math.isfinite(value) else round(value, 6)
