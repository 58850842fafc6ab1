"""Batch prep job on local Spark: reading, cleaning, half-hour sums, shingling and the written files."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_scripts.taxi_prep import (
    PrepInputError,
    clean_trips,
    configure_spark,
    passengers_per_window,
    read_trips,
    run_prep,
    shingle_windows,
)

pytestmark = pytest.mark.spark

TLC_HEADER = (
    "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,"
    "store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,"
    "tolls_amount,improvement_surcharge,total_amount,congestion_surcharge,airport_fee"
)
LOGGER = logging.getLogger("test_taxi_prep")


def tlc_csv_line(pickup: str, passenger_count: str) -> str:
    """A TLC yellow row whose only meaningful fields are the pickup time and the passenger count."""
    return f"2,{pickup},2024-01-01 23:59:00,{passenger_count},1.5,1,N,100,200,1,10.0,0.5,0.5,2.0,0,0.3,13.3,2.5,0"


def write_tlc_csv(path: Path, trips: list[tuple[str, str]], header: str = TLC_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header, *(tlc_csv_line(pickup, count) for pickup, count in trips)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tlc_parquet(path: Path, pickups: list[dt.datetime], counts: pa.Array) -> Path:
    """Parquet as TLC publishes it: zone-less microsecond timestamps, plus columns the job must ignore."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "VendorID": pa.array([2] * len(pickups), pa.int32()),
            "tpep_pickup_datetime": pa.array(pickups, pa.timestamp("us")),
            "tpep_dropoff_datetime": pa.array(pickups, pa.timestamp("us")),
            "passenger_count": counts,
            "trip_distance": pa.array([1.0] * len(pickups), pa.float64()),
            "store_and_fwd_flag": pa.array(["N"] * len(pickups), pa.string()),
        }
    )
    pq.write_table(table, path)
    return path


def series_rows(spark: SparkSession, input_uri: str) -> list[tuple[str, int]]:
    windowed = passengers_per_window(clean_trips(read_trips(spark, input_uri).trips))
    return [(row["window_start"].strftime("%Y-%m-%d %H:%M:%S"), row["passengers"]) for row in windowed.series.collect()]


def part_file_lines(folder: Path) -> list[str]:
    part_files = sorted(folder.glob("part-*.csv"))
    assert len(part_files) == 1, f"expected one part file in {folder}, found {part_files}"
    return part_files[0].read_text().splitlines()


@pytest.fixture(scope="module", autouse=True)
def configured(spark: SparkSession) -> None:
    configure_spark(spark)


def test_configure_spark_enables_aqe_and_sizes_shuffles_to_the_cores(spark: SparkSession) -> None:
    # Given a session whose settings were changed
    spark.conf.set("spark.sql.shuffle.partitions", "200")
    spark.conf.set("spark.sql.adaptive.enabled", "false")

    # When the job configures it
    configure_spark(spark)

    # Then AQE is on, shuffles match the 2 local cores and windows are UTC
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_csv_trips_are_summed_per_half_hour_across_the_30_minute_boundary(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given trips on both sides of 00:30 (00:29:59 still belongs to the 00:00 window)
    write_tlc_csv(
        tmp_path / "in" / "yellow_2024-01.csv",
        [
            ("2024-01-01 00:05:00", "1"),
            ("2024-01-01 00:29:59", "2"),
            ("2024-01-01 00:30:00", "3"),
            ("2024-01-01 00:59:59", "4"),
        ],
    )

    # When the series is built
    rows = series_rows(spark, str(tmp_path / "in"))

    # Then 00:00 has 1+2 and 00:30 has 3+4
    assert rows == [("2024-01-01 00:00:00", 3), ("2024-01-01 00:30:00", 7)]


def test_missing_windows_are_zero_and_the_series_is_sorted(spark: SparkSession, tmp_path: Path) -> None:
    # Given trips out of time order, with nothing between 00:30 and 02:00
    write_tlc_csv(
        tmp_path / "in" / "trips.csv",
        [("2024-01-01 02:10:00", "2"), ("2024-01-01 00:15:00", "1"), ("2024-01-01 02:20:00", "5")],
    )

    # When the series is built
    rows = series_rows(spark, str(tmp_path / "in"))

    # Then every half hour from 00:00 to 02:00 is present, in order, the empty ones with 0
    assert rows == [
        ("2024-01-01 00:00:00", 1),
        ("2024-01-01 00:30:00", 0),
        ("2024-01-01 01:00:00", 0),
        ("2024-01-01 01:30:00", 0),
        ("2024-01-01 02:00:00", 7),
    ]


def test_parquet_files_with_double_and_long_passenger_counts_are_read_together(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given one month stored with a double passenger_count and the next with a long one
    write_tlc_parquet(
        tmp_path / "in" / "yellow_tripdata_2024-01.parquet",
        [dt.datetime(2024, 1, 31, 23, 40), dt.datetime(2024, 1, 31, 23, 50)],
        pa.array([1.0, 2.0], pa.float64()),
    )
    write_tlc_parquet(
        tmp_path / "in" / "yellow_tripdata_2024-02.parquet",
        [dt.datetime(2024, 2, 1, 0, 10), dt.datetime(2024, 2, 1, 0, 45)],
        pa.array([4, 3], pa.int64()),
    )

    # When the files are read and summed
    trips_input = read_trips(spark, str(tmp_path / "in"))
    rows = series_rows(spark, str(tmp_path / "in"))

    # Then the format is Parquet and 23:30 = 1+2, 00:00 = 4, 00:30 = 3
    assert trips_input.input_format == "parquet"
    assert rows == [("2024-01-31 23:30:00", 3), ("2024-02-01 00:00:00", 4), ("2024-02-01 00:30:00", 3)]


def test_gzipped_csv_is_detected_and_read(spark: SparkSession, tmp_path: Path) -> None:
    # Given a .csv.gz file (and Spark's marker files, which are not data)
    folder = tmp_path / "in"
    folder.mkdir()
    content = "\n".join([TLC_HEADER, tlc_csv_line("2024-03-01 10:10:00", "2")]) + "\n"
    (folder / "trips.csv.gz").write_bytes(gzip.compress(content.encode()))
    (folder / "_SUCCESS").write_text("")

    # When the files are read
    trips_input = read_trips(spark, str(folder))
    rows = series_rows(spark, str(folder))

    # Then the gzip file is the CSV input
    assert trips_input.input_format == "csv"
    assert [Path(name).name for name in trips_input.data_files] == ["trips.csv.gz"]
    assert rows == [("2024-03-01 10:00:00", 2)]


def test_bad_rows_are_dropped_and_counted(spark: SparkSession, tmp_path: Path) -> None:
    # Given 2 good trips and 4 bad ones: empty count, "abc", unparseable time, empty time
    write_tlc_csv(
        tmp_path / "in" / "trips.csv",
        [
            ("2024-01-01 00:10:00", "2"),
            ("2024-01-01 00:11:00", ""),
            ("2024-01-01 00:12:00", "abc"),
            ("not-a-time", "4"),
            ("", "5"),
            ("2024-01-01 00:40:00", "3"),
        ],
    )

    # When the series is built
    windowed = passengers_per_window(clean_trips(read_trips(spark, str(tmp_path / "in")).trips))

    # Then all 6 rows were read, 4 dropped, and only the good counts are summed
    assert (windowed.rows_read, windowed.rows_dropped, windowed.windows) == (6, 4, 2)
    assert [row["passengers"] for row in windowed.series.collect()] == [2, 3]


def test_extra_columns_are_ignored(spark: SparkSession, tmp_path: Path) -> None:
    # Given a CSV with a newer extra column before and after the TLC ones
    header = "row_id," + TLC_HEADER + ",cbd_congestion_fee"
    path = tmp_path / "in" / "trips.csv"
    path.parent.mkdir(parents=True)
    path.write_text(f"{header}\n7,{tlc_csv_line('2024-01-01 00:10:00', '2')},0.75\n")

    # When the series is built
    rows = series_rows(spark, str(tmp_path / "in"))

    # Then the passenger count is found by name, not by position
    assert rows == [("2024-01-01 00:00:00", 2)]


@pytest.mark.parametrize("make_location", ["empty_folder", "only_marker_files", "missing_folder"])
def test_a_location_without_data_files_fails_naming_it(
    spark: SparkSession, tmp_path: Path, make_location: str
) -> None:
    # Given a location with no trip files
    location = tmp_path / "raw" / "yellow"
    if make_location != "missing_folder":
        location.mkdir(parents=True)
    if make_location == "only_marker_files":
        (location / "_SUCCESS").write_text("")
        (location / "notes.txt").write_text("not data")

    # When / Then the job fails with the location in the message
    with pytest.raises(PrepInputError, match=re.escape(str(location))):
        run_prep(spark, str(location), str(tmp_path / "out"), 1, LOGGER)


def test_shingle_size_one_writes_counts_and_scoring_rows_without_header(spark: SparkSession, tmp_path: Path) -> None:
    # Given trips giving 00:00 = 3, 00:30 = 0, 01:00 = 4
    write_tlc_csv(
        tmp_path / "in" / "trips.csv",
        [("2024-01-01 00:01:00", "1"), ("2024-01-01 00:02:00", "2"), ("2024-01-01 01:15:00", "4")],
    )

    # When the job runs with N=1 and an output URI without a trailing slash
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), 1, LOGGER)

    # Then train is one headerless column of counts and scoring repeats the count as v1
    assert result.train_rows == 3
    assert part_file_lines(tmp_path / "out" / "train") == ["3", "0", "4"]
    assert part_file_lines(tmp_path / "out" / "scoring") == [
        "2024-01-01 00:00:00,3,3",
        "2024-01-01 00:30:00,0,0",
        "2024-01-01 01:00:00,4,4",
    ]


def test_shingle_size_three_left_pads_scoring_with_the_first_count(spark: SparkSession, tmp_path: Path) -> None:
    # Given four windows with 5, 7, 9 and 11 passengers
    write_tlc_csv(
        tmp_path / "in" / "trips.csv",
        [
            ("2024-01-01 00:10:00", "5"),
            ("2024-01-01 00:40:00", "7"),
            ("2024-01-01 01:10:00", "9"),
            ("2024-01-01 01:40:00", "11"),
        ],
    )

    # When the job runs with N=3
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out") + "/", 3, LOGGER)

    # Then train has the 2 full histories and scoring every window, padded with 5 where history is missing
    assert (result.rows_read, result.rows_dropped, result.windows, result.train_rows) == (4, 0, 4, 2)
    assert result.input_format == "csv"
    assert part_file_lines(tmp_path / "out" / "train") == ["5,7,9", "7,9,11"]
    assert part_file_lines(tmp_path / "out" / "scoring") == [
        "2024-01-01 00:00:00,5,5,5,5",
        "2024-01-01 00:30:00,7,5,5,7",
        "2024-01-01 01:00:00,9,5,7,9",
        "2024-01-01 01:30:00,11,7,9,11",
    ]


def test_a_rerun_overwrites_the_outputs(spark: SparkSession, tmp_path: Path) -> None:
    # Given a first run with 2 windows
    write_tlc_csv(tmp_path / "in1" / "t.csv", [("2024-01-01 00:10:00", "1"), ("2024-01-01 00:40:00", "2")])
    run_prep(spark, str(tmp_path / "in1"), str(tmp_path / "out"), 1, LOGGER)
    write_tlc_csv(tmp_path / "in2" / "t.csv", [("2024-05-01 00:10:00", "6")])

    # When a second run writes to the same place
    run_prep(spark, str(tmp_path / "in2"), str(tmp_path / "out"), 1, LOGGER)

    # Then only the second run's rows are there
    assert part_file_lines(tmp_path / "out" / "train") == ["6"]
    assert part_file_lines(tmp_path / "out" / "scoring") == ["2024-05-01 00:00:00,6,6"]


def test_two_days_with_shingle_size_48(spark: SparkSession, tmp_path: Path) -> None:
    # Given two days of half-hour windows (96), window i having i % 7 + 1 passengers
    start = dt.datetime(2024, 1, 1)
    pickups = [start + dt.timedelta(minutes=30 * index + 3) for index in range(96)]
    counts = [index % 7 + 1 for index in range(96)]
    write_tlc_parquet(tmp_path / "in" / "two_days.parquet", pickups, pa.array(counts, pa.int64()))

    # When the job runs with N=48
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), 48, LOGGER)

    # Then train has 96 - 47 = 49 rows of 48 values, the last one being windows 48..95
    train = part_file_lines(tmp_path / "out" / "train")
    assert result.train_rows == 49
    assert len(train) == 49
    assert train[-1] == ",".join(str(count) for count in counts[48:96])
    assert train[0] == ",".join(str(count) for count in counts[0:48])
    # And scoring has every one of the 96 windows, in order, each with 2 + 48 fields
    scoring = [line.split(",") for line in part_file_lines(tmp_path / "out" / "scoring")]
    expected_starts = [(start + dt.timedelta(minutes=30 * index)).strftime("%Y-%m-%d %H:%M:%S") for index in range(96)]
    assert [fields[0] for fields in scoring] == expected_starts
    assert {len(fields) for fields in scoring} == {50}
    assert scoring[0][1:] == ["1"] * 49  # window 0: its count 1, padded with the first count everywhere


def test_fewer_windows_than_the_shingle_size_fails(spark: SparkSession, tmp_path: Path) -> None:
    # Given only 2 half-hour windows
    write_tlc_csv(tmp_path / "in" / "t.csv", [("2024-01-01 00:10:00", "1"), ("2024-01-01 00:40:00", "2")])

    # When / Then N=3 cannot produce a single training row
    with pytest.raises(PrepInputError, match="need at least 3 half-hour windows, got 2"):
        run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), 3, LOGGER)


def test_shingle_windows_rejects_a_size_below_one(spark: SparkSession) -> None:
    # Given a one-window series
    series = spark.createDataFrame([(dt.datetime(2024, 1, 1), 3)], "window_start timestamp, passengers long")

    # When / Then N=0 is refused
    with pytest.raises(PrepInputError, match="at least 1"):
        shingle_windows(series, 0)
