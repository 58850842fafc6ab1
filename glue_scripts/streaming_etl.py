"""Streaming metrics ETL (Glue 5.0, ``gluestreaming``): Kinesis JSON events -> interval-partitioned CSV on S3.

Events are JSON objects such as ``{"platform": "web", "marketplace": "US", "event_time": "2026-11-25 19:18:28",
"views": 12, "revenue": 34.5}``; ``event_time`` is ``yyyy-MM-dd HH:mm:ss`` in UTC or ISO-8601
(``2026-11-25T19:18:28Z``, an offset or fractional seconds are accepted and converted to UTC).

Job arguments: ``--source_stream_arn``, ``--starting_position``, ``--output_uri``, ``--quarantine_uri``,
``--checkpoint_uri``, ``--window_size_seconds``, ``--frequency_minutes`` (5 or 10; any divisor of 60 works),
``--batch_max_retries``, ``--dimensions`` and ``--measures`` (each a comma-separated list of field names, in the
metric set's order: ``platform,marketplace`` and ``views,revenue`` by default), and optionally ``--timestamp_column``
(default ``event_time``). The job keeps exactly those fields; how a measure is aggregated is the detector's business.

The source (:func:`kinesis_connection_options`)
-----------------------------------------------
The job reads the stream with ``create_data_frame.from_options(connection_type="kinesis", ...)`` and the
connection options the Glue guide documents for Kinesis; the stream comes from a job argument, so an existing
stream is a setting, not a code change. Glue parses each record by its ``classification`` (``json`` here) with the
DDL ``schema`` we give it (:func:`source_schema`): every kept field as a STRING, so a number, a quoted number or a
nested object all arrive as text and the checks below decide what is wrong, plus Spark's corrupt-record column
``_corrupt_record``: in Spark's PERMISSIVE mode a record that is not a JSON object arrives in that column byte for
byte, with every other field NULL. None of Glue's documented Kinesis classifications hands a job the raw bytes of
a well-formed record; for a JSON object only its fields arrive.

Per micro-batch (``forEachBatch``)
----------------------------------
:func:`split_batch` classifies every record of the batch (no Python UDFs) into

* good rows: the timestamp (``yyyy-MM-dd HH:mm:ss`` UTC), the dimensions (text, in their configured order) and
  the measures (double, in their configured order) plus ``intvl_date`` (``YYYY-MM-DD``) and ``intvl_hhmm``
  (``HHMM``), the START of the record's interval, the event time floored to ``frequency_minutes`` (19:18:28 ->
  19:15 at 5 minutes, 19:10 at 10). A late record lands in the interval of its own event time, whatever the batch
  it arrives in.
* quarantined rows: ``raw`` (the record text: exact for a malformed record, the parsed fields re-encoded as JSON
  otherwise; ``raw_complete`` says which), ``raw_base64`` (the bytes of ``raw``), ``reason`` (``invalid JSON``,
  ``empty record or no known field``, ``missing field <name>``, ``not valid UTF-8``, ``unparseable timestamp`` or
  ``non-numeric <measure>``; the first that applies, dimensions before the timestamp before the measures, each
  group in configured order) and ``quarantined_at``; the batch is the partition.

One rule for every configured field: a record is good only if it has the timestamp, every dimension (non-blank)
and every measure as a finite number. A record missing any of them, or with any measure that is not a number,
is quarantined whole (not written with a blank cell), so the interval CSVs never hold blank or non-numeric cells
and every good row counts for every measure.

Exactly once (:func:`write_batch`): every batch writes under its own ``batch_id=<12 digits>`` partition and
overwrites only that partition ("dynamic" partition overwrite), so a batch that Glue retries
(``batchMaxRetries``) or replays from the checkpoint after a restart replaces its own files instead of adding
them again::

    output_uri/intvl_date=YYYY-MM-DD/intvl_hhmm=HHMM/batch_id=000000000042/part-*.csv  (header: time,dims,measures)
    quarantine_uri/batch_id=000000000042/part-*.json

Spark's Structured Streaming guide (foreachBatch): "By default, foreachBatch provides only at-least-once write
guarantees. However, you can use the batchId provided to the function as way to deduplicate the output and get an
exactly-once guarantee." A replayed batch has the same id and the same records (a batch's offsets are logged
before it runs). Whole measures are written as 98, not 98.0. :func:`process_batch` ties the pieces together
and never raises because of a record's content.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import DoubleType

CORRUPT_RECORD_COLUMN = "_corrupt_record"
INTERVAL_DATE_COLUMN = "intvl_date"
INTERVAL_HHMM_COLUMN = "intvl_hhmm"
BATCH_ID_COLUMN = "batch_id"
TIMESTAMP_OUTPUT_FORMAT = "yyyy-MM-dd HH:mm:ss"
INVALID_JSON = "invalid JSON"
EMPTY_OR_UNKNOWN = "empty record or no known field"
NOT_UTF8 = "not valid UTF-8"
UNPARSEABLE_TIMESTAMP = "unparseable timestamp"
# What a decoder puts where a byte sequence is not UTF-8 (U+FFFD REPLACEMENT CHARACTER).
REPLACEMENT_CHARACTER = "\ufffd"
_REASON_COLUMN = "reason"
_RAW_COLUMN = "raw"
_BATCH_ID_DIGITS = 12
# A date and a time are required before Spark's lenient timestamp cast, which would also accept "2026".
_DATE_TIME_PATTERN = r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"


@dataclass(frozen=True)
class StreamSettings:
    """Which JSON fields are the event time, the dimensions and the measures, and the interval length."""

    frequency_minutes: int = 5
    dimensions: tuple[str, ...] = ("platform", "marketplace")
    measures: tuple[str, ...] = ("views", "revenue")
    timestamp_column: str = "event_time"

    def __post_init__(self) -> None:
        # Intervals must tile the hour so that HHMM names the same boundaries every hour.
        if self.frequency_minutes < 1 or 60 % self.frequency_minutes != 0:
            raise ValueError(f"frequency_minutes must divide 60 (5 or 10), got {self.frequency_minutes}")
        if not self.dimensions or not self.measures:
            raise ValueError(
                f"at least one dimension and one measure are needed, got {self.dimensions} and {self.measures}"
            )
        names = list(self.fields)
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"timestamp, dimension and measure columns must be distinct names, got {names}")
        reserved = {_RAW_COLUMN, INTERVAL_DATE_COLUMN, INTERVAL_HHMM_COLUMN, BATCH_ID_COLUMN, CORRUPT_RECORD_COLUMN}
        if reserved & set(names):
            raise ValueError(f"column names {sorted(reserved & set(names))} are reserved by the job")
        if any("`" in name or "," in name or name != name.strip() for name in names):
            raise ValueError(f"column names may not contain backticks, commas or surrounding blanks, got {names}")

    @property
    def fields(self) -> tuple[str, ...]:
        """Every kept field, in the CSV header's order: timestamp, dimensions, measures."""
        return (self.timestamp_column, *self.dimensions, *self.measures)


def column_list(text: str, argument: str) -> tuple[str, ...]:
    """A job argument such as ``--dimensions platform,marketplace`` -> ``("platform", "marketplace")``."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise ValueError(f"--{argument} must be a comma-separated list of field names, got {text!r}")
    return names


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


def source_schema(settings: StreamSettings) -> str:
    """The DDL schema Glue parses each Kinesis record with: the kept fields as text, and the corrupt-record column.

    Spark's JSON data source, PERMISSIVE mode: "when it meets a corrupted record, puts the malformed string into a
    field configured by columnNameOfCorruptRecord ... To keep corrupt records, an user can set a string type field
    named columnNameOfCorruptRecord in an user-defined schema" (the default name is ``_corrupt_record``).
    """
    return ", ".join(f"`{name}` STRING" for name in (*settings.fields, CORRUPT_RECORD_COLUMN))


def kinesis_connection_options(
    stream_arn: str, settings: StreamSettings, starting_position: str = "TRIM_HORIZON"
) -> dict[str, str]:
    """Connection options of Glue's Kinesis source, each one from the Glue 5.0 guide.

    AWS Glue guide, "Kinesis connections" > "Kinesis connection option reference":

    - ``"streamARN"`` (Required) Used for Read/Write. The ARN of the Kinesis data stream.
    - ``"classification"`` (Required for read) Used for Read. The file format used by the data in the record.
      Required unless provided through the Data Catalog.
    - ``"startingPosition"``: (Optional) ... The possible values are "latest", "trim_horizon", "earliest", or a
      Timestamp string in UTC format ... The default value is "latest".
    - ``"inferSchema"``: (Optional) ... The default value is 'false'.
    - ``"schema"``: (Required when inferSchema set to false) ... If the classification is not avro the provided
      schema must be in the DDL schema format.
    - ``"avoidEmptyBatches"``: (Optional) Avoids creating an empty microbatch job by checking for unread data in
      the Kinesis data stream before the batch is started.
    - ``"emitConsumerLagMetrics"``: (Optional) ... for each batch, it will emit the metrics for the duration
      between the oldest record received by the stream and the time it arrives in AWS Glue to CloudWatch. The
      metric's name is "glue.driver.streaming.maxConsumerLagInMs" ... supported in AWS Glue version 4.0 or later.

    The starting position only matters for the first run: later runs continue from the checkpoint.
    """
    return {
        "streamARN": stream_arn,
        "classification": "json",
        "startingPosition": starting_position,
        "inferSchema": "false",
        "schema": source_schema(settings),
        "avoidEmptyBatches": "true",
        "emitConsumerLagMetrics": "true",
    }


def configure_spark(spark: SparkSession) -> None:
    """Session settings for the per-batch work; the benchmark calls this too."""
    # Intervals and formatted timestamps are UTC whatever the cluster's default zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    # A micro-batch is at most a few hundred thousand small records: one shuffle partition per core is
    # plenty for the repartition by interval, where the default 200 would mostly schedule empty tasks.
    spark.conf.set("spark.sql.shuffle.partitions", str(max(1, spark.sparkContext.defaultParallelism)))


def format_batch_id(batch_id: int) -> str:
    """Zero-padded, so batch partitions sort in processing order."""
    if batch_id < 0:
        raise ValueError(f"batch ids are not negative, got {batch_id}")
    return f"{batch_id:0{_BATCH_ID_DIGITS}d}"


def _known_columns(batch: DataFrame, settings: StreamSettings) -> DataFrame:
    """The kept fields and the corrupt-record column as text; one a source did not produce reads as NULL."""
    return batch.select(
        *[
            (sf.col(f"`{name}`").cast("string") if name in batch.columns else sf.lit(None).cast("string")).alias(name)
            for name in (*settings.fields, CORRUPT_RECORD_COLUMN)
        ]
    )


def _is_blank(column: Column) -> Column:
    return column.isNull() | (sf.trim(column) == "")


def _classify(batch: DataFrame, settings: StreamSettings) -> DataFrame:
    """Every record with its fields and a ``reason`` (NULL when the record is good)."""
    timestamp = settings.timestamp_column
    records = _known_columns(batch, settings)
    field = {name: sf.col(f"`{name}`") for name in settings.fields}
    corrupt = sf.col(CORRUPT_RECORD_COLUMN)
    event_time = sf.when(field[timestamp].rlike(_DATE_TIME_PATTERN), sf.expr(f"try_cast(`{timestamp}` AS TIMESTAMP)"))
    measure_value = {name: sf.expr(f"try_cast(trim(`{name}`) AS DOUBLE)") for name in settings.measures}
    not_utf8 = sf.lit(False)
    for column in field.values():
        not_utf8 = not_utf8 | sf.coalesce(sf.instr(column, REPLACEMENT_CHARACTER) > 0, sf.lit(False))
    no_known_field = sf.lit(True)
    for column in field.values():
        no_known_field = no_known_field & column.isNull()
    # The first reason that applies: dimensions, then the timestamp, then the measures, each in config order.
    reason = sf.when(corrupt.isNotNull(), sf.lit(INVALID_JSON)).when(no_known_field, sf.lit(EMPTY_OR_UNKNOWN))
    for name in (*settings.dimensions, timestamp, *settings.measures):
        reason = reason.when(_is_blank(field[name]), sf.lit(f"missing field {name}"))
    reason = reason.when(not_utf8, sf.lit(NOT_UTF8)).when(event_time.isNull(), sf.lit(UNPARSEABLE_TIMESTAMP))
    for name, value in measure_value.items():
        is_number = value.isNotNull() & ~sf.isnan(value) & (sf.abs(value) != float("inf"))
        reason = reason.when(~is_number, sf.lit(f"non-numeric {name}"))
    # A malformed record's own bytes; otherwise the fields we have, re-encoded (the rest of the object is gone).
    raw = sf.coalesce(corrupt, sf.to_json(sf.struct(*[field[name] for name in settings.fields])))
    return records.select(
        # Only quarantined rows need their text: dropping it from good rows keeps the cached batch small.
        sf.when(reason.isNotNull(), raw).alias(_RAW_COLUMN),
        sf.when(reason.isNotNull(), corrupt.isNotNull()).alias("raw_complete"),
        reason.alias(_REASON_COLUMN),
        event_time.alias(timestamp),
        *[field[name].alias(name) for name in settings.dimensions],
        *[value.alias(name) for name, value in measure_value.items()],
    )


def split_batch(batch: DataFrame, settings: StreamSettings, batch_id: int) -> BatchSplit:
    """Split one batch, as Glue's Kinesis source delivers it, into good and quarantined rows.

    The classification is cached because both outputs read it; ``release()`` the result after writing.
    """
    classified = _classify(batch, settings).cache()
    interval_seconds = settings.frequency_minutes * 60
    event_time = sf.col(settings.timestamp_column)
    interval_start = sf.timestamp_seconds(sf.floor(event_time.cast("long") / interval_seconds) * interval_seconds)
    # The CSV header's order: timestamp, dimensions, measures (I14 contract).
    good = classified.where(sf.col(_REASON_COLUMN).isNull()).select(
        sf.date_format(event_time, TIMESTAMP_OUTPUT_FORMAT).alias(settings.timestamp_column),
        *[sf.col(f"`{name}`") for name in settings.dimensions],
        *[sf.col(f"`{name}`") for name in settings.measures],
        sf.date_format(interval_start, "yyyy-MM-dd").alias(INTERVAL_DATE_COLUMN),
        sf.date_format(interval_start, "HHmm").alias(INTERVAL_HHMM_COLUMN),
        sf.lit(format_batch_id(batch_id)).alias(BATCH_ID_COLUMN),
    )
    quarantine = classified.where(sf.col(_REASON_COLUMN).isNotNull()).select(
        sf.col(_RAW_COLUMN),
        # Spark's base64 may break lines every 76 characters (MIME); one unbroken string is easier to decode.
        sf.translate(sf.base64(sf.col(_RAW_COLUMN).cast("binary")), "\r\n", "").alias("raw_base64"),
        sf.col("raw_complete"),
        sf.col(_REASON_COLUMN),
        sf.current_timestamp().alias("quarantined_at"),
        sf.lit(format_batch_id(batch_id)).alias(BATCH_ID_COLUMN),
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


def _overwrite_own_partitions(frame: DataFrame, *partition_columns: str) -> Any:
    """A writer that replaces only the partitions this frame writes to (Spark's dynamic partition overwrite).

    Spark: "partitionOverwriteMode ... dynamic: only overwrite those partitions that have data written into it at
    runtime"; as a write option it wins over spark.sql.sources.partitionOverwriteMode.
    """
    return (
        frame.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(*partition_columns)
    )


def _write_good(good_df: DataFrame, output_uri: str) -> None:
    # One file per interval per batch instead of one per interval per input partition.
    writer = _overwrite_own_partitions(
        _whole_numbers_without_fraction(good_df).repartition(INTERVAL_DATE_COLUMN, INTERVAL_HHMM_COLUMN),
        INTERVAL_DATE_COLUMN,
        INTERVAL_HHMM_COLUMN,
        BATCH_ID_COLUMN,
    )
    # RFC 4180 quoting (a quote inside a value is doubled), which the detector's csv module reads back exactly;
    # Spark's default escape character is a backslash, which it would not.
    writer.option("header", True).option("escape", '"').csv(output_uri)


def _write_quarantine(quarantine_df: DataFrame, quarantine_uri: str) -> None:
    writer = _overwrite_own_partitions(quarantine_df.coalesce(1), BATCH_ID_COLUMN)  # bad records are few
    writer.option("timestampFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").json(quarantine_uri)


def write_batch(good_df: DataFrame, quarantine_df: DataFrame, output_uri: str, quarantine_uri: str) -> None:
    """Write good rows as interval CSV (with header) and quarantined rows as JSON lines, each batch in its own
    ``batch_id=`` partition, replacing whatever an earlier attempt of the same batch wrote there."""
    _write_good(good_df, output_uri)
    _write_quarantine(quarantine_df, quarantine_uri)


def process_batch(
    batch: DataFrame,
    batch_id: int,
    settings: StreamSettings,
    output_uri: str,
    quarantine_uri: str,
) -> BatchCounts:
    """Split and write one batch; bad records are quarantined, never raised. Empty batches cost one probe.

    Running the same batch again (same id, same records) leaves exactly the files of one run.
    """
    batch_split = split_batch(batch, settings, batch_id)
    try:
        # The cache is filled by the first action: each record is read from the source once.
        if batch_split.classified.isEmpty():
            return BatchCounts(batch_id=batch_id, good=0, quarantined=0, skipped_empty=True)
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


def for_each_batch_options(window_size_seconds: int, checkpoint_uri: str, batch_max_retries: int) -> dict[str, str]:
    """GlueContext.forEachBatch options (AWS Glue guide, GlueContext class, forEachBatch):

    - ``windowSize``: The amount of time to spend processing each batch.
    - ``checkpointLocation``: The location where checkpoints are stored for the streaming ETL job.
    - ``batchMaxRetries``: The maximum number of times to retry the batch if it fails. The default value is 3.
      This option is only configurable for Glue version 2.0 and above.
    """
    return {
        "windowSize": f"{int(window_size_seconds)} seconds",
        "checkpointLocation": checkpoint_uri,
        "batchMaxRetries": str(int(batch_max_retries)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    # Glue-only modules: imported here so the module imports (and tests run) without awsglue.
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    job_argv = list(argv if argv is not None else sys.argv)
    required = [
        "JOB_NAME",
        "source_stream_arn",
        "starting_position",
        "output_uri",
        "quarantine_uri",
        "checkpoint_uri",
        "window_size_seconds",
        "frequency_minutes",
        "batch_max_retries",
        "dimensions",
        "measures",
    ]
    args = getResolvedOptions(job_argv, required)
    settings = StreamSettings(
        frequency_minutes=int(args["frequency_minutes"]),
        dimensions=column_list(args["dimensions"], "dimensions"),
        measures=column_list(args["measures"], "measures"),
        timestamp_column=_optional_argument(job_argv, "timestamp_column", "event_time"),
    )
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    configure_spark(spark)
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    logger = glue_context.get_logger()

    source = glue_context.create_data_frame.from_options(
        connection_type="kinesis",
        connection_options=kinesis_connection_options(
            args["source_stream_arn"], settings, args["starting_position"]
        ),
        transformation_ctx="kinesis_source",
    )

    def handle_batch(batch: Any, batch_id: int) -> None:
        counts = process_batch(batch, batch_id, settings, args["output_uri"], args["quarantine_uri"])
        logger.info(f"batch {counts.batch_id}: {counts.good} good, {counts.quarantined} quarantined")

    glue_context.forEachBatch(
        frame=source,
        batch_function=handle_batch,
        options=for_each_batch_options(
            int(args["window_size_seconds"]), args["checkpoint_uri"], int(args["batch_max_retries"])
        ),
    )
    job.commit()


if __name__ == "__main__":
    main()
