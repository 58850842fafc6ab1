"""Stand-in for the per-interval detector while `lambda/anomaly_detector` (logic.detect_interval, stores.py)
is not in the repository yet.

It follows the detector's contract as the config describes it: per marketplace, the interval's summed
measure is scored by a Random Cut Forest (krcf) over the recent history (`history_length` intervals),
and a score at or above `anomaly_threshold` is an anomaly. State lives in a local-filesystem store
(one JSON file per marketplace). Replace with the real `detect_interval` once it lands.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import krcf
import numpy as np

SHINGLE_SIZE = 4
WARM_UP_INTERVALS = 24
NUM_TREES = 30
SAMPLE_SIZE = 128
MIN_RELATIVE_CHANGE = 0.3


@dataclass(frozen=True)
class AnomalyRecord:
    interval_start: str
    marketplace: str
    measure: str
    value: float
    expected: float
    score: float
    threshold: float


@dataclass
class DetectorState:
    history: list[float] = field(default_factory=list)


class LocalFileStore:
    """Detector state per dimension value as JSON files under one folder.

    Writes are buffered until `flush()` (once per micro-batch): one file write per interval and
    marketplace would dominate the run time on a slow disk.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._states: dict[str, DetectorState] = {}

    def load(self, key: str) -> DetectorState:
        if key not in self._states:
            path = self.folder / f"{key}.json"
            self._states[key] = DetectorState(**json.loads(path.read_text())) if path.exists() else DetectorState()
        return self._states[key]

    def save(self, key: str, state: DetectorState) -> None:
        self._states[key] = state

    def flush(self) -> None:
        for key, state in self._states.items():
            (self.folder / f"{key}.json").write_text(json.dumps({"history": state.history}))


def read_interval_sums(interval_folder: Path, dimension: str, measure: str) -> dict[str, float]:
    """Sum of the measure per dimension value over an interval partition's CSV part files."""
    sums: dict[str, float] = defaultdict(float)
    for part in sorted(interval_folder.glob("*.csv")):
        with part.open(encoding="utf-8") as lines:
            for row in csv.DictReader(lines):
                sums[row[dimension]] += float(row[measure])
    return dict(sums)


class IntervalDetector:
    def __init__(
        self,
        store: LocalFileStore,
        *,
        dimension: str,
        measure: str,
        threshold: float,
        history_length: int,
        seed: int = 1,
    ) -> None:
        self.store = store
        self.dimension, self.measure = dimension, measure
        self.threshold, self.history_length, self.seed = threshold, history_length, seed
        self._forests: dict[str, krcf.RandomCutForest] = {}

    def detect(
        self, interval_start: datetime, sums: dict[str, float], dimension_values: list[str]
    ) -> list[AnomalyRecord]:
        """Score one closed interval given its per-dimension sums (see read_interval_sums)."""
        anomalies = []
        for value_name in dimension_values:
            state = self.store.load(value_name)
            observed = sums.get(value_name, 0.0)
            state.history = ([*state.history, observed])[-self.history_length :]
            self.store.save(value_name, state)
            if len(state.history) < SHINGLE_SIZE:
                continue
            point = np.array(state.history[-SHINGLE_SIZE:])
            forest = self._forest(value_name)
            score = forest.score(point) if len(state.history) > WARM_UP_INTERVALS else 0.0
            forest.update(point)
            expected = float(np.median(state.history[-SHINGLE_SIZE - 12 : -1]))
            # The shingle keeps a spike in the next few points too: only the interval that itself
            # departs from the recent level is reported.
            departs = abs(observed - expected) > MIN_RELATIVE_CHANGE * max(expected, 1.0)
            if score >= self.threshold and departs:
                anomalies.append(
                    AnomalyRecord(
                        f"{interval_start:%Y-%m-%d %H:%M}",
                        value_name,
                        self.measure,
                        observed,
                        round(expected, 1),
                        round(score, 3),
                        self.threshold,
                    )
                )
        return anomalies

    def _forest(self, value_name: str) -> krcf.RandomCutForest:
        if value_name not in self._forests:
            self._forests[value_name] = krcf.RandomCutForest(
                {
                    "dimensions": SHINGLE_SIZE,
                    "shingle_size": 1,
                    "num_trees": NUM_TREES,
                    "sample_size": SAMPLE_SIZE,
                    "output_after": WARM_UP_INTERVALS // 2,
                    "random_seed": self.seed,
                }
            )
        return self._forests[value_name]
