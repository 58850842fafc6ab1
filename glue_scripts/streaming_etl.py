"""Streaming metrics ETL (Glue 5.0, ``gluestreaming``): Kinesis JSON events -> interval-partitioned CSV on S3.

Events are JSON objects such as ``{"platform": "web", "marketplace": "US", "event_time": "2026-11-25 19:18:28",
"views": 12, "revenue": 34.5}``; ``event_time`` is ``yyyy-MM-dd HH:mm:ss`` in UTC or ISO-8601
(``2026-11-25T19:18:28Z``, an offset or fractional seconds are accepted and converted to UTC).

Job arguments: ``--database_name``, ``--table_name`` (the Data Catalog table of the Kinesis stream),
``--output_uri``, ``--quarantine_uri``, ``--checkpoint_uri``, ``--window_size_seconds``, ``--frequency_minutes``
(5 or 10; any divisor of 60 works), and optionally ``--dimension_column`` (default ``marketplace``),
``--timestamp_column`` (default ``event_time``), ``--measure_column`` (default ``views``).

Getting the raw record text (so that invalid JSON can be quarantined instead of silently becoming nulls):
Glue parses Kinesis records according to the catalog table's ``classification``. With ``json`` a malformed
record would come out as a row of nulls and its text would be lost, so the job reads the stream as ``csv``
with a single string column ``raw`` and a field delimiter that cannot occur in a JSON text: U+0001 (JSON
forbids unescaped control characters inside strings, and it is not JSON whitespace). Each Kinesis record is
then one row whose ``raw`` column is the record text, unchanged (the CSV quote character only matters for a
record that starts with ``"``, which is not a JSON object anyway). The catalog table must therefore be:

* columns: exactly one, ``raw`` of type ``string``;
* parameters: ``classification=csv``, ``typeOfData=kinesis``, ``streamARN=<the stream ARN>`` (or
  ``streamName`` + ``endpointUrl``), ``delimiter=\\u0001`` (the U+0001 character itself);
* storage descriptor: SerDe ``org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe`` with ``field.delim`` =
  U+0001, ``location`` = the stream name, input/output formats ``org.apache.hadoop.mapred.TextInputFormat`` /
  ``org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat``.

``main()`` also passes ``classification`` and ``delimiter`` in ``additional_options`` (they override the
table), and :func:`raw_records` accepts a batch in any other shape too (a ``data`` binary column, or already
parsed columns, which are turned back into JSON), so a differently defined table degrades instead of failing.

Per micro-batch (``forEachBatch``): :func:`split_batch` parses the records with ``from_json`` and an explicit
all-string schema (no Python UDFs) and splits them into

* good rows: the dimension, the timestamp (``yyyy-MM-dd HH:mm:ss`` UTC) and the measure (double) columns plus
  ``intvl_date`` (``YYYY-MM-DD``) and ``intvl_hhmm`` (``HHMM``), the START of the record's interval, the event
  time floored to ``frequency_minutes`` (19:18:28 -> 19:15 at 5 minutes, 19:10 at 10). A late record lands
  in the interval of its own event time, whatever the batch it arrives in.
* quarantined rows: ``raw``, ``reason`` (``invalid JSON``, ``missing field <name>``, ``unparseable
  timestamp`` or ``non-numeric <measure>``; the first that applies), ``batch_id``, ``quarantined_at``.

:func:`write_batch` appends good rows as CSV with a header (whole measures written as 98, not 98.0) under
``output_uri/intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/part-*.csv`` and quarantined rows as JSON lines under
``quarantine_uri/ingest_date=YYYY-MM-DD/``. :func:`process_batch` ties them together, skips empty batches with a
one-row probe and never raises because of a record's content.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import BinaryType, DoubleType, StringType, StructField, StructType

RAW_COLUMN = "raw"
RAW_RECORD_DELIMITER = "\u0001"
INTERVAL_DATE_COLUMN = "intvl_date"
INTERVAL_HHMM_COLUMN = "intvl_hhmm"
INGEST_DATE_COLUMN = "ingest_date"
TIMESTAMP_OUTPUT_FORMAT = "yyyy-MM-dd HH:mm:ss"
INVALID_JSON = "invalid JSON"
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
_CORRUPT_RECORD_COLUMN = "_corrupt_record"
_PARSED_COLUMN = "_parsed"
_REASON_COLUMN = "reason"
# A date and a time are required before Spark's lenient timestamp cast, which would also accept "2026".
_DATE_TIME_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"


@dataclass(frozen=True)
class StreamSettings:
    """Which JSON fields are the dimension, the event time and the measure, and the interval length."""

    frequency_minutes: int = 5
    dimension_column: str = "marketplace"
    timestamp_column: str = "event_time"
    measure_column: str = "views"

    def __post_init__(self) -> None:
        # Intervals must tile the hour so that HHMM names the same boundaries every hour.
        if self.frequency_minutes < 1 or 60 % self.frequency_minutes != 0:
            raise ValueError(f"frequency_minutes must divide 60 (5 or 10), got {self.frequency_minutes}")
        names = [self.dimension_column, self.timestamp_column, self.measure_column]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"dimension, timestamp and measure columns must be distinct names, got {names}")
        reserved = {RAW_COLUMN, INTERVAL_DATE_COLUMN, INTERVAL_HHMM_COLUMN, _CORRUPT_RECORD_COLUMN}
        if reserved & set(names):
            raise ValueError(f"column names {sorted(reserved & set(names))} are reserved by the job")


@dataclass(frozen=True)
class BatchSplit:
    """Good and quarantined rows of one batch; unpacks as ``good_df, quarantine_df``.

    Both frames read one cached classification of the batch: call :meth:`release` once they are written.
    """

    good: DataFrame
    quarantine: DataFrame
    classified: DataFrame

    def __iter__(self) -> Iterator[DataFrame]:
        return iter((self.good, self.quarantine))

    def release(self) -> None:
        self.classified.unpersist()


@dataclass(frozen=True)
class BatchCounts:
    batch_id: int
    good: int
    quarantined: int
    skipped_empty: bool = False


def configure_spark(spark: SparkSession) -> None:
    """Session settings for the per-batch work; the benchmark calls this too."""
    # Intervals and formatted timestamps are UTC whatever the cluster's default zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    # A micro-batch is at most a few hundred thousand small records: one shuffle partition per core is
    # plenty for the repartition by interval, where the default 200 would mostly schedule empty tasks.
    spark.conf.set("spark.sql.shuffle.partitions", str(max(1, spark.sparkContext.defaultParallelism)))


def raw_records(batch: DataFrame) -> DataFrame:
    """The batch as one string column ``raw``, whatever shape the Kinesis source produced."""
    columns = batch.columns
    if RAW_COLUMN in columns:
        return batch.select(sf.col(RAW_COLUMN).cast("string").alias(RAW_COLUMN))
    if len(columns) == 1:
        return batch.select(sf.col(f"`{columns[0]}`").cast("string").alias(RAW_COLUMN))
    if "data" in columns and isinstance(batch.schema["data"].dataType, BinaryType):
        return batch.select(sf.col("data").cast("string").alias(RAW_COLUMN))
    # Already parsed by Glue: rebuild a JSON text so the same validation applies.
    return batch.select(sf.to_json(sf.struct(*[sf.col(f"`{name}`") for name in columns])).alias(RAW_COLUMN))


def _is_blank(column: Column) -> Column:
    return column.isNull() | (sf.trim(column) == "")


def _classify(raw_df: DataFrame, settings: StreamSettings) -> DataFrame:
    """Every record with its parsed fields and a ``reason`` (NULL when the record is good)."""
    dimension, timestamp, measure = settings.dimension_column, settings.timestamp_column, settings.measure_column
    # All fields as strings: a number, a quoted number or a nested object all arrive as text, so the checks
    # below decide what is missing, unparseable or non-numeric instead of from_json silently nulling it.
    json_schema = StructType(
        [StructField(name, StringType()) for name in (dimension, timestamp, measure, _CORRUPT_RECORD_COLUMN)]
    )
    parsed = sf.from_json(
        sf.col(RAW_COLUMN), json_schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT_RECORD_COLUMN}
    )
    records = raw_df.select(sf.col(RAW_COLUMN), parsed.alias(_PARSED_COLUMN))
    field = {name: sf.col(f"{_PARSED_COLUMN}.`{name}`") for name in (dimension, timestamp, measure)}
    event_time = sf.when(
        field[timestamp].rlike(_DATE_TIME_PATTERN), sf.expr(f"try_cast(`{_PARSED_COLUMN}`.`{timestamp}` AS TIMESTAMP)")
    )
    measure_value = sf.expr(f"try_cast(trim(`{_PARSED_COLUMN}`.`{measure}`) AS DOUBLE)")
    measure_is_number = measure_value.isNotNull() & ~sf.isnan(measure_value) & (sf.abs(measure_value) != float("inf"))
    reason = (
        sf.when(
            sf.col(_PARSED_COLUMN).isNull() | sf.col(f"{_PARSED_COLUMN}.{_CORRUPT_RECORD_COLUMN}").isNotNull(),
            sf.lit(INVALID_JSON),
        )
        .when(_is_blank(field[dimension]), sf.lit(f"missing field {dimension}"))
        .when(_is_blank(field[timestamp]), sf.lit(f"missing field {timestamp}"))
        .when(_is_blank(field[measure]), sf.lit(f"missing field {measure}"))
        .when(event_time.isNull(), sf.lit(UNPARSEABLE_TIMESTAMP))
        .when(~measure_is_number, sf.lit(f"non-numeric {measure}"))
    )
    return records.select(
        # Only quarantined rows need their text: dropping it from good rows keeps the cached batch small.
        sf.when(reason.isNotNull(), sf.col(RAW_COLUMN)).alias(RAW_COLUMN),
        reason.alias(_REASON_COLUMN),
        field[dimension].alias(dimension),
        event_time.alias(timestamp),
        measure_value.alias(measure),
    )


def split_batch(raw_df: DataFrame, settings: StreamSettings, batch_id: int | None = None) -> BatchSplit:
    """Split one batch of raw records (a string column ``raw``) into good and quarantined rows.

    The classification is cached because both outputs read it; ``release()`` the result after writing.
    """
    classified = _classify(raw_df, settings).cache()
    interval_seconds = settings.frequency_minutes * 60
    event_time = sf.col(settings.timestamp_column)
    interval_start = sf.timestamp_seconds(sf.floor(event_time.cast("long") / interval_seconds) * interval_seconds)
    good = classified.where(sf.col(_REASON_COLUMN).isNull()).select(
        sf.col(settings.dimension_column),
        sf.date_format(event_time, TIMESTAMP_OUTPUT_FORMAT).alias(settings.timestamp_column),
        sf.col(settings.measure_column),
        sf.date_format(interval_start, "yyyy-MM-dd").alias(INTERVAL_DATE_COLUMN),
        sf.date_format(interval_start, "HHmm").alias(INTERVAL_HHMM_COLUMN),
    )
    quarantine = classified.where(sf.col(_REASON_COLUMN).isNotNull()).select(
        sf.col(RAW_COLUMN),
        sf.col(_REASON_COLUMN),
        sf.lit(batch_id).cast("long").alias("batch_id"),
        sf.current_timestamp().alias("quarantined_at"),
    )
    return BatchSplit(good=good, quarantine=quarantine, classified=classified)


def _whole_numbers_without_fraction(frame: DataFrame) -> DataFrame:
    """Double columns as text, whole values without ``.0`` (98, not 98.0); others as Spark writes them."""
    columns = []
    for column in frame.schema.fields:
        value = sf.col(f"`{column.name}`")
        if isinstance(column.dataType, DoubleType):
            # Below 2^53 every whole double is exact as a long.
            is_whole = (value == sf.floor(value)) & (sf.abs(value) < 2**53)
            value = sf.when(is_whole, value.cast("long").cast("string")).otherwise(value.cast("string"))
        columns.append(value.alias(column.name))
    return frame.select(*columns)


def _write_good(good_df: DataFrame, output_uri: str) -> None:
    (
        # One file per interval per batch instead of one per interval per input partition.
        _whole_numbers_without_fraction(good_df)
        .repartition(INTERVAL_DATE_COLUMN, INTERVAL_HHMM_COLUMN)
        .write.mode("append")
        .partitionBy(INTERVAL_DATE_COLUMN, INTERVAL_HHMM_COLUMN)
        .option("header", True)
        .csv(output_uri)
    )


def _write_quarantine(quarantine_df: DataFrame, quarantine_uri: str) -> None:
    (
        quarantine_df.withColumn(INGEST_DATE_COLUMN, sf.date_format("quarantined_at", "yyyy-MM-dd"))
        .coalesce(1)  # bad records are few; one file per batch and day
        .write.mode("append")
        .partitionBy(INGEST_DATE_COLUMN)
        .option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
        .json(quarantine_uri)
    )


def write_batch(good_df: DataFrame, quarantine_df: DataFrame, output_uri: str, quarantine_uri: str) -> None:
    """Append good rows as interval-partitioned CSV (with header) and quarantined rows as dated JSON lines."""
    _write_good(good_df, output_uri)
    _write_quarantine(quarantine_df, quarantine_uri)


def process_batch(
    raw_df: DataFrame,
    batch_id: int,
    settings: StreamSettings,
    output_uri: str,
    quarantine_uri: str,
) -> BatchCounts:
    """Split and write one batch; bad records are quarantined, never raised. Empty batches cost one probe."""
    if raw_df.isEmpty():
        return BatchCounts(batch_id=batch_id, good=0, quarantined=0, skipped_empty=True)
    batch_split = split_batch(raw_df, settings, batch_id)
    try:
        is_good = sf.col(_REASON_COLUMN).isNull().alias("is_good")
        count_rows = batch_split.classified.groupBy(is_good).count().collect()
        counts = {bool(row["is_good"]): int(row["count"]) for row in count_rows}
        good, quarantined = counts.get(True, 0), counts.get(False, 0)
        # Writing only a non-empty side saves a Spark job per batch.
        if good:
            _write_good(batch_split.good, output_uri)
        if quarantined:
            _write_quarantine(batch_split.quarantine, quarantine_uri)
    finally:
        batch_split.release()
    return BatchCounts(batch_id=batch_id, good=good, quarantined=quarantined)


def _optional_argument(argv: Sequence[str], name: str, default: str) -> str:
    """Value of ``--name`` if given (as ``--name value`` or ``--name=value``), else the default."""
    flag = f"--{name}"
    for position, token in enumerate(argv):
        if token == flag and position + 1 < len(argv):
            return argv[position + 1]
        if token.startswith(flag + "="):
            return token[len(flag) + 1 :]
    return default


def main(argv: Sequence[str] | None = None) -> None:
    # Glue-only modules: imported here so the module imports (and tests run) without awsglue.
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    job_argv = list(argv if argv is not None else sys.argv)
    required = [
        "JOB_NAME",
        "database_name",
        "table_name",
        "output_uri",
        "quarantine_uri",
        "checkpoint_uri",
        "window_size_seconds",
        "frequency_minutes",
    ]
    args = getResolvedOptions(job_argv, required)
    settings = StreamSettings(
        frequency_minutes=int(args["frequency_minutes"]),
        dimension_column=_optional_argument(job_argv, "dimension_column", "marketplace"),
        timestamp_column=_optional_argument(job_argv, "timestamp_column", "event_time"),
        measure_column=_optional_argument(job_argv, "measure_column", "views"),
    )
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    configure_spark(spark)
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    logger = glue_context.get_logger()

    source = glue_context.create_data_frame.from_catalog(
        database=args["database_name"],
        table_name=args["table_name"],
        additional_options={
            "startingPosition": "TRIM_HORIZON",
            "inferSchema": "false",
            # Raw record text in one column (see the module docstring); these override the table's values.
            "classification": "csv",
            "delimiter": RAW_RECORD_DELIMITER,
        },
    )

    def handle_batch(batch: Any, batch_id: int) -> None:
        counts = process_batch(raw_records(batch), batch_id, settings, args["output_uri"], args["quarantine_uri"])
        logger.info(f"batch {counts.batch_id}: {counts.good} good, {counts.quarantined} quarantined")

    glue_context.forEachBatch(
        frame=source,
        batch_function=handle_batch,
        options={
            "windowSize": f"{int(args['window_size_seconds'])} seconds",
            "checkpointLocation": args["checkpoint_uri"],
        },
    )
    job.commit()


if __name__ == "__main__":
    main()
