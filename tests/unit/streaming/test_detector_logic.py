"""detect_interval end to end on a LocalDirStore, with collecting publisher and metrics fakes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.logic import detect_interval
from anomaly_detector.scoring import DetectorState, score_interval
from anomaly_detector.stores import LocalDirStore, partition_path
from metrics_generator.records import MARKETPLACES, GeneratorSettings, expected_views_per_minute

SETTINGS = DetectorSettings(frequency_minutes=5, anomaly_threshold=48.0, history_length=288)
STEP = timedelta(minutes=5)
DAY_START = datetime(2025, 3, 1, tzinfo=UTC)
GENERATOR = GeneratorSettings()


@pytest.fixture
def store(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path, "metrics/intervals/", "metrics/anomalies/", "metrics/detector-state/history.json")


def normal_totals(start: datetime) -> dict[str, float]:
    """Per-marketplace views of one interval: the generator's level with 3 % noise, cheap to make."""
    rng = random.Random(start.isoformat())
    middle = start + STEP / 2
    return {
        m.name: round(5 * expected_views_per_minute(m.name, middle, GENERATOR) * rng.lognormvariate(0, 0.03))
        for m in MARKETPLACES
    }


def write_interval(store: LocalDirStore, start: datetime, totals: dict[str, float]) -> None:
    """Two CSV parts (each value split in two rows) plus a Spark success marker, like the Glue job."""
    folder = store.root / partition_path(store.intervals_prefix, start)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{start:%Y-%m-%d %H:%M:%S}"
    for part, share in enumerate((0.4, 0.6)):
        lines = ["marketplace,event_time,views"] + [f"{k},{stamp},{round(v * share)}" for k, v in totals.items()]
        (folder / f"part-0000{part}.csv").write_text("\n".join(lines) + "\n")
    (folder / "_SUCCESS").write_text("")


def keyed(totals: dict[str, float]) -> dict[str, float]:
    """Per-marketplace views as the detector's series: one per marketplace and the total."""
    return {f"views|marketplace={k}": v for k, v in totals.items()} | {"views|marketplace=*": sum(totals.values())}


def marketplaces(scores: Any) -> list[str]:
    """The marketplaces among the verdicts' series (the total left out)."""
    names = [s.dimension_value.removeprefix("views|marketplace=") for s in scores]
    return [name for name in names if name != "*"]


def seed_state(store: LocalDirStore, before: datetime, intervals: int = 288) -> None:
    """Save a state that has learnt ``intervals`` normal intervals up to ``before`` (fast: no files)."""
    state = DetectorState(frequency_minutes=5, metric_set=SETTINGS.metric_set.signature)
    for i in range(intervals, 0, -1):
        start = before - i * STEP
        totals = keyed(normal_totals(start))
        score_interval(state, start, totals, SETTINGS.anomaly_threshold, SETTINGS.history_length)
    store.write_state(state.to_json())


def run(store: LocalDirStore, publisher: Any, metrics: Any, start: datetime, **overrides: Any) -> Any:
    settings = DetectorSettings(**{**SETTINGS.__dict__, **overrides})
    return detect_interval(store=store, publisher=publisher, metrics=metrics, interval_start=start, settings=settings)


def test_spike_after_two_days_is_flagged_and_reported(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    # Given two days of interval files and no detector state (it is rebuilt from the files)
    spike_start = DAY_START + timedelta(days=2)
    for i in range(2 * 288):
        start = DAY_START + i * STEP
        write_interval(store, start, normal_totals(start))
    # And a x4 spike in Germany in the next interval
    totals = normal_totals(spike_start)
    totals["de"] *= 4
    write_interval(store, spike_start, totals)

    # When that interval is detected
    report = run(store, publisher, metrics, spike_start)

    # Then only Germany is flagged, at or above the threshold and above its expected range
    assert report.caught_up_intervals == 288
    assert marketplaces(report.anomalies) == ["de"]
    anomaly = next(a for a in report.anomalies if a.dimension_value == "views|marketplace=de")
    assert anomaly.severity >= SETTINGS.anomaly_threshold
    assert anomaly.value > anomaly.expected_high
    assert anomaly.direction == "high"
    others = [s for s in report.scored if marketplaces([s]) and "=de" not in s.dimension_value]
    assert others and all(s.severity < SETTINGS.anomaly_threshold for s in others)
    # And the groups file holds one group, rooted in Germany, with the documented fields
    groups_file = store.root / "metrics/anomalies/intvl_date=2025-03-03/intvl_hhmm=0000/groups.jsonl"
    [line] = groups_file.read_text().splitlines()
    record = json.loads(line)
    assert record["group_id"] == "views-high-20250303T0000Z" and record["status"] == "new"
    assert record["interval_start"] == "2025-03-03T00:00:00Z"
    assert record["interval_end"] == "2025-03-03T00:05:00Z"
    assert record["contributors"][0]["dimensions"] == {"marketplace": "de"}
    assert record["contributors"][0]["observed"] == totals["de"]
    assert record["severity"] >= round(anomaly.severity, 1)
    assert record["alerted"] is (record["severity"] >= SETTINGS.alert_min_severity)
    assert set(record) >= {"measure", "aggregation", "opened_at", "direction", "observed", "expected", "level"}
    # And one alert (severity above the alert threshold) and one metrics call were made
    assert record["severity"] >= SETTINGS.alert_min_severity
    [(subject, message)] = publisher.messages
    assert subject.startswith("views high in de, severity") and record["group_id"] in message
    [(values, timestamp)] = metrics.calls
    assert values["AnomalyGroups"] == 1 and values["NewAnomalyGroups"] == 1 and values["AlertsSent"] == 1
    assert values["SeriesScored"] == len(MARKETPLACES) + 1
    assert values["MaxGroupSeverity"] == pytest.approx(record["severity"])
    assert metrics.by_measure[0]["views"]["MeasureTotal"] == sum(totals.values())
    assert metrics.by_measure[0]["views"]["AnomalyGroups"] == 1
    assert timestamp == spike_start


def test_normal_data_raises_no_alert_over_many_intervals(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    # Given a day of normal history
    first = DAY_START + timedelta(days=1, hours=10)
    seed_state(store, first)

    # When 48 normal intervals (four hours, across steep parts of the daily cycles) are detected
    reports = []
    for i in range(48):
        start = first + i * STEP
        write_interval(store, start, normal_totals(start))
        reports.append(run(store, publisher, metrics, start))

    # Then every marketplace was scored every time and nothing was flagged or published
    assert all(len(r.scored) == len(MARKETPLACES) + 1 for r in reports)
    assert not publisher.messages
    assert not (store.root / "metrics/anomalies").exists()
    assert max(values["MaxGroupSeverity"] for values, _ in metrics.calls) == 0


@pytest.mark.parametrize("drop", ["to_10_percent", "missing"])
def test_drop_or_disappearance_is_flagged_low(store: LocalDirStore, publisher: Any, metrics: Any, drop: str) -> None:
    # Given a day of history
    start = DAY_START + timedelta(days=1)
    seed_state(store, start)
    # And an interval where Japan fell to 10 % or vanished from the files
    totals = normal_totals(start)
    if drop == "missing":
        del totals["jp"]
    else:
        totals["jp"] *= 0.1
    write_interval(store, start, totals)

    # When detected
    report = run(store, publisher, metrics, start)

    # Then Japan is flagged, low, below its expected range (at 0 when missing)
    assert marketplaces(report.anomalies) == ["jp"]
    anomaly = next(a for a in report.anomalies if a.dimension_value == "views|marketplace=jp")
    assert anomaly.direction == "low"
    assert anomaly.value < anomaly.expected_low
    assert (anomaly.value == 0) == (drop == "missing")


def test_empty_interval_is_reported_without_anomalies(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    # Given history but no files at all for the interval
    start = DAY_START + timedelta(days=1)
    seed_state(store, start)
    before = DetectorState.from_json(store.read_state(), 5, metric_set=SETTINGS.metric_set.signature)

    # When detected
    report = run(store, publisher, metrics, start)

    # Then nothing is flagged, the emptiness is a metric, and the history gained no zeros
    assert report.is_empty and not report.anomalies and not publisher.messages
    [(values, _)] = metrics.calls
    assert values["EmptyInterval"] == 1
    assert values["SeriesScored"] == 0
    after = DetectorState.from_json(store.read_state(), 5, metric_set=SETTINGS.metric_set.signature)
    assert {k: v.to_dict() for k, v in after.series.items()} == {k: v.to_dict() for k, v in before.series.items()}
    assert after.last_interval_start == start


def test_new_dimension_value_is_warming_up_until_it_has_enough_history(
    store: LocalDirStore, publisher: Any, metrics: Any
) -> None:
    # Given a day of history in which Mexico never appeared
    start = DAY_START + timedelta(days=1)
    seed_state(store, start)
    # And Mexico now appears with a huge value
    totals = {**normal_totals(start), "mx": 10_000}
    write_interval(store, start, totals)

    # When detected
    report = run(store, publisher, metrics, start)

    # Then Mexico is recorded as warming up and not judged
    [warming] = report.warming_up
    assert warming.dimension_value == "views|marketplace=mx" and warming.severity == 0.0
    assert marketplaces(report.anomalies) == []
    assert metrics.calls[0][0]["SeriesWarmingUp"] == 1


def test_the_state_keeps_one_bounded_model_per_value(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    # Given a day of state
    start = DAY_START + timedelta(days=1)
    seed_state(store, start)
    size_before = len(store.read_state() or "")

    # When another 24 intervals are detected
    for i in range(24):
        moment = start + i * STEP
        write_interval(store, moment, normal_totals(moment))
        run(store, publisher, metrics, moment)

    # Then the state has one model per marketplace and has not grown with the intervals
    state = json.loads(store.read_state() or "{}")
    assert set(state["series"]) == set(keyed({m.name: 0 for m in MARKETPLACES}))
    assert state["last_interval_start"] == "2025-03-02T01:55:00Z"
    assert len(store.read_state() or "") < 1.2 * size_before
    # Bytes per series, see series_model (the volatility evidence's histogram, values and hourly maxima
    # add about 1 KB to the 8.4 KB before it, the hourly point maxima of the recurring-peak rule 0.5 KB).
    assert len(store.read_state() or "") / (len(MARKETPLACES) + 1) < 10_000


def test_repeating_the_latest_interval_does_nothing(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    # Given a detected spike interval
    start = DAY_START + timedelta(days=1)
    seed_state(store, start)
    totals = normal_totals(start)
    totals["us"] *= 4
    write_interval(store, start, totals)
    first = run(store, publisher, metrics, start)
    state_after_first = store.read_state()
    assert marketplaces(first.anomalies) == ["us"]

    # When the same interval is delivered again
    second = run(store, publisher, metrics, start)

    # Then nothing is scored, published or emitted again, and the state is unchanged
    assert second.mode == "already processed" and not second.scores
    assert len(publisher.messages) == 1 and len(metrics.calls) == 1
    assert store.read_state() == state_after_first


def test_an_older_interval_rerun_by_hand_uses_a_rebuilt_history_and_keeps_the_state(
    store: LocalDirStore, publisher: Any, metrics: Any
) -> None:
    # Given two days of interval files, a x4 spike in Germany at 12:00 on day 2, and a state at day 2 18:00
    spike = DAY_START + timedelta(days=1, hours=12)
    for i in range(2 * 288):
        moment = DAY_START + i * STEP
        totals = normal_totals(moment)
        if moment == spike:
            totals["de"] *= 4
        write_interval(store, moment, totals)
    seed_state(store, DAY_START + timedelta(days=1, hours=18, minutes=5))
    state_before = store.read_state()

    # When the 12:00 interval is run again by hand
    report = run(store, publisher, metrics, spike)

    # Then it is judged against the 288 stored intervals before it, flagged, and the saved state is untouched
    assert report.mode == "rebuilt"
    assert report.caught_up_intervals == 288
    assert marketplaces(report.anomalies) == ["de"]
    assert store.read_state() == state_before


def test_unaligned_interval_start_is_rejected(store: LocalDirStore, publisher: Any, metrics: Any) -> None:
    with pytest.raises(ValueError, match="not aligned"):
        run(store, publisher, metrics, DAY_START + timedelta(minutes=7))
