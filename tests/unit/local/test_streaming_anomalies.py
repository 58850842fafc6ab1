"""The local run's injected-anomaly schedule and how it reaches the generator."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from metrics_generator.records import GeneratorSettings, generate_records

from local_mode.streaming_anomalies import (
    LOCAL_SCHEDULE,
    ScheduledAnomaly,
    injected_anomalies,
    single_spike,
    within_run,
)

START = datetime(2026, 11, 23, tzinfo=UTC)
END = START + timedelta(hours=48)


def test_the_schedule_has_a_combination_drop_a_short_spike_and_a_platform_wide_drop() -> None:
    by_label = {anomaly.label: anomaly for anomaly in LOCAL_SCHEDULE}
    revenue = by_label["revenue drop in web/de"]
    assert (revenue.measure, revenue.where, revenue.factor < 1) == ("revenue", "web/de", True)
    assert timedelta(minutes=50) <= revenue.end - revenue.start <= timedelta(minutes=70)
    spike = by_label["views spike in ios/us"]
    assert (spike.measure, spike.factor > 1, spike.end - spike.start) == ("views", True, timedelta(minutes=10))
    spread = by_label["views drop on android, every marketplace"]
    assert (spread.measure, spread.dimensions, spread.where) == ("views", {"platform": "android"}, "android/*")
    # All within the default 48-hour run, after a day of history, and not overlapping
    windows = sorted(anomaly.window(START) for anomaly in LOCAL_SCHEDULE)
    assert all(START + timedelta(hours=24) <= start and end <= END for start, end in windows)
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(windows))


def test_the_generator_gets_absolute_windows_cut_at_the_runs_end() -> None:
    # Given a 36-hour run: the spike at 36:00 and the android drop at 42:00 are after its end
    injected = injected_anomalies(LOCAL_SCHEDULE, START, START + timedelta(hours=36))

    # Then only the revenue drop is injected, at its absolute time, with its label
    (revenue,) = injected
    assert revenue.window == (START + timedelta(hours=30), START + timedelta(hours=31))
    assert (revenue.measure, dict(revenue.dimensions), revenue.factor, revenue.label) == (
        "revenue",
        {"platform": "web", "marketplace": "de"},
        0.2,
        "revenue drop in web/de",
    )
    # And an entry running past the end is cut there
    late = ScheduledAnomaly("late", "views", {}, timedelta(hours=47), timedelta(hours=50), 2.0)
    assert injected_anomalies([late], START, END)[0].window == (START + timedelta(hours=47), END)
    assert within_run([late], START, START + timedelta(hours=47)) == []


def test_the_single_spike_option_is_views_in_de_for_thirty_minutes() -> None:
    (spike,) = single_spike(38.0)
    assert (spike.measure, spike.dimensions, spike.factor) == ("views", {"marketplace": "de"}, 4.0)
    assert spike.window(START) == (START + timedelta(hours=38), START + timedelta(hours=38, minutes=30))
    assert single_spike(-1) == ()


@pytest.mark.parametrize(
    ("start", "end", "factor"), [(timedelta(hours=2), timedelta(hours=1), 2.0), (timedelta(0), timedelta(1), 1.0)]
)
def test_a_bad_entry_is_refused(start: timedelta, end: timedelta, factor: float) -> None:
    with pytest.raises(ValueError, match="bad"):
        ScheduledAnomaly("bad", "views", {}, start, end, factor)


def test_the_platform_wide_drop_is_plain_at_the_roll_up_and_thin_per_combination() -> None:
    # Given one 5-minute interval inside the android drop, at the local run's record rate, and the same without it
    spread = next(a for a in LOCAL_SCHEDULE if a.where == "android/*")
    at = START + spread.start + timedelta(minutes=10)
    targeted = GeneratorSettings(records_per_minute=40, anomalies=injected_anomalies([spread], START, END))
    plain = GeneratorSettings(records_per_minute=40)

    def views(settings: GeneratorSettings) -> dict[tuple[str, str], float]:
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for record in generate_records(at, at + timedelta(minutes=5), random.Random(11), settings):
            totals[(str(record["platform"]), str(record["marketplace"]))] += float(record["views"])
        return totals

    before, after = views(plain), views(targeted)

    # Then android as a whole drops by the factor, other platforms not at all
    android_before = sum(v for (platform, _), v in before.items() if platform == "android")
    android_after = sum(v for (platform, _), v in after.items() if platform == "android")
    assert android_after / android_before == pytest.approx(spread.factor, rel=0.03)
    assert {c: v for c, v in after.items() if c[0] != "android"} == {
        c: v for c, v in before.items() if c[0] != "android"
    }
    # And the smallest android combination carries only a few records an interval (its own counting noise is large)
    small = [c for c in before if c[0] == "android" and c[1] == "br"]
    assert small and before[small[0]] < 0.1 * android_before
