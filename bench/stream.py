"""Streaming batch: the per-micro-batch ETL (`process_batch`) on local Spark at several batch sizes.

The batch is loaded, parsed the way Glue's Kinesis source parses it (`local_mode.kinesis_source`) and cached
before the clock starts (in Glue it arrives from Kinesis already parsed), split in two partitions as if read from
two shards so both cores get work. The timed part is exactly what `forEachBatch` runs per batch: the empty-batch
probe, classifying, counting and both writes.
"""

from __future__ import annotations

import shutil
from functools import partial
from typing import TYPE_CHECKING

from bench.data import DATA_ROOT, ensure_stream_records
from bench.reporting import BenchReport, Target
from bench.runtime import Say, timed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SECTION = "Streaming batch (process_batch on local Spark)"
KINESIS_SHARD_RECORDS_PER_SECOND = 1_000
TARGET_BATCH_RECORDS = 100_000
TARGET_RECORDS_PER_SECOND = 20_000.0
INPUT_PARTITIONS = 2
OUTPUT_ROOT = DATA_ROOT / "stream_out"


def _cached_batch(spark: SparkSession, records: int, say: Say) -> DataFrame:
    from glue_scripts.streaming_etl import StreamSettings
    from local_mode.kinesis_source import json_lines_batch

    path = ensure_stream_records(records, say)
    batch = json_lines_batch(spark, path, StreamSettings(frequency_minutes=5), partitions=INPUT_PARTITIONS).cache()
    batch.count()
    return batch


def _process(batch: DataFrame, batch_id: int) -> tuple[int, int]:
    from glue_scripts.streaming_etl import StreamSettings, process_batch

    for folder in ("intervals", "quarantine"):
        shutil.rmtree(OUTPUT_ROOT / folder, ignore_errors=True)
    counts = process_batch(
        batch,
        batch_id,
        StreamSettings(frequency_minutes=5),  # cdk.json dev: streaming.frequency_minutes
        (OUTPUT_ROOT / "intervals").as_uri(),
        (OUTPUT_ROOT / "quarantine").as_uri(),
    )
    return counts.good, counts.quarantined


def warm_up(spark: SparkSession, say: Say, records: int) -> None:
    from glue_scripts.streaming_etl import configure_spark

    configure_spark(spark)  # what the streaming job's main() does; same values as the prep job's
    batch = _cached_batch(spark, records, say)
    _process(batch, 0)
    batch.unpersist()


def run(spark: SparkSession, report: BenchReport, say: Say, sizes: tuple[int, ...], runs_for: dict[int, int]) -> None:
    rates: dict[int, float] = {}
    for records in sizes:
        batch = _cached_batch(spark, records, say)
        seconds: list[float] = []
        counts: list[tuple[int, int]] = []
        for run_number in range(1, runs_for[records] + 1):
            run_seconds, (good, quarantined) = timed(partial(_process, batch, run_number))
            seconds.append(run_seconds)
            counts.append((good, quarantined))
            say(
                f"  stream {records:,} records run {run_number}/{runs_for[records]}: {seconds[-1]:.2f} s "
                f"({good:,} good, {quarantined:,} quarantined)"
            )
        batch.unpersist()
        good, quarantined = counts[-1]
        check = "counts add up" if good + quarantined == records else f"COUNTS DO NOT ADD UP ({good + quarantined})"
        label = f"{records:,} records per batch"
        report.add(SECTION, label, "batch wall time", "s", seconds)
        rate = report.add(SECTION, label, "records/s", "records/s", [records / s for s in seconds])
        report.add(
            SECTION,
            label,
            "Kinesis shards' worth",
            "shards",
            [records / s / KINESIS_SHARD_RECORDS_PER_SECOND for s in seconds],
            note=f"records/s ÷ 1,000 (one shard's write limit); {good:,} good, {quarantined:,} quarantined, {check}",
        )
        rates[records] = rate.median
    if TARGET_BATCH_RECORDS in rates:
        report.targets.append(
            Target(
                f"Streaming: records/s at {TARGET_BATCH_RECORDS:,}-record batches",
                TARGET_RECORDS_PER_SECOND,
                rates[TARGET_BATCH_RECORDS],
                "records/s",
                higher_is_better=True,
            )
        )
