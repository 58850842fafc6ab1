"""Streaming metrics ETL on local Spark, fed the way Glue's Kinesis source feeds it.

Records go in as Kinesis data blobs (bytes) through :mod:`local_mode.kinesis_source`, which parses them with the
job's own source schema and Spark's JSON parser, so every record kind takes the read path of the deployed job as
far as local Spark can reproduce it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from anomaly_detector.scoring import aggregate_csv
from anomaly_detector.stores import LocalDirStore
from pyspark.sql import DataFrame, SparkSession

from glue_scripts.streaming_etl import (
    EMPTY_OR_UNKNOWN,
    INVALID_JSON,
    NOT_UTF8,
    StreamSettings,
    column_list,
    format_batch_id,
    kinesis_connection_options,
    process_batch,
    source_schema,
    split_batch,
    write_batch,
)
from local_mode.kinesis_source import RecordRejectedError, records_batch

pytestmark = pytest.mark.spark

# The default metric set: dimensions platform, marketplace; measures views, revenue.
FIVE_MINUTES = StreamSettings(frequency_minutes=5)
TEN_MINUTES = StreamSettings(frequency_minutes=10)
INTERVAL = ("2026-11-25", "1915")
HEADER = "event_time,platform,marketplace,views,revenue"
_ABSENT = object()


def event(
    event_time: object = "2026-11-25 19:18:28",
    views: object = 12,
    marketplace: object = "US",
    platform: object = "web",
    revenue: object = 34.5,
) -> bytes:
    """One JSON event; a field given as ``_ABSENT`` is left out of the object."""
    record = {"platform": platform, "marketplace": marketplace, "event_time": event_time, "views": views}
    record["revenue"] = revenue
    return json.dumps({name: value for name, value in record.items() if value is not _ABSENT}).encode("utf-8")


def batch(spark: SparkSession, records: Sequence[bytes], settings: StreamSettings = FIVE_MINUTES) -> DataFrame:
    return records_batch(spark, records, settings)


def good_rows(spark: SparkSession, records: Sequence[bytes], settings: StreamSettings) -> list[dict[str, object]]:
    batch_split = split_batch(batch(spark, records, settings), settings, batch_id=1)
    rows = [row.asDict() for row in batch_split.good.collect()]
    batch_split.release()
    return rows


def quarantined(spark: SparkSession, records: Sequence[bytes]) -> list[dict[str, object]]:
    batch_split = split_batch(batch(spark, records), FIVE_MINUTES, batch_id=42)
    rows = [row.asDict() for row in batch_split.quarantine.collect()]
    batch_split.release()
    return rows


def interval_files(root: Path, interval: tuple[str, str] = INTERVAL) -> list[Path]:
    return sorted((root / f"intvl_date={interval[0]}" / f"intvl_hhmm={interval[1]}").rglob("part-*.csv"))


def data_lines(files: Sequence[Path]) -> list[str]:
    return sorted(line for path in files for line in path.read_text().splitlines()[1:])


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
    assert [row["intvl_hhmm"] for row in rows] == expected_hhmm
    assert [row["intvl_date"] for row in rows] == ["2026-11-25"] * 5
    assert [row["event_time"] for row in rows] == [
        "2026-11-25 19:18:28",
        "2026-11-25 19:15:00",
        "2026-11-25 23:59:59",
        "2026-11-25 19:18:28",
        "2026-11-25 19:18:28",
    ]


def test_good_rows_keep_timestamp_dimensions_measures_interval_and_batch_in_that_order(spark: SparkSession) -> None:
    # Given one event with an extra field the metric set does not name
    extra = json.dumps({**json.loads(event(views=12)), "session": "abc"}).encode()
    batch_split = split_batch(batch(spark, [extra]), FIVE_MINUTES, batch_id=3)

    # When the good rows are read
    good = batch_split.good.collect()
    batch_split.release()

    # Then only the configured columns (timestamp, dimensions, measures), the interval and the batch remain,
    # the measures as numbers
    assert batch_split.good.columns == [
        "event_time", "platform", "marketplace", "views", "revenue", "intvl_date", "intvl_hhmm", "batch_id"
    ]  # fmt: skip
    assert [tuple(row) for row in good] == [
        ("2026-11-25 19:18:28", "web", "US", 12.0, 34.5, "2026-11-25", "1915", "000000000003")
    ]


def test_other_dimension_and_measure_columns_can_be_configured_in_any_order(spark: SparkSession) -> None:
    # Given settings that name marketplace before platform, revenue before views, and one setting with a
    # single dimension and measure
    swapped = StreamSettings(
        frequency_minutes=10, dimensions=("marketplace", "platform"), measures=("revenue", "views")
    )
    narrow = StreamSettings(frequency_minutes=10, dimensions=("platform",), measures=("revenue",))

    # When an event is split with each
    wide_rows = good_rows(spark, [event()], swapped)
    narrow_rows = good_rows(spark, [event()], narrow)

    # Then exactly those fields are kept, in the configured order
    assert [list(row) for row in wide_rows] == [
        ["event_time", "marketplace", "platform", "revenue", "views", "intvl_date", "intvl_hhmm", "batch_id"]
    ]
    assert [list(row.values())[:5] for row in wide_rows] == [["2026-11-25 19:18:28", "US", "web", 34.5, 12.0]]
    assert [list(row.values())[:3] for row in narrow_rows] == [["2026-11-25 19:18:28", "web", 34.5]]
    assert list(narrow_rows[0]) == ["event_time", "platform", "revenue", "intvl_date", "intvl_hhmm", "batch_id"]


@pytest.mark.parametrize(
    ("dimensions", "measures", "message"),
    [
        ((), ("views",), "at least one dimension"),
        (("platform",), (), "at least one dimension"),
        (("platform", "platform"), ("views",), "distinct"),
        (("platform",), ("platform",), "distinct"),
        (("event_time",), ("views",), "distinct"),
        (("batch_id",), ("views",), "reserved"),
        (("a,b",), ("views",), "commas"),
    ],
)
def test_a_bad_metric_set_is_refused(dimensions: tuple[str, ...], measures: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamSettings(dimensions=dimensions, measures=measures)


def test_job_arguments_are_comma_separated_field_names() -> None:
    assert column_list("platform,marketplace", "dimensions") == ("platform", "marketplace")
    assert column_list(" views , revenue ", "measures") == ("views", "revenue")
    with pytest.raises(ValueError, match="--measures"):
        column_list("views,,revenue", "measures")


@pytest.mark.parametrize("frequency_minutes", [0, 7, 45])
def test_an_interval_that_does_not_tile_the_hour_is_refused(frequency_minutes: int) -> None:
    with pytest.raises(ValueError, match="frequency_minutes"):
        StreamSettings(frequency_minutes=frequency_minutes)


def test_valid_records_with_quotes_commas_and_newlines_pass_intact(spark: SparkSession) -> None:
    # Given valid JSON whose values hold a comma, quotes and a newline, one record pretty-printed over several
    # lines, and one whose measure is a quoted number
    tricky = '"quoted", with comma\nand newline'
    pretty = json.dumps(
        {"platform": "ios", "marketplace": "uk", "event_time": "2026-11-25 19:16:00", "views": 2, "revenue": 0},
        indent=2,
    ).encode()
    records = [event(marketplace=tricky, views=5), pretty, event(marketplace="de", views="7", platform=tricky)]

    # When the batch is split
    rows = good_rows(spark, records, FIVE_MINUTES)

    # Then all three are good, with their values exactly
    assert sorted((row["platform"], row["marketplace"], row["views"]) for row in rows) == [
        (tricky, "de", 7.0),
        ("ios", "uk", 2.0),
        ("web", tricky, 5.0),
    ]


def test_every_kind_of_bad_record_is_quarantined_with_its_reason(spark: SparkSession) -> None:
    # Given bad records of every kind, as Kinesis data blobs
    bad_records: dict[bytes, str] = {
        b"not json at all": INVALID_JSON,
        b'{"marketplace": "US", "views": ': INVALID_JSON,
        b'"starts with a quote", then text': INVALID_JSON,
        b'"a JSON string, not an object"': INVALID_JSON,
        b"[1, 2, 3]": INVALID_JSON,
        b"a,b,c\n1,2,3": INVALID_JSON,
        b'{"broken": "\xff\xfe': INVALID_JSON,
        b"": EMPTY_OR_UNKNOWN,
        b"   ": EMPTY_OR_UNKNOWN,
        b"{}": EMPTY_OR_UNKNOWN,
        b'{"something": "else"}': EMPTY_OR_UNKNOWN,
        json.dumps({"event_time": "2026-11-25 19:18:28", "views": 1}).encode(): "missing field platform",
        event(platform=_ABSENT): "missing field platform",
        event(platform=None, marketplace=None): "missing field platform",
        event(marketplace=None): "missing field marketplace",
        event(marketplace="  "): "missing field marketplace",
        event(marketplace=_ABSENT, event_time=_ABSENT): "missing field marketplace",
        event(event_time=_ABSENT): "missing field event_time",
        event(event_time=_ABSENT, views=None): "missing field event_time",
        json.dumps({"platform": "web", "marketplace": "US", "event_time": "2026-11-25 19:18:28"}).encode(): (
            "missing field views"
        ),
        event(views=None): "missing field views",
        event(revenue=_ABSENT): "missing field revenue",
        event(revenue=""): "missing field revenue",
        event(views="many", revenue=_ABSENT): "missing field revenue",
        event(marketplace="\udcffUS").replace(b"\\udcff", b"\xff"): NOT_UTF8,
        b'{"platform": "\xff", "marketplace": "US", "event_time": "2026-11-25 19:18:28", "views": 1, "revenue": 1}': (
            NOT_UTF8
        ),
        event("yesterday evening"): "unparseable timestamp",
        event("2026-13-45 25:61:00"): "unparseable timestamp",
        event("2026"): "unparseable timestamp",
        event(views="a dozen"): "non-numeric views",
        event(views=True): "non-numeric views",
        event(views={"n": 1}): "non-numeric views",
        event(views="NaN"): "non-numeric views",
        event(revenue="free"): "non-numeric revenue",
        event(revenue="Infinity"): "non-numeric revenue",
        event(views="x", revenue="y"): "non-numeric views",
    }

    # When they are split with one good record
    rows = quarantined(spark, [event(), *bad_records])

    # Then each bad record is quarantined once, with the first reason that applies
    assert len(rows) == len(bad_records)
    assert sorted(str(row["reason"]) for row in rows) == sorted(bad_records.values())
    assert all(isinstance(row["quarantined_at"], dt.datetime) for row in rows)


def test_a_malformed_record_is_quarantined_byte_for_byte_even_when_it_is_not_utf8(spark: SparkSession) -> None:
    # Given malformed records: a leading quote, a comma, a newline, quotes, and bytes that are not UTF-8
    malformed = [b'"quoted", then, commas', b'{"a": 1,\n "b": ', b'{"x": "\xff\xfe\x00 tail', b"\x00\x01binary"]
    malformed.append(b"{" + b"x" * 200)  # longer than one MIME line of base64

    # When they are quarantined
    rows = quarantined(spark, malformed)

    # Then each carries its exact bytes (base64) and says its text is complete
    assert sorted(base64.b64decode(str(row["raw_base64"]), validate=True) for row in rows) == sorted(malformed)
    assert {row["raw_complete"] for row in rows} == {True}
    assert {row["reason"] for row in rows} == {INVALID_JSON}


def test_a_well_formed_record_with_bad_fields_keeps_the_fields_it_has(spark: SparkSession) -> None:
    # Given valid JSON with a bad timestamp
    rows = quarantined(spark, [event("whenever", views=3)])

    # Then the quarantine holds its known fields (the other fields are not available from Glue's parser)
    assert len(rows) == 1
    assert json.loads(str(rows[0]["raw"])) == {
        "event_time": "whenever",
        "platform": "web",
        "marketplace": "US",
        "views": "3",
        "revenue": "34.5",
    }
    assert rows[0]["raw_complete"] is False


def test_a_source_without_the_corrupt_record_column_still_splits(spark: SparkSession) -> None:
    # Given a source frame that never got the corrupt-record column (a Glue parser that ignores it)
    frame = spark.createDataFrame(
        [("web", "US", "2026-11-25 19:18:28", "3", "1.5"), (None, None, None, None, None)],
        "platform string, marketplace string, event_time string, views string, revenue string",
    )

    # When it is split
    batch_split = split_batch(frame, FIVE_MINUTES, batch_id=1)
    reasons = [row["reason"] for row in batch_split.quarantine.collect()]
    good = batch_split.good.count()
    batch_split.release()

    # Then the all-null row is quarantined rather than lost or failing the batch
    assert (good, reasons) == (1, [EMPTY_OR_UNKNOWN])


def test_records_that_are_not_bytes_cannot_enter_the_emulated_stream(spark: SparkSession) -> None:
    with pytest.raises(RecordRejectedError, match="record 1 is str"):
        records_batch(spark, [event(), "text"], FIVE_MINUTES)  # type: ignore[list-item]


def test_written_csv_reads_back_exactly_in_the_detector(spark: SparkSession, tmp_path: Path) -> None:
    # Given dimension values with a comma, quotes and a newline
    values = {'a,"b"': 1, "line\nbreak": 2, '"': 3, "plain": 4}
    records = [event(marketplace=name, views=views) for name, views in values.items()]

    # When the batch is written and the interval read with the detector's CSV aggregation
    process_batch(batch(spark, records), 1, FIVE_MINUTES, str(tmp_path / "m"), str(tmp_path / "q"))
    texts = [path.read_text() for path in interval_files(tmp_path / "m")]
    aggregate = aggregate_csv(texts, "marketplace", "views", "event_time")

    # Then every value and total comes back as written
    assert aggregate.totals == {name: float(views) for name, views in values.items()}
    assert aggregate.skipped_rows == 0


def test_two_dimensions_and_two_measures_read_back_exactly_per_combination(spark: SparkSession, tmp_path: Path) -> None:
    # Given events for two platforms and marketplaces, values with commas, quotes and newlines in both
    # dimensions, one record whose revenue is not a number and one without a platform
    odd = 'a,"b"\nc'
    records = [
        event(platform="web", marketplace="de", views=3, revenue=1.25),
        event(platform="web", marketplace="de", views=4, revenue=2),
        event(platform=odd, marketplace="de", views=5, revenue=0.5),
        event(platform="ios", marketplace=odd, views=6, revenue=10),
        event(platform="ios", marketplace="us", views=7, revenue="n/a"),
        event(platform=_ABSENT, marketplace="us", views=8, revenue=1),
    ]

    # When the batch is written and the interval read back with Python's csv module (as the detector reads it)
    counts = process_batch(batch(spark, records), 2, FIVE_MINUTES, str(tmp_path / "m"), str(tmp_path / "q"))
    totals: dict[tuple[str, str], list[float]] = {}
    for path in interval_files(tmp_path / "m"):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == HEADER.split(",")
            for row in reader:
                total = totals.setdefault((row["platform"], row["marketplace"]), [0.0, 0.0])
                total[0] += float(row["views"])
                total[1] += float(row["revenue"])

    # Then each combination keeps both measures, and the two bad records are quarantined whole, with the reason
    assert totals == {("web", "de"): [7.0, 3.25], (odd, "de"): [5.0, 0.5], ("ios", odd): [6.0, 10.0]}
    assert (counts.good, counts.quarantined) == (4, 2)
    reasons = sorted(
        json.loads(line)["reason"]
        for path in (tmp_path / "q").rglob("part-*.json")
        for line in path.read_text().splitlines()
    )
    assert reasons == ["missing field platform", "non-numeric revenue"]


def test_write_batch_lays_out_interval_and_batch_partitions(spark: SparkSession, tmp_path: Path) -> None:
    # Given an on-time record at 19:18:28 and a late one from 18:02:10 in batch 7, plus a bad record
    records = [event("2026-11-25 19:18:28", views=12), event("2026-11-25 18:02:10", views=3), b"oops"]
    good_df, quarantine_df = split_batch(batch(spark, records), FIVE_MINUTES, batch_id=7)

    # When the batch is written
    write_batch(good_df, quarantine_df, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then each record sits under its own interval and the batch's folder, in a CSV with a header
    # (whole measures without ".0")
    on_time = interval_files(tmp_path / "metrics")
    late = interval_files(tmp_path / "metrics", ("2026-11-25", "1800"))
    assert [path.parent.name for path in on_time + late] == ["batch_id=000000000007"] * 2
    assert on_time[0].read_text().splitlines() == [HEADER, "2026-11-25 19:18:28,web,US,12,34.5"]
    assert late[0].read_text().splitlines() == [HEADER, "2026-11-25 18:02:10,web,US,3,34.5"]
    # And the bad record is a JSON line under the batch's quarantine folder
    quarantine_files = list((tmp_path / "quarantine" / "batch_id=000000000007").glob("part-*.json"))
    lines = [json.loads(line) for path in quarantine_files for line in path.read_text().splitlines()]
    assert [(line["raw"], line["reason"], line["raw_complete"]) for line in lines] == [("oops", INVALID_JSON, True)]
    assert lines[0]["quarantined_at"].endswith("Z")


def test_a_replayed_batch_replaces_its_own_files_and_the_detector_reads_it_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given batch 5 written once, with a leftover file from a failed earlier attempt in its folder,
    # and batch 6 for the same interval
    output, quarantine = str(tmp_path / "metrics" / "intervals"), str(tmp_path / "metrics" / "quarantine")
    fifth = [event(views=1), event(views=2), b"{bad"]
    process_batch(batch(spark, fifth), 5, FIVE_MINUTES, output, quarantine)
    batch_folder = tmp_path / "metrics/intervals/intvl_date=2026-11-25/intvl_hhmm=1915/batch_id=000000000005"
    (batch_folder / "part-99999-from-a-failed-attempt.c000.csv").write_text(f"{HEADER}\nx,web,US,100,1\n")
    process_batch(batch(spark, [event(views=4)]), 6, FIVE_MINUTES, output, quarantine)
    files_after_first_run = interval_files(tmp_path / "metrics" / "intervals")

    # When batch 5 runs again (Glue's batch retry or a replay from the checkpoint after a restart)
    counts = process_batch(batch(spark, fifth), 5, FIVE_MINUTES, output, quarantine)

    # Then its folder holds exactly one run's rows, batch 6 is untouched, and so is the quarantine
    assert (counts.good, counts.quarantined) == (2, 1)
    files = interval_files(tmp_path / "metrics" / "intervals")
    assert len(files) == len(files_after_first_run) - 1  # the leftover is gone
    assert data_lines(files) == [f"2026-11-25 19:18:28,web,US,{views},34.5" for views in (1, 2, 4)]
    quarantined_files = sorted((tmp_path / "metrics/quarantine").rglob("part-*.json"))
    assert [path.parent.name for path in quarantined_files] == ["batch_id=000000000005"]
    assert sum(len(path.read_text().splitlines()) for path in quarantined_files) == 1
    # And the detector's store sums the interval once: 1 + 2 + 4
    store = LocalDirStore(tmp_path / "metrics", "intervals/", "anomalies/", "state.json")
    texts = store.read_interval_csvs(dt.datetime(2026, 11, 25, 19, 15, tzinfo=dt.UTC))
    assert aggregate_csv(texts, "marketplace", "views").totals == {"US": 7.0}


def test_fractional_measures_keep_their_fraction_and_whole_ones_lose_the_point_zero(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Given whole, fractional and large measures (views), and a whole revenue written as a float
    records = [event(views=98, revenue=3.0), event(views=2.5), event(views=-4), event(views=1e17)]
    good_df, quarantine_df = split_batch(batch(spark, records), FIVE_MINUTES, batch_id=1)

    # When the batch is written
    write_batch(good_df, quarantine_df, str(tmp_path / "metrics"), str(tmp_path / "quarantine"))

    # Then whole numbers read as integers, the others as Spark writes a double
    lines = data_lines(interval_files(tmp_path / "metrics"))
    assert sorted(line.split(",")[3] for line in lines) == ["-4", "1.0E17", "2.5", "98"]
    assert sorted(line.split(",")[4] for line in lines) == ["3", "34.5", "34.5", "34.5"]


def test_an_all_bad_batch_writes_only_quarantine(spark: SparkSession, tmp_path: Path) -> None:
    counts = process_batch(
        batch(spark, [b"nope", event(views="many")]), 5, FIVE_MINUTES, str(tmp_path / "m"), str(tmp_path / "q")
    )
    assert (counts.good, counts.quarantined, counts.skipped_empty) == (0, 2, False)
    assert not (tmp_path / "m").exists()
    assert (tmp_path / "q").exists()


def test_an_empty_batch_is_skipped_without_writing(spark: SparkSession, tmp_path: Path) -> None:
    counts = process_batch(batch(spark, []), 9, FIVE_MINUTES, str(tmp_path / "m"), str(tmp_path / "q"))
    assert (counts.good, counts.quarantined, counts.skipped_empty) == (0, 0, True)
    assert not (tmp_path / "m").exists()
    assert not (tmp_path / "q").exists()


def test_source_options_are_the_documented_kinesis_options(spark: SparkSession) -> None:
    # Given the options the job passes to create_data_frame.from_options
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/metrics"
    options = kinesis_connection_options(arn, FIVE_MINUTES, "LATEST")

    # Then they are documented Kinesis connection options, and the schema is DDL Spark accepts
    assert options == {
        "streamARN": arn,
        "classification": "json",
        "startingPosition": "LATEST",
        "inferSchema": "false",
        "schema": (
            "`event_time` STRING, `platform` STRING, `marketplace` STRING, `views` STRING, `revenue` STRING, "
            "`_corrupt_record` STRING"
        ),
        "avoidEmptyBatches": "true",
        "emitConsumerLagMetrics": "true",
    }
    assert spark.createDataFrame([], source_schema(FIVE_MINUTES)).columns == [
        "event_time",
        "platform",
        "marketplace",
        "views",
        "revenue",
        "_corrupt_record",
    ]
    assert format_batch_id(42) == "000000000042"
