"""Batch prep job (Glue 5.0, ``glueetl``): NYC TLC yellow-taxi trips -> per-half-hour model inputs.

Job arguments: ``--input_uri``, ``--output_uri``, and optionally (see :func:`input_options_from_arguments`):

* ``--analysis_start`` / ``--analysis_end``: the analysis range, ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM`` (UTC),
  end exclusive. Pickups outside it are dropped and counted. Either end left out comes from the file names
  when every file name carries a ``YYYY-MM`` month (``yellow_tripdata_2024-01.parquet`` -> January 2024; several
  files -> first to last month), else from the bulk of the data (the calendar months holding at least 10 % of
  the busiest month's trips, first to last). Real TLC monthly files hold a few pickups years away from their
  month; without a range they would stretch the dense series over decades.
* ``--max_windows`` (default 35136, two leap years of half hours): a series longer than this fails the run
  with a message saying how long it is and what to set, instead of densifying without bound.

Any other argument (``--callback_token``, Glue's own ``--JOB_NAME`` ...) is ignored. The feature logic lives in
``window_features.py``, which the job is given as a zip of ``glue_scripts/features/`` with ``--extra-py-files``.

Input: the trip files under ``input_uri`` (s3:// in Glue; a local path or file:// locally), either

* CSV with a header in the TLC yellow layout (``.csv`` or ``.csv.gz``), or
* Parquet as TLC publishes it today (``tpep_pickup_datetime`` a timestamp, ``passenger_count`` a double or a
  long, which may differ from one monthly file to the next). Timestamps in milli-, micro- or nanoseconds
  (pandas writes nanoseconds) and INT96 are all read; files are grouped by their footer's types.

The format is detected from the file names (files and folders whose name starts with ``_`` or ``.`` are
skipped; other files that are not trip files are skipped and logged); a location without data files, or with
both formats, fails the run with a message naming it. A file Spark cannot read fails the run with the reason
Spark gives (its innermost cause), naming the file, not with a Java stack trace.
Only ``tpep_pickup_datetime`` and ``passenger_count`` are read, with an explicit schema.

Transform: rows with a missing or non-numeric passenger count, or a missing or unparseable pickup time, are
dropped and counted; so are pickups outside the analysis range. Passengers are summed per 30-minute window
(window start = pickup time floored to :00 or :30, UTC), the series is made dense between the first and the
last window (a window without trips has 0 passengers) and sorted by window start. CSV pickup times are
wall-clock strings read as UTC: :func:`configure_spark` sets the session time zone to UTC.

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

import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
    # Files under the location that are not trip files (not .csv, .csv.gz or .parquet): skipped, and logged.
    ignored_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class WindowSeries:
    """Dense, sorted ``window_start`` (timestamp), ``passengers`` (long) series plus what was read to get it."""

    series: DataFrame
    windows: int
    rows_read: int
    rows_dropped: int
    # Valid pickups outside the analysis range: dropped too, and counted apart from the invalid rows.
    rows_out_of_range: int = 0
    analysis_range: AnalysisRange | None = None


@dataclass(frozen=True)
class PrepResult:
    rows_read: int
    rows_dropped: int
    windows: int
    train_rows: int
    input_format: str
    seasonality: str
    rows_out_of_range: int = 0
    analysis_range: AnalysisRange | None = None


# --- Input options and the analysis range (pure functions: job arguments and file names in, range out) ---

# Two leap years of half hours: a month is ~1,490 windows, a year 17,568.
DEFAULT_MAX_WINDOWS = 2 * 366 * 48
# "The bulk of the data": calendar months holding at least this share of the busiest month's valid trips.
BULK_MONTH_SHARE = 0.10
INPUT_OPTION_NAMES = ("analysis_start", "analysis_end", "max_windows")
# A month in a file name, as TLC names its files: yellow_tripdata_2024-01.parquet.
_MONTH_IN_FILE_NAME = re.compile(r"(?<!\d)((?:19|20)\d\d)-(0[1-9]|1[0-2])(?!\d)")


@dataclass(frozen=True)
class InputOptions:
    """The job arguments about the input; an analysis bound left as None comes from the file names or the data."""

    analysis_start: datetime | None = None
    analysis_end: datetime | None = None
    max_windows: int = DEFAULT_MAX_WINDOWS


@dataclass(frozen=True)
class AnalysisRange:
    """Pickups in [start, end) (naive UTC) are analysed; ``source`` says where the range came from."""

    start: datetime
    end: datetime
    source: str

    @property
    def start_bucket(self) -> int:
        """The first window's start in epoch seconds (the range start floored to a window)."""
        return _epoch_seconds(self.start) // WINDOW_SECONDS * WINDOW_SECONDS

    @property
    def end_bucket(self) -> int:
        """The start of the first window after the range (the end is exclusive)."""
        return -(-_epoch_seconds(self.end) // WINDOW_SECONDS) * WINDOW_SECONDS

    def describe(self) -> str:
        return f"{_format_moment(self.start)}..{_format_moment(self.end)} (from {self.source})"


def _epoch_seconds(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


def _format_moment(moment: datetime) -> str:
    return (
        f"{moment:%Y-%m-%d}" if (moment.hour, moment.minute, moment.second) == (0, 0, 0) else f"{moment:%Y-%m-%d %H:%M}"
    )


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def optional_job_arguments(argv: Sequence[str], names: Sequence[str] = INPUT_OPTION_NAMES) -> dict[str, str]:
    """``--name value`` (or ``--name=value``) pairs for the optional names; Glue passes job arguments so."""
    found: dict[str, str] = {}
    for index, token in enumerate(argv):
        for name in names:
            if token == f"--{name}" and index + 1 < len(argv):
                found[name] = argv[index + 1]
            elif token.startswith(f"--{name}="):
                found[name] = token.split("=", 1)[1]
    return found


def _parse_moment(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PrepInputError(f"--{name} {value!r} is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def input_options_from_arguments(arguments: Mapping[str, str]) -> InputOptions:
    """Validated :class:`InputOptions` from job arguments (keys with or without the leading ``--``)."""
    values = {name.removeprefix("--"): value for name, value in arguments.items() if value not in ("", None)}
    start = _parse_moment("analysis_start", values["analysis_start"]) if "analysis_start" in values else None
    end = _parse_moment("analysis_end", values["analysis_end"]) if "analysis_end" in values else None
    if start is not None and end is not None and start >= end:
        raise PrepInputError(
            f"--analysis_start {_format_moment(start)} is not before --analysis_end {_format_moment(end)} "
            "(the end is exclusive: one month is 2024-01-01 to 2024-02-01)"
        )
    max_windows = DEFAULT_MAX_WINDOWS
    if "max_windows" in values:
        text = values["max_windows"].strip()
        if not text.isdigit() or int(text) < 1:
            raise PrepInputError(f"--max_windows {values['max_windows']!r} must be a whole number of at least 1")
        max_windows = int(text)
    return InputOptions(analysis_start=start, analysis_end=end, max_windows=max_windows)


def range_from_file_names(data_files: Sequence[str]) -> AnalysisRange | None:
    """First to last month named by the files, when every file name carries exactly one ``YYYY-MM``."""
    months: list[tuple[int, int, str]] = []
    for data_file in data_files:
        name = data_file.rstrip("/").rsplit("/", 1)[-1]
        found = _MONTH_IN_FILE_NAME.findall(name)
        if len(found) != 1:
            return None
        months.append((int(found[0][0]), int(found[0][1]), name))
    if not months:
        return None
    first, last = min(months), max(months)
    names = first[2] if first == last else f"{first[2]} to {last[2]}"
    return AnalysisRange(
        _month_start(first[0], first[1]), _month_start(last[0], last[1] + 1), f"the file names: {names}"
    )


def range_from_bulk(trips_by_bucket: Mapping[int, int]) -> AnalysisRange | None:
    """First to last calendar month holding at least BULK_MONTH_SHARE of the busiest month's trips."""
    trips_by_month: Counter[tuple[int, int]] = Counter()
    for bucket, trips in trips_by_bucket.items():
        moment = datetime.fromtimestamp(bucket, UTC)
        trips_by_month[(moment.year, moment.month)] += trips
    if not trips_by_month:
        return None
    busiest = max(trips_by_month.values())
    kept = sorted(month for month, trips in trips_by_month.items() if trips >= BULK_MONTH_SHARE * busiest)
    return AnalysisRange(
        _month_start(*kept[0]),
        _month_start(kept[-1][0], kept[-1][1] + 1),
        f"the bulk of the data: months with at least {BULK_MONTH_SHARE:.0%} of the busiest month's trips",
    )


def choose_analysis_range(options: InputOptions, default: AnalysisRange | None) -> AnalysisRange | None:
    """Job arguments win, bound by bound; the other bound comes from ``default`` (file names or data)."""
    start, end = options.analysis_start, options.analysis_end
    if start is not None and end is not None:
        return AnalysisRange(start, end, "--analysis_start/--analysis_end")
    if default is None:
        return None
    if start is None and end is None:
        return default
    chosen = AnalysisRange(
        start or default.start, end or default.end, f"--analysis_{'start' if start else 'end'} and {default.source}"
    )
    if chosen.start >= chosen.end:
        raise PrepInputError(
            f"the analysis range {chosen.describe()} is empty: set both --analysis_start and --analysis_end"
        )
    return chosen


@dataclass(frozen=True)
class RangePlan:
    """How the analysis range is chosen: job arguments, else the file names, else the bulk of the data."""

    options: InputOptions
    file_range: AnalysisRange | None = None

    def before_reading(self) -> AnalysisRange | None:
        """The range when the arguments or the file names fix it before any data is read."""
        if self.options.analysis_start is not None and self.options.analysis_end is not None:
            return choose_analysis_range(self.options, None)
        return choose_analysis_range(self.options, self.file_range) if self.file_range else None

    def after_reading(self, trips_by_bucket: Mapping[int, int]) -> AnalysisRange | None:
        return self.before_reading() or choose_analysis_range(self.options, range_from_bulk(trips_by_bucket))


def split_by_range(
    per_bucket: Mapping[int, tuple[int, int]], analysis_range: AnalysisRange | None
) -> tuple[dict[int, int], int]:
    """(passengers per bucket inside the range, trips outside it) from ``{bucket: (passengers, trips)}``."""
    if analysis_range is None:
        return {bucket: passengers for bucket, (passengers, _) in per_bucket.items()}, 0
    first, after = analysis_range.start_bucket, analysis_range.end_bucket
    inside = {bucket: passengers for bucket, (passengers, _) in per_bucket.items() if first <= bucket < after}
    outside = sum(trips for bucket, (_, trips) in per_bucket.items() if not first <= bucket < after)
    return inside, outside


def check_window_cap(
    first_bucket: int, last_bucket: int, max_windows: int, analysis_range: AnalysisRange | None
) -> int:
    """The number of windows from first to last; more than ``max_windows`` fails, saying why and what to set."""
    windows = (last_bucket - first_bucket) // WINDOW_SECONDS + 1
    if windows > max_windows:
        first = datetime.fromtimestamp(first_bucket, UTC)
        last = datetime.fromtimestamp(last_bucket, UTC)
        where = f"; analysis range {analysis_range.describe()}" if analysis_range else ""
        raise PrepInputError(
            f"pickups from {first:%Y-%m-%d} to {last:%Y-%m-%d} make {windows:,} half-hour windows, over the cap "
            f"of {max_windows:,}: set --analysis_start/--analysis_end to the period to analyse, or raise "
            f"--max_windows{where}"
        )
    return windows


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


def list_input(spark: SparkSession, input_uri: str) -> tuple[str, list[str], list[str]]:
    """(format, data files, ignored files) under ``input_uri``, listed with Hadoop's FileSystem (s3:// or local).

    Hidden names (``_SUCCESS``, ``.crc``, ``_temporary/``) are skipped silently; any other file that is not a
    trip file (``x.gz``, ``notes.txt``) is returned as ignored, so the run can say it skipped it.
    """
    jvm = _jvm(spark)
    root = jvm.org.apache.hadoop.fs.Path(input_uri)
    filesystem = root.getFileSystem(_hadoop_conf(spark))
    if not filesystem.exists(root):
        raise PrepInputError(f"no trip data files under {input_uri}: the location does not exist")
    root_prefix = filesystem.makeQualified(root).toString().rstrip("/")
    csv_files: list[str] = []
    parquet_files: list[str] = []
    ignored: list[str] = []
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
        else:
            ignored.append(path)
    if csv_files and parquet_files:
        raise PrepInputError(f"both CSV and Parquet trip files under {input_uri}: point the job at one format")
    if not csv_files and not parquet_files:
        skipped = f" (skipped, not trip files: {', '.join(_short_names(ignored))})" if ignored else ""
        raise PrepInputError(f"no trip data files (.csv, .csv.gz or .parquet) under {input_uri}{skipped}")
    if csv_files:
        return CSV_FORMAT, sorted(csv_files), sorted(ignored)
    return PARQUET_FORMAT, sorted(parquet_files), sorted(ignored)


def find_data_files(spark: SparkSession, input_uri: str) -> tuple[str, list[str]]:
    """Return (format, data files) under ``input_uri``; see :func:`list_input`."""
    input_format, data_files, _ = list_input(spark, input_uri)
    return input_format, data_files


def _short_names(paths: Sequence[str], limit: int = 3) -> list[str]:
    names = [path.rsplit("/", 1)[-1] for path in paths[:limit]]
    return names + ([f"{len(paths) - limit} more"] if len(paths) > limit else [])


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
    except Exception as error:
        if not _is_spark_error(error):
            raise
        raise PrepInputError(f"{csv_file} cannot be read: {spark_error_cause(error)}") from None
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


# How tpep_pickup_datetime is stored in a Parquet file -> how it is read.
PICKUP_TIMESTAMP = "timestamp"  # INT64 TIMESTAMP(MILLIS|MICROS) or INT96: Spark reads it as a timestamp
PICKUP_NANOS = "nanos"  # INT64 TIMESTAMP(NANOS), pandas' default: Spark 3.5 reads it only as a long
PICKUP_TEXT = "text"  # BINARY (a string): parsed like a CSV pickup time


@dataclass(frozen=True)
class ParquetColumns:
    """How one Parquet file stores the two columns the job reads (from its footer)."""

    pickup: str
    passenger: str


def _parquet_columns(spark: SparkSession, parquet_file: str) -> ParquetColumns:
    """The storage of the pickup and passenger columns, from one file's footer (driver-side, no Spark job)."""
    jvm = _jvm(spark)
    input_file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(
        jvm.org.apache.hadoop.fs.Path(parquet_file), _hadoop_conf(spark)
    )
    try:
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(input_file)
    except Exception as error:
        raise PrepInputError(f"{parquet_file} is not a readable Parquet file: {spark_error_cause(error)}") from None
    try:
        file_schema = reader.getFileMetaData().getSchema()
    finally:
        reader.close()
    if not file_schema.containsField(PICKUP_COLUMN):
        names = [str(field.getName()) for field in file_schema.getFields()]
        others = [name for name in names if name.lower().endswith("pickup_datetime")]
        hint = f" (it has {', '.join(others)}: only yellow-taxi trip files are supported)" if others else ""
        raise PrepInputError(f"{parquet_file} has no {PICKUP_COLUMN} column{hint}")
    return ParquetColumns(
        pickup=_parquet_pickup_storage(file_schema.getType(PICKUP_COLUMN), parquet_file),
        passenger=_parquet_passenger_storage(file_schema, parquet_file),
    )


def _parquet_pickup_storage(column_type: Any, parquet_file: str) -> str:
    if not column_type.isPrimitive():
        raise PrepInputError(f"{parquet_file}: {PICKUP_COLUMN} is not a timestamp column")
    physical = str(column_type.asPrimitiveType().getPrimitiveTypeName().name())
    annotation = column_type.getLogicalTypeAnnotation()
    logical = str(annotation.toString()) if annotation is not None else ""
    if physical == "INT96" or (physical == "INT64" and logical.startswith("TIMESTAMP(") and "NANOS" not in logical):
        return PICKUP_TIMESTAMP
    if physical == "INT64" and logical.startswith("TIMESTAMP("):
        return PICKUP_NANOS
    if physical == "BINARY":
        return PICKUP_TEXT
    kind = f"{physical} {logical}".strip()
    raise PrepInputError(f"{parquet_file}: {PICKUP_COLUMN} is {kind}, not a timestamp (ms, us or ns) or text")


def _parquet_passenger_storage(file_schema: Any, parquet_file: str) -> str:
    if not file_schema.containsField(PASSENGER_COLUMN):
        return "DOUBLE"  # read as all-null, so every row of that file is dropped and counted
    column_type = file_schema.getType(PASSENGER_COLUMN)
    if not column_type.isPrimitive():
        raise PrepInputError(f"{parquet_file}: {PASSENGER_COLUMN} is not a number column")
    physical_type = str(column_type.asPrimitiveType().getPrimitiveTypeName().name())
    if physical_type not in _PARQUET_PASSENGER_TYPES:
        raise PrepInputError(f"{parquet_file}: {PASSENGER_COLUMN} has unsupported type {physical_type}")
    return physical_type


def _read_parquet_trips(spark: SparkSession, parquet_files: list[str]) -> DataFrame:
    files_by_storage: dict[ParquetColumns, list[str]] = {}
    for parquet_file in parquet_files:
        files_by_storage.setdefault(_parquet_columns(spark, parquet_file), []).append(parquet_file)
    frames = []
    for storage, files in sorted(files_by_storage.items(), key=lambda item: (item[0].pickup, item[0].passenger)):
        pickup_type: DataType = {PICKUP_TIMESTAMP: TimestampType(), PICKUP_NANOS: LongType()}.get(
            storage.pickup, StringType()
        )
        schema = StructType(
            [
                # TLC timestamps have no zone (TIMESTAMP_NTZ); reading them as TimestampType keeps the wall
                # clock in a UTC session.
                StructField(PICKUP_COLUMN, pickup_type),
                StructField(PASSENGER_COLUMN, _PARQUET_PASSENGER_TYPES[storage.passenger]),
            ]
        )
        if storage.pickup == PICKUP_NANOS:
            # Spark 3.5 refuses INT64 TIMESTAMP(NANOS) as a timestamp; this setting reads it as a long instead.
            spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        frame = spark.read.schema(schema).parquet(*files)
        if storage.pickup == PICKUP_NANOS:
            frame = frame.withColumn(
                PICKUP_COLUMN, sf.timestamp_micros(sf.floor(sf.col(PICKUP_COLUMN) / 1000).cast("long"))
            )
        frames.append(frame)
    trips = frames[0]
    for frame in frames[1:]:
        trips = trips.unionByName(frame, allowMissingColumns=False)
    return trips


def read_trips(spark: SparkSession, input_uri: str) -> TripsInput:
    """Read ``tpep_pickup_datetime`` and ``passenger_count`` from the CSV or Parquet files under ``input_uri``."""
    input_format, data_files, ignored = list_input(spark, input_uri)
    read = _read_csv_trips if input_format == CSV_FORMAT else _read_parquet_trips
    trips = read(spark, data_files)
    return TripsInput(
        trips=trips, input_format=input_format, data_files=tuple(data_files), ignored_files=tuple(ignored)
    )


def spark_error_cause(error: BaseException) -> str:
    """The innermost cause of a Spark (JVM) error in one line, preferring a cause that names a file.

    A failed read surfaces as ``Py4JJavaError: An error occurred while calling o123.collectToPython`` over
    an 80-line Java trace; the line a user needs is the cause's message.
    """
    java_exception = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    messages: list[str] = []
    seen = 0
    while java_exception is not None and seen < 20:
        seen += 1
        text = str(java_exception.getMessage() or "").strip()
        name = str(java_exception.getClass().getSimpleName())
        if text and not text.startswith("Job aborted due to stage failure"):
            messages.append(f"{name}: {text.splitlines()[0]}")
        java_exception = java_exception.getCause()
    if not messages:
        lines = str(error).strip().splitlines()
        return lines[0] if lines else type(error).__name__
    with_file = [message for message in messages if "file:" in message or "s3:" in message or "://" in message]
    return (with_file or messages)[-1]


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


def passengers_per_window(cleaned: DataFrame, plan: RangePlan | None = None) -> WindowSeries:
    """Sum passengers per 30-minute window, dense from the first to the last window, sorted by window start.

    One Spark job: the input is aggregated where it lies (partial sums per partition, then a small shuffle,
    so the big input is never moved to one partition) and the per-window result, at most one row per half
    hour plus one, comes back to the driver. Invalid rows fall in a NULL group, which is how they are
    counted in the same pass. The dense series is then built on the driver from those few rows, which saves
    the several small Spark jobs (statistics, range join, checkpoint) that building it in Spark would cost.

    With a ``plan``, pickups outside its analysis range are dropped and counted (see :class:`RangePlan`), and
    a series longer than its ``max_windows`` fails before anything is densified. Without one, every valid
    pickup counts (and the default cap applies).
    """
    spark = cleaned.sparkSession
    window_bucket = sf.floor(sf.col("pickup_at").cast("long") / WINDOW_SECONDS) * WINDOW_SECONDS
    known_range = plan.before_reading() if plan else None
    if known_range is not None:
        # Pickups outside a range known up front fold into one bucket on either side of it, so stray dates
        # never reach the driver one window each.
        window_bucket = sf.least(
            sf.greatest(window_bucket, sf.lit(known_range.start_bucket - WINDOW_SECONDS)),
            sf.lit(known_range.end_bucket),
        )
    per_window = (
        cleaned.groupBy(sf.when(sf.col("is_valid"), window_bucket).alias("window_bucket"))
        .agg(sf.sum("passengers").alias("passengers"), sf.count(sf.lit(1)).alias("trips"))
        # Rounded by Spark, so the counts are exactly what a Spark-side series would hold.
        .select("window_bucket", sf.round("passengers").cast("long").alias("passengers"), "trips")
        .collect()
    )
    rows_read = sum(int(row["trips"]) for row in per_window)
    rows_dropped = sum(int(row["trips"]) for row in per_window if row["window_bucket"] is None)
    per_bucket = {
        int(row["window_bucket"]): (int(row["passengers"]), int(row["trips"]))
        for row in per_window
        if row["window_bucket"] is not None
    }
    analysis_range = plan.after_reading({bucket: trips for bucket, (_, trips) in per_bucket.items()}) if plan else None
    passengers_by_bucket, rows_out_of_range = split_by_range(per_bucket, analysis_range)
    counts = {"rows_read": rows_read, "rows_dropped": rows_dropped, "rows_out_of_range": rows_out_of_range}
    if not passengers_by_bucket:
        empty = spark.createDataFrame([], "window_start timestamp, passengers long")
        return WindowSeries(series=empty, windows=0, analysis_range=analysis_range, **counts)
    first_bucket, last_bucket = min(passengers_by_bucket), max(passengers_by_bucket)
    max_windows = plan.options.max_windows if plan else DEFAULT_MAX_WINDOWS
    check_window_cap(first_bucket, last_bucket, max_windows, analysis_range)
    dense = [
        (bucket, passengers_by_bucket.get(bucket, 0))
        for bucket in range(first_bucket, last_bucket + WINDOW_SECONDS, WINDOW_SECONDS)
    ]
    series = (
        _driver_rows_as_frame(spark, dense, ["window_bucket", "passengers"])
        .select(sf.timestamp_seconds("window_bucket").alias("window_start"), "passengers")
        .coalesce(1)  # already in time order; one partition keeps that order for whoever reads it
    )
    return WindowSeries(series=series, windows=len(dense), analysis_range=analysis_range, **counts)


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


def run_prep(
    spark: SparkSession,
    input_uri: str,
    output_uri: str,
    logger: InfoLogger,
    options: InputOptions | None = None,
) -> PrepResult:
    """The whole job: read, clean, aggregate, compute features, write. Raises PrepInputError on unusable input."""
    options = options or InputOptions()
    with _input_errors_named(input_uri):
        trips_input = read_trips(spark, input_uri)
        logger.info(f"reading {len(trips_input.data_files)} {trips_input.input_format} file(s) under {input_uri}")
        if trips_input.ignored_files:
            logger.info(
                f"skipped {len(trips_input.ignored_files)} file(s) that are not trip files (.csv, .csv.gz, "
                ".parquet): " + ", ".join(_short_names(trips_input.ignored_files))
            )
        plan = RangePlan(options, range_from_file_names(trips_input.data_files))
        windowed = passengers_per_window(clean_trips(trips_input.trips), plan)
    logger.info(
        f"read {windowed.rows_read} trips, dropped {windowed.rows_dropped} with a missing or non-numeric "
        f"passenger count or an unparseable pickup time; {windowed.windows} half-hour windows"
    )
    if windowed.analysis_range is not None:
        logger.info(
            f"analysis range {windowed.analysis_range.describe()}: dropped {windowed.rows_out_of_range} pickups "
            "outside it (set --analysis_start/--analysis_end to change it)"
        )
    check_usable(windowed, input_uri)
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
        rows_out_of_range=windowed.rows_out_of_range,
        analysis_range=windowed.analysis_range,
    )
    logger.info(
        f"wrote {inputs.windows} training vectors ({window_features.FEATURE_DIM} features, {inputs.seasonality} "
        f"pattern) and {inputs.windows} scoring records under {output_uri}"
    )
    return result


@contextmanager
def _input_errors_named(input_uri: str) -> Iterator[None]:
    """Reading errors name the input: PrepInputErrors gain the location, Spark errors become one line."""
    try:
        yield
    except PrepInputError as error:
        if input_uri in str(error) or _location_in(str(error), input_uri):
            raise
        raise PrepInputError(f"{input_uri}: {error}") from None
    except Exception as error:
        if not _is_spark_error(error):
            raise
        raise PrepInputError(f"cannot read the trip files under {input_uri}: {spark_error_cause(error)}") from None


def _location_in(message: str, input_uri: str) -> bool:
    """Whether the message names a file under the input (Hadoop writes file:/x for the local path /x)."""
    bare = input_uri.removeprefix("file://").removeprefix("file:").rstrip("/")
    return bool(bare) and bare in message


def _is_spark_error(error: BaseException) -> bool:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    return isinstance(error, Py4JJavaError | CapturedException)


def check_usable(windowed: WindowSeries, input_uri: str) -> None:
    """No window left: say whether the rows were invalid or all outside the analysis range."""
    if windowed.windows:
        return
    if windowed.rows_out_of_range and windowed.analysis_range is not None:
        raise PrepInputError(
            f"{input_uri}: all {windowed.rows_out_of_range:,} valid pickups fall outside the analysis range "
            f"{windowed.analysis_range.describe()}; set --analysis_start/--analysis_end"
        )
    raise PrepInputError(
        f"{input_uri}: no usable trips: all {windowed.rows_read:,} rows lack a numeric passenger_count or a "
        "parseable tpep_pickup_datetime"
    )


def main(argv: Sequence[str] | None = None) -> None:
    # Glue-only modules: imported here so the module imports (and tests run) without awsglue.
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    job_argv = list(argv if argv is not None else sys.argv)
    args = getResolvedOptions(job_argv, ["JOB_NAME", "input_uri", "output_uri"])
    # Optional arguments: getResolvedOptions fails on a listed argument that is absent.
    options = input_options_from_arguments(optional_job_arguments(job_argv))
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    logger = glue_context.get_logger()
    configure_spark(spark)
    run_prep(spark, args["input_uri"], args["output_uri"], logger, options)
    job.commit()


if __name__ == "__main__":
    main()
