"""Hash partitions of the series: stable, even, one state file each, and scoring by partition = scoring at once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from anomaly_detector.partitions import (
    merge_partition_scores,
    partition_of,
    partition_state_key,
    split_totals,
)
from anomaly_detector.scoring import DetectorState, score_interval

LAMBDA_FOLDER = Path(__file__).resolve().parents[3] / "lambda"


def test_a_series_lands_in_the_same_partition_in_every_process() -> None:
    # Fixed values: Python's own hash() is salted per process and would fail this in another interpreter
    assert partition_of("revenue|platform=web|marketplace=de", 8) == 4
    assert partition_of("revenue|platform=web|marketplace=de", 64) == 60
    assert partition_of("views|platform=*|marketplace=*", 8) == 4
    code = "from anomaly_detector.partitions import partition_of; print(partition_of('a', 8))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(LAMBDA_FOLDER)}
    )
    assert other.stdout.strip() == str(partition_of("a", 8)) == "2"


def test_series_spread_evenly_over_the_partitions() -> None:
    keys = [f"views|platform=p{p}|marketplace=m{m}" for p in range(100) for m in range(100)]
    counts = Counter(partition_of(key, 16) for key in keys)
    assert set(counts) == set(range(16))
    assert max(counts.values()) < 1.1 * len(keys) / 16 and min(counts.values()) > 0.9 * len(keys) / 16


def test_each_partition_has_its_own_state_file_and_one_partition_keeps_todays() -> None:
    key = "metrics/detector-state/history.json"
    assert partition_state_key(key, 0, 1) == key
    assert partition_state_key(key, 3, 8) == "metrics/detector-state/history.part-3-of-8.json"
    assert partition_state_key("state", 0, 2) == "state.part-0-of-2.json"
    with pytest.raises(ValueError, match=r"partition must be 0\.\.7"):
        partition_state_key(key, 8, 8)
    with pytest.raises(ValueError, match=r"partitions must be 1\.\.64"):
        partition_of("a", 65)


def test_scoring_by_partition_then_merging_equals_scoring_every_series_at_once() -> None:
    # Given 40 series over 200 intervals with a drop in one of them at the end
    keys = [f"revenue|platform=p{index % 4}|marketplace=m{index}" for index in range(40)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=5)
    whole = DetectorState(frequency_minutes=5)
    parts = [DetectorState(frequency_minutes=5) for _ in range(4)]
    for interval in range(200):
        moment = start + interval * step
        totals = {key: 100.0 + (index * 7 + interval * 3) % 11 for index, key in enumerate(keys)}
        if interval == 199:
            totals[keys[5]] = 5.0
        # When the same interval is scored at once and by 4 partitions
        at_once = score_interval(whole, moment, totals, 48.0, 288)
        merged = merge_partition_scores(
            [
                score_interval(state, moment, part, 48.0, 288)
                for state, part in zip(parts, split_totals(totals, 4), strict=True)
            ]
        )
        # Then the verdicts are the same, series by series
        assert merged == at_once
    assert any(score.is_anomaly for score in at_once)
    # And the partitions' states hold exactly the whole state's series, each once
    assert sorted(key for state in parts for key in state.series) == sorted(whole.series)


def test_a_series_scored_by_two_partitions_is_an_error() -> None:
    whole = DetectorState(frequency_minutes=5)
    scores = score_interval(whole, datetime(2026, 1, 1, tzinfo=UTC), {"a": 1.0}, 48.0, 288)
    with pytest.raises(ValueError, match="scored by two partitions"):
        merge_partition_scores([scores, scores])
