"""The prep job's input options and analysis range: pure functions, no Spark."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from glue_scripts.taxi_prep import (
    DEFAULT_MAX_WINDOWS,
    WINDOW_SECONDS,
    AnalysisRange,
    InputOptions,
    PrepInputError,
    RangePlan,
    check_window_cap,
    choose_analysis_range,
    input_options_from_arguments,
    optional_job_arguments,
    range_from_bulk,
    range_from_file_names,
    split_by_range,
)


def bucket(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS


def test_optional_job_arguments_are_read_in_both_glue_forms() -> None:
    # Given Glue's argv with the optional arguments as "--name value" and "--name=value", among others
    argv = ["script.py", "--JOB_NAME", "prep", "--analysis_start", "2024-01-01", "--max_windows=2000", "--x", "1"]

    # Then only the optional names are picked up
    assert optional_job_arguments(argv) == {"analysis_start": "2024-01-01", "max_windows": "2000"}


def test_input_options_parse_dates_datetimes_and_the_cap() -> None:
    options = input_options_from_arguments(
        {"--analysis_start": "2024-01-01", "--analysis_end": "2024-02-01T06:00:00Z", "--max_windows": "100"}
    )
    assert options == InputOptions(datetime(2024, 1, 1), datetime(2024, 2, 1, 6), 100)
    assert input_options_from_arguments({}) == InputOptions(None, None, DEFAULT_MAX_WINDOWS)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"analysis_start": "January"}, r"--analysis_start 'January' is not a date: use YYYY-MM-DD"),
        ({"analysis_start": "2024-02-01", "analysis_end": "2024-01-01"}, r"is not before --analysis_end 2024-01-01"),
        ({"max_windows": "0"}, r"--max_windows '0' must be a whole number of at least 1"),
        ({"max_windows": "lots"}, r"--max_windows 'lots'"),
    ],
)
def test_bad_input_options_fail_naming_the_argument(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(PrepInputError, match=message):
        input_options_from_arguments(arguments)


def test_the_file_names_months_give_the_range() -> None:
    # Given TLC monthly files (in sub-folders) for January and March
    files = ["s3://raw/taxi/a/yellow_tripdata_2024-01.parquet", "s3://raw/taxi/b/yellow_tripdata_2024-03.parquet"]

    # Then the range is first to last month, end exclusive, and says where it came from
    found = range_from_file_names(files)
    assert found == AnalysisRange(
        datetime(2024, 1, 1),
        datetime(2024, 4, 1),
        "the file names: yellow_tripdata_2024-01.parquet to yellow_tripdata_2024-03.parquet",
    )


def test_december_ends_on_the_first_of_january() -> None:
    found = range_from_file_names(["yellow_tripdata_2023-12.csv"])
    assert found is not None and found.end == datetime(2024, 1, 1)


@pytest.mark.parametrize(
    "names",
    [["trips.csv"], ["yellow_tripdata_2024-01.csv", "extra.csv"], ["2024-01_to_2024-03.csv"], []],
)
def test_file_names_without_exactly_one_month_each_give_no_range(names: list[str]) -> None:
    assert range_from_file_names(names) is None


def test_the_bulk_of_the_data_ignores_months_with_a_few_stray_pickups() -> None:
    # Given 3,000 trips in January 2024 and February 2024, 100 in March, and one each in 2002 and 2009
    trips = {
        bucket(datetime(2024, 1, 10)): 3000,
        bucket(datetime(2024, 2, 10)): 3000,
        bucket(datetime(2024, 3, 1)): 100,
        bucket(datetime(2002, 12, 31, 23, 30)): 1,
        bucket(datetime(2009, 1, 1)): 1,
    }

    # Then January to February is the bulk (March holds under 10 % of the busiest month)
    found = range_from_bulk(trips)
    assert found is not None
    assert (found.start, found.end) == (datetime(2024, 1, 1), datetime(2024, 3, 1))
    assert range_from_bulk({}) is None


def test_arguments_win_bound_by_bound() -> None:
    default = AnalysisRange(datetime(2024, 1, 1), datetime(2024, 2, 1), "the file names: x")
    only_end = choose_analysis_range(InputOptions(analysis_end=datetime(2024, 1, 15)), default)
    assert only_end == AnalysisRange(
        datetime(2024, 1, 1), datetime(2024, 1, 15), "--analysis_end and the file names: x"
    )
    assert choose_analysis_range(InputOptions(), default) == default
    with pytest.raises(PrepInputError, match="is empty"):
        choose_analysis_range(InputOptions(analysis_start=datetime(2024, 3, 1)), default)


def test_a_plan_knows_the_range_before_reading_only_from_arguments_or_file_names() -> None:
    january = AnalysisRange(datetime(2024, 1, 1), datetime(2024, 2, 1), "the file names: x")
    assert RangePlan(InputOptions(), january).before_reading() == january
    assert RangePlan(InputOptions()).before_reading() is None
    explicit = InputOptions(analysis_start=datetime(2024, 1, 1), analysis_end=datetime(2024, 1, 2))
    assert RangePlan(explicit).before_reading() == AnalysisRange(
        datetime(2024, 1, 1), datetime(2024, 1, 2), "--analysis_start/--analysis_end"
    )
    # Without either, the data decides
    assert RangePlan(InputOptions()).after_reading({bucket(datetime(2024, 5, 3)): 10}) == AnalysisRange(
        datetime(2024, 5, 1),
        datetime(2024, 6, 1),
        "the bulk of the data: months with at least 10% of the busiest month's trips",
    )


def test_splitting_keeps_the_range_and_counts_the_trips_outside_it() -> None:
    january = AnalysisRange(datetime(2024, 1, 1), datetime(2024, 2, 1), "x")
    per_bucket = {
        bucket(datetime(2023, 12, 31, 23, 30)): (5, 3),  # the window before the range
        bucket(datetime(2024, 1, 1)): (7, 4),  # the first window inside
        bucket(datetime(2024, 1, 31, 23, 30)): (2, 1),  # the last window inside
        bucket(datetime(2024, 2, 1)): (9, 6),  # the first window after
    }
    inside, outside = split_by_range(per_bucket, january)
    assert inside == {bucket(datetime(2024, 1, 1)): 7, bucket(datetime(2024, 1, 31, 23, 30)): 2}
    assert outside == 9
    assert split_by_range(per_bucket, None) == ({key: value[0] for key, value in per_bucket.items()}, 0)


def test_a_range_that_does_not_start_on_a_window_keeps_the_window_it_starts_in() -> None:
    odd = AnalysisRange(datetime(2024, 1, 1, 0, 10), datetime(2024, 1, 1, 1, 10), "x")
    assert odd.start_bucket == bucket(datetime(2024, 1, 1, 0, 0))
    assert odd.end_bucket == bucket(datetime(2024, 1, 1, 1, 30))


def test_the_window_cap_counts_first_to_last_and_says_what_to_set() -> None:
    first, last = bucket(datetime(2024, 1, 1)), bucket(datetime(2024, 1, 1, 1, 30))
    assert check_window_cap(first, last, 4, None) == 4
    with pytest.raises(PrepInputError) as raised:
        check_window_cap(first, last, 3, AnalysisRange(datetime(2024, 1, 1), datetime(2024, 2, 1), "the data"))
    assert str(raised.value) == (
        "pickups from 2024-01-01 to 2024-01-01 make 4 half-hour windows, over the cap of 3: set "
        "--analysis_start/--analysis_end to the period to analyse, or raise --max_windows; "
        "analysis range 2024-01-01..2024-02-01 (from the data)"
    )
