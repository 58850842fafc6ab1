"""The streaming replay is the detector Lambda's per-interval path: same verdicts, causal, its own decision rule."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anomaly_detector.config import DetectorSettings
from anomaly_detector.logic import detect_interval
from anomaly_detector.stores import LocalDirStore, partition_path

from backtest.streaming_replay import detect_series

T0 = datetime(2025, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def series(length: int, seed: int = 3) -> list[float]:
    """A daily cycle with noise, a spike and a lasting drop."""
    rng = random.Random(seed)
    values = [500 * (1 + 0.5 * math.sin(2 * math.pi * i / 288)) * rng.lognormvariate(0, 0.04) for i in range(length)]
    values[length // 2] *= 5
    values[3 * length // 4 :] = [value * 0.3 for value in values[3 * length // 4 :]]
    return values


class Discard:
    def publish(self, subject: str, message: str) -> None:
        del subject, message

    def put_metrics(self, values: Any, timestamp: datetime, *, by_measure: Any = None) -> None:
        del values, timestamp


def test_the_replay_gives_the_lambda_path_s_verdicts(tmp_path: Path) -> None:
    # Given a series of 400 five-minute intervals as interval files, and the same series as rows
    values = series(400)
    store = LocalDirStore(tmp_path, "intervals/", "anomalies/", "state.json")
    settings = DetectorSettings()
    for index, value in enumerate(values):
        folder = tmp_path / partition_path("intervals/", T0 + index * STEP)
        folder.mkdir(parents=True)
        (folder / "part-0.csv").write_text(
            f"marketplace,event_time,views\nde,{T0 + index * STEP:%Y-%m-%d %H:%M:%S},{value}\n"
        )

    # When the detector runs once per interval, and the replay runs over the rows
    lambda_verdicts = []
    for index in range(len(values)):
        report = detect_interval(
            store=store, publisher=Discard(), metrics=Discard(), interval_start=T0 + index * STEP, settings=settings
        )
        # The only marketplace's series (its total is the same numbers, scored as a series of its own)
        [verdict] = [score for score in report.scores if score.dimension_value == "views|marketplace=de"]
        lambda_verdicts.append((verdict.severity, verdict.is_anomaly, verdict.expected))
    replay = detect_series([T0 + index * STEP for index in range(len(values))], values)

    # Then both give the same severity, decision and expected value for every interval
    assert [(100 * s, bool(a)) for s, a in zip(replay.scores, replay.is_anomaly, strict=True)] == [
        (severity, opened) for severity, opened, _ in lambda_verdicts
    ]
    assert any(replay.is_anomaly)


def test_the_replay_is_causal() -> None:
    # Given a series and its first 250 rows
    values = series(400)
    stamps = [T0 + index * STEP for index in range(len(values))]

    # When both are replayed
    full = detect_series(stamps, values)
    prefix = detect_series(stamps[:250], values[:250])

    # Then the first 250 verdicts do not depend on what comes later
    assert list(full.scores[:250]) == list(prefix.scores)
    assert list(full.is_anomaly[:250]) == list(prefix.is_anomaly)


def test_the_replay_reports_its_columns_and_its_own_decision_rule() -> None:
    values = series(400)
    stamps = [T0 + index * STEP for index in range(len(values))]
    detection = detect_series(stamps, values)

    assert all(0.0 <= score <= 1.0 for score in detection.scores)
    assert {"severity", "expected", "expected_low", "expected_high", "direction", "ongoing"} <= set(
        detection.extra_columns
    )
    assert detection.threshold == DetectorSettings().anomaly_threshold / 100
    assert detection.decide is not None
    # The rule at the configured threshold is the replay's own decisions; a higher threshold decides less.
    assert list(detection.decide(detection.scores, detection.threshold)) == list(detection.is_anomaly)
    assert sum(detection.decide(detection.scores, 0.95)) <= sum(detection.is_anomaly)


def test_naive_timestamps_are_utc() -> None:
    values = series(300)
    aware = detect_series([T0 + index * STEP for index in range(300)], values)
    naive = detect_series([(T0 + index * STEP).replace(tzinfo=None) for index in range(300)], values)
    assert list(aware.scores) == list(naive.scores)
