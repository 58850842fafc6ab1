"""What the detector does after an anomaly: announced once, the return to normal is not news, shifts become normal.

Every interval goes through ``detect_interval`` on a LocalDirStore, as in AWS and the local mode, so the
open-anomaly state the detector carries in its state document between runs is part of what is tested.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from anomaly_detector.config import DetectorSettings
from anomaly_detector.logic import detect_interval
from anomaly_detector.scoring import DetectorState, score_interval
from anomaly_detector.stores import LocalDirStore, partition_path

# Alerts from the opening threshold, so every new anomaly group is announced (the alert threshold is tested elsewhere).
SETTINGS = DetectorSettings(frequency_minutes=5, anomaly_threshold=48.0, history_length=288, alert_min_severity=48.0)
STEP = timedelta(minutes=5)
T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAY = 288  # five-minute intervals
LEAF, TOTAL = "views|marketplace=de", "views|marketplace=*"  # the only marketplace is also the total
# Where the daily cycle below is steepest (falling, then rising): a lagging forecast shows most there.
FALLING, RISING = 100, 188


class CollectingPublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.messages.append((subject, message))


class NullMetrics:
    def put_metrics(self, values: Any, timestamp: datetime, *, by_measure: Any = None) -> None:
        del values, timestamp


@pytest.fixture
def store(tmp_path: Path) -> LocalDirStore:
    return LocalDirStore(tmp_path, "intervals/", "anomalies/", "state/history.json")


def seasonal_views(length: int, seed: int = 7) -> list[float]:
    """Views of `de` per interval: a daily cycle (x0.25 to x1.75 of the mean) with 3 % noise."""
    rng = random.Random(seed)
    return [8_000 * (1 + 0.75 * math.cos(2 * math.pi * i / DAY)) * rng.lognormvariate(0, 0.03) for i in range(length)]


def seed_state(store: LocalDirStore, views: Sequence[float]) -> None:
    """A state that has learnt ``views`` as the intervals from T0 (fast: no files)."""
    state = DetectorState(frequency_minutes=5, metric_set=SETTINGS.metric_set.signature)
    for index, value in enumerate(views):
        totals = {LEAF: value, TOTAL: value}
        score_interval(state, T0 + index * STEP, totals, SETTINGS.anomaly_threshold, SETTINGS.history_length)
    store.write_state(state.to_json())


def detect_each(store: LocalDirStore, views: Sequence[float], first: int) -> tuple[list[bool], list[float], int]:
    """Write and detect intervals ``first`` .. end one by one: `de` opened an anomaly?, its severities, alerts."""
    opened, severities = [], []
    publisher = CollectingPublisher()
    for index in range(first, len(views)):
        start = T0 + index * STEP
        folder = store.root / partition_path(store.intervals_prefix, start)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part-00000.csv").write_text(
            f"marketplace,event_time,views\nde,{start:%Y-%m-%d %H:%M:%S},{views[index]}\n"
        )
        report = detect_interval(
            store=store, publisher=publisher, metrics=NullMetrics(), interval_start=start, settings=SETTINGS
        )
        [verdict] = [score for score in report.scores if score.dimension_value == LEAF]
        opened.append(verdict.is_anomaly)
        severities.append(verdict.severity)
    return opened, severities, len(publisher.messages)


@pytest.mark.parametrize("spike_intervals", [6, 12], ids=["30-minute spike", "60-minute spike"])
@pytest.mark.parametrize("spike_at", [2 * DAY + FALLING, 2 * DAY + RISING], ids=["cycle falling", "cycle rising"])
def test_a_spike_is_announced_once_and_the_return_to_normal_is_not_news(
    store: LocalDirStore, spike_intervals: int, spike_at: int
) -> None:
    # Given two days of seasonal history, an hour of normal intervals, then a x4 spike and two normal hours
    views = seasonal_views(spike_at + spike_intervals + 24)
    for index in range(spike_at, spike_at + spike_intervals):
        views[index] *= 4
    seed_state(store, views[: spike_at - 12])

    # When every interval from the normal hour on is detected
    opened, severities, alerts = detect_each(store, views, spike_at - 12)

    # Then the spike's first interval opens the only anomaly (one alert), with a high severity
    assert opened == [False] * 12 + [True] + [False] * (spike_intervals - 1 + 24)
    assert alerts == 1
    assert severities[12] >= 75
    # And the normal hour before and the last of the two normal hours after are unremarkable
    assert max(severities[:12]) < SETTINGS.anomaly_threshold
    assert max(severities[12 + spike_intervals + 12 :]) < SETTINGS.anomaly_threshold


def test_a_lasting_level_shift_is_announced_once_then_becomes_the_new_normal(store: LocalDirStore) -> None:
    # Given two days of seasonal history and then a permanent x3 level from the steep part of the cycle
    shift_at = 2 * DAY + FALLING
    views = seasonal_views(shift_at + 72)
    views[shift_at:] = [value * 3 for value in views[shift_at:]]
    seed_state(store, views[:shift_at])

    # When the shifted intervals (six hours) are detected
    opened, severities, alerts = detect_each(store, views, shift_at)

    # Then the shift is announced at once, never again, and after an hour it is ordinary
    assert opened[0] and sum(opened) == 1 and alerts == 1
    assert max(severities[12:]) < SETTINGS.anomaly_threshold


def test_an_anomaly_that_comes_back_after_a_quiet_spell_is_announced_again(store: LocalDirStore) -> None:
    # Given two days of seasonal history, then two x4 spikes of 15 minutes, three hours apart
    first, second = 2 * DAY + 40, 2 * DAY + 76
    views = seasonal_views(second + 12)
    for start in (first, second):
        for index in range(start, start + 3):
            views[index] *= 4
    seed_state(store, views[: first - 1])

    # When detected
    opened, _, alerts = detect_each(store, views, first - 1)

    # Then each spike opened its own anomaly
    assert [index + first - 1 for index, flag in enumerate(opened) if flag] == [first, second]
    assert alerts == 2
