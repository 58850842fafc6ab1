"""Batch prep job on local Spark: reading, cleaning, half-hour sums, the model's features and the written files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from glue_scripts.features.window_features import FEATURE_DIM, series_features
from glue_scripts.taxi_prep import (
    PrepInputError,
    clean_trips,
    configure_spark,
    passengers_per_window,
    read_trips,
    remove_non_data_objects,
    run_prep,
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


def part_file_lines(folder: Path, suffix: str = ".csv") -> list[str]:
    part_files = sorted(folder.glob(f"part-*{suffix}"))
    assert len(part_files) == 1, f"expected one part file in {folder}, found {part_files}"
    return part_files[0].read_text().splitlines()


def scoring_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in part_file_lines(out / "scoring", ".json")]


def every_object(folder: Path) -> list[str]:
    """What an S3Prefix input would read: every file under the folder, hidden ones included."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


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
        run_prep(spark, str(location), str(tmp_path / "out"), LOGGER)


def test_train_holds_one_feature_vector_and_scoring_one_json_record_per_window(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given trips giving 00:00 = 3, 00:30 = 0, 01:00 = 4
    write_tlc_csv(
        tmp_path / "in" / "trips.csv",
        [("2024-01-01 00:01:00", "1"), ("2024-01-01 00:02:00", "2"), ("2024-01-01 01:15:00", "4")],
    )

    # When the job runs with an output URI without a trailing slash
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), LOGGER)

    # Then train has one headerless row of FEATURE_DIM numbers per window
    assert (result.windows, result.train_rows, result.seasonality) == (3, 3, "none")
    train = [line.split(",") for line in part_file_lines(tmp_path / "out" / "train")]
    assert [len(row) for row in train] == [FEATURE_DIM] * 3
    assert all(float(value) == float(value) for row in train for value in row)
    # And scoring has one JSON object per window, in order, with what the transform filters on
    records = scoring_records(tmp_path / "out")
    assert [(record["window_start"], record["passengers"]) for record in records] == [
        ("2024-01-01 00:00:00", 3),
        ("2024-01-01 00:30:00", 0),
        ("2024-01-01 01:00:00", 4),
    ]
    assert all(set(record) == {"window_start", "passengers", "expected", "rcf_input"} for record in records)
    assert all(set(record["rcf_input"]) == {"features"} for record in records)
    assert [record["rcf_input"]["features"] for record in records] == [[float(value) for value in row] for row in train]


def test_the_output_prefixes_hold_only_data_objects(spark: SparkSession, tmp_path: Path) -> None:
    # Given a run on the local file system (which writes .crc checksums next to every file it can)
    write_tlc_csv(tmp_path / "in" / "t.csv", [("2024-01-01 00:10:00", "1"), ("2024-01-01 00:40:00", "2")])

    # When the job writes its outputs
    run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), LOGGER)

    # Then each prefix SageMaker reads as an S3Prefix holds exactly one part file: no _SUCCESS, no .crc
    for prefix, suffix in (("train", ".csv"), ("scoring", ".json")):
        objects = every_object(tmp_path / "out" / prefix)
        assert len(objects) == 1 and objects[0].startswith("part-") and objects[0].endswith(suffix), objects


def test_markers_left_under_a_prefix_are_removed_and_data_is_kept(spark: SparkSession, tmp_path: Path) -> None:
    # Given a prefix with a part file and the markers Hadoop writers leave
    prefix = tmp_path / "out" / "train"
    (prefix / "_temporary" / "0").mkdir(parents=True)
    for name in ("part-00000.csv", "_SUCCESS", ".part-00000.csv.crc", "._SUCCESS.crc", "_temporary/0/part-1"):
        (prefix / name).write_text("1.0\n" if name == "part-00000.csv" else "")

    # When the job's clean-up runs over it
    removed = remove_non_data_objects(spark, prefix.as_uri())

    # Then only the data file is left
    assert sorted(removed) == sorted(["_SUCCESS", ".part-00000.csv.crc", "._SUCCESS.crc", "part-1"])
    assert every_object(prefix) == ["part-00000.csv"]


def test_the_job_writes_the_features_window_features_computes(spark: SparkSession, tmp_path: Path) -> None:
    # Given three weeks and a day of half hours with a daily rhythm, one afternoon at a quarter of it
    start = dt.datetime(2024, 1, 1)
    pickups, counts = [], []
    for index in range(22 * 48):
        hour = (index % 48) / 2
        passengers = 20 + round(15 * (1 + (hour > 7) - (hour > 21))) + (index * 7) % 5
        if 10 * 48 + 28 <= index < 10 * 48 + 36:
            passengers //= 4
        pickups.append(start + dt.timedelta(minutes=30 * index + 7))
        counts.append(passengers)
    write_tlc_parquet(tmp_path / "in" / "three_weeks.parquet", pickups, pa.array(counts, pa.int64()))

    # When the job runs
    result = run_prep(spark, str(tmp_path / "in"), str(tmp_path / "out"), LOGGER)

    # Then it found the weekly pattern and wrote, per window, exactly window_features' expected values and
    # vectors for that series (to the 3 and 6 decimals it keeps)
    assert (result.windows, result.seasonality) == (22 * 48, "weekly")
    epoch = [(start + dt.timedelta(minutes=30 * index)).replace(tzinfo=dt.UTC).timestamp() for index in range(22 * 48)]
    features = series_features(epoch, counts)
    records = scoring_records(tmp_path / "out")
    assert [record["passengers"] for record in records] == counts
    assert [record["expected"] for record in records] == pytest.approx(features.expected, abs=1e-3)
    written = [[float(value) for value in line.split(",")] for line in part_file_lines(tmp_path / "out" / "train")]
    np.testing.assert_allclose(np.array(written), features.vectors, atol=1e-6)
    # And the afternoon at a quarter of its usual count deviates strongly from what was expected of it
    assert min(features.deviation[10 * 48 + 28 : 10 * 48 + 36]) < -5


def test_a_rerun_overwrites_the_outputs(spark: SparkSession, tmp_path: Path) -> None:
    # Given a first run with 2 windows
    write_tlc_csv(tmp_path / "in1" / "t.csv", [("2024-01-01 00:10:00", "1"), ("2024-01-01 00:40:00", "2")])
    run_prep(spark, str(tmp_path / "in1"), str(tmp_path / "out"), LOGGER)
    write_tlc_csv(tmp_path / "in2" / "t.csv", [("2024-05-01 00:10:00", "6")])

    # When a second run writes to the same place
    run_prep(spark, str(tmp_path / "in2"), str(tmp_path / "out"), LOGGER)

    # Then only the second run's window is there
    assert len(part_file_lines(tmp_path / "out" / "train")) == 1
    assert [(record["window_start"], record["passengers"]) for record in scoring_records(tmp_path / "out")] == [
        ("2024-05-01 00:00:00", 6)
    ]
