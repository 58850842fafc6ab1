"""Streaming job sizing: does the smallest streaming worker (G.025X) keep up with the dev load?

A streaming run of ``glue_number_of_workers`` G.025X workers has one driver and one executor per remaining
worker, each worker 0.25 DPU = 2 vCPU and 4 GB ("Suitable for low volume streaming jobs", AWS Glue worker types).
The bench's local[2] SparkSession (2 cores, 4 GB driver) is about one such executor. Each case is one
micro-batch of ``window_size_seconds`` of events at a given rate, timed through everything ``forEachBatch`` does
with it, including Glue's parse of the records (`local_mode.kinesis_source`); only reading the raw record bytes is
outside the clock (in Glue that is the connector's fetch from Kinesis).

The batch must finish well inside its window, or the job falls behind: the figure that matters is
batch time ÷ window ("utilisation"). Not measured here, verified only on AWS: Glue's own per-batch overhead, the
S3 writes and commit (local disk here), and the Kinesis fetch.
"""

from __future__ import annotations

import shutil
from functools import partial
from typing import TYPE_CHECKING

from bench.data import DATA_ROOT, ensure_stream_records
from bench.reporting import BenchReport, Target
from bench.runtime import Say, sample_peak_rss, timed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from app_config import StreamingConfig

SECTION = "Streaming job sizing (one micro-batch on a G.025X-sized executor: 2 cores, 4 GB)"
# The dev load must use at most this share of each window: the rest is headroom for bursts, S3 latency and
# Glue's per-batch overhead, which local Spark does not have.
TARGET_DEV_UTILISATION_PERCENT = 25.0
LOAD_MULTIPLES = (1, 10, 100)
OUTPUT_ROOT = DATA_ROOT / "sizing_out"


def dev_records_per_batch(config: StreamingConfig) -> int:
    """Events per micro-batch at the dev generator's rate (records per invocation over its schedule)."""
    per_minute = config.records_per_invocation / config.generator_rate_minutes
    return max(1, round(per_minute * config.window_size_seconds / 60))


def _raw_records(spark: SparkSession, records: int, say: Say) -> DataFrame:
    from pyspark.sql import functions as sf

    path = ensure_stream_records(records, say)
    data = spark.read.text(str(path)).select(sf.col("value").cast("binary").alias("data")).repartition(2).cache()
    data.count()
    return data


def _one_batch(data: DataFrame, batch_id: int, frequency_minutes: int) -> tuple[int, int]:
    from glue_scripts.streaming_etl import StreamSettings, process_batch
    from local_mode.kinesis_source import parse_like_glue

    settings = StreamSettings(frequency_minutes=frequency_minutes)
    shutil.rmtree(OUTPUT_ROOT, ignore_errors=True)
    counts = process_batch(
        parse_like_glue(data, settings),
        batch_id,
        settings,
        (OUTPUT_ROOT / "intervals").as_uri(),
        (OUTPUT_ROOT / "quarantine").as_uri(),
    )
    return counts.good, counts.quarantined


def run(spark: SparkSession, report: BenchReport, say: Say, config: StreamingConfig, runs: int) -> None:
    window = config.window_size_seconds
    base = dev_records_per_batch(config)
    say(
        f"  dev load: {config.records_per_invocation} records every {config.generator_rate_minutes} min, "
        f"{window} s windows -> {base:,} records per batch; workers: {config.glue_number_of_workers} x "
        f"{config.glue_worker_type}"
    )
    utilisation_at_dev: float | None = None
    for multiple in LOAD_MULTIPLES:
        records = base * multiple
        data = _raw_records(spark, records, say)
        seconds: list[float] = []
        peaks: list[float] = []
        for run_number in range(1, runs + 1):
            with sample_peak_rss() as peak:
                run_seconds, (good, quarantined) = timed(
                    partial(_one_batch, data, run_number, config.frequency_minutes)
                )
            seconds.append(run_seconds)
            peaks.append(peak.peak_mib)
            say(f"  sizing {multiple}x dev ({records:,} records) run {run_number}/{runs}: {run_seconds:.2f} s")
        data.unpersist()
        label = f"{multiple}x dev load: {records:,} records per {window} s batch"
        report.add(SECTION, label, "batch wall time", "s", seconds, note=f"{good:,} good, {quarantined:,} quarantined")
        utilisation = report.add(
            SECTION,
            label,
            "utilisation (batch time ÷ window)",
            "%",
            [value / window * 100 for value in seconds],
            note="must stay well below 100 %, or batches queue up",
        )
        report.add(
            SECTION,
            label,
            "peak RSS",
            "MiB",
            peaks,
            note="Python + JVM process tree; the JVM grows into its 4 GB heap before collecting, so this shows the "
            "limit more than the need",
        )
        if multiple == 1:
            utilisation_at_dev = utilisation.median
    if utilisation_at_dev is not None:
        report.targets.append(
            Target(
                f"Streaming sizing: dev load's share of each {window} s window on one G.025X-sized executor",
                TARGET_DEV_UTILISATION_PERCENT,
                utilisation_at_dev,
                "%",
                note="S3 commit and Glue's per-batch overhead come on top (verified only on AWS)",
            )
        )
