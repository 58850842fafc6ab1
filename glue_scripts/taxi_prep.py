"""Batch prep job (Glue 5.0, ``glueetl``): NYC TLC yellow-taxi trips -> per-half-hour model inputs.

Job arguments: ``--input_uri``, ``--output_uri``. Any other argument (``--callback_token``, Glue's own
``--JOB_NAME`` ...) is ignored. The feature logic lives in ``window_features.py``, which the job is given
as a zip of ``glue_scripts/features/`` with ``--extra-py-files``.

Input: the trip files under ``input_uri`` (s3:// in Glue; a local path or file:// locally), either

* CSV with a header in the TLC yellow layout (``.csv`` or ``.csv.gz``), or
* Parquet as TLC publishes it today (``tpep_pickup_datetime`` a timestamp, ``passenger_count`` a double or a
  long, which may differ from one monthly file to the next).

The format is detected from the file names (files and folders whose name starts with ``_`` or ``.`` are
skipped); a location without data files, or with both formats, fails the run with a message naming it.
Only ``tpep_pickup_datetime`` and ``passenger_count`` are read, with an explicit schema.

Transform: rows with a missing or non-numeric passenger count, or a missing or unparseable pickup time, are
dropped and counted. Passengers are summed per 30-minute window (window start = pickup time floored to :00 or
:30, UTC), the series is made dense between the first and the last window (a window without trips has 0
passengers) and sorted by window start. CSV pickup times are wall-clock strings read as UTC:
:func:`configure_spark` sets the session time zone to UTC.

Features (``window_features.series_features``): what each window was expected to carry given the series'
own weekly (or daily) pattern and level, and how far it is from that, at the window itself, over the hours
around it and over its day, plus level steps, local volatility and the time of day. Outputs under
``output_uri`` (one part file each, overwritten on every run, and nothing else: no ``_SUCCESS`` or other
marker, because SageMaker reads every object under the prefix):

* ``train/``: the feature vectors of every window, headerless CSV (``text/csv;label_size=0`` for RCF).
* ``scoring/``: one JSON object per line and window, in window order::

      {"window_start":"2025-03-18 08:00:00","passengers":212,"expected":468.5,"rcf_input":{"features":[...]}}

  ``rcf_input`` is a record in RCF's documented JSON Lines request format (``{"features": [...]}``); the
  transform passes only it to the model (InputFilter) and joins the score back to the rest.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import (
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

try:  # in this repository the feature module is part of the glue_scripts package
    from glue_scripts.features import window_features
except ModuleNotFoundError:  # in Glue: the zip of glue_scripts/features/ that --extra-py-files puts on the path
    import window_features  # type: ignore[no-redef]

WINDOW_SECONDS = 30 * 60
# Scoring record fields (JSON Lines). The pipeline's transform filters on them and pipeline_evaluation reads
# them back: keep the three in step (tests/unit/pipeline checks they agree).
SCORING_WINDOW_START = "window_start"
SCORING_OBSERVED = "passengers"
SCORING_EXPECTED = "expected"
SCORING_RCF_INPUT = "rcf_input"
RCF_FEATURES = "features"
PICKUP_COLUMN = "tpep_pickup_datetime"
PASSENGER_COLUMN = "passenger_count"
WINDOW_START_FORMAT = "yyyy-MM-dd HH:mm:ss"
CSV_FORMAT = "csv"
PARQUET_FORMAT = "parquet"

# Parquet physical type of passenger_count -> the Spark type that reads it. Spark 3.5 cannot read an INT64
# column through a DoubleType schema, so files are grouped by this type and read with a matching schema.
_PARQUET_PASSENGER_TYPES: dict[str, DataType] = {
    "INT32": IntegerType(),
    "INT64": LongType(),
    "FLOAT": FloatType(),
    "DOUBLE": DoubleType(),
    "BINARY": StringType(),
}


class InfoLogger(Protocol):
    """What the job needs from a logger: both ``logging.Logger`` and Glue's log4j logger fit."""

    def info(self, msg: str, /) -> None: ...


class PrepInputError(ValueError):
    """The input location or data cannot produce a training set; the message says why."""


@dataclass(frozen=True)
class TripsInput:
    """Raw trips (``tpep_pickup_datetime``, ``passenger_count``, still untyped for CSV) and their format."""

    trips: DataFrame
    input_format: str
    data_files: tuple[str, ...]


@dataclass(frozen=True)
class WindowSeries:
    """Dense, sorted ``window_start`` (timestamp), ``passengers`` (long) series plus what was read to get it."""

    series: DataFrame
    windows: int
    rows_read: int
    rows_dropped: int


@dataclass(frozen=True)
class PrepResult:
    rows_read: int
    rows_dropped: int
    windows: int
    train_rows: int
    input_format: str
    seasonality: str


def configure_spark(spark: SparkSession) -> None:
    """Session settings the job relies on; the tests and the benchmark call this too."""
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "true")
    # The aggregation shrinks millions of rows to a few thousand windows: one shuffle partition per core
    # is plenty, and the default 200 would only add scheduling overhead.
    parallelism = max(1, spark.sparkContext.defaultParallelism)
    spark.conf.set("spark.sql.shuffle.partitions", str(parallelism))
    # Input splits: at most 128 MB (the default), but small enough that a few hundred MB still gives every
    # core several even splits; otherwise 300 MB of CSV becomes 128+128+44 MB and one core idles at the end.
    spark.conf.set("spark.sql.files.minPartitionNum", str(4 * parallelism))
    # The dense series is built on the driver and handed back through Arrow (see passengers_per_window).
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    # Windows are defined in UTC, and CSV pickup times carry no zone.
    spark.conf.set("spark.sql.session.timeZone", "UTC")


def _jvm(spark: SparkSession) -> Any:
    jvm = spark.sparkContext._jvm
    if jvm is None:  # only after the context has been stopped
        raise RuntimeError("the Spark context has no JVM")
    return jvm


def _hadoop_conf(spark: SparkSession) -> Any:
    return spark.sparkContext._jsc.hadoopConfiguration()


def _is_hidden(relative_path: str) -> bool:
    return any(part.startswith(("_", ".")) for part in relative_path.split("/") if part)


def find_data_files(spark: SparkSession, input_uri: str) -> tuple[str, list[str]]:
    """Return (format, data files) under ``input_uri``, listed with Hadoop's FileSystem (s3:// or local)."""
    jvm = _jvm(spark)
    root = jvm.org.apache.hadoop.fs.Path(input_uri)
    filesystem = root.getFileSystem(_hadoop_conf(spark))
    if not filesystem.exists(root):
        raise PrepInputError(f"no trip data files under {input_uri}: the location does not exist")
    root_prefix = filesystem.makeQualified(root).toString().rstrip("/")
    csv_files: list[str] = []
    parquet_files: list[str] = []
    listing = filesystem.listFiles(root, True)
    while listing.hasNext():
        path = listing.next().getPath().toString()
        if _is_hidden(path[len(root_prefix) :]) or _is_hidden(path.rsplit("/", 1)[-1]):
            continue
        name = path.lower()
        if name.endswith((".csv", ".csv.gz")):
            csv_files.append(path)
        elif name.endswith(".parquet"):
            parquet_files.append(path)
    if csv_files and parquet_files:
        raise PrepInputError(f"both CSV and Parquet trip files under {input_uri}: point the job at one format")
    if not csv_files and not parquet_files:
        raise PrepInputError(f"no trip data files (.csv, .csv.gz or .parquet) under {input_uri}")
    if csv_files:
        return CSV_FORMAT, sorted(csv_files)
    return PARQUET_FORMAT, sorted(parquet_files)


def _csv_header(spark: SparkSession, csv_file: str) -> list[str]:
    """First line of a (possibly gzipped) CSV file, read on the driver without a Spark job."""
    jvm = _jvm(spark)
    conf = _hadoop_conf(spark)
    path = jvm.org.apache.hadoop.fs.Path(csv_file)
    stream = path.getFileSystem(conf).open(path)
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf).getCodec(path)
    if codec is not None:
        stream = codec.createInputStream(stream)
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
    try:
        first_line = reader.readLine()
    finally:
        reader.close()
    if not first_line:
        raise PrepInputError(f"{csv_file} is empty: a TLC CSV file starts with a header line")
    return [name.strip().strip('"').lstrip("\ufeff") for name in first_line.split(",")]


def _read_csv_trips(spark: SparkSession, csv_files: list[str]) -> DataFrame:
    # The schema follows the header of the first file (all strings, so that "abc" can be counted as a bad
    # passenger count instead of failing the read); the CSV reader only parses the two selected columns.
    header = _csv_header(spark, csv_files[0])
    by_lower_name = {name.lower(): name for name in header}
    missing = [name for name in (PICKUP_COLUMN, PASSENGER_COLUMN) if name not in by_lower_name]
    if missing:
        raise PrepInputError(f"{csv_files[0]} has no {', '.join(missing)} column (header: {','.join(header)})")
    schema = StructType([StructField(name, StringType()) for name in header])
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("mode", "PERMISSIVE")
        .csv(csv_files)
        .select(
            sf.col(f"`{by_lower_name[PICKUP_COLUMN]}`").alias(PICKUP_COLUMN),
            sf.col(f"`{by_lower_name[PASSENGER_COLUMN]}`").alias(PASSENGER_COLUMN),
        )
    )


def _parquet_passenger_type(spark: SparkSession, parquet_file: str) -> str:
    """Physical type of passenger_count in one file's footer (driver-side, no Spark job)."""
    jvm = _jvm(spark)
    input_file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(
        jvm.org.apache.hadoop.fs.Path(parquet_file), _hadoop_conf(spark)
    )
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(input_file)
    try:
        file_schema = reader.getFileMetaData().getSchema()
    finally:
        reader.close()
    if not file_schema.containsField(PASSENGER_COLUMN):
        return "DOUBLE"  # read as all-null, so every row of that file is dropped and counted
    column_type = file_schema.getType(PASSENGER_COLUMN)
    if not column_type.isPrimitive():
        raise PrepInputError(f"{parquet_file}: {PASSENGER_COLUMN} is not a number column")
    return str(column_type.asPrimitiveType().getPrimitiveTypeName().name())


def _read_parquet_trips(spark: SparkSession, parquet_files: list[str]) -> DataFrame:
    files_by_type: dict[str, list[str]] = {}
    for parquet_file in parquet_files:
        physical_type = _parquet_passenger_type(spark, parquet_file)
        if physical_type not in _PARQUET_PASSENGER_TYPES:
            raise PrepInputError(f"{parquet_file}: {PASSENGER_COLUMN} has unsupported type {physical_type}")
        files_by_type.setdefault(physical_type, []).append(parquet_file)
    frames = []
    for physical_type, files in sorted(files_by_type.items()):
        schema = StructType(
            [
                # TLC timestamps have no zone (TIMESTAMP_NTZ); reading them as TimestampType keeps the wall
                # clock in a UTC session.
                StructField(PICKUP_COLUMN, TimestampType()),
                StructField(PASSENGER_COLUMN, _PARQUET_PASSENGER_TYPES[physical_type]),
            ]
        )
        frames.append(spark.read.schema(schema).parquet(*files))
    trips = frames[0]
    for frame in frames[1:]:
        trips = trips.unionByName(frame, allowMissingColumns=False)
    return trips


def read_trips(spark: SparkSession, input_uri: str) -> TripsInput:
    """Read ``tpep_pickup_datetime`` and ``passenger_count`` from the CSV or Parquet files under ``input_uri``."""
    input_format, data_files = find_data_files(spark, input_uri)
    read = _read_csv_trips if input_format == CSV_FORMAT else _read_parquet_trips
    trips = read(spark, data_files)
    return TripsInput(trips=trips, input_format=input_format, data_files=tuple(data_files))


def _try_cast(column_name: str, type_name: str) -> Column:
    # try_cast gives NULL for bad values even when ANSI mode is on.
    return sf.expr(f"try_cast(`{column_name}` AS {type_name})")


def clean_trips(trips: DataFrame) -> DataFrame:
    """Typed ``pickup_at`` (timestamp) and ``passengers`` (double), plus ``is_valid``.

    Rows are flagged rather than filtered so that a single aggregation pass both sums the valid rows and
    counts the dropped ones (see :func:`passengers_per_window`); ``.where("is_valid")`` gives the kept rows.
    A row is invalid when the passenger count is missing, non-numeric or NaN, or the pickup time is missing
    or unparseable.
    """
    pickup_at = _try_cast(PICKUP_COLUMN, "TIMESTAMP")
    passengers = _try_cast(PASSENGER_COLUMN, "DOUBLE")
    typed = trips.select(pickup_at.alias("pickup_at"), passengers.alias("passengers"))
    is_valid = sf.col("pickup_at").isNotNull() & sf.col("passengers").isNotNull() & ~sf.isnan("passengers")
    return typed.withColumn("is_valid", sf.coalesce(is_valid, sf.lit(False)))


def _driver_rows_as_frame(spark: SparkSession, rows: list[tuple[int, int]], names: list[str]) -> DataFrame:
    """A DataFrame of a few thousand long-valued rows held by the driver.

    Through pandas and Arrow when pandas is there (Glue ships it): the JVM reads the Arrow batches itself,
    whereas plain Python rows need a Python worker on every action, which costs more than the job.
    """
    schema = ", ".join(f"{name} long" for name in names)
    try:
        import pandas as pd
    except ImportError:
        return spark.createDataFrame(rows, schema)
    with warnings.catch_warnings():
        # PySpark 3.5's Arrow conversion calls pandas APIs that newer pandas deprecates; nothing to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        return spark.createDataFrame(pd.DataFrame(rows, columns=names, dtype="int64"), schema)


def passengers_per_window(cleaned: DataFrame) -> WindowSeries:
    """Sum passengers per 30-minute window, dense from the first to the last window, sorted by window start.

    One Spark job: the input is aggregated where it lies (partial sums per partition, then a small shuffle,
    so the big input is never moved to one partition) and the per-window result, at most one row per half
    hour plus one, comes back to the driver. Invalid rows fall in a NULL group, which is how they are
    counted in the same pass. The dense series is then built on the driver from those few rows, which saves
    the several small Spark jobs (statistics, range join, checkpoint) that building it in Spark would cost.
    """
    spark = cleaned.sparkSession
    window_bucket = sf.floor(sf.col("pickup_at").cast("long") / WINDOW_SECONDS) * WINDOW_SECONDS
    per_window = (
        cleaned.groupBy(sf.when(sf.col("is_valid"), window_bucket).alias("window_bucket"))
        .agg(sf.sum("passengers").alias("passengers"), sf.count(sf.lit(1)).alias("trips"))
        # Rounded by Spark, so the counts are exactly what a Spark-side series would hold.
        .select("window_bucket", sf.round("passengers").cast("long").alias("passengers"), "trips")
        .collect()
    )
    rows_read = sum(int(row["trips"]) for row in per_window)
    rows_dropped = sum(int(row["trips"]) for row in per_window if row["window_bucket"] is None)
    passengers_by_bucket = {
        int(row["window_bucket"]): int(row["passengers"]) for row in per_window if row["window_bucket"] is not None
    }
    if not passengers_by_bucket:
        empty = spark.createDataFrame([], "window_start timestamp, passengers long")
        return WindowSeries(series=empty, windows=0, rows_read=rows_read, rows_dropped=rows_dropped)
    first_bucket, last_bucket = min(passengers_by_bucket), max(passengers_by_bucket)
    dense = [
        (bucket, passengers_by_bucket.get(bucket, 0))
        for bucket in range(first_bucket, last_bucket + WINDOW_SECONDS, WINDOW_SECONDS)
    ]
    series = (
        _driver_rows_as_frame(spark, dense, ["window_bucket", "passengers"])
        .select(sf.timestamp_seconds("window_bucket").alias("window_start"), "passengers")
        .coalesce(1)  # already in time order; one partition keeps that order for whoever reads it
    )
    return WindowSeries(series=series, windows=len(dense), rows_read=rows_read, rows_dropped=rows_dropped)


@dataclass(frozen=True)
class ModelInputs:
    """The model's two inputs, one row per window, built from the dense series (see ``window_features``).

    ``train``: the feature vectors (``FEATURE_DIM`` doubles). ``scoring``: ``window_start`` (string),
    ``passengers``, ``expected`` and ``rcf_input`` = ``{"features": [...]}``, the record RCF scores.
    """

    train: DataFrame
    scoring: DataFrame
    windows: int
    seasonality: str


def model_inputs(series: DataFrame) -> ModelInputs:
    """Features of every window of the dense, sorted series, computed on the driver with ``window_features``.

    The series holds at most one row per half hour, so it is collected (as epoch seconds, which does not
    depend on the driver's time zone) and handed back to Spark through Arrow for writing.
    """
    rows = series.select(sf.col("window_start").cast("long").alias("epoch"), "passengers").orderBy("epoch").collect()
    if not rows:
        raise PrepInputError("no half-hour windows with trips to score")
    epoch_seconds = [int(row["epoch"]) for row in rows]
    passengers = [int(row["passengers"]) for row in rows]
    features = window_features.series_features(epoch_seconds, passengers)
    feature_columns = [f"f{index}" for index in range(window_features.FEATURE_DIM)]
    table = _feature_frame(series.sparkSession, epoch_seconds, passengers, features, feature_columns)
    # Six decimals keep the files small; the features are differences of a few units.
    vector = [sf.round(name, 6).alias(name) for name in feature_columns]
    train = table.select(*vector)
    scoring = table.select(
        sf.date_format(sf.timestamp_seconds("epoch"), WINDOW_START_FORMAT).alias(SCORING_WINDOW_START),
        sf.col("passengers").alias(SCORING_OBSERVED),
        sf.round("expected", 3).alias(SCORING_EXPECTED),
        sf.struct(sf.array(*vector).alias(RCF_FEATURES)).alias(SCORING_RCF_INPUT),
    )
    return ModelInputs(train=train, scoring=scoring, windows=len(rows), seasonality=features.seasonality)


def _feature_frame(
    spark: SparkSession,
    epoch_seconds: list[int],
    passengers: list[int],
    features: window_features.SeriesFeatures,
    feature_columns: list[str],
) -> DataFrame:
    names = ["epoch", "passengers", "expected", *feature_columns]
    types = ["epoch long", "passengers long", "expected double"] + [f"{name} double" for name in feature_columns]
    schema = ", ".join(types)
    columns: list[Any] = [epoch_seconds, passengers, features.expected.tolist()]
    columns += [features.vectors[:, index].tolist() for index in range(len(feature_columns))]
    try:
        import pandas as pd
    except ImportError:
        return spark.createDataFrame(list(zip(*columns, strict=True)), schema).coalesce(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
        return spark.createDataFrame(frame, schema).coalesce(1)


def _with_trailing_slash(uri: str) -> str:
    return uri.rstrip("/") + "/"


def is_data_object(name: str) -> bool:
    """Spark's data files are ``part-*``; ``_SUCCESS``, ``_temporary``, ``.crc`` and the like are not."""
    return not name.startswith(("_", ".")) and not name.endswith(("_$folder$", ".crc"))


def remove_non_data_objects(spark: SparkSession, prefix_uri: str) -> list[str]:
    """Delete every object under ``prefix_uri`` that is not a data file; return what was deleted.

    SageMaker reads every object under an ``S3Prefix`` input: "If you choose S3Prefix, S3Uri identifies a
    key name prefix. SageMaker uses all objects that match the specified key name prefix" (S3DataSource).
    Markers must therefore not be there. The job asks the committer not to write ``_SUCCESS``
    (``mapreduce.fileoutputcommitter.marksuccessfuljobs=false``); this catches whatever else a file system
    leaves (the local file system writes ``.crc`` checksums next to every file).
    """
    jvm = _jvm(spark)
    root = jvm.org.apache.hadoop.fs.Path(prefix_uri)
    filesystem = root.getFileSystem(_hadoop_conf(spark))
    # A checksummed file system (the local one) hides its .crc files from listings: look underneath it.
    if jvm.org.apache.hadoop.fs.ChecksumFileSystem._java_lang_class.isInstance(filesystem):
        filesystem = filesystem.getRawFileSystem()
    removed: list[str] = []
    if not filesystem.exists(root):
        return removed
    listing = filesystem.listFiles(root, True)
    paths = []
    while listing.hasNext():
        paths.append(listing.next().getPath())
    for path in paths:
        relative = path.toString()[len(filesystem.makeQualified(root).toString().rstrip("/")) :]
        if not all(is_data_object(part) for part in relative.split("/") if part):
            filesystem.delete(path, False)
            removed.append(path.getName())
    return removed


def write_outputs(inputs: ModelInputs, output_uri: str) -> dict[str, list[str]]:
    """Write ``train/`` (headerless CSV) and ``scoring/`` (JSON Lines), one part file each, overwriting.

    Returns the non-data objects removed per prefix (none, unless a file system wrote markers anyway).
    """
    base_uri = _with_trailing_slash(output_uri)
    no_marker = {"mapreduce.fileoutputcommitter.marksuccessfuljobs": "false"}
    inputs.scoring.coalesce(1).write.mode("overwrite").options(**no_marker).json(base_uri + "scoring/")
    inputs.train.coalesce(1).write.mode("overwrite").options(**no_marker).option("header", False).csv(
        base_uri + "train/"
    )
    spark = inputs.train.sparkSession
    return {prefix: remove_non_data_objects(spark, base_uri + prefix) for prefix in ("train/", "scoring/")}


def run_prep(spark: SparkSession, input_uri: str, output_uri: str, logger: InfoLogger) -> PrepResult:
    """The whole job: read, clean, aggregate, compute features, write. Raises PrepInputError on unusable input."""
    trips_input = read_trips(spark, input_uri)
    logger.info(f"reading {len(trips_input.data_files)} {trips_input.input_format} file(s) under {input_uri}")
    windowed = passengers_per_window(clean_trips(trips_input.trips))
    logger.info(
        f"read {windowed.rows_read} trips, dropped {windowed.rows_dropped} with a missing or non-numeric "
        f"passenger count or an unparseable pickup time; {windowed.windows} half-hour windows"
    )
    inputs = model_inputs(windowed.series)
    removed = write_outputs(inputs, output_uri)
    for prefix, names in removed.items():
        if names:
            logger.info(f"removed non-data objects under {prefix}: {', '.join(names)}")
    result = PrepResult(
        rows_read=windowed.rows_read,
        rows_dropped=windowed.rows_dropped,
        windows=windowed.windows,
        train_rows=inputs.windows,
        input_format=trips_input.input_format,
        seasonality=inputs.seasonality,
    )
    logger.info(
        f"wrote {inputs.windows} training vectors ({window_features.FEATURE_DIM} features, {inputs.seasonality} "
        f"pattern) and {inputs.windows} scoring records under {output_uri}: {result}"
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    # Glue-only modules: imported here so the module imports (and tests run) without awsglue.
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    job_argv = list(argv if argv is not None else sys.argv)
    args = getResolvedOptions(job_argv, ["JOB_NAME", "input_uri", "output_uri"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    logger = glue_context.get_logger()
    configure_spark(spark)
    run_prep(spark, args["input_uri"], args["output_uri"], logger)
    job.commit()


if __name__ == "__main__":
    main()
