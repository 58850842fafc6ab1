"""The streaming system, locally, in compressed time.

metrics_generator's record function -> JSON strings as Kinesis would carry them (a few malformed ones
too) -> one micro-batch per simulated hour through the streaming ETL's `process_batch` on local Spark ->
interval partitions under `<out>/streaming/intervals/` -> the detector scores each closed interval.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app_config.settings import StreamingConfig
from local_mode.interval_detector import AnomalyRecord, IntervalDetector, LocalFileStore, read_interval_sums
from local_mode.progress import Progress
from local_mode.spark_session import get_spark

STREAM_START = datetime(2026, 11, 23, tzinfo=UTC)
# Records per simulated minute: enough for smooth per-marketplace sums, few enough for a fast run.
RECORDS_PER_MINUTE = 40
ANOMALY_MARKETPLACE = "de"
ANOMALY_FACTOR = 4.0
# Day 2, 14:00 of the simulated stream.
DEFAULT_ANOMALY_HOUR = 38.0
# One malformed record every this many simulated hours shows the quarantine at work.
MALFORMED_EVERY_HOURS = 6
ANOMALY_DURATION = timedelta(minutes=30)
MALFORMED_RECORDS = (
    '{"platform": "web", "marketplace": "us", "event_time": "2026-11-23 01:02:03", "views": ',  # cut short
    '{"platform": "ios", "event_time": "2026-11-23 01:02:03", "views": 4}',  # no marketplace
    '{"platform": "web", "marketplace": "uk", "event_time": "yesterday", "views": 7}',
    '{"platform": "android", "marketplace": "jp", "event_time": "2026-11-23 01:02:03", "views": "many"}',
)


@dataclass(frozen=True)
class StreamOptions:
    out: Path
    hours: int = 48
    seed: int = 7
    records_per_minute: int = RECORDS_PER_MINUTE
    hours_per_batch: int = 1
    anomaly_hour: float = DEFAULT_ANOMALY_HOUR


@dataclass
class StreamOutcome:
    start: datetime
    end: datetime
    anomaly_marketplace: str
    anomaly_window: tuple[datetime, datetime] | None
    records: int = 0
    malformed: int = 0
    good: int = 0
    quarantined: int = 0
    batches: int = 0
    intervals: int = 0
    interval_sums: dict[str, dict[datetime, float]] = field(default_factory=dict)
    anomalies: list[AnomalyRecord] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    anomalies_file: Path | None = None
    intervals_folder: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def injected_detected(self) -> bool:
        if self.anomaly_window is None:
            return False
        start, end = self.anomaly_window
        return any(
            record.marketplace == self.anomaly_marketplace
            and start <= datetime.strptime(record.interval_start, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) < end
            for record in self.anomalies
        )


def run_streaming(options: StreamOptions, config: StreamingConfig, progress: Progress) -> StreamOutcome:
    from metrics_generator.records import MARKETPLACES, GeneratorSettings, generate_records, rng_for_interval

    from glue_scripts.streaming_etl import StreamSettings, process_batch

    start = STREAM_START
    end = start + timedelta(hours=options.hours)
    anomaly_start = start + timedelta(hours=options.anomaly_hour)
    anomaly_window = (anomaly_start, anomaly_start + ANOMALY_DURATION) if anomaly_start < end else None
    generator = GeneratorSettings(
        records_per_minute=options.records_per_minute,
        anomaly_marketplace=ANOMALY_MARKETPLACE,
        anomaly_factor=ANOMALY_FACTOR,
        anomaly_window=anomaly_window,
    )
    settings = StreamSettings(
        frequency_minutes=config.frequency_minutes,
        dimension_column=config.dimension_column,
        timestamp_column=config.timestamp_column,
        measure_column=config.measure_column,
    )
    folder = options.out / "streaming"
    stream_folder, intervals_folder = folder / "stream", folder / "intervals"
    outcome = StreamOutcome(start, end, ANOMALY_MARKETPLACE, anomaly_window, intervals_folder=intervals_folder)
    store = LocalFileStore(folder / "detector-state")
    detector = IntervalDetector(
        store,
        dimension=config.dimension_column,
        measure=config.measure_column,
        threshold=config.anomaly_threshold,
        history_length=config.history_length,
        seed=options.seed,
    )
    marketplaces = [marketplace.name for marketplace in MARKETPLACES]
    interval = timedelta(minutes=config.frequency_minutes)
    batch_span = timedelta(hours=options.hours_per_batch)
    progress.say(
        "stream",
        f"{options.hours} simulated hours from {start:%Y-%m-%d %H:%M}, {config.frequency_minutes}-minute intervals, "
        f"one micro-batch per {options.hours_per_batch} h; injected: {ANOMALY_FACTOR:g}x {ANOMALY_MARKETPLACE} "
        + (f"{anomaly_window[0]:%Y-%m-%d %H:%M}-{anomaly_window[1]:%H:%M}" if anomaly_window else "(outside the run)"),
    )
    spark = get_spark()
    timings: defaultdict[str, float] = defaultdict(float)
    anomalies_file = folder / "anomalies" / "anomalies.jsonl"
    anomalies_file.parent.mkdir(parents=True, exist_ok=True)
    stream_folder.mkdir(parents=True, exist_ok=True)
    with anomalies_file.open("w", encoding="utf-8") as anomaly_log:
        batch_start, batch_id = start, 0
        while batch_start < end:
            batch_end = min(batch_start + batch_span, end)
            began = time.monotonic()
            lines: list[str] = []
            interval_start = batch_start
            while interval_start < batch_end:
                rng = rng_for_interval(options.seed, interval_start)
                records = generate_records(interval_start, interval_start + interval, rng, generator)
                lines.extend(json.dumps(record, separators=(",", ":")) for record in records)
                if interval_start.minute == 0 and interval_start.hour % MALFORMED_EVERY_HOURS == 1:
                    lines.append(MALFORMED_RECORDS[outcome.malformed % len(MALFORMED_RECORDS)])
                    outcome.malformed += 1
                interval_start += interval
            outcome.records += len(lines)
            # The shard file is the stream: one record per line, as Kinesis hands them to Glue.
            shard_file = stream_folder / f"batch-{batch_id:05d}.jsonl"
            shard_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
            timings["generate"] += time.monotonic() - began

            began = time.monotonic()
            raw_df = spark.read.text(str(shard_file)).withColumnRenamed("value", "raw")
            counts = process_batch(
                raw_df,
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
            batch_anomalies: list[AnomalyRecord] = []
            interval_start = batch_start
            while interval_start < batch_end:
                partition = (
                    intervals_folder / f"intvl_date={interval_start:%Y-%m-%d}" / f"intvl_hhmm={interval_start:%H%M}"
                )
                sums = read_interval_sums(partition, config.dimension_column, config.measure_column)
                for marketplace in marketplaces:
                    outcome.interval_sums.setdefault(marketplace, {})[interval_start] = sums.get(marketplace, 0.0)
                found = detector.detect(interval_start, sums, marketplaces)
                for record in found:
                    anomaly_log.write(json.dumps(record.__dict__) + "\n")
                    outcome.alerts.append(
                        f"{record.interval_start} {record.marketplace}: {record.measure} {record.value:g} "
                        f"(expected ~{record.expected:g}), score {record.score:.2f}"
                    )
                batch_anomalies.extend(found)
                outcome.intervals += 1
                interval_start += interval
            outcome.anomalies.extend(batch_anomalies)
            store.flush()
            timings["detector"] += time.monotonic() - began
            summary = (
                f"batch {batch_id:>3} {batch_start:%m-%d %H:%M}: {counts.good} good, {counts.quarantined} quarantined"
            )
            if batch_anomalies:
                summary += " | ANOMALY " + ", ".join(
                    sorted({f"{a.marketplace}@{a.interval_start[11:]}" for a in batch_anomalies})
                )
            progress.say("stream", summary)
            batch_start, batch_id = batch_end, batch_id + 1
    outcome.anomalies_file = anomalies_file
    outcome.timings = dict(timings)
    return outcome
