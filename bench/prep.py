"""Prep transform: the Glue script's `run_prep` on local Spark vs the same aggregation in DuckDB.

Each run times the whole job (read, clean, aggregate, dense series, features, write train/ and scoring/) and
then the DuckDB reference on the same file (read, clean, aggregate, dense series; no features or writing,
which touch a few thousand rows). Spark and DuckDB runs alternate, so each ratio compares runs that saw the
same machine load. Correctness is checked in the same run: the full scoring series Spark wrote (window start
and passengers of every window) must equal DuckDB's, and so must the rows read and dropped.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from bench.data import DATA_ROOT, TLC_YELLOW_COLUMNS, TripFiles, ensure_trips
from bench.reporting import RATIO, BenchReport, Figure, Target, ratio_figure
from bench.runtime import Say, SilentLogger, sample_peak_rss, timed

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from glue_scripts.taxi_prep import PrepResult

SECTION = "Prep transform (run_prep on local Spark; DuckDB reference)"
WINDOW_SECONDS = 30 * 60
FORMATS = ("csv", "parquet")
RATIO_TARGETS = {"csv": 6.0, "parquet": 20.0}
SCALING_TARGET = 3.0
OUTPUT_ROOT = DATA_ROOT / "prep_out"

Series = list[tuple[str, int]]


@dataclass
class CaseResult:
    rows: int
    input_format: str
    spark_seconds: list[float] = field(default_factory=list)
    duckdb_seconds: list[float] = field(default_factory=list)
    spark_peak_mib: list[float] = field(default_factory=list)
    duckdb_peak_mib: list[float] = field(default_factory=list)
    rows_read: int = 0
    mismatches: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DuckDbOutcome:
    series: Series
    rows_read: int
    rows_dropped: int


def _source_sql(files: TripFiles, input_format: str) -> str:
    folder = files.folder(input_format)
    if input_format == "csv":
        # An explicit all-text schema, like the Spark job's: bad values become NULL through TRY_CAST instead
        # of failing the read, and nothing is sniffed.
        columns = ", ".join(f"'{name}': 'VARCHAR'" for name in TLC_YELLOW_COLUMNS)
        return f"read_csv('{folder}/*.csv', header = true, auto_detect = false, delim = ',', columns = {{{columns}}})"
    return f"read_parquet('{folder}/*.parquet')"


def _text(input_format: str, column: str) -> str:
    # DuckDB 2.0 pushes a bare TRY_CAST of a CSV column into the reader as a strict cast, which then fails
    # on "n/a"; trim() keeps the cast in the query (and matches Spark, whose casts trim too).
    return f"trim({column})" if input_format == "csv" else column


def duckdb_reference(connection: duckdb.DuckDBPyConnection, files: TripFiles, input_format: str) -> DuckDbOutcome:
    """Same rules as the prep job: drop rows without a numeric count or a parseable time, sum per half hour."""
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE per_window AS
        SELECT CASE WHEN pickup_at IS NOT NULL AND passengers IS NOT NULL AND NOT isnan(passengers)
                    THEN CAST(floor(epoch(pickup_at) / {WINDOW_SECONDS}) AS BIGINT) * {WINDOW_SECONDS} END
                    AS window_bucket,
               sum(passengers) AS passengers,
               count(*) AS trips
        FROM (
            SELECT TRY_CAST({_text(input_format, "tpep_pickup_datetime")} AS TIMESTAMP) AS pickup_at,
                   TRY_CAST({_text(input_format, "passenger_count")} AS DOUBLE) AS passengers
            FROM {_source_sql(files, input_format)}
        )
        GROUP BY 1
        """  # noqa: S608 - only our own file paths and constants are interpolated
    )
    stats = connection.execute(
        "SELECT sum(trips), coalesce(sum(trips) FILTER (WHERE window_bucket IS NULL), 0), "
        "min(window_bucket), max(window_bucket) FROM per_window"
    ).fetchone()
    assert stats is not None
    rows_read, rows_dropped, first_bucket, last_bucket = stats
    rows = connection.execute(
        f"""
        SELECT strftime(make_timestamp(r.bucket * 1000000), '%Y-%m-%d %H:%M:%S'),
               coalesce(CAST(round(w.passengers) AS BIGINT), 0)
        FROM range({first_bucket}, {last_bucket} + {WINDOW_SECONDS}, {WINDOW_SECONDS}) AS r(bucket)
        LEFT JOIN per_window AS w ON w.window_bucket = r.bucket
        ORDER BY r.bucket
        """  # noqa: S608 - the numbers come from the previous query
    ).fetchall()
    series = [(str(window_start), int(passengers)) for window_start, passengers in rows]
    return DuckDbOutcome(series=series, rows_read=int(rows_read), rows_dropped=int(rows_dropped))


def _written_series(output_folder: Path) -> Series:
    """window_start and passengers of every record the job wrote to scoring/ (one JSON Lines part file)."""
    series: Series = []
    for part in sorted((output_folder / "scoring").glob("part-*.json")):
        with part.open(encoding="utf-8") as lines:
            records = [json.loads(line) for line in lines if line.strip()]
        series.extend((record["window_start"], int(record["passengers"])) for record in records)
    return series


def _compare(result: PrepResult, written: Series, reference: DuckDbOutcome) -> list[str]:
    problems = []
    if (result.rows_read, result.rows_dropped) != (reference.rows_read, reference.rows_dropped):
        problems.append(
            f"rows read/dropped: Spark {result.rows_read}/{result.rows_dropped}, "
            f"DuckDB {reference.rows_read}/{reference.rows_dropped}"
        )
    if len(written) != len(reference.series):
        problems.append(f"windows: Spark {len(written)}, DuckDB {len(reference.series)}")
    differing = [(ours, theirs) for ours, theirs in zip(written, reference.series, strict=False) if ours != theirs]
    if differing:
        problems.append(f"{len(differing)} windows differ, first: Spark {differing[0][0]}, DuckDB {differing[0][1]}")
    return problems


def run_spark_prep(spark: SparkSession, files: TripFiles, input_format: str, output_folder: Path) -> PrepResult:
    from glue_scripts.taxi_prep import run_prep

    shutil.rmtree(output_folder, ignore_errors=True)
    return run_prep(spark, files.folder(input_format).as_uri(), output_folder.as_uri(), SilentLogger())


def warm_up(spark: SparkSession, say: Say, rows: int) -> None:
    """One untimed run per format, so class loading and JIT warm-up do not land in the first figure."""
    files = ensure_trips(rows, say)
    for input_format in FORMATS:
        run_spark_prep(spark, files, input_format, OUTPUT_ROOT / "warm-up")


def measure_case(
    spark: SparkSession, connection: duckdb.DuckDBPyConnection, files: TripFiles, input_format: str, runs: int, say: Say
) -> CaseResult:
    case = CaseResult(rows=files.rows, input_format=input_format)
    output_folder = OUTPUT_ROOT / f"{files.rows}_{input_format}"
    for run in range(1, runs + 1):
        with sample_peak_rss() as spark_peak:
            spark_seconds, result = timed(partial(run_spark_prep, spark, files, input_format, output_folder))
        case.spark_seconds.append(spark_seconds)
        case.spark_peak_mib.append(spark_peak.peak_mib)
        # DuckDB runs inside this Python process: its peak is this process's RSS alone (the idle JVM excluded).
        with sample_peak_rss(include_children=False) as duckdb_peak:
            duckdb_seconds, reference = timed(partial(duckdb_reference, connection, files, input_format))
        case.duckdb_seconds.append(duckdb_seconds)
        case.duckdb_peak_mib.append(duckdb_peak.peak_mib)
        case.rows_read = result.rows_read
        if run == runs:  # the last run's output is still on disk
            case.mismatches = _compare(result, _written_series(output_folder), reference)
        say(
            f"  prep {files.rows:,} rows {input_format} run {run}/{runs}: Spark {case.spark_seconds[-1]:.2f} s "
            f"(peak {spark_peak.peak_mib:,.0f} MiB), DuckDB {case.duckdb_seconds[-1]:.2f} s"
        )
    return case


def run(
    spark: SparkSession,
    report: BenchReport,
    say: Say,
    sizes: tuple[int, ...],
    runs_for: dict[tuple[int, str], int],
) -> list[CaseResult]:
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    cases = []
    for rows in sizes:
        files = ensure_trips(rows, say)
        for input_format in FORMATS:
            case = measure_case(spark, connection, files, input_format, runs_for[(rows, input_format)], say)
            cases.append(case)
            _report_case(report, case)
    connection.close()
    _report_targets(report, cases, sizes)
    return cases


def _size_label(rows: int) -> str:
    return f"{rows / 1_000_000:g}M"


def _format_name(input_format: str) -> str:
    return "CSV" if input_format == "csv" else "Parquet"


def _label(rows: int, input_format: str) -> str:
    return f"{_size_label(rows)} rows, {_format_name(input_format)}"


def _report_case(report: BenchReport, case: CaseResult) -> None:
    label = _label(case.rows, case.input_format)
    report.add(SECTION, label, "Spark wall time (whole job)", "s", case.spark_seconds)
    report.add(SECTION, label, "Spark rows/s", "rows/s", [case.rows_read / seconds for seconds in case.spark_seconds])
    tree_note = "Python + JVM process tree, psutil every 100 ms"
    report.add(SECTION, label, "Spark peak RSS", "MiB", case.spark_peak_mib, note=tree_note)
    report.add(SECTION, label, "DuckDB wall time", "s", case.duckdb_seconds)
    duckdb_note = "this Python process only (DuckDB runs in it)"
    report.add(SECTION, label, "DuckDB peak RSS", "MiB", case.duckdb_peak_mib, note=duckdb_note)
    correctness = "identical to DuckDB (every window's sum, rows read and dropped)"
    if case.mismatches:
        correctness = "MISMATCH: " + "; ".join(case.mismatches)
    report.add_figure(
        SECTION,
        label,
        "Spark ÷ DuckDB",
        RATIO,
        ratio_figure(case.spark_seconds, case.duckdb_seconds),
        note=f"paired runs; {correctness}",
    )


def _report_targets(report: BenchReport, cases: list[CaseResult], sizes: tuple[int, ...]) -> None:
    by_key = {(case.rows, case.input_format): case for case in cases}
    largest, smallest = max(sizes), min(sizes)
    for input_format in FORMATS:
        case = by_key[(largest, input_format)]
        ratio = ratio_figure(case.spark_seconds, case.duckdb_seconds).median
        report.targets.append(
            Target(f"Prep {_label(largest, input_format)}: Spark ÷ DuckDB", RATIO_TARGETS[input_format], ratio, RATIO)
        )
    if largest != smallest:
        # 3x the time for 5x the rows (10M vs 2M); other sizes (--quick) keep the same proportion.
        scaling_limit = SCALING_TARGET * (largest / smallest) / 5
        for input_format in FORMATS:
            large = Figure.of(by_key[(largest, input_format)].spark_seconds).median
            small = Figure.of(by_key[(smallest, input_format)].spark_seconds).median
            name = (
                f"Prep {_format_name(input_format)}: Spark time at {_size_label(largest)} rows "
                f"÷ at {_size_label(smallest)} rows"
            )
            report.targets.append(Target(name, scaling_limit, large / small, RATIO))
    mismatched = [case for case in cases if case.mismatches]
    report.targets.append(
        Target(
            "Prep: Spark series identical to DuckDB's (every case)",
            0,
            len(mismatched),
            "cases differing",
            note="; ".join(f"{_label(c.rows, c.input_format)}: {'; '.join(c.mismatches)}" for c in mismatched),
        )
    )
