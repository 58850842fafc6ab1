"""One detector run: read an interval, score it, write/publish anomalies, emit metrics, save state.

:func:`detect_interval` is what the Lambda handler and the local mode both call. Its collaborators
are small interfaces (:class:`~anomaly_detector.stores.IntervalStore`, :class:`AlertPublisher`,
:class:`MetricsSink`), so a simulation can pass a folder-backed store and collecting fakes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools import Logger

from anomaly_detector.config import DetectorSettings
from anomaly_detector.scoring import (
    DEFAULT_PARAMS,
    DimensionScore,
    History,
    IntervalAggregate,
    ScoringParams,
    aggregate_csv,
    format_time,
    intervals_to_catch_up,
    score_interval,
)
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
        """Emit every value in one call; names ending in ``Score`` are unitless, the rest counts."""
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
                "Unit": "None" if name.endswith("Score") else "Count",
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
    def max_score(self) -> float:
        return max((s.score for s in self.scored if s.score is not None), default=0.0)

    def summary(self) -> dict[str, object]:
        return {
            "interval_start": format_time(self.interval_start),
            "interval_end": format_time(self.interval_end),
            "rows": self.rows,
            "dimensions_scored": len(self.scored),
            "dimensions_warming_up": len(self.warming_up),
            "anomalies": len(self.anomalies),
            "max_score": round(self.max_score, 4),
            "anomalies_location": self.anomalies_location,
        }


def detect_interval(
    *,
    store: IntervalStore,
    publisher: AlertPublisher,
    metrics: MetricsSink,
    interval_start: datetime,
    settings: DetectorSettings,
    params: ScoringParams = DEFAULT_PARAMS,
) -> IntervalReport:
    """Detect anomalies in the interval ``[interval_start, interval_start + frequency)``.

    ``interval_start`` must be aligned to the frequency (UTC; naive means UTC). The state is read
    from and written back to ``store``. Intervals missing from the state since its last run (or
    the whole history when there is no state) are first read from ``store`` and appended without
    scoring, which is how a lost state is rebuilt. Re-running an interval already in the state
    scores it against the history before it, so retries are idempotent.

    Side effects, in order: anomalies file (only when there are anomalies), one ``publisher``
    message (same condition), the state, one ``metrics`` call. A failure before the state is
    written leaves the state untouched, so a retry redoes the whole interval.
    """
    interval_start = _aligned_utc(interval_start, settings.frequency_minutes)
    interval_end = interval_start + timedelta(minutes=settings.frequency_minutes)

    history = History.from_json(store.read_state(), settings.frequency_minutes)
    history.drop_intervals_from(interval_start)
    catch_up = intervals_to_catch_up(history, interval_start, settings.frequency_minutes, settings.history_length)
    if catch_up:
        logger.info("Catching up history from stored intervals", extra={"intervals": len(catch_up)})
    for missed_start in catch_up:
        missed = _read_aggregate(store, missed_start, settings)
        history.append_interval(missed_start, missed.totals, settings.history_length)

    aggregate = _read_aggregate(store, interval_start, settings)
    if aggregate.totals:
        scores = score_interval(history, aggregate.totals, settings.anomaly_threshold, params)
    else:
        # No data at all is a pipeline problem (alarmed on via the metric), not a business anomaly.
        logger.warning("Interval has no data", extra={"interval_start": format_time(interval_start)})
        scores = []
    anomalies = sorted((s for s in scores if s.is_anomaly), key=lambda s: s.score or 0.0, reverse=True)

    anomalies_location = None
    if anomalies:
        lines = [_anomaly_record(a, interval_start, interval_end, settings) for a in anomalies]
        anomalies_location = store.write_anomalies(
            interval_start, "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        )
        subject, message = _alert(anomalies, interval_start, interval_end, settings)
        publisher.publish(subject, message)

    # Flags keep this interval's anomalies out of the level that later intervals are judged against.
    flagged = {a.dimension_value for a in anomalies}
    history.append_interval(interval_start, aggregate.totals, settings.history_length, anomalous=flagged)
    store.write_state(history.to_json(settings.history_length))

    report = IntervalReport(
        interval_start=interval_start,
        interval_end=interval_end,
        rows=aggregate.rows,
        skipped_rows=aggregate.skipped_rows,
        caught_up_intervals=len(catch_up),
        scores=scores,
        anomalies=anomalies,
        anomalies_location=anomalies_location,
    )
    metrics.put_metrics(
        {
            "DimensionsScored": len(report.scored),
            "DimensionsWarmingUp": len(report.warming_up),
            "AnomaliesDetected": len(anomalies),
            "MaxScore": report.max_score,
            "RowsRead": aggregate.rows,
            "SkippedRows": aggregate.skipped_rows,
            "EmptyInterval": 1 if report.is_empty else 0,
        },
        timestamp=interval_start,
    )
    logger.info("Interval processed", extra=report.summary())
    return report


def _read_aggregate(store: IntervalStore, interval_start: datetime, settings: DetectorSettings) -> IntervalAggregate:
    return aggregate_csv(
        store.read_interval_csvs(interval_start),
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
        "score": _round(anomaly.score),
        "expected_low": _round(anomaly.expected_low),
        "expected_high": _round(anomaly.expected_high),
        "direction": anomaly.direction,
        "rcf_ratio": _round(anomaly.rcf_ratio),
        "z_score": _round(anomaly.z_score),
    }


def _alert(
    anomalies: list[DimensionScore], interval_start: datetime, interval_end: datetime, settings: DetectorSettings
) -> tuple[str, str]:
    when = f"{interval_start:%Y-%m-%d %H:%M}-{interval_end:%H:%M} UTC"
    subject = f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'} in {settings.measure_column} by "
    subject = (subject + f"{settings.dimension_column}, {when}")[:_SUBJECT_LIMIT]
    lines = [
        f"{len(anomalies)} {settings.dimension_column} value(s) had an anomalous {settings.measure_column} "
        f"in {when} (threshold {settings.anomaly_threshold}).",
        "",
    ]
    for anomaly in anomalies[:MAX_ANOMALIES_IN_MESSAGE]:
        lines.append(
            f"- {anomaly.dimension_value}: {anomaly.value:g} ({anomaly.direction}; expected "
            f"{anomaly.expected_low or 0:.0f}-{anomaly.expected_high or 0:.0f}), score {anomaly.score or 0:.2f}"
        )
    if len(anomalies) > MAX_ANOMALIES_IN_MESSAGE:
        lines.append(f"... and {len(anomalies) - MAX_ANOMALIES_IN_MESSAGE} more in the anomalies file.")
    return subject, "\n".join(lines)


def _round(value: float | None) -> float | None:
    # JSON has no infinity (an RCF ratio against an all-identical history can be infinite).
    return None if value is None or not math.isfinite(value) else round(value, 4)
