"""The metric set: series keys, the DIMENSIONS/MEASURES settings, and aggregation at every level."""

from __future__ import annotations

import pytest
from anomaly_detector.metric_set import (
    CsvFormatError,
    Measure,
    MetricSet,
    MetricSetError,
    aggregate_intervals,
    escape_value,
    parse_dimensions,
    parse_measures,
    parse_series_key,
    unescape_value,
)

TWO_BY_TWO = MetricSet(("platform", "marketplace"), (Measure("views", "sum"), Measure("revenue", "sum")))
HEADER = "event_time,platform,marketplace,views,revenue\n"


def test_keys_cover_the_leaf_each_dimension_on_its_own_and_the_total() -> None:
    assert TWO_BY_TWO.series_keys("revenue", ["web", "de"]) == [
        "revenue|platform=web|marketplace=de",
        "revenue|platform=web|marketplace=*",
        "revenue|platform=*|marketplace=de",
        "revenue|platform=*|marketplace=*",
    ]


def test_with_three_dimensions_only_single_dimension_rollups_are_kept() -> None:
    metric_set = MetricSet(("a", "b", "c"), (Measure("n", "count"),))
    assert metric_set.series_keys("n", ["1", "2", "3"]) == [
        "n|a=1|b=2|c=3",
        "n|a=1|b=*|c=*",
        "n|a=*|b=2|c=*",
        "n|a=*|b=*|c=3",
        "n|a=*|b=*|c=*",
    ]


def test_with_one_dimension_the_rollup_is_the_leaf_so_it_is_not_repeated() -> None:
    metric_set = MetricSet(("marketplace",), (Measure("views"),))
    assert metric_set.series_keys("views", ["de"]) == ["views|marketplace=de", "views|marketplace=*"]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a|b", "a%7Cb"), ("x=y", "x%3Dy"), ("*", "%2A"), ("100%", "100%25"), ("%7C", "%257C"), ("", "(empty)")],
)
def test_values_are_escaped_and_round_trip(raw: str, escaped: str) -> None:
    assert escape_value(raw) == escaped
    assert unescape_value(escaped) == raw


def test_a_key_parses_back_into_measure_values_and_level() -> None:
    key = TWO_BY_TWO.key("views", ["a|b", None])
    assert key == "views|platform=a%7Cb|marketplace=*"
    parsed = parse_series_key(key)
    assert (parsed.measure, parsed.dimensions, parsed.level) == (
        "views",
        {"platform": "a|b", "marketplace": None},
        "rollup",
    )
    assert parsed.record_dimensions() == {"platform": "a|b", "marketplace": "*"}
    assert parsed.label() == "a|b/*"
    assert parse_series_key("views|platform=*|marketplace=*").level == "total"
    assert parse_series_key("views|platform=%2A|marketplace=de").level == "combination"


def test_settings_parse_and_bad_ones_name_the_variable() -> None:
    assert parse_dimensions("platform, marketplace") == ("platform", "marketplace")
    assert parse_measures("views:sum,orders:count") == (Measure("views", "sum"), Measure("orders", "count"))
    with pytest.raises(MetricSetError, match="MEASURES"):
        parse_measures("views:avg")
    with pytest.raises(MetricSetError, match="MEASURES"):
        parse_measures("views")
    with pytest.raises(MetricSetError, match="DIMENSIONS"):
        parse_dimensions("platform,,marketplace")


def test_sums_at_every_level_across_files_with_blank_and_bad_cells() -> None:
    # Given two parts; one revenue cell is blank, one is not a number, one row has no marketplace
    first = HEADER + "t,web,de,10,1.5\nt,web,us,5,2\nt,ios,de,1,\n"
    second = HEADER + "t,ios,de,2,oops\nt,web,,4,1\n"

    aggregate = aggregate_intervals([first, second, ""], TWO_BY_TWO, "event_time")

    totals = aggregate.totals
    # Then every level is the hand-computed sum; bad cells add nothing and mark their rows as skipped
    assert totals["views|platform=web|marketplace=de"] == 10
    assert totals["views|platform=ios|marketplace=de"] == 3
    assert totals["views|platform=web|marketplace=(empty)"] == 4
    assert totals["views|platform=web|marketplace=*"] == 19
    assert totals["views|platform=*|marketplace=de"] == 13
    assert totals["views|platform=*|marketplace=*"] == 22
    assert totals["revenue|platform=ios|marketplace=de"] == 0
    assert totals["revenue|platform=*|marketplace=de"] == 1.5
    assert totals["revenue|platform=*|marketplace=*"] == 4.5
    assert aggregate.rows == 5 and aggregate.skipped_rows == 2
    # 4 leaves, 2 platform roll-ups, 3 marketplace roll-ups, 1 total, per measure
    assert len(totals) == 2 * (4 + 2 + 3 + 1)


def test_count_counts_rows_where_the_field_is_present_and_not_empty() -> None:
    metric_set = MetricSet(("platform",), (Measure("views", "sum"), Measure("order_id", "count")))
    text = "platform,views,order_id\nweb,1,a\nweb,2,\nios,3,b\nios,4,c\n"
    totals = aggregate_intervals([text], metric_set).totals
    assert totals["order_id|platform=web"] == 1
    assert totals["order_id|platform=ios"] == 2
    assert totals["order_id|platform=*"] == 3
    assert totals["views|platform=*"] == 10


def test_a_file_without_a_configured_column_names_the_column_and_the_header() -> None:
    with pytest.raises(CsvFormatError) as raised:
        aggregate_intervals(["event_time,marketplace,views\nt,de,1\n"], TWO_BY_TWO, "event_time")
    message = str(raised.value)
    assert "platform, revenue" in message
    assert "event_time,marketplace,views" in message
