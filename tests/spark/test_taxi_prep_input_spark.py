"""Prep job input hardening on local Spark: analysis range, window cap, Parquet storage variants, clear errors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_scripts.taxi_prep import (
    InputOptions,
    PrepInputError,
    configure_spark,
    read_trips,
    run_prep,
)

pytestmark = pytest.mark.spark

# Two days of January, one pickup an hour: 2 x 48 - 1 = 95 windows from 00:00 on the 1st to 23:00 on the 2nd.
JANUARY = [dt.datetime(2024, 1, 1, 0, 10) + dt.timedelta(hours=index) for index in range(48)]
JANUARY_WINDOWS = 95
# What real TLC monthly files hold a few of: pickups years away from the file's month.
STRAY_PICKUPS = [dt.datetime(2002, 12, 31, 23, 50), dt.datetime(2009, 1, 1, 0, 5)]


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, /) -> None:
        self.lines.append(msg)


@pytest.fixture(scope="module", autouse=True)
def configured(spark: SparkSession) -> None:
    configure_spark(spark)


def write_parquet(path: Path, pickups: list[dt.datetime], counts: pa.Array, unit: str = "us") -> Path:
    """Trip Parquet with the pickup time in `unit` (ms, us, ns) or as INT96 (`int96`, older writers' format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "VendorID": pa.array([2] * len(pickups), pa.int32()),
            "tpep_pickup_datetime": pa.array(pickups, pa.timestamp("ns" if unit == "int96" else unit)),
            "passenger_count": counts,
        }
    )
    # Parquet format 2.6 keeps nanoseconds as TIMESTAMP(NANOS), as pandas writes them.
    pq.write_table(table, path, version="2.6", coerce_timestamps=None, use_deprecated_int96_timestamps=unit == "int96")
    return path


def scoring_windows(output: Path) -> list[tuple[str, int]]:
    part = next((output / "scoring").glob("part-*.json"))
    records = [json.loads(line) for line in part.read_text().splitlines()]
    return [(record["window_start"], int(record["passengers"])) for record in records]


def test_stray_dates_outside_the_files_month_are_dropped_and_counted(spark: SparkSession, tmp_path: Path) -> None:
    # Given a January file that also holds one pickup in 2002 and one in 2009
    pickups = JANUARY + STRAY_PICKUPS
    write_parquet(tmp_path / "in" / "yellow_tripdata_2024-01.parquet", pickups, pa.array([1.0] * len(pickups)))
    logger = RecordingLogger()

    # When the job runs
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), logger)

    # Then only January's windows are there
    assert result.rows_out_of_range == 2
    assert result.rows_dropped == 0
    assert result.windows == JANUARY_WINDOWS
    windows = scoring_windows(tmp_path / "out")
    assert windows[0] == ("2024-01-01 00:00:00", 1)
    assert windows[-1] == ("2024-01-02 23:00:00", 1)
    # And the log says which range applied, where it came from and how many pickups fell outside
    assert result.analysis_range is not None
    assert result.analysis_range.describe() == (
        "2024-01-01..2024-02-01 (from the file names: yellow_tripdata_2024-01.parquet)"
    )
    assert any("dropped 2 pickups outside it" in line for line in logger.lines)
    # (in sentences: no dataclass reprs in the job's log)
    assert not any("PrepResult(" in line for line in logger.lines)


def test_without_a_month_in_the_file_name_the_bulk_of_the_data_sets_the_range(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given the same trips in a file whose name says nothing about the month
    pickups = JANUARY + STRAY_PICKUPS
    write_parquet(tmp_path / "in" / "trips.parquet", pickups, pa.array([2] * len(pickups), pa.int64()))

    # When the job runs
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())

    # Then January, where nearly all trips are, is the range, and the strays are dropped
    assert result.analysis_range is not None
    assert result.analysis_range.start == dt.datetime(2024, 1, 1)
    assert result.analysis_range.end == dt.datetime(2024, 2, 1)
    assert (result.rows_out_of_range, result.windows) == (2, JANUARY_WINDOWS)


def test_job_arguments_set_the_range(spark: SparkSession, tmp_path: Path) -> None:
    # Given a January file, and a range of the first day only
    write_parquet(tmp_path / "in" / "yellow_tripdata_2024-01.parquet", JANUARY, pa.array([1.0] * len(JANUARY)))
    options = InputOptions(analysis_start=dt.datetime(2024, 1, 1), analysis_end=dt.datetime(2024, 1, 2))

    # When the job runs with it
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger(), options)

    # Then the 24 pickups of January 2nd are outside it
    assert (result.rows_out_of_range, result.windows) == (24, 47)
    assert result.analysis_range is not None and result.analysis_range.source == "--analysis_start/--analysis_end"


def test_a_series_longer_than_the_window_cap_fails_saying_why(spark: SparkSession, tmp_path: Path) -> None:
    # Given trips from 2002 to 2024 and a range that keeps them all
    pickups = JANUARY + STRAY_PICKUPS
    write_parquet(tmp_path / "in" / "trips.parquet", pickups, pa.array([1.0] * len(pickups)))
    options = InputOptions(analysis_start=dt.datetime(2000, 1, 1), analysis_end=dt.datetime(2025, 1, 1))

    # When / Then the job refuses to make 368,000 windows, and says what to set
    with pytest.raises(PrepInputError) as raised:
        run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger(), options)
    message = str(raised.value)
    assert message.startswith(str(tmp_path / "in"))
    assert "from 2002-12-31 to 2024-01-02 make 368," in message
    assert "over the cap of 35,136" in message
    assert "set --analysis_start/--analysis_end" in message
    assert not (tmp_path / "out").exists()


def test_every_pickup_outside_the_range_fails_naming_the_range(spark: SparkSession, tmp_path: Path) -> None:
    # Given a file named for March whose trips are all in January
    write_parquet(tmp_path / "in" / "yellow_tripdata_2024-03.parquet", JANUARY, pa.array([1.0] * len(JANUARY)))

    # When / Then the message says every pickup is outside 2024-03 and where that range came from
    with pytest.raises(PrepInputError, match=r"all 48 valid pickups fall outside the analysis range 2024-03-01\.\."):
        run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "int96"])
@pytest.mark.parametrize("passenger_type", [pa.float64(), pa.int64()], ids=["double", "long"])
def test_parquet_timestamps_of_every_precision_and_both_count_types_are_read(
    spark: SparkSession, tmp_path: Path, unit: str, passenger_type: pa.DataType
) -> None:
    # Given a Parquet file with its pickup times in ns, us or ms, and a double or long passenger count
    pickups = [dt.datetime(2024, 1, 1, 0, 29, 59), dt.datetime(2024, 1, 1, 0, 30), dt.datetime(2024, 1, 1, 1, 5)]
    write_parquet(tmp_path / "in" / "trips.parquet", pickups, pa.array([1, 2, 4], passenger_type), unit=unit)

    # When the job runs
    run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())

    # Then each pickup is in its own half hour (00:29:59 still in 00:00)
    assert scoring_windows(tmp_path / "out") == [
        ("2024-01-01 00:00:00", 1),
        ("2024-01-01 00:30:00", 2),
        ("2024-01-01 01:00:00", 4),
    ]


def test_pandas_written_parquet_with_nanosecond_timestamps_is_read(spark: SparkSession, tmp_path: Path) -> None:
    # Given what `DataFrame.to_parquet` writes by default (nanosecond timestamps), next to a microsecond file
    frame = pd.DataFrame(
        {
            "tpep_pickup_datetime": pd.to_datetime(["2024-01-01 00:10:00.123456789", "2024-01-01 00:40:00.5"]),
            "passenger_count": [1.0, 3.0],
        }
    )
    (tmp_path / "in").mkdir()
    frame.to_parquet(tmp_path / "in" / "pandas.parquet")
    write_parquet(tmp_path / "in" / "tlc.parquet", [dt.datetime(2024, 1, 1, 0, 50)], pa.array([5.0]))

    # When the files are read together
    run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())

    # Then both are summed in the right windows
    assert scoring_windows(tmp_path / "out") == [("2024-01-01 00:00:00", 1), ("2024-01-01 00:30:00", 8)]


def test_a_green_taxi_file_fails_naming_the_file_and_the_column_it_has(spark: SparkSession, tmp_path: Path) -> None:
    # Given a green-taxi file (lpep_pickup_datetime)
    path = tmp_path / "in" / "green_tripdata_2024-01.parquet"
    path.parent.mkdir()
    green = pa.table({"lpep_pickup_datetime": pa.array([dt.datetime(2024, 1, 1)]), "passenger_count": [1.0]})
    pq.write_table(green, path)

    # When / Then
    expected = "green_tripdata_2024-01.parquet has no tpep_pickup_datetime column (it has lpep_pickup_datetime"
    with pytest.raises(PrepInputError, match=re.escape(expected)):
        read_trips(spark, str(tmp_path / "in"))


def test_a_file_spark_cannot_read_fails_with_the_cause_naming_the_file(spark: SparkSession, tmp_path: Path) -> None:
    # Given a CSV file whose gzip stream is corrupt
    path = tmp_path / "in" / "yellow_tripdata_2024-01.csv.gz"
    path.parent.mkdir()
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"not gzip at all" * 10)

    # When / Then the error is one line naming the input, not a Java stack trace
    with pytest.raises(PrepInputError) as raised:
        run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())
    message = str(raised.value)
    assert f"{tmp_path}/in/yellow_tripdata_2024-01.csv.gz cannot be read: IOException" in message
    assert "\n" not in message
    assert "Py4JJavaError" not in message and "collectToPython" not in message


def test_files_that_are_not_trip_files_are_logged_not_silently_skipped(spark: SparkSession, tmp_path: Path) -> None:
    # Given a trip file and a stray x.gz next to it
    write_parquet(tmp_path / "in" / "yellow_tripdata_2024-01.parquet", JANUARY, pa.array([1.0] * len(JANUARY)))
    (tmp_path / "in" / "x.gz").write_bytes(b"\x1f\x8b")
    logger = RecordingLogger()

    # When the job runs
    run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), logger)

    # Then the log names the skipped file
    assert any("skipped 1 file(s) that are not trip files" in line and "x.gz" in line for line in logger.lines)


def test_a_location_with_only_other_files_names_them(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.gz").write_bytes(b"\x1f\x8b")

    with pytest.raises(PrepInputError, match=r"no trip data files .* under .*in \(skipped, not trip files: x\.gz\)"):
        run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), RecordingLogger())
