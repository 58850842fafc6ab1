"""What the detector expects after an anomaly: spikes do not move the level, lasting shifts become the new normal.

Every interval goes through ``detect_interval`` on a LocalDirStore, as in AWS and the local mode, so the
flags the detector keeps in its state are part of what is tested.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.logic import detect_interval
from anomaly_detector.scoring import DEFAULT_PARAMS, History, ScoringParams
from anomaly_detector.stores import LocalDirStore, partition_path

SETTINGS = DetectorSettings(frequency_minutes=5, anomaly_threshold=3.0, history_length=288)
STEP = timedelta(minutes=5)
T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = 288  # five-minute intervals
# Where the daily cycle below is steepest (falling, then rising): a level that lags shows most there.
FALLING, RISING = 100, 188


class NullPublisher:
    def publish(self, subject: str, message: str) -> None:
        del subject, message


class NullMetrics:
    def put_metrics(self, values: Any, timestamp: datetime) -> None:
        del values, timestamp


@pytest.fixture
def store(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path, "intervals/", "anomalies/", "state/history.json")


def seasonal_views(length: int, seed: int = 7) -> list[float]:
    """Views of `de` per interval: a daily cycle (x0.25 to x1.75 of the mean) with 3 % noise."""
    rng = random.Random(seed)
    return [8_000 * (1 + 0.75 * math.cos(2 * math.pi * i / DAY)) * rng.lognormvariate(0, 0.03) for i in range(length)]


def seed_state(store: LocalDirStore, views: Sequence[float]) -> None:
    """A state holding ``views`` as the intervals from T0, and nothing flagged (fast: no files)."""
    history = History(frequency_minutes=5)
    for index, value in enumerate(views):
        history.append_interval(T0 + index * STEP, {"de": value}, SETTINGS.history_length)
    store.write_state(history.to_json(SETTINGS.history_length))


def detect_each(
    store: LocalDirStore, views: Sequence[float], first: int, params: ScoringParams = DEFAULT_PARAMS
) -> list[bool]:
    """Write and detect intervals ``first`` .. end one by one; whether `de` was flagged in each."""
    flagged = []
    for index in range(first, len(views)):
        start = T0 + index * STEP
        folder = store.root / partition_path(store.intervals_prefix, start)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.csv").write_text(
            f"marketplace,event_time,views\nde,{start:%Y-%m-%d %H:%M:%S},{views[index]}\n"
        )
        report = detect_interval(
            store=store,
            publisher=NullPublisher(),
            metrics=NullMetrics(),
            interval_start=start,
            settings=SETTINGS,
            params=params,
        )
        flagged.append(any(a.dimension_value == "de" for a in report.anomalies))
    return flagged


@pytest.mark.parametrize("spike_intervals", [6, 12], ids=["30-minute spike", "60-minute spike"])
@pytest.mark.parametrize("spike_at", [DAY + FALLING, DAY + RISING], ids=["cycle falling", "cycle rising"])
def test_a_spike_is_flagged_throughout_and_the_return_to_normal_is_not(
    store: LocalDirStore, spike_intervals: int, spike_at: int
) -> None:
    # Given a day of seasonal history, an hour of normal intervals, then a x4 spike and two normal hours
    views = seasonal_views(spike_at + spike_intervals + 24)
    for index in range(spike_at, spike_at + spike_intervals):
        views[index] *= 4
    seed_state(store, views[: spike_at - 12])

    # When every interval from the normal hour on is detected
    flagged = detect_each(store, views, spike_at - 12)

    # Then nothing is flagged before, every spike interval is, and none of the 24 after it
    assert flagged[:12] == [False] * 12
    assert flagged[12 : 12 + spike_intervals] == [True] * spike_intervals
    assert flagged[12 + spike_intervals :] == [False] * 24


@pytest.mark.parametrize("params", [DEFAULT_PARAMS, ScoringParams(max_anomaly_run=8)], ids=["default", "run of 8"])
def test_a_lasting_level_shift_is_flagged_for_a_bounded_run_then_accepted(
    store: LocalDirStore, params: ScoringParams
) -> None:
    # Given a day of seasonal history and then a permanent x3 level from the steep part of the cycle
    shift_at = DAY + FALLING
    views = seasonal_views(shift_at + params.max_anomaly_run + 36)
    views[shift_at:] = [value * 3 for value in views[shift_at:]]
    seed_state(store, views[:shift_at])

    # When the shifted intervals are detected
    flagged = detect_each(store, views, shift_at, params)

    # Then exactly the first max_anomaly_run are flagged, and the new level is normal afterwards
    assert flagged == [True] * params.max_anomaly_run + [False] * 36


def test_a_state_without_flags_still_loads_scores_and_gains_flags(store: LocalDirStore) -> None:
    # Given a state document written before flags existed (no "anomalous" key)
    spike_at = DAY + FALLING
    views = seasonal_views(spike_at + 6 + 12)
    views[spike_at : spike_at + 6] = [value * 4 for value in views[spike_at : spike_at + 6]]
    old_document = {
        "version": 1,
        "frequency_minutes": 5,
        "history_length": 288,
        "last_interval_start": f"{T0 + (spike_at - 1) * STEP:%Y-%m-%dT%H:%M:%SZ}",
        "series": {"de": views[spike_at - 288 : spike_at]},
    }
    store.write_state(json.dumps(old_document))

    # When a 30-minute spike and the following hour are detected
    flagged = detect_each(store, views, spike_at)

    # Then the old history was used (the spike was scored, not warming up), and only the spike is flagged
    assert flagged == [True] * 6 + [False] * 12
    # And the new state flags the spike's six positions, 12 intervals from the end
    state = json.loads(store.read_state() or "{}")
    assert state["anomalous"] == {"de": list(range(288 - 18, 288 - 12))}
