"""Streaming metrics ETL batch logic on local Spark: interval bucketing, quarantine and the written layout."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from glue_scripts.streaming_etl import (
    StreamSettings,
    process_batch,
    raw_records,
    split_batch,
    write_batch,
)

pytestmark = pytest.mark.spark

FIVE_MINUTES = StreamSettings(frequency_minutes=5)
TEN_MINUTES = StreamSettings(frequency_minutes=10)


def event(event_time: object = "2026-11-25 19:18:28", views: object = 12, marketplace: object = "US") -> str:
    return json.dumps(
        {"platform": "web", "marketplace": marketplace, "event_time": event_time, "views": views, "revenue": 34.5}
    )


def raw_batch(spark: SparkSession, records: Sequence[str | None]) -> DataFrame:
    return spark.createDataFrame([(record,) for record in records], "raw string")


def good_rows(spark: SparkSession, records: Sequence[str | None], settings: StreamSettings) -> list[tuple[object, ...]]:
    batch_split = split_batch(raw_batch(spark, records), settings, batch_id=1)
    rows = [tuple(row) for row in batch_split.good.collect()]
    batch_split.release()
    return rows


@pytest.mark.parametrize(
    ("settings", "expected_hhmm"),
    [
        (FIVE_MINUTES, ["1915", "1915", "2355", "1915", "1915"]),
        (TEN_MINUTES, ["1910", "1910", "2350", "1910", "1910"]),
    ],
    ids=["5-minutes", "10-minutes"],
)
def test_records_land_in_the_interval_that_starts_at_their_floored_event_time(
    spark: SparkSession, settings: StreamSettings, expected_hhmm: list[str]
) -> None:
    # Given a mid-interval time, an exact 5-minute boundary, the last second of the day, and ISO-8601 times
    records = [
        event("2026-11-25 19:18:28"),
        event("2026-11-25 19:15:00"),
        event("2026-11-25 23:59:59"),
        event("2026-11-25T19:18:28Z"),
        event("2026-11-25T21:18:28+02:00"),
    ]

    # When the batch is split
    rows = good_rows(spark, records, settings)

    # Then each record keeps its own date and is floored to the interval start; times are UTC and normalised
    assert [row[4] for row in rows] == expected_hhmm
    assert [row[3] for row in rows] == ["2026-11-25"] * 5
    assert [row[1] for row in rows] == [
        "2026-11-25 19:18:28",
        "2026-11-25 19:15:00",
        "2026-11-25 23:59:59",
        "2026-11-25 19:18:28",
        "2026-11-25 19:18:28",
    ]


def test_good_rows_keep_only_dimension_timestamp_measure_and_interval(spark: SparkSession) -> None:
    # Given one event with extra fields (platform, revenue)
    batch_split = split_batch(raw_batch(spark, [event(views=12)]), FIVE_MINUTES, batch_id=3)

    # When the good rows are read
    good = batch_split.good.collect()
    batch_split.release()

    # Then only the configured columns and the interval remain, the measure as a number
    assert batch_split.good.columns == ["marketplace", "event_time", "views", "intvl_date", "intvl_hhmm"]
    assert [tuple(row) for row in good] == [("US", "2026-11-25 19:18:28", 12.0, "2026-11-25", "1915")]


def test_other_dimension_and_measure_columns_can_be_configured(spark: SparkSession) -> None:
    # Given settings that use platform and revenue
    settings = StreamSettings(frequency_minutes=10, dimension_column="platform", measure_column="revenue")

    # When an event is split
    rows = good_rows(spark, [event()], settings)

    # Then those fields are kept
    assert rows == [("web", "2026-11-25 19:18:28", 34.5, "2026-11-25", "1910")]


@pytest.mark.parametrize("frequency_minutes", [0, 7, 45])
def test_an_interval_that_does_not_tile_the_hour_is_refused(frequency_minutes: int) -> None:
    # Given / When / Then
    with pytest.raises(ValueError, match="frequency_minutes"):
        StreamSettings(frequency_minutes=frequency_minutes)


def test_every_kind_of_bad_record_is_quarantined_with_its_reason(spark: SparkSession) -> None:
    # Given one good record and bad ones of every kind
    without_marketplace = json.dumps({"event_time": "2026-11-25 19:18:28", "views": 1})
    without_event_time = json.dumps({"marketplace": "US", "views": 1})
    without_views = json.dumps({"marketplace": "US", "event_time": "2026-11-25 19:18:28"})
    bad_records = {
        "not json at all": "invalid JSON",
        '{"marketplace": "US", "views": ': "invalid JSON",
        "[1, 2, 3]": "invalid JSON",
        "": "invalid JSON",
        without_marketplace: "missing field marketplace",
        event(marketplace=None): "missing field marketplace",
        without_event_time: "missing field event_time",
        without_views: "missing field views",
        event(views=None): "missing field views",
        event("yesterday evening"): "unparseable timestamp",
        event("2026-13-45 25:61:00"): "unparseable timestamp",
        event("2026"): "unparseable timestamp",
        event(views="a dozen"): "non-numeric views",
        event(views=True): "non-numeric views",
    }
    records = [event(), *bad_records]

    # When the batch is split
    batch_split = split_batch(raw_batch(spark, records), FIVE_MINUTES, batch_id=42)
    quarantined = batch_split.quarantine.collect()
    good_count = batch_split.good.count()
    batch_split.release()

    # Then the good record passes and each bad one is quarantined with the right reason and the batch id
    assert good_count == 1
    assert {row["raw"]: row["reason"] for row in quarantined} == bad_records
    assert {row["batch_id"] for row in quarantined} == {42}
    assert all(isinstance(row["quarantined_at"], dt.datetime) for row in quarantined)
    assert batch_split.quarantine.columns == ["raw", "reason", "batch_id", "quarantined_at"]


def test_a_null_record_is_quarantined_as_invalid_json(spark: SparkSession) -> None:
    # Given a record without any text
    batch_split = split_batch(raw_batch(spark, [None]), FIVE_MINUTES, batch_id=0)

    # When the quarantine is read
    reasons = [row["reason"] for row in batch_split.quarantine.collect()]
    batch_split.release()

    # Then it is invalid JSON
    assert reasons == ["invalid JSON"]


def test_write_batch_lays_out_interval_partitions_with_a_csv_header(spark: SparkSession, tmp_path: Path) -> None:
    # Given an on-time record at 19:18:28 and a late one from 18:02:10 in the same batch, plus a bad record
    records = [event("2026-11-25 19:18:28", views=12), event("2026-11-25 18:02:10", views=3), "oops"]
    good_df, quarantine_df = split_batch(raw_batch(spark, records), FIVE_MINUTES, batch_id=7)

    # When the batch is written
    write_batch(good_df, quarantine_df, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then each record sits under its own interval, in a CSV with a header and formatted timestamps
    on_time = list((tmp_path / "metrics" / "intvl_date=2026-11-25" / "intvl_hhmm=1915").glob("part-*.csv"))
    late = list((tmp_path / "metrics" / "intvl_date=2026-11-25" / "intvl_hhmm=1800").glob("part-*.csv"))
    assert len(on_time) == 1
    assert len(late) == 1
    # (whole measures without ".0")
    assert on_time[0].read_text().splitlines() == ["marketplace,event_time,views", "US,2026-11-25 19:18:28,12"]
    assert late[0].read_text().splitlines() == ["marketplace,event_time,views", "US,2026-11-25 18:02:10,3"]
    # And the bad record is a JSON line under today's ingest date
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    quarantine_files = list((tmp_path / "quarantine" / f"ingest_date={today}").glob("part-*.json"))
    lines = [json.loads(line) for path in quarantine_files for line in path.read_text().splitlines()]
    assert [(line["raw"], line["reason"], line["batch_id"]) for line in lines] == [("oops", "invalid JSON", 7)]
    assert line_has_utc_timestamp(lines[0]["quarantined_at"])


def line_has_utc_timestamp(value: str) -> bool:
    return value.endswith("Z") and dt.datetime.fromisoformat(value) is not None


def test_process_batch_counts_and_appends_batches(spark: SparkSession, tmp_path: Path) -> None:
    # Given two batches for the same interval, the second with a bad record
    output_uri, quarantine_uri = str(tmp_path / "metrics"), str(tmp_path / "quarantine")
    first = raw_batch(spark, [event(views=1), event(views=2)])
    second = raw_batch(spark, [event(views=3), '{"broken'])

    # When both are processed
    first_counts = process_batch(first, 1, FIVE_MINUTES, output_uri, quarantine_uri)
    second_counts = process_batch(second, 2, FIVE_MINUTES, output_uri, quarantine_uri)

    # Then the counts are per batch and the interval folder holds the rows of both (appended)
    assert (first_counts.good, first_counts.quarantined) == (2, 0)
    assert (second_counts.good, second_counts.quarantined) == (1, 1)
    interval = tmp_path / "metrics" / "intvl_date=2026-11-25" / "intvl_hhmm=1915"
    data_lines = [line for path in interval.glob("part-*.csv") for line in path.read_text().splitlines()[1:]]
    assert sorted(data_lines) == [f"US,2026-11-25 19:18:28,{views}" for views in (1, 2, 3)]


def test_fractional_measures_keep_their_fraction_and_whole_ones_lose_the_point_zero(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given whole, fractional and large measures
    records = [event(views=98), event(views=2.5), event(views=-4), event(views=1e17)]
    good_df, quarantine_df = split_batch(raw_batch(spark, records), FIVE_MINUTES, batch_id=1)

    # When the batch is written
    write_batch(good_df, quarantine_df, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then whole numbers read as integers, the others as Spark writes a double
    interval = tmp_path / "metrics" / "intvl_date=2026-11-25" / "intvl_hhmm=1915"
    values = sorted(
        line.rsplit(",", 1)[1] for path in interval.glob("part-*.csv") for line in path.read_text().splitlines()[1:]
    )
    assert values == ["-4", "1.0E17", "2.5", "98"]


def test_an_all_bad_batch_writes_only_quarantine(spark: SparkSession, tmp_path: Path) -> None:
    # Given a batch with nothing usable
    batch = raw_batch(spark, ["nope", event(views="many")])

    # When it is processed
    counts = process_batch(batch, 5, FIVE_MINUTES, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then nothing reaches the metrics location and both records are quarantined
    assert (counts.good, counts.quarantined, counts.skipped_empty) == (0, 2, False)
    assert not (tmp_path / "metrics").exists()
    assert (tmp_path / "quarantine").exists()


def test_an_empty_batch_is_skipped_without_writing(spark: SparkSession, tmp_path: Path) -> None:
    # Given an empty batch
    batch = raw_batch(spark, [])

    # When it is processed
    counts = process_batch(batch, 9, FIVE_MINUTES, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then it is reported as skipped and no folder is created
    assert (counts.good, counts.quarantined, counts.skipped_empty) == (0, 0, True)
    assert not (tmp_path / "metrics").exists()
    assert not (tmp_path / "quarantine").exists()


def test_raw_records_takes_the_text_from_any_source_shape(spark: SparkSession) -> None:
    # Given the shapes a Kinesis source can produce: one text column under another name, binary data
    one_column = spark.createDataFrame([("{}",)], "value string")
    binary_data = spark.createDataFrame([(bytearray(b'{"a": 1}'), "shard-1")], "data binary, partitionKey string")

    # When they are normalised
    texts = [raw_records(frame).collect()[0]["raw"] for frame in (one_column, binary_data)]

    # Then the record text is in the raw column
    assert texts == ["{}", '{"a": 1}']
    assert raw_records(binary_data).columns == ["raw"]
