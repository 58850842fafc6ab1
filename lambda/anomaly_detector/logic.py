"""One detector run: read an interval, score every series, form anomaly groups, alert, emit metrics, save state.

:func:`detect_interval` is what the Lambda handler and the local mode both call. Its collaborators
are small interfaces (:class:`~anomaly_detector.stores.IntervalStore`, :class:`AlertTarget`,
:class:`MetricsSink`), so a simulation can pass a folder-backed store and collecting fakes. The
judging itself is :func:`anomaly_detector.scoring.score_interval` (one model per series key, see
:mod:`anomaly_detector.metric_set`); the grouping is :func:`anomaly_detector.groups.form_groups`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from anomaly_detector.alerts import AlertTarget, alert_message, alert_subject, groups_to_alert
from anomaly_detector.config import DetectorSettings
from anomaly_detector.feedback import FeedbackLabel, FeedbackStore, apply_feedback
from anomaly_detector.groups import OpenGroup, form_groups, open_group_key
from anomaly_detector.history import Deadline, HistoryReader, IntervalSource, aggregation_signature
from anomaly_detector.metric_set import (
    CsvFormatError,
    IntervalAggregate,
    MetricSet,
    aggregate_intervals,
    parse_series_key,
    totals_by_measure,
)
from anomaly_detector.scoring import (
    DetectorState,
    DimensionScore,
    format_time,
    intervals_to_catch_up,
    score_interval,
)
from anomaly_detector.series_model import DEFAULT_MODEL, ModelParams
from anomaly_detector.stores import IntervalStore

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import MetricDatumTypeDef

logger = Logger(child=True)

# "Each request is also limited to no more than 1000 different metrics." (CloudWatch API Reference,
# PutMetricData); larger sets are split over several calls.
MAX_METRICS_PER_CALL = 1000


class AlertPublisher(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


class MetricsSink(Protocol):
    def put_metrics(
        self,
        values: Mapping[str, float],
        timestamp: datetime,
        *,
        by_measure: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Emit ``values`` without dimensions and ``by_measure[m]`` with dimension ``Measure=m``.

        Names ending in ``Severity`` are unitless, ``MeasureTotal`` is the measure's own unit (None), the rest
        are counts.
        """
        ...


@dataclass(frozen=True)
class CloudWatchMetricsSink:
    cloudwatch: CloudWatchClient
    namespace: str

    def put_metrics(
        self,
        values: Mapping[str, float],
        timestamp: datetime,
        *,
        by_measure: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        data: list[MetricDatumTypeDef] = [_datum(name, value, timestamp) for name, value in values.items()]
        for measure, measure_values in (by_measure or {}).items():
            data += [_datum(name, value, timestamp, measure) for name, value in measure_values.items()]
        for first in range(0, len(data), MAX_METRICS_PER_CALL):
            self.cloudwatch.put_metric_data(
                Namespace=self.namespace, MetricData=data[first : first + MAX_METRICS_PER_CALL]
            )


def _datum(name: str, value: float, timestamp: datetime, measure: str | None = None) -> MetricDatumTypeDef:
    datum: MetricDatumTypeDef = {
        "MetricName": name,
        "Value": float(value),
        "Unit": "None" if name.endswith(("Severity", "Score", "Total")) else "Count",
        "Timestamp": timestamp,
    }
    if measure is not None:
        datum["Dimensions"] = [{"Name": "Measure", "Value": measure}]
    return datum


@dataclass(frozen=True)
class PublisherAlertTarget:
    """An :class:`AlertPublisher` (a local collector, or anything with ``publish``) as an alert target."""

    publisher: AlertPublisher

    def send(self, subject: str, message: str, group: Mapping[str, Any]) -> None:
        del group
        self.publisher.publish(subject, message)


@dataclass(frozen=True)
class IntervalReport:
    interval_start: datetime
    interval_end: datetime
    rows: int
    skipped_rows: int
    caught_up_intervals: int
    scores: list[DimensionScore] = field(default_factory=list)
    anomalies: list[DimensionScore] = field(default_factory=list)  # series whose anomaly opened now
    anomalies_location: str | None = None  # where groups.jsonl went (None: no groups)
    groups: list[dict[str, Any]] = field(default_factory=list)
    alerts_sent: int = 0
    measure_totals: dict[str, float] = field(default_factory=dict)
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
            "series_scored": len(self.scored),
            "series_warming_up": len(self.warming_up),
            "anomalies": len(self.anomalies),
            "ongoing_anomalies": len(self.ongoing),
            "groups": len(self.groups),
            "new_groups": sum(group["status"] == "new" for group in self.groups),
            "alerts_sent": self.alerts_sent,
            "max_severity": round(self.max_severity, 1),
            "anomalies_location": self.anomalies_location,
            "mode": self.mode,
            "caught_up_intervals": self.caught_up_intervals,
            "intervals_left": self.intervals_left,
        }


def detect_interval(
    *,
    store: IntervalStore,
    publisher: AlertPublisher | None = None,
    metrics: MetricsSink,
    interval_start: datetime,
    settings: DetectorSettings,
    params: ModelParams = DEFAULT_MODEL,
    alert_targets: Sequence[AlertTarget] = (),
    feedback: FeedbackStore | None = None,
    history: IntervalSource | None = None,
    deadline: Deadline | None = None,
) -> IntervalReport:
    """Detect anomalies in the interval ``[interval_start, interval_start + frequency)``.

    ``interval_start`` must be aligned to the frequency (UTC; naive means UTC). The state is read
    from and written back to ``store``. Intervals missing from the state since its last run (or the
    last ``history_length`` intervals when there is no state) are first read from ``store`` and
    learnt without being judged: that is how a lost state is rebuilt and missed runs caught up.
    Open groups do not survive a gap: after a catch-up the next anomaly opens a new group.

    Side effects, in order: ``groups.jsonl`` (only when there are groups), one alert per group to alert
    (each of ``alert_targets``, and ``publisher`` if given), the metrics, the state. The state is written
    last, so a failure anywhere leaves it untouched and a retry redoes the whole interval against the same
    state. Running the interval the state has already taken in again (a repeated delivery) does nothing.
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
    metric_set = settings.metric_set
    targets = list(alert_targets) + ([PublisherAlertTarget(publisher)] if publisher is not None else [])

    state = DetectorState.from_json(store.read_state(), settings.frequency_minutes, params, metric_set.signature)
    mode = "live"
    if state.last_interval_start is not None and interval_start <= state.last_interval_start:
        if interval_start == state.last_interval_start:
            logger.info(
                "Interval already processed; nothing to do", extra={"interval_start": format_time(interval_start)}
            )
            return IntervalReport(interval_start, interval_end, 0, 0, 0, mode="already processed")
        mode = "rebuilt"
        state = DetectorState(frequency_minutes=settings.frequency_minutes, metric_set=metric_set.signature)
    catch_up = intervals_to_catch_up(state, interval_start, settings.frequency_minutes, settings.history_length)
    signature = aggregation_signature(settings)
    # Stored intervals that lack the metric set's columns (written before it changed) teach nothing; the
    # interval being judged must have them (a clear error otherwise).
    reader = HistoryReader(store, partial(_aggregate_stored_texts, settings=settings), signature, history)
    current_reader = HistoryReader(store, partial(_aggregate_texts, settings=settings), signature, history)
    if catch_up:
        logger.info("Catching up from stored intervals", extra={"intervals": len(catch_up), "mode": mode})
        state.open_groups = {}
    # A hand-run older interval never saves its state, so it cannot continue later: no time limit for it.
    budget = deadline if deadline is not None and mode == "live" else Deadline.never()
    learnt = 0
    # No read starts after the deadline; the few already running (at most the source's read_workers) are learnt.
    for missed_start, missed in reader.read_in_order(catch_up, budget):
        state.learn_interval(missed_start, missed.totals, settings.history_length, params)
        learnt += 1
    if learnt < len(catch_up):
        return _save_partial_rebuild(store, state, interval_start, interval_end, learnt, len(catch_up) - learnt)

    aggregate = current_reader.read(interval_start)
    if not aggregate.totals:
        # No data at all is a pipeline problem (alarmed on via the metric), not a business anomaly.
        logger.warning("Interval has no data", extra={"interval_start": format_time(interval_start)})
    scores = score_interval(state, interval_start, aggregate.totals, threshold, settings.history_length, params)
    anomalies = sorted((s for s in scores if s.is_anomaly), key=lambda s: s.severity, reverse=True)

    member_min = params.episode_clear_fraction * threshold
    groups, state.open_groups = form_groups(
        scores, metric_set, interval_start, interval_end, state.open_groups, member_min
    )
    groups, state.open_groups, alerts_sent = announce_groups(
        groups, state.open_groups, feedback=feedback, targets=targets, min_severity=settings.alert_min_severity
    )
    anomalies_location = write_groups(store, interval_start, groups)

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
        groups=groups,
        alerts_sent=alerts_sent,
        measure_totals=totals_by_measure(aggregate.totals, metric_set),
    )
    put_interval_metrics(
        metrics,
        interval_start=interval_start,
        metric_set=metric_set,
        groups=groups,
        alerts_sent=alerts_sent,
        series_scored=len(report.scored),
        series_warming_up=len(report.warming_up),
        rows=aggregate.rows,
        skipped_rows=aggregate.skipped_rows,
        measure_totals=report.measure_totals,
    )
    if mode == "live":
        store.write_state(state.to_json())
    logger.info("Interval processed", extra=report.summary())
    return report


def announce_groups(
    groups: list[dict[str, Any]],
    open_groups: dict[str, OpenGroup],
    *,
    feedback: FeedbackStore | None,
    targets: Sequence[AlertTarget],
    min_severity: float,
) -> tuple[list[dict[str, Any]], dict[str, OpenGroup], int]:
    """Feedback, then one alert per group to announce (to every target), marked in its record and open group.

    Shared by the single detector and the fan-out's final step, so both announce exactly alike. Labels are
    read only when there is a group to judge (most intervals have none: no S3 listing then).
    """
    labels: list[FeedbackLabel] = feedback.read_labels() if (feedback is not None and groups) else []
    groups = apply_feedback(groups, labels)
    open_groups = dict(open_groups)
    alerts_sent = 0
    for group in groups_to_alert(groups, min_severity=min_severity, labels=labels):
        subject, message = alert_subject(group), alert_message(group)
        for target in targets:
            target.send(subject, message, group)
        alerts_sent += 1
        for record in groups:
            if record["group_id"] == group["group_id"]:
                record["alerted"] = True
        key = open_group_key(str(group["measure"]), str(group["direction"]))
        if key in open_groups:
            open_groups[key] = replace(open_groups[key], alerted=True)
    return groups, open_groups, alerts_sent


def write_groups(store: IntervalStore, interval_start: datetime, groups: Sequence[Mapping[str, Any]]) -> str | None:
    """The interval's ``groups.jsonl`` (only when there are groups); where it went."""
    if not groups:
        return None
    return store.write_groups(
        interval_start, "".join(json.dumps(group, separators=(",", ":")) + "\n" for group in groups)
    )


def put_interval_metrics(
    metrics: MetricsSink,
    *,
    interval_start: datetime,
    metric_set: MetricSet,
    groups: Sequence[Mapping[str, Any]],
    alerts_sent: int,
    series_scored: int,
    series_warming_up: int,
    rows: int,
    skipped_rows: int,
    measure_totals: Mapping[str, float],
) -> None:
    """One interval's metrics (README "Anomaly group record"), overall and per measure."""
    metrics.put_metrics(
        {
            "SeriesScored": series_scored,
            "SeriesWarmingUp": series_warming_up,
            "AnomalyGroups": len(groups),
            "NewAnomalyGroups": sum(group["status"] == "new" for group in groups),
            "MaxGroupSeverity": max((float(group["severity"]) for group in groups), default=0.0),
            "AlertsSent": alerts_sent,
            "RowsRead": rows,
            "SkippedRows": skipped_rows,
            "EmptyInterval": 1 if rows == 0 else 0,
        },
        timestamp=interval_start,
        by_measure={
            measure.name: {
                "MeasureTotal": measure_totals.get(measure.name, 0.0),
                "AnomalyGroups": sum(group["measure"] == measure.name for group in groups),
                "MaxGroupSeverity": max(
                    (float(group["severity"]) for group in groups if group["measure"] == measure.name), default=0.0
                ),
            }
            for measure in metric_set.measures
        },
    )


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
    return aggregate_intervals(csv_texts, settings.metric_set, timestamp_column=settings.timestamp_column)


def _aggregate_stored_texts(csv_texts: list[str], settings: DetectorSettings) -> IntervalAggregate:
    try:
        return _aggregate_texts(csv_texts, settings)
    except CsvFormatError as error:
        # Files written before the metric set changed cannot teach the new series: learn nothing from them.
        logger.warning("Stored interval skipped in the catch-up", extra={"error": str(error)})
        return IntervalAggregate({}, 0, 0)


def _aligned_utc(moment: datetime, frequency_minutes: int) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment.second or moment.microsecond or moment.minute % frequency_minutes:
        raise ValueError(f"interval_start {moment.isoformat()} is not aligned to {frequency_minutes} minutes")
    return moment


def series_label(key: str) -> str:
    """``views web/de`` for a series key (logs and summaries)."""
    series = parse_series_key(key)
    return f"{series.measure} {series.label()}"
