"""Synthetic event generation: shape, determinism, seasonality, injected anomalies, cost."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from metrics_generator.records import (
    EVENT_TIME_FORMAT,
    MARKETPLACES,
    PLATFORMS,
    GeneratorSettings,
    InjectedAnomaly,
    anomaly_multiplier,
    expected_views_per_minute,
    generate_records,
    rng_for_interval,
)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def views_by_marketplace(records: list[dict[str, str | int | float]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for record in records:
        totals[str(record["marketplace"])] += int(record["views"])
    return totals


def test_records_have_the_documented_shape_and_types() -> None:
    # Given a five-minute window
    # When records are generated for it
    records = generate_records(START, START + FIVE_MINUTES, random.Random(1), GeneratorSettings())

    # Then every record has exactly the documented fields with the documented types and ranges
    assert len(records) == 500 * 5
    platforms = {p.name for p in PLATFORMS}
    marketplaces = {m.name for m in MARKETPLACES}
    for record in records:
        assert set(record) == {"platform", "marketplace", "event_time", "views", "revenue"}
        assert record["platform"] in platforms
        assert record["marketplace"] in marketplaces
        event_time = datetime.strptime(str(record["event_time"]), EVENT_TIME_FORMAT).replace(tzinfo=UTC)
        assert START <= event_time < START + FIVE_MINUTES
        assert isinstance(record["views"], int) and record["views"] >= 0
        assert isinstance(record["revenue"], float) and record["revenue"] >= 0
        assert round(record["revenue"], 2) == record["revenue"]
    # And every platform and marketplace shows up
    assert {r["platform"] for r in records} == platforms
    assert {r["marketplace"] for r in records} == marketplaces


def test_an_explicit_count_overrides_the_rate() -> None:
    records = generate_records(START, START + timedelta(minutes=1), random.Random(1), GeneratorSettings(), count=37)
    assert len(records) == 37


def test_same_seed_gives_the_same_records_and_another_seed_does_not() -> None:
    # Given two generators seeded for the same interval and one for another seed
    settings = GeneratorSettings()
    first = generate_records(START, START + FIVE_MINUTES, rng_for_interval(7, START), settings)
    again = generate_records(START, START + FIVE_MINUTES, rng_for_interval(7, START), settings)
    other = generate_records(START, START + FIVE_MINUTES, rng_for_interval(8, START), settings)

    # Then the same seed reproduces the interval exactly and a different one does not
    assert first == again
    assert first != other


def test_expected_level_follows_the_local_daily_cycle() -> None:
    # Given the US marketplace (UTC-5, evening peak at 20:00 local = 01:00 UTC)
    settings = GeneratorSettings()
    peak = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
    trough = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)

    # When the noise-free level is evaluated at the peak and the trough
    # Then the peak is amplitude-many times the trough: (1 + 0.6) / (1 - 0.6) = 4
    ratio = expected_views_per_minute("us", peak, settings) / expected_views_per_minute("us", trough, settings)
    assert ratio == pytest.approx(4.0)
    # And Japan (UTC+9) peaks at a different UTC hour than the US
    assert expected_views_per_minute("jp", peak, settings) < expected_views_per_minute("jp", trough, settings)


def test_generated_volume_is_higher_at_peak_than_at_trough() -> None:
    # Given an hour of records at the US peak and an hour at its trough
    settings = GeneratorSettings()
    peak = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
    trough = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
    hour = timedelta(hours=1)

    # When the US views are summed
    peak_views = views_by_marketplace(generate_records(peak, peak + hour, random.Random(3), settings))["us"]
    trough_views = views_by_marketplace(generate_records(trough, trough + hour, random.Random(3), settings))["us"]

    # Then they track the expected levels (noise is a few percent)
    assert peak_views > 3 * trough_views
    expected_peak = sum(expected_views_per_minute("us", peak + timedelta(minutes=m), settings) for m in range(60))
    assert peak_views == pytest.approx(expected_peak, rel=0.1)


@pytest.mark.parametrize("factor", [4.0, 0.1])
def test_injected_anomaly_is_present_in_its_window_and_absent_outside(factor: float) -> None:
    # Given a views spike (or drop) in every platform of Germany between 12:00 and 12:15
    window = (START, START + timedelta(minutes=15))
    anomaly = InjectedAnomaly("views", {"marketplace": "de"}, factor, window, "test")
    settings = GeneratorSettings(anomalies=(anomaly,))
    inside_start, outside_start = START + FIVE_MINUTES, START + timedelta(minutes=30)

    # When an interval inside and one outside the window are generated
    inside = views_by_marketplace(
        generate_records(inside_start, inside_start + FIVE_MINUTES, random.Random(5), settings)
    )
    outside = views_by_marketplace(
        generate_records(outside_start, outside_start + FIVE_MINUTES, random.Random(5), settings)
    )

    # Then Germany is off by the factor inside the window only, and the UK is never affected
    def normal_level(marketplace: str, at: datetime) -> float:
        return 5 * expected_views_per_minute(marketplace, at + timedelta(seconds=150), GeneratorSettings())

    assert inside["de"] / normal_level("de", inside_start) == pytest.approx(factor, rel=0.15)
    assert outside["de"] / normal_level("de", outside_start) == pytest.approx(1.0, rel=0.15)
    assert inside["uk"] / normal_level("uk", inside_start) == pytest.approx(1.0, rel=0.15)
    # And the expected level says the same
    assert expected_views_per_minute("de", inside_start, settings) == pytest.approx(
        factor * expected_views_per_minute("de", inside_start, GeneratorSettings())
    )


def by_cell(records: list[dict[str, str | int | float]]) -> dict[tuple[str, str], tuple[float, float]]:
    totals: dict[tuple[str, str], list[float]] = {}
    for record in records:
        total = totals.setdefault((str(record["platform"]), str(record["marketplace"])), [0.0, 0.0])
        total[0] += float(record["views"])
        total[1] += float(record["revenue"])
    return {cell: (views, revenue) for cell, (views, revenue) in totals.items()}


def test_a_revenue_anomaly_in_one_combination_changes_only_that_revenue() -> None:
    # Given a revenue drop in web/de, and the same stream without it
    anomaly = InjectedAnomaly("revenue", {"platform": "web", "marketplace": "de"}, 0.2)
    plain = generate_records(START, START + FIVE_MINUTES, random.Random(2), GeneratorSettings())
    dropped = generate_records(START, START + FIVE_MINUTES, random.Random(2), GeneratorSettings(anomalies=(anomaly,)))

    # When each cell's views and revenue are summed
    before, after = by_cell(plain), by_cell(dropped)

    # Then web/de revenue is a fifth, its views are unchanged, and every other cell is identical
    assert after[("web", "de")][1] == pytest.approx(0.2 * before[("web", "de")][1], rel=0.01)
    assert after[("web", "de")][0] == before[("web", "de")][0]
    assert {cell: totals for cell, totals in after.items() if cell != ("web", "de")} == {
        cell: totals for cell, totals in before.items() if cell != ("web", "de")
    }


def test_a_views_anomaly_on_a_platform_hits_every_marketplace_of_it_and_leaves_revenue_alone() -> None:
    # Given a views drop on android (every marketplace), and the same stream without it
    anomaly = InjectedAnomaly("views", {"platform": "android"}, 0.5)
    plain = by_cell(generate_records(START, START + FIVE_MINUTES, random.Random(3), GeneratorSettings()))
    dropped = by_cell(
        generate_records(START, START + FIVE_MINUTES, random.Random(3), GeneratorSettings(anomalies=(anomaly,)))
    )

    # Then every android cell has about half its views and all of its revenue; other platforms are untouched
    for (platform, marketplace), (views, revenue) in dropped.items():
        plain_views, plain_revenue = plain[(platform, marketplace)]
        assert revenue == plain_revenue
        if platform == "android":
            assert views == pytest.approx(0.5 * plain_views, rel=0.05, abs=2), marketplace
        else:
            assert views == plain_views


def test_overlapping_anomalies_multiply() -> None:
    at = START + timedelta(minutes=1)
    settings = GeneratorSettings(
        anomalies=(InjectedAnomaly("views", {"platform": "web"}, 2.0), InjectedAnomaly("views", {}, 0.5))
    )
    assert anomaly_multiplier("views", "web", "de", at, settings) == 1.0
    assert anomaly_multiplier("views", "ios", "de", at, settings) == 0.5
    assert anomaly_multiplier("revenue", "web", "de", at, settings) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"measure": "clicks"}, "measure"),
        ({"measure": "views", "dimensions": {"marketplace": "fr"}}, "marketplace"),
        ({"measure": "views", "dimensions": {"device": "tv"}}, "dimension"),
        ({"measure": "views", "factor": 0.0}, "factor"),
        ({"measure": "views", "factor": float("inf")}, "factor"),
        ({"measure": "views", "window": (START, START)}, "window"),
    ],
)
def test_an_anomaly_the_generator_cannot_inject_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InjectedAnomaly(**kwargs)  # type: ignore[arg-type]


def test_generation_is_cheap_enough_for_a_compressed_simulation() -> None:
    # Given a busy interval (5,000 records)
    settings = GeneratorSettings(records_per_minute=1000)

    # When it is generated
    started = time.perf_counter()
    records = generate_records(START, START + FIVE_MINUTES, random.Random(9), settings)
    elapsed = time.perf_counter() - started

    # Then it takes well under a second
    assert len(records) == 5000
    assert elapsed < 1.0
