"""The streaming system, locally, in compressed time.

metrics_generator's record function -> JSON records as Kinesis would carry them (bytes; a few malformed ones
too) -> one micro-batch per `hours_per_batch` simulated hours, parsed the way Glue's Kinesis source parses them
(`local_mode.kinesis_source`), through the streaming ETL's `process_batch` on local Spark -> interval partitions
under `<out>/streaming/intervals/` (one folder per batch) -> the real detector
(`anomaly_detector.logic.detect_interval`) scores each closed interval, reading the partitions through
its folder-backed store.

`<out>/streaming/` is laid out like the metrics bucket's `metrics/` prefix: `intervals/`, `anomalies/` (one
`groups.jsonl` per interval with anomaly groups) and `detector-state/history.json`, so the detector reads and
writes the same relative keys as in S3.

The detector scores every series of the metric set (`streaming.measures` x `streaming.dimensions`, with
roll-ups) on the columns the streaming ETL keeps. Injected anomalies are described as `InjectedAnomaly`
(measure, dimension combination, window); a group *matches* one when the measure matches, the times overlap
and the group's top contributor is that combination or below it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app_config.settings import StreamingConfig
from local_mode.progress import Progress
from local_mode.spark_session import get_spark
from local_mode.streaming_anomalies import (
    LOCAL_SCHEDULE,
    ScheduledAnomaly,
    injected_anomalies,
    single_spike,
    within_run,
)

if TYPE_CHECKING:
    from anomaly_detector.logic import IntervalReport
    from anomaly_detector.scoring import DimensionScore

STREAM_START = datetime(2026, 11, 23, tzinfo=UTC)
# Records per simulated minute: a fraction of the deployed generator's 500, for a fast run. Each record then
# carries more views, so per-marketplace sums match AWS (see `views_per_record`). The detector scores every
# platform x marketplace combination, and the smallest (android/br, 1.6 % of the records) is mostly counting
# noise below ~200 records a minute: at 40 the 48-hour run raised 5 alerts on noise alone, at 200 none
# (the local run's ETL time is about the same; generating and detecting take ~10 s more).
RECORDS_PER_MINUTE = 200
# One malformed record every this many simulated hours shows the quarantine at work.
MALFORMED_EVERY_HOURS = 6
ANOMALY_DURATION = timedelta(minutes=30)
MALFORMED_RECORDS = (
    b'{"platform": "web", "marketplace": "us", "event_time": "2026-11-23 01:02:03", "views": ',  # cut short
    b'{"platform": "ios", "event_time": "2026-11-23 01:02:03", "views": 4}',  # no marketplace
    b'{"platform": "web", "marketplace": "uk", "event_time": "yesterday", "views": 7}',
    b'{"platform": "android", "marketplace": "jp", "event_time": "2026-11-23 01:02:03", "views": "many"}',
    b'{"platform": "web", "marketplace": "\xff\xfe", "event_time": "2026-11-23 01:02:03", "views": 1}',  # not UTF-8
)
# Keys under `<out>/streaming/`, as the detector Lambda's are under the metrics bucket's `metrics/`.
INTERVALS_PREFIX = "intervals/"
ANOMALIES_PREFIX = "anomalies/"
DETECTOR_STATE_KEY = "detector-state/history.json"
FEEDBACK_FOLDER = "feedback"


@dataclass(frozen=True)
class StreamOptions:
    out: Path
    hours: int = 48
    seed: int = 7
    records_per_minute: int = RECORDS_PER_MINUTE
    hours_per_batch: int = 1
    # The one-spike run (views x4 in de for 30 minutes at this simulated hour) instead of the schedule.
    anomaly_hour: float | None = None
    # The injected anomalies (local_mode.streaming_anomalies); None: LOCAL_SCHEDULE, or the spike at `anomaly_hour`.
    anomalies: tuple[ScheduledAnomaly, ...] | None = None
    # Set by the caller to end the simulation after the current batch (the pipeline failed).
    stop: threading.Event | None = None


@dataclass(frozen=True)
class InjectedAnomaly:
    """An anomaly the run injects: ``measure`` changed in the ``dimensions`` combination during [start, end)."""

    measure: str
    dimensions: Mapping[str, str]
    start: datetime
    end: datetime
    factor: float = 1.0

    def describe(self) -> str:
        where = "/".join(self.dimensions.values()) or "total"
        return f"{self.measure} x{self.factor:g} in {where} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M}"


def group_matches(group: Mapping[str, Any], injected: InjectedAnomaly) -> bool:
    """Same measure, overlapping times, and the top contributor is the injected combination or below it."""
    if group["measure"] != injected.measure or not group["contributors"]:
        return False
    start, end = _parse_time(group["interval_start"]), _parse_time(group["interval_end"])
    if not (start < injected.end and injected.start < end):
        return False
    top = group["contributors"][0]["dimensions"]
    return all(top.get(dimension) == value for dimension, value in injected.dimensions.items())


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DetectedAnomaly:
    """One (interval, series) whose anomaly opened, with its verdict (value, expected range, score)."""

    interval_start: datetime
    verdict: DimensionScore

    @property
    def marketplace(self) -> str:
        """The marketplace when the series is a marketplace's roll-up of the charted measure, else its key."""
        from anomaly_detector.metric_set import parse_series_key

        series = parse_series_key(self.verdict.dimension_value)
        kept = {k: v for k, v in series.dimensions.items() if v is not None}
        return kept["marketplace"] if list(kept) == ["marketplace"] else self.verdict.dimension_value


@dataclass(frozen=True)
class DetectorAlert:
    """One message the detector published (SNS in AWS), with the interval whose run published it."""

    interval_start: datetime
    subject: str
    message: str


@dataclass
class CollectingPublisher:
    """The detector's AlertPublisher: keeps the messages instead of sending them to SNS."""

    published: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, subject: str, message: str) -> None:
        self.published.append((subject, message))


@dataclass
class CollectingMetricsSink:
    """The detector's MetricsSink: keeps every put_metrics call instead of sending it to CloudWatch."""

    calls: list[tuple[datetime, dict[str, float]]] = field(default_factory=list)

    by_measure: list[tuple[datetime, dict[str, dict[str, float]]]] = field(default_factory=list)

    def put_metrics(
        self,
        values: Mapping[str, float],
        timestamp: datetime,
        *,
        by_measure: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.calls.append((timestamp, dict(values)))
        self.by_measure.append((timestamp, {m: dict(v) for m, v in (by_measure or {}).items()}))


@dataclass
class StreamOutcome:
    start: datetime
    end: datetime
    records: int = 0
    malformed: int = 0
    good: int = 0
    quarantined: int = 0
    batches: int = 0
    intervals: int = 0
    detector_rows_read: int = 0
    # First interval in which every marketplace had enough history to be scored (warm-up ends).
    first_fully_scored: datetime | None = None
    interval_sums: dict[str, dict[datetime, float]] = field(default_factory=dict)
    anomalies: list[DetectedAnomaly] = field(default_factory=list)
    alerts: list[DetectorAlert] = field(default_factory=list)
    anomaly_files: list[Path] = field(default_factory=list)
    anomalies_folder: Path | None = None
    intervals_folder: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    frequency_minutes: int = 5
    injected: list[InjectedAnomaly] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # every group record, interval by interval
    charted_measure: str = "views"

    def is_injected(self, anomaly: DetectedAnomaly) -> bool:
        """The anomalous series is the measure of an injected anomaly, in its window, at or above its combination."""
        from anomaly_detector.metric_set import parse_series_key

        series = parse_series_key(anomaly.verdict.dimension_value)
        for injected in self.injected:
            if series.measure != injected.measure or not injected.start <= anomaly.interval_start < injected.end:
                continue
            # The series covers the injected combination when each dimension it keeps has the injected value.
            if all(
                value is None or injected.dimensions.get(name, value) == value
                for name, value in series.dimensions.items()
            ):
                return True
        return False

    def injected_spans(self, measure: str, marketplace: str) -> list[tuple[datetime, datetime]]:
        """Windows of injected anomalies of ``measure`` that touch ``marketplace`` (for the charts)."""
        return [
            (injected.start, injected.end)
            for injected in self.injected
            if injected.measure == measure and injected.dimensions.get("marketplace", marketplace) == marketplace
        ]

    @property
    def injected_detected(self) -> bool:
        return bool(self.injected) and all(
            any(group_matches(group, injected) for group in self.groups) for injected in self.injected
        )

    @property
    def false_anomalies(self) -> list[DetectedAnomaly]:
        return [anomaly for anomaly in self.anomalies if not self.is_injected(anomaly)]

    def record(self, report: IntervalReport, alerts: list[tuple[str, str]]) -> None:
        """Take in one detector run: per-marketplace sums of the charted measure, anomalies, groups and alerts."""
        from anomaly_detector.metric_set import parse_series_key

        self.intervals += 1
        self.detector_rows_read += report.rows
        self.groups.extend(report.groups)
        for verdict in report.scores:
            series = parse_series_key(verdict.dimension_value)
            kept = {k: v for k, v in series.dimensions.items() if v is not None}
            if series.measure == self.charted_measure and list(kept) == ["marketplace"] and kept["marketplace"]:
                self.interval_sums.setdefault(kept["marketplace"], {})[report.interval_start] = verdict.value
        if self.first_fully_scored is None and report.scored and not report.warming_up:
            self.first_fully_scored = report.interval_start
        self.anomalies.extend(DetectedAnomaly(report.interval_start, verdict) for verdict in report.anomalies)
        self.alerts.extend(DetectorAlert(report.interval_start, subject, message) for subject, message in alerts)
        if report.anomalies_location:
            self.anomaly_files.append(Path(report.anomalies_location))


def views_per_record(config: StreamingConfig, records_per_minute: int) -> float:
    """Mean views per record that give each marketplace the views per interval of the deployed generator.

    The detector judges a change against the series' noise, which is mostly counting noise: with the
    default views per record over 40 records a minute, `br`'s sums wobble ~7 % per interval against
    ~2.3 % in AWS (500 records a minute), and the detector raises several alerts a day on noise alone.
    """
    from metrics_generator.records import GeneratorSettings

    # The generator Lambda spreads each invocation's records over its schedule's minutes.
    deployed_records_per_minute = max(1, config.records_per_invocation // config.generator_rate_minutes)
    return GeneratorSettings().mean_views_per_record * deployed_records_per_minute / records_per_minute


def run_streaming(options: StreamOptions, config: StreamingConfig, progress: Progress) -> StreamOutcome:
    from anomaly_detector.config import DetectorSettings
    from anomaly_detector.feedback import LocalFeedbackStore
    from anomaly_detector.logic import detect_interval
    from anomaly_detector.metric_set import Measure
    from anomaly_detector.stores import LocalDirStore
    from metrics_generator.records import GeneratorSettings, generate_records, rng_for_interval

    from glue_scripts.streaming_etl import StreamSettings, process_batch
    from local_mode.kinesis_source import json_lines_batch

    start = STREAM_START
    end = start + timedelta(hours=options.hours)
    if options.anomalies is not None:
        schedule: tuple[ScheduledAnomaly, ...] = options.anomalies
    elif options.anomaly_hour is not None:
        schedule = single_spike(options.anomaly_hour, ANOMALY_DURATION)
    else:
        schedule = LOCAL_SCHEDULE
    generator = GeneratorSettings(
        records_per_minute=options.records_per_minute,
        mean_views_per_record=views_per_record(config, options.records_per_minute),
        anomalies=injected_anomalies(schedule, start, end),
    )
    settings = StreamSettings(
        frequency_minutes=config.frequency_minutes,
        dimensions=config.dimensions,
        measures=tuple(measure.name for measure in config.measures),
        timestamp_column=config.timestamp_column,
    )
    dimensions = tuple(config.dimensions)
    measures = tuple(Measure(m.name, m.aggregation) for m in config.measures)
    detector_settings = DetectorSettings(
        dimensions=dimensions,
        timestamp_column=config.timestamp_column,
        measures=measures,
        frequency_minutes=config.frequency_minutes,
        anomaly_threshold=config.anomaly_threshold,
        history_length=config.history_length,
        alert_min_severity=getattr(config, "alert_min_severity", 70.0),
    )
    folder = options.out / "streaming"
    stream_folder, intervals_folder = folder / "stream", folder / INTERVALS_PREFIX
    store = LocalDirStore(folder, INTERVALS_PREFIX, ANOMALIES_PREFIX, DETECTOR_STATE_KEY)
    publisher, metrics = CollectingPublisher(), CollectingMetricsSink()
    # Labels from `python -m streaming_cli feedback ... --out <out>` (out/streaming/feedback/, as metrics/feedback/).
    feedback = LocalFeedbackStore(folder / FEEDBACK_FOLDER)
    outcome = StreamOutcome(
        start,
        end,
        intervals_folder=intervals_folder,
        anomalies_folder=folder / ANOMALIES_PREFIX,
        frequency_minutes=config.frequency_minutes,
        injected=injected_from_schedule(schedule, start, end),
        charted_measure=measures[0].name,
    )
    interval = timedelta(minutes=config.frequency_minutes)
    batch_span = timedelta(hours=options.hours_per_batch)
    progress.say(
        "stream",
        f"{options.hours} simulated hours from {start:%Y-%m-%d %H:%M}, {config.frequency_minutes}-minute intervals, "
        f"one micro-batch per {options.hours_per_batch} h; injected: "
        + ("; ".join(injected.describe() for injected in outcome.injected) or "nothing (outside the run)"),
    )
    spark = get_spark()
    timings: defaultdict[str, float] = defaultdict(float)
    stream_folder.mkdir(parents=True, exist_ok=True)
    batch_start, batch_id = start, 0
    while batch_start < end:
        if options.stop is not None and options.stop.is_set():
            outcome.stopped_early = True
            break
        batch_end = min(batch_start + batch_span, end)
        began = time.monotonic()
        lines: list[bytes] = []
        interval_start = batch_start
        while interval_start < batch_end:
            rng = rng_for_interval(options.seed, interval_start)
            records = generate_records(interval_start, interval_start + interval, rng, generator)
            lines.extend(json.dumps(record, separators=(",", ":")).encode("utf-8") for record in records)
            if interval_start.minute == 0 and interval_start.hour % MALFORMED_EVERY_HOURS == 1:
                lines.append(MALFORMED_RECORDS[outcome.malformed % len(MALFORMED_RECORDS)])
                outcome.malformed += 1
            interval_start += interval
        outcome.records += len(lines)
        # The shard file is the stream: one record (data blob) per line.
        shard_file = stream_folder / f"batch-{batch_id:05d}.jsonl"
        shard_file.write_bytes(b"\n".join(lines) + b"\n")
        timings["generate"] += time.monotonic() - began

        began = time.monotonic()
        counts = process_batch(
            json_lines_batch(spark, shard_file, settings),
            batch_id,
            settings,
            intervals_folder.resolve().as_uri(),
            (folder / "quarantine").resolve().as_uri(),
        )
        outcome.good += counts.good
        outcome.quarantined += counts.quarantined
        outcome.batches += 1
        timings["streaming ETL"] += time.monotonic() - began

        began = time.monotonic()
        groups_before = len(outcome.groups)
        # The Lambda runs once per closed interval, in order; so does this loop (all of the batch is closed).
        interval_start = batch_start
        while interval_start < batch_end:
            published_before = len(publisher.published)
            report = detect_interval(
                store=store,
                publisher=publisher,
                metrics=metrics,
                interval_start=interval_start,
                settings=detector_settings,
                feedback=feedback,
            )
            outcome.record(report, publisher.published[published_before:])
            interval_start += interval
        timings["detector"] += time.monotonic() - began
        summary = f"batch {batch_id:>3} {batch_start:%m-%d %H:%M}: {counts.good} good, {counts.quarantined} quarantined"
        from anomaly_detector.groups import describe_group

        batch_groups = [g for g in outcome.groups[groups_before:] if g["status"] == "new"]
        if batch_groups:
            summary += " | NEW GROUP " + "; ".join(
                f"{describe_group(g)}@{g['interval_start'][11:16]}" for g in batch_groups
            )
        progress.say("stream", summary)
        batch_start, batch_id = batch_end, batch_id + 1
    outcome.timings = dict(timings)
    return outcome


def injected_from_schedule(
    schedule: Sequence[ScheduledAnomaly], stream_start: datetime, stream_end: datetime
) -> list[InjectedAnomaly]:
    """What the run injects, as the groups should find it: each schedule entry within the run, cut at its end."""
    injected = []
    for anomaly in within_run(schedule, stream_start, stream_end):
        start, end = anomaly.window(stream_start)
        injected.append(
            InjectedAnomaly(anomaly.measure, anomaly.dimensions, start, min(end, stream_end), anomaly.factor)
        )
    return injected
